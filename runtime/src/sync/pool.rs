//! The per-thread awaiter pool behind [`promise`](super::promise) and
//! [`FutureWith`](super::FutureWith).
//!
//! A promise/future pair shares one [`Awaiter`]: a small record that says whether the value
//! has arrived, which task to wake, and which sides are still alive. Awaiters live in a
//! thread-local vector; a freed awaiter stays in place on a free list (linked through the
//! awaiters) and is reused by the next pair, which resets only its small header fields (the
//! value slot is left as it is: it holds nothing). So once the vector has grown to the
//! number of pairs alive at once, making a pair allocates and copies nothing.
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
    /// While free: the next free awaiter ([`NONE`] at the end of the list).
    next_free: usize,
}

/// The end of the free list.
const NONE: usize = usize::MAX;

struct Pool {
    awaiters: Vec<Awaiter>,
    /// The most recently freed awaiter, heading the free list.
    free: usize,
    /// Awaiters in use.
    live: usize,
}

thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool {
            awaiters: Vec::new(),
            free: NONE,
            live: 0,
        })
    };
}

/// Takes an awaiter from this thread's pool (reusing a freed one when there is one).
#[inline]
pub(crate) fn acquire(dest: Dest) -> usize {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        p.live += 1;
        let key = p.free;
        if let Some(a) = p.awaiters.get_mut(key) {
            // A freed awaiter holds nothing (see `release_in`): reset its header only.
            let next = a.next_free;
            a.state = State::Pending;
            a.dest = dest;
            a.promise_alive = true;
            a.future_alive = true;
            p.free = next;
            return key;
        }
        p.awaiters.push(Awaiter {
            state: State::Pending,
            waker: None,
            dest,
            slot: InlineSlot::new(),
            promise_alive: true,
            future_alive: true,
            next_free: NONE,
        });
        p.awaiters.len() - 1
    })
}

/// Runs `f` on awaiter `key`. Returns `None` only while this thread's pool is being torn
/// down (thread exit), when the pair no longer matters.
///
/// `f` must not run user code (no waker clone, wake or drop, no value drop: return them and
/// let them go after `with` returns), because user code may use promises and so the pool.
#[inline]
pub(crate) fn with<R>(key: usize, f: impl FnOnce(&mut Awaiter) -> R) -> Option<R> {
    POOL.try_with(|p| f(&mut p.borrow_mut().awaiters[key])).ok()
}

/// As [`with`], and if `f` says so (its second result), gives the awaiter back to the pool
/// in the same borrow. `f` must have taken the value and the waker out first.
#[inline(always)]
pub(crate) fn with_release<R>(key: usize, f: impl FnOnce(&mut Awaiter) -> (R, bool)) -> Option<R> {
    POOL.try_with(|p| {
        let mut p = p.borrow_mut();
        let (r, free) = f(&mut p.awaiters[key]);
        if free {
            release_in(&mut p, key);
        }
        r
    })
    .ok()
}

/// Puts awaiter `key` on the free list. Its value must have been taken, and its waker.
fn release_in(p: &mut Pool, key: usize) {
    let free = p.free;
    let a = &mut p.awaiters[key];
    debug_assert!(a.waker.is_none(), "a freed awaiter keeps no waker");
    // `Taken` holds nothing; a `Failed` error was moved out by whoever took the outcome.
    debug_assert!(matches!(
        a.state,
        State::Taken | State::Broken | State::Pending
    ));
    a.state = State::Taken;
    a.next_free = free;
    p.free = key;
    p.live -= 1;
}

/// Gives awaiter `key` back to the pool. Its value, if any, must already have been taken;
/// a waker or error it still holds is dropped once the pool is no longer borrowed.
pub(crate) fn release(key: usize) {
    let leftovers = POOL.try_with(|p| {
        let mut p = p.borrow_mut();
        let a = &mut p.awaiters[key];
        let leftovers = (a.waker.take(), mem::replace(&mut a.state, State::Taken));
        release_in(&mut p, key);
        leftovers
    });
    drop(leftovers);
}

/// How many awaiters this thread's pool holds right now (alive pairs), for tests.
#[cfg(all(test, not(loom)))]
pub(crate) fn in_use() -> usize {
    POOL.with(|p| p.borrow().live)
}
