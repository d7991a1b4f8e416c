//! The bounded channel's state machine, shared by [`chan`](super::chan) (kept in a
//! `RefCell`, one thread) and [`async_chan`](super::async_chan) (kept in a `Mutex`).
//!
//! `Core` never wakes anyone itself: each operation returns the waker(s) to wake, and the
//! caller wakes them after releasing the borrow or lock.
//!
//! How it stays fair and loses nothing:
//! - The ring buffer is a `VecDeque` allocated once with room for `capacity` items; it never
//!   holds more.
//! - A sender that finds the buffer full (or other senders already waiting) parks *its value*
//!   in a FIFO send queue. A receiver that takes an item moves the oldest parked value into
//!   the freed place and wakes its sender. So items enter the buffer in the order their sends
//!   started, and a send completes exactly when its value is in the buffer.
//! - A receiver that finds the buffer empty queues itself; each item sent wakes the oldest
//!   waiting receiver. A woken receiver that is dropped before it took an item passes the
//!   wake on, so an item never sits unseen.
//! - `close` stops new sends, hands parked values back to their senders (their sends
//!   fail with the value inside the error), and lets receivers drain the buffer before they
//!   see the end.
//!
//! Waiter records live in slabs and their order in `VecDeque`s of keys: after warm-up, waiting
//! allocates nothing either.

use std::collections::VecDeque;
use std::task::{Context, Poll, Waker};

use slab::Slab;

use super::error::{SendError, TryRecvError, TrySendError};

struct SendWaiter<T> {
    /// `Some` while parked; `None` once a receiver moved it into the buffer.
    value: Option<T>,
    waker: Option<Waker>,
}

struct RecvWaiter {
    waker: Option<Waker>,
    /// In `recv_queue` (not yet woken).
    queued: bool,
}

/// Where a send future is.
pub(crate) enum SendState<T> {
    /// Not tried yet; holds the value.
    Idle(Option<T>),
    /// Parked in the send queue under this key.
    Waiting(usize),
    /// Finished (sent or failed).
    Done,
}

pub(crate) struct Core<T> {
    buf: VecDeque<T>,
    cap: usize,
    closed: bool,
    senders: usize,
    receivers: usize,
    send_waiters: Slab<SendWaiter<T>>,
    send_queue: VecDeque<usize>,
    recv_waiters: Slab<RecvWaiter>,
    recv_queue: VecDeque<usize>,
}

/// Anything to drop or wake once the lock is released.
pub(crate) type Wake = Option<Waker>;

