//! The per-thread awaiter pool behind [`promise`](super::promise) and
//! [`FutureWith`](super::FutureWith).
//!
//! A promise/future pair shares one [`Awaiter`]: a small record that says whether the value
//! has arrived, which task to wake, and which sides are still alive. Awaiters live in a
//! thread-local [`Slab`]; a freed awaiter's slot is reused by the next pair, so once the slab
//! has grown to the number of pairs alive at once, making a pair allocates nothing.
//!
//! The value itself goes in one of two places ([`Dest`]):
//! - [`Dest::Inline`]: the awaiter's own [`InlineSlot`] (values of up to [`INLINE_SIZE`] bytes
//!   and alignment at most 16; larger values are boxed into it);
//! - [`Dest::Future`]: a pointer to the memory of a pinned [`FutureWith`](super::FutureWith),
//!   which the promise writes into directly.
//!
//! Both sides hold the awaiter's key, never a pointer into the slab, so the slab may grow.
//! The slot is removed only when both sides are gone, so a key is never stale.

use std::cell::RefCell;
use std::mem::{self, MaybeUninit};
use std::ptr;
use std::task::Waker;

use slab::Slab;

use super::error::BoxError;

/// Bytes of value an awaiter stores inline; larger values are boxed.
pub(crate) const INLINE_SIZE: usize = 64;

/// Inline, 16-aligned storage for one value of any type that fits.
#[repr(C, align(16))]
pub(crate) struct InlineSlot([MaybeUninit<u8>; INLINE_SIZE]);

/// Whether `T` fits an [`InlineSlot`] (checked at compile time per `T`).
pub(crate) const fn fits_inline<T>() -> bool {
    mem::size_of::<T>() <= INLINE_SIZE && mem::align_of::<T>() <= 16
}

impl InlineSlot {
    const fn new() -> Self {
        InlineSlot([MaybeUninit::uninit(); INLINE_SIZE])
    }

    /// Moves `value` in; boxes it first if it does not fit.
    ///
    /// The slot must be empty (a value written earlier must have been taken), or that value
    /// leaks.
    pub(crate) fn write<T>(&mut self, value: T) {
        if fits_inline::<T>() {
            // SAFETY: `fits_inline::<T>()` says `T` is at most INLINE_SIZE bytes and needs at
            // most 16-byte alignment; the slot is INLINE_SIZE bytes and 16-aligned, so the
            // pointer is valid and aligned for one `T`.
            unsafe { ptr::write(self.0.as_mut_ptr().cast::<T>(), value) }
        } else {
            let boxed: Box<T> = Box::new(value);
            // SAFETY: a `Box<T>` is pointer-sized and pointer-aligned, which the 64-byte,
            // 16-aligned slot accommodates.
            unsafe { ptr::write(self.0.as_mut_ptr().cast::<Box<T>>(), boxed) }
        }
    }

    /// Moves the value out.
    ///
    /// # Safety
    /// The slot must hold a value written by `write::<T>` with this same `T`, not yet taken.
    pub(crate) unsafe fn take<T>(&mut self) -> T {
        if fits_inline::<T>() {
            // SAFETY: the caller guarantees a `T` was written here by `write::<T>`, which
            // stored it inline because it fits; it is read out exactly once.
            unsafe { ptr::read(self.0.as_ptr().cast::<T>()) }
        } else {
            // SAFETY: as above, but `write::<T>` stored a `Box<T>` because `T` did not fit.
            *unsafe { ptr::read(self.0.as_ptr().cast::<Box<T>>()) }
        }
    }
}

/// Where the promise puts the value.
#[derive(Clone, Copy)]
pub(crate) enum Dest {
    /// In the awaiter's own [`InlineSlot`].
    Inline,
    /// In a pinned `FutureWith<T>`'s `Option<T>`, at this address; null once that future is
    /// gone.
    Future(*mut ()),
}

/// How far the pair has got.
pub(crate) enum State {
    /// No outcome yet.
    Pending,
    /// The value has been written to the destination and not yet taken.
    Ready,
    /// The promise was failed with this error.
    Failed(BoxError),
    /// The promise was dropped without an outcome.
    Broken,
    /// The future took the outcome.
    Taken,
}

/// One promise/future pair's shared record.
pub(crate) struct Awaiter {
    pub(crate) state: State,
    pub(crate) waker: Option<Waker>,
    pub(crate) dest: Dest,
    pub(crate) slot: InlineSlot,
    pub(crate) promise_alive: bool,
    pub(crate) future_alive: bool,
}

thread_local! {
    static POOL: RefCell<Slab<Awaiter>> = const { RefCell::new(Slab::new()) };
}

/// Takes an awaiter from this thread's pool (reusing a freed one when there is one).
pub(crate) fn acquire(dest: Dest) -> usize {
    POOL.with(|p| {
        p.borrow_mut().insert(Awaiter {
            state: State::Pending,
            waker: None,
            dest,
            slot: InlineSlot::new(),
            promise_alive: true,
            future_alive: true,
        })
    })
}

/// Runs `f` on awaiter `key`. Returns `None` only while this thread's pool is being torn
/// down (thread exit), when the pair no longer matters.
///
/// `f` must not run user code (no waker clone, wake or drop, no value drop: return them and
/// let them go after `with` returns), because user code may use promises and so the pool.
pub(crate) fn with<R>(key: usize, f: impl FnOnce(&mut Awaiter) -> R) -> Option<R> {
    POOL.try_with(|p| f(&mut p.borrow_mut()[key])).ok()
}

/// Gives awaiter `key` back to the pool. Its value, if any, must already have been taken.
pub(crate) fn release(key: usize) {
    let _ = POOL.try_with(|p| {
        let removed = p.borrow_mut().remove(key);
        drop(removed);
    });
}

/// How many awaiters this thread's pool holds right now (alive pairs), for tests.
#[cfg(all(test, not(loom)))]
pub(crate) fn in_use() -> usize {
    POOL.with(|p| p.borrow().len())
}
