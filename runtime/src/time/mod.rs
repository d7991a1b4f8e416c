//! Timers on io_uring timeouts: [`sleep`], [`sleep_until`] and [`timeout`].
//!
//! Each timer is an `IORING_OP_TIMEOUT` op: no timer wheel in user space, no timer thread.
//! Dropping a timer cancels its op like any other.
//!
//! ```
//! use std::time::Duration;
//! # iomgr::Runtime::new()?.block_on(async {
//! let never = std::future::pending::<()>();
//! let res = iomgr::time::timeout(Duration::from_millis(5), never).await;
//! assert!(res.is_err());
//! # });
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::op::{Op, Timeout};

/// Future returned by [`sleep`] and [`sleep_until`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    op: Op<'static, Timeout>,
}

/// Completes after `duration`.
pub fn sleep(duration: Duration) -> Sleep {
    Sleep {
        op: Op::new(Timeout::new(duration)),
    }
}

/// Completes at `deadline` (at once if it has passed).
pub fn sleep_until(deadline: Instant) -> Sleep {
    sleep(deadline.saturating_duration_since(Instant::now()))
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: structural pinning: `op` is never moved out of the pinned `Sleep`.
        let op = unsafe { self.map_unchecked_mut(|s| &mut s.op) };
        // A timer that fails (no runtime, a saturated ring) completes at once rather than
        // never: a missed wake-up is worse than an early one.
        op.poll(cx).map(drop)
    }
}

/// The error of a [`timeout`] whose time ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elapsed(());

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline elapsed before the operation completed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(e: Elapsed) -> Self {
        std::io::Error::new(std::io::ErrorKind::TimedOut, e)
    }
}

/// Runs `future` for at most `duration`: its output, or [`Elapsed`] (and the future, with
/// its in-flight ops, is dropped, which cancels them safely).
pub fn timeout<F: Future>(duration: Duration, future: F) -> TimeoutFuture<F> {
    TimeoutFuture {
        future,
        sleep: sleep(duration),
    }
}

/// Future returned by [`timeout`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct TimeoutFuture<F> {
    future: F,
    sleep: Sleep,
}

impl<F: Future> Future for TimeoutFuture<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: structural pinning: neither field is moved out of the pinned struct.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: `future` is pinned because `self` is.
        let future = unsafe { Pin::new_unchecked(&mut this.future) };
        if let Poll::Ready(output) = future.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        // SAFETY: `sleep` is pinned because `self` is.
        let sleep = unsafe { Pin::new_unchecked(&mut this.sleep) };
        sleep.poll(cx).map(|()| Err(Elapsed(())))
    }
}
