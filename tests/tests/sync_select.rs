//! Racing real ops: the losers are dropped, and a dropped op is cancelled safely.

use std::time::{Duration, Instant};

use iomgr::future::{Either, join, race, select};
use iomgr::net::TcpListener;
use iomgr::sync::{chan, promise};
use iomgr::time::sleep;
use iomgr::{Runtime, spawn};

#[test]
fn a_receive_raced_against_a_timer_times_out_and_takes_nothing() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let (tx, rx) = chan::<u32>(1);
        let start = Instant::now();
        let out = select(rx.recv(), sleep(Duration::from_millis(20))).await;
        assert!(
            matches!(out, Either::Right(())),
            "nothing was sent: the timer wins"
        );
        assert!(start.elapsed() >= Duration::from_millis(20));
        // The losing receive left no waiter behind: a later send is not swallowed.
        tx.try_send(5).unwrap();
        assert_eq!(rx.len(), 1);
        assert_eq!(rx.recv().await, Some(5));
    });
}

#[test]
fn an_accept_that_loses_a_race_is_cancelled_in_the_kernel() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let out = iomgr::select! {
            r = listener.accept() => Some(r.map(|(_, a)| a)),
            _ = sleep(Duration::from_millis(10)) => None,
        };
        assert!(out.is_none(), "no client connected: the timer wins");
        // The accept was dropped in flight; its cancellation completes shortly.
        let deadline = Instant::now() + Duration::from_secs(2);
        while rt.ops_in_flight() > 0 {
            assert!(
                Instant::now() < deadline,
                "the losing accept was never cancelled"
            );
            iomgr::yield_now().await;
        }
    });
}

#[test]
fn join_and_race_over_tasks_promises_and_timers() {
    let rt = Runtime::new().unwrap();
    let (a, b) = rt.block_on(async {
        let (fut, p) = promise::<&str>();
        spawn(async move {
            sleep(Duration::from_millis(5)).await;
            p.set("late").unwrap();
        });
        let quick = race(sleep(Duration::from_secs(5)), async {});
        join(fut, quick).await
    });
    assert_eq!(a.unwrap(), "late");
    let () = b;
}
