//! **Superseded by `--bin tasks`**, which measures every row below, and more, in one run:
//! the promise and `async_promise` round trips against a tokio oneshot on tokio, monoio and
//! async-executor; local ping-pong between two spawned tasks against tokio mpsc (on tokio and
//! on monoio) and async-channel (on async-executor); cross-thread throughput against
//! async-channel and flume; all with warm-ups, rotated order, medians and spreads, the
//! single-thread rows read from the thread's CPU clock.
//!
//! ```text
//! cd benches && cargo run --release --bin tasks -- --row promise
//! cd benches && cargo run --release --bin tasks -- --row ping-pong
//! cd benches && cargo run --release --bin tasks -- --row cross-thread
//! ```
//!
//! This binary stays only because the README still names it: the older, quicker view, best of
//! `RUNS` wall-clock runs, iomgr beside tokio only, with the ping-pong's sending side in the
//! root future rather than in a task. Prefer `tasks`; remove this file once nothing points here.
//!
//! ```text
//! cd benches && cargo run --release --bin sync
//! ```

use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

/// Timed runs per row; the fastest is reported.
const RUNS: usize = 5;
/// Promise round trips per run.
const PROMISES: u64 = 1_000_000;
/// Ping-pong round trips per run.
const PINGS: u64 = 200_000;
/// Items per producer per run, cross-thread.
const ITEMS: u64 = 200_000;
/// Producer threads, cross-thread.
const PRODUCERS: u64 = 2;
/// Channel capacity, cross-thread.
const CAPACITY: usize = 1024;

fn best(mut run: impl FnMut() -> Duration) -> Duration {
    (0..RUNS).map(|_| run()).min().expect("RUNS > 0")
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime")
}

// ---- promise round trip ----

fn iomgr_promise() -> Duration {
    let rt = iomgr::Runtime::new().expect("an iomgr runtime");
    rt.block_on(async {
        let start = Instant::now();
        for i in 0..PROMISES {
            let (fut, p) = iomgr::sync::promise::<u64>();
            p.set(i).unwrap();
            black_box(fut.await.unwrap());
        }
        start.elapsed()
    })
}

fn iomgr_async_promise() -> Duration {
    let rt = iomgr::Runtime::new().expect("an iomgr runtime");
    rt.block_on(async {
        let start = Instant::now();
        for i in 0..PROMISES {
            let (fut, p) = iomgr::sync::async_promise::<u64>();
            p.set(i).unwrap();
            black_box(fut.await.unwrap());
        }
        start.elapsed()
    })
}

fn tokio_oneshot() -> Duration {
    tokio_rt().block_on(async {
        let start = Instant::now();
        for i in 0..PROMISES {
            let (tx, rx) = tokio::sync::oneshot::channel::<u64>();
            tx.send(i).unwrap();
            black_box(rx.await.unwrap());
        }
        start.elapsed()
    })
}

// ---- local ping-pong ----

fn iomgr_ping_pong() -> Duration {
    let rt = iomgr::Runtime::new().expect("an iomgr runtime");
    rt.block_on(async {
        let (ping_tx, ping_rx) = iomgr::sync::chan::<u64>(1);
        let (pong_tx, pong_rx) = iomgr::sync::chan::<u64>(1);
        let echo = iomgr::spawn(async move {
            while let Some(v) = ping_rx.recv().await {
                pong_tx.send(v + 1).await.unwrap();
            }
        });
        let start = Instant::now();
        let mut v = 0;
        for _ in 0..PINGS {
            ping_tx.send(v).await.unwrap();
            v = pong_rx.recv().await.unwrap();
        }
        let elapsed = start.elapsed();
        assert_eq!(v, PINGS);
        drop(ping_tx);
        echo.await.unwrap();
        elapsed
    })
}

fn tokio_ping_pong() -> Duration {
    tokio_rt().block_on(async {
        let (ping_tx, mut ping_rx) = tokio::sync::mpsc::channel::<u64>(1);
        let (pong_tx, mut pong_rx) = tokio::sync::mpsc::channel::<u64>(1);
        let echo = tokio::spawn(async move {
            while let Some(v) = ping_rx.recv().await {
                pong_tx.send(v + 1).await.unwrap();
            }
        });
        let start = Instant::now();
        let mut v = 0;
        for _ in 0..PINGS {
            ping_tx.send(v).await.unwrap();
            v = pong_rx.recv().await.unwrap();
        }
        let elapsed = start.elapsed();
        assert_eq!(v, PINGS);
        drop(ping_tx);
        echo.await.unwrap();
        elapsed
    })
}

