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
//!
//! **Wakers.** A waker's `clone`, `wake` and destructor are user code, which may reach this
//! channel again, so none of them runs while the borrow or lock is held, with one exception:
//! iomgr's own task wakers ([`is_own`]), whose clone is a copy of one word and whose
//! destructor does nothing. Every operation takes a [`Wakes`] to fill with the wakers to wake
//! (and the foreign ones to drop) once the borrow or lock is released, and a poll takes its
//! task's waker as a [`NewWaker`], which clones a foreign waker before the lock and an own
//! one only if it must be stored (it is not when the stored waker already wakes the same
//! task). The common case, one task waking one other, touches no reference count and moves
//! nothing but a few words.

use std::collections::VecDeque;
use std::task::{Poll, Waker};

use slab::Slab;

use super::error::{SendError, TryRecvError, TrySendError};
use crate::runtime::waker::is_own;

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

/// Wakers to wake, and foreign wakers to drop, once the borrow or lock is released: both run
/// user code (a waker's `wake` and its destructor), which may reach this channel again.
///
/// Made empty on the caller's stack (nothing is allocated), filled by reference, and
/// consumed by [`Wakes::wake`]. Two wakers to wake and one to drop fit without allocating;
/// only a close, or a receive that refills the buffer from many parked senders, needs more.
#[derive(Default)]
pub(crate) struct Wakes {
    first: Option<Waker>,
    second: Option<Waker>,
    more: Vec<Waker>,
    retired: Option<Waker>,
    more_retired: Vec<Waker>,
}

impl Wakes {
    #[inline]
    fn add(&mut self, w: Option<Waker>) {
        let Some(w) = w else { return };
        if self.first.is_none() {
            self.first = Some(w);
        } else if self.second.is_none() {
            self.second = Some(w);
        } else {
            self.more.push(w);
        }
    }

    /// Keeps `w` to drop after the lock is released (an own waker is dropped at once: its
    /// destructor does nothing).
    #[inline]
    fn retire(&mut self, w: Option<Waker>) {
        let Some(w) = w else { return };
        if is_own(&w) {
            return;
        }
        if self.retired.is_none() {
            self.retired = Some(w);
        } else {
            self.more_retired.push(w);
        }
    }

    /// Wakes the ones to wake, then drops the retired ones. Call it unlocked.
    #[inline(always)]
    pub(crate) fn wake(self) {
        // The common cases, nothing or one waker to wake, inline; the rest out of line.
        if self.second.is_none()
            && self.retired.is_none()
            && self.more.capacity() == 0
            && self.more_retired.capacity() == 0
        {
            // Only `first` holds anything: the other fields drop as no-ops.
            if let Some(w) = self.first {
                w.wake();
            }
            return;
        }
        self.wake_all();
    }

    #[cold]
    #[inline(never)]
    fn wake_all(self) {
        if let Some(w) = self.first {
            w.wake();
        }
        if let Some(w) = self.second {
            w.wake();
        }
        for w in self.more {
            w.wake();
        }
        drop(self.retired);
        drop(self.more_retired);
    }
}

/// The polling task's waker, as the channel may store it while locked: an own waker is
/// cloned only when stored (a copy of one word); a foreign one was cloned by [`NewWaker::new`],
/// before locking, and goes back unused (to be dropped unlocked) if it is not needed.
pub(crate) struct NewWaker<'a> {
    waker: &'a Waker,
    cloned: Option<Waker>,
}

impl<'a> NewWaker<'a> {
    /// Call it before locking.
    #[inline]
    pub(crate) fn new(waker: &'a Waker) -> Self {
        let cloned = (!is_own(waker)).then(|| waker.clone());
        NewWaker { waker, cloned }
    }

    /// An owned waker to store.
    #[inline]
    fn take(&mut self) -> Waker {
        match self.cloned.take() {
            Some(w) => w,
            None => {
                // Only an own waker is cloned here (under the lock): the clone of a foreign
                // one was made by `new`, and is taken at most once per poll.
                debug_assert!(is_own(self.waker));
                self.waker.clone()
            }
        }
    }

