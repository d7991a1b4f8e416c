#[iomgr::task]
async fn first(xs: Vec<u32>) -> Result<u32, String> {
    let x = xs.first()?;
    std::future::ready(()).await;
    Ok(*x)
}

fn main() {
    let _ = first(vec![]);
}
