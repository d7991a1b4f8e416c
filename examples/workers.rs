//! Spreading work over several runtimes with `async_chan` (and `async_promise`).
//!
//! ```text
//! cargo run --release --example workers              # 3 worker runtimes
//! cargo run --release --example workers -- 4         # 4 worker runtimes
//! ```
//!
//! The main runtime hands out jobs (count the primes in a range) to worker runtimes, each on
//! its own thread, and gathers the answers:
//!
//! - each worker makes its own inbox with [`async_chan`] (the receiver must live on the
//!   runtime that reads it) and hands the `Send` sender back to the main runtime through an
//!   [`async_promise`];
//! - the main runtime sends jobs round-robin with `send(..).await`: a full inbox (a busy
//!   worker) makes the feeder wait, which is back-pressure across threads;
//! - answers come back on one results channel owned by the main runtime, which every worker
//!   holds a sender of. When the feeder closes the inboxes, the workers finish, drop their
//!   result senders, and the results channel ends.

use std::io;
use std::thread;
use std::time::Instant;

use iomgr::sync::{AsyncSender, async_chan, async_promise};
use iomgr::{Runtime, spawn};

/// One job: count the primes in `start..end`.
#[derive(Clone, Copy, Debug)]
struct Job {
    start: u64,
    end: u64,
}

fn is_prime(n: u64) -> bool {
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}

fn count_primes(job: Job) -> u64 {
    (job.start..job.end).filter(|&n| is_prime(n)).count() as u64
}

const LIMIT: u64 = 1_000_000;
const CHUNK: u64 = 10_000;

fn main() -> io::Result<()> {
    let workers: usize =
        match std::env::args().nth(1) {
            None => 3,
            Some(n) => n.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "usage: workers [N>0]")
            })?,
        };
    let rt = Runtime::new()?;
    let started = Instant::now();
    let (total, per_worker) = rt.block_on(async move {
        let (results_tx, results_rx) = async_chan::<(usize, u64)>(64);
        let mut threads = Vec::new();
        let mut inboxes: Vec<AsyncSender<Job>> = Vec::new();
        for w in 0..workers {
            // The worker makes its inbox on its own runtime and sends us the sender.
            let (inbox_fut, inbox_promise) = async_promise::<AsyncSender<Job>>();
            let results = results_tx.clone();
            threads.push(thread::spawn(move || -> io::Result<()> {
                let rt = Runtime::new()?;
                rt.block_on(async move {
                    let (tx, jobs) = async_chan::<Job>(4);
                    inbox_promise
                        .set(tx)
                        .map_err(|_| io::Error::other("main went away"))?;
                    while let Some(job) = jobs.recv().await {
                        let primes = count_primes(job);
                        if results.send((w, primes)).await.is_err() {
                            break;
                        }
                    }
                    Ok(())
                })
            }));
            inboxes.push(inbox_fut.await.map_err(io::Error::other)?);
        }
        drop(results_tx);

        let feeder = spawn(async move {
            let mut start = 0;
            let mut next = 0;
            while start < LIMIT {
                let job = Job {
                    start,
                    end: (start + CHUNK).min(LIMIT),
                };
                inboxes[next].send(job).await.expect("a worker died");
                next = (next + 1) % inboxes.len();
                start += CHUNK;
            }
            // Dropping the inbox senders closes the inboxes; the workers drain and stop.
        });

        let mut total = 0;
        let mut per_worker = vec![0u64; workers];
        while let Some((w, primes)) = results_rx.recv().await {
            total += primes;
            per_worker[w] += 1;
        }
        feeder.await.expect("the feeder");
        for t in threads {
            t.join().expect("a worker thread panicked")?;
        }
        io::Result::Ok((total, per_worker))
    })?;
    println!(
        "{total} primes below {LIMIT}, counted by {workers} worker runtimes in {:.0?}",
        started.elapsed()
    );
    for (w, jobs) in per_worker.iter().enumerate() {
        println!("  worker {w}: {jobs} jobs");
    }
    assert_eq!(total, 78_498, "the number of primes below a million");
    assert_eq!(per_worker.iter().sum::<u64>(), LIMIT.div_ceil(CHUNK));
    Ok(())
}
