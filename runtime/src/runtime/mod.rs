//! The executor: one thread, one io_uring, many tasks.
//!
//! A [`Runtime`] owns an io_uring (its *driver*), a table of tasks and a ready queue. It is
//! thread-per-core: the runtime and its tasks stay on the thread that made them, so tasks need
//! not be `Send` and may use `Rc` and `Cell` freely. To use several cores, run one runtime per
//! thread and connect them with cross-thread wakers, promises and channels.
//!
//! [`Runtime::block_on`] runs one future to completion, driving spawned tasks and I/O while it
//! waits. Each turn of its loop (a *tick*):
//!
//! 1. polls the `block_on` future if it was woken;
//! 2. polls every task that was ready when the tick began;
//! 3. takes wakes queued by other threads;
//! 4. enters the ring once: submits every op queued during the tick and collects completions,
//!    blocking for one if nothing is ready to run;
//! 5. wakes the tasks whose ops completed, and drops the resources of abandoned ops.
//!
//! ```
//! let rt = iomgr::Runtime::new()?;
//! let answer = rt.block_on(async {
//!     let task = iomgr::spawn(async { 21 });
//!     iomgr::time::sleep(std::time::Duration::from_millis(1)).await;
//!     task.await.unwrap() * 2
//! });
//! assert_eq!(answer, 42);
//! # Ok::<(), std::io::Error>(())
//! ```

#[doc(hidden)]
#[path = "entry.rs"]
pub mod __entry;
mod context;
mod dump;
mod handle;
mod join;
mod launch;
mod remote;
mod scheduler;
pub(crate) mod task_core;
#[cfg(test)]
mod tests;
pub(crate) mod waker;

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::pin::{Pin, pin};
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::driver::{Driver, Reaped, SetupOptions};

pub use crate::driver::{Feature, RingFlags};
pub use dump::TaskDump;
pub use handle::{Handle, RemoteJoinHandle};
pub use join::{JoinError, JoinHandle};
pub use launch::{PerCore, StopReason, Stopped, ThreadContext, ThreadError};
pub use scheduler::RawTask;

pub(crate) use context::current;
use remote::Remote;
use waker::TaskAddr;

/// Most task polls per tick before the runtime looks at I/O and the `block_on` future.
const TICK_BUDGET: usize = 128;

/// Everything one runtime owns, shared by its handles, ops and wakers on its thread.
pub(crate) struct Shared {
    pub(crate) id: u32,
    pub(crate) driver: RefCell<Driver>,
    scheduler: scheduler::Scheduler,
    remote: Arc<Remote>,
}

/// Configures and builds a [`Runtime`].
///
/// ```
/// let rt = iomgr::Runtime::builder().entries(1024).build()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Builder {
    options: SetupOptions,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            options: SetupOptions {
                entries: 256,
                cq_entries: None,
                single_issuer: true,
                defer_taskrun: true,
                coop_taskrun: true,
            },
        }
    }
}

impl Builder {
    /// A builder with the defaults: 256 SQ entries, a CQ twice that, and the best task-run
    /// flags the kernel supports.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of submission queue entries: 1 to 32768 (io_uring's limit), rounded up to a
    /// power of two by the kernel. Default 256.
    pub fn entries(&mut self, entries: u32) -> &mut Self {
        self.options.entries = entries;
        self
    }

    /// Number of completion queue entries: at least [`entries`](Self::entries) (after both
    /// are rounded up to powers of two) and at most 65536. Default: twice the SQ.
    pub fn cq_entries(&mut self, entries: u32) -> &mut Self {
        self.options.cq_entries = Some(entries);
        self
    }

    /// Ask for `IORING_SETUP_SINGLE_ISSUER` (default on; needed for `DEFER_TASKRUN`).
    pub fn single_issuer(&mut self, on: bool) -> &mut Self {
        self.options.single_issuer = on;
        self
    }

    /// Ask for `IORING_SETUP_DEFER_TASKRUN` (default on; Linux 6.1+).
    pub fn defer_taskrun(&mut self, on: bool) -> &mut Self {
        self.options.defer_taskrun = on;
        self
    }

    /// Ask for `IORING_SETUP_COOP_TASKRUN` (default on; Linux 5.19+).
    pub fn coop_taskrun(&mut self, on: bool) -> &mut Self {
        self.options.coop_taskrun = on;
        self
    }

