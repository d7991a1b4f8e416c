// A read takes its buffer by value: the kernel writes into it after the call returns.
use iomgr::net::TcpStream;

async fn handler(stream: TcpStream) {
    let mut buf = vec![0u8; 1024];
    let _ = stream.read(&mut buf).await;
}

fn main() {
    drop(handler);
}
