//! Bounded channels fed from any thread, drained on one runtime.
//!
//! [`async_chan`] works like [`chan`](super::chan) (same capacity rules, same FIFO waiters,
//! same closing rules, ring buffer allocated once) but its [`AsyncSender`] is `Send + Sync`:
//! clone it into other runtimes and await [`send`](AsyncSender::send) there, or call
//! [`send_blocking`](AsyncSender::send_blocking) from a plain thread. The [`AsyncReceiver`]
//! is `!Send`: it stays on the runtime that made the channel, which is where the items go.
//!
//! The state sits behind one short-held lock. A send that wakes a receiver wakes its task
//! through the task's waker, which queues it to the owning runtime and wakes that runtime's
//! ring; a receive that frees room wakes a waiting sender on its own runtime or thread.
//!
//! Order: items from one sender arrive in the order it sent them (each send completes
//! before the next starts); items from different senders interleave.
//!
//! ```
//! # iomgr::sync::doc_block_on(async {
//! let (tx, rx) = iomgr::sync::async_chan::<u64>(16);
//! let producers: Vec<_> = (0..2)
//!     .map(|id| {
//!         let tx = tx.clone();
//!         std::thread::spawn(move || {
//!             for i in 0..100 {
//!                 tx.send_blocking(id * 1000 + i).unwrap();
//!             }
//!         })
//!     })
//!     .collect();
//! drop(tx); // the channel ends when the last sender is gone
//! let mut count = 0;
//! while let Some(_) = rx.recv().await {
//!     count += 1;
//! }
//! assert_eq!(count, 200);
//! for p in producers { p.join().unwrap(); }
//! # });
//! ```

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use futures_core::Stream;

use super::bounded::{Core, NewWaker, SendState, Wakes};
use super::error::{SendError, TryRecvError, TrySendError};
use super::shim::{Arc, Mutex, lock};

/// Makes a bounded cross-thread channel holding at most `capacity` items. Call it on the
/// runtime that will receive.
///
/// # Panics
/// If `capacity` is 0.
pub fn async_chan<T>(capacity: usize) -> (AsyncSender<T>, AsyncReceiver<T>) {
    let core = Arc::new(Mutex::new(Core::new(capacity)));
    (
        AsyncSender { core: core.clone() },
        AsyncReceiver {
            core,
            stream_waiter: None,
            _not_send: PhantomData,
        },
    )
}

/// The sending end of an [`async_chan`]: `Send + Sync` (for `T: Send`), clone it freely.
pub struct AsyncSender<T> {
    core: Arc<Mutex<Core<T>>>,
}

impl<T> AsyncSender<T> {
    /// Sends `value`, waiting while the channel is full. Await it on any runtime.
    ///
    /// Fails with the value inside [`SendError`] if the channel is (or gets) closed before
    /// the value is in the buffer.
    pub fn send(&self, value: T) -> AsyncSendFuture<'_, T> {
        AsyncSendFuture {
            sender: self,
            state: SendState::Idle(Some(value)),
        }
    }

    /// Sends `value`, blocking this thread while the channel is full.
    ///
    /// For plain threads only: calling it on a runtime thread blocks that runtime (and
    /// deadlocks if the receiver runs there).
    pub fn send_blocking(&self, value: T) -> Result<(), SendError<T>> {
        // Fast path: room right now, no waker needed.
        match self.try_send(value) {
            Ok(()) => Ok(()),
            Err(TrySendError::Closed(v)) => Err(SendError(v)),
            Err(TrySendError::Full(v)) => block_on(self.send(v)),
        }
    }

    /// Sends `value` if there is room right now and no other sender is waiting.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let mut wakes = Wakes::default();
        let sent = lock(&self.core).try_send(value, &mut wakes);
        wakes.wake();
        sent
    }

    /// Closes the channel for everyone: sends fail from now on (waiting ones get their value
    /// back), receivers drain what is buffered and then see the end.
    pub fn close(&self) {
        let mut wakes = Wakes::default();
        lock(&self.core).close(&mut wakes);
        wakes.wake();
    }

    /// Whether the channel is closed.
    pub fn is_closed(&self) -> bool {
        lock(&self.core).is_closed()
    }

    /// Items buffered right now (may change as soon as it is read).
    pub fn len(&self) -> usize {
        lock(&self.core).len()
    }

    /// Whether nothing is buffered right now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most items the channel buffers.
    pub fn capacity(&self) -> usize {
        lock(&self.core).capacity()
    }
}

impl<T> Clone for AsyncSender<T> {
    fn clone(&self) -> Self {
        lock(&self.core).add_sender();
        AsyncSender {
            core: self.core.clone(),
        }
    }
}

impl<T> Drop for AsyncSender<T> {
    fn drop(&mut self) {
        let mut wakes = Wakes::default();
        lock(&self.core).remove_sender(&mut wakes);
        wakes.wake();
    }
}

impl<T> fmt::Debug for AsyncSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let core = lock(&self.core);
        f.debug_struct("AsyncSender")
            .field("len", &core.len())
            .field("capacity", &core.capacity())
            .field("closed", &core.is_closed())
            .finish()
    }
}

/// The future of [`AsyncSender::send`]; `Send` when `T` is.
#[must_use = "futures do nothing unless awaited"]
pub struct AsyncSendFuture<'a, T> {
    sender: &'a AsyncSender<T>,
    state: SendState<T>,
}

// The state is never pinned structurally: it is plain data moved in and out under `&mut`.
impl<T> Unpin for AsyncSendFuture<'_, T> {}