    /// Builds the runtime. Flags the kernel does not support are dropped one by one; an
    /// error names why io_uring could not be set up at all (e.g. the
    /// `kernel.io_uring_disabled` sysctl), or which ring size is out of io_uring's limits
    /// (an `InvalidInput` error naming the setting).
    pub fn build(&self) -> io::Result<Runtime> {
        if cfg!(miri) {
            // Miri cannot make the io_uring syscalls; say so instead of aborting the run.
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "iomgr: io_uring is not available under Miri; mark tests that need a runtime \
                 #[cfg_attr(miri, ignore)] (scripts/asan.sh runs them natively)",
            ));
        }
        let driver = Driver::new(&self.options)?;
        let (id, remote) = Remote::register(driver.wake_fd().try_clone()?);
        let shared = Rc::new(Shared {
            id,
            driver: RefCell::new(driver),
            scheduler: scheduler::Scheduler::new(id, self.options.entries as usize),
            remote,
        });
        Ok(Runtime {
            shared,
            _not_send: PhantomData,
        })
    }
}

/// A single-threaded io_uring runtime. See the [module docs](self).
pub struct Runtime {
    shared: Rc<Shared>,
    _not_send: PhantomData<*const ()>,
}

impl Runtime {
    /// A runtime with the default [`Builder`] settings.
    ///
    /// Fails with a descriptive error when io_uring is missing or disabled.
    pub fn new() -> io::Result<Self> {
        Builder::new().build()
    }

    /// A [`Builder`] to configure the ring.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// The setup flags the ring was built with (after falling back from unsupported ones).
    pub fn ring_flags(&self) -> RingFlags {
        self.shared.driver.borrow().flags()
    }

    /// Whether this runtime's kernel has `feature` (probed once, when the ring was built).
    /// An op that needs a missing feature fails with an `Unsupported` error naming it.
    pub fn supports(&self, feature: Feature) -> bool {
        self.shared.driver.borrow().features().has(feature)
    }

    /// Ops the kernel still owns: in flight, or abandoned and awaiting their last completion.
    pub fn ops_in_flight(&self) -> usize {
        self.shared.driver.borrow().in_flight()
    }

    /// A `Send + Clone` handle for spawning work on this runtime from other threads.
    pub fn handle(&self) -> Handle {
        Handle::new(self.shared.remote.clone())
    }

    /// Every live task: its type, where it was spawned, and for an `#[iomgr::task]` the
    /// `.await` it is suspended at (see [`TaskDump`]). From another thread, use
    /// [`Handle::dump`].
    pub fn dump(&self) -> Vec<TaskDump> {
        self.shared.scheduler.dump()
    }

    /// Spawned tasks that have not finished.
    pub fn tasks_alive(&self) -> usize {
        self.shared.scheduler.task_count()
    }

