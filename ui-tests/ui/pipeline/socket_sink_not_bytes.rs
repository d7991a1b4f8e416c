use iomgr::net::TcpStream;
use iomgr::pipeline::iter;

fn send(stream: &TcpStream) {
    let _ = iomgr::pipeline! { iter([1u32, 2, 3]) => |n| n * 2 => stream };
}

fn main() {}
