#[iomgr::task]
async fn longest(words: Vec<String>) -> usize {
    let first = &words[0];
    std::future::ready(()).await;
    first.len()
}

fn main() {
    let _ = longest(vec![]);
}
