//! A slab whose keys carry a generation.
//!
//! Both the driver's op table and the scheduler's task table hand out keys that outlive the
//! entry they name: a completion can arrive for an op whose slot was freed and reused, a waker
//! can be woken after its task finished. A plain index would then reach the *new* occupant.
//! Here every slot counts how often it was reused, and a key is `(index, generation)`: a key
//! whose generation no longer matches is simply not found.
//!
//! Memory is one `Vec` of slots; the free slots form a list linked through the slots
//! themselves (last freed, first reused: its memory is the warmest). After warm-up (once the
//! high-water mark is reached) inserting and removing never allocate.

/// A key into a [`GenSlab`]: slot index plus the slot's generation when the key was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub(crate) index: u32,
    pub(crate) generation: u32,
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
enum Entry<T> {
    Occupied(T),
    /// Free; the index of the next free slot ([`NONE`] at the end of the list).
    Vacant(u32),
}

#[derive(Debug)]
struct Slot<T> {
    generation: u32,
    entry: Entry<T>,
}

/// The end of the free list.
const NONE: u32 = u32::MAX;

/// Generational slab; see the module docs.
#[derive(Debug)]
pub(crate) struct GenSlab<T> {
    slots: Vec<Slot<T>>,
    /// The most recently freed slot, heading a list linked through the vacant slots.
    free: u32,
    len: usize,
}

impl<T> GenSlab<T> {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        GenSlab {
            slots: Vec::with_capacity(capacity),
            free: NONE,
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

    /// Inserts `value`, reusing the most recently freed slot when there is one.
    #[inline]
    pub(crate) fn insert(&mut self, value: T) -> Key {
        self.len += 1;
        let index = self.free;
        if let Some(slot) = self.slots.get_mut(index as usize) {
            let Entry::Vacant(next) = slot.entry else {
                unreachable!("the free list links vacant slots only")
            };
            self.free = next;
            slot.entry = Entry::Occupied(value);
            return Key {
                index,
                generation: slot.generation,
            };
        }
        let index = u32::try_from(self.slots.len())
            .ok()
            .filter(|&i| i != NONE)
            .expect("more than 2^32 - 1 live entries");
        self.slots.push(Slot {
            generation: 0,
            entry: Entry::Occupied(value),
        });
        Key {
            index,
            generation: 0,
        }
    }

    #[cfg(test)]
    pub(crate) fn get(&self, key: Key) -> Option<&T> {
        match self.slots.get(key.index as usize) {
            Some(Slot {
                generation,
                entry: Entry::Occupied(value),
            }) if *generation == key.generation => Some(value),
            _ => None,
        }
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, key: Key) -> Option<&mut T> {
        match self.slots.get_mut(key.index as usize) {
            Some(Slot {
                generation,
                entry: Entry::Occupied(value),
            }) if *generation == key.generation => Some(value),
            _ => None,
        }
    }

    /// Removes the entry named by `key`; a stale key removes nothing.
    #[inline]
    pub(crate) fn remove(&mut self, key: Key) -> Option<T> {
        let slot = self.slots.get_mut(key.index as usize)?;
        if slot.generation != key.generation || !matches!(slot.entry, Entry::Occupied(_)) {
            return None;
        }
        let Entry::Occupied(value) = std::mem::replace(&mut slot.entry, Entry::Vacant(self.free))
        else {
            unreachable!("checked above")
        };
        slot.generation = slot.generation.wrapping_add(1);
        self.free = key.index;
        self.len -= 1;
        Some(value)
    }

    /// Keys of every occupied slot (allocates: for shutdown paths only).
    pub(crate) fn keys(&self) -> Vec<Key> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| matches!(slot.entry, Entry::Occupied(_)))
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

    #[test]
    fn free_slots_are_reused_last_freed_first_and_all_of_them() {
        let mut slab = GenSlab::with_capacity(0);
        let keys: Vec<Key> = (0..5).map(|i| slab.insert(i)).collect();
        for &k in &keys[1..4] {
            assert!(slab.remove(k).is_some());
        }
        assert_eq!(slab.remove(keys[2]), None, "a removed key removes nothing");
        let again: Vec<u32> = (0..4).map(|i| slab.insert(10 + i).index).collect();
        assert_eq!(
            again,
            [3, 2, 1, 5],
            "freed slots first, newest first, then new ones"
        );
        assert_eq!(slab.len(), 6);
        assert_eq!(slab.keys().len(), 6);
        assert_eq!(
            slab.get(Key {
                index: 2,
                generation: 1
            }),
            Some(&11)
        );
    }
}
