#[iomgr::main]
fn main() {}
