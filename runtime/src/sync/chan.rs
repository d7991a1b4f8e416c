//! Bounded channels within one runtime.
//!
//! [`chan`] makes a channel of fixed capacity whose ring buffer is allocated once. Both ends
//! can be cloned (many senders, many receivers) and both are `!Send`: every task using the
//! channel runs on the runtime that made it. For senders on other threads, see
//! [`async_chan`](super::async_chan).
//!
//! - [`Sender::send`] waits while the channel is full (back-pressure); waiting senders are
//!   served first come, first served, and their items keep that order.
//!   [`Sender::try_send`] never waits.
//! - [`Receiver::recv`] waits while the channel is empty; waiting receivers are woken in the
//!   order they started waiting. [`Receiver::try_recv`] never waits. A receiver is also a
//!   [`Stream`].
//! - [`close`](Sender::close) (on either end), or dropping every sender, ends the channel
//!   without losing an item: receivers still drain what was sent, then see `None`; sends that
//!   could not complete fail with their value inside the [`SendError`].
//!
//! ```
//! # iomgr::sync::doc_block_on(async {
//! let (tx, rx) = iomgr::sync::chan::<u32>(2);
//! tx.send(1).await.unwrap();
//! tx.try_send(2).unwrap();
//! assert!(tx.try_send(3).unwrap_err().is_full()); // capacity 2
//! tx.close();
//! assert_eq!(rx.recv().await, Some(1));
//! assert_eq!(rx.recv().await, Some(2));
//! assert_eq!(rx.recv().await, None); // closed and drained
//! # });
//! ```

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures_core::Stream;

use super::bounded::{Core, NewWaker, SendState, Wakes};
use super::error::{SendError, TryRecvError, TrySendError};

/// Makes a bounded channel holding at most `capacity` items.
///
/// # Panics
/// If `capacity` is 0.
pub fn chan<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let core = Rc::new(RefCell::new(Core::new(capacity)));
    (
        Sender { core: core.clone() },
        Receiver {
            core,
            stream_waiter: None,
        },
    )
}

/// The sending end of a [`chan`]. Clone it for more senders.
pub struct Sender<T> {
    core: Rc<RefCell<Core<T>>>,
}

impl<T> Sender<T> {
    /// Sends `value`, waiting while the channel is full.
    ///
    /// Fails with the value inside [`SendError`] if the channel is (or gets) closed before
    /// the value is in the buffer. Dropping the future before it completes withdraws the
    /// value (it is dropped, not sent).
    pub fn send(&self, value: T) -> SendFuture<'_, T> {
        SendFuture {
            sender: self,
            state: SendState::Idle(Some(value)),
        }
    }

    /// Sends `value` if there is room right now and no other sender is waiting.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let mut wakes = Wakes::default();
        let sent = self.core.borrow_mut().try_send(value, &mut wakes);
        wakes.wake();
        sent
    }

    /// Closes the channel for everyone: sends fail from now on, receivers drain what is
    /// buffered and then see the end.
    pub fn close(&self) {
        let mut wakes = Wakes::default();
        self.core.borrow_mut().close(&mut wakes);
        wakes.wake();
    }

    /// Whether the channel is closed.
    pub fn is_closed(&self) -> bool {
        self.core.borrow().is_closed()
    }

    /// Items buffered right now.
    pub fn len(&self) -> usize {
        self.core.borrow().len()
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most items the channel buffers.
    pub fn capacity(&self) -> usize {
        self.core.borrow().capacity()
    }
}

impl<T> Sender<T> {
    /// Polls a send whose state lives outside a [`SendFuture`] (a pipeline's channel sink
    /// keeps one inside itself).
    pub(crate) fn poll_send_state(
        &self,
        state: &mut SendState<T>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), SendError<T>>> {
        // A foreign waker is cloned before locking: its clone is user code that may use
        // this channel.
        let mut waker = NewWaker::new(cx.waker());
        let mut wakes = Wakes::default();
        let poll = self
            .core
            .borrow_mut()
            .poll_send(state, &mut waker, &mut wakes);
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
        let withdrawn = self.core.borrow_mut().drop_send(state, &mut wakes);
        drop(withdrawn);
        wakes.wake();
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.core.borrow_mut().add_sender();
        Sender {
            core: self.core.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut wakes = Wakes::default();
        self.core.borrow_mut().remove_sender(&mut wakes);
        wakes.wake();
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let core = self.core.borrow();
        f.debug_struct("Sender")
            .field("len", &core.len())
            .field("capacity", &core.capacity())
            .field("closed", &core.is_closed())
            .finish()
    }
}

/// The future of [`Sender::send`].
#[must_use = "futures do nothing unless awaited"]
pub struct SendFuture<'a, T> {
    sender: &'a Sender<T>,
    state: SendState<T>,
}

