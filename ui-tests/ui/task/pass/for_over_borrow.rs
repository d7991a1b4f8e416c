#[iomgr::task]
async fn sum(xs: Vec<u32>) -> u32 {
    let mut total = 0;
    for x in &xs {
        total += std::future::ready(*x).await;
    }
    total
}

fn main() {
    let _ = sum(vec![]);
}
