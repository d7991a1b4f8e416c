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
