#[iomgr::task]
async fn parse(text: String) -> usize {
    let n: usize = text;
    std::future::ready(()).await;
    n
}

fn main() {
    let _ = parse(String::new());
}
