use std::cell::{Cell, RefCell};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::task::Poll;

use futures_core::Stream;

use super::DropCount;
use crate::sync::test_util::{LocalExecutor, block_on, counting_waker, poll_once};
use crate::sync::{SendError, TryRecvError, TrySendError, chan};

#[test]
fn items_arrive_in_order_and_len_tracks_the_buffer() {
    let (tx, rx) = chan::<u32>(3);
    assert_eq!((tx.capacity(), rx.capacity()), (3, 3));
    assert!(rx.is_empty());
    block_on(tx.send(1)).unwrap();
    tx.try_send(2).unwrap();
    tx.try_send(3).unwrap();
    assert_eq!(rx.len(), 3);
    match tx.try_send(4) {
        Err(TrySendError::Full(4)) => {}
        other => panic!("expected Full(4), got {other:?}"),
    }
    assert_eq!(block_on(rx.recv()), Some(1));
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.try_recv(), Ok(3));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn a_full_channel_makes_senders_wait_and_serves_them_in_order() {
    let ex = LocalExecutor::new();
    let (tx, rx) = chan::<u32>(1);
    tx.try_send(0).unwrap();
    let progress = Rc::new(RefCell::new(Vec::new()));
    for i in 1..=3 {
        let tx = tx.clone();
        let progress = progress.clone();
        ex.spawn(async move {
            tx.send(i).await.unwrap();
            progress.borrow_mut().push(i);
        });
    }
    assert_eq!(
        ex.run_until_stalled(),
        3,
        "all three senders wait: the channel is full"
    );
    assert_eq!(rx.len(), 1);
    // A newcomer may not jump the queue, even via try_send.
    assert!(tx.try_send(99).unwrap_err().is_full());

    let mut got = Vec::new();
    for expected_done in 1..=3 {
        got.push(rx.try_recv().unwrap());
        // Taking one item moved the oldest waiting sender's value into the buffer.
        assert_eq!(rx.len(), 1);
        ex.run_until_stalled();
        assert_eq!(progress.borrow().len(), expected_done);
    }
    got.push(rx.try_recv().unwrap());
    assert_eq!(got, vec![0, 1, 2, 3]);
    assert_eq!(*progress.borrow(), vec![1, 2, 3]);
}

#[test]
fn close_with_items_in_flight_loses_nothing() {
    let ex = LocalExecutor::new();
    let (tx, rx) = chan::<String>(2);
    tx.try_send("a".into()).unwrap();
    tx.try_send("b".into()).unwrap();
    let tx2 = tx.clone();
    let blocked = ex.spawn(async move { tx2.send("c".into()).await });
    assert_eq!(ex.run_until_stalled(), 1);

    rx.close();
    assert!(tx.is_closed());
    ex.run_until_stalled();
    // The waiting send failed and handed its value back.
    let err = blocked.borrow_mut().take().unwrap().unwrap_err();
    assert_eq!(err, SendError("c".to_string()));
    assert!(err.to_string().contains("closed"));
    // New sends fail too, value returned.
    assert_eq!(block_on(tx.send("d".into())).unwrap_err().into_inner(), "d");
    assert!(tx.try_send("e".into()).unwrap_err().is_closed());
    // Receivers drain what was sent, then see the end.
    assert_eq!(block_on(rx.recv()).as_deref(), Some("a"));
    assert_eq!(rx.try_recv().as_deref(), Ok("b"));
    assert_eq!(block_on(rx.recv()), None);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
}

#[test]
fn dropping_all_senders_ends_the_channel_after_draining() {
    let ex = LocalExecutor::new();
    let (tx, rx) = chan::<u8>(4);
    let waiting = ex.spawn(async move {
        let mut all = Vec::new();
        while let Some(v) = rx.recv().await {
            all.push(v);
        }
        all
    });
    assert_eq!(ex.run_until_stalled(), 1);
    let tx2 = tx.clone();
    tx.try_send(1).unwrap();
    drop(tx);
    tx2.try_send(2).unwrap();
    ex.run_until_stalled();
    assert!(waiting.borrow().is_none(), "one sender is still alive");
    drop(tx2);
    assert_eq!(ex.run_until_stalled(), 0);
    assert_eq!(waiting.borrow_mut().take().unwrap(), vec![1, 2]);
}

