//! Timers on io_uring timeouts: [`sleep`], [`sleep_until`] and [`timeout`].
//!
//! Each timer is an `IORING_OP_TIMEOUT` op: no timer wheel in user space, no timer thread.
//! Dropping a timer cancels its op like any other. A timer fires only when its time has
//! passed: a duration too long to represent (`Duration::MAX`) never fires, and an op that
//! fails for a passing reason (a saturated ring) is re-armed for the time left, never taken
//! for expiry.
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
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use crate::op::{Op, Timeout};

/// Future returned by [`sleep`] and [`sleep_until`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    op: Op<'static, Timeout>,
    /// When the sleep ends; `None` when that is too far away to represent (`Duration::MAX`).
    deadline: Option<Instant>,
}

/// Completes after `duration`. `Duration::MAX` (or anything too far away to represent)
/// never completes.
///
/// # Panics
/// When polled outside a runtime, or if the kernel refuses the timer for a reason other
/// than a passing shortage (which is retried): a timer never reports "the time passed"
/// when it did not.
pub fn sleep(duration: Duration) -> Sleep {
    Sleep {
        op: Op::new(Timeout::new(duration)),
        deadline: Instant::now().checked_add(duration),
    }
}

/// Completes at `deadline` (at once if it has passed).
///
/// # Panics
/// As for [`sleep`].
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        op: Op::new(Timeout::new(
            deadline.saturating_duration_since(Instant::now()),
        )),
        deadline: Some(deadline),
    }
}

/// What to do about a timer op that ended in an error.
enum TimerFailure {
    /// A passing condition (a saturated ring, a cancellation by someone else, no memory
    /// right now, a completion the kernel lost): arm a new timer for the time left, on the
    /// next tick.
    Retry,
    /// Nothing a retry would fix.
    Fatal,
}

fn classify(error: &io::Error) -> TimerFailure {
    if error.kind() == io::ErrorKind::WouldBlock || crate::op::lost_or_swept(error) {
        return TimerFailure::Retry;
    }
    match error.raw_os_error() {
        Some(libc::EAGAIN | libc::EBUSY | libc::EINTR | libc::ENOMEM | libc::ECANCELED) => {
            TimerFailure::Retry
        }
        _ => TimerFailure::Fatal,
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: structural pinning: `op` is never moved out of the pinned `Sleep` (it is
        // only replaced in place through `Pin::set`); `deadline` is plain data.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: `op` is pinned because `self` is.
        let mut op = unsafe { Pin::new_unchecked(&mut this.op) };
        let error = match ready!(op.as_mut().poll(cx)) {
            Ok(()) => return Poll::Ready(()),
            Err(error) => error,
        };
        // An error is never read as "the time passed": only the clock says so.
        let left = match this.deadline {
            Some(deadline) => deadline.saturating_duration_since(Instant::now()),
            None => Duration::MAX,
        };
        if left.is_zero() {
            return Poll::Ready(());
        }
        match classify(&error) {
            TimerFailure::Retry => {
                // The finished op is replaced by a fresh one, submitted at the next poll;
                // yielding first lets the runtime reap and make room.
                op.set(Op::new(Timeout::new(left)));
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            TimerFailure::Fatal => panic!("iomgr: a timer could not be armed: {error}"),
        }
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
/// its in-flight ops, is dropped, which cancels them safely). `Duration::MAX` never
/// elapses.
///
/// # Panics
/// As for [`sleep`].
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
