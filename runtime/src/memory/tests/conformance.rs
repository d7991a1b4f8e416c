//! One suite, written against [`MemoryManager`] alone, run against every manager.

use std::rc::Rc;

use crate::memory::{
    ConcurrentMemoryManager, HeapMemoryManager, MemoryError, MemoryManager, Message, MessageFlags,
    MessageHeader, MessageToken, StaticMemoryManager,
};

/// The capacity of every fixed manager under test.
const CAPACITY: usize = 4;

fn message(value: u64) -> Message<u64> {
    Message::new(value, value)
}

fn assert_empty<P>(manager: &impl MemoryManager<P>) {
    assert_eq!(manager.available(), manager.capacity());
}

pub(super) fn round_trip(mut manager: impl MemoryManager<u64>) {
    let tokens: Vec<_> = (10..13)
        .map(|v| manager.store(message(v)).unwrap())
        .collect();
    assert_eq!(manager.capacity() - manager.available(), 3);
    for (value, &token) in (10..13).zip(&tokens) {
        let stored = manager.read(token).unwrap();
        assert_eq!(stored.payload, value);
        assert_eq!(stored.header.sequence, value);
        assert_eq!(stored.header.payload_size, size_of::<u64>());
        assert_eq!(stored.header.memory_class, manager.memory_class());
        drop(stored);
        assert_eq!(manager.header(token).unwrap().sequence, value);
    }
    {
        let mut written = manager.read_mut(tokens[1]).unwrap();
        written.payload += 100;
        written.header.flags.insert(MessageFlags::MODIFIED);
    }
    assert_eq!(manager.read(tokens[1]).unwrap().payload, 111);
    assert!(
        manager
            .header(tokens[1])
            .unwrap()
            .flags
            .contains(MessageFlags::MODIFIED)
    );
    assert_eq!(manager.read(tokens[0]).unwrap().payload, 10);
    for token in tokens {
        manager.free(token).unwrap();
    }
    assert_empty(&manager);
}

pub(super) fn exhaustion(mut manager: impl MemoryManager<u64>) {
    assert_eq!(manager.capacity(), CAPACITY);
    let tokens: Vec<_> = (0..CAPACITY as u64)
        .map(|v| manager.store(message(v)).unwrap())
        .collect();
    assert_eq!(manager.available(), 0);
    assert_eq!(manager.store(message(99)), Err(MemoryError::NoFreeSlots));
    // `try_store` hands the message back, untouched.
    let refused = manager.try_store(message(77)).unwrap_err();
    assert_eq!(refused.error, MemoryError::NoFreeSlots);
    assert_eq!(refused.into_message().payload, 77);
    // Nothing was overwritten.
    for (value, &token) in (0..).zip(&tokens) {
        assert_eq!(manager.read(token).unwrap().payload, value);
    }
    manager.free(tokens[2]).unwrap();
    assert_eq!(manager.available(), 1);
    let again = manager.store(message(42)).unwrap();
    assert_eq!(manager.read(again).unwrap().payload, 42);
    assert_eq!(manager.store(message(99)), Err(MemoryError::NoFreeSlots));
}

pub(super) fn stale_token(mut manager: impl MemoryManager<u64>) {
    let old = manager.store(message(1)).unwrap();
    manager.free(old).unwrap();
    let new = manager.store(message(2)).unwrap();
    assert_eq!(new.index(), old.index(), "the freed slot is reused first");
    assert_ne!(new, old);
    assert_eq!(manager.read(old).err(), Some(MemoryError::BadToken));
    assert_eq!(manager.read_mut(old).err(), Some(MemoryError::BadToken));
    assert_eq!(manager.header(old), Err(MemoryError::BadToken));
    assert_eq!(manager.free(old), Err(MemoryError::BadToken));
    assert_eq!(manager.read(new).unwrap().payload, 2);
}

pub(super) fn double_free(mut manager: impl MemoryManager<u64>) {
    let token = manager.store(message(1)).unwrap();
    manager.free(token).unwrap();
    assert_eq!(manager.free(token), Err(MemoryError::BadToken));
    assert_empty(&manager);
}

pub(super) fn out_of_range(mut manager: impl MemoryManager<u64>) {
    manager.store(message(1)).unwrap();
    let token = MessageToken::new(u32::MAX - 1, 0);
    assert_eq!(manager.read(token).err(), Some(MemoryError::BadToken));
    assert_eq!(manager.read_mut(token).err(), Some(MemoryError::BadToken));
    assert_eq!(manager.header(token), Err(MemoryError::BadToken));
    assert_eq!(manager.free(token), Err(MemoryError::BadToken));
}

pub(super) fn not_allocated(mut manager: impl MemoryManager<u64>) {
    let token = manager.store(message(1)).unwrap();
    manager.free(token).unwrap();
    let vacant = MessageToken::new(token.index(), token.generation().wrapping_add(1));
    assert_eq!(manager.read(vacant).err(), Some(MemoryError::NotAllocated));
    assert_eq!(
        manager.read_mut(vacant).err(),
        Some(MemoryError::NotAllocated)
    );
    assert_eq!(manager.header(vacant), Err(MemoryError::NotAllocated));
    assert_eq!(manager.free(vacant), Err(MemoryError::NotAllocated));
    let raw = MessageToken::from_raw(token.into_raw());
    assert_eq!(raw, token);
}

