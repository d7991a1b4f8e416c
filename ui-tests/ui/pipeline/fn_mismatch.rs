use iomgr::pipeline::iter;

fn parse(bytes: Vec<u8>) -> usize {
    bytes.len()
}

fn main() {
    let mut out: Vec<usize> = Vec::new();
    let _ = iomgr::pipeline! { iter(["one", "two"]) => parse => &mut out };
}
