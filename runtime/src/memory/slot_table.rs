//! The slot table behind the single-threaded managers: slots that are either vacant (and
//! linked into a free list) or occupied, each with a generation.
//!
//! [`StaticMemoryManager`](super::StaticMemoryManager) runs it over an array and
//! [`HeapMemoryManager`](super::HeapMemoryManager) over a `Vec`; they differ only in
//! [`SlotStorage`]. Store and free are O(1): the free list is threaded through the vacant
//! slots themselves, so it needs no memory of its own.

use super::{MemoryError, Message, MessageToken, StoreError};

/// Implements [`HeaderStore`](super::HeaderStore) and [`MemoryManager`](super::MemoryManager)
/// for a manager that is a [`SlotTable`] in a field named `table`: the single-threaded
/// managers differ only in their storage, so their trait impls are written once, here.
macro_rules! table_manager {
    ([$($generics:tt)*] $manager:ty) => {
        impl<$($generics)*> $crate::memory::HeaderStore for $manager {
            fn header(
                &self,
                token: $crate::memory::MessageToken,
            ) -> Result<$crate::memory::MessageHeader, $crate::memory::MemoryError> {
                self.table.get::<P>(token).map(|message| message.header)
            }
        }

        impl<$($generics)*> $crate::memory::MemoryManager<P> for $manager {
            type ReadGuard<'a>
                = &'a $crate::memory::Message<P>
            where
                Self: 'a;
            type WriteGuard<'a>
                = &'a mut $crate::memory::Message<P>
            where
                Self: 'a;

            fn try_store(
                &mut self,
                mut message: $crate::memory::Message<P>,
            ) -> Result<$crate::memory::MessageToken, $crate::memory::StoreError<P>> {
                message.header.memory_class = $crate::memory::MemoryClass::Host;
                self.table.insert(message)
            }

            fn read(
                &self,
                token: $crate::memory::MessageToken,
            ) -> Result<&$crate::memory::Message<P>, $crate::memory::MemoryError> {
                self.table.get(token)
            }

            fn read_mut(
                &mut self,
                token: $crate::memory::MessageToken,
            ) -> Result<&mut $crate::memory::Message<P>, $crate::memory::MemoryError> {
                self.table.get_mut(token)
            }

            fn free(
                &mut self,
                token: $crate::memory::MessageToken,
            ) -> Result<(), $crate::memory::MemoryError> {
                self.table.free::<P>(token)
            }

            fn available(&self) -> usize {
                self.capacity() - self.table.occupied() - self.table.retired()
            }

            fn capacity(&self) -> usize {
                $crate::memory::slot_table::SlotStorage::<P>::capacity(self.table.storage())
            }

            fn memory_class(&self) -> $crate::memory::MemoryClass {
                $crate::memory::MemoryClass::Host
            }
        }
    };
}
pub(crate) use table_manager;

/// The end of the free list (and so the largest slot count is `u32::MAX`).
pub(crate) const NO_SLOT: u32 = u32::MAX;

/// One slot of a [`SlotTable`].
#[derive(Debug)]
pub(crate) enum Slot<P> {
    /// Holds no message; `next_free` links the free list.
    Vacant { generation: u32, next_free: u32 },
    /// Holds a message stored at `generation`.
    Occupied {
        generation: u32,
        message: Message<P>,
    },
}

impl<P> Slot<P> {
    /// A slot never used.
    pub(crate) const fn new() -> Self {
        Slot::Vacant {
            generation: 0,
            next_free: NO_SLOT,
        }
    }
}

/// Where a [`SlotTable`] keeps its slots.
pub(crate) trait SlotStorage<P> {
    /// The slots made so far.
    fn slots(&self) -> &[Slot<P>];
    /// The slots made so far, mutably.
    fn slots_mut(&mut self) -> &mut [Slot<P>];
    /// Appends one new vacant slot; `false` if the storage cannot grow.
    fn grow(&mut self) -> bool;
    /// How many slots the storage holds without growing (at least `slots().len()`).
    fn capacity(&self) -> usize;
}

