// `write_fixed` sends from a registered buffer: a `&'static [u8]` is not one.
use iomgr::net::TcpStream;

async fn handler(stream: TcpStream) {
    let _ = stream.write_fixed(b"hello".as_slice()).await;
}

fn main() {
    drop(handler);
}
