//! The borrow states only a shared manager can reach: conflicting guards, freeing under a
//! guard, poisoning, and the `Send`/`Sync` promises.

use std::sync::Arc;

use crate::memory::{
    ConcurrentHandle, ConcurrentMemoryManager, HeaderStore, MemoryError, MemoryManager, Message,
    OwnedToken, ScopedManager,
};

#[test]
fn read_guards_share_and_block_writers_and_free() {
    let manager = ConcurrentMemoryManager::new(2);
    let token = manager.store(Message::new(1, 5u64)).unwrap();
    let first = manager.read(token).unwrap();
    let second = manager.read(token).unwrap();
    assert_eq!(first.payload + second.payload, 10);
    assert_eq!(
        manager.read_mut(token).err(),
        Some(MemoryError::AlreadyBorrowed)
    );
    assert_eq!(manager.free(token), Err(MemoryError::BorrowActive));
    drop(first);
    assert_eq!(manager.free(token), Err(MemoryError::BorrowActive));
    drop(second);
    manager.read_mut(token).unwrap().payload = 6;
    assert_eq!(manager.take(token).unwrap().payload, 6);
}

#[test]
fn write_guard_excludes_everything() {
    let manager = ConcurrentMemoryManager::new(2);
    let token = manager.store(Message::new(1, 5u64)).unwrap();
    let writer = manager.read_mut(token).unwrap();
    assert_eq!(
        manager.read(token).err(),
        Some(MemoryError::AlreadyBorrowed)
    );
    assert_eq!(manager.header(token), Err(MemoryError::AlreadyBorrowed));
    assert_eq!(
        manager.read_mut(token).err(),
        Some(MemoryError::AlreadyBorrowed)
    );
    assert_eq!(manager.free(token), Err(MemoryError::BorrowActive));
    drop(writer);
    manager.free(token).unwrap();
}

#[test]
fn guards_do_not_affect_other_slots() {
    let manager = ConcurrentMemoryManager::new(2);
    let a = manager.store(Message::new(1, 1u64)).unwrap();
    let b = manager.store(Message::new(2, 2u64)).unwrap();
    let _writer = manager.read_mut(a).unwrap();
    assert_eq!(manager.read(b).unwrap().payload, 2);
    manager.free(b).unwrap();
}

#[test]
fn panicking_writer_poisons_its_message() {
    let manager = ConcurrentMemoryManager::new(2);
    let token = manager.store(Message::new(1, 1u64)).unwrap();
    let other = manager.store(Message::new(2, 2u64)).unwrap();
    std::thread::scope(|scope| {
        let outcome = scope
            .spawn(|| {
                let mut writer = manager.read_mut(token).unwrap();
                writer.payload = 99;
                panic!("writer fails half-way (this panic is expected)");
            })
            .join();
        assert!(outcome.is_err());
    });
    assert_eq!(manager.read(token).err(), Some(MemoryError::Poisoned));
    assert_eq!(manager.read_mut(token).err(), Some(MemoryError::Poisoned));
    assert_eq!(manager.read(other).unwrap().payload, 2);
    manager.free(token).unwrap();
    assert_eq!(manager.read(token).err(), Some(MemoryError::BadToken));
    let again = manager.store(Message::new(3, 3u64)).unwrap();
    assert_eq!(manager.read(again).unwrap().payload, 3);
}

#[test]
fn scoped_handles_work_on_threads() {
    let manager = ConcurrentMemoryManager::new(8);
    std::thread::scope(|scope| {
        for worker in 0..4u64 {
            let mut handle = manager.scoped_handle();
            scope.spawn(move || {
                let token = handle
                    .store(Message::new(worker, vec![worker as u8; 32]))
                    .unwrap();
                handle.read_mut(token).unwrap().payload[0] += 1;
                assert_eq!(handle.read(token).unwrap().payload[0], worker as u8 + 1);
                handle.free(token).unwrap();
            });
        }
    });
    assert_eq!(manager.available(), 8);
}

#[test]
fn thread_safety_promises() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    type Bytes = Vec<u8>;
    send::<ConcurrentMemoryManager<Bytes>>();
    sync::<ConcurrentMemoryManager<Bytes>>();
    send::<ConcurrentHandle<'static, Bytes>>();
    send::<crate::memory::ConcurrentReadGuard<'static, Bytes>>();
    send::<OwnedToken<Bytes, Arc<ConcurrentMemoryManager<Bytes>>>>();
}

#[test]
fn a_write_made_cleanly_during_an_unrelated_unwind_does_not_poison() {
    let manager = ConcurrentMemoryManager::new(1);
    let token = manager.store(Message::new(1, 0u64)).unwrap();
    struct EditsOnDrop<'a>(
        &'a ConcurrentMemoryManager<u64>,
        crate::memory::MessageToken,
    );
    impl Drop for EditsOnDrop<'_> {
        fn drop(&mut self) {
            self.0.read_mut(self.1).unwrap().payload = 42;
        }
    }
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _edit = EditsOnDrop(&manager, token);
        panic!("unrelated panic (expected in this test)");
    }));
    assert_eq!(manager.read(token).map(|m| m.payload), Ok(42));
}