impl<T> Core<T> {
    /// A channel with one sender and one receiver.
    ///
    /// # Panics
    /// If `cap` is 0.
    pub(crate) fn new(cap: usize) -> Self {
        assert!(cap > 0, "a channel needs a capacity of at least 1");
        Core {
            buf: VecDeque::with_capacity(cap),
            cap,
            closed: false,
            senders: 1,
            receivers: 1,
            send_waiters: Slab::new(),
            send_queue: VecDeque::new(),
            recv_waiters: Slab::new(),
            recv_queue: VecDeque::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    /// Wakes the oldest queued receiver, if any.
    fn wake_receiver(&mut self) -> Wake {
        let key = self.recv_queue.pop_front()?;
        let w = &mut self.recv_waiters[key];
        w.queued = false;
        w.waker.take()
    }

    pub(crate) fn try_send(&mut self, value: T) -> Result<Wake, TrySendError<T>> {
        if self.closed {
            Err(TrySendError::Closed(value))
        } else if !self.send_queue.is_empty() || self.buf.len() >= self.cap {
            Err(TrySendError::Full(value))
        } else {
            self.buf.push_back(value);
            Ok(self.wake_receiver())
        }
    }

    pub(crate) fn poll_send(
        &mut self,
        state: &mut SendState<T>,
        cx: &mut Context<'_>,
    ) -> (Poll<Result<(), SendError<T>>>, Wake) {
        match state {
            SendState::Idle(value) => {
                let value = value
                    .take()
                    .expect("send state holds its value until tried");
                match self.try_send(value) {
                    Ok(wake) => {
                        *state = SendState::Done;
                        (Poll::Ready(Ok(())), wake)
                    }
                    Err(TrySendError::Closed(v)) => {
                        *state = SendState::Done;
                        (Poll::Ready(Err(SendError(v))), None)
                    }
                    Err(TrySendError::Full(v)) => {
                        let key = self.send_waiters.insert(SendWaiter {
                            value: Some(v),
                            waker: Some(cx.waker().clone()),
                        });
                        self.send_queue.push_back(key);
                        *state = SendState::Waiting(key);
                        (Poll::Pending, None)
                    }
                }
            }
            SendState::Waiting(key) => {
                let key = *key;
                let w = &mut self.send_waiters[key];
                if w.value.is_none() {
                    // A receiver moved our value into the buffer.
                    self.send_waiters.remove(key);
                    *state = SendState::Done;
                    (Poll::Ready(Ok(())), None)
                } else if self.closed {
                    let v = w.value.take();
                    self.send_waiters.remove(key);
                    self.send_queue.retain(|&k| k != key);
                    *state = SendState::Done;
                    (Poll::Ready(Err(SendError(v.expect("checked above")))), None)
                } else {
                    match &mut w.waker {
                        Some(old) if old.will_wake(cx.waker()) => {}
                        slot => *slot = Some(cx.waker().clone()),
                    }
                    (Poll::Pending, None)
                }
            }
            SendState::Done => panic!("send future polled after it completed"),
        }
    }

    /// A send future is dropped: unpark its value (returned, for the caller to drop after
    /// unlocking). A value already moved into the buffer stays sent.
    pub(crate) fn drop_send(&mut self, state: &mut SendState<T>) -> Option<T> {
        if let SendState::Waiting(key) = *state {
            *state = SendState::Done;
            let w = self.send_waiters.remove(key);
            if w.value.is_some() {
                self.send_queue.retain(|&k| k != key);
            }
            w.value
        } else {
            None
        }
    }

    pub(crate) fn try_recv(&mut self) -> Result<(T, Wake), TryRecvError> {
        match self.buf.pop_front() {
            Some(v) => {
                // Refill the freed place from the oldest parked sender (not after close:
                // parked sends then fail and get their value back).
                let mut wake = None;
                if !self.closed
                    && let Some(key) = self.send_queue.pop_front()
                {
                    let w = &mut self.send_waiters[key];
                    self.buf
                        .push_back(w.value.take().expect("queued senders hold their value"));
                    wake = w.waker.take();
                }
                Ok((v, wake))
            }
            None if self.closed => Err(TryRecvError::Closed),
            None => Err(TryRecvError::Empty),
        }
    }

    pub(crate) fn poll_recv(
        &mut self,
        waiter: &mut Option<usize>,
        cx: &mut Context<'_>,
    ) -> (Poll<Option<T>>, Wake) {
        match self.try_recv() {
            Ok((v, wake)) => {
                // We are served; a wake meant for us (if any) was used.
                if let Some(key) = waiter.take() {
                    let w = self.recv_waiters.remove(key);
                    if w.queued {
                        self.recv_queue.retain(|&k| k != key);
                    }
                }
                (Poll::Ready(Some(v)), wake)
            }
            Err(TryRecvError::Closed) => {
                let wake = self.drop_recv(waiter);
                (Poll::Ready(None), wake)
            }
            Err(TryRecvError::Empty) => {
                match *waiter {
                    None => {
                        let key = self.recv_waiters.insert(RecvWaiter {
                            waker: Some(cx.waker().clone()),
                            queued: true,
                        });
                        self.recv_queue.push_back(key);
                        *waiter = Some(key);
                    }
                    Some(key) => {
                        let w = &mut self.recv_waiters[key];
                        match &mut w.waker {
                            Some(old) if old.will_wake(cx.waker()) => {}
                            slot => *slot = Some(cx.waker().clone()),
                        }
                        if !w.queued {
                            // Woken, but another receiver got there first: keep our turn.
                            w.queued = true;
                            self.recv_queue.push_front(key);
                        }
                    }
                }
                (Poll::Pending, None)
            }
        }
    }

    /// A receive future is dropped (or finished): forget its waiter. If it had been woken
    /// for an item it never took, wake the next receiver instead.
    pub(crate) fn drop_recv(&mut self, waiter: &mut Option<usize>) -> Wake {
        let key = waiter.take()?;
        let w = self.recv_waiters.remove(key);
        if w.queued {
            self.recv_queue.retain(|&k| k != key);
            None
        } else if !self.buf.is_empty() {
            self.wake_receiver()
        } else {
            None
        }
    }

    /// Closes the channel; returns every waiter to wake (they will see the close).
    pub(crate) fn close(&mut self) -> Vec<Waker> {
        if self.closed {
            return Vec::new();
        }
        self.closed = true;
        let mut wakers = Vec::new();
        for key in self.send_queue.drain(..) {
            wakers.extend(self.send_waiters[key].waker.take());
        }
        // Parked senders keep their slab entries (holding their values) until they poll.
        for key in self.recv_queue.drain(..) {
            let w = &mut self.recv_waiters[key];
            w.queued = false;
            wakers.extend(w.waker.take());
        }
        wakers
    }

    pub(crate) fn add_sender(&mut self) {
        self.senders += 1;
    }

    pub(crate) fn add_receiver(&mut self) {
        self.receivers += 1;
    }

    /// The last sender going closes the channel (receivers drain, then see the end).
    pub(crate) fn remove_sender(&mut self) -> Vec<Waker> {
        self.senders -= 1;
        if self.senders == 0 {
            self.close()
        } else {
            Vec::new()
        }
    }

    /// The last receiver going closes the channel; the buffered items, which nobody can
    /// receive anymore, are returned for the caller to drop after unlocking.
    pub(crate) fn remove_receiver(&mut self) -> (Vec<Waker>, VecDeque<T>) {
        self.receivers -= 1;
        if self.receivers == 0 {
            (self.close(), std::mem::take(&mut self.buf))
        } else {
            (Vec::new(), VecDeque::new())
        }
    }
}
