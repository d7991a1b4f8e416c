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
//!   in a FIFO send queue. Once receivers have freed half the buffer, the parked values are
//!   moved in, oldest first, and their senders woken. So items enter the buffer in the order
//!   their sends started, a send completes exactly when its value is in the buffer, and a
//!   sender on another thread is woken once per half-buffer of items, not once per item.
//! - A receiver that finds nothing to take queues itself. Each item that enters the buffer
//!   while receivers wait is *reserved* for the oldest one, which is then woken: receivers
//!   arriving later cannot take it first, so waiters are served strictly in FIFO order. A
//!   woken receiver dropped before it took its item passes the reservation on, so an item
//!   never sits unseen.
//! - `close` stops new sends, hands parked values back to their senders (their sends
//!   fail with the value inside the error), and lets receivers drain the buffer before they
//!   see the end.
//!
//! Waiter records live in slabs and their order in `VecDeque`s of keys: after warm-up, waiting
//! allocates nothing either.

use std::collections::VecDeque;
use std::task::{Poll, Waker};

use slab::Slab;

use super::error::{SendError, TryRecvError, TrySendError};

struct SendWaiter<T> {
    /// `Some` while parked; `None` once a receiver moved it into the buffer.
    value: Option<T>,
    waker: Option<Waker>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RecvState {
    /// In `recv_queue`, waiting.
    Queued,
    /// Woken with one buffered item reserved for it.
    Reserved,
    /// Woken without a reservation (the channel closed): it polls again to see the end.
    Woken,
}

struct RecvWaiter {
    waker: Option<Waker>,
    state: RecvState,
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

/// Wakers to wake, and wakers to drop, once the borrow or lock is released: both run user
/// code (a waker's `wake` and its destructor), which may reach this channel again. The core
/// never clones, wakes or drops a waker itself. Holds a few without allocating.
#[derive(Default)]
pub(crate) struct Wakes {
    inline: [Option<Waker>; 4],
    more: Vec<Waker>,
    /// Replaced or unneeded wakers, dropped (not woken) by [`Wakes::wake`].
    retired: [Option<Waker>; 2],
    more_retired: Vec<Waker>,
}

fn push_inline(inline: &mut [Option<Waker>], more: &mut Vec<Waker>, w: Waker) {
    match inline.iter_mut().find(|slot| slot.is_none()) {
        Some(slot) => *slot = Some(w),
        None => more.push(w),
    }
}

impl Wakes {
    fn add(&mut self, w: Option<Waker>) {
        if let Some(w) = w {
            push_inline(&mut self.inline, &mut self.more, w);
        }
    }

    /// Keeps `w` to drop after the lock is released.
    fn retire(&mut self, w: Option<Waker>) {
        if let Some(w) = w {
            push_inline(&mut self.retired, &mut self.more_retired, w);
        }
    }

    /// Wakes the ones to wake, then drops the retired ones. Call it unlocked.
    pub(crate) fn wake(self) {
        for w in self.inline.into_iter().flatten() {
            w.wake();
        }
        for w in self.more {
            w.wake();
        }
        drop(self.retired);
        drop(self.more_retired);
    }
}

pub(crate) struct Core<T> {
    buf: VecDeque<T>,
    cap: usize,
    /// Buffered items promised to woken receivers (`RecvState::Reserved`); `<= buf.len()`.
    reserved: usize,
    closed: bool,
    senders: usize,
    receivers: usize,
    send_waiters: Slab<SendWaiter<T>>,
    send_queue: VecDeque<usize>,
    recv_waiters: Slab<RecvWaiter>,
    recv_queue: VecDeque<usize>,
}

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
            reserved: 0,
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

    /// Reserves unreserved buffered items for the oldest queued receivers and wakes them.
    fn hand_out(&mut self, wakes: &mut Wakes) {
        while self.buf.len() > self.reserved {
            let Some(key) = self.recv_queue.pop_front() else {
                return;
            };
            let w = &mut self.recv_waiters[key];
            w.state = RecvState::Reserved;
            self.reserved += 1;
            wakes.add(w.waker.take());
        }
    }

    /// Once closed and empty, every queued receiver is woken to see the end.
    fn wake_all_if_ended(&mut self, wakes: &mut Wakes) {
        if self.closed && self.buf.is_empty() {
            for key in self.recv_queue.drain(..) {
                let w = &mut self.recv_waiters[key];
                w.state = RecvState::Woken;
                wakes.add(w.waker.take());
            }
        }
    }

    pub(crate) fn try_send(&mut self, value: T) -> Result<Wakes, TrySendError<T>> {
        if self.closed {
            Err(TrySendError::Closed(value))
        } else if !self.send_queue.is_empty() || self.buf.len() >= self.cap {
            Err(TrySendError::Full(value))
        } else {
            self.buf.push_back(value);
            let mut wakes = Wakes::default();
            self.hand_out(&mut wakes);
            Ok(wakes)
        }
    }

