//! Token-addressed message storage.
//!
//! A *memory manager* owns messages and hands out [`MessageToken`]s: 8-byte `Copy` handles
//! that tasks, channels and pipeline stages pass around instead of moving large messages.
//! Whoever holds a token can read the message, change it in place, or free it, through the
//! manager.
//!
//! ```
//! use iomgr::memory::{MemoryError, MemoryManager, Message, StaticMemoryManager};
//!
//! // Eight slots of 4 KiB messages, inline: no allocation at all.
//! let mut manager = StaticMemoryManager::<[u8; 4096], 8>::new();
//!
//! let token = manager.store(Message::new(1, [0u8; 4096]))?; // a producer stores...
//! manager.read_mut(token)?.payload[0] = 0xff;               // ...a worker edits in place...
//! assert_eq!(manager.read(token)?.payload[0], 0xff);         // ...a writer reads...
//! manager.free(token)?;                                      // ...and frees.
//!
//! // The token is now stale, even once its slot holds another message.
//! let other = manager.store(Message::new(2, [1u8; 4096]))?;
//! assert_eq!(other.index(), token.index());
//! assert_eq!(manager.read(token).err(), Some(MemoryError::BadToken));
//! # Ok::<(), MemoryError>(())
//! ```
//!
//! # The pieces
//!
//! - [`Message<P>`]: a [`MessageHeader`] (sequence, creation time, payload size,
//!   [`MessageFlags`], [`MemoryClass`]) plus a payload `P`.
//! - [`MemoryManager<P>`]: `store`, `read` and `read_mut` (returning guards), `free`,
//!   `available`, `capacity`, `memory_class`. Its supertrait [`HeaderStore`] reads a header
//!   without knowing `P`.
//! - [`MessageToken`]: a slot index plus the slot's *generation*. Freeing a slot bumps its
//!   generation, so a token kept too long is [`MemoryError::BadToken`], never another
//!   message that came to live in the same slot.
//! - [`MemoryError`]: every failure is a value (full is [`MemoryError::NoFreeSlots`],
//!   freeing a borrowed message is [`MemoryError::BorrowActive`]), never a panic.
//! - [`OwnedToken`]: a token that frees its slot when dropped, so a task dropped half-way
//!   leaks no slot.
//!
//! # Choosing a manager
//!
//! | manager                      | slots                     | shared by             | guards            |
//! |------------------------------|---------------------------|-----------------------|-------------------|
//! | [`StaticMemoryManager`]      | `DEPTH`, inline, no alloc | one task, or `RefCell` | `&` / `&mut`     |
//! | [`HeapMemoryManager`]        | a `Vec`: fixed or growable | one task, or `RefCell` | `&` / `&mut`    |
//! | [`ConcurrentMemoryManager`]  | fixed, one allocation     | threads (`&self` API) | per-slot locks    |
//! | [`RegisteredMemoryManager`]  | fixed, registered buffers | one runtime's tasks   | `Ref` / `RefMut`  |
//!
//! The single-threaded managers return plain references: the borrow checker already keeps
//! a message from being freed or written while it is read, so their `AlreadyBorrowed` and
//! `BorrowActive` cannot happen. The concurrent manager locks each slot with one atomic word
//! and never blocks: a conflicting borrow is an error the caller can retry or report. Its
//! free list is a lock-free stack with tagged indices, so `store` and `free` take no lock
//! shared by all slots. Give each worker thread a handle ([`ScopedManager::scoped_handle`]),
//! which implements [`MemoryManager`] too.
//!
//! Store, read and free are O(1) in every manager.
//!
//! # Memory classes
//!
//! The managers above store [`MemoryClass::Host`] memory. [`RegisteredMemoryManager`] keeps
//! its payloads in buffers registered with the ring ([`MemoryClass::IoUringRegistered`]):
//! [`RegisteredMemoryManager::lend`] hands a stored payload to `read_fixed` / `write_fixed`
//! (`READ_FIXED` / `WRITE_FIXED`), so a message goes between the kernel and its slot with no
//! copy. Code can branch on [`MemoryManager::memory_class`].
//!
//! # Testing
//!
//! `cargo test -p iomgr --lib memory` runs the conformance suite (one suite, every manager),
//! model-based property tests, and a multi-thread stress test of the concurrent manager.
//! The lock-free parts are model-checked with [loom](https://docs.rs/loom):
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p iomgr --release --lib loom_tests
//! ```

mod class;
mod concurrent;
mod error;
mod heap_manager;
mod manager;
mod message;
mod owned_token;
mod registered;
mod slot_table;
mod static_manager;
mod token;

#[cfg(all(test, not(loom)))]
mod tests;

pub use self::class::MemoryClass;
pub use self::concurrent::{
    ConcurrentHandle, ConcurrentMemoryManager, ConcurrentReadGuard, ConcurrentWriteGuard,
};
pub use self::error::{MemoryError, StoreError};
pub use self::heap_manager::HeapMemoryManager;
pub use self::manager::{HeaderStore, MemoryManager, ScopedManager};
pub use self::message::{Message, MessageFlags, MessageHeader, Payload};
pub use self::owned_token::{OwnedToken, SharedManager};
pub use self::registered::{LentSlot, RegisteredMemoryManager};
pub use self::static_manager::StaticMemoryManager;
pub use self::token::MessageToken;
