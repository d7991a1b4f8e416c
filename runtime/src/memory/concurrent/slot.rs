//! [`SharedSlot`]: one message cell with its own lock, and the guards that hold it.
//!
//! Each slot has one atomic *state word*: the slot's generation in the high 32 bits and its
//! borrow state in the low 32 bits:
//!
//! | low bits        | meaning                                                  |
//! |-----------------|----------------------------------------------------------|
//! | `VACANT` (0)    | no message; the index is on the free stack or being filled |
//! | `1 + n`         | a message, read by `n` guards (`IDLE` = 1: no guard)     |
//! | `POISONED`      | a message whose writer panicked                          |
//! | `EMPTYING`      | the message is being dropped or moved out by `free`/`take` |
//! | `WRITING`       | a message held by a write guard                          |
//!
//! Every transition is one compare-exchange on the state word, made only when its
//! generation equals the token's, so a stale token can never lock a slot. Freeing moves the
//! generation on: `(g, IDLE) -> (g, EMPTYING) -> (g + 1, VACANT)`.

use core::fmt;
use core::mem::MaybeUninit;
use core::ops::{Deref, DerefMut};

use super::sync::{AtomicU64, Ordering, UnsafeCell};
use crate::memory::{MemoryError, Message, MessageToken};

const VACANT: u32 = 0;
const IDLE: u32 = 1;
const POISONED: u32 = u32::MAX - 2;
const EMPTYING: u32 = u32::MAX - 1;
const WRITING: u32 = u32::MAX;
/// The largest borrow value to which one more reader can be added.
const ROOM_FOR_A_READER: u32 = POISONED - 2;

const fn state(generation: u32, borrow: u32) -> u64 {
    ((generation as u64) << 32) | borrow as u64
}

const fn generation_of(state: u64) -> u32 {
    (state >> 32) as u32
}

const fn borrow_of(state: u64) -> u32 {
    state as u32
}

/// One slot of the concurrent manager.
pub(crate) struct SharedSlot<P> {
    state: AtomicU64,
    /// Initialized exactly when the borrow state is neither `VACANT` nor (after the value
    /// was moved out) `EMPTYING`.
    message: UnsafeCell<MaybeUninit<Message<P>>>,
}

// SAFETY: the message is reached only through the state word's protocol: many `&Message`
// (read guards, possibly on several threads: needs `P: Sync`) or one `&mut Message` (write
// guard, store, free: may move or drop it on another thread: needs `P: Send`), never both.
unsafe impl<P: Send + Sync> Sync for SharedSlot<P> {}

impl<P> SharedSlot<P> {
    /// A vacant slot at generation 0.
    pub(crate) fn new() -> Self {
        SharedSlot {
            state: AtomicU64::new(state(0, VACANT)),
            message: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// Fills this vacant slot, which the caller has just popped off the free stack (so no
    /// other thread may fill it), and returns the token that names the message.
    pub(crate) fn fill(&self, index: u32, message: Message<P>) -> MessageToken {
        let current = self.state.load(Ordering::Acquire);
        debug_assert_eq!(borrow_of(current), VACANT);
        let generation = generation_of(current);
        // SAFETY: the slot is vacant and its index was popped by us: no guard exists (guards
        // are made only from an occupied state) and no other `fill` can run, so we have
        // exclusive access to the cell.
        self.message
            .with_mut(|cell| unsafe { (*cell).write(message) });
        // Release: publishes the message to the acquiring lockers.
        self.state.store(state(generation, IDLE), Ordering::Release);
        MessageToken::new(index, generation)
    }

    /// Moves the state from `(token generation, borrow)` to `(token generation,
    /// next(borrow))`, or reports why it cannot.
    fn transition(
        &self,
        token: MessageToken,
        next: impl Fn(u32) -> Result<u32, MemoryError>,
    ) -> Result<(), MemoryError> {
        let mut current = self.state.load(Ordering::Relaxed);
        loop {
            if generation_of(current) != token.generation() {
                return Err(MemoryError::BadToken);
            }
            let borrow = next(borrow_of(current))?;
            // Acquire: see the message as the last filler or writer left it.
            match self.state.compare_exchange_weak(
                current,
                state(token.generation(), borrow),
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(actual) => current = actual,
            }
        }
    }

    /// Takes a read lock.
    pub(crate) fn lock_read(&self, token: MessageToken) -> Result<ReadGuard<'_, P>, MemoryError> {
        self.transition(token, |borrow| match borrow {
            IDLE..=ROOM_FOR_A_READER => Ok(borrow + 1),
            VACANT => Err(MemoryError::NotAllocated),
            EMPTYING => Err(MemoryError::BadToken),
            POISONED => Err(MemoryError::Poisoned),
            _ => Err(MemoryError::AlreadyBorrowed),
        })?;
        Ok(ReadGuard { slot: self })
    }

    /// Takes the write lock.
    pub(crate) fn lock_write(&self, token: MessageToken) -> Result<WriteGuard<'_, P>, MemoryError> {
        self.transition(token, |borrow| match borrow {
            IDLE => Ok(WRITING),
            VACANT => Err(MemoryError::NotAllocated),
            EMPTYING => Err(MemoryError::BadToken),
            POISONED => Err(MemoryError::Poisoned),
            _ => Err(MemoryError::AlreadyBorrowed),
        })?;
        Ok(WriteGuard {
            slot: self,
            generation: token.generation(),
            panicking_at_lock: std::thread::panicking(),
        })
    }

