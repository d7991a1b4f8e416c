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
//! While the channel has one receiver, a receive that finds several items buffered takes a
//! few more (up to half the capacity, at most 32) in the same lock and returns them from the
//! receiver without locking. Producers then meet the consumer's lock a few times per batch
//! instead of once per item. Those items still count against the capacity until the
//! receiver next locks and reports them delivered, so a full channel holds senders back
//! exactly as before (a little longer, never less); a receiver that is cloned or dropped
//! while it holds some puts them back at the front of the buffer.
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

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
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
        AsyncReceiver::new(core, capacity),
    )
}

/// The most items a lone receiver takes ahead in one lock.
const AHEAD: usize = 32;

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

impl<T> AsyncSender<T> {
    /// Polls a send whose state lives outside an [`AsyncSendFuture`] (a pipeline's channel
    /// sink keeps one inside itself).
    pub(crate) fn poll_send_state(
        &self,
        state: &mut SendState<T>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), SendError<T>>> {
        // A foreign waker is cloned before locking: its clone is user code that may use
        // this channel.
        let mut waker = NewWaker::new(cx.waker());
        let mut wakes = Wakes::default();
        let poll = lock(&self.core).poll_send(state, &mut waker, &mut wakes);
        drop(waker);
        wakes.wake();
        poll
    }

    /// Withdraws a send that is still waiting (its value is dropped, not sent).
    pub(crate) fn abandon_send_state(&self, state: &mut SendState<T>) {
        if !matches!(state, SendState::Waiting(_)) {
            // Never parked, or done: nothing to undo, no lock to take.
            return;
        }
        let mut wakes = Wakes::default();
        let withdrawn = lock(&self.core).drop_send(state, &mut wakes);
        drop(withdrawn);
        wakes.wake();
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
        this.sender.poll_send_state(&mut this.state, cx)
    }
}

impl<T> Drop for AsyncSendFuture<'_, T> {
    fn drop(&mut self) {
        self.sender.abandon_send_state(&mut self.state);
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
    /// Items received ahead, oldest first (see the module docs).
    ahead: RefCell<VecDeque<T>>,
    /// Items handed out from `ahead` since the receiver last reported to the channel.
    delivered: Cell<usize>,
    /// How many items it takes ahead at most: half the capacity, at most [`AHEAD`].
    max_ahead: usize,
    _not_send: PhantomData<*const ()>,
}

// Nothing in a receiver is pinned: the items it took ahead are plain data moved in and out.
impl<T> Unpin for AsyncReceiver<T> {}

impl<T> AsyncReceiver<T> {
    fn new(core: Arc<Mutex<Core<T>>>, capacity: usize) -> Self {
        AsyncReceiver {
            core,
            stream_waiter: None,
            ahead: RefCell::new(VecDeque::new()),
            delivered: Cell::new(0),
            max_ahead: capacity.div_ceil(2).min(AHEAD),
            _not_send: PhantomData,
        }
    }

    /// The next item received ahead, if any.
    fn take_ahead(&self) -> Option<T> {
        let v = self.ahead.borrow_mut().pop_front()?;
        self.delivered.set(self.delivered.get() + 1);
        Some(v)
    }

    /// Polls a receive through the lock (nothing was received ahead): on an item, takes
    /// more ahead in the same lock.
    fn poll_locked(&self, waiter: &mut Option<usize>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        // A foreign waker is cloned before locking: its clone is user code that may use this
        // channel.
        let mut waker = NewWaker::new(cx.waker());
        let mut wakes = Wakes::default();
        let poll = {
            let mut core = lock(&self.core);
            core.delivered_ahead(self.delivered.take(), &mut wakes);
            let poll = core.poll_recv(waiter, &mut waker, &mut wakes);
            if matches!(poll, Poll::Ready(Some(_))) {
                core.take_more(&mut self.ahead.borrow_mut(), self.max_ahead, &mut wakes);
            }
            poll
        };
        drop(waker);
        wakes.wake();
        poll
    }

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
        if let Some(v) = self.take_ahead() {
            return Ok(v);
        }
        let mut wakes = Wakes::default();
        let received = {
            let mut core = lock(&self.core);
            core.delivered_ahead(self.delivered.take(), &mut wakes);
            let received = core.try_recv(&mut wakes);
            if received.is_ok() {
                core.take_more(&mut self.ahead.borrow_mut(), self.max_ahead, &mut wakes);
            }
            received
        };
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

    /// Items this receiver can take right now: buffered, and received ahead.
    pub fn len(&self) -> usize {
        // The channel still counts what this receiver handed out since it last reported.
        lock(&self.core).len() - self.delivered.get()
    }

    /// Whether nothing is buffered (or received ahead) right now.
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
        let mut wakes = Wakes::default();
        {
            let mut core = lock(&self.core);
            core.delivered_ahead(self.delivered.take(), &mut wakes);
            // The clone may want what this one took ahead: give it back to the channel.
            core.give_back(&mut self.ahead.borrow_mut(), &mut wakes);
            core.add_receiver();
        }
        wakes.wake();
        AsyncReceiver::new(self.core.clone(), self.max_ahead * 2)
    }
}

impl<T> Drop for AsyncReceiver<T> {
    fn drop(&mut self) {
        let mut wakes = Wakes::default();
        let items = {
            let mut core = lock(&self.core);
            core.delivered_ahead(self.delivered.take(), &mut wakes);
            // Other receivers take what this one took ahead (the last one drops it below).
            core.give_back(self.ahead.get_mut(), &mut wakes);
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
        if this.stream_waiter.is_none()
            && let Some(v) = this.take_ahead()
        {
            return Poll::Ready(Some(v));
        }
        let mut waiter = this.stream_waiter.take();
        let poll = this.poll_locked(&mut waiter, cx);
        this.stream_waiter = waiter;
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
        // Items received ahead go first, to a future that is not queued (a queued one holds
        // a place, or a reservation, that the locked path settles).
        if this.waiter.is_none()
            && let Some(v) = this.receiver.take_ahead()
        {
            return Poll::Ready(Some(v));
        }
        this.receiver.poll_locked(&mut this.waiter, cx)
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
