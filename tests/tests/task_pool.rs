//! `#[iomgr::task(pool = N)]`: spawning from per-thread static storage allocates nothing;
//! the N+1th concurrent spawn is an error naming the task and N; slots are reused.

use iomgr::Runtime;
use iomgr::sync::{Receiver, Sender, chan};
use iomgr_tests::{CountingAlloc, allocations_during};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

#[iomgr::task(pool = 4)]
async fn double(x: u64) -> u64 {
    iomgr::yield_now().await;
    x * 2
}

#[iomgr::task(pool = 2)]
async fn wait_for(rx: Receiver<u32>) -> Option<u32> {
    rx.recv().await
}

#[test]
fn spawning_from_a_pool_allocates_nothing() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        // Warm up: the runtime's task table and queues grow to their working size.
        for round in 0..3 {
            let handles = [
                double(1).spawn().unwrap(),
                double(2).spawn().unwrap(),
                double(3).spawn().unwrap(),
                double(4).spawn().unwrap(),
            ];
            let mut sum = 0;
            for h in handles {
                sum += h.await.unwrap();
            }
            assert_eq!(sum, 20, "round {round}");
        }
        let (sum, allocations) = allocations_during(async {
            let mut sum = 0;
            for i in 0..100u64 {
                let a = double(i).spawn().unwrap();
                let b = double(i + 1).spawn().unwrap();
                sum += a.await.unwrap() + b.await.unwrap();
            }
            sum
        })
        .await;
        assert_eq!(sum, (0..100u64).map(|i| 4 * i + 2).sum::<u64>());
        assert_eq!(
            allocations, 0,
            "allocations while spawning 200 pooled tasks"
        );
    });
}

#[test]
fn the_n_plus_first_spawn_is_an_error_naming_the_task_and_n() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let (tx1, rx1): (Sender<u32>, Receiver<u32>) = chan(1);
        let (tx2, rx2) = chan(1);
        let (_tx3, rx3) = chan(1);
        let a = wait_for(rx1).spawn().unwrap();
        let b = wait_for(rx2).spawn().unwrap();
        let err = wait_for(rx3).spawn().unwrap_err();
        assert_eq!(err.task(), "wait_for");
        assert_eq!(err.pool_size(), 2);
        let msg = err.to_string();
        assert!(
            msg.contains("`wait_for`") && msg.contains("pool = 2"),
            "{msg}"
        );
        tx1.send(7).await.unwrap();
        assert_eq!(a.await.unwrap(), Some(7));
        // `a` finished and its handle is gone: its slot is free again.
        let (tx4, rx4) = chan(1);
        let c = wait_for(rx4).spawn().unwrap();
        b.abort();
        assert!(b.await.unwrap_err().is_cancelled());
        tx4.send(9).await.unwrap();
        assert_eq!(c.await.unwrap(), Some(9));
        drop(tx2);
    });
}
