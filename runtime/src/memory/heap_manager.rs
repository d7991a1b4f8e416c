//! [`HeapMemoryManager`]: slots in a `Vec`, of fixed capacity or growable.

use core::fmt;

use super::slot_table::{NO_SLOT, Slot, SlotStorage, SlotTable, table_manager};
use super::{MemoryError, Message, MessageToken};

/// Slots in a `Vec`; a growable one appends a slot when the free list runs dry.
struct HeapSlots<P> {
    slots: Vec<Slot<P>>,
    growable: bool,
}

impl<P> SlotStorage<P> for HeapSlots<P> {
    fn slots(&self) -> &[Slot<P>] {
        &self.slots
    }
    fn slots_mut(&mut self) -> &mut [Slot<P>] {
        &mut self.slots
    }
    fn grow(&mut self) -> bool {
        let room = self.growable && self.slots.len() < MAX_SLOTS;
        if room {
            self.slots.push(Slot::new());
        }
        room
    }
    fn capacity(&self) -> usize {
        self.slots.capacity().min(MAX_SLOTS)
    }
}

/// The most slots a manager can index with a `u32` token.
const MAX_SLOTS: usize = NO_SLOT as usize;

/// A manager whose slots live in one heap allocation, chosen at construction to be of
/// fixed capacity ([`with_fixed_capacity`](Self::with_fixed_capacity): full is
/// [`MemoryError::NoFreeSlots`]) or growable ([`growable`](Self::growable): it grows like
/// a `Vec`, so a store may reallocate).
///
/// Like [`StaticMemoryManager`](super::StaticMemoryManager), its guards are plain
/// references checked by the borrow checker. Store and free are O(1).
///
/// ```
/// use iomgr::memory::{HeapMemoryManager, MemoryManager, Message};
///
/// let mut manager = HeapMemoryManager::growable(1);
/// let tokens: Vec<_> = (0..100)
///     .map(|i| manager.store(Message::new(i, vec![i as u8; 16])).unwrap())
///     .collect();
/// assert!(manager.capacity() >= 100);
/// assert_eq!(manager.read(tokens[42]).unwrap().payload[0], 42);
/// ```
pub struct HeapMemoryManager<P> {
    table: SlotTable<HeapSlots<P>>,
}

impl<P> HeapMemoryManager<P> {
    /// A manager of exactly `capacity` slots, all allocated now.
    ///
    /// # Panics
    ///
    /// If `capacity` is `u32::MAX` or more (tokens index slots with a `u32`).
    pub fn with_fixed_capacity(capacity: usize) -> Self {
        assert!(
            capacity < MAX_SLOTS,
            "a memory manager holds fewer than u32::MAX slots"
        );
        let slots = (0..capacity).map(|_| Slot::new()).collect();
        Self::over(HeapSlots {
            slots,
            growable: false,
        })
    }

    /// A manager with room for `initial_capacity` messages before it first grows.
    pub fn growable(initial_capacity: usize) -> Self {
        Self::over(HeapSlots {
            slots: Vec::with_capacity(initial_capacity.min(MAX_SLOTS)),
            growable: true,
        })
    }

    fn over(slots: HeapSlots<P>) -> Self {
        HeapMemoryManager {
            table: SlotTable::new(slots),
        }
    }

    /// Whether the manager grows when full.
    pub fn is_growable(&self) -> bool {
        self.table.storage().growable
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

impl<P> fmt::Debug for HeapMemoryManager<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeapMemoryManager")
            .field("growable", &self.is_growable())
            .field("capacity", &self.table.storage().capacity())
            .field("stored", &self.table.occupied())
            .finish()
    }
}

table_manager!([P] HeapMemoryManager<P>);
