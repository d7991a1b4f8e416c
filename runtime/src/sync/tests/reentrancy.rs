//! User code that runs inside the primitives: a waker's clone and destructor are arbitrary
//! code, and may use the very pair or channel whose lock or pool borrow is held. These were
//! found in review (once a use-after-free, once a self-deadlock); each stays as a test.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Wake, Waker};

use crate::sync::{FutureWith, promise};

type Held = Option<Pin<Box<FutureWith<[u8; 256]>>>>;

thread_local! {
    static HELD: RefCell<Held> = const { RefCell::new(None) };
}

/// A plain `Wake` waker (safe code) whose destructor drops a `FutureWith` this thread keeps.
struct DropsAFuture;
impl Wake for DropsAFuture {
    fn wake(self: Arc<Self>) {}
}
impl Drop for DropsAFuture {
    fn drop(&mut self) {
        let fut = HELD.with(|h| h.borrow_mut().take());
        drop(fut);
    }
}
struct Noop;
impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

#[test]
fn a_waker_whose_destructor_drops_a_future_with_is_dropped_outside_the_pool() {
    let mut fw = Box::pin(FutureWith::<[u8; 256]>::new());
    let p1 = fw.as_mut().promise();
    HELD.with(|h| *h.borrow_mut() = Some(fw));

    let (mut f2, _p2) = promise::<u32>();
    let w1 = Waker::from(Arc::new(DropsAFuture));
    assert!(
        Pin::new(&mut f2)
            .poll(&mut Context::from_waker(&w1))
            .is_pending()
    );
    drop(w1); // the awaiter of (f2, p2) now holds the only `DropsAFuture`

    // Re-polling with another waker replaces the stored one; its destructor drops the
    // FutureWith, which must reach the pool, so it may only run once the pool is released.
    let w2 = Waker::from(Arc::new(Noop));
    assert!(
        Pin::new(&mut f2)
            .poll(&mut Context::from_waker(&w2))
            .is_pending()
    );
    assert!(
        HELD.with(|h| h.borrow().is_none()),
        "the FutureWith is gone"
    );
    // Its promise learned it: `set` hands the value back instead of writing into freed memory.
    assert!(p1.is_abandoned());
    assert!(p1.set([0xAB; 256]).is_err());
}

/// A waker that owns a sender of the channel it waits on (all safe code).
struct OwnsSender(#[allow(dead_code)] crate::sync::AsyncSender<u32>);
impl Wake for OwnsSender {
    fn wake(self: Arc<Self>) {}
}

#[test]
fn a_waker_owning_a_sender_is_dropped_outside_the_channel_lock() {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (tx, rx) = crate::sync::async_chan::<u32>(1);
        let mut recv = rx.recv();
        let w1 = Waker::from(Arc::new(OwnsSender(tx.clone())));
        assert!(
            Pin::new(&mut recv)
                .poll(&mut Context::from_waker(&w1))
                .is_pending()
        );
        drop(w1); // the channel's recv waiter holds the only OwnsSender
        let w2 = Waker::from(Arc::new(Noop));
        // Replacing the waker drops OwnsSender, whose AsyncSender::drop locks the core: that
        // must happen after the poll released the lock.
        let _ = Pin::new(&mut recv).poll(&mut Context::from_waker(&w2));
        done_tx.send(()).unwrap();
    });
    assert!(
        done_rx
            .recv_timeout(std::time::Duration::from_secs(3))
            .is_ok(),
        "re-polling a recv future with a new waker deadlocked on the channel lock"
    );
}

#[test]
fn async_chan_parked_blocking_senders_get_their_values_back_when_receiver_drops() {
    let (tx, rx) = crate::sync::async_chan::<Box<u32>>(1);
    tx.try_send(Box::new(0)).unwrap();
    let hs: Vec<_> = (1..=3)
        .map(|i| {
            let tx = tx.clone();
            std::thread::spawn(move || tx.send_blocking(Box::new(i)))
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(200));
    drop(rx);
    let mut back: Vec<u32> = hs
        .into_iter()
        .map(|h| *h.join().unwrap().unwrap_err().0)
        .collect();
    back.sort();
    assert_eq!(back, vec![1, 2, 3]);
    assert!(tx.send_blocking(Box::new(9)).is_err());
}

#[test]
fn async_chan_stress_close_vs_blocked_senders_vs_receiver_drop_accounts_every_value() {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, SeqCst);
        }
    }
    // Fewer under Miri (which runs this about a thousand times slower); 14 rounds still
    // cover both close choices with every drain count.
    let rounds = if cfg!(miri) { 14 } else { 200 };
    for round in 0..rounds {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = crate::sync::async_chan::<Counted>(2);
        let made = 4 * 20;
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let tx = tx.clone();
                let drops = drops.clone();
                std::thread::spawn(move || {
                    let mut back = 0;
                    for _ in 0..20 {
                        if let Err(e) = tx.send_blocking(Counted(drops.clone())) {
                            drop(e);
                            back += 1;
                        }
                    }
                    back
                })
            })
            .collect();
        let closer = {
            let tx = tx.clone();
            std::thread::spawn(move || {
                std::thread::yield_now();
                if round % 2 == 0 {
                    tx.close();
                }
            })
        };
        drop(tx);
        let mut got = 0;
        for _ in 0..(round % 7) {
            if let Ok(v) = rx.try_recv() {
                drop(v);
                got += 1;
            }
        }
        drop(rx);
        let back: usize = hs.into_iter().map(|h| h.join().unwrap()).sum();
        closer.join().unwrap();
        let _ = (got, back);
        assert_eq!(
            drops.load(SeqCst),
            made,
            "round {round}: every value dropped exactly once"
        );
    }
}
