//! Owned tokens free their slot on drop, including when the task holding them is dropped
//! half-way.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Waker};

use crate::memory::{
    ConcurrentMemoryManager, HeapMemoryManager, MemoryError, MemoryManager, Message, OwnedToken,
    SharedManager, StaticMemoryManager,
};

fn frees_on_drop<M: SharedManager<u64>>(manager: M, available: impl Fn(&M) -> usize) {
    let before = available(&manager);
    {
        let _a = OwnedToken::store(&manager, Message::new(1, 1)).unwrap();
        let _b = OwnedToken::store(&manager, Message::new(2, 2)).unwrap();
        assert_eq!(available(&manager), before - 2);
    }
    assert_eq!(available(&manager), before);
}

#[test]
fn every_shared_manager_frees_on_drop() {
    frees_on_drop(RefCell::new(StaticMemoryManager::<u64, 4>::new()), |m| {
        m.borrow().available()
    });
    frees_on_drop(
        RefCell::new(HeapMemoryManager::with_fixed_capacity(4)),
        |m| m.borrow().available(),
    );
    frees_on_drop(ConcurrentMemoryManager::new(4), |m| m.available());
    let shared = ConcurrentMemoryManager::new(4);
    frees_on_drop(shared.handle(), |m| m.available());
    frees_on_drop(Arc::new(ConcurrentMemoryManager::new(4)), |m| m.available());
}

/// A task holding owned tokens is polled to its first `.await`, then dropped (as a
/// cancelled task is): no slot leaks.
#[test]
fn task_dropped_half_way_leaks_no_slot() {
    let manager = Rc::new(RefCell::new(
        HeapMemoryManager::<Vec<u8>>::with_fixed_capacity(8),
    ));
    let finished = Rc::new(RefCell::new(false));
    let task = {
        let (manager, finished) = (manager.clone(), finished.clone());
        async move {
            let mut batch = Vec::new();
            for i in 0..5 {
                batch.push(OwnedToken::store(
                    manager.clone(),
                    Message::new(i, vec![0u8; 64]),
                )?);
            }
            std::future::pending::<()>().await; // the task is dropped while waiting here
            *finished.borrow_mut() = true;
            Ok::<_, MemoryError>(batch.len())
        }
    };
    let mut task = Box::pin(task);
    let mut context = Context::from_waker(Waker::noop());
    assert!(task.as_mut().poll(&mut context).is_pending());
    assert_eq!(manager.borrow().available(), 3);
    drop(task);
    assert!(!*finished.borrow());
    assert_eq!(manager.borrow().available(), 8);
}

#[test]
fn into_token_gives_up_ownership() {
    let manager = RefCell::new(StaticMemoryManager::<u64, 2>::new());
    let token = OwnedToken::store(&manager, Message::new(1, 7))
        .unwrap()
        .into_token();
    assert_eq!(manager.borrow().read(token).unwrap().payload, 7);
    assert_eq!(manager.borrow().available(), 1);
    let owned = OwnedToken::from_token(&manager, token);
    assert_eq!(owned.token(), token);
    drop(owned);
    assert_eq!(manager.borrow().available(), 2);
}

#[test]
fn free_reports_a_borrowed_manager_and_keeps_ownership() {
    let manager = RefCell::new(StaticMemoryManager::<u64, 2>::new());
    let owned = OwnedToken::store(&manager, Message::new(1, 7)).unwrap();
    let reading = manager.borrow();
    assert_eq!(
        OwnedToken::store(&manager, Message::new(2, 8))
            .err()
            .map(|e| (e.error, e.message.payload)),
        Some((MemoryError::AlreadyBorrowed, 8)),
        "a refused store hands the message back"
    );
    let (error, owned) = owned.free().unwrap_err();
    assert_eq!(error, MemoryError::BorrowActive);
    drop(reading);
    owned.free().unwrap();
    assert_eq!(manager.borrow().available(), 2);
}

#[test]
fn free_reports_a_live_guard_on_a_concurrent_manager() {
    let manager = ConcurrentMemoryManager::new(2);
    let owned = OwnedToken::store(&manager, Message::new(1, 7u64)).unwrap();
    let guard = manager.read(owned.token()).unwrap();
    let (error, owned) = owned.free().unwrap_err();
    assert_eq!(error, MemoryError::BorrowActive);
    drop(guard);
    drop(owned);
    assert_eq!(manager.available(), 2);
}

#[test]
fn owned_tokens_cross_threads() {
    let manager = Arc::new(ConcurrentMemoryManager::new(4));
    let owned = OwnedToken::store(manager.clone(), Message::new(1, vec![1u8; 16])).unwrap();
    std::thread::spawn(move || {
        assert_eq!(
            owned.manager().read(owned.token()).unwrap().payload.len(),
            16
        );
    })
    .join()
    .unwrap();
    assert_eq!(manager.available(), 4);
}
