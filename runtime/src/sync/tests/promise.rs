use std::cell::Cell;
use std::io;
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;

use super::DropCount;
use crate::sync::test_util::{LocalExecutor, block_on, counting_waker, poll_once};
use crate::sync::{FutureWith, PromiseError, pool, promise};

#[test]
fn set_before_await_delivers_the_value() {
    let (fut, p) = promise::<String>();
    assert!(!fut.is_ready());
    p.set("hi".into()).unwrap();
    assert!(fut.is_ready());
    assert_eq!(block_on(fut).unwrap(), "hi");
}

#[test]
fn set_from_another_task_wakes_the_awaiting_task() {
    let ex = LocalExecutor::new();
    let (fut, p) = promise::<u32>();
    let out = ex.spawn(fut);
    assert_eq!(ex.run_until_stalled(), 1, "the future waits for its value");
    ex.spawn(async move { p.set(5).unwrap() });
    assert_eq!(ex.run_until_stalled(), 0);
    assert_eq!(out.borrow_mut().take().unwrap().unwrap(), 5);
}

#[test]
fn set_after_the_future_is_dropped_hands_the_value_back() {
    let (fut, p) = promise::<Vec<u8>>();
    drop(fut);
    assert!(p.is_abandoned());
    assert_eq!(p.set(vec![1, 2, 3]), Err(vec![1, 2, 3]));
    let (fut, p) = promise::<u8>();
    drop(fut);
    let e = p.fail(io::Error::other("late")).unwrap_err();
    assert_eq!(e.to_string(), "late");
}

#[test]
fn dropped_promise_breaks_and_wakes_the_future() {
    let (mut fut, p) = promise::<u32>();
    let (waker, wakes) = counting_waker();
    assert!(poll_once(&mut fut, &waker).is_pending());
    drop(p);
    assert_eq!(wakes.0.load(std::sync::atomic::Ordering::SeqCst), 1);
    match poll_once(&mut fut, &waker) {
        Poll::Ready(Err(e)) => {
            assert!(e.is_broken());
            assert_eq!(
                e.to_string(),
                "broken promise: the promise was dropped without a value"
            );
        }
        other => panic!("expected Broken, got {other:?}"),
    }
}

#[test]
fn fail_resolves_with_the_error_as_source() {
    let (fut, p) = promise::<u32>();
    p.fail(io::Error::new(io::ErrorKind::NotFound, "no such user"))
        .unwrap();
    let err = block_on(fut).unwrap_err();
    assert_eq!(err.to_string(), "the promise was failed: no such user");
    let source = std::error::Error::source(&err).expect("failure has a source");
    let io = source.downcast_ref::<io::Error>().expect("an io::Error");
    assert_eq!(io.kind(), io::ErrorKind::NotFound);
}

#[test]
fn awaiters_are_returned_to_the_pool() {
    let before = pool::in_use();
    let pairs: Vec<_> = (0..10).map(|_| promise::<u64>()).collect();
    assert_eq!(pool::in_use(), before + 10);
    for (i, (fut, p)) in pairs.into_iter().enumerate() {
        match i % 4 {
            0 => {
                p.set(i as u64).unwrap();
                assert_eq!(block_on(fut).unwrap(), i as u64);
            }
            1 => {
                drop(fut);
                assert!(p.set(1).is_err());
            }
            2 => {
                drop(p);
                assert!(block_on(fut).is_err());
            }
            _ => {
                p.set(3).unwrap();
                drop(fut); // value set but never read
            }
        }
    }
    assert_eq!(
        pool::in_use(),
        before,
        "every awaiter went back to the pool"
    );
}

#[test]
fn unread_values_are_dropped_exactly_once_inline_and_boxed() {
    let drops = Rc::new(Cell::new(0));
    let (fut, p) = promise::<DropCount>();
    p.set(DropCount(drops.clone())).map_err(|_| ()).unwrap();
    drop(fut);
    assert_eq!(drops.get(), 1);

    // Larger than the inline slot: boxed.
    let (fut, p) = promise::<(DropCount, [u64; 16])>();
    p.set((DropCount(drops.clone()), [7; 16]))
        .map_err(|_| ())
        .unwrap();
    drop(fut);
    assert_eq!(drops.get(), 2);

    let (fut, p) = promise::<(DropCount, [u64; 16])>();
    p.set((DropCount(drops.clone()), [9; 16]))
        .map_err(|_| ())
        .unwrap();
    let (d, arr) = block_on(fut).map_err(|_| ()).unwrap();
    assert_eq!(arr, [9; 16]);
    assert_eq!(drops.get(), 2);
    drop(d);
    assert_eq!(drops.get(), 3);
}

