// The op owns the buffer while it runs; use the one it gives back.
use iomgr::net::TcpStream;

async fn handler(stream: TcpStream) {
    let buf = vec![0u8; 1024];
    let (res, _returned) = stream.read(buf).await;
    let _ = res;
    println!("{}", buf.len());
}

fn main() {
    drop(handler);
}
