//! Promise/future pairs on the real runtime: across tasks, across threads, and across a
//! runtime's end.

use std::io;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use iomgr::sync::{PromiseError, async_promise, promise};
use iomgr::{Runtime, spawn};

#[test]
fn a_task_completes_another_tasks_promise() {
    let rt = Runtime::new().unwrap();
    let v = rt.block_on(async {
        let (fut, p) = promise::<String>();
        let waiter = spawn(async move { fut.await.unwrap() + "!" });
        iomgr::yield_now().await;
        assert!(!waiter.is_finished(), "the waiter waits for its value");
        spawn(async move { p.set("done".into()).unwrap() });
        waiter.await.unwrap()
    });
    assert_eq!(v, "done!");
}

#[test]
fn a_promise_dropped_by_a_finished_task_breaks_the_future() {
    let rt = Runtime::new().unwrap();
    let err = rt.block_on(async {
        let (fut, p) = promise::<u32>();
        spawn(async move {
            iomgr::time::sleep(Duration::from_millis(5)).await;
            drop(p); // the producer gives up without a value
        });
        fut.await.unwrap_err()
    });
    assert!(matches!(err, PromiseError::Broken));
}

#[test]
fn an_async_promise_set_on_a_thread_wakes_the_parked_runtime() {
    let rt = Runtime::new().unwrap();
    let v = rt.block_on(async {
        let (fut, p) = async_promise::<u64>();
        // The runtime has nothing else to do: it blocks in its ring wait until the wake.
        let t = thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            p.set(42).unwrap();
        });
        let v = fut.await.unwrap();
        t.join().unwrap();
        v
    });
    assert_eq!(v, 42);
}

#[test]
fn an_async_promise_failed_on_a_thread() {
    let rt = Runtime::new().unwrap();
    let e = rt.block_on(async {
        let (fut, p) = async_promise::<u64>();
        thread::spawn(move || p.fail(io::Error::other("worker crashed")).unwrap());
        fut.await.unwrap_err()
    });
    assert_eq!(e.to_string(), "the promise was failed: worker crashed");
}

#[test]
fn completing_after_the_runtime_stopped_hands_the_value_back() {
    let (tx, rx) = mpsc::channel();
    {
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let (fut, p) = async_promise::<String>();
            tx.send(p).unwrap();
            // A task that would await the value, still waiting when the runtime ends.
            spawn(fut);
        });
        assert_eq!(rt.tasks_alive(), 1);
    } // the runtime is dropped: its tasks, and the future, with it
    let p = rx.recv().unwrap();
    let back = thread::spawn(move || {
        assert!(p.is_abandoned());
        p.set("too late".to_string())
    })
    .join()
    .unwrap();
    assert_eq!(back, Err("too late".to_string()));
}

#[test]
fn a_wake_for_an_idle_runtime_is_delivered_at_its_next_block_on() {
    let rt = Runtime::new().unwrap();
    let (fut, p) = async_promise::<u32>();
    let mut handle = None;
    rt.block_on(async {
        handle = Some(spawn(async move { fut.await.unwrap() * 2 }));
    });
    let handle = handle.unwrap();
    // The runtime is not running; complete the promise from a thread meanwhile.
    thread::spawn(move || p.set(21).unwrap()).join().unwrap();
    assert_eq!(rt.block_on(handle).unwrap(), 42);
}

#[test]
fn many_runtimes_answer_each_other() {
    // Runtime A asks runtime B (another thread) for work via async promises.
    let (req_tx, req_rx) = mpsc::channel::<(u64, iomgr::sync::AsyncPromise<u64>)>();
    let b = thread::spawn(move || {
        let rt = Runtime::new().unwrap();
        rt.block_on(async move {
            while let Ok((n, p)) = req_rx.recv() {
                p.set(n * n).unwrap();
                iomgr::yield_now().await;
            }
        });
    });
    let rt = Runtime::new().unwrap();
    let sum = rt.block_on(async move {
        let mut sum = 0;
        for n in 0..100u64 {
            let (fut, p) = async_promise::<u64>();
            req_tx.send((n, p)).unwrap();
            sum += fut.await.unwrap();
        }
        sum
    });
    b.join().unwrap();
    assert_eq!(sum, (0..100u64).map(|n| n * n).sum::<u64>());
}
