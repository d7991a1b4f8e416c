#[iomgr::task(slot = 256, local = 32)]
async fn old_style(x: u32) -> u32 {
    std::future::ready(x).await
}

fn main() {
    let _ = old_style(1);
}
