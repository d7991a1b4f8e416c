use iomgr::sync::chan;

fn main() {
    let (tx, _rx) = chan::<String>(8);
    let mut out: Vec<String> = Vec::new();
    let _ = iomgr::pipeline! { tx => |s: String| s.to_uppercase() => &mut out };
}
