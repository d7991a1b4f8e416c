//! Static pools for `#[iomgr::task(pool = N)]`: spawning takes a free slot of a per-thread
//! array (no allocation); the slot is free again once the task finished (or was aborted)
//! and its [`PoolJoinHandle`] is gone.
//!
//! Finding a free slot is O(1): slots never used yet are taken in order (a counter), and a
//! slot that becomes free again goes on a list linked through the slots themselves, which
//! the next spawn pops (the most recently used slot first: its memory is the warmest).

use core::cell::Cell;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::ptr;
use core::ptr::NonNull;
use core::task::{Context, Poll, Waker};
use std::mem::ManuallyDrop;
use std::thread::LocalKey;

use crate::runtime::task_core::TaskCore;
use crate::runtime::{JoinError, RawTask};

/// Spawning a pooled task failed: every slot of its pool holds a task that is still running
/// (or whose [`PoolJoinHandle`] is still alive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpawnError {
    task: &'static str,
    pool: usize,
}

impl SpawnError {
    /// The task's name (its function's).
    pub fn task(&self) -> &'static str {
        self.task
    }

    /// The pool's size, `N` of `#[iomgr::task(pool = N)]`.
    pub fn pool_size(&self) -> usize {
        self.pool
    }
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot spawn `{}`: all {} slots of its pool (`#[iomgr::task(pool = {})]`) hold running tasks or unconsumed outputs; wait for one to finish, or raise `pool`",
            self.task, self.pool, self.pool
        )
    }
}

impl std::error::Error for SpawnError {}

/// The head of a pool's list of slots that are free again (null: empty).
type FreeList<F> = Cell<*const PoolSlot<F>>;

/// One task's storage in a pool: the task's [`TaskCore`] plus who still uses the slot.
pub struct PoolSlot<F: Future> {
    /// Taken: from `spawn` until both the runtime released it and the handle is gone.
    used: Cell<bool>,
    released: Cell<bool>,
    handle: Cell<bool>,
    core: TaskCore<F>,
    task_waker: Cell<Option<Waker>>,
    /// While free (and on the list): the next free slot.
    next_free: Cell<*const PoolSlot<F>>,
    /// The free list of the pool this slot is in (set when it is first taken).
    free_list: Cell<*const FreeList<F>>,
}

impl<F: Future> PoolSlot<F> {
    const fn new() -> Self {
        PoolSlot {
            used: Cell::new(false),
            released: Cell::new(true),
            handle: Cell::new(false),
            core: TaskCore::empty(),
            task_waker: Cell::new(None),
            next_free: Cell::new(ptr::null()),
            free_list: Cell::new(ptr::null()),
        }
    }

    fn free_if_done(&self) {
        if self.released.get() && !self.handle.get() && self.used.get() {
            self.core.clear();
            self.task_waker.set(None);
            self.used.set(false);
            // SAFETY: `free_list` was set when the slot was taken, to the list of the pool
            // that holds this slot; the pool lives until the thread exits (see
            // `spawn_pooled`), and only this thread touches it.
            let list = unsafe { &*self.free_list.get() };
            self.next_free.set(list.get());
            list.set(self);
        }
    }
}

// SAFETY: the slot is in a pool that lives until the thread exits, so the core stays at a
// fixed address; `release` is called once by the runtime, after which the slot is reused
// only when the join handle is gone too.
unsafe impl<F: Future> RawTask for PoolSlot<F> {
    unsafe fn poll(&self, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: the runtime polls on this thread, not re-entrantly; the slot is static.
        unsafe { self.core.poll(cx) }
    }

    unsafe fn release(&self) {
        self.core.release();
        self.released.set(true);
        self.free_if_done();
    }

    fn type_name(&self) -> &'static str {
        std::any::type_name::<F>()
    }
}

/// `N` slots for one task type, in per-thread static storage (see [`spawn_pooled`]).
pub struct Pool<F: Future, const N: usize> {
    slots: [PoolSlot<F>; N],
    /// Slots that were used and are free again, linked through `PoolSlot::next_free`.
    free: FreeList<F>,
    /// Slots `fresh..N` have never been used.
    fresh: Cell<usize>,
}

