#[iomgr::task]
async fn total(xs: Vec<u32>) -> u32 {
    xs.iter().map(|x| std::future::ready(*x).await).sum()
}

fn main() {
    let _ = total(vec![]);
}
