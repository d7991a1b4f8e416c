use iomgr::net::TcpStream;
use iomgr::pipeline::{Lines, iter};

fn send(stream: &TcpStream) {
    let _ = iomgr::pipeline! { iter([1u32, 2]) => Lines::encoder() => stream };
}

fn main() {}
