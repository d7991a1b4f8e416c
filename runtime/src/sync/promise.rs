//! Promise/future pairs within one runtime.
//!
//! [`promise`] makes a connected pair: a [`PromiseFuture`] that a task awaits and a
//! [`Promise`] that some other task (on the same thread) completes later. Think of it as a
//! one-shot channel with no allocation: the pair shares one awaiter from a per-thread pool
//! that is reused, so after warm-up making a pair allocates nothing.
//!
//! The rules, each with a test:
//! - [`Promise::set`] wakes the future. If the future was dropped first, `set` hands the value
//!   back as `Err(value)`; nothing is ever written to memory that is gone.
//! - [`Promise::fail`] resolves the future with [`PromiseError::Failed`].
//! - A promise dropped without either resolves the future with [`PromiseError::Broken`], so a
//!   waiter never hangs on a promise nobody can keep.
//!
//! Both halves are `!Send`: they belong to the thread (runtime) that made them. To complete a
//! promise from another thread, use [`async_promise`](super::async_promise).
//!
//! ```
//! # iomgr::sync::doc_block_on(async {
//! use iomgr::sync::{promise, PromiseError};
//!
//! let (fut, p) = promise::<u32>();
//! p.set(7).unwrap();
//! assert_eq!(fut.await.unwrap(), 7);
//!
//! let (fut, p) = promise::<u32>();
//! drop(p);
//! assert!(matches!(fut.await, Err(PromiseError::Broken)));
//! # });
//! ```

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::ptr;
use std::task::{Context, Poll};

use super::error::{BoxError, PromiseError};
use super::pool::{self, Dest, State};
use crate::runtime::waker::is_own;

/// Makes a connected [`PromiseFuture`] / [`Promise`] pair.
///
/// Values of up to 64 bytes (alignment up to 16) are stored inside the shared awaiter and
/// cost no allocation; a larger value is boxed when it is set. For large values, see
/// [`FutureWith`](super::FutureWith), which stores the value in the future itself.
///
/// ```
/// # iomgr::sync::doc_block_on(async {
/// let (fut, promise) = iomgr::sync::promise::<String>();
/// promise.set("done".to_string()).unwrap();
/// assert_eq!(fut.await.unwrap(), "done");
/// # });
/// ```
pub fn promise<T>() -> (PromiseFuture<T>, Promise<T>) {
    let key = pool::acquire(Dest::Inline);
    (
        PromiseFuture {
            key: Some(key),
            _not_send: PhantomData,
            _value: PhantomData,
        },
        Promise {
            key,
            _not_send: PhantomData,
            _value: PhantomData,
        },
    )
}

/// The completing half of a pair: [`set`](Promise::set) it, [`fail`](Promise::fail) it, or
/// drop it (which breaks it).
///
/// `!Send`: complete it on the thread that made it.
#[must_use = "dropping a promise unset resolves its future with `PromiseError::Broken`"]
pub struct Promise<T> {
    key: usize,
    // The awaiter lives in this thread's pool, so the promise must stay on this thread.
    _not_send: PhantomData<*const ()>,
    _value: PhantomData<fn(T)>,
}

impl<T> Promise<T> {
    pub(crate) fn from_key(key: usize) -> Self {
        Promise {
            key,
            _not_send: PhantomData,
            _value: PhantomData,
        }
    }

    /// Completes the future with `value` and wakes it.
    ///
    /// Returns `Err(value)` if the future was already dropped: the value comes back to you
    /// instead of being written to memory that is gone.
    ///
    /// ```
    /// let (fut, promise) = iomgr::sync::promise::<Vec<u8>>();
    /// drop(fut);
    /// assert_eq!(promise.set(vec![1, 2]), Err(vec![1, 2]));
    /// ```
    pub fn set(self, value: T) -> Result<(), T> {
        let key = self.key;
        std::mem::forget(self);
        let outcome = pool::with(key, |a| {
            a.promise_alive = false;
            if !a.future_alive {
                return Err(value);
            }
            match a.dest {
                Dest::Inline => a.slot.write(value),
                Dest::Future(p) => {
                    // SAFETY: `Dest::Future` pointers come only from `FutureWith::promise`,
                    // which points at its own pinned `Option<T>` for this same `T`; the
                    // future clears `future_alive` in its destructor before that memory can
                    // go (the pin drop guarantee), and we checked it is still alive. Both
                    // halves are `!Send`, so nothing else touches the option right now.
                    unsafe { ptr::write(p.cast::<Option<T>>(), Some(value)) }
                }
            }
            a.state = State::Ready;
            Ok(a.waker.take())
        });
        finish(key, outcome)
    }

