//! Promises that complete from any thread.
//!
//! [`async_promise`] makes a pair whose [`AsyncPromise`] is `Send`: move it to another
//! thread (a worker pool, a blocking syscall thread, another runtime) and complete it there.
//! The [`AsyncPromiseFuture`] stays on the runtime that made it (it is `!Send`, so awaiting it
//! from another runtime does not compile).
//!
//! Completing stores the outcome in the pair's shared state and wakes the future's waker.
//! iomgr's wakers are thread-safe: a wake from a foreign thread queues the task to its owning
//! runtime and wakes that runtime out of its ring wait. So the completion is delivered to the
//! owner, which runs the task; the completing thread never polls it.
//!
//! The same rules as [`promise`](super::promise) hold: `set` hands the value back if the
//! future is gone; a promise dropped unset (on any thread) resolves the future with
//! [`PromiseError::Broken`]. The two sides meet through one atomic word and take no lock
//! (see `Inner`); their shared state is one block from the thread's recycled blocks, so after
//! warm-up a pair allocates nothing (a tokio oneshot costs a `malloc`).
//!
//! ```
//! # iomgr::sync::doc_block_on(async {
//! let (fut, promise) = iomgr::sync::async_promise::<u64>();
//! std::thread::spawn(move || promise.set(6 * 7).unwrap());
//! assert_eq!(fut.await.unwrap(), 42);
//! # });
//! ```

use std::alloc::Layout;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::ptr::{self, NonNull};
use std::sync::atomic::Ordering::{AcqRel, Acquire};
use std::task::{Context, Poll, Waker};

use super::error::{BoxError, PromiseError};
use super::shim::{AtomicUsize, UnsafeCell};
use crate::util::recycle;

enum Outcome<T> {
    Value(T),
    Failed(BoxError),
    Broken,
}

/// The outcome is in `outcome`: written by the promise before it sets this bit, read by the
/// future only after it saw it.
const COMPLETE: usize = 0b001;
/// A waker is in `waker`: written by the future before it sets this bit, read by the promise
/// only after it saw it (and the future changes it only after clearing the bit).
const WAKER_SET: usize = 0b010;
/// The future is gone: an outcome set after this goes back to the promise's caller.
const CLOSED: usize = 0b100;
/// The promise is done with the state (it completed, and woke the future if it had to).
const PROMISE_DONE: usize = 0b1000;
/// The future is done with the state (it took the outcome, or dropped it).
const FUTURE_DONE: usize = 0b1_0000;

/// Every bit is set at most once while it is clear (and `WAKER_SET` cleared only while set),
/// so the updates are `fetch_add`/`fetch_sub` (one `lock xadd` on x86) rather than
/// `fetch_or`/`fetch_and`, whose result costs a compare-and-swap loop.
///
/// The pair's shared state. Who may touch which cell, by `state`:
///
/// - `outcome`: the promise, until it sets `COMPLETE` (if `CLOSED` was already set it takes
///   the outcome back instead: the future will not look); after that, the future.
/// - `waker`: the future while `WAKER_SET` is clear; while it is set, the promise may read
///   (wake) it, so the future clears the bit before replacing the waker. Dropped with the
///   state itself, when both sides are gone.
/// - the state itself: each side sets its `*_DONE` bit when it will not touch the state
///   again; the one that sets the second frees it ([`release`]).
struct Inner<T> {
    state: AtomicUsize,
    outcome: UnsafeCell<Option<Outcome<T>>>,
    waker: UnsafeCell<Option<Waker>>,
}

// SAFETY: the cells are accessed by one side at a time, as the protocol above says, and each
// hand-over is an acquire/release pair on `state`; values cross threads, so `T: Send`.
unsafe impl<T: Send> Send for Inner<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Inner<T> {}

impl<T> Inner<T> {
    /// The future takes the outcome. Call only after seeing `COMPLETE`, once.
    fn take_outcome(&self) -> Outcome<T> {
        // SAFETY: after `COMPLETE` the promise no longer touches the cell (the acquire that
        // saw the bit orders its write before this read), and the future reads it once.
        self.outcome
            .with_mut(|o| unsafe { (*o).take() })
            .expect("a completed promise holds its outcome until the future takes it")
    }
}

/// One side lets go of the state (`done` is its `*_DONE` bit); the side that lets go second
/// drops and frees it.
///
/// # Safety
/// `ptr` came from [`async_promise`], the caller is the side that owns `done`, calls this
/// once, and does not touch the state afterwards.
unsafe fn release<T>(ptr: NonNull<Inner<T>>, done: usize) {
    // SAFETY: the caller has not let go yet, so the state is alive.
    // (`done` is clear: each side releases once; see `Inner` for why an add.)
    let prev = unsafe { ptr.as_ref() }.state.fetch_add(done, AcqRel);
    if prev & (PROMISE_DONE | FUTURE_DONE) == 0 {
        return;
    }
    // SAFETY: the other side let go before us (its release is ordered before our acquire),
    // so nothing else uses the state: drop it in place once and give its block back (it came
    // from `recycle::alloc` with this layout).
    unsafe {
        ptr::drop_in_place(ptr.as_ptr());
        recycle::dealloc(ptr.cast(), Layout::new::<Inner<T>>());
    }
}

