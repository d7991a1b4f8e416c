//! Coroutine primitives: promise/future pairs and channels.
//!
//! Tasks on an iomgr runtime talk to each other through a few small primitives, after
//! ioManager's. Pick by two questions: *one value or many?* and *does it cross threads?*
//!
//! | | same runtime (`!Send`, cheapest) | from any thread |
//! |---|---|---|
//! | one value | [`promise`] (or [`FutureWith`] for large values) | [`async_promise`] |
//! | many values | [`chan`] | [`async_chan`] |
//!
//! ## Promises
//!
//! A promise is a one-shot hand-off: one task awaits the future, another completes the
//! promise. Nothing can hang or leak:
//! - `set` on a promise whose future was dropped hands the value back (`Err(value)`);
//! - `fail(e)` resolves the future with [`PromiseError::Failed`];
//! - a promise dropped without either resolves the future with [`PromiseError::Broken`]
//!   (ioManager left such a future waiting forever).
//!
//! Same-runtime pairs share an awaiter from a per-thread pool that is reused, so after
//! warm-up making, setting and awaiting a pair allocates nothing.
//!
//! ```
//! # iomgr::sync::doc_block_on(async {
//! use iomgr::sync::promise;
//!
//! let (reply, responder) = promise::<String>();
//! // ... hand `responder` to the task that computes the answer ...
//! responder.set("pong".to_string()).unwrap();
//! assert_eq!(reply.await.unwrap(), "pong");
//! # });
//! ```
//!
//! ## Channels
//!
//! Channels are bounded: a full channel makes senders wait (back-pressure), and the ring
//! buffer is allocated once, when the channel is made. Waiters are served in FIFO order.
//! Closing never loses an item: receivers drain what was sent before they see the end, and
//! a send that could not complete returns its value inside the error.
//!
//! ```
//! # iomgr::sync::doc_block_on(async {
//! let (tx, rx) = iomgr::sync::chan::<&str>(8);
//! tx.send("hello").await.unwrap();
//! drop(tx);
//! assert_eq!(rx.recv().await, Some("hello"));
//! assert_eq!(rx.recv().await, None);
//! # });
//! ```
//!
//! ## Threads and runtimes
//!
//! Each runtime runs on its own thread, and the same-runtime primitives are `!Send`: the
//! compiler keeps them on their thread. The cross-thread ones split the work: the completing
//! side ([`AsyncPromise`], [`AsyncSender`]) is `Send`; the awaiting side stays `!Send` on its
//! runtime, and is woken through its task's waker, which queues the task to its runtime and
//! wakes that runtime out of its ring wait.
//!
//! ## Model checking
//!
//! The cross-thread primitives are model-checked with loom. From the workspace root:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p iomgr --release --lib sync::loom
//! ```

mod async_chan;
mod async_promise;
mod bounded;
mod chan;
mod error;
mod future_with;
mod pool;
mod promise;
mod shim;

#[cfg(all(test, loom))]
mod loom;
#[cfg(all(test, not(loom)))]
pub(crate) mod test_util;
#[cfg(all(test, not(loom)))]
mod tests;

pub use async_chan::{AsyncReceiver, AsyncRecvFuture, AsyncSendFuture, AsyncSender, async_chan};
pub use async_promise::{AsyncPromise, AsyncPromiseFuture, async_promise};
pub(crate) use bounded::SendState;
pub use chan::{Receiver, RecvFuture, SendFuture, Sender, chan};
pub use error::{BoxError, PromiseError, SendError, TryRecvError, TrySendError};
pub use future_with::FutureWith;
pub use promise::{Promise, PromiseFuture, promise};

/// Runs a future to completion on the calling thread. Only for this crate's doc examples,
/// which cannot start a runtime for every snippet; use a `Runtime` in real code.
#[doc(hidden)]
pub fn doc_block_on<F: std::future::Future>(fut: F) -> F::Output {
    async_chan::block_on(fut)
}
