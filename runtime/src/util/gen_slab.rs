//! A slab whose keys carry a generation.
//!
//! Both the driver's op table and the scheduler's task table hand out keys that outlive the
//! entry they name: a completion can arrive for an op whose slot was freed and reused, a waker
//! can be woken after its task finished. A plain index would then reach the *new* occupant.
//! Here every slot counts how often it was reused, and a key is `(index, generation)`: a key
//! whose generation no longer matches is simply not found.
//!
//! Memory is a `Vec` of slots plus a free list; after warm-up (once the high-water mark is
//! reached) inserting and removing never allocate.

/// A key into a [`GenSlab`]: slot index plus the slot's generation when the key was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl Key {
    /// The key as one number (generation above index), for dumps and traces.
    pub(crate) fn as_u64(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.index)
    }
}

impl Key {
    /// Packs the key into 64 bits (generation high, index low), e.g. for io_uring's `user_data`.
    pub(crate) fn to_u64(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.index)
    }

    /// The inverse of [`Key::to_u64`].
    pub(crate) fn from_u64(raw: u64) -> Self {
        Key {
            index: raw as u32,
            generation: (raw >> 32) as u32,
        }
    }
}

#[derive(Debug)]
struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// Generational slab; see the module docs.
#[derive(Debug)]
pub(crate) struct GenSlab<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> GenSlab<T> {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        GenSlab {
            slots: Vec::with_capacity(capacity),
            free: Vec::with_capacity(capacity),
            len: 0,
        }
    }

    /// Number of occupied slots.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Inserts `value`, reusing a free slot when there is one.
    pub(crate) fn insert(&mut self, value: T) -> Key {
        self.len += 1;
        if let Some(index) = self.free.pop() {
            let slot = &mut self.slots[index as usize];
            debug_assert!(slot.value.is_none());
            slot.value = Some(value);
            return Key {
                index,
                generation: slot.generation,
            };
        }
        let index = u32::try_from(self.slots.len()).expect("more than 2^32 live entries");
        self.slots.push(Slot {
            generation: 0,
            value: Some(value),
        });
        Key {
            index,
            generation: 0,
        }
    }

    pub(crate) fn get(&self, key: Key) -> Option<&T> {
        match self.slots.get(key.index as usize) {
            Some(slot) if slot.generation == key.generation => slot.value.as_ref(),
            _ => None,
        }
    }

    pub(crate) fn get_mut(&mut self, key: Key) -> Option<&mut T> {
        match self.slots.get_mut(key.index as usize) {
            Some(slot) if slot.generation == key.generation => slot.value.as_mut(),
            _ => None,
        }
    }

    /// The key of the occupied slot at `index`, if it is occupied.
    pub(crate) fn key_at(&self, index: u32) -> Option<Key> {
        let slot = self.slots.get(index as usize)?;
        slot.value.as_ref()?;
        Some(Key {
            index,
            generation: slot.generation,
        })
    }

    /// Removes the entry named by `key`; a stale key removes nothing.
    pub(crate) fn remove(&mut self, key: Key) -> Option<T> {
        let slot = self.slots.get_mut(key.index as usize)?;
        if slot.generation != key.generation {
            return None;
        }
        let value = slot.value.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(key.index);
        self.len -= 1;
        Some(value)
    }

    /// Keys of every occupied slot (allocates: for shutdown paths only).
    pub(crate) fn keys(&self) -> Vec<Key> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.value.is_some())
            .map(|(index, slot)| Key {
                index: index as u32,
                generation: slot.generation,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_key_finds_nothing_after_reuse() {
        let mut slab = GenSlab::with_capacity(1);
        let first = slab.insert("first");
        assert_eq!(slab.remove(first), Some("first"));
        let second = slab.insert("second");
        assert_eq!(first.index, second.index, "the slot is reused");
        assert_eq!(
            slab.get(first),
            None,
            "the old key must not reach the new entry"
        );
        assert_eq!(slab.remove(first), None);
        assert_eq!(slab.get(second), Some(&"second"));
        assert_eq!(slab.len(), 1);
    }

    #[test]
    fn key_round_trips_through_u64() {
        let key = Key {
            index: 7,
            generation: 0xdead_beef,
        };
        assert_eq!(Key::from_u64(key.to_u64()), key);
    }
}
