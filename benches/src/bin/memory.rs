//! Store + read + free, per operation, for each memory manager beside `slab::Slab` and a
//! `Vec<Option<_>>` scanned for a free entry.
//!
//! Every store keeps a working set of `LIVE` messages: each step frees the oldest message,
//! stores a new one and reads it back, so free lists are exercised, not just one slot.
//!
//! ```text
//! cd benches && cargo run --release --bin memory
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use iomgr::memory::{
    ConcurrentMemoryManager, HeapMemoryManager, MemoryManager, Message, MessageHeader,
    StaticMemoryManager,
};

/// Slots in every store.
const CAPACITY: usize = 256;
/// Messages kept stored while the benchmark runs.
const LIVE: usize = 64;
/// Timed runs per row; the fastest is reported.
const RUNS: usize = 5;

/// The three operations measured, over whatever key the store uses.
trait Store<P> {
    type Key: Copy;
    fn store(&mut self, message: Message<P>) -> Self::Key;
    fn first_byte(&self, key: Self::Key) -> u8;
    fn free(&mut self, key: Self::Key);
}

/// Any memory manager, through the trait only.
struct Manager<M>(M);

impl<const N: usize, M: MemoryManager<[u8; N]>> Store<[u8; N]> for Manager<M> {
    type Key = iomgr::memory::MessageToken;
    fn store(&mut self, message: Message<[u8; N]>) -> Self::Key {
        self.0.store(message).expect("the working set fits")
    }
    fn first_byte(&self, key: Self::Key) -> u8 {
        self.0.read(key).expect("a live token").payload[0]
    }
    fn free(&mut self, key: Self::Key) {
        self.0.free(key).expect("a live token");
    }
}

impl<const N: usize> Store<[u8; N]> for slab::Slab<Message<[u8; N]>> {
    type Key = usize;
    fn store(&mut self, message: Message<[u8; N]>) -> usize {
        self.insert(message)
    }
    fn first_byte(&self, key: usize) -> u8 {
        self[key].payload[0]
    }
    fn free(&mut self, key: usize) {
        self.remove(key);
    }
}

/// The naive store: scan for the first empty entry.
struct ScanVec<P>(Vec<Option<Message<P>>>);

impl<const N: usize> Store<[u8; N]> for ScanVec<[u8; N]> {
    type Key = usize;
    fn store(&mut self, message: Message<[u8; N]>) -> usize {
        let free = self
            .0
            .iter()
            .position(Option::is_none)
            .expect("the working set fits");
        self.0[free] = Some(message);
        free
    }
    fn first_byte(&self, key: usize) -> u8 {
        self.0[key].as_ref().expect("a live key").payload[0]
    }
    fn free(&mut self, key: usize) {
        self.0[key] = None;
    }
}

/// Nanoseconds per store + read + free, best of `RUNS`.
fn measure<const N: usize, S: Store<[u8; N]>>(store: &mut S, iterations: usize) -> f64 {
    let header = MessageHeader::new(0, N);
    let mut live: Vec<S::Key> = (0..LIVE)
        .map(|i| store.store(Message::from_parts(header, [i as u8; N])))
        .collect();
    let mut best = Duration::MAX;
    for _ in 0..RUNS {
        let started = Instant::now();
        for i in 0..iterations {
            let slot = i % LIVE;
            store.free(live[slot]);
            let key = store.store(Message::from_parts(header, [i as u8; N]));
            black_box(store.first_byte(key));
            live[slot] = key;
        }
        best = best.min(started.elapsed());
    }
    for key in live {
        store.free(key);
    }
    best.as_nanos() as f64 / iterations as f64
}

fn table<const N: usize>(iterations: usize) {
    let rows: Vec<(&str, f64)> = vec![
        (
            "StaticMemoryManager",
            measure::<N, _>(
                // Boxed: 256 slots of 4 KiB are a megabyte.
                &mut *Box::new(Manager(StaticMemoryManager::<[u8; N], CAPACITY>::new())),
                iterations,
            ),
        ),
        (
            "HeapMemoryManager (fixed)",
            measure::<N, _>(
                &mut Manager(HeapMemoryManager::with_fixed_capacity(CAPACITY)),
                iterations,
            ),
        ),
        (
            "HeapMemoryManager (growable)",
            measure::<N, _>(
                &mut Manager(HeapMemoryManager::growable(CAPACITY)),
                iterations,
            ),
        ),
        (
            "ConcurrentMemoryManager",
            measure::<N, _>(
                &mut Manager(ConcurrentMemoryManager::new(CAPACITY)),
                iterations,
            ),
        ),
        (
            "slab::Slab",
            measure::<N, _>(&mut slab::Slab::with_capacity(CAPACITY), iterations),
        ),
        (
            "Vec<Option<_>> scan",
            measure::<N, _>(
                &mut ScanVec((0..CAPACITY).map(|_| None).collect()),
                iterations,
            ),
        ),
    ];
    let baseline = rows[0].1;
    println!("\npayload {N} B, {LIVE} messages live, {iterations} ops, best of {RUNS} runs");
    println!("{:<30} {:>12} {:>14}", "store", "ns/op", "vs static");
    for (name, ns) in rows {
        println!("{name:<30} {ns:>12.1} {:>13.2}x", ns / baseline);
    }
}

fn main() {
    table::<64>(2_000_000);
    table::<4096>(200_000);
}