/// Makes a connected [`AsyncPromiseFuture`] / [`AsyncPromise`] pair. Call it on the runtime
/// that will await the future.
pub fn async_promise<T>() -> (AsyncPromiseFuture<T>, AsyncPromise<T>) {
    let ptr = recycle::alloc(Layout::new::<Inner<T>>()).cast::<Inner<T>>();
    // SAFETY: the block is valid for an `Inner<T>` and uninitialized.
    unsafe {
        ptr.as_ptr().write(Inner {
            state: AtomicUsize::new(0),
            outcome: UnsafeCell::new(None),
            waker: UnsafeCell::new(None),
        })
    };
    (
        AsyncPromiseFuture {
            shared: Some(ptr),
            _not_send: PhantomData,
        },
        AsyncPromise { shared: Some(ptr) },
    )
}

/// The completing half of a cross-thread pair: `Send` (when `T` is), usable on any thread.
#[must_use = "dropping a promise unset resolves its future with `PromiseError::Broken`"]
pub struct AsyncPromise<T> {
    /// The shared state, until the promise lets go of it.
    shared: Option<NonNull<Inner<T>>>,
}

// SAFETY: the promise touches the shared state only as the protocol on `Inner` allows, from
// whichever thread it is on; the outcome it hands over crosses threads, so `T: Send`.
unsafe impl<T: Send> Send for AsyncPromise<T> {}
// SAFETY: `&AsyncPromise` only reads the state word (`is_abandoned`).
unsafe impl<T: Send> Sync for AsyncPromise<T> {}

impl<T> AsyncPromise<T> {
    /// Completes with `outcome`, then lets go of the state.
    #[inline(always)]
    fn finish(&mut self, outcome: Outcome<T>) -> Result<(), Outcome<T>> {
        let shared = self.shared.take().expect("promise already completed");
        // SAFETY: the promise has not let go yet, so the state is alive.
        let result = complete(unsafe { shared.as_ref() }, outcome);
        // SAFETY: the promise's one release; it does not touch the state afterwards.
        unsafe { release(shared, PROMISE_DONE) };
        result
    }
}

impl<T> AsyncPromise<T> {
    /// Stores `value` and wakes the future on its runtime.
    ///
    /// Returns `Err(value)` if the future was already dropped.
    pub fn set(mut self, value: T) -> Result<(), T> {
        self.finish(Outcome::Value(value)).map_err(|o| match o {
            Outcome::Value(v) => v,
            _ => unreachable!("complete hands back what it was given"),
        })
    }

    /// Resolves the future with [`PromiseError::Failed`] carrying `error`, and wakes it.
    ///
    /// Returns the boxed error if the future was already dropped.
    pub fn fail(mut self, error: impl Into<BoxError>) -> Result<(), BoxError> {
        self.finish(Outcome::Failed(error.into()))
            .map_err(|o| match o {
                Outcome::Failed(e) => e,
                _ => unreachable!("complete hands back what it was given"),
            })
    }

    /// Whether the future has been dropped, so [`set`](AsyncPromise::set) would hand the
    /// value back.
    pub fn is_abandoned(&self) -> bool {
        match self.shared {
            // SAFETY: the promise has not let go yet, so the state is alive.
            Some(s) => unsafe { s.as_ref() }.state.load(Acquire) & CLOSED != 0,
            None => true,
        }
    }
}

/// Stores `outcome` unless the future is gone (then hands it back), and wakes the future.
#[inline(always)]
fn complete<T>(shared: &Inner<T>, outcome: Outcome<T>) -> Result<(), Outcome<T>> {
    if shared.state.load(Acquire) & CLOSED != 0 {
        return Err(outcome);
    }
    // SAFETY: `COMPLETE` is not set (only this side sets it, once), so the cell is ours, and
    // it holds `None` (nothing to drop: written in place, not assigned).
    shared
        .outcome
        .with_mut(|o| unsafe { o.write(Some(outcome)) });
    let prev = shared.state.fetch_add(COMPLETE, AcqRel);
    if prev & CLOSED != 0 {
        // The future went away before it could see the outcome, and never will look: take
        // it back. (`CLOSED` was set before our `COMPLETE`, so the future's drop saw no
        // outcome to drop.)
        // SAFETY: the future reads the cell only if it saw `COMPLETE` before `CLOSED`.
        let outcome = shared.outcome.with_mut(|o| unsafe { (*o).take() });
        return Err(outcome.expect("written above"));
    }
    if prev & WAKER_SET != 0 {
        shared.waker.with(|w| {
            // SAFETY: `WAKER_SET` was set when we set `COMPLETE` (acquire: the waker's write
            // is visible). The future writes the waker only after clearing the bit with an
            // RMW that comes after ours, so it sees `COMPLETE` and does not write; the waker
            // is dropped only with `Inner`, which is alive until we let go of it.
            if let Some(w) = unsafe { &*w } {
                w.wake_by_ref();
            }
        });
    }
    Ok(())
}