    /// Polls a send. `waker` is the task's waker, cloned by the caller before locking.
    pub(crate) fn poll_send(
        &mut self,
        state: &mut SendState<T>,
        waker: Waker,
    ) -> (Poll<Result<(), SendError<T>>>, Wakes) {
        let mut unused = Wakes::default();
        let (poll, mut wakes) = self.poll_send_inner(state, waker, &mut unused);
        wakes.retired = unused.retired;
        wakes.more_retired = unused.more_retired;
        (poll, wakes)
    }

    fn poll_send_inner(
        &mut self,
        state: &mut SendState<T>,
        waker: Waker,
        retired: &mut Wakes,
    ) -> (Poll<Result<(), SendError<T>>>, Wakes) {
        match state {
            SendState::Idle(value) => {
                let value = value
                    .take()
                    .expect("send state holds its value until tried");
                match self.try_send(value) {
                    Ok(wakes) => {
                        *state = SendState::Done;
                        retired.retire(Some(waker));
                        (Poll::Ready(Ok(())), wakes)
                    }
                    Err(TrySendError::Closed(v)) => {
                        *state = SendState::Done;
                        retired.retire(Some(waker));
                        (Poll::Ready(Err(SendError(v))), Wakes::default())
                    }
                    Err(TrySendError::Full(v)) => {
                        let key = self.send_waiters.insert(SendWaiter {
                            value: Some(v),
                            waker: Some(waker),
                        });
                        self.send_queue.push_back(key);
                        *state = SendState::Waiting(key);
                        (Poll::Pending, Wakes::default())
                    }
                }
            }
            SendState::Waiting(key) => {
                let key = *key;
                let w = &mut self.send_waiters[key];
                if w.value.is_none() {
                    // A receiver moved our value into the buffer.
                    retired.retire(Some(waker));
                    let w = self.send_waiters.remove(key);
                    retired.retire(w.waker);
                    *state = SendState::Done;
                    (Poll::Ready(Ok(())), Wakes::default())
                } else if self.closed {
                    retired.retire(Some(waker));
                    let v = w.value.take().expect("checked above");
                    let w = self.send_waiters.remove(key);
                    retired.retire(w.waker);
                    self.send_queue.retain(|&k| k != key);
                    *state = SendState::Done;
                    (Poll::Ready(Err(SendError(v))), Wakes::default())
                } else {
                    retired.retire(w.waker.replace(waker));
                    (Poll::Pending, Wakes::default())
                }
            }
            SendState::Done => panic!("send future polled after it completed"),
        }
    }

    /// A send future is dropped: unpark its value (returned, for the caller to drop after
    /// unlocking, with its waker in the `Wakes`). A value already moved into the buffer stays
    /// sent.
    pub(crate) fn drop_send(&mut self, state: &mut SendState<T>) -> (Option<T>, Wakes) {
        let mut wakes = Wakes::default();
        if let SendState::Waiting(key) = *state {
            *state = SendState::Done;
            let w = self.send_waiters.remove(key);
            if w.value.is_some() {
                self.send_queue.retain(|&k| k != key);
            }
            wakes.retire(w.waker);
            (w.value, wakes)
        } else {
            (None, wakes)
        }
    }

    /// Takes the front item, refills the freed place from the oldest parked sender, and
    /// hands out what can be handed out.
    fn pop(&mut self, wakes: &mut Wakes) -> T {
        let v = self.buf.pop_front().expect("pop from a non-empty buffer");
        // Refill from parked senders once half the buffer is free, then as far as it goes:
        // a parked sender is woken once per half-buffer of items, not once per item (waking
        // a thread is a syscall). Never after close: parked sends then fail and get their
        // value back.
        if !self.closed && self.cap - self.buf.len() >= self.cap.div_ceil(2) {
            while self.buf.len() < self.cap {
                let Some(key) = self.send_queue.pop_front() else {
                    break;
                };
                let w = &mut self.send_waiters[key];
                self.buf
                    .push_back(w.value.take().expect("queued senders hold their value"));
                wakes.add(w.waker.take());
            }
        }
        self.hand_out(wakes);
        self.wake_all_if_ended(wakes);
        v
    }

    /// Receives without a reservation: only items nobody is promised.
    pub(crate) fn try_recv(&mut self) -> Result<(T, Wakes), TryRecvError> {
        if self.buf.len() > self.reserved {
            let mut wakes = Wakes::default();
            let v = self.pop(&mut wakes);
            Ok((v, wakes))
        } else if self.closed && self.buf.is_empty() {
            Err(TryRecvError::Closed)
        } else {
            Err(TryRecvError::Empty)
        }
    }

