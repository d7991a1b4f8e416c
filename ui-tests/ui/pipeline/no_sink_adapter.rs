use iomgr::net::TcpStream;
use iomgr::pipeline::Lines;

fn serve(stream: &TcpStream) {
    let _ = iomgr::pipeline! { stream => Lines::new(1024) };
}

fn main() {}