/// A value whose destructor makes a promise pair: dropping it must not re-enter the pool
/// while the pool is borrowed.
struct MakesPromiseOnDrop;
impl Drop for MakesPromiseOnDrop {
    fn drop(&mut self) {
        let (fut, p) = promise::<u8>();
        p.set(1).unwrap();
        assert_eq!(block_on(fut).unwrap(), 1);
    }
}

#[test]
fn a_value_whose_drop_uses_promises_is_dropped_outside_the_pool() {
    let (fut, p) = promise::<MakesPromiseOnDrop>();
    p.set(MakesPromiseOnDrop).map_err(|_| ()).unwrap();
    drop(fut);
    let (fut, p) = promise::<MakesPromiseOnDrop>();
    drop(fut);
    drop(p.set(MakesPromiseOnDrop)); // handed back, dropped by us
}

#[test]
#[should_panic(expected = "polled after it completed")]
fn polling_after_completion_panics_with_a_clear_message() {
    let (mut fut, p) = promise::<u8>();
    p.set(1).unwrap();
    let (waker, _) = counting_waker();
    assert!(poll_once(&mut fut, &waker).is_ready());
    let _ = poll_once(&mut fut, &waker);
}

#[test]
fn future_with_receives_into_its_own_memory() {
    let mut fut = pin!(FutureWith::<[u8; 1024]>::new());
    let p = fut.as_mut().promise();
    p.set([3; 1024]).unwrap();
    let v = block_on(fut).unwrap();
    assert!(v.iter().all(|&b| b == 3));
}

#[test]
fn future_with_set_from_another_task() {
    let ex = LocalExecutor::new();
    let (tx, rx) = crate::sync::chan(1);
    let out = ex.spawn(async move {
        let mut fut = pin!(FutureWith::<String>::new());
        tx.send(fut.as_mut().promise()).await.unwrap();
        fut.await
    });
    ex.spawn(async move {
        let p = rx.recv().await.unwrap();
        p.set("written in place".to_string()).unwrap();
    });
    ex.run();
    assert_eq!(
        out.borrow_mut().take().unwrap().unwrap(),
        "written in place"
    );
}

#[test]
fn future_with_unhappy_paths() {
    // Promise dropped: Broken.
    let mut fut = pin!(FutureWith::<u32>::new());
    drop(fut.as_mut().promise());
    assert!(matches!(block_on(fut), Err(PromiseError::Broken)));

    // Never linked: Broken, not a hang.
    let fut = pin!(FutureWith::<u32>::new());
    assert!(matches!(block_on(fut), Err(PromiseError::Broken)));

    // Future dropped first: the value comes back and nothing is written.
    let p = {
        let mut fut = Box::pin(FutureWith::<String>::new());
        fut.as_mut().promise()
    };
    assert!(p.is_abandoned());
    assert_eq!(p.set("x".into()), Err("x".to_string()));

    // Value set, future dropped unread: dropped once, with the future.
    let drops = Rc::new(Cell::new(0));
    {
        let mut fut = Box::pin(FutureWith::<DropCount>::new());
        let p = fut.as_mut().promise();
        p.set(DropCount(drops.clone())).map_err(|_| ()).unwrap();
        assert_eq!(drops.get(), 0);
    }
    assert_eq!(drops.get(), 1);
}

#[test]
#[should_panic(expected = "exactly one promise")]
fn future_with_has_exactly_one_promise() {
    let mut fut = pin!(FutureWith::<u32>::new());
    let _a = fut.as_mut().promise();
    let _b = fut.as_mut().promise();
}

#[test]
fn pairs_are_not_send() {
    // Compile-time facts, checked with the auto-trait trick: these would fail to build if
    // the types became `Send`.
    trait AmbiguousIfSend<A> {
        fn some_item() {}
    }
    impl<T: ?Sized> AmbiguousIfSend<()> for T {}
    #[allow(dead_code)]
    struct Invalid;
    impl<T: ?Sized + Send> AmbiguousIfSend<Invalid> for T {}
    let _ = <crate::sync::Promise<u8> as AmbiguousIfSend<_>>::some_item;
    let _ = <crate::sync::PromiseFuture<u8> as AmbiguousIfSend<_>>::some_item;
    let _ = <FutureWith<u8> as AmbiguousIfSend<_>>::some_item;
}