impl<T> Drop for AsyncPromise<T> {
    fn drop(&mut self) {
        if self.shared.is_some() {
            // Dropped unset: break the promise so the future does not wait forever.
            let _ = self.finish(Outcome::Broken);
        }
    }
}

impl<T> fmt::Debug for AsyncPromise<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncPromise")
            .field("completed", &self.shared.is_none())
            .finish()
    }
}

/// The awaiting half of a cross-thread pair. `!Send`: it stays on the runtime that made it.
#[must_use = "futures do nothing unless awaited"]
pub struct AsyncPromiseFuture<T> {
    /// The shared state, until the future lets go of it.
    shared: Option<NonNull<Inner<T>>>,
    _not_send: PhantomData<*const ()>,
}

/// The future's side of a poll: the outcome once the promise completed (taken), else
/// `None` with the task's waker stored for the promise to wake.
fn poll_outcome<T>(shared: &Inner<T>, cx: &mut Context<'_>) -> Option<Outcome<T>> {
    let mut state = shared.state.load(Acquire);
    if state & COMPLETE != 0 {
        return Some(shared.take_outcome());
    }
    if state & WAKER_SET != 0 {
        let same = shared.waker.with(|w| {
            // SAFETY: only this side writes the waker, so this read races with nothing but
            // the promise's reads.
            let stored = unsafe { &*w };
            stored.as_ref().is_some_and(|w| w.will_wake(cx.waker()))
        });
        if same {
            return None;
        }
        // Take the waker back from the promise before replacing it.
        // (Set, as seen above, and only this side changes it.)
        state = shared.state.fetch_sub(WAKER_SET, AcqRel);
        if state & COMPLETE != 0 {
            return Some(shared.take_outcome());
        }
    }
    // The new waker's clone and the old one's drop are user code; no lock is held.
    let waker = cx.waker().clone();
    // SAFETY: `WAKER_SET` is clear, so the promise does not touch the cell.
    let old = shared.waker.with_mut(|w| unsafe { (*w).replace(waker) });
    drop(old);
    // (Clear: checked or cleared above, and only this side sets it.)
    state = shared.state.fetch_add(WAKER_SET, AcqRel);
    if state & COMPLETE != 0 {
        // Completed while we were storing the waker (the promise did not wake it).
        return Some(shared.take_outcome());
    }
    None
}

impl<T> Future for AsyncPromiseFuture<T> {
    type Output = Result<T, PromiseError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let shared = self
            .shared
            .expect("AsyncPromiseFuture polled after it completed");
        // SAFETY: the future has not let go yet, so the state is alive.
        let Some(outcome) = poll_outcome(unsafe { shared.as_ref() }, cx) else {
            return Poll::Pending;
        };
        self.shared = None;
        // SAFETY: the future's one release (`shared` is cleared); it took the outcome and
        // does not touch the state afterwards.
        unsafe { release(shared, FUTURE_DONE) };
        Poll::Ready(match outcome {
            Outcome::Value(v) => Ok(v),
            Outcome::Failed(e) => Err(PromiseError::Failed(e)),
            Outcome::Broken => Err(PromiseError::Broken),
        })
    }
}

impl<T> Drop for AsyncPromiseFuture<T> {
    fn drop(&mut self) {
        if let Some(ptr) = self.shared.take() {
            // SAFETY: the future has not let go yet, so the state is alive.
            let shared = unsafe { ptr.as_ref() };
            // (Clear: only this drop sets it.)
            let prev = shared.state.fetch_add(CLOSED, AcqRel);
            let outcome = (prev & COMPLETE != 0).then(|| shared.take_outcome());
            // SAFETY: the future's one release; it does not touch the state afterwards.
            unsafe { release(ptr, FUTURE_DONE) };
            // An outcome nobody will take: dropped here, on the owner's thread, once the
            // state is let go (a value's destructor may do anything).
            drop(outcome);
        }
    }
}

impl<T> fmt::Debug for AsyncPromiseFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncPromiseFuture")
            .field("completed", &self.shared.is_none())
            .finish()
    }
}
