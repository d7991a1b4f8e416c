//! Model checks of the lock-free parts under loom: every interleaving of a few threads.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p iomgr --release --lib loom_tests`.

use loom::sync::Arc;
use loom::thread;

use super::ConcurrentMemoryManager;
use super::free_stack::FreeStack;
use crate::memory::{MemoryError, Message, MessageHeader};

fn message(value: u64) -> Message<u64> {
    Message::from_parts(MessageHeader::new(value, 8), value)
}

/// Two threads pop and push concurrently, one of them twice in a row (the ABA shape: an
/// index leaves and comes back while the other thread is mid-pop). Every index ends on the
/// stack exactly once.
#[test]
fn free_stack_keeps_every_index_once() {
    loom::model(|| {
        let stack = Arc::new(FreeStack::full(3));
        let other = stack.clone();
        let worker = thread::spawn(move || {
            let index = other.pop().unwrap();
            other.push(index);
        });
        let first = stack.pop().unwrap();
        let second = stack.pop();
        stack.push(first);
        if let Some(second) = second {
            stack.push(second);
        }
        worker.join().unwrap();
        assert_eq!(stack.len(), 3);
        let mut seen = [stack.pop(), stack.pop(), stack.pop(), stack.pop()];
        seen.sort_unstable();
        assert_eq!(seen, [None, Some(0), Some(1), Some(2)]);
    });
}

/// Two threads race to store into one slot, read back and free: exactly the payloads that
/// were stored are seen, and the slot ends free.
#[test]
fn racing_stores_share_one_slot_safely() {
    loom::model(|| {
        let manager = Arc::new(ConcurrentMemoryManager::new(1));
        let workers: Vec<_> = (1..=2u64)
            .map(|value| {
                let manager = manager.clone();
                thread::spawn(move || match manager.store(message(value)) {
                    Ok(token) => {
                        assert_eq!(manager.read(token).unwrap().payload, value);
                        manager.free(token).unwrap();
                    }
                    Err(error) => assert_eq!(error, MemoryError::NoFreeSlots),
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        assert_eq!(manager.available(), 1);
    });
}

/// A read races a free: the reader sees the whole message or a stale token, and a free
/// under the read guard is refused.
#[test]
fn read_races_free() {
    loom::model(|| {
        let manager = Arc::new(ConcurrentMemoryManager::new(1));
        let token = manager.store(message(7)).unwrap();
        let reader = {
            let manager = manager.clone();
            thread::spawn(move || match manager.read(token) {
                Ok(message) => assert_eq!(message.payload, 7),
                Err(error) => assert_eq!(error, MemoryError::BadToken),
            })
        };
        let freed = manager.free(token);
        reader.join().unwrap();
        match freed {
            Ok(()) => {}
            Err(error) => {
                assert_eq!(error, MemoryError::BorrowActive);
                manager.free(token).unwrap();
            }
        }
        assert_eq!(manager.available(), 1);
    });
}

/// A writer races a reader: the reader sees the value before or after the write, never
/// during it.
#[test]
fn write_races_read() {
    loom::model(|| {
        let manager = Arc::new(ConcurrentMemoryManager::new(1));
        let token = manager.store(message(1)).unwrap();
        let writer = {
            let manager = manager.clone();
            thread::spawn(move || {
                if let Ok(mut message) = manager.read_mut(token) {
                    message.payload = 2;
                }
            })
        };
        match manager.read(token) {
            Ok(message) => assert!(message.payload == 1 || message.payload == 2),
            Err(error) => assert_eq!(error, MemoryError::AlreadyBorrowed),
        }
        writer.join().unwrap();
    });
}

/// A slot is freed and filled again while another thread reads through the old token: it
/// gets the old message or `BadToken`, never the new message.
#[test]
fn stale_token_never_reaches_the_new_message() {
    loom::model(|| {
        let manager = Arc::new(ConcurrentMemoryManager::new(1));
        let old = manager.store(message(1)).unwrap();
        let reader = {
            let manager = manager.clone();
            thread::spawn(move || match manager.read(old) {
                Ok(message) => assert_eq!(message.payload, 1),
                Err(error) => assert_eq!(error, MemoryError::BadToken),
            })
        };
        if manager.free(old).is_ok() {
            let new = manager.store(message(2)).unwrap();
            assert_eq!(new.index(), old.index());
        }
        reader.join().unwrap();
    });
}

/// A token passed to another thread with no synchronization of its own (a relaxed atomic)
/// reaches a fully written message or none at all (the slot's state may not have reached
/// that thread yet): `store` publishes the message, `read` acquires it.
#[test]
fn store_publishes_the_message_to_other_threads() {
    use loom::sync::atomic::{AtomicU64, Ordering};

    loom::model(|| {
        let manager = Arc::new(ConcurrentMemoryManager::new(1));
        let mailbox = Arc::new(AtomicU64::new(u64::MAX));
        let consumer = {
            let (manager, mailbox) = (manager.clone(), mailbox.clone());
            thread::spawn(move || {
                let raw = mailbox.load(Ordering::Relaxed);
                if raw != u64::MAX {
                    let token = crate::memory::MessageToken::from_raw(raw);
                    match manager.read(token) {
                        Ok(message) => assert_eq!(message.payload, 5),
                        Err(error) => assert_eq!(error, MemoryError::NotAllocated),
                    }
                }
            })
        };
        let token = manager.store(message(5)).unwrap();
        mailbox.store(token.into_raw(), Ordering::Relaxed);
        consumer.join().unwrap();
    });
}
