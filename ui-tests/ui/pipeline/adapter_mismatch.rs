use iomgr::pipeline::{Lines, iter};

fn main() {
    let mut out: Vec<String> = Vec::new();
    let _ = iomgr::pipeline! { iter([1u32, 2, 3]) => Lines::new(64) => &mut out };
}
