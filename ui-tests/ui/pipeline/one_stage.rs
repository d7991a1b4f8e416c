use iomgr::pipeline::iter;

fn main() {
    let _ = iomgr::pipeline! { iter([1, 2, 3]) };
}