#[test]
fn dropping_all_receivers_fails_sends_with_the_value_and_drops_the_buffer() {
    let drops = Rc::new(Cell::new(0));
    let (tx, rx) = chan::<DropCount>(1);
    tx.try_send(DropCount(drops.clone()))
        .map_err(|_| ())
        .unwrap();
    let ex = LocalExecutor::new();
    let tx2 = tx.clone();
    let d2 = drops.clone();
    let blocked = ex.spawn(async move { tx2.send(DropCount(d2)).await.map_err(|e| e.0) });
    ex.run_until_stalled();
    let rx2 = rx.clone();
    drop(rx);
    assert!(!tx.is_closed(), "a receiver is left");
    drop(rx2);
    assert_eq!(
        drops.get(),
        1,
        "the buffered item nobody can receive is dropped"
    );
    ex.run_until_stalled();
    let back = blocked.borrow_mut().take().unwrap().unwrap_err();
    assert_eq!(drops.get(), 1, "the waiting value came back, not dropped");
    drop(back);
    assert_eq!(drops.get(), 2);
    assert!(tx.try_send(DropCount(drops.clone())).is_err());
}

#[test]
fn a_cancelled_send_withdraws_its_value_and_keeps_the_queue_moving() {
    let (tx, rx) = chan::<u32>(1);
    tx.try_send(0).unwrap();
    let (waker, _) = counting_waker();
    let mut first = Box::pin(tx.send(1));
    let mut second = Box::pin(tx.send(2));
    assert!(poll_once(&mut first, &waker).is_pending());
    assert!(poll_once(&mut second, &waker).is_pending());
    drop(first);
    assert_eq!(rx.try_recv(), Ok(0));
    assert_eq!(poll_once(&mut second, &waker), Poll::Ready(Ok(())));
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn waiting_receivers_are_woken_in_fifo_order() {
    let ex = LocalExecutor::new();
    let (tx, rx) = chan::<u32>(4);
    let got = Rc::new(RefCell::new(Vec::new()));
    for id in 0..3 {
        let rx = rx.clone();
        let got = got.clone();
        ex.spawn(async move {
            let v = rx.recv().await.unwrap();
            got.borrow_mut().push((id, v));
        });
    }
    assert_eq!(ex.run_until_stalled(), 3);
    for v in [10, 11, 12] {
        tx.try_send(v).unwrap();
    }
    assert_eq!(ex.run_until_stalled(), 0);
    assert_eq!(*got.borrow(), vec![(0, 10), (1, 11), (2, 12)]);
}

#[test]
fn a_woken_receiver_that_is_dropped_passes_the_wake_on() {
    let (tx, rx) = chan::<u32>(1);
    let (w1, c1) = counting_waker();
    let (w2, c2) = counting_waker();
    let mut r1 = Box::pin(rx.recv());
    let mut r2 = Box::pin(rx.recv());
    assert!(poll_once(&mut r1, &w1).is_pending());
    assert!(poll_once(&mut r2, &w2).is_pending());
    tx.try_send(7).unwrap();
    assert_eq!(
        c1.0.load(Ordering::SeqCst),
        1,
        "the oldest receiver is woken"
    );
    assert_eq!(c2.0.load(Ordering::SeqCst), 0);
    drop(r1); // woken, but never took the item
    assert_eq!(
        c2.0.load(Ordering::SeqCst),
        1,
        "the wake moved to the next receiver"
    );
    assert_eq!(poll_once(&mut r2, &w2), Poll::Ready(Some(7)));
}

#[test]
fn the_receiver_is_a_stream() {
    let (tx, mut rx) = chan::<u32>(2);
    let (waker, wakes) = counting_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    assert_eq!(Pin::new(&mut rx).poll_next(&mut cx), Poll::Pending);
    tx.try_send(1).unwrap();
    assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
    assert_eq!(rx.size_hint(), (1, None));
    assert_eq!(Pin::new(&mut rx).poll_next(&mut cx), Poll::Ready(Some(1)));
    drop(tx);
    assert_eq!(Pin::new(&mut rx).poll_next(&mut cx), Poll::Ready(None));
}

#[test]
fn ping_pong_between_tasks() {
    // Fewer under Miri, which runs this about a thousand times slower.
    const ROUNDS: u32 = if cfg!(miri) { 30 } else { 1000 };
    let ex = LocalExecutor::new();
    let (ping_tx, ping_rx) = chan::<u32>(1);
    let (pong_tx, pong_rx) = chan::<u32>(1);
    ex.spawn(async move {
        while let Some(v) = ping_rx.recv().await {
            pong_tx.send(v + 1).await.unwrap();
        }
    });
    let out = ex.spawn(async move {
        let mut v = 0;
        for _ in 0..ROUNDS {
            ping_tx.send(v).await.unwrap();
            v = pong_rx.recv().await.unwrap();
        }
        v
    });
    ex.run();
    assert_eq!(out.borrow_mut().take(), Some(ROUNDS));
}

#[test]
#[should_panic(expected = "capacity of at least 1")]
fn zero_capacity_is_refused() {
    let _ = chan::<u8>(0);
}

#[test]
fn an_item_reserved_for_a_waiting_receiver_cannot_be_taken_by_a_newcomer() {
    let (tx, rx) = chan::<u32>(2);
    let (w1, c1) = counting_waker();
    let mut r1 = Box::pin(rx.recv());
    assert!(poll_once(&mut r1, &w1).is_pending());
    tx.try_send(1).unwrap();
    assert_eq!(c1.0.load(Ordering::SeqCst), 1);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty), "item 1 is r1's");
    let mut newcomer = Box::pin(rx.recv());
    assert!(poll_once(&mut newcomer, &w1).is_pending());
    tx.try_send(2).unwrap();
    assert_eq!(poll_once(&mut r1, &w1), Poll::Ready(Some(1)));
    assert_eq!(poll_once(&mut newcomer, &w1), Poll::Ready(Some(2)));
}

