use iomgr::net::TcpStream;

#[iomgr::task]
async fn read_into(stream: TcpStream) -> std::io::Result<usize> {
    let mut buf = vec![0u8; 1024];
    let (res, _) = stream.read(&mut buf).await;
    res
}

fn main() {}
