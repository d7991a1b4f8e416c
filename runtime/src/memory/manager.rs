//! The traits every manager implements: [`HeaderStore`], [`MemoryManager`] and, for managers
//! shared across threads, [`ScopedManager`].

use core::ops::{Deref, DerefMut};

use super::{MemoryClass, MemoryError, Message, MessageHeader, MessageToken, StoreError};

/// Reads a message's header without knowing its payload type.
///
/// Schedulers and pipelines that only route by sequence, size, flags or class can hold a
/// `&dyn HeaderStore` for any manager.
pub trait HeaderStore {
    /// A copy of the header of the message named by `token`.
    ///
    /// # Errors
    ///
    /// The same as [`MemoryManager::read`]: [`MemoryError::BadToken`],
    /// [`MemoryError::NotAllocated`], and for shared managers
    /// [`MemoryError::AlreadyBorrowed`] (the message is being written) or
    /// [`MemoryError::Poisoned`].
    fn header(&self, token: MessageToken) -> Result<MessageHeader, MemoryError>;
}

/// Token-addressed storage for [`Message<P>`] values.
///
/// A manager owns the messages stored in it and hands out [`MessageToken`]s: small `Copy`
/// handles that tasks and pipeline stages pass around instead of moving large messages.
/// [`read`](Self::read) and [`read_mut`](Self::read_mut) return guards, so a single-threaded
/// manager can return plain references while a shared one returns slot-lock guards; the
/// trait is the same for both.
///
/// The trait is safe to implement and to use; the unsafe code of a manager stays inside it.
/// Failures are [`MemoryError`] values, never panics.
pub trait MemoryManager<P>: HeaderStore {
    /// What [`read`](Self::read) returns: dereferences to the message.
    type ReadGuard<'a>: Deref<Target = Message<P>>
    where
        Self: 'a;

    /// What [`read_mut`](Self::read_mut) returns: dereferences mutably to the message.
    type WriteGuard<'a>: DerefMut<Target = Message<P>>
    where
        Self: 'a;

    /// Stores `message` in a free slot and returns its token. The header's
    /// [`memory_class`](MessageHeader::memory_class) is set to this manager's class.
    ///
    /// # Errors
    ///
    /// [`MemoryError::NoFreeSlots`] if every slot is in use; the message comes back inside
    /// the [`StoreError`], untouched.
    fn try_store(&mut self, message: Message<P>) -> Result<MessageToken, StoreError<P>>;

    /// [`try_store`](Self::try_store) for callers that do not need the message back: on
    /// failure it is dropped.
    ///
    /// # Errors
    ///
    /// [`MemoryError::NoFreeSlots`] if every slot is in use.
    fn store(&mut self, message: Message<P>) -> Result<MessageToken, MemoryError> {
        self.try_store(message).map_err(|e| e.error)
    }

    /// Borrows the message named by `token`.
    ///
    /// # Errors
    ///
    /// [`MemoryError::BadToken`] if the token is out of range or stale (its message was
    /// freed), [`MemoryError::NotAllocated`] if its slot is empty, and for shared managers
    /// [`MemoryError::AlreadyBorrowed`] while the message is being written or
    /// [`MemoryError::Poisoned`] after a writer panicked.
    fn read(&self, token: MessageToken) -> Result<Self::ReadGuard<'_>, MemoryError>;

    /// Borrows the message named by `token` for changing it in place.
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read); [`MemoryError::AlreadyBorrowed`] also while it is being read.
    fn read_mut(&mut self, token: MessageToken) -> Result<Self::WriteGuard<'_>, MemoryError>;

    /// Drops the message named by `token` and frees its slot. The token (and every copy of
    /// it) becomes stale: using it again gives [`MemoryError::BadToken`].
    ///
    /// # Errors
    ///
    /// [`MemoryError::BadToken`] for a stale or out-of-range token (so freeing twice is
    /// `BadToken`), [`MemoryError::NotAllocated`] for an empty slot, and for shared managers
    /// [`MemoryError::BorrowActive`] while a guard to the message is alive.
    fn free(&mut self, token: MessageToken) -> Result<(), MemoryError>;

    /// How many more messages can be stored now (for a growable manager: without growing).
    fn available(&self) -> usize;

    /// How many messages the manager can hold now (for a growable manager: without growing).
    fn capacity(&self) -> usize;

    /// Where this manager keeps its messages.
    fn memory_class(&self) -> MemoryClass;
}

/// A manager shared by worker threads, each using its own `Send` handle.
///
/// Every handle implements [`MemoryManager`], so code written against the trait runs
/// unchanged on a worker; stores and frees through different handles go to the same slots.
pub trait ScopedManager<P>: MemoryManager<P> {
    /// A per-worker handle: a [`MemoryManager`] that can be sent to another thread.
    type Handle<'a>: MemoryManager<P> + Send + 'a
    where
        Self: 'a;

    /// Makes a handle for one worker.
    fn scoped_handle(&self) -> Self::Handle<'_>;
}
