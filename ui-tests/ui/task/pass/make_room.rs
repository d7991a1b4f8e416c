//! A future larger than the default awaiter slot (128 bytes) fails `cargo build` with
//! "attempt to compute `128_usize - 1026_usize`, which would overflow"; `slot = 1026` (the
//! second number) makes room. Locals: annotate the type or raise `local = N`.

async fn big() -> u8 {
    let buf = [1u8; 1024];
    std::future::ready(()).await;
    buf[10]
}

#[iomgr::task(slot = 1100, local = 64)]
async fn uses_big() -> u8 {
    let pair = (0u64, [0u8; 40]);
    let v = big().await;
    v + pair.1[0]
}

fn main() {
    assert_eq!(iomgr::Runtime::new().unwrap().block_on(uses_big()), 1);
}
