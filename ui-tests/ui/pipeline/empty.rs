fn main() {
    let _ = iomgr::pipeline! {};
}
