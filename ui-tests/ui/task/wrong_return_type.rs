#[iomgr::task]
async fn answer() -> u32 {
    std::future::ready(()).await;
    "forty-two"
}

#[iomgr::task]
async fn early(flag: bool) -> u32 {
    if flag {
        return "early";
    }
    std::future::ready(1).await
}

fn main() {
    let _ = answer();
    let _ = early(true);
}