    /// Resolves the future with [`PromiseError::Failed`] carrying `error`, and wakes it.
    ///
    /// Returns `Err(error)` (boxed) if the future was already dropped.
    ///
    /// ```
    /// # iomgr::sync::doc_block_on(async {
    /// use std::io;
    /// let (fut, promise) = iomgr::sync::promise::<u32>();
    /// promise.fail(io::Error::other("disk on fire")).unwrap();
    /// let err = fut.await.unwrap_err();
    /// assert_eq!(err.to_string(), "the promise was failed: disk on fire");
    /// # });
    /// ```
    pub fn fail(self, error: impl Into<BoxError>) -> Result<(), BoxError> {
        let key = self.key;
        std::mem::forget(self);
        let error = error.into();
        let outcome = pool::with(key, |a| {
            a.promise_alive = false;
            if !a.future_alive {
                return Err(error);
            }
            a.state = State::Failed(error);
            Ok(a.waker.take())
        });
        finish(key, outcome)
    }

    /// Whether the future has been dropped, so [`set`](Promise::set) would hand the value
    /// back. Lets a producer skip expensive work nobody waits for.
    pub fn is_abandoned(&self) -> bool {
        pool::with(self.key, |a| !a.future_alive).unwrap_or(true)
    }
}

/// Common tail of `set`/`fail`: wake the future, or free the awaiter if the future is gone.
fn finish<E>(key: usize, outcome: Option<Result<Option<std::task::Waker>, E>>) -> Result<(), E> {
    match outcome {
        Some(Ok(waker)) => {
            if let Some(w) = waker {
                w.wake();
            }
            Ok(())
        }
        Some(Err(e)) => {
            pool::release(key);
            Err(e)
        }
        // The pool is gone (thread exit): nothing can await anymore.
        None => Ok(()),
    }
}

impl<T> Drop for Promise<T> {
    fn drop(&mut self) {
        let key = self.key;
        let outcome = pool::with(key, |a| {
            a.promise_alive = false;
            if a.future_alive {
                a.state = State::Broken;
                Some(a.waker.take())
            } else {
                None
            }
        });
        match outcome {
            Some(Some(Some(waker))) => waker.wake(),
            Some(Some(None)) | None => {}
            Some(None) => pool::release(key),
        }
    }
}

impl<T> fmt::Debug for Promise<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Promise").field("key", &self.key).finish()
    }
}

/// The awaiting half of a pair: resolves to the value, or to a [`PromiseError`] if the
/// promise was failed or dropped.
///
/// `!Send`: await it on the thread that made it. Dropping it makes [`Promise::set`] hand
/// the value back.
#[must_use = "futures do nothing unless awaited"]
pub struct PromiseFuture<T> {
    key: Option<usize>,
    _not_send: PhantomData<*const ()>,
    _value: PhantomData<fn() -> T>,
}

impl<T> PromiseFuture<T> {
    /// Whether the outcome has arrived (awaiting would not wait).
    pub fn is_ready(&self) -> bool {
        match self.key {
            Some(k) => pool::with(k, |a| !matches!(a.state, State::Pending)).unwrap_or(false),
            None => false,
        }
    }
}

