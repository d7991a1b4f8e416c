//! Streams over multishot ops: received chunks from a provided-buffer ring, and accepted
//! connections. Each keeps one op armed in the kernel and arms a new one when the kernel
//! ends it.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{OwnedFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker, ready};

use futures_core::Stream;

use crate::buf::{BufRing, RingBuf, RingInner};
use crate::driver::Feature;
use crate::op::{AcceptMulti, OpStream, RecvEvent, RecvMulti};
use crate::runtime::current;

/// Where a multishot stream is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Not polled yet: the runtime and its kernel are checked at the first poll.
    Start,
    /// An op is armed (or about to be submitted by its first poll).
    Armed,
    /// The op ended; arm a new one at the next poll.
    Rearm,
    /// The ring was empty when data came (`ENOBUFS`): wait until a buffer is back.
    WaitBuffers,
    /// Done: the peer closed, or an error ended it.
    Ended,
}

/// Whether an op that failed this way should just be armed again (a saturated ring, a
/// cancellation by the driver's own sweep).
fn passing(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// The stream of chunks [`TcpStream::recv_multishot`](crate::net::TcpStream::recv_multishot)
/// returns: one multishot receive into a [`BufRing`], armed again whenever the kernel ends
/// it, until the peer closes.
///
/// Items are `io::Result<RingBuf>`: a chunk of data in a buffer of the ring, which goes back
/// to the ring when the chunk is dropped. When every buffer is out, the stream waits for one
/// to come back and re-arms: no data is lost and the order is kept. A 0-byte receive (the
/// peer closed its side) ends the stream; an error is an item, after which the stream ends
/// (a passing failure, such as a saturated ring, is retried instead). On a datagram socket
/// each chunk is one datagram (cut to the buffer size), and empty datagrams are skipped.
///
/// Dropping the stream in flight cancels the receive; chunks it had received and not yet
/// yielded, and any the kernel still delivers, go back to the ring, whose memory lives until
/// the kernel's last completion.
///
/// The stream is `!Unpin`: pin it (`std::pin::pin!`) before polling.
#[must_use = "streams do nothing unless polled"]
pub struct RecvStream<'a> {
    op: OpStream<'a, RecvMulti>,
    fd: RawFd,
    ring: Rc<RingInner>,
    datagram: bool,
    phase: Phase,
    /// The waker on the ring's waiting list, while in `WaitBuffers`.
    waiting: Option<Waker>,
}

impl<'a> RecvStream<'a> {
    pub(crate) fn new(fd: RawFd, ring: &BufRing, datagram: bool) -> Self {
        let ring = ring.inner().clone();
        RecvStream {
            op: Self::op(fd, &ring),
            fd,
            ring,
            datagram,
            phase: Phase::Start,
            waiting: None,
        }
    }

    fn op(fd: RawFd, ring: &Rc<RingInner>) -> OpStream<'a, RecvMulti> {
        OpStream::with_reclaim(RecvMulti::new(fd, ring.clone()), RecvMulti::reclaim)
    }

    /// The next chunk; `None` once the peer has closed (or after an error).
    pub async fn next(mut self: Pin<&mut Self>) -> Option<io::Result<RingBuf>> {
        std::future::poll_fn(|cx| self.as_mut().poll_next(cx)).await
    }

    fn check(&self) -> io::Result<()> {
        let shared = current().ok_or_else(|| {
            io::Error::other(
                "no iomgr runtime is running on this thread: poll the stream inside \
                 Runtime::block_on",
            )
        })?;
        if shared.id != self.ring.runtime_id() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "this BufRing was registered with another runtime: each runtime needs its own",
            ));
        }
        shared
            .driver
            .borrow()
            .features()
            .require(Feature::RecvMultishot)
    }
}

impl Stream for RecvStream<'_> {
    type Item = io::Result<RingBuf>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // SAFETY: structural pinning: `op` is never moved out of the pinned stream (it is
        // only replaced in place, through `Pin::set`); the other fields are plain data.
        let this = unsafe { self.get_unchecked_mut() };
        loop {
            // SAFETY: `op` is pinned because `self` is.
            let mut op = unsafe { Pin::new_unchecked(&mut this.op) };
            match this.phase {
                Phase::Ended => return Poll::Ready(None),
                Phase::Start => {
                    if let Err(e) = this.check() {
                        this.phase = Phase::Ended;
                        return Poll::Ready(Some(Err(e)));
                    }
                    this.phase = Phase::Armed;
                }
                Phase::Rearm => {
                    op.set(Self::op(this.fd, &this.ring));
                    this.phase = Phase::Armed;
                }
                Phase::WaitBuffers => {
                    if this.ring.in_ring() == 0 {
                        // Registered again at every poll (the list keeps one entry per
                        // waker): another stream of the same task may have taken the
                        // entry off when it stopped waiting.
                        match &this.waiting {
                            Some(w) if w.will_wake(cx.waker()) => {}
                            _ => {
                                if let Some(old) = this.waiting.take() {
                                    this.ring.stop_waiting(&old);
                                }
                                this.waiting = Some(cx.waker().clone());
                            }
                        }
                        this.ring.wait_for_buffer(cx.waker());
                        return Poll::Pending;
                    }
                    if let Some(old) = this.waiting.take() {
                        // Woken (and so off the list), or found a buffer without waiting
                        // for our turn: either way, no later wake must be spent on us.
                        this.ring.stop_waiting(&old);
                    }
                    this.phase = Phase::Rearm;
                }
                Phase::Armed => match ready!(op.as_mut().poll_next(cx)) {
                    // The kernel ended the receive without a reason: arm another.
                    None => this.phase = Phase::Rearm,
                    Some(RecvEvent::Data(chunk)) => return Poll::Ready(Some(Ok(chunk))),
                    Some(RecvEvent::Empty) if this.datagram => {}
                    Some(RecvEvent::Empty) => {
                        this.phase = Phase::Ended;
                        return Poll::Ready(None);
                    }
                    Some(RecvEvent::NoBuffers) => this.phase = Phase::WaitBuffers,
                    Some(RecvEvent::Error(e)) if passing(&e) => {
                        // Let the runtime reap (and make room) before arming again.
                        this.phase = Phase::Rearm;
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                    Some(RecvEvent::Error(e)) => {
                        this.phase = Phase::Ended;
                        return Poll::Ready(Some(Err(e)));
                    }
                },
            }
        }
    }
}

