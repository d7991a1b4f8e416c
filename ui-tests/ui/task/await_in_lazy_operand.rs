#[iomgr::task]
async fn both(a: bool) -> bool {
    a && std::future::ready(true).await
}

fn main() {
    let _ = both(true);
}
