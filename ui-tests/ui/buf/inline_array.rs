// An inline array moves with the future, so the kernel could write into stale memory.
use iomgr::net::TcpStream;

async fn handler(stream: TcpStream) {
    let buf = [0u8; 64];
    let _ = stream.read(buf).await;
}

fn main() {
    drop(handler);
}
