#[iomgr::task(slots = 512)]
async fn handler() {}

fn main() {}
