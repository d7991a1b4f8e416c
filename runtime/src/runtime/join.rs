//! Spawned tasks and their join handles.
//!
//! [`spawn`](crate::spawn) puts the future in one cell that holds, in turn, the running
//! future, then its output until the [`JoinHandle`] takes it. The cell has two holders: the
//! runtime (an [`OwnedTask`] in its task table) and the handle; dropping the handle detaches
//! the task, the runtime lets go after releasing the task, and whichever is last frees the
//! cell. The cell's block comes from the thread's recycled blocks
//! ([`recycle`](crate::util::recycle)), so after warm-up spawning a task does not reach the
//! global allocator.
//!
//! A panic inside the task is caught at the poll: the future is dropped, the panic becomes a
//! [`JoinError`], and the runtime and every other task keep running.

use std::alloc::Layout;
use std::any::Any;
use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::Location;
use std::pin::Pin;
use std::ptr::{self, NonNull};
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};

use super::scheduler::{RawTask, Scheduler, TaskInfo};
use super::task_core::TaskCore;
use super::waker::TaskAddr;
use crate::util::recycle;

/// Why a task produced no output: it was cancelled, or it panicked.
///
/// It is `Send + Sync`, so it converts into `io::Error` and other error types.
pub struct JoinError {
    repr: Repr,
}

/// One word: a task's output slot holds `Result<T, JoinError>`, so the rare panic case is
/// boxed to keep every task cell small.
enum Repr {
    Cancelled,
    Panicked(Box<Panic>),
}

struct Panic {
    message: Option<String>,
    payload: Mutex<Box<dyn Any + Send + 'static>>,
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
            repr: Repr::Panicked(Box::new(Panic {
                message,
                payload: Mutex::new(payload),
            })),
        }
    }

    /// Whether the task was cancelled (aborted, or its runtime shut down first).
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
    }

    /// Whether the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panicked(_))
    }

    /// The panic payload, to re-raise it with [`std::panic::resume_unwind`].
    pub fn into_panic(self) -> Option<Box<dyn Any + Send + 'static>> {
        match self.repr {
            Repr::Panicked(panic) => Some(
                panic
                    .payload
                    .into_inner()
                    .unwrap_or_else(PoisonError::into_inner),
            ),
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
            Repr::Panicked(panic) => match &panic.message {
                Some(msg) => write!(f, "task panicked: {msg}"),
                None => f.write_str("task panicked"),
            },
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Cancelled => f.write_str("JoinError::Cancelled"),
            Repr::Panicked(panic) => f
                .debug_tuple("JoinError::Panicked")
                .field(&panic.message.as_deref().unwrap_or("<non-string payload>"))
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

/// The cell behind a spawned task: its [`TaskCore`], its address (for aborting) and how many
/// of its two holders (the runtime, the join handle) still hold it.
pub(crate) struct TaskCell<F: Future> {
    holders: Cell<u8>,
    addr: Cell<Option<TaskAddr>>,
    core: TaskCore<F>,
}

/// Shared by the runtime's and the handle's views of a cell: letting go of it.
pub(crate) trait Holder {
    /// One holder lets go; returns whether it was the last (the cell must then be freed).
    fn let_go(&self) -> bool;
}

impl<F: Future> Holder for TaskCell<F> {
    fn let_go(&self) -> bool {
        let left = self.holders.get() - 1;
        self.holders.set(left);
        left == 0
    }
}

/// Lets go of the cell behind `ptr`; frees it if that was the last holder.
///
/// # Safety
/// `ptr` points at a live cell made by [`spawn_on`], whose holder the caller was and gives
/// up here; no reference into the cell is alive.
unsafe fn let_go<T: ?Sized + Holder>(ptr: NonNull<T>) {
    // SAFETY: the caller is a holder, so the cell is alive; the borrow ends with the call.
    if !unsafe { ptr.as_ref() }.let_go() {
        return;
    }
    // SAFETY: as above (the cell is still alive until freed below).
    let layout = Layout::for_value(unsafe { ptr.as_ref() });
    // SAFETY: we were the last holder, so nothing else refers to the cell: drop it in place
    // once, through the pointer `spawn_on` made, then give its block back (it came from
    // `recycle::alloc` with the cell's layout, which `for_value` reads from the vtable).
    unsafe {
        ptr::drop_in_place(ptr.as_ptr());
        recycle::dealloc(ptr.cast(), layout);
    }
}

/// A boxed task as the runtime's task table holds it.
pub(crate) trait CellTask: RawTask + Holder {}

impl<F: Future> CellTask for TaskCell<F> {}

/// The runtime's hold on a boxed task cell; dropping it lets go.
pub(crate) struct OwnedTask {
    ptr: NonNull<dyn CellTask>,
}

impl OwnedTask {
    pub(crate) fn ptr(&self) -> NonNull<dyn RawTask> {
        self.ptr
    }
}

impl Drop for OwnedTask {
    fn drop(&mut self) {
        // SAFETY: the runtime is one of the cell's holders until here, and holds no
        // reference into it while the table entry is dropped.
        unsafe { let_go(self.ptr) }
    }
}

// SAFETY: the cell is in a block that only its last holder frees; the runtime holds it from
// `spawn_on` until after `release`, so the cell outlives every call the runtime makes.
unsafe impl<F: Future> RawTask for TaskCell<F> {
    unsafe fn poll(&self, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: the runtime polls on this thread, not re-entrantly, and the cell does not
        // move (it is never moved out of its block).
        unsafe { self.core.poll(cx) }
    }

    /// Cancels the task if it has not finished. The runtime then lets go of the cell, which
    /// frees it once the join handle is gone too.
    unsafe fn release(&self) {
        self.core.release();
    }

    fn type_name(&self) -> &'static str {
        std::any::type_name::<F>()
    }
}

