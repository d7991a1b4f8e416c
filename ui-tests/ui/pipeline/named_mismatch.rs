use iomgr::net::TcpStream;
use iomgr::pipeline::Lines;

fn count(line: Vec<u8>) -> usize {
    line.len()
}

iomgr::pipeline! {
    pub Counter(stream: TcpStream) = &stream => Lines::new(64) => count => &stream;
}

fn main() {}
