#[iomgr::task]
async fn show() {
    println!("{}", std::future::ready(1).await);
}

fn main() {
    let _ = show();
}