// ---- cross-thread throughput ----

fn expected_sum() -> u64 {
    PRODUCERS * (0..ITEMS).sum::<u64>()
}

fn iomgr_cross_thread() -> Duration {
    let rt = iomgr::Runtime::new().expect("an iomgr runtime");
    let (tx, rx) = iomgr::sync::async_chan::<u64>(CAPACITY);
    let start = Instant::now();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|_| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..ITEMS {
                    tx.send_blocking(i).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let sum = rt.block_on(async move {
        let mut sum = 0;
        while let Some(v) = rx.recv().await {
            sum += v;
        }
        sum
    });
    let elapsed = start.elapsed();
    producers.into_iter().for_each(|p| p.join().unwrap());
    assert_eq!(sum, expected_sum());
    elapsed
}

fn async_channel_cross_thread() -> Duration {
    let rt = tokio_rt();
    let (tx, rx) = async_channel::bounded::<u64>(CAPACITY);
    let start = Instant::now();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|_| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..ITEMS {
                    tx.send_blocking(i).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let sum = rt.block_on(async move {
        let mut sum = 0;
        while let Ok(v) = rx.recv().await {
            sum += v;
        }
        sum
    });
    let elapsed = start.elapsed();
    producers.into_iter().for_each(|p| p.join().unwrap());
    assert_eq!(sum, expected_sum());
    elapsed
}

fn flume_cross_thread() -> Duration {
    let rt = tokio_rt();
    let (tx, rx) = flume::bounded::<u64>(CAPACITY);
    let start = Instant::now();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|_| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..ITEMS {
                    tx.send(i).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let sum = rt.block_on(async move {
        let mut sum = 0;
        while let Ok(v) = rx.recv_async().await {
            sum += v;
        }
        sum
    });
    let elapsed = start.elapsed();
    producers.into_iter().for_each(|p| p.join().unwrap());
    assert_eq!(sum, expected_sum());
    elapsed
}

fn per_op(d: Duration, ops: u64) -> String {
    format!("{:>9.1} ns", d.as_nanos() as f64 / ops as f64)
}

fn rate(d: Duration, items: u64) -> String {
    format!("{:>9.2} M/s", items as f64 / d.as_secs_f64() / 1e6)
}

fn main() {
    println!("iomgr::sync beside its peers (best of {RUNS} runs)\n");
    println!("{:<40} {:>14} {:>14}", "benchmark", "iomgr", "peer");

    let ours = best(iomgr_promise);
    let theirs = best(tokio_oneshot);
    println!(
        "{:<40} {:>14} {:>14}   (peer: tokio oneshot)",
        "promise round trip (make, set, await)",
        per_op(ours, PROMISES),
        per_op(theirs, PROMISES)
    );
    let ours = best(iomgr_async_promise);
    println!(
        "{:<40} {:>14} {:>14}   (peer: tokio oneshot)",
        "async_promise round trip, one thread",
        per_op(ours, PROMISES),
        per_op(theirs, PROMISES)
    );

    let ours = best(iomgr_ping_pong);
    let theirs = best(tokio_ping_pong);
    println!(
        "{:<40} {:>14} {:>14}   (peer: tokio mpsc, current_thread)",
        "local channel ping-pong, per round trip",
        per_op(ours, PINGS),
        per_op(theirs, PINGS)
    );

    let items = PRODUCERS * ITEMS;
    let ours = best(iomgr_cross_thread);
    let ac = best(async_channel_cross_thread);
    let fl = best(flume_cross_thread);
    let label = format!("cross-thread, {PRODUCERS} producers, cap {CAPACITY}");
    println!(
        "{:<40} {:>14} {:>14}   (peer: async-channel)",
        label,
        rate(ours, items),
        rate(ac, items)
    );
    println!(
        "{:<40} {:>14} {:>14}   (peer: flume)",
        "",
        "",
        rate(fl, items)
    );
    println!(
        "\nfor reference, ioManager's published figures (C++20, Windows, i5-9300HF): \
         create a stackless coroutine ~195 ns, switch ~94 ns"
    );
}