/// Spawns `future` as a task of `scheduler` (the body of [`spawn`](crate::spawn)).
#[inline]
pub(crate) fn spawn_on<F>(
    scheduler: &Scheduler,
    future: F,
    spawned_at: &'static Location<'static>,
) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let info = TaskInfo::new(spawned_at);
    let ptr = recycle::alloc(Layout::new::<TaskCell<F>>()).cast::<TaskCell<F>>();
    // SAFETY: the block is valid for a `TaskCell<F>` and uninitialized.
    unsafe {
        ptr.as_ptr().write(TaskCell {
            holders: Cell::new(2),
            addr: Cell::new(None),
            core: TaskCore::new(future),
        })
    };
    // Both holders exist before anything can fail, so an unwind frees the cell.
    let handle = JoinHandle {
        target: ptr,
        _not_send: PhantomData,
    };
    let addr = scheduler.spawn_owned(OwnedTask { ptr }, info);
    // SAFETY: the handle holds the cell.
    unsafe { ptr.as_ref() }.addr.set(Some(addr));
    handle
}

/// What a [`JoinHandle`] needs from its task, without naming the future's type.
trait JoinTarget<T>: Holder {
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
    /// One of the cell's two holders.
    target: NonNull<dyn JoinTarget<T>>,
    /// The cell is single-threaded (`Cell`s, a thread's recycled block).
    _not_send: PhantomData<*const ()>,
}

impl<T> JoinHandle<T> {
    fn target(&self) -> &dyn JoinTarget<T> {
        // SAFETY: the handle holds the cell, so it is alive while the handle is.
        unsafe { self.target.as_ref() }
    }

    /// Cancels the task: its future is dropped (cancelling its in-flight ops safely) the next
    /// time the scheduler reaches it, and awaiting this handle gives a cancelled [`JoinError`].
    /// Aborting a finished task does nothing.
    pub fn abort(&self) {
        self.target().abort();
    }

    /// Whether the task has finished (its output, or error, is ready).
    pub fn is_finished(&self) -> bool {
        self.target().is_finished()
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        // SAFETY: the handle is one of the cell's holders until here, and no reference into
        // the cell is alive (the handle's methods borrow it only while they run).
        unsafe { let_go(self.target) }
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.target().poll_join(cx)
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}
