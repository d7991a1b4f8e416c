//! Promises that complete from any thread.
//!
//! [`async_promise`] makes a pair whose [`AsyncPromise`] is `Send`: move it to another
//! thread (a worker pool, a blocking syscall thread, another runtime) and complete it there.
//! The [`AsyncPromiseFuture`] stays on the runtime that made it (it is `!Send`, so awaiting it
//! from another runtime does not compile).
//!
//! Completing stores the outcome in the pair's shared state under a short lock and wakes the
//! future's waker. iomgr's wakers are thread-safe: a wake from a foreign thread queues the task
//! to its owning runtime and wakes that runtime out of its ring wait. So the completion is
//! delivered to the owner, which runs the task; the completing thread never polls it.
//!
//! The same rules as [`promise`](super::promise) hold: `set` hands the value back if the
//! future is gone; a promise dropped unset (on any thread) resolves the future with
//! [`PromiseError::Broken`]. A pair costs one allocation (the shared state), like a tokio
//! oneshot.
//!
//! ```
//! # iomgr::sync::doc_block_on(async {
//! let (fut, promise) = iomgr::sync::async_promise::<u64>();
//! std::thread::spawn(move || promise.set(6 * 7).unwrap());
//! assert_eq!(fut.await.unwrap(), 42);
//! # });
//! ```

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use super::error::{BoxError, PromiseError};
use super::shim::{Arc, Mutex, lock};

enum Outcome<T> {
    Pending,
    Value(T),
    Failed(BoxError),
    Broken,
    Taken,
}

struct Inner<T> {
    outcome: Outcome<T>,
    waker: Option<Waker>,
    future_alive: bool,
}

type Shared<T> = Arc<Mutex<Inner<T>>>;

/// Makes a connected [`AsyncPromiseFuture`] / [`AsyncPromise`] pair. Call it on the runtime
/// that will await the future.
pub fn async_promise<T>() -> (AsyncPromiseFuture<T>, AsyncPromise<T>) {
    let shared = Arc::new(Mutex::new(Inner {
        outcome: Outcome::Pending,
        waker: None,
        future_alive: true,
    }));
    (
        AsyncPromiseFuture {
            shared: Some(shared.clone()),
            _not_send: PhantomData,
        },
        AsyncPromise {
            shared: Some(shared),
        },
    )
}

/// The completing half of a cross-thread pair: `Send` (when `T` is), usable on any thread.
#[must_use = "dropping a promise unset resolves its future with `PromiseError::Broken`"]
pub struct AsyncPromise<T> {
    shared: Option<Shared<T>>,
}

impl<T> AsyncPromise<T> {
    /// Stores `value` and wakes the future on its runtime.
    ///
    /// Returns `Err(value)` if the future was already dropped.
    pub fn set(mut self, value: T) -> Result<(), T> {
        let shared = self.shared.take().expect("promise already completed");
        complete(&shared, Outcome::Value(value)).map_err(|o| match o {
            Outcome::Value(v) => v,
            _ => unreachable!("complete hands back what it was given"),
        })
    }

    /// Resolves the future with [`PromiseError::Failed`] carrying `error`, and wakes it.
    ///
    /// Returns the boxed error if the future was already dropped.
    pub fn fail(mut self, error: impl Into<BoxError>) -> Result<(), BoxError> {
        let shared = self.shared.take().expect("promise already completed");
        complete(&shared, Outcome::Failed(error.into())).map_err(|o| match o {
            Outcome::Failed(e) => e,
            _ => unreachable!("complete hands back what it was given"),
        })
    }

    /// Whether the future has been dropped, so [`set`](AsyncPromise::set) would hand the
    /// value back.
    pub fn is_abandoned(&self) -> bool {
        match &self.shared {
            Some(s) => !lock(s).future_alive,
            None => true,
        }
    }
}

/// Stores `outcome` unless the future is gone (then hands it back), and wakes the future.
fn complete<T>(shared: &Shared<T>, outcome: Outcome<T>) -> Result<(), Outcome<T>> {
    let waker = {
        let mut inner = lock(shared);
        if !inner.future_alive {
            return Err(outcome);
        }
        inner.outcome = outcome;
        inner.waker.take()
    };
    // Wake outside the lock: the waker may take locks of its own (the runtime's queue).
    if let Some(w) = waker {
        w.wake();
    }
    Ok(())
}

impl<T> Drop for AsyncPromise<T> {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            // Dropped unset: break the promise so the future does not wait forever.
            let _ = complete(&shared, Outcome::Broken);
        }
    }
}

impl<T> fmt::Debug for AsyncPromise<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncPromise")
            .field("completed", &self.shared.is_none())
            .finish()
    }
}

/// The awaiting half of a cross-thread pair. `!Send`: it stays on the runtime that made it.
#[must_use = "futures do nothing unless awaited"]
pub struct AsyncPromiseFuture<T> {
    shared: Option<Shared<T>>,
    _not_send: PhantomData<*const ()>,
}

impl<T> Future for AsyncPromiseFuture<T> {
    type Output = Result<T, PromiseError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let shared = self
            .shared
            .as_ref()
            .expect("AsyncPromiseFuture polled after it completed");
        // Cloned before locking, and the old waker dropped after unlocking: a waker's clone
        // and destructor are user code, which may touch this pair.
        let waker = cx.waker().clone();
        let outcome = {
            let mut inner = lock(shared);
            match std::mem::replace(&mut inner.outcome, Outcome::Taken) {
                Outcome::Pending => {
                    inner.outcome = Outcome::Pending;
                    let old = inner.waker.replace(waker);
                    drop(inner);
                    drop(old);
                    return Poll::Pending;
                }
                Outcome::Value(v) => Ok(v),
                Outcome::Failed(e) => Err(PromiseError::Failed(e)),
                Outcome::Broken => Err(PromiseError::Broken),
                Outcome::Taken => unreachable!("outcome taken twice"),
            }
        };
        // The promise is consumed by now (set, failed or dropped): let go of the state.
        self.shared = None;
        Poll::Ready(outcome)
    }
}

impl<T> Drop for AsyncPromiseFuture<T> {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            let (outcome, waker) = {
                let mut inner = lock(&shared);
                inner.future_alive = false;
                (
                    std::mem::replace(&mut inner.outcome, Outcome::Taken),
                    inner.waker.take(),
                )
            };
            // Dropped outside the lock: a value's destructor may do anything.
            drop(outcome);
            drop(waker);
        }
    }
}

impl<T> fmt::Debug for AsyncPromiseFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncPromiseFuture")
            .field("completed", &self.shared.is_none())
            .finish()
    }
}
