//! Timers on io_uring timeouts.

use std::time::{Duration, Instant};

use iomgr::Runtime;
use iomgr::time::{sleep, sleep_until, timeout};

#[test]
fn sleep_waits_at_least_its_duration() {
    let rt = Runtime::new().unwrap();
    let start = Instant::now();
    rt.block_on(sleep(Duration::from_millis(30)));
    assert!(start.elapsed() >= Duration::from_millis(30));
    let deadline = Instant::now() + Duration::from_millis(10);
    rt.block_on(sleep_until(deadline));
    assert!(Instant::now() >= deadline);
}

#[test]
fn many_timers_fire_in_deadline_order() {
    let rt = Runtime::new().unwrap();
    let order = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    rt.block_on(async {
        let handles: Vec<_> = [40u64, 10, 30, 0, 20]
            .into_iter()
            .map(|ms| {
                let order = order.clone();
                iomgr::spawn(async move {
                    sleep(Duration::from_millis(ms)).await;
                    order.borrow_mut().push(ms);
                })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
    });
    assert_eq!(*order.borrow(), vec![0, 10, 20, 30, 40]);
}

#[test]
fn timeout_gives_the_output_or_elapsed() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let quick = timeout(Duration::from_secs(5), async { 7 }).await;
        assert_eq!(quick, Ok(7));
        let slow = timeout(Duration::from_millis(5), std::future::pending::<()>()).await;
        let err = slow.unwrap_err();
        assert_eq!(
            err.to_string(),
            "deadline elapsed before the operation completed"
        );
        let io_err: std::io::Error = err.into();
        assert_eq!(io_err.kind(), std::io::ErrorKind::TimedOut);
    });
    assert_eq!(
        rt.ops_in_flight(),
        0,
        "the losing timer was cancelled and reaped"
    );
}

#[test]
fn timeout_of_duration_max_lets_the_future_finish() {
    // `Duration::MAX` once became a negative timespec; the kernel's EINVAL was then read as
    // "the time ran out", so the future was dropped at once.
    let rt = Runtime::new().unwrap();
    let out = rt.block_on(timeout(Duration::MAX, async {
        sleep(Duration::from_millis(20)).await;
        7
    }));
    assert_eq!(out, Ok(7));
    // The unfired timer was cancelled; one more turn of the ring reaps it.
    rt.block_on(sleep(Duration::from_millis(1)));
    assert_eq!(rt.ops_in_flight(), 0, "the unfired timer was cancelled");
}

#[test]
fn sleep_of_duration_max_does_not_beat_a_short_sleep() {
    use iomgr::future::{Either, select};

    let rt = Runtime::new().unwrap();
    let start = Instant::now();
    let winner = rt.block_on(async {
        match select(sleep(Duration::MAX), sleep(Duration::from_millis(20))).await {
            Either::Left(_) => "forever",
            Either::Right(_) => "short",
        }
    });
    assert_eq!(winner, "short");
    assert!(start.elapsed() >= Duration::from_millis(20));
    // A deadline so far out that `Instant + Duration` would overflow is "never" too.
    let out = rt.block_on(timeout(Duration::from_secs(u64::MAX / 2), async { 1 }));
    assert_eq!(out, Ok(1));
}

#[test]
fn a_timer_that_cannot_be_armed_is_never_taken_for_expiry() {
    use std::future::Future;
    use std::task::{Context, Waker};

    // Outside a runtime the timer op fails. The sleep once completed at once ("the time
    // passed"); the failure must surface instead.
    let polled = std::panic::catch_unwind(|| {
        let mut s = std::pin::pin!(sleep(Duration::from_secs(3600)));
        s.as_mut().poll(&mut Context::from_waker(Waker::noop()))
    });
    let err = polled.expect_err("an unarmed timer must not report that an hour passed");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("no iomgr runtime"), "{msg}");
}
