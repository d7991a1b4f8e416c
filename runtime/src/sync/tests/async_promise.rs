use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use crate::sync::test_util::{LocalExecutor, block_on};
use crate::sync::{AsyncPromise, PromiseError, async_promise};

#[test]
fn set_on_another_thread_wakes_the_owner() {
    let ex = LocalExecutor::new();
    let (fut, p) = async_promise::<String>();
    let out = ex.spawn(fut);
    assert_eq!(ex.run_until_stalled(), 1);
    let t = thread::spawn(move || p.set("from afar".into()).unwrap());
    ex.run();
    t.join().unwrap();
    assert_eq!(out.borrow_mut().take().unwrap().unwrap(), "from afar");
}

#[test]
fn dropped_on_another_thread_breaks_the_future() {
    let (fut, p) = async_promise::<u8>();
    thread::spawn(move || drop(p)).join().unwrap();
    assert!(matches!(block_on(fut), Err(PromiseError::Broken)));
}

#[test]
fn fail_on_another_thread() {
    let (fut, p) = async_promise::<u8>();
    thread::spawn(move || p.fail(io::Error::other("worker died")).unwrap());
    let e = block_on(fut).unwrap_err();
    assert_eq!(e.to_string(), "the promise was failed: worker died");
}

#[test]
fn set_after_the_future_is_gone_hands_the_value_back_on_any_thread() {
    let (fut, p) = async_promise::<Vec<u32>>();
    drop(fut);
    let back = thread::spawn(move || {
        assert!(p.is_abandoned());
        p.set(vec![4, 2])
    })
    .join()
    .unwrap();
    assert_eq!(back, Err(vec![4, 2]));
}

#[test]
fn many_promises_completed_by_many_threads() {
    let ex = LocalExecutor::new();
    let sum = Arc::new(AtomicUsize::new(0));
    let mut promises: Vec<AsyncPromise<usize>> = Vec::new();
    for _ in 0..64 {
        let (fut, p) = async_promise::<usize>();
        promises.push(p);
        let sum = sum.clone();
        ex.spawn(async move {
            sum.fetch_add(fut.await.unwrap(), Ordering::SeqCst);
        });
    }
    assert_eq!(ex.run_until_stalled(), 64);
    let mut threads = Vec::new();
    for chunk in 0..4 {
        let mine: Vec<_> = promises.drain(..16).collect();
        threads.push(thread::spawn(move || {
            for (i, p) in mine.into_iter().enumerate() {
                p.set(chunk * 16 + i).unwrap();
            }
        }));
    }
    ex.run();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(sum.load(Ordering::SeqCst), (0..64).sum::<usize>());
}

#[test]
fn the_promise_is_send_and_the_future_is_not() {
    fn assert_send<T: Send>() {}
    assert_send::<AsyncPromise<String>>();
    trait AmbiguousIfSend<A> {
        fn some_item() {}
    }
    impl<T: ?Sized> AmbiguousIfSend<()> for T {}
    #[allow(dead_code)]
    struct Invalid;
    impl<T: ?Sized + Send> AmbiguousIfSend<Invalid> for T {}
    let _ = <crate::sync::AsyncPromiseFuture<u8> as AmbiguousIfSend<_>>::some_item;
}
