#[iomgr::task(pool = 8)]
async fn greet(name: &str) -> usize {
    std::future::ready(()).await;
    name.len()
}

fn main() {}