#[test]
fn close_with_a_reserved_item_still_delivers_it_once() {
    let (tx, rx) = chan::<u32>(2);
    let (w, _) = counting_waker();
    let (w2, c2) = counting_waker();
    let mut r1 = Box::pin(rx.recv());
    let mut r2 = Box::pin(rx.recv());
    assert!(poll_once(&mut r1, &w).is_pending());
    assert!(poll_once(&mut r2, &w2).is_pending());
    tx.try_send(7).unwrap(); // reserved for r1
    tx.close();
    assert!(
        poll_once(&mut r2, &w2).is_pending(),
        "r2 waits: the item is r1's"
    );
    drop(r1); // gives its reservation up
    assert!(c2.0.load(Ordering::SeqCst) >= 1, "r2 is woken");
    assert_eq!(poll_once(&mut r2, &w2), Poll::Ready(Some(7)));
    assert_eq!(block_on(rx.recv()), None);
}

#[test]
fn parked_senders_are_let_in_once_half_the_buffer_is_free() {
    let (tx, rx) = chan::<u32>(4);
    for i in 0..4 {
        tx.try_send(i).unwrap();
    }
    let (w, wakes) = counting_waker();
    let mut s4 = Box::pin(tx.send(4));
    let mut s5 = Box::pin(tx.send(5));
    assert!(poll_once(&mut s4, &w).is_pending());
    assert!(poll_once(&mut s5, &w).is_pending());
    assert_eq!(rx.try_recv(), Ok(0));
    assert_eq!(
        rx.len(),
        3,
        "one free place is less than half: senders stay parked"
    );
    assert_eq!(wakes.0.load(Ordering::SeqCst), 0);
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.len(), 4, "half free: both parked values moved in");
    assert_eq!(wakes.0.load(Ordering::SeqCst), 2);
    assert_eq!(poll_once(&mut s4, &w), Poll::Ready(Ok(())));
    assert_eq!(poll_once(&mut s5, &w), Poll::Ready(Ok(())));
    let rest: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
    assert_eq!(rest, vec![2, 3, 4, 5]);
}
