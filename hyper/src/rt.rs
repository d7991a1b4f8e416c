//! hyper's runtime hooks on iomgr: [`IomgrExecutor`], [`IomgrTimer`] and
//! [`ConnectionTimer`].

use std::fmt;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
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

/// hyper's [`Timer`] on iomgr's io_uring timeouts ([`iomgr::time::sleep_until`]): each
/// [`IomgrSleep`] arms a kernel timeout of its own when first polled.
///
/// Give it to hyper's builders (`http1::Builder::timer`) to use their timeouts, such as
/// `header_read_timeout` (which hyper then sets to 30 s unless told otherwise).
///
/// hyper makes a new sleep for the header-read timeout of every request on a keep-alive
/// connection and drops it when the head has arrived, so with this timer each request arms
/// and cancels one kernel timeout (about 10 µs of server CPU per request in
/// `benches/src/bin/http.rs`). For connections, prefer [`ConnectionTimer`], one per
/// connection, whose sleeps hand their armed timeout on to the next (no measurable cost);
/// [`serve`](crate::serve) does that.
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
        reset(sleep, new_deadline, || self.sleep_until(new_deadline));
    }
}

/// A [`Timer`] for **one** connection: when one of its sleeps is dropped with its kernel
/// timeout still armed, the timeout is kept, and the connection's next sleep adopts it
/// instead of arming a new one.
///
/// hyper makes a new sleep for the header-read timeout of every request and drops it once
/// the head has arrived. With this timer a busy keep-alive connection costs one kernel
/// timeout per timeout period (the adopted timeout fires early, and a new one is armed for
/// the time left), not an arm and a cancel per request. [`serve`](crate::serve) gives each
/// connection one:
///
/// ```no_run
/// # use std::convert::Infallible;
/// # use hyper::{Request, Response, body::Incoming, service::service_fn};
/// # async fn hello(_: Request<Incoming>) -> Result<Response<String>, Infallible> { todo!() }
/// use hyper::server::conn::http1;
/// use iomgr_hyper::{ConnectionTimer, HyperIo};
///
/// # async fn demo(listener: iomgr::net::TcpListener) -> std::io::Result<()> {
/// let builder = http1::Builder::new();
/// loop {
///     let (stream, _) = listener.accept().await?;
///     let mut builder = builder.clone();
///     builder.timer(ConnectionTimer::new());
///     iomgr::spawn(builder.serve_connection(HyperIo::new(stream), service_fn(hello)));
/// }
/// # }
/// ```
///
/// Use it for one connection, or at least within one runtime: a timeout kept on one
/// runtime's ring and adopted by a sleep polled on another runtime (of the same thread)
/// would fire only when the first runtime runs again. (Across threads nothing is adopted.)
#[derive(Debug, Default)]
pub struct ConnectionTimer {
    slot: Arc<Slot>,
}

impl ConnectionTimer {
    /// A timer with no timeout kept yet.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Timer for ConnectionTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        self.sleep_until(deadline_after(duration))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        Box::pin(IomgrSleep {
            deadline,
            armed: None,
            slot: Some(self.slot.clone()),
        })
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, new_deadline: Instant) {
        reset(sleep, new_deadline, || self.sleep_until(new_deadline));
    }
}

/// Moves an [`IomgrSleep`]'s deadline in place; replaces any other sleep with `new`'s.
fn reset(
    sleep: &mut Pin<Box<dyn Sleep>>,
    deadline: Instant,
    new: impl FnOnce() -> Pin<Box<dyn Sleep>>,
) {
    match sleep.as_mut().downcast_mut_pin::<IomgrSleep>() {
        Some(ours) => ours.get_mut().deadline = deadline,
        None => *sleep = new(),
    }
}

/// `now + duration`, or a time too far away to matter when that does not fit in an `Instant`.
fn deadline_after(duration: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(duration)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// The [`Sleep`] of [`IomgrTimer`] and [`ConnectionTimer`]: completes at its deadline,
/// which [`Timer::reset`] may move.
///
/// A later deadline does not touch the kernel: the armed timeout stays, and when it fires
/// early a new one is armed for the time left. Only a deadline moved earlier cancels and
/// re-arms.
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
    /// Where the armed timeout is kept when the sleep is dropped (a [`ConnectionTimer`]'s).
    slot: Option<Arc<Slot>>,
}

/// A kernel timeout armed on the runtime of `thread`.
struct Armed {
    thread: ThreadId,
    /// When `timer` fires; `None` once it has fired (it must not be polled again).
    fires_at: Option<Instant>,
    /// Dropped in `Drop`, on `thread` only.
    timer: ManuallyDrop<Pin<Box<iomgr::time::Sleep>>>,
}

// SAFETY: what is not `Send` is `timer` (an io_uring op holding an `Rc` to its thread's
// runtime). It is touched only on `thread`, the thread that armed it: every poll or re-arm
// goes through `IomgrSleep::poll`, which checks `thread` first and panics otherwise; a
// `Slot` hands it only to a sleep polled on `thread`; and `Drop` on another thread leaks it
// (the `Rc` is never used there, and memory the kernel may read stays allocated).
unsafe impl Send for Armed {}

// SAFETY: nothing reads `timer` through a shared reference (only `&mut` paths touch it), so
// sharing `&Armed` between threads exposes nothing thread-bound.
unsafe impl Sync for Armed {}

impl Armed {
    fn new(deadline: Instant) -> Self {
        Armed {
            thread: thread::current().id(),
            fires_at: Some(deadline),
            timer: ManuallyDrop::new(Box::pin(iomgr::time::sleep_until(deadline))),
        }
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        if self.thread == thread::current().id() {
            // SAFETY: `timer` is dropped here, once, and never used again.
            unsafe { ManuallyDrop::drop(&mut self.timer) };
        }
        // On another thread: another runtime owns the op; leave it (and its memory) alone.
    }
}

/// A [`ConnectionTimer`]'s kept timeout.
#[derive(Default)]
struct Slot(Mutex<Option<Armed>>);

impl Slot {
    /// The kept timeout, if it was armed on this thread.
    fn take(&self, thread: ThreadId) -> Option<Armed> {
        let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.as_ref().is_some_and(|armed| armed.thread == thread) {
            kept.take()
        } else {
            None
        }
    }

    /// Keeps `armed`; returns the timeout kept before, to be dropped by the caller.
    fn keep(&self, armed: Armed) -> Option<Armed> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(armed)
    }
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slot").finish_non_exhaustive()
    }
}

impl Sleep for IomgrSleep {}

impl IomgrSleep {
    /// A sleep until `deadline`; nothing is armed before it is polled.
    pub fn new(deadline: Instant) -> Self {
        IomgrSleep {
            deadline,
            armed: None,
            slot: None,
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
                let thread = thread::current().id();
                let kept = this.slot.as_ref().and_then(|slot| slot.take(thread));
                this.armed = Some(kept.unwrap_or_else(|| Armed::new(deadline)));
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
        // Keep a still-armed timeout for the connection's next sleep. (One armed on another
        // thread is never kept: `Armed`'s drop leaks it.)
        if let (Some(slot), Some(armed)) = (&self.slot, self.armed.take())
            && armed.fires_at.is_some()
            && armed.thread == thread::current().id()
        {
            drop(slot.keep(armed));
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