impl<F: Future + 'static, const N: usize> Pool<F, N> {
    /// An empty pool.
    pub const fn new() -> Self {
        Pool {
            slots: [const { PoolSlot::new() }; N],
            free: Cell::new(ptr::null()),
            fresh: Cell::new(0),
        }
    }

    /// A free slot, taken off the free list or never used before; O(1).
    fn take_free(&self) -> Option<&PoolSlot<F>> {
        let head = self.free.get();
        if !head.is_null() {
            // SAFETY: the list links only slots of `self.slots` (each put there by
            // `free_if_done`), so `head` points into this live pool.
            let slot = unsafe { &*head };
            self.free.set(slot.next_free.get());
            return Some(slot);
        }
        let fresh = self.fresh.get();
        let slot = self.slots.get(fresh)?;
        self.fresh.set(fresh + 1);
        slot.free_list.set(&self.free);
        Some(slot)
    }

    /// Moves `future` into a free slot and spawns it on the current runtime.
    ///
    /// # Safety
    /// `self` lives (and does not move) until the thread exits: see [`spawn_pooled`].
    unsafe fn spawn(
        &self,
        future: F,
        task: &'static str,
        spawned_at: &'static std::panic::Location<'static>,
    ) -> Result<PoolJoinHandle<F::Output>, SpawnError> {
        // Checked before a slot is taken, so the panic neither loses the slot nor leaks the
        // future.
        assert!(
            crate::runtime::is_running(),
            "iomgr: `{task}` was spawned outside a runtime; spawn it inside Runtime::block_on"
        );
        let Some(slot) = self.take_free() else {
            return Err(SpawnError { task, pool: N });
        };
        debug_assert!(!slot.used.get(), "a slot on the free list is free");
        slot.used.set(true);
        slot.released.set(false);
        slot.handle.set(true);
        // SAFETY: the slot is free: it holds no future and nobody borrows it.
        unsafe { slot.core.start(future) };
        // SAFETY: the caller promises the pool outlives every use on this thread.
        let slot: &'static PoolSlot<F> = unsafe { &*(slot as *const PoolSlot<F>) };
        let raw: NonNull<dyn RawTask> = NonNull::from(slot as &dyn RawTask);
        // SAFETY: the slot stays valid and the future pinned until `release` (static storage;
        // the slot is not reused before `release`).
        let waker = unsafe { crate::runtime::spawn_raw_at(raw, spawned_at) };
        slot.task_waker.set(Some(waker));
        Ok(PoolJoinHandle { slot })
    }

    /// How many slots are taken.
    pub fn in_use(&self) -> usize {
        self.slots.iter().filter(|s| s.used.get()).count()
    }
}

/// Spawns `future` from the pool in the thread-local `pool` (what the generated
/// `NameTask::spawn` calls).
///
/// # Panics
/// If no runtime is running on this thread.
#[track_caller]
pub fn spawn_pooled<F: Future + 'static, const N: usize>(
    pool: &'static LocalKey<ManuallyDrop<Pool<F, N>>>,
    future: F,
    task: &'static str,
) -> Result<PoolJoinHandle<F::Output>, SpawnError> {
    let spawned_at = std::panic::Location::caller();
    pool.with(|pool| {
        let pool: &Pool<F, N> = pool;
        // SAFETY: `ManuallyDrop` has no drop glue, so the thread local has no destructor:
        // on Linux (the only target of an io_uring runtime) its storage is part of the
        // thread's static TLS block, which stays valid until the thread is gone, after every
        // thread-local destructor ran. Nothing reaches the pool from another thread: its join
        // handles are `!Send` and its tasks run on this thread's runtime. So the pool outlives
        // every use, as `Pool::spawn` requires.
        unsafe { pool.spawn(future, task, spawned_at) }
    })
}

impl<F: Future + 'static, const N: usize> Default for Pool<F, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<F: Future, const N: usize> fmt::Debug for Pool<F, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("size", &N)
            .field(
                "in_use",
                &self.slots.iter().filter(|s| s.used.get()).count(),
            )
            .finish()
    }
}

trait PoolTarget<T> {
    fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<T, JoinError>>;
    fn abort(&self);
    fn is_finished(&self) -> bool;
    fn drop_handle(&self);
}

impl<F: Future> PoolTarget<F::Output> for PoolSlot<F> {
    fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<F::Output, JoinError>> {
        self.core.poll_join(cx)
    }

    fn abort(&self) {
        if self.core.request_abort()
            && let Some(w) = self.task_waker.take()
        {
            w.wake_by_ref();
            self.task_waker.set(Some(w));
        }
    }

    fn is_finished(&self) -> bool {
        self.core.is_finished()
    }

    fn drop_handle(&self) {
        self.handle.set(false);
        self.free_if_done();
    }
}

/// The handle of a task spawned from a pool: await it for the output (or a [`JoinError`]);
/// dropping it detaches the task. The task's slot is reused once the task finished and this
/// handle is gone.
pub struct PoolJoinHandle<T: 'static> {
    slot: &'static dyn PoolTarget<T>,
}

impl<T: 'static> PoolJoinHandle<T> {
    /// Cancels the task (its future is dropped at the scheduler's next turn).
    pub fn abort(&self) {
        self.slot.abort();
    }

    /// Whether the task has finished.
    pub fn is_finished(&self) -> bool {
        self.slot.is_finished()
    }
}

impl<T: 'static> Future for PoolJoinHandle<T> {
    type Output = Result<T, JoinError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.slot.poll_join(cx)
    }
}

impl<T: 'static> Drop for PoolJoinHandle<T> {
    fn drop(&mut self) {
        self.slot.drop_handle();
    }
}

impl<T: 'static> fmt::Debug for PoolJoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolJoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// A task type declared with `#[iomgr::task(pool = N)]`: its body marker knows the pool.
///
/// Implemented by the macro only.
#[doc(hidden)]
pub trait Pooled<T: Future>: super::inline::Body {
    /// Spawns `task` from the task type's per-thread pool.
    #[track_caller]
    fn spawn(task: T) -> Result<PoolJoinHandle<T::Output>, SpawnError>;
}