impl Drop for RecvStream<'_> {
    fn drop(&mut self) {
        if let Some(waker) = self.waiting.take() {
            self.ring.stop_waiting(&waker);
        }
    }
}

impl fmt::Debug for RecvStream<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvStream")
            .field("fd", &self.fd)
            .field("group_id", &self.ring.bgid())
            .field("phase", &self.phase)
            .finish()
    }
}

/// A socket type a listener's accepted descriptors become.
pub trait Accepted: Sized + sealed::Sealed {
    #[doc(hidden)]
    fn from_accepted(fd: OwnedFd) -> Self;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::net::TcpStream {}
    impl Sealed for crate::net::UnixStream {}
}

/// The stream of connections [`TcpListener::incoming`](crate::net::TcpListener::incoming)
/// (or [`UnixListener::incoming`](crate::net::UnixListener::incoming)) returns: one
/// multishot accept, armed again whenever the kernel ends it.
///
/// Items are `io::Result<S>`. An error (out of descriptors, say) is an item, and the next
/// poll arms a new accept; an error that says the listener itself is unusable
/// (`EBADF`, `EINVAL`, `ENOTSOCK`) ends the stream. Dropping the stream cancels the accept;
/// connections the kernel accepts meanwhile are closed, never leaked.
///
/// The stream is `!Unpin`: pin it (`std::pin::pin!`) before polling.
#[must_use = "streams do nothing unless polled"]
pub struct Incoming<'a, S> {
    op: OpStream<'a, AcceptMulti>,
    fd: RawFd,
    phase: Phase,
    _socket: PhantomData<fn() -> S>,
}

impl<'a, S: Accepted> Incoming<'a, S> {
    pub(crate) fn new(fd: RawFd) -> Self {
        Incoming {
            op: OpStream::new(AcceptMulti::new(fd)),
            fd,
            phase: Phase::Start,
            _socket: PhantomData,
        }
    }

    /// The next connection.
    pub async fn next(mut self: Pin<&mut Self>) -> Option<io::Result<S>> {
        std::future::poll_fn(|cx| self.as_mut().poll_next(cx)).await
    }
}

/// Whether an accept error means the listener cannot accept at all.
fn fatal_accept_error(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EBADF | libc::EINVAL | libc::ENOTSOCK | libc::EOPNOTSUPP)
    ) || error.kind() == io::ErrorKind::Unsupported
}

impl<S: Accepted> Stream for Incoming<'_, S> {
    type Item = io::Result<S>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // SAFETY: structural pinning, as in `RecvStream::poll_next`.
        let this = unsafe { self.get_unchecked_mut() };
        loop {
            // SAFETY: `op` is pinned because `self` is.
            let mut op = unsafe { Pin::new_unchecked(&mut this.op) };
            match this.phase {
                Phase::Ended => return Poll::Ready(None),
                Phase::Start => {
                    let checked = match current() {
                        Some(shared) => shared
                            .driver
                            .borrow()
                            .features()
                            .require(Feature::AcceptMultishot),
                        None => Ok(()), // the op itself reports it
                    };
                    if let Err(e) = checked {
                        this.phase = Phase::Ended;
                        return Poll::Ready(Some(Err(e)));
                    }
                    this.phase = Phase::Armed;
                }
                Phase::Rearm | Phase::WaitBuffers => {
                    op.set(OpStream::new(AcceptMulti::new(this.fd)));
                    this.phase = Phase::Armed;
                }
                Phase::Armed => match ready!(op.as_mut().poll_next(cx)) {
                    None => this.phase = Phase::Rearm,
                    Some(Ok(fd)) => return Poll::Ready(Some(Ok(S::from_accepted(fd)))),
                    Some(Err(e)) if passing(&e) => {
                        this.phase = Phase::Rearm;
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                    Some(Err(e)) => {
                        this.phase = if fatal_accept_error(&e) {
                            Phase::Ended
                        } else {
                            Phase::Rearm
                        };
                        return Poll::Ready(Some(Err(e)));
                    }
                },
            }
        }
    }
}

impl<S> fmt::Debug for Incoming<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Incoming")
            .field("fd", &self.fd)
            .field("phase", &self.phase)
            .finish()
    }
}
