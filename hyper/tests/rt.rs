//! `IomgrTimer`, `IomgrSleep` and `IomgrExecutor`: hyper's runtime hooks on iomgr.

use std::cell::Cell;
use std::future::poll_fn;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use hyper::rt::{Executor, Sleep, Timer};
use iomgr_hyper::{ConnectionTimer, IomgrExecutor, IomgrSleep, IomgrTimer};

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn the_sleep_is_what_hyper_asks_for() {
    assert_send_sync::<IomgrSleep>();
    assert_send_sync::<IomgrTimer>();
    assert_send_sync::<ConnectionTimer>();
}

/// Awaits `sleep` and returns how long it took.
async fn time(sleep: &mut Pin<Box<dyn Sleep>>) -> Duration {
    let started = Instant::now();
    sleep.as_mut().await;
    started.elapsed()
}

#[iomgr::test]
async fn sleep_and_sleep_until_complete_on_time() {
    let mut sleep = IomgrTimer.sleep(Duration::from_millis(30));
    let took = time(&mut sleep).await;
    assert!(took >= Duration::from_millis(29), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");

    let mut sleep = IomgrTimer.sleep_until(Instant::now() + Duration::from_millis(30));
    let took = time(&mut sleep).await;
    assert!(took >= Duration::from_millis(29), "{took:?}");

    // A deadline in the past completes at once, and arms nothing.
    let mut past = IomgrTimer.sleep_until(Instant::now() - Duration::from_millis(5));
    let took = time(&mut past).await;
    assert!(took < Duration::from_millis(20), "{took:?}");
}

#[iomgr::test]
async fn reset_later_waits_for_the_new_deadline() {
    let timer = IomgrTimer;
    let mut sleep = timer.sleep(Duration::from_millis(20));
    // Arm it: the kernel timer is set for 20 ms.
    assert!(poll_once(&mut sleep).await.is_pending());
    let started = Instant::now();
    timer.reset(&mut sleep, started + Duration::from_millis(80));
    let took = time(&mut sleep).await;
    assert!(
        took >= Duration::from_millis(79),
        "fired at the old deadline: {took:?}"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[iomgr::test]
async fn reset_earlier_fires_earlier() {
    let timer = IomgrTimer;
    let mut sleep = timer.sleep(Duration::from_secs(30));
    assert!(poll_once(&mut sleep).await.is_pending());
    let started = Instant::now();
    timer.reset(&mut sleep, started + Duration::from_millis(20));
    let took = time(&mut sleep).await;
    assert!(took >= Duration::from_millis(19), "{took:?}");
    assert!(
        took < Duration::from_secs(2),
        "waited for the old deadline: {took:?}"
    );
}

#[iomgr::test]
async fn a_fired_sleep_can_be_reset_and_awaited_again() {
    let timer = IomgrTimer;
    let mut sleep = timer.sleep(Duration::from_millis(5));
    time(&mut sleep).await;
    for _ in 0..3 {
        timer.reset(&mut sleep, Instant::now() + Duration::from_millis(15));
        let took = time(&mut sleep).await;
        assert!(took >= Duration::from_millis(14), "{took:?}");
    }
}

/// hyper's reset of a foreign sleep replaces it; ours is reused in place.
#[iomgr::test]
async fn reset_keeps_the_same_sleep() {
    let timer = IomgrTimer;
    let mut sleep = timer.sleep(Duration::from_millis(50));
    let before: *const dyn Sleep = &*sleep;
    timer.reset(&mut sleep, Instant::now() + Duration::from_millis(10));
    let after: *const dyn Sleep = &*sleep;
    assert!(std::ptr::addr_eq(before, after));
    assert!(sleep.as_mut().downcast_mut_pin::<IomgrSleep>().is_some());
    time(&mut sleep).await;
}

/// Dropping an armed sleep cancels its timer op.
#[test]
fn dropping_an_armed_sleep_cancels_its_op() {
    let rt = iomgr::Runtime::new().unwrap();
    rt.block_on(async {
        let mut sleep = IomgrTimer.sleep(Duration::from_secs(60));
        assert!(poll_once(&mut sleep).await.is_pending());
        assert_eq!(rt.ops_in_flight(), 1);
        drop(sleep);
        for _ in 0..100 {
            if rt.ops_in_flight() == 0 {
                return;
            }
            iomgr::yield_now().await;
        }
        panic!("the timer op was not cancelled");
    });
}

/// Ops of this runtime in flight, once the runtime has had a tick to settle cancellations.
async fn settled_ops(rt: &iomgr::Runtime) -> usize {
    for _ in 0..3 {
        iomgr::yield_now().await;
    }
    rt.ops_in_flight()
}

/// A `ConnectionTimer` keeps the armed timeout of a dropped sleep and its next sleep
/// adopts it: hyper's sleep-per-request arms one kernel timeout, not one per request.
#[test]
fn a_connection_timer_hands_its_armed_timeout_on() {
    let rt = iomgr::Runtime::new().unwrap();
    rt.block_on(async {
        let timer = ConnectionTimer::new();
        for _ in 0..100 {
            let mut sleep = timer.sleep(Duration::from_secs(30));
            assert!(poll_once(&mut sleep).await.is_pending());
            drop(sleep);
            assert_eq!(settled_ops(&rt).await, 1, "one timeout, kept");
        }
        // The plain timer arms and cancels one per sleep.
        for _ in 0..3 {
            let mut sleep = IomgrTimer.sleep(Duration::from_secs(30));
            assert!(poll_once(&mut sleep).await.is_pending());
            drop(sleep);
        }
        assert_eq!(
            settled_ops(&rt).await,
            1,
            "the plain timer's were cancelled"
        );
        // Dropping the timer cancels the timeout it kept.
        drop(timer);
        assert_eq!(settled_ops(&rt).await, 0);
    });
}

/// An adopted timeout that fires before the new sleep's deadline is re-armed for the rest;
/// one that would fire after a nearer deadline is replaced.
#[iomgr::test]
async fn an_adopted_timeout_keeps_the_new_deadline() {
    let timer = ConnectionTimer::new();
    let mut first = timer.sleep(Duration::from_millis(30));
    assert!(poll_once(&mut first).await.is_pending());
    drop(first);
    let mut later = timer.sleep(Duration::from_millis(120));
    let took = time(&mut later).await;
    assert!(
        took >= Duration::from_millis(119),
        "fired at the adopted time: {took:?}"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");

    let mut far = timer.sleep(Duration::from_secs(30));
    assert!(poll_once(&mut far).await.is_pending());
    drop(far);
    let mut near = timer.sleep(Duration::from_millis(20));
    let took = time(&mut near).await;
    assert!(took >= Duration::from_millis(19), "{took:?}");
    assert!(
        took < Duration::from_secs(2),
        "waited for the adopted 30 s: {took:?}"
    );
}

/// Armed on one thread, polled on another: a panic with a clear message, not a data race;
/// dropped there, it leaks the op instead of touching the first thread's runtime.
#[test]
fn a_sleep_polled_on_another_thread_panics() {
    let rt = iomgr::Runtime::new().unwrap();
    let mut sleep = IomgrTimer.sleep(Duration::from_secs(60));
    rt.block_on(async { assert!(poll_once(&mut sleep).await.is_pending()) });
    std::thread::spawn(move || {
        let mut cx = Context::from_waker(Waker::noop());
        let polled = catch_unwind(AssertUnwindSafe(|| sleep.as_mut().poll(&mut cx)));
        let message = *polled.unwrap_err().downcast::<&str>().unwrap();
        assert!(
            message.contains("polled on a thread other than"),
            "{message}"
        );
        drop(sleep);
    })
    .join()
    .unwrap();
}

#[iomgr::test]
async fn the_executor_spawns_iomgr_tasks() {
    let ran = Rc::new(Cell::new(false));
    let flag = ran.clone();
    // Not `Send`: the task runs on this thread.
    IomgrExecutor.execute(async move { flag.set(true) });
    for _ in 0..10 {
        if ran.get() {
            return;
        }
        iomgr::yield_now().await;
    }
    panic!("the executed future never ran");
}

/// Polls `sleep` once (arming it), without waiting.
async fn poll_once(sleep: &mut Pin<Box<dyn Sleep>>) -> Poll<()> {
    poll_fn(|cx| Poll::Ready(sleep.as_mut().poll(cx))).await
}
