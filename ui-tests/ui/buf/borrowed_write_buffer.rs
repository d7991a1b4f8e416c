// A write takes its buffer by value too: pass `buf`, and take it back from the result.
use iomgr::net::TcpStream;

async fn handler(stream: TcpStream) {
    let buf = b"hello".to_vec();
    let _ = stream.write(&buf).await;
}

fn main() {
    drop(handler);
}
