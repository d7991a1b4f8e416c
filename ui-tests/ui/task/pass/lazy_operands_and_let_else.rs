//! `.await` on the right of `&&`/`||` runs only when needed; a `let`-`else` may await in
//! its `else` block.

use std::cell::Cell;

#[iomgr::task]
async fn both(a: bool, hits: &Cell<u32>) -> (bool, bool) {
    let and = a && async { hits.set(hits.get() + 1); true }.await;
    let or = a || async { hits.set(hits.get() + 10); false }.await;
    (and, or)
}

#[iomgr::task]
async fn first_even(xs: Vec<u32>) -> u32 {
    let Some(x) = xs.iter().copied().find(|x| x % 2 == 0) else {
        let fallback = std::future::ready(99).await;
        return fallback;
    };
    x + std::future::ready(0).await
}

fn main() {
    let rt = iomgr::Runtime::new().unwrap();
    let hits = Cell::new(0);
    assert_eq!(rt.block_on(both(true, &hits)), (true, true));
    assert_eq!(hits.get(), 1);
    assert_eq!(rt.block_on(both(false, &hits)), (false, false));
    assert_eq!(hits.get(), 11);
    assert_eq!(rt.block_on(first_even(vec![1, 4, 6])), 4);
    assert_eq!(rt.block_on(first_even(vec![1, 3])), 99);
}