    /// Polls a receive. `waker` is the task's waker, cloned by the caller before locking.
    pub(crate) fn poll_recv(
        &mut self,
        waiter: &mut Option<usize>,
        waker: Waker,
    ) -> (Poll<Option<T>>, Wakes) {
        let mut wakes = Wakes::default();
        let mut waker = Some(waker);
        let (poll, ()) = self.poll_recv_inner(waiter, &mut waker, &mut wakes);
        wakes.retire(waker);
        (poll, wakes)
    }

    fn poll_recv_inner(
        &mut self,
        waiter: &mut Option<usize>,
        waker: &mut Option<Waker>,
        wakes: &mut Wakes,
    ) -> (Poll<Option<T>>, ()) {
        if let Some(key) = *waiter
            && self.recv_waiters[key].state == RecvState::Reserved
        {
            // Our item is waiting for us.
            let w = self.recv_waiters.remove(key);
            wakes.retire(w.waker);
            *waiter = None;
            self.reserved -= 1;
            let v = self.pop(wakes);
            return (Poll::Ready(Some(v)), ());
        }
        // Only an idle receiver can barge: one that is queued keeps its place instead.
        let queued = matches!(*waiter, Some(k) if self.recv_waiters[k].state == RecvState::Queued);
        if !queued && self.buf.len() > self.reserved {
            if let Some(key) = waiter.take() {
                wakes.retire(self.recv_waiters.remove(key).waker);
            }
            let v = self.pop(wakes);
            return (Poll::Ready(Some(v)), ());
        }
        if self.closed && self.buf.is_empty() {
            self.forget_recv(waiter, wakes);
            return (Poll::Ready(None), ());
        }
        match *waiter {
            None => {
                let key = self.recv_waiters.insert(RecvWaiter {
                    waker: waker.take(),
                    state: RecvState::Queued,
                });
                self.recv_queue.push_back(key);
                *waiter = Some(key);
            }
            Some(key) => {
                let w = &mut self.recv_waiters[key];
                if let Some(new) = waker.take() {
                    wakes.retire(w.waker.replace(new));
                }
                if w.state == RecvState::Woken {
                    w.state = RecvState::Queued;
                    self.recv_queue.push_front(key);
                }
            }
        }
        (Poll::Pending, ())
    }

    /// Forgets a receiver's waiter (its waker goes to `wakes`, to drop after unlocking).
    fn forget_recv(&mut self, waiter: &mut Option<usize>, wakes: &mut Wakes) -> Option<RecvState> {
        let key = waiter.take()?;
        let w = self.recv_waiters.remove(key);
        if w.state == RecvState::Queued {
            self.recv_queue.retain(|&k| k != key);
        }
        wakes.retire(w.waker);
        Some(w.state)
    }

    /// A receive future is dropped: forget its waiter. A reservation it held passes to the
    /// next waiting receiver.
    pub(crate) fn drop_recv(&mut self, waiter: &mut Option<usize>) -> Wakes {
        let mut wakes = Wakes::default();
        if self.forget_recv(waiter, &mut wakes) == Some(RecvState::Reserved) {
            self.reserved -= 1;
            self.hand_out(&mut wakes);
        }
        wakes
    }

    /// Closes the channel and returns the waiters to wake: parked senders (their sends fail
    /// with their value) and, if nothing is left to drain, the waiting receivers.
    pub(crate) fn close(&mut self) -> Wakes {
        let mut wakes = Wakes::default();
        if self.closed {
            return wakes;
        }
        self.closed = true;
        // Parked senders keep their slab entries (holding their values) until they poll.
        for key in self.send_queue.drain(..) {
            wakes.add(self.send_waiters[key].waker.take());
        }
        self.wake_all_if_ended(&mut wakes);
        wakes
    }

    pub(crate) fn add_sender(&mut self) {
        self.senders += 1;
    }

    pub(crate) fn add_receiver(&mut self) {
        self.receivers += 1;
    }

    /// The last sender going closes the channel (receivers drain, then see the end).
    pub(crate) fn remove_sender(&mut self) -> Wakes {
        self.senders -= 1;
        if self.senders == 0 {
            self.close()
        } else {
            Wakes::default()
        }
    }

    /// The last receiver going closes the channel; the buffered items, which nobody can
    /// receive anymore, are returned for the caller to drop after unlocking.
    pub(crate) fn remove_receiver(&mut self) -> (Wakes, VecDeque<T>) {
        self.receivers -= 1;
        if self.receivers == 0 {
            let wakes = self.close();
            self.reserved = 0;
            (wakes, std::mem::take(&mut self.buf))
        } else {
            (Wakes::default(), VecDeque::new())
        }
    }
}
