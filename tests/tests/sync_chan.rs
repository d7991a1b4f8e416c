//! `chan` on the real runtime: back-pressure, fan-in/fan-out, closing with items in flight.

use std::cell::RefCell;
use std::rc::Rc;

use iomgr::sync::{SendError, TrySendError, chan};
use iomgr::{Runtime, spawn, yield_now};

#[test]
fn a_full_channel_holds_senders_back_until_the_receiver_catches_up() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let (tx, rx) = chan::<u32>(4);
        let sent = Rc::new(RefCell::new(0));
        let s = sent.clone();
        let producer = spawn(async move {
            for i in 0..20 {
                tx.send(i).await.unwrap();
                *s.borrow_mut() += 1;
            }
        });
        for _ in 0..5 {
            yield_now().await;
        }
        assert_eq!(*sent.borrow(), 4, "the producer stops at the capacity");
        assert_eq!(rx.len(), 4);
        let mut got = Vec::new();
        while let Some(v) = rx.recv().await {
            got.push(v);
            assert!(rx.len() <= rx.capacity());
        }
        producer.await.unwrap();
        assert_eq!(got, (0..20).collect::<Vec<_>>());
    });
}

#[test]
fn fan_in_from_many_tasks_keeps_each_senders_order() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let (tx, rx) = chan::<(u32, u32)>(3);
        for id in 0..8 {
            let tx = tx.clone();
            spawn(async move {
                for seq in 0..200 {
                    tx.send((id, seq)).await.unwrap();
                    if seq % 7 == 0 {
                        yield_now().await;
                    }
                }
            });
        }
        drop(tx);
        let mut next = [0u32; 8];
        let mut count = 0;
        while let Some((id, seq)) = rx.recv().await {
            assert_eq!(seq, next[id as usize], "sender {id} out of order");
            next[id as usize] += 1;
            count += 1;
        }
        assert_eq!(count, 8 * 200);
    });
}

#[test]
fn fan_out_to_many_receivers_delivers_each_item_once() {
    let rt = Runtime::new().unwrap();
    let mut all = rt.block_on(async {
        let (tx, rx) = chan::<u32>(2);
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let rx = rx.clone();
                spawn(async move {
                    let mut mine = Vec::new();
                    while let Some(v) = rx.recv().await {
                        mine.push(v);
                        yield_now().await;
                    }
                    mine
                })
            })
            .collect();
        drop(rx);
        for i in 0..400 {
            tx.send(i).await.unwrap();
        }
        drop(tx);
        let mut all = Vec::new();
        for w in workers {
            let mine = w.await.unwrap();
            assert!(
                !mine.is_empty(),
                "work is spread over the waiting receivers"
            );
            all.extend(mine);
        }
        all
    });
    all.sort_unstable();
    assert_eq!(all, (0..400).collect::<Vec<_>>());
}

#[test]
fn closing_with_items_in_flight_loses_nothing() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let (tx, rx) = chan::<String>(2);
        tx.send("one".into()).await.unwrap();
        tx.send("two".into()).await.unwrap();
        let blocked: Vec<_> = ["three", "four"]
            .into_iter()
            .map(|s| {
                let tx = tx.clone();
                spawn(async move { tx.send(s.to_string()).await })
            })
            .collect();
        yield_now().await;
        tx.close();
        // The two blocked sends fail and hand their values back.
        let mut back = Vec::new();
        for b in blocked {
            match b.await.unwrap() {
                Err(SendError(v)) => back.push(v),
                Ok(()) => panic!("a send into a closed, full channel succeeded"),
            }
        }
        assert_eq!(back, vec!["three", "four"]);
        match tx.try_send("five".into()) {
            Err(TrySendError::Closed(v)) => assert_eq!(v, "five"),
            other => panic!("expected Closed, got {other:?}"),
        }
        // What was sent is still delivered, then the end.
        assert_eq!(rx.recv().await.as_deref(), Some("one"));
        assert_eq!(rx.recv().await.as_deref(), Some("two"));
        assert_eq!(rx.recv().await, None);
    });
}
