//! A task is exactly as large as the `async fn`'s future, however large the futures it awaits
//! or the locals it keeps: no size to write, and the size is a constant.

async fn big() -> u8 {
    let buf = [1u8; 1024];
    std::future::ready(()).await;
    buf[10]
}

#[iomgr::task]
async fn uses_big() -> u8 {
    let pair = (0u64, [0u8; 40]);
    let v = big().await;
    v + pair.1[0]
}

async fn uses_big_plain() -> u8 {
    let pair = (0u64, [0u8; 40]);
    let v = big().await;
    v + pair.1[0]
}

const SIZE: usize = std::mem::size_of::<UsesBigTask>();

fn main() {
    assert_eq!(SIZE, std::mem::size_of_val(&uses_big_plain()));
    assert!(SIZE > 1024);
    assert_eq!(iomgr::Runtime::new().unwrap().block_on(uses_big()), 1);
}
