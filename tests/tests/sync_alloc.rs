//! After warm-up, the same-runtime primitives allocate nothing: making, setting and
//! awaiting promise pairs (inline values and `FutureWith`), and sending through a `chan`,
//! including waiting on a full or empty channel.
//!
//! A counting global allocator counts the allocations made on this test's thread while the
//! measured section runs.

use std::pin::pin;

use iomgr::sync::{FutureWith, chan, promise};
use iomgr::{Runtime, spawn};
use iomgr_tests::CountingAlloc;

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Allocations made on this thread while `f` runs.
async fn allocations_during<F: Future<Output = ()>>(f: F) -> usize {
    iomgr_tests::allocations_during(f).await.1
}

async fn promise_round_trips(n: u64) {
    for i in 0..n {
        let (fut, p) = promise::<(u64, [u64; 4])>();
        p.set((i, [i; 4])).unwrap();
        assert_eq!(fut.await.unwrap().0, i);
        // An abandoned pair and a broken one go back to the pool as well.
        let (fut, p) = promise::<u64>();
        drop(fut);
        assert_eq!(p.set(i), Err(i));
        let (fut, p) = promise::<u64>();
        drop(p);
        assert!(fut.await.is_err());
    }
}

#[test]
fn the_counter_sees_allocations() {
    let rt = Runtime::new().unwrap();
    let allocs = rt.block_on(allocations_during(async {
        std::hint::black_box(Box::new(1u64));
    }));
    assert_eq!(
        allocs, 1,
        "the counting allocator must count, or the tests below prove nothing"
    );
}

#[test]
fn promise_pairs_allocate_nothing_after_warm_up() {
    let rt = Runtime::new().unwrap();
    let allocs = rt.block_on(async {
        promise_round_trips(10).await; // warm-up: the pool grows to its working size
        allocations_during(promise_round_trips(1_000)).await
    });
    assert_eq!(allocs, 0, "promise pairs allocated after warm-up");
}

async fn future_with_round_trips(n: u8) {
    for i in 0..n {
        let mut fut = pin!(FutureWith::<[u8; 4096]>::new());
        let p = fut.as_mut().promise();
        p.set([i; 4096]).unwrap();
        assert_eq!(fut.await.unwrap()[4095], i);
    }
}

#[test]
fn future_with_stores_a_large_value_without_allocating() {
    let rt = Runtime::new().unwrap();
    let allocs = rt.block_on(async {
        future_with_round_trips(4).await;
        allocations_during(future_with_round_trips(200)).await
    });
    assert_eq!(allocs, 0, "FutureWith allocated for a 4 KiB value");
}

#[test]
fn channel_traffic_allocates_nothing_after_warm_up() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let (tx, rx) = chan::<u64>(2); // the ring buffer is allocated here, once
        let (back_tx, back_rx) = chan::<u64>(1);
        let echo = spawn(async move {
            while let Some(v) = rx.recv().await {
                back_tx.send(v + 1).await.unwrap();
            }
        });
        let rounds = |n: u64| {
            let tx = &tx;
            let back_rx = &back_rx;
            async move {
                for i in 0..n {
                    // Three sends into a 2-slot channel: the third waits for room.
                    tx.send(i).await.unwrap();
                    tx.send(i).await.unwrap();
                    tx.send(i).await.unwrap();
                    for _ in 0..3 {
                        assert_eq!(back_rx.recv().await, Some(i + 1));
                    }
                }
            }
        };
        rounds(10).await;
        let allocs = allocations_during(rounds(1_000)).await;
        assert_eq!(allocs, 0, "channel send/recv allocated after warm-up");
        drop(tx);
        echo.await.unwrap();
    });
}
