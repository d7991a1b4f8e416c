//! [`FreeStack`]: the lock-free stack of free slot indices.
//!
//! A Treiber stack over an array of `next` links. The head packs a slot index with a tag
//! that changes on every successful update, so a pop that read `head = A, next = B` cannot
//! succeed after A was popped and pushed back in between with a different `next` (the ABA
//! problem): the tag no longer matches. The tag is 32 bits: a pop would have to stall
//! across 2^32 other updates for it to repeat.

use super::sync::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// No slot: the end of the stack.
pub(crate) const NO_SLOT: u32 = u32::MAX;

/// A lock-free stack holding each index in `0..capacity` at most once.
#[derive(Debug)]
pub(crate) struct FreeStack {
    /// `tag << 32 | index` of the top of the stack.
    head: AtomicU64,
    /// For each index on the stack, the index below it.
    next: Box<[AtomicU32]>,
    /// How many indices are on the stack; never less than the true count (incremented
    /// before a push is published, decremented after a pop).
    len: AtomicUsize,
}

const fn pack(tag: u32, index: u32) -> u64 {
    ((tag as u64) << 32) | index as u64
}

const fn unpack(head: u64) -> (u32, u32) {
    ((head >> 32) as u32, head as u32)
}

impl FreeStack {
    /// A stack holding every index in `0..capacity`, with 0 on top.
    pub(crate) fn full(capacity: u32) -> Self {
        debug_assert!(capacity < NO_SLOT);
        let next = (0..capacity)
            .map(|index| {
                AtomicU32::new(if index + 1 < capacity {
                    index + 1
                } else {
                    NO_SLOT
                })
            })
            .collect();
        FreeStack {
            head: AtomicU64::new(pack(0, if capacity > 0 { 0 } else { NO_SLOT })),
            next,
            len: AtomicUsize::new(capacity as usize),
        }
    }

    /// Takes an index off the stack, if any.
    pub(crate) fn pop(&self) -> Option<u32> {
        // Acquire: we read the `next` link the pusher wrote before publishing.
        let mut head = self.head.load(Ordering::Acquire);
        loop {
            let (tag, index) = unpack(head);
            if index == NO_SLOT {
                return None;
            }
            // If `index` was popped and pushed again since we read `head`, this may be a
            // link written later; then the tag moved on and the exchange below fails.
            let next = self.next[index as usize].load(Ordering::Relaxed);
            match self.head.compare_exchange_weak(
                head,
                pack(tag.wrapping_add(1), next),
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    self.len.fetch_sub(1, Ordering::Relaxed);
                    return Some(index);
                }
                Err(current) => head = current,
            }
        }
    }

    /// Puts `index` (which the caller took off this stack) back on top.
    pub(crate) fn push(&self, index: u32) {
        self.len.fetch_add(1, Ordering::Relaxed);
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            let (tag, top) = unpack(head);
            self.next[index as usize].store(top, Ordering::Relaxed);
            // Release: publishes the link above and everything the caller did to the slot.
            match self.head.compare_exchange_weak(
                head,
                pack(tag.wrapping_add(1), index),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(current) => head = current,
            }
        }
    }

    /// How many indices are on the stack (a snapshot while other threads push and pop).
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::FreeStack;

    #[test]
    fn threads_pop_and_push_every_index_exactly_once() {
        const CAPACITY: u32 = 8;
        // Fewer under Miri, which runs this about a thousand times slower.
        const STEPS: u32 = if cfg!(miri) { 300 } else { 50_000 };
        let stack = FreeStack::full(CAPACITY);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    let mut held = Vec::new();
                    for step in 0..STEPS {
                        if step % 3 == 2 || held.len() == 2 {
                            if let Some(index) = held.pop() {
                                stack.push(index);
                            }
                        } else if let Some(index) = stack.pop() {
                            held.push(index);
                        }
                    }
                    for index in held {
                        stack.push(index);
                    }
                });
            }
        });
        assert_eq!(stack.len(), CAPACITY as usize);
        let mut seen: Vec<u32> = std::iter::from_fn(|| stack.pop()).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..CAPACITY).collect::<Vec<_>>());
    }
}
