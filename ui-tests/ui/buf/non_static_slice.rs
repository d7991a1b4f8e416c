// A borrowed slice is only a buffer when it is `'static` (a literal, a leaked box).
use iomgr::net::TcpStream;

async fn handler(stream: TcpStream, data: Vec<u8>) {
    let _ = stream.write_all(&data[..]).await;
}

fn main() {
    drop(handler);
}
