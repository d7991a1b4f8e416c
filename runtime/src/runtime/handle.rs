//! Reaching a runtime from other threads.
//!
//! A [`Handle`] is `Send + Clone`. [`Handle::spawn`] sends a `Send` closure to the runtime's
//! thread, where it builds the task: the task itself may be `!Send` (hold `Rc`s, sockets), only
//! the recipe crosses threads. The [`RemoteJoinHandle`] it returns can be awaited on another
//! runtime or waited on from a plain thread.
//!
//! ```
//! let rt = iomgr::Runtime::new()?;
//! let handle = rt.handle();
//! // `handle` is Send + Clone: move it to any thread. From a plain thread, `wait` blocks:
//! let worker = std::thread::spawn({
//!     let handle = handle.clone();
//!     move || handle.spawn(|| async { 40 }).wait()
//! });
//! // On a runtime, await the handle (here, the runtime that runs the task itself):
//! let local = handle.spawn(|| async {
//!     let shared = std::rc::Rc::new(2); // !Send is fine: it lives on the runtime's thread
//!     *shared
//! });
//! let two = rt.block_on(async {
//!     let two = local.await.unwrap();
//!     while !worker.is_finished() {
//!         iomgr::time::sleep(std::time::Duration::from_millis(1)).await;
//!     }
//!     two
//! });
//! assert_eq!(worker.join().unwrap().unwrap() + two, 42);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fmt;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use super::JoinError;
use super::remote::Remote;
use crate::sync::{AsyncPromiseFuture, async_promise};

/// A `Send + Clone` handle to a [`Runtime`](super::Runtime), from [`Runtime::handle`](super::Runtime::handle).
///
/// [`Handle::spawn`] sends a `Send` closure to the runtime's thread, where it builds the task:
/// the task itself may be `!Send`; only the recipe crosses threads.
#[derive(Clone)]
pub struct Handle {
    remote: Arc<Remote>,
}

impl Handle {
    pub(crate) fn new(remote: Arc<Remote>) -> Self {
        Handle { remote }
    }

    /// The handle of the runtime running on this thread (inside its `block_on`), if any.
    pub fn try_current() -> Option<Handle> {
        super::context::current().map(|shared| Handle::new(shared.remote.clone()))
    }

    /// Runs `make` on the runtime's thread and spawns the future it returns there.
    ///
    /// The task starts when the runtime next runs (inside `block_on`). If the runtime is gone,
    /// or shuts down before the task finishes, the handle resolves to a cancelled
    /// [`JoinError`]; a panic in `make` or in the task is reported as a panicked one, and the
    /// runtime and its other tasks go on.
    pub fn spawn<F, Fut>(&self, make: F) -> RemoteJoinHandle<Fut::Output>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        let (future, promise) = async_promise::<Result<Fut::Output, JoinError>>();
        let job = Box::new(move || {
            // The recipe runs on the runtime's thread, inside `block_on`: a panic in it must
            // not unwind through the runtime (and its other tasks). It is reported to the
            // handle like a panic in the task itself.
            match panic::catch_unwind(AssertUnwindSafe(make)) {
                Ok(future) => {
                    let task = crate::spawn(future);
                    crate::spawn(async move {
                        let _ = promise.set(task.await);
                    });
                }
                Err(payload) => {
                    let _ = promise.set(Err(JoinError::panicked(payload)));
                }
            }
        });
        // A refused job is dropped here, and with it the promise: the handle sees "cancelled".
        let _ = self.remote.submit(job);
        RemoteJoinHandle { future }
    }
}

impl Handle {
    /// Every live task of the runtime, as [`Runtime::dump`](super::Runtime::dump) gives
    /// them, asked from any thread: the runtime answers at its next turn (it must be running
    /// `block_on`). Await the handle, or [`wait`](RemoteJoinHandle::wait) for it on a plain
    /// thread; it is a cancelled [`JoinError`] if the runtime is gone.
    pub fn dump(&self) -> RemoteJoinHandle<Vec<super::TaskDump>> {
        let (future, promise) = async_promise::<Result<Vec<super::TaskDump>, JoinError>>();
        let job = Box::new(move || {
            if let Some(shared) = super::context::current() {
                let _ = promise.set(Ok(shared.scheduler.dump()));
            }
        });
        let _ = self.remote.submit(job);
        RemoteJoinHandle { future }
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}

/// The output of a task spawned through a [`Handle`]: await it on any runtime, or
/// [`wait`](Self::wait) for it on a plain thread.
#[must_use = "dropping the handle detaches the task"]
pub struct RemoteJoinHandle<T> {
    future: AsyncPromiseFuture<Result<T, JoinError>>,
}

impl<T> RemoteJoinHandle<T> {
    /// Blocks this thread until the task finishes. Do not call it on a runtime's thread
    /// while that runtime must run the task (await the handle there instead).
    pub fn wait(self) -> Result<T, JoinError> {
        struct Unpark(std::thread::Thread);
        impl Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut this = std::pin::pin!(self);
        loop {
            if let Poll::Ready(output) = this.as_mut().poll(&mut cx) {
                return output;
            }
            std::thread::park();
        }
    }
}

impl<T> Future for RemoteJoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.future)
            .poll(cx)
            .map(|outcome| match outcome {
                Ok(result) => result,
                // The promise was dropped unset: the runtime went away before the task finished.
                Err(_) => Err(JoinError::cancelled()),
            })
    }
}

impl<T> fmt::Debug for RemoteJoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteJoinHandle").finish_non_exhaustive()
    }
}
