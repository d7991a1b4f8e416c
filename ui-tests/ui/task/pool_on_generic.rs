#[iomgr::task(pool = 4)]
async fn relay<T: Clone>(value: T) -> T {
    std::future::ready(value).await
}

fn main() {}
