//! Combinators over any futures: wait for all of them, or race them.
//!
//! These work with every [`Future`], not only iomgr's: ops, promises, channel receives,
//! plain `async` blocks, other crates' futures. None of them spawns: the
//! futures run inside the task that awaits the combinator (ioManager's `all`, `any`, `race`).
//!
//! | want | use |
//! |---|---|
//! | both outputs | [`join`] |
//! | all outputs of a list | [`join_all`] |
//! | both values, or the first error | [`try_join`] |
//! | whichever finishes first (any types) | [`select`], or [`select!`](crate::select!) with a branch per future |
//! | whichever finishes first (one type) | [`race`], [`race_all`] |
//!
//! Racing drops the losers as soon as the winner is known. For an iomgr op that is how it
//! is cancelled, and cancelling is safe: the op's buffers go to the driver until the kernel
//! is done with them.
//!
//! ```
//! # iomgr::sync::doc_block_on(async {
//! use iomgr::future::{join, race};
//!
//! let (tx, rx) = iomgr::sync::chan::<u32>(4);
//! let producer = async {
//!     for i in 0..4 {
//!         tx.send(i).await.unwrap();
//!     }
//! };
//! let consumer = async {
//!     let mut sum = 0;
//!     for _ in 0..4 {
//!         sum += rx.recv().await.unwrap();
//!     }
//!     sum
//! };
//! let ((), sum) = join(producer, consumer).await;
//! assert_eq!(sum, 6);
//!
//! // A receive raced against something quicker is dropped: nothing is taken from `rx`.
//! tx.try_send(9).unwrap();
//! let v = race(async { 0 }, async { rx.recv().await.unwrap() }).await;
//! assert_eq!((v, rx.len()), (0, 1));
//! # });
//! ```

mod join;
mod maybe_done;
mod select;

#[cfg(all(test, not(loom)))]
mod tests;

pub use join::{Join, JoinAll, TryJoin, join, join_all, try_join};
pub use select::{Either, Race, RaceAll, Select, race, race_all, select};
