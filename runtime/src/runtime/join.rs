//! Spawned tasks and their join handles.
//!
//! [`spawn`](crate::spawn) puts the future in one reference-counted cell that holds, in turn,
//! the running future, then its output until the [`JoinHandle`] takes it. The runtime owns one
//! reference (an `Rc<dyn RawTask>` in its task table), the handle the other; dropping the handle
//! detaches the task. The runtime drops its reference after releasing the task.
//!
//! A panic inside the task is caught at the poll: the future is dropped, the panic becomes a
//! [`JoinError`], and the runtime and every other task keep running.

use std::any::Any;
use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};

use super::scheduler::{RawTask, Scheduler, TaskInfo};
use super::task_core::TaskCore;
use super::waker::TaskAddr;

/// Why a task produced no output: it was cancelled, or it panicked.
///
/// It is `Send + Sync`, so it converts into `io::Error` and other error types.
pub struct JoinError {
    repr: Repr,
}

enum Repr {
    Cancelled,
    Panicked {
        message: Option<String>,
        payload: Mutex<Box<dyn Any + Send + 'static>>,
    },
}

impl JoinError {
    pub(crate) fn cancelled() -> Self {
        JoinError {
            repr: Repr::Cancelled,
        }
    }

    pub(crate) fn panicked(payload: Box<dyn Any + Send + 'static>) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned());
        JoinError {
            repr: Repr::Panicked {
                message,
                payload: Mutex::new(payload),
            },
        }
    }

    /// Whether the task was cancelled (aborted, or its runtime shut down first).
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
    }

    /// Whether the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panicked { .. })
    }

    /// The panic payload, to re-raise it with [`std::panic::resume_unwind`].
    pub fn into_panic(self) -> Option<Box<dyn Any + Send + 'static>> {
        match self.repr {
            Repr::Panicked { payload, .. } => {
                Some(payload.into_inner().unwrap_or_else(PoisonError::into_inner))
            }
            Repr::Cancelled => None,
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Cancelled => {
                f.write_str("task was cancelled (aborted, or its runtime shut down)")
            }
            Repr::Panicked {
                message: Some(msg), ..
            } => write!(f, "task panicked: {msg}"),
            Repr::Panicked { message: None, .. } => f.write_str("task panicked"),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Cancelled => f.write_str("JoinError::Cancelled"),
            Repr::Panicked { message, .. } => f
                .debug_tuple("JoinError::Panicked")
                .field(&message.as_deref().unwrap_or("<non-string payload>"))
                .finish(),
        }
    }
}

impl From<JoinError> for std::io::Error {
    fn from(e: JoinError) -> Self {
        std::io::Error::other(e)
    }
}

impl std::error::Error for JoinError {}

/// The cell behind a spawned task: its [`TaskCore`] and its address (for aborting).
pub(crate) struct TaskCell<F: Future> {
    core: TaskCore<F>,
    addr: Cell<Option<TaskAddr>>,
}

impl<F: Future> TaskCell<F> {
    pub(crate) fn new(future: F) -> Rc<Self> {
        Rc::new(TaskCell {
            core: TaskCore::new(future),
            addr: Cell::new(None),
        })
    }

    pub(crate) fn set_addr(&self, addr: TaskAddr) {
        self.addr.set(Some(addr));
    }
}

// SAFETY: the cell lives in an `Rc` (a fixed address); the runtime holds one reference
// from `spawn_on` until after `release`, so the cell outlives every call the runtime makes.
unsafe impl<F: Future> RawTask for TaskCell<F> {
    unsafe fn poll(&self, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: the runtime polls on this thread, not re-entrantly, and the `Rc` keeps the
        // core at a fixed address.
        unsafe { self.core.poll(cx) }
    }

    /// Cancels the task if it has not finished. The runtime then drops its `Rc`, which frees
    /// the cell once the join handle is gone too.
    unsafe fn release(&self) {
        self.core.release();
    }
}

/// Spawns `future` as a task of `scheduler` (the body of [`spawn`](crate::spawn)).
#[track_caller]
pub(crate) fn spawn_on<F>(scheduler: &Scheduler, future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let info = TaskInfo::new(std::any::type_name::<F>(), Location::caller());
    let cell = TaskCell::new(future);
    let addr = scheduler.spawn_owned(cell.clone(), info);
    cell.set_addr(addr);
    JoinHandle::new(cell)
}

/// What a [`JoinHandle`] needs from its task, without naming the future's type.
trait JoinTarget<T> {
    fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<T, JoinError>>;
    fn abort(&self);
    fn is_finished(&self) -> bool;
}

impl<F: Future> JoinTarget<F::Output> for TaskCell<F> {
    fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<F::Output, JoinError>> {
        self.core.poll_join(cx)
    }

    fn abort(&self) {
        if self.core.request_abort()
            && let Some(addr) = self.addr.get()
        {
            addr.waker().wake();
        }
    }

    fn is_finished(&self) -> bool {
        self.core.is_finished()
    }
}

/// An owned permission to await a spawned task's output, or to abort it.
///
/// Awaiting it gives `Ok(output)`, or a [`JoinError`] if the task panicked or was cancelled.
/// Dropping it detaches the task, which keeps running.
///
/// ```
/// let rt = iomgr::Runtime::new()?;
/// rt.block_on(async {
///     let handle = iomgr::spawn(async { 6 * 7 });
///     assert_eq!(handle.await.unwrap(), 42);
///
///     let handle = iomgr::spawn(async { panic!("boom") });
///     assert!(handle.await.unwrap_err().is_panic());
/// });
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct JoinHandle<T> {
    target: Rc<dyn JoinTarget<T>>,
}

impl<T> JoinHandle<T> {
    pub(crate) fn new<F: Future<Output = T> + 'static>(cell: Rc<TaskCell<F>>) -> Self {
        JoinHandle { target: cell }
    }

    /// Cancels the task: its future is dropped (cancelling its in-flight ops safely) the next
    /// time the scheduler reaches it, and awaiting this handle gives a cancelled [`JoinError`].
    /// Aborting a finished task does nothing.
    pub fn abort(&self) {
        self.target.abort();
    }

    /// Whether the task has finished (its output, or error, is ready).
    pub fn is_finished(&self) -> bool {
        self.target.is_finished()
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.target.poll_join(cx)
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}
