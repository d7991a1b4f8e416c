//! Several threads store, read, write, pass and free messages in one small concurrent
//! manager. Every message carries its owner's expected value; at the end, the counts and
//! checksums of what was stored and what was taken out must agree, and every slot must be
//! free again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use super::XorShift;
use crate::memory::{ConcurrentMemoryManager, MemoryError, Message, MessageHeader, MessageToken};

const THREADS: usize = 4;
/// Fewer under Miri, which runs this about a thousand times slower.
const STEPS: usize = if cfg!(miri) { 200 } else { 20_000 };
/// Small, so threads keep running into full slots and reused indices.
const CAPACITY: usize = 16;
/// How many messages a thread holds before it frees instead of storing (threads together
/// hold a little more than the free slots, so some stores find the manager full).
const HOARD: usize = 3;
/// How many messages can wait in the channel between two threads (bounded, so a thread
/// that runs while its neighbour is not scheduled cannot park every slot in the channel).
const IN_FLIGHT: usize = 1;
/// Messages every thread reads (and sometimes writes) at once.
const PINNED: usize = 2;

#[derive(Default)]
struct Totals {
    stored: AtomicU64,
    taken: AtomicU64,
    stored_sum: AtomicU64,
    taken_sum: AtomicU64,
    pinned_writes: AtomicU64,
}

fn message(value: u64) -> Message<u64> {
    Message::from_parts(MessageHeader::new(value, 8), value)
}

/// Takes `token` out; its payload must still equal its sequence number.
fn take(manager: &ConcurrentMemoryManager<u64>, token: MessageToken, totals: &Totals) {
    let message = manager.take(token).expect("a message this thread owns");
    assert_eq!(message.payload, message.header.sequence);
    totals.taken.fetch_add(1, Ordering::Relaxed);
    totals
        .taken_sum
        .fetch_add(message.payload, Ordering::Relaxed);
}

fn worker(
    id: usize,
    manager: &ConcurrentMemoryManager<u64>,
    pinned: &[MessageToken],
    totals: &Totals,
    to_next: mpsc::SyncSender<MessageToken>,
    from_previous: mpsc::Receiver<MessageToken>,
) {
    let mut rng = XorShift::new(id as u64 + 1);
    let mut owned: Vec<MessageToken> = Vec::new();
    for step in 0..STEPS {
        match rng.below(8) {
            0 | 1 if owned.len() >= HOARD => {
                let token = owned.swap_remove(rng.below(owned.len()));
                take(manager, token, totals);
            }
            0 | 1 => {
                let value = ((id as u64) << 40) | step as u64;
                match manager.store(message(value)) {
                    Ok(token) => {
                        totals.stored.fetch_add(1, Ordering::Relaxed);
                        totals.stored_sum.fetch_add(value, Ordering::Relaxed);
                        owned.push(token);
                    }
                    Err(error) => assert_eq!(error, MemoryError::NoFreeSlots),
                }
            }
            2 if !owned.is_empty() => {
                let token = owned[rng.below(owned.len())];
                let message = manager.read(token).unwrap();
                assert_eq!(message.payload, message.header.sequence);
            }
            3 if !owned.is_empty() => {
                // Change the value in place, keeping payload == sequence.
                let token = owned[rng.below(owned.len())];
                let mut message = manager.read_mut(token).unwrap();
                totals.stored_sum.fetch_add(1, Ordering::Relaxed);
                message.payload += 1;
                message.header.sequence += 1;
            }
            4 if !owned.is_empty() => {
                let token = owned.swap_remove(rng.below(owned.len()));
                take(manager, token, totals);
            }
            5 if !owned.is_empty() => {
                // Hand a message to the next thread, if it has room for it.
                let pick = rng.below(owned.len());
                if to_next.try_send(owned[pick]).is_ok() {
                    owned.swap_remove(pick);
                }
            }
            6 => {
                let token = pinned[rng.below(pinned.len())];
                match manager.read(token) {
                    Ok(message) => {
                        assert_eq!(message.payload, message.header.sequence);
                        assert_eq!(manager.free(token), Err(MemoryError::BorrowActive));
                    }
                    Err(error) => assert_eq!(error, MemoryError::AlreadyBorrowed),
                }
            }
            7 => {
                let token = pinned[rng.below(pinned.len())];
                match manager.read_mut(token) {
                    Ok(mut message) => {
                        message.payload += 1;
                        message.header.sequence += 1;
                        totals.pinned_writes.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(error) => assert_eq!(error, MemoryError::AlreadyBorrowed),
                }
            }
            _ => {}
        }
        while let Ok(token) = from_previous.try_recv() {
            owned.push(token);
        }
    }
    drop(to_next);
    for token in owned.into_iter().chain(from_previous) {
        take(manager, token, totals);
    }
}

#[test]
fn threads_lose_and_duplicate_nothing() {
    let manager = ConcurrentMemoryManager::new(CAPACITY);
    let pinned: Vec<_> = (0..PINNED)
        .map(|_| manager.store(message(0)).unwrap())
        .collect();
    let totals = Totals::default();
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..THREADS).map(|_| mpsc::sync_channel(IN_FLIGHT)).unzip();
    std::thread::scope(|scope| {
        let mut receivers = receivers.into_iter();
        let first = receivers.next().unwrap();
        let rotated = receivers.chain([first]);
        for (id, (to_next, from_previous)) in senders.into_iter().zip(rotated).enumerate() {
            let (manager, pinned, totals) = (&manager, &pinned, &totals);
            scope.spawn(move || worker(id, manager, pinned, totals, to_next, from_previous));
        }
    });
    let stored = totals.stored.load(Ordering::Relaxed);
    assert!(
        stored > (THREADS * STEPS / 8) as u64,
        "the test stored too little: {stored}"
    );
    assert_eq!(stored, totals.taken.load(Ordering::Relaxed));
    assert_eq!(
        totals.stored_sum.load(Ordering::Relaxed),
        totals.taken_sum.load(Ordering::Relaxed)
    );
    let pinned_sum: u64 = pinned
        .iter()
        .map(|&t| manager.read(t).unwrap().payload)
        .sum();
    assert_eq!(pinned_sum, totals.pinned_writes.load(Ordering::Relaxed));
    for token in pinned {
        manager.free(token).unwrap();
    }
    assert_eq!(manager.available(), CAPACITY);
}
