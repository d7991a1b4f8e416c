//! hyper's runtime hooks on iomgr: [`IomgrExecutor`] and [`IomgrTimer`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use hyper::rt::{Executor, Sleep, Timer};

/// hyper's [`Executor`]: runs each future as an iomgr task on the current thread's runtime
/// ([`iomgr::spawn`]).
///
/// hyper's HTTP/1 connections need no executor; its HTTP/2 connections (hyper's `http2`
/// feature, which this crate does not turn on) take one. The futures need not be `Send`.
///
/// # Panics
/// `execute` panics outside a runtime, as [`iomgr::spawn`] does.
#[derive(Clone, Copy, Debug, Default)]
pub struct IomgrExecutor;

impl<F> Executor<F> for IomgrExecutor
where
    F: Future + 'static,
    F::Output: 'static,
{
    fn execute(&self, future: F) {
        drop(iomgr::spawn(future)); // detached: the task runs on
    }
}

/// hyper's [`Timer`] on iomgr's io_uring timeouts ([`iomgr::time::sleep_until`]).
///
/// Give it to hyper's builders (`http1::Builder::timer`) to use their timeouts, such as
/// `header_read_timeout` (which hyper then sets to 30 s unless told otherwise).
///
/// hyper re-arms the header-read timeout for every request on a keep-alive connection. An
/// [`IomgrSleep`] pushed later does not touch the kernel: it keeps its armed timeout and,
/// when that fires early, arms a new one for the time left. A busy connection thus costs
/// one timeout op per timeout period, not one per request. Only moving a deadline earlier
/// cancels and re-arms.
#[derive(Clone, Copy, Debug, Default)]
pub struct IomgrTimer;

impl Timer for IomgrTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        Box::pin(IomgrSleep::new(deadline_after(duration)))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        Box::pin(IomgrSleep::new(deadline))
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<IomgrSleep>() {
            Some(ours) => ours.get_mut().deadline = new_deadline,
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

/// `now + duration`, or a time too far away to matter when that does not fit in an `Instant`.
fn deadline_after(duration: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(duration)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// The [`Sleep`] of [`IomgrTimer`]: completes at its deadline, which
/// [`Timer::reset`] may move.
///
/// hyper requires sleeps to be `Send + Sync`, while an iomgr timer op belongs to the runtime
/// of the thread that submitted it. An `IomgrSleep` therefore arms its op on the first poll,
/// remembers that thread, and must be polled there only (it panics otherwise). Dropped on
/// another thread with its op armed, it leaks the op rather than touch another thread's
/// runtime. Neither happens when hyper drives it: a connection on iomgr is `!Send`, so its
/// timers stay on its thread.
pub struct IomgrSleep {
    /// When the sleep completes.
    deadline: Instant,
    /// The armed timeout, once polled (`None` before): its box is allocated once and reused
    /// for every re-arm.
    armed: Option<Armed>,
}

struct Armed {
    thread: ThreadId,
    /// When `timer` fires; `None` once it has fired (it must not be polled again).
    fires_at: Option<Instant>,
    timer: Pin<Box<iomgr::time::Sleep>>,
}

// SAFETY: what is not `Send` is the armed timer (`Armed::timer`: an io_uring op holding an
// `Rc` to its thread's runtime). It is touched only on the thread that armed it: `poll`
// checks `Armed::thread` and panics before touching it, and `drop` on another thread leaks
// the box (the `Rc` is never used there, and memory the kernel may read stays allocated).
// `reset` only writes `deadline`, plain data.
unsafe impl Send for IomgrSleep {}

// SAFETY: no method reads the armed timer through a shared reference (`Debug` reads only
// `deadline`), so sharing `&IomgrSleep` between threads exposes nothing thread-bound.
unsafe impl Sync for IomgrSleep {}

impl Sleep for IomgrSleep {}

impl IomgrSleep {
    /// A sleep until `deadline`; nothing is armed before it is polled.
    pub fn new(deadline: Instant) -> Self {
        IomgrSleep {
            deadline,
            armed: None,
        }
    }

    /// When the sleep completes.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Moves the deadline (earlier or later); takes effect at the next poll.
    pub fn reset(&mut self, deadline: Instant) {
        self.deadline = deadline;
    }
}

impl Future for IomgrSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            let deadline = this.deadline;
            let Some(armed) = &mut this.armed else {
                if Instant::now() >= deadline {
                    return Poll::Ready(());
                }
                this.armed = Some(Armed {
                    thread: thread::current().id(),
                    fires_at: Some(deadline),
                    timer: Box::pin(iomgr::time::sleep_until(deadline)),
                });
                continue;
            };
            assert!(
                armed.thread == thread::current().id(),
                "iomgr-hyper: an IomgrSleep was polled on a thread other than the one whose \
                 runtime armed it"
            );
            match armed.fires_at {
                // Armed for the deadline or earlier: wait for it (then check the time).
                Some(fires_at) if fires_at <= deadline => {
                    ready!(armed.timer.as_mut().poll(cx));
                    armed.fires_at = None;
                }
                // Fired already, or armed for later than a deadline moved earlier: re-arm
                // (dropping an armed timer cancels its op).
                _ => {
                    if Instant::now() >= deadline {
                        return Poll::Ready(());
                    }
                    armed.fires_at = Some(deadline);
                    armed.timer.set(iomgr::time::sleep_until(deadline));
                }
            }
        }
    }
}

impl Drop for IomgrSleep {
    fn drop(&mut self) {
        if let Some(armed) = self.armed.take()
            && armed.thread != thread::current().id()
        {
            // Another thread's runtime owns the op: leave it (and its memory) alone.
            std::mem::forget(armed);
        }
    }
}

impl fmt::Debug for IomgrSleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IomgrSleep")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}
