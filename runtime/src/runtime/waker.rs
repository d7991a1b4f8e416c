//! Wakers that allocate nothing and can be woken from any thread.
//!
//! A waker's data word *is* the task's address: the runtime's id, the task's slot index and
//! the slot's generation, packed into 64 bits. Cloning and dropping a waker are free (there is
//! no reference count), and a waker outliving its task is harmless: its key no longer matches
//! any slot (or, after 2^20 reuses of one slot, causes one spurious poll, which every future
//! must tolerate).
//!
//! Waking on the runtime's own thread pushes the task on the local ready queue. Waking from
//! another thread (or when the runtime is not running) finds the runtime's [`Remote`] in a
//! global registry, queues the task there, and writes the runtime's eventfd if it is parked
//! in its ring wait.
//!
//! [`Remote`]: super::remote::Remote

use std::task::{RawWaker, RawWakerVTable, Waker};

use crate::util::gen_slab::Key;

#[cfg(not(target_pointer_width = "64"))]
compile_error!("iomgr packs task ids into a pointer-sized word and needs a 64-bit target");

const INDEX_BITS: u32 = 24;
const GENERATION_BITS: u32 = 20;
const RUNTIME_BITS: u32 = 20;
const INDEX_MASK: u64 = (1 << INDEX_BITS) - 1;
const GENERATION_MASK: u64 = (1 << GENERATION_BITS) - 1;

/// Largest runtime id a waker can carry.
pub(crate) const MAX_RUNTIME_ID: u32 = (1 << RUNTIME_BITS) - 1;
/// Slot index reserved for the future passed to `block_on`.
pub(crate) const MAIN_INDEX: u32 = (1 << INDEX_BITS) - 1;
/// Largest slot index a spawned task may have.
pub(crate) const MAX_TASK_INDEX: u32 = MAIN_INDEX - 1;

/// What a waker names: a task slot of one runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TaskAddr {
    pub(crate) runtime: u32,
    pub(crate) index: u32,
    /// Low [`GENERATION_BITS`] of the slot's generation.
    pub(crate) generation: u32,
}

impl TaskAddr {
    pub(crate) fn new(runtime: u32, key: Key) -> Self {
        TaskAddr {
            runtime,
            index: key.index,
            generation: key.generation & GENERATION_MASK as u32,
        }
    }

    pub(crate) fn main(runtime: u32) -> Self {
        TaskAddr {
            runtime,
            index: MAIN_INDEX,
            generation: 0,
        }
    }

    pub(crate) fn is_main(self) -> bool {
        self.index == MAIN_INDEX
    }

    pub(crate) fn pack(self) -> u64 {
        (u64::from(self.runtime) << (INDEX_BITS + GENERATION_BITS))
            | ((u64::from(self.generation) & GENERATION_MASK) << INDEX_BITS)
            | (u64::from(self.index) & INDEX_MASK)
    }

    pub(crate) fn unpack(word: u64) -> Self {
        TaskAddr {
            runtime: (word >> (INDEX_BITS + GENERATION_BITS)) as u32,
            generation: ((word >> INDEX_BITS) & GENERATION_MASK) as u32,
            index: (word & INDEX_MASK) as u32,
        }
    }

    /// Whether `key` (a full generation) is the slot this address names.
    pub(crate) fn matches(self, key: Key) -> bool {
        key.index == self.index && (key.generation & GENERATION_MASK as u32) == self.generation
    }

    pub(crate) fn waker(self) -> Waker {
        // SAFETY: the vtable's functions uphold RawWaker's contract: the data word is a plain
        // integer (no pointer is dereferenced), clone copies it, drop does nothing, and wake
        // is safe to call from any thread.
        unsafe { Waker::from_raw(raw(self.pack())) }
    }
}

/// The task address inside `waker`, if it is one of iomgr's own wakers.
#[inline]
pub(crate) fn addr_of(waker: &Waker) -> Option<TaskAddr> {
    is_own(waker).then(|| TaskAddr::unpack(waker.data().addr() as u64))
}

/// Whether `waker` is one of iomgr's own: cloning it copies a word and dropping it does
/// nothing, so neither runs user code: both may happen under a lock.
#[inline]
pub(crate) fn is_own(waker: &Waker) -> bool {
    std::ptr::eq(waker.vtable(), &VTABLE)
}

/// The data word is an integer, not a pointer: it carries no provenance (so Miri's strict
/// provenance checks hold) and is never dereferenced.
fn raw(word: u64) -> RawWaker {
    RawWaker::new(std::ptr::without_provenance(word as usize), &VTABLE)
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake, drop);

fn clone(data: *const ()) -> RawWaker {
    raw(data.addr() as u64)
}

fn wake(data: *const ()) {
    super::wake_addr(TaskAddr::unpack(data.addr() as u64));
}

fn drop(_: *const ()) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_through_the_waker_word() {
        let addr = TaskAddr::new(
            MAX_RUNTIME_ID,
            Key {
                index: MAX_TASK_INDEX,
                generation: 0x1234_5678,
            },
        );
        assert_eq!(TaskAddr::unpack(addr.pack()), addr);
        assert!(addr.matches(Key {
            index: MAX_TASK_INDEX,
            generation: 0x1234_5678
        }));
        assert!(!addr.is_main());
        assert!(TaskAddr::main(3).is_main());
        assert_eq!(addr_of(&addr.waker()), Some(addr));
        assert_eq!(addr_of(std::task::Waker::noop()), None);
    }
}