impl<P, const N: usize> SlotStorage<P> for [Slot<P>; N] {
    fn slots(&self) -> &[Slot<P>] {
        self
    }
    fn slots_mut(&mut self) -> &mut [Slot<P>] {
        self
    }
    fn grow(&mut self) -> bool {
        false
    }
    fn capacity(&self) -> usize {
        N
    }
}

/// Slots plus the head of the free list threaded through the vacant ones.
#[derive(Debug)]
pub(crate) struct SlotTable<S> {
    storage: S,
    free_head: u32,
    occupied: usize,
    /// Slots whose generation ran out (see [`retires`]): never reused.
    retired: usize,
}

impl<S> SlotTable<S> {
    /// A table over `storage`, whose slots must all be vacant; they are linked into the
    /// free list so that slot 0 is used first.
    pub(crate) fn new<P>(mut storage: S) -> Self
    where
        S: SlotStorage<P>,
    {
        let slots = storage.slots_mut();
        debug_assert!(slots.len() < NO_SLOT as usize);
        let count = slots.len() as u32;
        for (index, slot) in slots.iter_mut().enumerate() {
            let next = index as u32 + 1;
            *slot = Slot::Vacant {
                generation: 0,
                next_free: if next < count { next } else { NO_SLOT },
            };
        }
        SlotTable {
            storage,
            free_head: if count > 0 { 0 } else { NO_SLOT },
            occupied: 0,
            retired: 0,
        }
    }

    /// The storage, to ask about its capacity.
    pub(crate) fn storage(&self) -> &S {
        &self.storage
    }

    /// How many slots were retired because their generation ran out.
    pub(crate) fn retired(&self) -> usize {
        self.retired
    }

    /// How many slots hold a message.
    pub(crate) fn occupied(&self) -> usize {
        self.occupied
    }

    /// Puts `message` in a vacant slot (growing the storage if the free list is empty).
    pub(crate) fn insert<P>(&mut self, message: Message<P>) -> Result<MessageToken, StoreError<P>>
    where
        S: SlotStorage<P>,
    {
        if self.free_head == NO_SLOT {
            if !self.storage.grow() {
                return Err(StoreError {
                    error: MemoryError::NoFreeSlots,
                    message,
                });
            }
            self.free_head = (self.storage.slots().len() - 1) as u32;
        }
        let index = self.free_head;
        let slot = &mut self.storage.slots_mut()[index as usize];
        let Slot::Vacant {
            generation,
            next_free,
        } = *slot
        else {
            unreachable!("the free list links only vacant slots")
        };
        *slot = Slot::Occupied {
            generation,
            message,
        };
        self.free_head = next_free;
        self.occupied += 1;
        Ok(MessageToken::new(index, generation))
    }

    /// The message named by `token`.
    pub(crate) fn get<P>(&self, token: MessageToken) -> Result<&Message<P>, MemoryError>
    where
        S: SlotStorage<P>,
    {
        match self.storage.slots().get(token.slot()) {
            Some(Slot::Occupied {
                generation,
                message,
            }) if *generation == token.generation() => Ok(message),
            Some(Slot::Vacant { generation, .. }) => Err(vacant_error(*generation, token)),
            Some(Slot::Occupied { .. }) | None => Err(MemoryError::BadToken),
        }
    }

    /// The message named by `token`, mutably.
    pub(crate) fn get_mut<P>(&mut self, token: MessageToken) -> Result<&mut Message<P>, MemoryError>
    where
        S: SlotStorage<P>,
    {
        let slot = self.storage.slots_mut().get_mut(token.slot());
        match slot.ok_or(MemoryError::BadToken)? {
            Slot::Occupied {
                generation,
                message,
            } if *generation == token.generation() => Ok(message),
            Slot::Occupied { .. } => Err(MemoryError::BadToken),
            Slot::Vacant { generation, .. } => Err(vacant_error(*generation, token)),
        }
    }

