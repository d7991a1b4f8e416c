#[iomgr::task]
fn handler(n: u32) -> u32 {
    n + 1
}

fn main() {
    let _ = handler(1);
}
