use iomgr::pipeline::iter;

fn main() {
    let _ = iomgr::pipeline! { iter([1u32, 2]) => |x| x + 1 => |x| println!("{x}") };
}