/// Every message is dropped exactly once: by `free`, or with the manager (when `manager`
/// owns its slots, and is not a handle).
pub(super) fn drops_messages(mut manager: impl MemoryManager<Rc<()>>, owns_slots: bool) {
    let counter = Rc::new(());
    let tokens: Vec<_> = (0..3)
        .map(|i| {
            manager
                .store(Message::from_parts(
                    MessageHeader::new(i, 0),
                    counter.clone(),
                ))
                .unwrap()
        })
        .collect();
    assert_eq!(Rc::strong_count(&counter), 4);
    manager.free(tokens[0]).unwrap();
    assert_eq!(Rc::strong_count(&counter), 3);
    assert!(
        manager
            .store(Message::from_parts(
                MessageHeader::new(9, 0),
                counter.clone()
            ))
            .is_ok()
    );
    drop(manager);
    if owns_slots {
        assert_eq!(Rc::strong_count(&counter), 1);
    }
}

macro_rules! conformance_suite {
    ($name:ident, fixed: $fixed:expr, owns_slots: $owns:expr, make: $make:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[test]
            fn round_trip() {
                super::round_trip($make);
            }
            #[test]
            fn stale_token() {
                super::stale_token($make);
            }
            #[test]
            fn double_free() {
                super::double_free($make);
            }
            #[test]
            fn out_of_range() {
                super::out_of_range($make);
            }
            #[test]
            fn not_allocated() {
                super::not_allocated($make);
            }
            #[test]
            fn drops_messages() {
                super::drops_messages($make, $owns);
            }
            #[test]
            fn exhaustion() {
                if $fixed {
                    super::exhaustion($make);
                }
            }
        }
    };
}

conformance_suite!(
    static_manager,
    fixed: true,
    owns_slots: true,
    make: StaticMemoryManager::<_, CAPACITY>::new()
);
conformance_suite!(
    heap_fixed,
    fixed: true,
    owns_slots: true,
    make: HeapMemoryManager::with_fixed_capacity(CAPACITY)
);
conformance_suite!(
    heap_growable,
    fixed: false,
    owns_slots: true,
    make: HeapMemoryManager::growable(1)
);
conformance_suite!(
    concurrent_manager,
    fixed: true,
    owns_slots: true,
    make: ConcurrentMemoryManager::new(CAPACITY)
);
conformance_suite!(
    concurrent_handle,
    fixed: true,
    owns_slots: false,
    make: ConcurrentMemoryManager::new(CAPACITY).handle()
);

#[test]
fn growable_heap_grows() {
    let mut manager = HeapMemoryManager::growable(0);
    assert_eq!(manager.capacity(), 0);
    let tokens: Vec<_> = (0..1000)
        .map(|v| manager.store(message(v)).unwrap())
        .collect();
    assert!(manager.capacity() >= 1000);
    assert_eq!(manager.capacity() - manager.available(), 1000);
    for (value, token) in (0..).zip(tokens) {
        assert_eq!(manager.read(token).unwrap().payload, value);
    }
}

#[test]
fn errors_read_like_sentences() {
    for error in [
        MemoryError::NoFreeSlots,
        MemoryError::BadToken,
        MemoryError::NotAllocated,
        MemoryError::AlreadyBorrowed,
        MemoryError::BorrowActive,
        MemoryError::Poisoned,
    ] {
        let text = error.to_string();
        assert!(text.len() > 20, "{error:?}: {text}");
        let _: &dyn std::error::Error = &error;
    }
}

#[test]
fn take_hands_the_message_back() {
    let mut fixed = StaticMemoryManager::<u64, 2>::new();
    let token = fixed.store(message(5)).unwrap();
    assert_eq!(fixed.take(token).unwrap().payload, 5);
    assert_eq!(fixed.take(token).err(), Some(MemoryError::BadToken));
    assert!(fixed.is_empty());

    let mut heap = HeapMemoryManager::with_fixed_capacity(2);
    let token = heap.store(message(6)).unwrap();
    assert_eq!(heap.len(), 1);
    assert_eq!(heap.take(token).unwrap().payload, 6);
    assert_eq!(heap.available(), 2);

    let shared = ConcurrentMemoryManager::new(2);
    let token = shared.store(message(7)).unwrap();
    assert_eq!(shared.take(token).unwrap().payload, 7);
    assert_eq!(shared.take(token).err(), Some(MemoryError::BadToken));
}

#[test]
fn zero_capacity_managers_are_always_full() {
    fn full(mut manager: impl MemoryManager<u64>) {
        assert_eq!((manager.capacity(), manager.available()), (0, 0));
        assert_eq!(manager.store(message(1)), Err(MemoryError::NoFreeSlots));
        assert_eq!(
            manager.free(MessageToken::new(0, 0)),
            Err(MemoryError::BadToken)
        );
    }
    full(StaticMemoryManager::<u64, 0>::new());
    full(HeapMemoryManager::with_fixed_capacity(0));
    full(ConcurrentMemoryManager::new(0));
}
