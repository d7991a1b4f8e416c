//! [`MemoryError`]: everything that can go wrong when storing or reaching a message.

use core::fmt;

/// Why a [`MemoryManager`](super::MemoryManager) operation failed.
///
/// No manager panics or overwrites a message to report these: every failure is a value,
/// and the manager is unchanged by a failed call. [`store`] drops the message it could not
/// store; [`try_store`](super::MemoryManager::try_store) hands it back in a [`StoreError`].
///
/// [`store`]: super::MemoryManager::store
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MemoryError {
    /// Every slot is in use: free a message or use a larger (or growable) manager.
    NoFreeSlots,
    /// The token does not name a live message of this manager: its index is out of range,
    /// or its message was freed (the slot's generation moved on), or it is being freed.
    BadToken,
    /// The token's slot holds no message (a hand-made token for a slot never filled at that
    /// generation).
    NotAllocated,
    /// The message is borrowed in a way that conflicts with the borrow asked for
    /// (a write while reading, or anything while writing).
    AlreadyBorrowed,
    /// The message cannot be freed while a read or write guard to it is alive.
    BorrowActive,
    /// A thread panicked while holding a write guard to this message, so it may be half
    /// updated. It can still be freed.
    Poisoned,
    /// The message does not fit in a slot of this manager (a
    /// [`RegisteredMemoryManager`](super::RegisteredMemoryManager) slot has a fixed size).
    TooLarge,
}

impl MemoryError {
    /// A sentence a person can act on.
    pub const fn message(self) -> &'static str {
        match self {
            MemoryError::NoFreeSlots => {
                "no free slot: every slot of the memory manager holds a message; free one or use a larger manager"
            }
            MemoryError::BadToken => {
                "bad token: it does not name a live message of this manager (out of range, or the message was freed and its slot reused)"
            }
            MemoryError::NotAllocated => "the token's slot holds no message",
            MemoryError::AlreadyBorrowed => {
                "the message is already borrowed: it cannot be written while read, nor touched while written"
            }
            MemoryError::BorrowActive => {
                "the message is still borrowed: drop its read and write guards before freeing it"
            }
            MemoryError::Poisoned => {
                "the message is poisoned: a thread panicked while writing it; free it and store it again"
            }
            MemoryError::TooLarge => {
                "the message is larger than a slot of this manager; use a manager with larger slots"
            }
        }
    }
}

impl fmt::Display for MemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for MemoryError {}

/// A [`try_store`](super::MemoryManager::try_store) that failed: the error, and the message
/// that was not stored, handed back so nothing is lost.
pub struct StoreError<P> {
    /// Why the message was not stored (normally [`MemoryError::NoFreeSlots`]).
    pub error: MemoryError,
    /// The message, unchanged.
    pub message: super::Message<P>,
}

impl<P> StoreError<P> {
    /// The message that was not stored.
    pub fn into_message(self) -> super::Message<P> {
        self.message
    }
}

impl<P> From<StoreError<P>> for MemoryError {
    fn from(e: StoreError<P>) -> Self {
        e.error
    }
}

impl<P> fmt::Debug for StoreError<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreError")
            .field("error", &self.error)
            .field("sequence", &self.message.header.sequence)
            .finish_non_exhaustive()
    }
}

impl<P> fmt::Display for StoreError<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (the message is handed back)", self.error)
    }
}

impl<P> std::error::Error for StoreError<P> {}
