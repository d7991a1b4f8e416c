//! Model checks of the cross-thread primitives with loom: every interleaving of the threads
//! below is explored, with loom's `Arc`/`Mutex` standing in for std's (see `shim`).
//!
//! Run them with:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p iomgr --release --lib sync::loom
//! ```

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Wake, Waker};

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{Arc, Notify};
use loom::thread;

use super::{PromiseError, SendError, async_chan, async_promise};

/// Drives `fut` to completion on this loom thread, waiting on a loom `Notify` between polls
/// (a local version of `loom::future::block_on`, which needs a loom feature).
fn block_on<F: Future>(fut: F) -> F::Output {
    struct Notifier(Notify);
    impl Wake for Notifier {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.notify();
        }
        fn wake_by_ref(self: &std::sync::Arc<Self>) {
            self.0.notify();
        }
    }
    let notifier = std::sync::Arc::new(Notifier(Notify::new()));
    let waker = Waker::from(notifier.clone());
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        notifier.0.wait();
    }
}

/// Counts its drops in a loom atomic.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn async_promise_set_on_another_thread_is_received() {
    loom::model(|| {
        let (fut, p) = async_promise::<u32>();
        let t = thread::spawn(move || p.set(7).unwrap());
        assert_eq!(block_on(fut).unwrap(), 7);
        t.join().unwrap();
    });
}

#[test]
fn async_promise_dropped_on_another_thread_breaks_the_future() {
    loom::model(|| {
        let (fut, p) = async_promise::<u32>();
        let t = thread::spawn(move || drop(p));
        assert!(matches!(block_on(fut), Err(PromiseError::Broken)));
        t.join().unwrap();
    });
}

#[test]
fn async_promise_set_racing_the_futures_drop_drops_the_value_once() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (fut, p) = async_promise::<Counted>();
        let value = Counted(drops.clone());
        let t = thread::spawn(move || match p.set(value) {
            Ok(()) => true,
            Err(back) => {
                drop(back);
                false
            }
        });
        drop(fut);
        t.join().unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped exactly once");
    });
}

#[test]
fn async_promise_future_that_changes_its_waker_still_sees_the_value() {
    loom::model(|| {
        let (fut, p) = async_promise::<u32>();
        let t = thread::spawn(move || p.set(3).unwrap());
        let mut fut = pin!(fut);
        // Stores a waker nobody watches, then waits with another one: the promise may wake
        // either, and the second poll must not miss the value.
        match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => assert_eq!(v.unwrap(), 3),
            Poll::Pending => assert_eq!(block_on(fut).unwrap(), 3),
        }
        t.join().unwrap();
    });
}

#[test]
fn async_promise_broken_while_the_future_registers() {
    loom::model(|| {
        let (fut, p) = async_promise::<u32>();
        let t = thread::spawn(move || drop(p));
        assert!(matches!(block_on(fut), Err(PromiseError::Broken)));
        t.join().unwrap();
    });
}

/// The channel tests have more lock operations than the promise tests; a preemption bound
/// keeps their exploration to minutes while still covering every schedule with up to that
/// many forced context switches (where almost all concurrency bugs show up).
fn bounded_model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(f);
}

#[test]
fn async_chan_two_senders_keep_order_and_lose_nothing() {
    bounded_model(|| {
        let (tx, rx) = async_chan::<(u8, u8)>(1);
        let tx2 = tx.clone();
        let a = thread::spawn(move || {
            block_on(async {
                tx.send((0, 0)).await.unwrap();
                tx.send((0, 1)).await.unwrap();
            })
        });
        let b = thread::spawn(move || block_on(tx2.send((1, 0))).unwrap());
        let got = block_on(async {
            let mut got = Vec::new();
            while let Some(v) = rx.recv().await {
                got.push(v);
            }
            got
        });
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(got.len(), 3);
        let from_a: Vec<_> = got.iter().filter(|(s, _)| *s == 0).collect();
        assert_eq!(from_a, vec![&(0, 0), &(0, 1)], "sender a's order kept");
        assert!(got.contains(&(1, 0)));
    });
}

#[test]
fn async_chan_close_with_a_sender_in_flight_loses_nothing() {
    bounded_model(|| {
        let (tx, rx) = async_chan::<u8>(1);
        let t = thread::spawn(move || {
            block_on(async {
                let mut returned = Vec::new();
                for v in 0..2 {
                    if let Err(SendError(v)) = tx.send(v).await {
                        returned.push(v);
                    }
                }
                returned
            })
        });
        let first = block_on(rx.recv());
        rx.close();
        let mut received: Vec<u8> = first.into_iter().collect();
        while let Ok(v) = rx.try_recv() {
            received.push(v);
        }
        let returned = t.join().unwrap();
        let mut all: Vec<u8> = received.into_iter().chain(returned).collect();
        all.sort_unstable();
        assert_eq!(all, vec![0, 1], "every value received or handed back, once");
    });
}

#[test]
fn async_chan_parked_values_let_in_by_half_buffer_keep_order() {
    bounded_model(|| {
        // Capacity 3 filled up front, then two senders park one value each; the receiver
        // lets both in together once two places are free.
        let (tx, rx) = async_chan::<u8>(3);
        for v in 0..3 {
            tx.try_send(v).unwrap();
        }
        let tx2 = tx.clone();
        let a = thread::spawn(move || block_on(tx.send(3)).unwrap());
        let b = thread::spawn(move || block_on(tx2.send(4)).unwrap());
        let got = block_on(async {
            let mut got = Vec::new();
            while let Some(v) = rx.recv().await {
                got.push(v);
            }
            got
        });
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(&got[..3], &[0, 1, 2], "buffered items first");
        let mut rest = got[3..].to_vec();
        rest.sort_unstable();
        assert_eq!(rest, vec![3, 4], "both parked values delivered, once");
    });
}

#[test]
fn async_chan_items_taken_ahead_keep_order_and_are_all_received() {
    bounded_model(|| {
        // Capacity 4: a receive takes up to two items ahead in its lock.
        let (tx, rx) = async_chan::<u8>(4);
        let t = thread::spawn(move || {
            block_on(async {
                for v in 0..4 {
                    tx.send(v).await.unwrap();
                }
            })
        });
        let got = block_on(async {
            let mut got = Vec::new();
            while let Some(v) = rx.recv().await {
                got.push(v);
            }
            got
        });
        t.join().unwrap();
        assert_eq!(got, vec![0, 1, 2, 3]);
    });
}
