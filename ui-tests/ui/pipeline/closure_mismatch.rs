use iomgr::net::TcpStream;
use iomgr::pipeline::Lines;

fn serve(stream: &TcpStream) {
    let _ = iomgr::pipeline! {
        stream
        => Lines::new(64)
        => |n: u32| n + 1
        => Lines::encoder()
        => stream
    };
}

fn main() {}