    /// Takes the message named by `token` out, moving its slot to the next generation and
    /// onto the free list.
    pub(crate) fn remove<P>(&mut self, token: MessageToken) -> Result<Message<P>, MemoryError>
    where
        S: SlotStorage<P>,
    {
        self.get::<P>(token)?;
        let vacant = self.release(token);
        match core::mem::replace(&mut self.storage.slots_mut()[token.slot()], vacant) {
            Slot::Occupied { message, .. } => Ok(message),
            Slot::Vacant { .. } => unreachable!("`get` found the slot occupied"),
        }
    }

    /// Drops the message named by `token` where it lies (no move: cheap for large
    /// payloads), moving its slot to the next generation and onto the free list.
    pub(crate) fn free<P>(&mut self, token: MessageToken) -> Result<(), MemoryError>
    where
        S: SlotStorage<P>,
    {
        self.get::<P>(token)?;
        let vacant = self.release(token);
        self.storage.slots_mut()[token.slot()] = vacant;
        Ok(())
    }

    /// Pushes the (occupied) slot of `token` onto the free list and returns the vacant
    /// state it takes; a slot whose generation ran out is retired instead.
    fn release<P>(&mut self, token: MessageToken) -> Slot<P> {
        self.occupied -= 1;
        if retires(token) {
            self.retired += 1;
            return Slot::Vacant {
                generation: token.generation(),
                next_free: NO_SLOT,
            };
        }
        let vacant = Slot::Vacant {
            generation: token.generation() + 1,
            next_free: self.free_head,
        };
        self.free_head = token.index();
        vacant
    }
}

/// Whether freeing `token`'s message retires its slot: its generation is the last one, and
/// wrapping to 0 would let a token kept from 2^32 reuses ago reach a new message. One slot in
/// four billion frees is lost, so a stale token is always `BadToken`, never another message.
pub(crate) fn retires(token: MessageToken) -> bool {
    token.generation() == u32::MAX
}

/// Why `token` does not reach a message in a vacant slot at `generation`: the slot was
/// freed since the token was issued, or (a hand-made token) never filled at that generation.
fn vacant_error(generation: u32, token: MessageToken) -> MemoryError {
    if generation == token.generation() {
        MemoryError::NotAllocated
    } else {
        MemoryError::BadToken
    }
}

#[cfg(test)]
mod generation_tests {
    use super::*;

    /// A two-slot table whose slot 0 is at its last generation, as after 2^32 - 1 reuses.
    fn table_at_last_generation() -> SlotTable<[Slot<u8>; 2]> {
        let mut table = SlotTable::new::<u8>([Slot::new(), Slot::new()]);
        let slots = table.storage.slots_mut();
        slots[0] = Slot::Vacant {
            generation: u32::MAX,
            next_free: 1,
        };
        table
    }

    #[test]
    fn a_slot_whose_generation_runs_out_is_retired_not_wrapped() {
        let mut table = table_at_last_generation();
        let last = table.insert(Message::new(0, 1u8)).unwrap();
        assert_eq!((last.slot(), last.generation()), (0, u32::MAX));
        table.free::<u8>(last).unwrap();
        assert_eq!(table.retired(), 1);
        // The next message goes to slot 1; slot 0 is never handed out again, so no token
        // from any earlier generation of it can reach a new message.
        let next = table.insert(Message::new(1, 2u8)).unwrap();
        assert_eq!(next.slot(), 1);
        assert!(table.get::<u8>(last).is_err());
        table.free::<u8>(next).unwrap();
        let again = table.insert(Message::new(2, 3u8)).unwrap();
        assert_eq!(
            again.slot(),
            1,
            "the retired slot stays out of the free list"
        );
    }
}