impl<T> Future for AsyncSendFuture<'_, T> {
    type Output = Result<(), SendError<T>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        // A foreign waker is cloned before locking: its clone is user code that may use
        // this channel.
        let mut waker = NewWaker::new(cx.waker());
        let mut wakes = Wakes::default();
        let poll = lock(&this.sender.core).poll_send(&mut this.state, &mut waker, &mut wakes);
        drop(waker);
        wakes.wake();
        poll
    }
}

impl<T> Drop for AsyncSendFuture<'_, T> {
    fn drop(&mut self) {
        if !matches!(self.state, SendState::Waiting(_)) {
            // Never parked, or done: nothing to undo, no lock to take.
            return;
        }
        let mut wakes = Wakes::default();
        let withdrawn = lock(&self.sender.core).drop_send(&mut self.state, &mut wakes);
        drop(withdrawn);
        wakes.wake();
    }
}

impl<T> fmt::Debug for AsyncSendFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AsyncSendFuture { .. }")
    }
}

/// The receiving end of an [`async_chan`]: `!Send`, it stays on the runtime that made the
/// channel. Clone it for more receivers there; it is also a [`Stream`].
pub struct AsyncReceiver<T> {
    core: Arc<Mutex<Core<T>>>,
    stream_waiter: Option<usize>,
    _not_send: PhantomData<*const ()>,
}

impl<T> AsyncReceiver<T> {
    /// Receives the next item, waiting while the channel is empty; `None` once the channel
    /// is closed and drained.
    pub fn recv(&self) -> AsyncRecvFuture<'_, T> {
        AsyncRecvFuture {
            receiver: self,
            waiter: None,
        }
    }

    /// Receives an item if one is buffered right now.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut wakes = Wakes::default();
        let received = lock(&self.core).try_recv(&mut wakes);
        wakes.wake();
        received
    }

    /// Closes the channel for everyone: sends fail from now on (waiting ones get their value
    /// back), and receivers still drain what is buffered.
    pub fn close(&self) {
        let mut wakes = Wakes::default();
        lock(&self.core).close(&mut wakes);
        wakes.wake();
    }

    /// Whether the channel is closed (items may still be buffered).
    pub fn is_closed(&self) -> bool {
        lock(&self.core).is_closed()
    }

    /// Items buffered right now.
    pub fn len(&self) -> usize {
        lock(&self.core).len()
    }

    /// Whether nothing is buffered right now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most items the channel buffers.
    pub fn capacity(&self) -> usize {
        lock(&self.core).capacity()
    }
}

impl<T> Clone for AsyncReceiver<T> {
    fn clone(&self) -> Self {
        lock(&self.core).add_receiver();
        AsyncReceiver {
            core: self.core.clone(),
            stream_waiter: None,
            _not_send: PhantomData,
        }
    }
}

impl<T> Drop for AsyncReceiver<T> {
    fn drop(&mut self) {
        let mut wakes = Wakes::default();
        let items = {
            let mut core = lock(&self.core);
            core.drop_recv(&mut self.stream_waiter, &mut wakes);
            core.remove_receiver(&mut wakes)
        };
        wakes.wake();
        drop(items);
    }
}

impl<T> Stream for AsyncReceiver<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = &mut *self;
        // A foreign waker is cloned before locking: its clone is user code that may use
        // this channel.
        let mut waker = NewWaker::new(cx.waker());
        let mut wakes = Wakes::default();
        let poll = lock(&this.core).poll_recv(&mut this.stream_waiter, &mut waker, &mut wakes);
        drop(waker);
        wakes.wake();
        poll
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.len(), None)
    }
}

impl<T> fmt::Debug for AsyncReceiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let core = lock(&self.core);
        f.debug_struct("AsyncReceiver")
            .field("len", &core.len())
            .field("capacity", &core.capacity())
            .field("closed", &core.is_closed())
            .finish()
    }
}

/// The future of [`AsyncReceiver::recv`].
#[must_use = "futures do nothing unless awaited"]
pub struct AsyncRecvFuture<'a, T> {
    receiver: &'a AsyncReceiver<T>,
    waiter: Option<usize>,
}

impl<T> Future for AsyncRecvFuture<'_, T> {
    type Output = Option<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = &mut *self;
        // A foreign waker is cloned before locking: its clone is user code that may use
        // this channel.
        let mut waker = NewWaker::new(cx.waker());
        let mut wakes = Wakes::default();
        let poll = lock(&this.receiver.core).poll_recv(&mut this.waiter, &mut waker, &mut wakes);
        drop(waker);
        wakes.wake();
        poll
    }
}

impl<T> Drop for AsyncRecvFuture<'_, T> {
    fn drop(&mut self) {
        if self.waiter.is_none() {
            // Never waited, or received: nothing to undo, no lock to take.
            return;
        }
        let mut wakes = Wakes::default();
        lock(&self.receiver.core).drop_recv(&mut self.waiter, &mut wakes);
        wakes.wake();
    }
}

impl<T> fmt::Debug for AsyncRecvFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AsyncRecvFuture { .. }")
    }
}

/// Runs `fut` to completion on this thread, parking between polls.
pub(crate) fn block_on<F: Future>(fut: F) -> F::Output {
    use std::sync::Arc as StdArc;
    use std::task::Wake as WakeTrait;
    use std::thread::{self, Thread};

    struct Unparker(Thread);
    impl WakeTrait for Unparker {
        fn wake(self: StdArc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &StdArc<Self>) {
            self.0.unpark();
        }
    }

    thread_local! {
        // One waker per thread, made on first use: blocking sends allocate nothing after it.
        static WAKER: Waker = Waker::from(StdArc::new(Unparker(thread::current())));
    }

    let waker = WAKER.with(Waker::clone);
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        thread::park();
    }
}
