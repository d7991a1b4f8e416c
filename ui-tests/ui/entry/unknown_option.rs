#[iomgr::test(workers = 4, entries = "big")]
async fn t() {}

fn main() {}
