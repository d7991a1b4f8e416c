use iomgr::pipeline::{Lines, iter};

fn main() {
    let mut out: Vec<u32> = Vec::new();
    let _ = iomgr::pipeline! { iter(["1\n", "2\n"]) => Lines::new(8) => &mut out };
}
