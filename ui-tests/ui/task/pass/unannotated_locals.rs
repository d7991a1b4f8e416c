//! Locals whose type nobody wrote can live across `.await`s: their type is inferred, and
//! they are stored in fixed-size slots (`local = N` bytes each).

#[iomgr::task]
async fn collect() -> Vec<String> {
    let mut names = Vec::new();
    let prefix = String::from("n");
    for i in 0..3 {
        let suffix = std::future::ready(i).await;
        names.push(format!("{prefix}{suffix}"));
    }
    names
}

fn main() {
    let out = iomgr::Runtime::new().unwrap().block_on(collect());
    assert_eq!(out, ["n0", "n1", "n2"]);
}
