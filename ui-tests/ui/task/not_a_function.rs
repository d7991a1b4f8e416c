#[iomgr::task]
struct Handler;

fn main() {}
