use iomgr::net::TcpStream;

#[iomgr::task]
async fn read_twice(stream: TcpStream) -> std::io::Result<usize> {
    let buf = vec![0u8; 1024];
    let (res, _b) = stream.read(buf).await;
    let n = res?;
    Ok(n + buf.len())
}

fn main() {}
