//! [`ConcurrentMemoryManager`]: one set of slots shared by threads, with a lock per slot and
//! a lock-free free list, so `store` and `free` take no global lock.
//!
//! - [`free_stack`]: the lock-free stack of free slot indices (tagged against ABA);
//! - [`slot`]: the per-slot state word (generation + borrow state) and the guards;
//! - [`sync`]: std atomics, or loom's under `cfg(loom)`.

mod free_stack;
mod slot;
mod sync;

#[cfg(all(test, loom))]
mod loom_tests;

use core::fmt;

use self::free_stack::{FreeStack, NO_SLOT};
use self::slot::SharedSlot;
pub use self::slot::{ReadGuard as ConcurrentReadGuard, WriteGuard as ConcurrentWriteGuard};
use super::slot_table::retires;
use super::{
    HeaderStore, MemoryClass, MemoryError, MemoryManager, Message, MessageHeader, MessageToken,
    ScopedManager, StoreError,
};

/// A fixed number of slots shared by threads.
///
/// Every operation takes `&self`: share the manager by reference (`std::thread::scope`),
/// by `Arc`, or give each worker a [`ConcurrentHandle`] (its
/// [`ScopedManager::scoped_handle`]), which implements [`MemoryManager`]. There is no global
/// lock: `store` pops a free slot index off a lock-free stack, `free` pushes it back, and
/// `read` / `read_mut` lock only the message's own slot. Locks never block: a conflicting
/// borrow is [`MemoryError::AlreadyBorrowed`], and freeing a borrowed message is
/// [`MemoryError::BorrowActive`].
///
/// Sharing it across threads needs `P: Send + Sync` (messages are read from several threads
/// and moved between them).
///
/// ```
/// use iomgr::memory::{ConcurrentMemoryManager, MemoryError, Message};
///
/// let manager = ConcurrentMemoryManager::<u64>::new(64);
/// std::thread::scope(|scope| {
///     for worker in 0..4u64 {
///         let manager = &manager;
///         scope.spawn(move || {
///             let token = manager.store(Message::new(worker, worker * 10)).unwrap();
///             manager.read_mut(token).unwrap().payload += 1;
///             let reader = manager.read(token).unwrap();
///             assert_eq!(manager.free(token), Err(MemoryError::BorrowActive));
///             assert_eq!(reader.payload, worker * 10 + 1);
///             drop(reader);
///             manager.free(token).unwrap();
///         });
///     }
/// });
/// assert_eq!(manager.available(), 64);
/// ```
pub struct ConcurrentMemoryManager<P> {
    slots: Box<[SharedSlot<P>]>,
    free: FreeStack,
}

impl<P> ConcurrentMemoryManager<P> {
    /// A manager of `capacity` slots, all allocated now.
    ///
    /// # Panics
    ///
    /// If `capacity` is `u32::MAX` or more (tokens index slots with a `u32`).
    pub fn new(capacity: usize) -> Self {
        assert!(
            capacity < NO_SLOT as usize,
            "a memory manager holds fewer than u32::MAX slots"
        );
        ConcurrentMemoryManager {
            slots: (0..capacity).map(|_| SharedSlot::new()).collect(),
            free: FreeStack::full(capacity as u32),
        }
    }

    /// Stores `message` and returns its token.
    ///
    /// # Errors
    ///
    /// [`MemoryError::NoFreeSlots`] when every slot is in use.
    pub fn store(&self, message: Message<P>) -> Result<MessageToken, MemoryError> {
        self.try_store(message).map_err(|e| e.error)
    }

    /// Stores `message`, handing it back with the error when every slot is in use.
    ///
    /// # Errors
    ///
    /// [`MemoryError::NoFreeSlots`], with the message, if every slot is in use.
    pub fn try_store(&self, mut message: Message<P>) -> Result<MessageToken, StoreError<P>> {
        let Some(index) = self.free.pop() else {
            return Err(StoreError {
                error: MemoryError::NoFreeSlots,
                message,
            });
        };
        message.header.memory_class = MemoryClass::Host;
        Ok(self.slots[index as usize].fill(index, message))
    }

    /// Read-locks the message of `token`.
    ///
    /// # Errors
    ///
    /// As [`MemoryManager::read`]; [`MemoryError::AlreadyBorrowed`] while a write guard is
    /// alive, [`MemoryError::Poisoned`] after a writer panicked.
    pub fn read(&self, token: MessageToken) -> Result<ConcurrentReadGuard<'_, P>, MemoryError> {
        self.slot(token)?.lock_read(token)
    }

    /// Write-locks the message of `token`.
    ///
    /// # Errors
    ///
    /// As [`MemoryManager::read_mut`]; [`MemoryError::AlreadyBorrowed`] while any other
    /// guard to it is alive.
    pub fn read_mut(
        &self,
        token: MessageToken,
    ) -> Result<ConcurrentWriteGuard<'_, P>, MemoryError> {
        self.slot(token)?.lock_write(token)
    }

    /// Frees the slot of `token` and hands its message back.
    ///
    /// # Errors
    ///
    /// As [`MemoryManager::free`]; [`MemoryError::BorrowActive`] while a guard is alive.
    pub fn take(&self, token: MessageToken) -> Result<Message<P>, MemoryError> {
        let message = self.slot(token)?.take(token)?;
        self.recycle(token);
        Ok(message)
    }

    /// Frees the slot of `token`, dropping its message.
    ///
    /// # Errors
    ///
    /// As [`take`](Self::take).
    pub fn free(&self, token: MessageToken) -> Result<(), MemoryError> {
        self.slot(token)?.drop_message(token)?;
        self.recycle(token);
        Ok(())
    }

    /// Puts a just-emptied slot back on the free list, unless its generation ran out
    /// (then it is retired, as in the single-threaded managers).
    fn recycle(&self, token: MessageToken) {
        if !retires(token) {
            self.free.push(token.index());
        }
    }

    /// How many slots are free (a snapshot while other threads work).
    pub fn available(&self) -> usize {
        self.free.len()
    }

    /// How many slots there are.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// A `Send` handle for one worker thread.
    pub fn handle(&self) -> ConcurrentHandle<'_, P> {
        ConcurrentHandle { manager: self }
    }

    fn slot(&self, token: MessageToken) -> Result<&SharedSlot<P>, MemoryError> {
        self.slots.get(token.slot()).ok_or(MemoryError::BadToken)
    }

    fn header_of(&self, token: MessageToken) -> Result<MessageHeader, MemoryError> {
        self.read(token).map(|message| message.header)
    }
}

