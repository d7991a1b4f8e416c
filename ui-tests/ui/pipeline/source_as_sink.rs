use iomgr::pipeline::iter;
use iomgr::sync::chan;

fn main() {
    let (_tx, rx) = chan::<u32>(8);
    let _ = iomgr::pipeline! { iter([1u32, 2]) => |x| x + 1 => rx };
}
