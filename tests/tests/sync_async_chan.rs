//! `async_chan` across threads and runtimes: no item lost or duplicated, per-sender order,
//! back-pressure, and closing with items in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use iomgr::Runtime;
use iomgr::sync::{AsyncSender, SendError, async_chan};

/// What sender `id` sends as its `seq`-th item, and the checksum term of that item.
fn item(id: u64, seq: u64) -> (u64, u64) {
    (id, seq)
}

fn checksum_of(id: u64, seq: u64) -> u64 {
    (id + 1).wrapping_mul(1_000_003) ^ seq.wrapping_mul(0x9E37_79B9)
}

#[test]
fn many_senders_on_many_threads_lose_nothing_and_keep_their_order() {
    const THREADS: u64 = 3; // plain threads, blocking sends
    const RUNTIMES: u64 = 3; // other runtimes, async sends
    const EACH: u64 = 20_000;
    let rt = Runtime::new().unwrap();
    let (tx, rx) = async_chan::<(u64, u64)>(64);

    let mut producers = Vec::new();
    for id in 0..THREADS {
        let tx = tx.clone();
        producers.push(thread::spawn(move || {
            for seq in 0..EACH {
                tx.send_blocking(item(id, seq)).unwrap();
            }
        }));
    }
    for id in THREADS..THREADS + RUNTIMES {
        let tx: AsyncSender<_> = tx.clone();
        producers.push(thread::spawn(move || {
            let rt = Runtime::new().unwrap();
            rt.block_on(async move {
                for seq in 0..EACH {
                    tx.send(item(id, seq)).await.unwrap();
                }
            });
        }));
    }
    drop(tx);

    let total = THREADS + RUNTIMES;
    let (count, checksum) = rt.block_on(async move {
        let mut next = vec![0u64; total as usize];
        let (mut count, mut checksum) = (0u64, 0u64);
        while let Some((id, seq)) = rx.recv().await {
            assert_eq!(seq, next[id as usize], "sender {id}: item out of order");
            next[id as usize] += 1;
            count += 1;
            checksum = checksum.wrapping_add(checksum_of(id, seq));
        }
        (count, checksum)
    });
    for p in producers {
        p.join().unwrap();
    }
    let want = (0..total)
        .flat_map(|id| (0..EACH).map(move |seq| checksum_of(id, seq)))
        .fold(0u64, u64::wrapping_add);
    assert_eq!(count, total * EACH, "every item arrived exactly once");
    assert_eq!(checksum, want);
}

#[test]
fn a_full_channel_holds_a_foreign_sender_back() {
    const CAP: usize = 4;
    let rt = Runtime::new().unwrap();
    let (tx, rx) = async_chan::<usize>(CAP);
    let sent = Arc::new(AtomicUsize::new(0));
    let s = sent.clone();
    let producer = thread::spawn(move || {
        for i in 0..50 {
            tx.send_blocking(i).unwrap();
            s.fetch_add(1, Ordering::SeqCst);
        }
    });
    let got = rt.block_on(async {
        let mut got = Vec::new();
        // A slow consumer: the producer must keep waiting for room.
        while let Some(v) = rx.recv().await {
            got.push(v);
            assert!(rx.len() <= CAP);
            let ahead = sent.load(Ordering::SeqCst).saturating_sub(got.len());
            assert!(
                ahead <= CAP + 1,
                "producer ran {ahead} items ahead of a {CAP}-item channel"
            );
            if v % 10 == 0 {
                iomgr::time::sleep(Duration::from_millis(2)).await;
            }
        }
        got
    });
    producer.join().unwrap();
    assert_eq!(got, (0..50).collect::<Vec<_>>());
}

#[test]
fn closing_with_items_in_flight_returns_or_delivers_every_item() {
    const SENDERS: usize = 4;
    const EACH: usize = 1_000;
    let rt = Runtime::new().unwrap();
    let (tx, rx) = async_chan::<usize>(8);
    let producers: Vec<_> = (0..SENDERS)
        .map(|id| {
            let tx = tx.clone();
            thread::spawn(move || {
                let mut returned = Vec::new();
                for seq in 0..EACH {
                    if let Err(SendError(v)) = tx.send_blocking(id * EACH + seq) {
                        returned.push(v);
                    }
                }
                returned
            })
        })
        .collect();
    drop(tx);
    let received = rt.block_on(async {
        let mut received = Vec::new();
        while let Some(v) = rx.recv().await {
            received.push(v);
            if received.len() == 500 {
                rx.close(); // items are still buffered and senders are blocked
            }
        }
        received
    });
    let mut returned = Vec::new();
    for p in producers {
        returned.extend(p.join().unwrap());
    }
    assert!(
        received.len() >= 500,
        "items buffered at the close were drained"
    );
    assert!(
        !returned.is_empty(),
        "sends after the close failed with their values"
    );
    let mut all: Vec<_> = received.iter().chain(&returned).copied().collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..SENDERS * EACH).collect::<Vec<_>>(),
        "none lost, none twice"
    );
}

#[test]
fn work_spread_over_worker_runtimes_comes_back() {
    // Each worker runtime owns an inbox; the main runtime owns the results channel.
    const WORKERS: usize = 3;
    let rt = Runtime::new().unwrap();
    let (results_tx, results_rx) = async_chan::<(usize, u64)>(16);
    let mut inboxes = Vec::new();
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let results_tx = results_tx.clone();
        workers.push(thread::spawn(move || {
            let rt = Runtime::new().unwrap();
            let (tx, rx) = async_chan::<usize>(4);
            ready_tx.send(tx).unwrap();
            rt.block_on(async move {
                while let Some(n) = rx.recv().await {
                    let sq = (n as u64) * (n as u64);
                    results_tx.send((n, sq)).await.unwrap();
                }
            });
        }));
        inboxes.push(ready_rx.recv().unwrap());
    }
    drop(results_tx);
    let sum = rt.block_on(async move {
        let feeder = iomgr::spawn(async move {
            for n in 0..300 {
                inboxes[n % WORKERS].send(n).await.unwrap();
            }
        });
        let mut sum = 0;
        let mut count = 0;
        while let Some((n, sq)) = results_rx.recv().await {
            assert_eq!(sq, (n as u64) * (n as u64));
            sum += sq;
            count += 1;
        }
        feeder.await.unwrap();
        assert_eq!(count, 300);
        sum
    });
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(sum, (0..300u64).map(|n| n * n).sum::<u64>());
}
