#[iomgr::task]
async fn countdown(n: u32) -> u32 {
    if n > 0 {
        let child: CountdownTask = self::countdown(n - 1);
        return iomgr::spawn(child).await.unwrap() + 1;
    }
    std::future::ready(0).await
}

fn main() {
    let _ = countdown(3);
}
