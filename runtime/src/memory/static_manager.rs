//! [`StaticMemoryManager`]: `DEPTH` slots in an inline array, no allocation at all.

use core::fmt;

use super::slot_table::{Slot, SlotTable, table_manager};
use super::{MemoryError, Message, MessageToken};

/// A manager of exactly `DEPTH` slots kept inline (in the manager value itself: on the
/// stack, in a struct, in a `Box` if you choose). It never allocates; store and free are
/// O(1) through a free list threaded through the vacant slots.
///
/// `read` takes `&self` and `read_mut` `&mut self`, so the borrow checker already rules
/// out conflicting borrows: the guards are plain references, and
/// [`MemoryError::AlreadyBorrowed`] / [`MemoryError::BorrowActive`] cannot happen here.
/// To share one between tasks, put it in a `RefCell` (see
/// [`OwnedToken`](super::OwnedToken)).
///
/// ```
/// use iomgr::memory::{MemoryError, MemoryManager, Message, StaticMemoryManager};
///
/// let mut manager = StaticMemoryManager::<u32, 2>::new();
/// let a = manager.store(Message::new(0, 10))?;
/// let _b = manager.store(Message::new(1, 20))?;
/// assert_eq!(manager.store(Message::new(2, 30)), Err(MemoryError::NoFreeSlots));
///
/// manager.read_mut(a)?.payload += 1;
/// assert_eq!(manager.read(a)?.payload, 11);
/// manager.free(a)?;
/// assert_eq!(manager.read(a).map(|m| m.payload), Err(MemoryError::BadToken));
/// # Ok::<(), MemoryError>(())
/// ```
pub struct StaticMemoryManager<P, const DEPTH: usize> {
    table: SlotTable<[Slot<P>; DEPTH]>,
}

impl<P, const DEPTH: usize> StaticMemoryManager<P, DEPTH> {
    /// An empty manager. `DEPTH` must be below `u32::MAX` (checked when compiling).
    pub fn new() -> Self {
        const { assert!(DEPTH < u32::MAX as usize, "DEPTH must be below u32::MAX") };
        StaticMemoryManager {
            table: SlotTable::new(core::array::from_fn(|_| Slot::new())),
        }
    }

    /// How many messages are stored.
    pub fn len(&self) -> usize {
        self.table.occupied()
    }

    /// Whether no message is stored.
    pub fn is_empty(&self) -> bool {
        self.table.occupied() == 0
    }

    /// Frees the slot of `token` and hands its message back.
    ///
    /// # Errors
    ///
    /// As [`MemoryManager::free`](super::MemoryManager::free).
    pub fn take(&mut self, token: MessageToken) -> Result<Message<P>, MemoryError> {
        self.table.remove(token)
    }
}

impl<P, const DEPTH: usize> Default for StaticMemoryManager<P, DEPTH> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P, const DEPTH: usize> fmt::Debug for StaticMemoryManager<P, DEPTH> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticMemoryManager")
            .field("capacity", &DEPTH)
            .field("stored", &self.table.occupied())
            .finish()
    }
}

table_manager!([P, const DEPTH: usize] StaticMemoryManager<P, DEPTH>);
