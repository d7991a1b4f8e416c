use iomgr::pipeline::iter;

fn main() {
    let mut out: Vec<u32> = Vec::new();
    let _ = iomgr::pipeline! { iter([1u32, 2]) => => &mut out };
}