impl<P> fmt::Debug for ConcurrentMemoryManager<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrentMemoryManager")
            .field("capacity", &self.capacity())
            .field("available", &self.available())
            .finish()
    }
}

impl<P> HeaderStore for ConcurrentMemoryManager<P> {
    fn header(&self, token: MessageToken) -> Result<MessageHeader, MemoryError> {
        self.header_of(token)
    }
}

impl<P> MemoryManager<P> for ConcurrentMemoryManager<P> {
    type ReadGuard<'a>
        = ConcurrentReadGuard<'a, P>
    where
        Self: 'a;
    type WriteGuard<'a>
        = ConcurrentWriteGuard<'a, P>
    where
        Self: 'a;

    fn try_store(&mut self, message: Message<P>) -> Result<MessageToken, StoreError<P>> {
        ConcurrentMemoryManager::try_store(self, message)
    }
    fn read(&self, token: MessageToken) -> Result<ConcurrentReadGuard<'_, P>, MemoryError> {
        ConcurrentMemoryManager::read(self, token)
    }
    fn read_mut(
        &mut self,
        token: MessageToken,
    ) -> Result<ConcurrentWriteGuard<'_, P>, MemoryError> {
        ConcurrentMemoryManager::read_mut(self, token)
    }
    fn free(&mut self, token: MessageToken) -> Result<(), MemoryError> {
        ConcurrentMemoryManager::free(self, token)
    }
    fn available(&self) -> usize {
        ConcurrentMemoryManager::available(self)
    }
    fn capacity(&self) -> usize {
        ConcurrentMemoryManager::capacity(self)
    }
    fn memory_class(&self) -> MemoryClass {
        MemoryClass::Host
    }
}

impl<P: Send + Sync> ScopedManager<P> for ConcurrentMemoryManager<P> {
    type Handle<'a>
        = ConcurrentHandle<'a, P>
    where
        Self: 'a;

    fn scoped_handle(&self) -> ConcurrentHandle<'_, P> {
        self.handle()
    }
}

/// One worker's view of a [`ConcurrentMemoryManager`]: `Copy`, `Send` (for
/// `P: Send + Sync`), and a [`MemoryManager`] itself.
pub struct ConcurrentHandle<'a, P> {
    manager: &'a ConcurrentMemoryManager<P>,
}

impl<'a, P> ConcurrentHandle<'a, P> {
    /// The shared manager behind this handle.
    pub fn manager(&self) -> &'a ConcurrentMemoryManager<P> {
        self.manager
    }
}

impl<P> Clone for ConcurrentHandle<'_, P> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<P> Copy for ConcurrentHandle<'_, P> {}

impl<P> fmt::Debug for ConcurrentHandle<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ConcurrentHandle")
            .field(self.manager)
            .finish()
    }
}

impl<P> HeaderStore for ConcurrentHandle<'_, P> {
    fn header(&self, token: MessageToken) -> Result<MessageHeader, MemoryError> {
        self.manager.header_of(token)
    }
}

impl<P> MemoryManager<P> for ConcurrentHandle<'_, P> {
    type ReadGuard<'b>
        = ConcurrentReadGuard<'b, P>
    where
        Self: 'b;
    type WriteGuard<'b>
        = ConcurrentWriteGuard<'b, P>
    where
        Self: 'b;

    fn try_store(&mut self, message: Message<P>) -> Result<MessageToken, StoreError<P>> {
        self.manager.try_store(message)
    }
    fn read(&self, token: MessageToken) -> Result<ConcurrentReadGuard<'_, P>, MemoryError> {
        self.manager.read(token)
    }
    fn read_mut(
        &mut self,
        token: MessageToken,
    ) -> Result<ConcurrentWriteGuard<'_, P>, MemoryError> {
        self.manager.read_mut(token)
    }
    fn free(&mut self, token: MessageToken) -> Result<(), MemoryError> {
        self.manager.free(token)
    }
    fn available(&self) -> usize {
        self.manager.available()
    }
    fn capacity(&self) -> usize {
        self.manager.capacity()
    }
    fn memory_class(&self) -> MemoryClass {
        MemoryClass::Host
    }
}
