use iomgr::net::TcpStream;
use iomgr::pipeline::{Lines, iter};

fn send(stream: &TcpStream) {
    let mut out: Vec<String> = Vec::new();
    let _ = iomgr::pipeline! { iter(["a\n"]) => stream => Lines::new(64) => &mut out };
}

fn main() {}