    /// Stores the waker in `slot`, unless `slot` already holds one that wakes the same task;
    /// a replaced waker goes to `wakes` to be dropped unlocked.
    #[inline]
    fn store(&mut self, slot: &mut Option<Waker>, wakes: &mut Wakes) {
        // `will_wake` compares two words each; it runs no user code.
        if slot.as_ref().is_some_and(|w| w.will_wake(self.waker)) {
            return;
        }
        let new = self.take();
        wakes.retire(slot.replace(new));
    }
}

pub(crate) struct Core<T> {
    buf: VecDeque<T>,
    cap: usize,
    /// Buffered items promised to woken receivers (`RecvState::Reserved`); `<= buf.len()`.
    reserved: usize,
    /// Items a lone receiver took ahead ([`Core::take_more`]) and has not reported delivered
    /// yet: they still count against the capacity, so senders see the same back-pressure as
    /// if they were in the buffer.
    ahead: usize,
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
            ahead: 0,
            closed: false,
            senders: 1,
            receivers: 1,
            send_waiters: Slab::new(),
            send_queue: VecDeque::new(),
            recv_waiters: Slab::new(),
            recv_queue: VecDeque::new(),
        }
    }

    /// Items in the channel: buffered, or taken ahead and not yet reported delivered.
    pub(crate) fn len(&self) -> usize {
        self.buf.len() + self.ahead
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

    #[inline]
    pub(crate) fn try_send(&mut self, value: T, wakes: &mut Wakes) -> Result<(), TrySendError<T>> {
        if self.closed {
            Err(TrySendError::Closed(value))
        } else if !self.send_queue.is_empty() || self.len() >= self.cap {
            Err(TrySendError::Full(value))
        } else {
            self.buf.push_back(value);
            self.hand_out(wakes);
            Ok(())
        }
    }

    /// Polls a send.
    #[inline]
    pub(crate) fn poll_send(
        &mut self,
        state: &mut SendState<T>,
        waker: &mut NewWaker<'_>,
        wakes: &mut Wakes,
    ) -> Poll<Result<(), SendError<T>>> {
        match state {
            SendState::Idle(value) => {
                let value = value
                    .take()
                    .expect("send state holds its value until tried");
                match self.try_send(value, wakes) {
                    Ok(()) => {
                        *state = SendState::Done;
                        Poll::Ready(Ok(()))
                    }
                    Err(TrySendError::Closed(v)) => {
                        *state = SendState::Done;
                        Poll::Ready(Err(SendError(v)))
                    }
                    Err(TrySendError::Full(v)) => {
                        let key = self.send_waiters.insert(SendWaiter {
                            value: Some(v),
                            waker: Some(waker.take()),
                        });
                        self.send_queue.push_back(key);
                        *state = SendState::Waiting(key);
                        Poll::Pending
                    }
                }
            }
            SendState::Waiting(key) => {
                let key = *key;
                let w = &mut self.send_waiters[key];
                if w.value.is_none() {
                    // A receiver moved our value into the buffer.
                    let w = self.send_waiters.remove(key);
                    wakes.retire(w.waker);
                    *state = SendState::Done;
                    Poll::Ready(Ok(()))
                } else if self.closed {
                    let v = w.value.take().expect("checked above");
                    let w = self.send_waiters.remove(key);
                    wakes.retire(w.waker);
                    self.send_queue.retain(|&k| k != key);
                    *state = SendState::Done;
                    Poll::Ready(Err(SendError(v)))
                } else {
                    waker.store(&mut w.waker, wakes);
                    Poll::Pending
                }
            }
            SendState::Done => panic!("send future polled after it completed"),
        }
    }

    /// A send future is dropped: unpark its value (returned, for the caller to drop after
    /// unlocking, with its waker in `wakes`). A value already moved into the buffer stays
    /// sent. Only a waiting send has anything to undo ([`SendState::Waiting`]): callers skip
    /// the lock otherwise.
    pub(crate) fn drop_send(&mut self, state: &mut SendState<T>, wakes: &mut Wakes) -> Option<T> {
        if let SendState::Waiting(key) = *state {
            *state = SendState::Done;
            let w = self.send_waiters.remove(key);
            if w.value.is_some() {
                self.send_queue.retain(|&k| k != key);
            }
            wakes.retire(w.waker);
            w.value
        } else {
            None
        }
    }

    /// Takes the front item, refills the freed place from the oldest parked sender, and
    /// hands out what can be handed out.
    fn pop(&mut self, wakes: &mut Wakes) -> T {
        let v = self.buf.pop_front().expect("pop from a non-empty buffer");
        self.refill(wakes);
        self.hand_out(wakes);
        self.wake_all_if_ended(wakes);
        v
    }

    /// Refills from parked senders once half the capacity is free, then as far as it goes:
    /// a parked sender is woken once per half-buffer of items, not once per item (waking a
    /// thread is a syscall). Never after close: parked sends then fail and get their value
    /// back.
    fn refill(&mut self, wakes: &mut Wakes) {
        if !self.closed && self.cap - self.len() >= self.cap.div_ceil(2) {
            while self.len() < self.cap {
                let Some(key) = self.send_queue.pop_front() else {
                    break;
                };
                let w = &mut self.send_waiters[key];
                self.buf
                    .push_back(w.value.take().expect("queued senders hold their value"));
                wakes.add(w.waker.take());
            }
        }
    }

    /// A lone receiver reports `n` items taken ahead as delivered: their room is free.
    pub(crate) fn delivered_ahead(&mut self, n: usize, wakes: &mut Wakes) {
        if n == 0 {
            return;
        }
        self.ahead -= n;
        self.refill(wakes);
        self.hand_out(wakes);
    }

    /// Receives without a reservation: only items nobody is promised.
    pub(crate) fn try_recv(&mut self, wakes: &mut Wakes) -> Result<T, TryRecvError> {
        if self.buf.len() > self.reserved {
            Ok(self.pop(wakes))
        } else if self.closed && self.buf.is_empty() {
            Err(TryRecvError::Closed)
        } else {
            Err(TryRecvError::Empty)
        }
    }

    /// Polls a receive. A receive that completes leaves `waiter` as `None`: its future's
    /// drop then has nothing to undo.
    #[inline]
    pub(crate) fn poll_recv(
        &mut self,
        waiter: &mut Option<usize>,
        waker: &mut NewWaker<'_>,
        wakes: &mut Wakes,
    ) -> Poll<Option<T>> {
        let Some(key) = *waiter else {
            // Not waiting yet: take an unreserved item, or see the end, or queue up.
            if self.buf.len() > self.reserved {
                return Poll::Ready(Some(self.pop(wakes)));
            }
            if self.closed && self.buf.is_empty() {
                return Poll::Ready(None);
            }
            let key = self.recv_waiters.insert(RecvWaiter {
                waker: Some(waker.take()),
                state: RecvState::Queued,
            });
            self.recv_queue.push_back(key);
            *waiter = Some(key);
            return Poll::Pending;
        };
        match self.recv_waiters[key].state {
            RecvState::Reserved => {
                // Our item is waiting for us.
                let w = self.recv_waiters.remove(key);
                wakes.retire(w.waker);
                *waiter = None;
                self.reserved -= 1;
                Poll::Ready(Some(self.pop(wakes)))
            }
            // A queued receiver keeps its place instead of barging.
            RecvState::Queued => {
                if self.closed && self.buf.is_empty() {
                    // (A close wakes every queued receiver; this only guards that rule.)
                    self.forget_recv(waiter, wakes);
                    return Poll::Ready(None);
                }
                waker.store(&mut self.recv_waiters[key].waker, wakes);
                Poll::Pending
            }
            RecvState::Woken => {
                // Woken by a close (or a reservation passed on and taken meanwhile): not
                // queued, so it may take an unreserved item like a newcomer.
                if self.buf.len() > self.reserved {
                    wakes.retire(self.recv_waiters.remove(key).waker);
                    *waiter = None;
                    return Poll::Ready(Some(self.pop(wakes)));
                }
                if self.closed && self.buf.is_empty() {
                    self.forget_recv(waiter, wakes);
                    return Poll::Ready(None);
                }
                let w = &mut self.recv_waiters[key];
                waker.store(&mut w.waker, wakes);
                w.state = RecvState::Queued;
                self.recv_queue.push_front(key);
                Poll::Pending
            }
        }
    }

    /// After a receive that took an item: if `self` has one receiver only, moves up to
    /// `max - cache.len()` more unreserved items into that receiver's `cache`. With one
    /// receiver nobody else could take them; it then hands them out without the lock, and
    /// reports them delivered ([`delivered_ahead`](Self::delivered_ahead)) the next time it
    /// locks. Until then they count against the capacity as if still buffered, so senders
    /// see no looser back-pressure. Returns how many it moved.
    pub(crate) fn take_more(
        &mut self,
        cache: &mut VecDeque<T>,
        max: usize,
        wakes: &mut Wakes,
    ) -> usize {
        if self.receivers != 1 {
            return 0;
        }
        let n = (self.buf.len() - self.reserved).min(max.saturating_sub(cache.len()));
        if n == 0 {
            return 0;
        }
        // Reservations are a count, not particular items: what is left covers them. The
        // items stay counted against the capacity (`ahead`) until reported delivered, so
        // no parked sender is let in for them yet.
        cache.extend(self.buf.drain(..n));
        self.ahead += n;
        self.wake_all_if_ended(wakes);
        n
    }

    /// A receiver gives back items it took ahead ([`take_more`](Self::take_more)) but will
    /// not deliver (it is dropped, or cloned: the clone may want them): they go back to the
    /// front of the buffer, in order, and to waiting receivers.
    pub(crate) fn give_back(&mut self, cache: &mut VecDeque<T>, wakes: &mut Wakes) {
        if cache.is_empty() {
            return;
        }
        self.ahead -= cache.len();
        while let Some(v) = cache.pop_back() {
            self.buf.push_front(v);
        }
        self.hand_out(wakes);
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
    /// next waiting receiver. Only a waiting receive (`waiter` is `Some`) has anything to
    /// undo: callers skip the lock otherwise.
    pub(crate) fn drop_recv(&mut self, waiter: &mut Option<usize>, wakes: &mut Wakes) {
        if self.forget_recv(waiter, wakes) == Some(RecvState::Reserved) {
            self.reserved -= 1;
            self.hand_out(wakes);
        }
    }

    /// Closes the channel; `wakes` gets the waiters to wake: parked senders (their sends
    /// fail with their value) and, if nothing is left to drain, the waiting receivers.
    pub(crate) fn close(&mut self, wakes: &mut Wakes) {
        if self.closed {
            return;
        }
        self.closed = true;
        // Parked senders keep their slab entries (holding their values) until they poll.
        for key in self.send_queue.drain(..) {
            wakes.add(self.send_waiters[key].waker.take());
        }
        self.wake_all_if_ended(wakes);
    }

    pub(crate) fn add_sender(&mut self) {
        self.senders += 1;
    }

    pub(crate) fn add_receiver(&mut self) {
        self.receivers += 1;
    }

    /// The last sender going closes the channel (receivers drain, then see the end).
    pub(crate) fn remove_sender(&mut self, wakes: &mut Wakes) {
        self.senders -= 1;
        if self.senders == 0 {
            self.close(wakes);
        }
    }

    /// The last receiver going closes the channel; the buffered items, which nobody can
    /// receive anymore, are returned for the caller to drop after unlocking.
    pub(crate) fn remove_receiver(&mut self, wakes: &mut Wakes) -> VecDeque<T> {
        self.receivers -= 1;
        if self.receivers == 0 {
            self.close(wakes);
            self.reserved = 0;
            std::mem::take(&mut self.buf)
        } else {
            VecDeque::new()
        }
    }
}
