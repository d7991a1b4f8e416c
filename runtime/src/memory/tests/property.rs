//! Random operation sequences checked step by step against a simple model: a list of live
//! `(token, value)` pairs and a list of tokens that were freed.

use super::XorShift;
use crate::memory::{
    ConcurrentMemoryManager, HeapMemoryManager, MemoryError, MemoryManager, Message,
    StaticMemoryManager,
};

// Fewer under Miri, which runs these about a thousand times slower.
const SEEDS: u64 = if cfg!(miri) { 2 } else { 16 };
const STEPS: usize = if cfg!(miri) { 150 } else { 2_000 };

/// Runs `STEPS` random operations on `manager`; `fixed_capacity` is `None` for a growable
/// manager.
fn check_against_model(
    mut manager: impl MemoryManager<u64>,
    fixed_capacity: Option<usize>,
    seed: u64,
) {
    let mut rng = XorShift::new(seed);
    let mut live: Vec<(crate::memory::MessageToken, u64)> = Vec::new();
    let mut freed = Vec::new();
    for step in 0..STEPS {
        let context = format!("seed {seed}, step {step}");
        match rng.below(7) {
            0 | 1 => {
                let value = rng.next();
                let result = manager.store(Message::from_parts(
                    crate::memory::MessageHeader::new(value, 8),
                    value,
                ));
                match fixed_capacity {
                    Some(capacity) if live.len() == capacity => {
                        assert_eq!(result, Err(MemoryError::NoFreeSlots), "{context}");
                    }
                    _ => {
                        let token = result.expect(&context);
                        assert!(
                            live.iter().all(|&(t, _)| t != token),
                            "{context}: duplicate token"
                        );
                        assert!(
                            !freed.contains(&token),
                            "{context}: a freed token came back"
                        );
                        live.push((token, value));
                    }
                }
            }
            2 if !live.is_empty() => {
                let (token, value) = live[rng.below(live.len())];
                let message = manager.read(token).expect(&context);
                assert_eq!(message.payload, value, "{context}");
                assert_eq!(message.header.sequence, value, "{context}");
            }
            3 if !live.is_empty() => {
                let pick = rng.below(live.len());
                let value = rng.next();
                let mut message = manager.read_mut(live[pick].0).expect(&context);
                message.payload = value;
                message.header.sequence = value;
                drop(message);
                live[pick].1 = value;
                assert_eq!(
                    manager.header(live[pick].0).expect(&context).payload_size,
                    8
                );
            }
            4 | 5 if !live.is_empty() => {
                let (token, _) = live.swap_remove(rng.below(live.len()));
                manager.free(token).expect(&context);
                freed.push(token);
            }
            _ if !freed.is_empty() => {
                let token = freed[rng.below(freed.len())];
                assert_eq!(
                    manager.read(token).err(),
                    Some(MemoryError::BadToken),
                    "{context}"
                );
                assert_eq!(manager.free(token), Err(MemoryError::BadToken), "{context}");
            }
            _ => {}
        }
        assert_eq!(
            manager.capacity() - manager.available(),
            live.len(),
            "{context}"
        );
        if let Some(capacity) = fixed_capacity {
            assert_eq!(manager.capacity(), capacity, "{context}");
        }
    }
    for (token, value) in live {
        assert_eq!(manager.read(token).unwrap().payload, value);
    }
}

#[test]
fn static_manager_matches_model() {
    for seed in 0..SEEDS {
        check_against_model(StaticMemoryManager::<u64, 16>::new(), Some(16), seed);
    }
}

#[test]
fn fixed_heap_manager_matches_model() {
    for seed in 0..SEEDS {
        check_against_model(HeapMemoryManager::with_fixed_capacity(16), Some(16), seed);
    }
}

#[test]
fn growable_heap_manager_matches_model() {
    for seed in 0..SEEDS {
        check_against_model(HeapMemoryManager::growable(2), None, seed);
    }
}

#[test]
fn concurrent_manager_matches_model() {
    for seed in 0..SEEDS {
        check_against_model(ConcurrentMemoryManager::new(16), Some(16), seed);
    }
}
