use iomgr::net::TcpStream;
use iomgr::pipeline::Lines;

async fn lookup(line: String) -> usize {
    line.len()
}

async fn serve(stream: &TcpStream, line: String) {
    let mut out: Vec<usize> = Vec::new();
    let _ = iomgr::pipeline! { stream => Lines::new(64) => lookup(line).await => &mut out };
}

fn main() {}
