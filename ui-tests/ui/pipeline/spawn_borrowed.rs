use iomgr::net::TcpStream;
use iomgr::pipeline::Lines;

fn serve(stream: TcpStream) {
    let _handle = iomgr::pipeline! {
        &stream => Lines::new(64) => |l| l + "\n" => &stream
    }
    .spawn();
}

fn main() {}
