// The awaited future's output borrows a local that is dropped while the output is still used:
// an `async fn` rejects this, and so must a task.
#[iomgr::task]
async fn out_borrows_field(v: Vec<u8>) -> u8 {
    let s: &[u8] = std::future::ready(v.as_slice()).await;
    drop(v);
    s[0]
}

fn main() {
    drop(out_borrows_field(vec![7]));
}