/// Polls the awaiter in `key_slot`: takes the outcome if there is one (reading the value
/// with `read`, called with the awaiter's state already `Ready`), else stores the waker.
///
/// On an outcome, marks the future side gone, frees the awaiter if the promise is gone too,
/// and clears `key_slot`.
///
/// The outcome crosses the pool's borrow as scalars (a step code and out-parameters) and the
/// `Poll` is built once, at the end: an aggregate built inside and copied out was read back
/// with wide loads from narrow stores, a store-forwarding stall on every round trip.
#[inline(always)]
pub(crate) fn poll_awaiter<T>(
    key_slot: &mut Option<usize>,
    cx: &mut Context<'_>,
    read: impl FnOnce(&mut pool::Awaiter) -> T,
) -> Poll<Result<T, PromiseError>> {
    const PENDING: u8 = 0;
    const STORE_WAKER: u8 = 1;
    const VALUE: u8 = 2;
    const FAILED: u8 = 3;
    const BROKEN: u8 = 4;
    let key = key_slot.expect("a promise's future polled after it completed");
    // Nothing inside the pool's borrow may run user code (a waker's clone or drop, a value's
    // drop): it could reach the pool again. So a foreign waker is cloned outside and the old
    // one dropped outside; iomgr's own wakers run no code when cloned (a copied word).
    let own = is_own(cx.waker());
    let mut value = None;
    let mut error = None;
    let mut old_waker = None;
    let step = pool::with_release(key, |a| {
        let step = match std::mem::replace(&mut a.state, State::Taken) {
            State::Pending => {
                a.state = State::Pending;
                // `will_wake` compares pointers only; no user code runs.
                if matches!(&a.waker, Some(w) if w.will_wake(cx.waker())) {
                    return (PENDING, false);
                }
                if own {
                    old_waker = a.waker.replace(cx.waker().clone());
                    return (PENDING, false);
                }
                return (STORE_WAKER, false);
            }
            State::Ready => {
                value = Some(read(a));
                VALUE
            }
            State::Failed(e) => {
                error = Some(e);
                FAILED
            }
            State::Broken => BROKEN,
            State::Taken => unreachable!("awaiter outcome taken twice"),
        };
        a.future_alive = false;
        old_waker = a.waker.take();
        // Freed in the same borrow if the promise is gone too: the value and the waker are
        // out, and the state is `Taken`.
        (step, !a.promise_alive)
    });
    drop(old_waker);
    // `None`: only during thread teardown, when nobody can complete the promise anymore.
    let step = step.unwrap_or(BROKEN);
    if step == PENDING {
        return Poll::Pending;
    }
    if step == STORE_WAKER {
        let waker = cx.waker().clone();
        let old = pool::with(key, |a| a.waker.replace(waker));
        drop(old);
        return Poll::Pending;
    }
    *key_slot = None;
    Poll::Ready(match (value, error) {
        (Some(v), _) => Ok(v),
        (None, Some(e)) => Err(PromiseError::Failed(e)),
        (None, None) => Err(PromiseError::Broken),
    })
}

/// Marks the future side of awaiter `key` gone; frees it if the promise is gone too.
///
/// If the awaiter holds an unread value (state `Ready`), `take` moves it out and it is
/// dropped here, after the pool is no longer borrowed (its destructor may use promises).
pub(crate) fn drop_future_side<V>(key: usize, take: impl FnOnce(&mut pool::Awaiter) -> V) {
    let leftovers = pool::with_release(key, |a| {
        a.future_alive = false;
        let value = match a.state {
            State::Ready => {
                a.state = State::Taken;
                Some(take(a))
            }
            _ => None,
        };
        let free = !a.promise_alive;
        // A freed awaiter keeps nothing: an error it holds goes out with the rest.
        let state = free.then(|| std::mem::replace(&mut a.state, State::Taken));
        ((value, a.waker.take(), state), free)
    });
    // The value, the waker and the state drop here, with the pool no longer borrowed.
    drop(leftovers);
}

impl<T> Future for PromiseFuture<T> {
    type Output = Result<T, PromiseError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: the awaiter's destination is `Dest::Inline` (set by `promise::<T>()`), and
        // `State::Ready` means `Promise::<T>::set` wrote a `T` there that nobody took yet;
        // `poll_awaiter` calls this only in that state, once.
        poll_awaiter(&mut self.key, cx, |a| unsafe { a.slot.take::<T>() })
    }
}

impl<T> Drop for PromiseFuture<T> {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            // SAFETY: as in `poll`: `drop_future_side` calls this only in `State::Ready`,
            // when a `T` written by `Promise::<T>::set` sits in the inline slot, untaken.
            drop_future_side(key, |a| unsafe { a.slot.take::<T>() });
        }
    }
}

impl<T> fmt::Debug for PromiseFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PromiseFuture")
            .field("key", &self.key)
            .finish()
    }
}