    /// Runs `future` to completion on this thread, running spawned tasks and I/O meanwhile.
    ///
    /// Spawned tasks that are still running when it returns stay in the runtime and continue
    /// at the next `block_on`; dropping the runtime cancels them.
    ///
    /// # Panics
    /// If called while a runtime is already running on this thread, or if the ring fails in
    /// a way that leaves the runtime unable to make progress.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        let _guard = context::enter(self.shared.clone());
        let mut future = pin!(future);
        let shared = &*self.shared;
        let main_waker = TaskAddr::main(shared.id).waker();
        let mut cx = Context::from_waker(&main_waker);
        let mut reaped = Reaped::default();
        let mut remote_wakes = Vec::new();
        let mut jobs = Vec::new();
        shared.scheduler.set_main_woken();
        loop {
            if shared.scheduler.take_main_wake()
                && let Poll::Ready(output) = future.as_mut().poll(&mut cx)
            {
                // Hand the kernel what the last poll queued, so that nothing waits in the SQ
                // while the runtime is not running (a descriptor closed meanwhile would have
                // to wait for it).
                shared.driver.borrow_mut().flush();
                return output;
            }
            shared.scheduler.run_ready(TICK_BUDGET);
            if shared.remote.take_pending() {
                shared.remote.drain(&mut remote_wakes);
                for &word in &remote_wakes {
                    shared.scheduler.schedule(TaskAddr::unpack(word));
                }
                remote::recycle(&mut remote_wakes);
                shared.remote.drain_jobs(&mut jobs);
                for job in jobs.drain(..) {
                    job();
                }
                remote::recycle(&mut jobs);
            }
            let block = !shared.scheduler.has_ready() && shared.remote.park();
            let entered = {
                let mut driver = shared.driver.borrow_mut();
                driver.arm_wake();
                let entered = driver.enter(block);
                driver.reap(&mut reaped);
                entered
            };
            if block {
                shared.remote.unpark();
            }
            for addr in reaped.tasks.drain(..) {
                if addr.runtime == shared.id {
                    shared.scheduler.schedule(addr);
                } else {
                    Remote::wake(addr);
                }
            }
            reaped.finish();
            if let Err(e) = entered {
                panic!("iomgr: io_uring_enter failed and the runtime cannot continue: {e}");
            }
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let _guard = context::enter_if_vacant(&self.shared);
        // Jobs sent from other threads that never ran: dropping them drops their promises,
        // so whoever waits for them learns that the runtime is gone.
        drop(self.shared.remote.close());
        // Dropping the tasks drops their ops, which hand their resources to the driver; the
        // driver cancels them and waits for their completions when the last reference to it
        // goes (normally right after this).
        self.shared.scheduler.release_all();
        let mut reaped = Reaped::default();
        {
            let mut driver = self.shared.driver.borrow_mut();
            driver.flush();
            driver.reap(&mut reaped);
        }
        reaped.finish();
        Remote::unregister(self.shared.id);
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("id", &self.shared.id)
            .field("ring_flags", &self.ring_flags())
            .field("tasks_alive", &self.tasks_alive())
            .field("ops_in_flight", &self.ops_in_flight())
            .finish()
    }
}

/// Delivers a wake to the task `addr` names, on whatever thread this runs.
#[inline]
pub(crate) fn wake_addr(addr: TaskAddr) {
    let local = context::with_current(|current| match current {
        Some(shared) if shared.id == addr.runtime => {
            shared.scheduler.schedule(addr);
            true
        }
        _ => false,
    });
    if !local {
        Remote::wake(addr);
    }
}

/// Spawns a task on the current runtime and returns a handle to its output.
///
/// The future need not be `Send`: it runs on this thread. It starts at the next tick.
///
/// # Panics
/// If no runtime is running on this thread (call it inside [`Runtime::block_on`]).
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    // Read here: `#[track_caller]` does not reach into the closure.
    let spawned_at = std::panic::Location::caller();
    context::with_current(|shared| {
        let shared = shared.expect(
            "iomgr::spawn called outside a runtime: call it from code running inside \
             Runtime::block_on",
        );
        join::spawn_on(&shared.scheduler, future, spawned_at)
    })
}

/// Spawns a task whose storage the caller owns (the `#[iomgr::task(pool = N)]` fast path).
///
/// Returns a waker that wakes the task (e.g. to let it observe an abort request).
///
/// # Safety
/// `task` must stay valid and pinned until the runtime calls [`RawTask::release`] on it.
///
/// # Panics
/// If no runtime is running on this thread.
#[doc(hidden)]
#[track_caller]
pub unsafe fn spawn_raw(task: NonNull<dyn RawTask>) -> std::task::Waker {
    // SAFETY: forwarded from this function's contract.
    unsafe { spawn_raw_at(task, std::panic::Location::caller()) }
}

/// [`spawn_raw`], with the place it was spawned from (for dumps).
///
/// # Safety
/// As for [`spawn_raw`].
pub(crate) unsafe fn spawn_raw_at(
    task: NonNull<dyn RawTask>,
    spawned_at: &'static std::panic::Location<'static>,
) -> std::task::Waker {
    context::with_current(|shared| {
        let shared = shared.expect(
            "iomgr: a task was spawned outside a runtime; spawn it inside Runtime::block_on",
        );
        let info = scheduler::TaskInfo::new(spawned_at);
        // SAFETY: forwarded from this function's contract.
        unsafe { shared.scheduler.spawn(task, info) }.waker()
    })
}

/// Whether a runtime is running on this thread.
pub(crate) fn is_running() -> bool {
    context::is_running()
}

/// Yields to the scheduler once, letting other ready tasks and I/O run.
///
/// ```
/// # iomgr::Runtime::new()?.block_on(async {
/// iomgr::yield_now().await;
/// # });
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// Future returned by [`yield_now`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