// The state is never pinned structurally: it is plain data moved in and out under `&mut`.
impl<T> Unpin for SendFuture<'_, T> {}

impl<T> Future for SendFuture<'_, T> {
    type Output = Result<(), SendError<T>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        this.sender.poll_send_state(&mut this.state, cx)
    }
}

impl<T> Drop for SendFuture<'_, T> {
    fn drop(&mut self) {
        self.sender.abandon_send_state(&mut self.state);
    }
}

impl<T> fmt::Debug for SendFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendFuture { .. }")
    }
}

/// The receiving end of a [`chan`]. Clone it for more receivers; it is also a [`Stream`].
pub struct Receiver<T> {
    core: Rc<RefCell<Core<T>>>,
    stream_waiter: Option<usize>,
}

impl<T> Receiver<T> {
    /// Receives the next item, waiting while the channel is empty; `None` once the channel
    /// is closed and drained.
    pub fn recv(&self) -> RecvFuture<'_, T> {
        RecvFuture {
            receiver: self,
            waiter: None,
        }
    }

    /// Receives an item if one is buffered right now.
    ///
    /// ```
    /// use iomgr::sync::{chan, TryRecvError};
    /// let (tx, rx) = chan::<u8>(1);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.try_send(1).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    /// ```
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut wakes = Wakes::default();
        let received = self.core.borrow_mut().try_recv(&mut wakes);
        wakes.wake();
        received
    }

    /// Closes the channel for everyone: sends fail from now on (waiting ones get their value
    /// back), and receivers still drain what is buffered.
    pub fn close(&self) {
        let mut wakes = Wakes::default();
        self.core.borrow_mut().close(&mut wakes);
        wakes.wake();
    }

    /// Whether the channel is closed (items may still be buffered).
    pub fn is_closed(&self) -> bool {
        self.core.borrow().is_closed()
    }

    /// Items buffered right now.
    pub fn len(&self) -> usize {
        self.core.borrow().len()
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most items the channel buffers.
    pub fn capacity(&self) -> usize {
        self.core.borrow().capacity()
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.core.borrow_mut().add_receiver();
        Receiver {
            core: self.core.clone(),
            stream_waiter: None,
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut wakes = Wakes::default();
        let items = {
            let mut core = self.core.borrow_mut();
            core.drop_recv(&mut self.stream_waiter, &mut wakes);
            core.remove_receiver(&mut wakes)
        };
        wakes.wake();
        drop(items);
    }
}

impl<T> Stream for Receiver<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = &mut *self;
        // A foreign waker is cloned before borrowing: its clone is user code that may use
        // this channel.
        let mut waker = NewWaker::new(cx.waker());
        let mut wakes = Wakes::default();
        let poll =
            this.core
                .borrow_mut()
                .poll_recv(&mut this.stream_waiter, &mut waker, &mut wakes);
        drop(waker);
        wakes.wake();
        poll
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.len(), None)
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let core = self.core.borrow();
        f.debug_struct("Receiver")
            .field("len", &core.len())
            .field("capacity", &core.capacity())
            .field("closed", &core.is_closed())
            .finish()
    }
}

/// The future of [`Receiver::recv`].
#[must_use = "futures do nothing unless awaited"]
pub struct RecvFuture<'a, T> {
    receiver: &'a Receiver<T>,
    waiter: Option<usize>,
}

impl<T> Future for RecvFuture<'_, T> {
    type Output = Option<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = &mut *self;
        // A foreign waker is cloned before borrowing: its clone is user code that may use
        // this channel.
        let mut waker = NewWaker::new(cx.waker());
        let mut wakes = Wakes::default();
        let poll =
            this.receiver
                .core
                .borrow_mut()
                .poll_recv(&mut this.waiter, &mut waker, &mut wakes);
        drop(waker);
        wakes.wake();
        poll
    }
}

impl<T> Drop for RecvFuture<'_, T> {
    fn drop(&mut self) {
        if self.waiter.is_none() {
            // Never waited, or received: nothing to undo.
            return;
        }
        let mut wakes = Wakes::default();
        self.receiver
            .core
            .borrow_mut()
            .drop_recv(&mut self.waiter, &mut wakes);
        wakes.wake();
    }
}

impl<T> fmt::Debug for RecvFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecvFuture { .. }")
    }
}
