#[iomgr::task]
async fn count(text: &str) -> usize {
    std::future::ready(()).await;
    text.len()
}

fn main() {
    iomgr::Runtime::new().unwrap().block_on(async {
        let text = String::from("hello");
        let handle = iomgr::spawn(count(&text));
        handle.await.unwrap();
    });
}
