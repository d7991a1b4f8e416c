use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use crate::sync::test_util::{LocalExecutor, block_on};
use crate::sync::{AsyncSender, SendError, TryRecvError, async_chan};

#[test]
fn many_threads_lose_nothing_and_keep_per_sender_order() {
    const SENDERS: u64 = 4;
    // Fewer under Miri, which runs this about a thousand times slower.
    const EACH: u64 = if cfg!(miri) { 40 } else { 5_000 };
    let (tx, rx) = async_chan::<(u64, u64)>(8);
    let threads: Vec<_> = (0..SENDERS)
        .map(|id| {
            let tx = tx.clone();
            thread::spawn(move || {
                for seq in 0..EACH {
                    tx.send_blocking((id, seq)).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let (count, checksum, next) = block_on(async {
        let mut next: HashMap<u64, u64> = HashMap::new();
        let (mut count, mut checksum) = (0u64, 0u64);
        while let Some((id, seq)) = rx.recv().await {
            let expected = next.entry(id).or_insert(0);
            assert_eq!(seq, *expected, "sender {id} out of order");
            *expected += 1;
            count += 1;
            checksum += id * 1_000_000 + seq;
        }
        (count, checksum, next)
    });
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(count, SENDERS * EACH);
    let want: u64 = (0..SENDERS)
        .map(|id| (0..EACH).map(|s| id * 1_000_000 + s).sum::<u64>())
        .sum();
    assert_eq!(checksum, want);
    assert!(next.values().all(|&n| n == EACH));
}

#[test]
fn async_send_from_another_thread_with_back_pressure() {
    let (tx, rx) = async_chan::<u32>(2);
    let sent = Arc::new(AtomicUsize::new(0));
    let s = sent.clone();
    let t = thread::spawn(move || {
        block_on(async {
            for i in 0..5 {
                tx.send(i).await.unwrap();
                s.fetch_add(1, Ordering::SeqCst);
            }
        })
    });
    // The producer fills the channel and then must wait.
    while rx.len() < 2 {
        thread::yield_now();
    }
    thread::sleep(Duration::from_millis(50));
    assert_eq!(rx.len(), 2);
    assert!(
        sent.load(Ordering::SeqCst) <= 3,
        "at most one send beyond capacity is in flight"
    );
    let got = block_on(async {
        let mut v = Vec::new();
        while let Some(x) = rx.recv().await {
            v.push(x);
        }
        v
    });
    t.join().unwrap();
    assert_eq!(got, vec![0, 1, 2, 3, 4]);
}

#[test]
fn close_with_a_blocked_sender_hands_its_value_back() {
    let (tx, rx) = async_chan::<String>(1);
    tx.try_send("kept".into()).unwrap();
    let tx2 = tx.clone();
    let t = thread::spawn(move || tx2.send_blocking("returned".into()));
    while !thread_is_waiting(&rx) {
        thread::yield_now();
    }
    rx.close();
    assert_eq!(t.join().unwrap(), Err(SendError("returned".to_string())));
    assert_eq!(rx.try_recv().as_deref(), Ok("kept"));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    assert!(tx.send_blocking("late".into()).is_err());

    fn thread_is_waiting(rx: &crate::sync::AsyncReceiver<String>) -> bool {
        // The blocked sender cannot be observed directly; give it time to park.
        thread::sleep(Duration::from_millis(20));
        rx.len() == 1
    }
}

#[test]
fn receivers_on_the_owner_wake_from_foreign_senders() {
    let ex = LocalExecutor::new();
    let (tx, rx) = async_chan::<u32>(4);
    let out = ex.spawn(async move {
        let mut sum = 0;
        while let Some(v) = rx.recv().await {
            sum += v;
        }
        sum
    });
    assert_eq!(ex.run_until_stalled(), 1);
    let t = thread::spawn(move || {
        for i in 1..=100 {
            tx.send_blocking(i).unwrap();
        }
    });
    ex.run();
    t.join().unwrap();
    assert_eq!(out.borrow_mut().take(), Some(5050));
}

#[test]
fn the_sender_is_send_and_sync_and_the_receiver_is_not_send() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<AsyncSender<String>>();
    trait AmbiguousIfSend<A> {
        fn some_item() {}
    }
    impl<T: ?Sized> AmbiguousIfSend<()> for T {}
    #[allow(dead_code)]
    struct Invalid;
    impl<T: ?Sized + Send> AmbiguousIfSend<Invalid> for T {}
    let _ = <crate::sync::AsyncReceiver<u8> as AmbiguousIfSend<_>>::some_item;
}

#[test]
fn the_receiver_is_a_stream_and_close_from_a_sender_ends_it_after_draining() {
    use std::pin::Pin;
    use std::task::Poll;

    use futures_core::Stream;

    use crate::sync::test_util::{counting_waker, poll_once};

    let (tx, mut rx) = async_chan::<u8>(2);
    let (waker, wakes) = counting_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    assert_eq!(Pin::new(&mut rx).poll_next(&mut cx), Poll::Pending);
    let t = thread::spawn(move || {
        tx.send_blocking(1).unwrap();
        tx.close();
        assert!(tx.is_closed());
        tx.send_blocking(2).unwrap_err().into_inner()
    });
    assert_eq!(
        t.join().unwrap(),
        2,
        "a send after close hands its value back"
    );
    assert!(
        wakes.0.load(Ordering::SeqCst) >= 1,
        "the waiting stream was woken"
    );
    assert_eq!(Pin::new(&mut rx).poll_next(&mut cx), Poll::Ready(Some(1)));
    assert_eq!(Pin::new(&mut rx).poll_next(&mut cx), Poll::Ready(None));
    let mut recv = Box::pin(rx.recv());
    assert_eq!(poll_once(&mut recv, &waker), Poll::Ready(None));
}

#[test]
fn a_lone_receiver_takes_items_ahead_and_a_clone_gets_them_back() {
    let (tx, rx) = async_chan::<u32>(16);
    for v in 0..10 {
        tx.try_send(v).unwrap();
    }
    assert_eq!(rx.try_recv(), Ok(0));
    // It took up to half the capacity ahead; those still count against the capacity.
    assert_eq!(tx.len(), 9);
    assert_eq!(rx.len(), 9);
    assert_eq!(rx.try_recv(), Ok(1)); // from the items taken ahead, without the lock
    assert_eq!(rx.len(), 8);
    assert_eq!(
        tx.len(),
        9,
        "reported delivered at the receiver's next lock"
    );
    for v in 10..17 {
        tx.try_send(v).unwrap();
    }
    assert!(
        tx.try_send(17).unwrap_err().is_full(),
        "16 counted, 1 of them delivered"
    );
    // A clone: the delivered item's room is freed, what was taken ahead goes back to the
    // front of the buffer, in order.
    let rx2 = rx.clone();
    assert_eq!(tx.len(), 15);
    let mut got = Vec::new();
    for i in 0..15 {
        let r = if i % 2 == 0 { &rx } else { &rx2 };
        got.push(r.try_recv().unwrap());
    }
    assert_eq!(got, (2..17).collect::<Vec<_>>());
    drop(tx);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    assert_eq!(rx2.try_recv(), Err(TryRecvError::Closed));
}

#[test]
fn items_taken_ahead_are_received_before_the_end() {
    let (tx, rx) = async_chan::<u32>(8);
    for v in 0..8 {
        tx.try_send(v).unwrap();
    }
    drop(tx);
    let got = block_on(async {
        let mut got = Vec::new();
        while let Some(v) = rx.recv().await {
            got.push(v);
        }
        got
    });
    assert_eq!(got, (0..8).collect::<Vec<_>>());
}
