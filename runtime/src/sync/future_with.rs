//! A future that keeps the promised value in its own memory (ioManager's `future_with<T>`).
//!
//! [`promise`](super::promise) stores the value in the pair's shared awaiter: inline when it
//! is at most 64 bytes, boxed (one allocation per `set`) when it is larger. A
//! [`FutureWith<T>`] instead reserves room for the `T` inside itself; its [`Promise`] writes
//! the value straight there. Because the promise points into the future, the future must be
//! pinned before the promise exists: pin it, then ask it for its promise.
//!
//! ## Which one to use
//!
//! | | [`promise`](super::promise) | [`FutureWith`] |
//! |---|---|---|
//! | value ≤ 64 bytes | no allocation, one move into the awaiter and one out | same cost; no gain |
//! | value > 64 bytes | one `Box` per `set` | no allocation: written into the future |
//! | future can move freely | yes (it is `Unpin`) | no: pin it first (`pin!`, or in a task's state) |
//! | future can be made before the promise's consumer exists | yes | yes, but the promise comes from the pinned future |
//!
//! So: use [`promise`](super::promise) by default; use [`FutureWith`] for large values (a
//! parsed request, a buffer array) on hot paths, where the future sits pinned in a task
//! anyway.
//!
//! ```
//! # iomgr::sync::doc_block_on(async {
//! use std::pin::pin;
//! use iomgr::sync::FutureWith;
//!
//! let mut fut = pin!(FutureWith::<[u8; 4096]>::new());
//! let promise = fut.as_mut().promise();
//! promise.set([7; 4096]).unwrap(); // written into `fut`'s memory: no allocation
//! let page = fut.await.unwrap();
//! assert_eq!(page[4095], 7);
//! # });
//! ```

use std::cell::UnsafeCell;
use std::fmt;
use std::future::Future;
use std::marker::{PhantomData, PhantomPinned};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::error::PromiseError;
use super::pool::{self, Dest};
use super::promise::{Promise, drop_future_side, poll_awaiter};

/// A future whose value is written into its own memory by its [`Promise`].
///
/// Make it, pin it, take its promise with [`promise`](FutureWith::promise), await it. Like
/// [`PromiseFuture`](super::PromiseFuture), it resolves to `Err(PromiseError::Broken)` if
/// the promise is dropped unset (or was never taken), and it is `!Send`.
#[must_use = "futures do nothing unless awaited"]
pub struct FutureWith<T> {
    value: UnsafeCell<Option<T>>,
    key: Option<usize>,
    linked: bool,
    _pinned: PhantomPinned,
    _marker: PhantomData<*const ()>,
}

impl<T> FutureWith<T> {
    /// A future with room for one `T` and no promise yet.
    pub fn new() -> Self {
        FutureWith {
            value: UnsafeCell::new(None),
            key: None,
            linked: false,
            _pinned: PhantomPinned,
            _marker: PhantomData,
        }
    }

    /// The promise that writes into this (pinned) future.
    ///
    /// # Panics
    /// If called a second time on the same future: each future has one promise.
    pub fn promise(self: Pin<&mut Self>) -> Promise<T> {
        // SAFETY: we only write plain fields (`key`, `linked`) and take the address of
        // `value`; nothing is moved out of the pinned struct.
        let this = unsafe { self.get_unchecked_mut() };
        assert!(
            !this.linked,
            "FutureWith::promise called twice: a FutureWith has exactly one promise"
        );
        this.linked = true;
        let key = pool::acquire(Dest::Future(this.value.get().cast::<()>()));
        this.key = Some(key);
        Promise::from_key(key)
    }
}

impl<T> Default for FutureWith<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Future for FutureWith<T> {
    type Output = Result<T, PromiseError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: nothing is moved out of the pinned struct; `value` is only accessed through
        // its `UnsafeCell`.
        let this = unsafe { self.get_unchecked_mut() };
        if this.key.is_none() {
            assert!(!this.linked, "FutureWith polled after it completed");
            // Never linked: no promise exists that could ever complete it.
            this.linked = true;
            return Poll::Ready(Err(PromiseError::Broken));
        };
        let value = this.value.get();
        // SAFETY: `poll_awaiter` calls this only in `State::Ready`, which `Promise::set`
        // enters after writing `Some(value)` into this very cell (our `Dest::Future`); the
        // promise is consumed by `set`, so nothing else accesses the cell now.
        let poll = poll_awaiter(&mut this.key, cx, |_| unsafe { (*value).take() });
        poll.map(|outcome| outcome.map(|v| v.expect("promise marked ready without a value")))
    }
}

impl<T> Drop for FutureWith<T> {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            // The value (if one arrived) stays in `self.value` and is dropped with `self`,
            // after the awaiter no longer points here.
            // If unlinking unwinds, the promise would later write into freed memory:
            // abort instead of letting this memory go while the awaiter still points here.
            struct Abort;
            impl Drop for Abort {
                fn drop(&mut self) {
                    std::process::abort();
                }
            }
            let bomb = Abort;
            drop_future_side(key, |_| ());
            std::mem::forget(bomb);
        }
    }
}

impl<T> fmt::Debug for FutureWith<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FutureWith")
            .field("key", &self.key)
            .field("linked", &self.linked)
            .finish()
    }
}
