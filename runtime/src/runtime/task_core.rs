//! The life of one task, wherever it is stored.
//!
//! A boxed task ([`spawn`](crate::spawn)) and a pooled one (`#[iomgr::task(pool = N)]`) keep
//! the same state: the future (polled in place, dropped in place), its output until the join
//! handle takes it, the join handle's waker and an abort request. [`TaskCore`] is that state
//! and its rules, written once; the two storages only decide where it lives and when it is
//! freed.
//!
//! A panic in the future, or in its destructor, is caught here and becomes the task's
//! [`JoinError`], so one task cannot take down the runtime or its other tasks.
//!
//! The future's cell is touched only by the poll and by the code that drops the future, both
//! run by the runtime. Everything a join handle may ask, from anywhere (including from inside
//! the task's own poll, or from its destructor: a task may abort its own group), lives in
//! other cells: whether the task finished, its output, the abort request.

use std::cell::{Cell, UnsafeCell};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use super::JoinError;

/// A task's state; see the module docs. Single-threaded: only the runtime's thread touches it.
pub(crate) struct TaskCore<F: Future> {
    /// `Some` from start until finished, aborted or released. Pinned: never moved while `Some`,
    /// only dropped in place (the owner keeps the core at a fixed address). While the task is
    /// polled, or its future dropped, a unique borrow of it is alive: nothing else may read it.
    future: UnsafeCell<Option<F>>,
    output: UnsafeCell<Option<Result<F::Output, JoinError>>>,
    /// Set once the output (or error) is decided; true in an empty core.
    finished: Cell<bool>,
    join_waker: Cell<Option<Waker>>,
    aborted: Cell<bool>,
}

impl<F: Future> TaskCore<F> {
    /// A core holding no task (a free pool slot).
    pub(crate) const fn empty() -> Self {
        TaskCore {
            future: UnsafeCell::new(None),
            output: UnsafeCell::new(None),
            finished: Cell::new(true),
            join_waker: Cell::new(None),
            aborted: Cell::new(false),
        }
    }

    /// A core running `future`.
    pub(crate) fn new(future: F) -> Self {
        TaskCore {
            future: UnsafeCell::new(Some(future)),
            finished: Cell::new(false),
            ..Self::empty()
        }
    }

    /// Puts `future` in an empty core, clearing what a previous task left.
    ///
    /// # Safety
    /// The core holds no future and nobody borrows it (a free pool slot).
    pub(crate) unsafe fn start(&self, future: F) {
        // SAFETY: forwarded from the caller: no borrow of either cell is alive.
        unsafe {
            *self.output.get() = None;
            *self.future.get() = Some(future);
        }
        self.finished.set(false);
        self.join_waker.set(None);
        self.aborted.set(false);
    }

    /// Drops the future in place (if it is there), catching a panic from its destructor.
    ///
    /// The destructor may use the task's join handle: that touches only the other cells.
    fn drop_future(&self) -> Option<JoinError> {
        // SAFETY: single thread, and never during a poll of the future (called after a poll
        // returned, or instead of one) nor during another drop of it (the runtime calls this;
        // join handles never do), so no other borrow of the cell is alive.
        let slot = unsafe { &mut *self.future.get() };
        catch_unwind(AssertUnwindSafe(|| *slot = None))
            .err()
            .map(JoinError::panicked)
    }

    fn finish(&self, output: Result<F::Output, JoinError>) {
        // SAFETY: single thread; the handle only takes the output out by value, and no borrow
        // of the cell outlives the method that made it.
        unsafe { *self.output.get() = Some(output) };
        self.finished.set(true);
        if let Some(waker) = self.join_waker.take() {
            waker.wake();
        }
    }

    /// Polls the task once (the [`RawTask::poll`](super::RawTask::poll) of both storages).
    ///
    /// # Safety
    /// Called by the runtime on the task's thread, never re-entrantly, with the core at a
    /// fixed address since the future was put in.
    pub(crate) unsafe fn poll(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.aborted.get() {
            let error = self.drop_future().unwrap_or_else(JoinError::cancelled);
            self.finish(Err(error));
            return Poll::Ready(());
        }
        // SAFETY: no other borrow of the future exists during its poll: single thread, the
        // runtime does not poll re-entrantly, and nothing but `poll` and `drop_future` (which
        // the runtime never calls during a poll) reads the cell; join handles use the others.
        let Some(future) = (unsafe { &mut *self.future.get() }).as_mut() else {
            return Poll::Ready(());
        };
        // SAFETY: the caller keeps the core, and so the future, at a fixed address, and the
        // future is only ever dropped in place.
        let future = unsafe { Pin::new_unchecked(future) };
        match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => {
                let dropped = self.drop_future();
                self.finish(dropped.map_or(Ok(value), Err));
                Poll::Ready(())
            }
            Err(payload) => {
                let _ = self.drop_future();
                self.finish(Err(JoinError::panicked(payload)));
                Poll::Ready(())
            }
        }
    }

    /// The runtime is done with the task: a task that has not finished is cancelled (its
    /// future dropped, its handle told).
    pub(crate) fn release(&self) {
        if !self.finished.get() {
            let error = self.drop_future().unwrap_or_else(JoinError::cancelled);
            self.finish(Err(error));
        }
    }

    /// The join handle's poll: the output once there (taken), else registers `cx`'s waker.
    ///
    /// # Panics
    /// If polled again after it returned the output, as completed futures do.
    pub(crate) fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<F::Output, JoinError>> {
        // SAFETY: single thread; no borrow of the output outlives the method that made it, and
        // the poll of the task never holds one.
        match unsafe { (*self.output.get()).take() } {
            Some(output) => Poll::Ready(output),
            // Finished and no output: the handle already took it.
            None if self.finished.get() => panic!("a join handle was polled after it completed"),
            None => {
                self.join_waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        }
    }

    /// Asks for the task to be cancelled at its next poll. Returns whether the caller must
    /// wake the task for that (false when finished or already asked).
    pub(crate) fn request_abort(&self) -> bool {
        !self.is_finished() && !self.aborted.replace(true)
    }

    /// Whether the task has finished (its output is decided). False while its future runs,
    /// also when asked from inside that future.
    pub(crate) fn is_finished(&self) -> bool {
        self.finished.get()
    }

    /// Forgets a finished task's leftovers (an untaken output, a stale join waker), so a
    /// pool slot holds nothing while free.
    pub(crate) fn clear(&self) {
        // SAFETY: single thread; no borrow of the output is alive.
        unsafe { *self.output.get() = None };
        self.join_waker.set(None);
    }
}