    /// Moves the message out and makes the slot vacant at the next generation. The caller
    /// then pushes the index back on the free stack.
    pub(crate) fn take(&self, token: MessageToken) -> Result<Message<P>, MemoryError> {
        // SAFETY: `vacate` hands us the initialized message, which we read out exactly once.
        self.vacate(token, |cell| unsafe { (*cell).assume_init_read() })
    }

    /// Drops the message where it lies (no move: cheap for large payloads) and makes the
    /// slot vacant at the next generation. The caller then pushes the index back on the
    /// free stack. If dropping the payload panics, the slot is never reused (a leak, not
    /// unsoundness).
    pub(crate) fn drop_message(&self, token: MessageToken) -> Result<(), MemoryError> {
        // SAFETY: `vacate` hands us the initialized message, which we drop exactly once.
        self.vacate(token, |cell| unsafe { (*cell).assume_init_drop() })
    }

    /// Locks the slot for emptying, runs `empty` on the cell (which holds a message that
    /// `empty` must move out or drop), and makes the slot vacant at the next generation.
    fn vacate<R>(
        &self,
        token: MessageToken,
        empty: impl FnOnce(*mut MaybeUninit<Message<P>>) -> R,
    ) -> Result<R, MemoryError> {
        self.transition(token, |borrow| match borrow {
            IDLE | POISONED => Ok(EMPTYING),
            VACANT => Err(MemoryError::NotAllocated),
            EMPTYING => Err(MemoryError::BadToken),
            _ => Err(MemoryError::BorrowActive),
        })?;
        // We moved the state from occupied-without-guards to `EMPTYING`, so the cell holds a
        // message and no guard, filler or other emptier can reach it until we make the slot
        // vacant below.
        let emptied = self.message.with_mut(empty);
        let vacant = state(token.generation().wrapping_add(1), VACANT);
        self.state.store(vacant, Ordering::Release);
        Ok(emptied)
    }

    /// The message, for a guard holding a read lock.
    fn shared_message(&self) -> *const Message<P> {
        self.message.with(|cell| cell.cast::<Message<P>>())
    }

    /// The message, for the guard holding the write lock.
    fn exclusive_message(&self) -> *mut Message<P> {
        self.message.with_mut(|cell| cell.cast::<Message<P>>())
    }
}

impl<P> Drop for SharedSlot<P> {
    fn drop(&mut self) {
        let borrow = borrow_of(self.state.load(Ordering::Acquire));
        if borrow != VACANT && borrow != EMPTYING {
            // SAFETY: `&mut self`, so no guard is alive (guards borrow the slot); the
            // borrow state says the cell holds a message, dropped exactly once here.
            self.message
                .with_mut(|cell| unsafe { (*cell).assume_init_drop() });
        }
    }
}

impl<P> fmt::Debug for SharedSlot<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.state.load(Ordering::Relaxed);
        f.debug_struct("SharedSlot")
            .field("generation", &generation_of(current))
            .field("borrow", &borrow_of(current))
            .finish()
    }
}

/// A read lock on one message of a
/// [`ConcurrentMemoryManager`](super::ConcurrentMemoryManager); other readers may hold the
/// same message, writers and `free` wait for it to drop (they fail, they do not block).
pub struct ReadGuard<'a, P> {
    slot: &'a SharedSlot<P>,
}

impl<P> Deref for ReadGuard<'_, P> {
    type Target = Message<P>;
    fn deref(&self) -> &Message<P> {
        // SAFETY: this guard holds a read lock, so the cell holds a message that nobody
        // writes, moves or drops until the lock is released when the guard drops; the
        // reference cannot outlive the guard.
        unsafe { &*self.slot.shared_message() }
    }
}

impl<P> Drop for ReadGuard<'_, P> {
    fn drop(&mut self) {
        // Release: our reads happen before a later writer's or emptier's acquire.
        self.slot.state.fetch_sub(1, Ordering::Release);
    }
}

impl<P: fmt::Debug> fmt::Debug for ReadGuard<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// The write lock on one message of a
/// [`ConcurrentMemoryManager`](super::ConcurrentMemoryManager). If the thread holding it
/// panics, the message is marked poisoned: reads give [`MemoryError::Poisoned`] until it is
/// freed.
pub struct WriteGuard<'a, P> {
    slot: &'a SharedSlot<P>,
    generation: u32,
    /// Whether the thread was already unwinding when the lock was taken: only a panic that
    /// starts while the guard is held can leave the message half-written (as `std` mutexes).
    panicking_at_lock: bool,
}

impl<P> Deref for WriteGuard<'_, P> {
    type Target = Message<P>;
    fn deref(&self) -> &Message<P> {
        // SAFETY: this guard holds the write lock: the cell holds a message that only this
        // guard can reach until it drops.
        unsafe { &*self.slot.exclusive_message() }
    }
}

impl<P> DerefMut for WriteGuard<'_, P> {
    fn deref_mut(&mut self) -> &mut Message<P> {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference through the guard.
        unsafe { &mut *self.slot.exclusive_message() }
    }
}

impl<P> Drop for WriteGuard<'_, P> {
    fn drop(&mut self) {
        let borrow = if std::thread::panicking() && !self.panicking_at_lock {
            POISONED
        } else {
            IDLE
        };
        // Release: our writes happen before the next locker's acquire.
        self.slot
            .state
            .store(state(self.generation, borrow), Ordering::Release);
    }
}

impl<P: fmt::Debug> fmt::Debug for WriteGuard<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
