//! Ops: one io_uring operation as a future that owns everything the kernel touches.
//!
//! An [`Op`] holds its resources (buffers, addresses, paths) from creation until it completes;
//! its SQE is queued on the first poll, entered with the rest of the tick's submissions, and
//! its completion comes back through the driver with the op's key in `user_data`. The output
//! hands the resources back, so a buffer always returns to its owner, on error too:
//!
//! ```no_run
//! # async fn demo(stream: iomgr::net::TcpStream) -> std::io::Result<()> {
//! let buf = vec![0u8; 4096];
//! let (res, buf) = stream.read(buf).await; // the buffer went in and came back
//! let n = res?;
//! println!("{:?}", &buf[..n]);
//! # Ok(()) }
//! ```
//!
//! **Dropping an op in flight is safe.** Its resources move into the driver, an
//! `AsyncCancel` is queued, and they are dropped only when the kernel's last completion for
//! the op arrives. A descriptor produced by an abandoned accept or open is closed. Neither
//! path allocates once warm: cancelling moves the resources into a block recycled from the
//! thread's free lists.
//!
//! Bytes a cancelled read had already taken from a socket are lost with its buffer, as with
//! any completion-based I/O: cancel reads only when you are done with the stream, or bound
//! them with [`timeout`](crate::time::timeout) and treat expiry as the end of the stream.
//!
//! # Lifecycle
//!
//! Every state of an op, who owns its resources (the value implementing [`OpCode`]) there,
//! what the kernel may do with them, and what dropping the future does. The runtime's
//! io_uring driver keeps a table entry per op from its first poll: `Active` (with the op's
//! waker and the completions it has not taken yet) while the future lives, `Abandoned`
//! (with the resources) after it was dropped in flight.
//!
//! | state | resources owned by | the kernel | dropping the future |
//! |---|---|---|---|
//! | **unsubmitted**: made, not polled; no table entry | the op | knows nothing of it | drops them |
//! | **queued**: polled once; its SQE is in the SQ, not consumed yet | the op, pinned (the SQE points into it) | has not read the SQE | *withdraws* it: the SQE is rewritten as a `NOP`, the entry removed, the resources handed back through [`OpCode::not_submitted`] and dropped at once; the op never runs |
//! | **in the kernel**: the tick's `io_uring_enter` consumed the SQE | the op, pinned | may read and write them until the last CQE | *abandons* it: the resources move (into a recycled block) into the `Abandoned` entry, an `AsyncCancel` is queued, and they are dropped when the last CQE arrives; each descriptor its CQEs carry is closed |
//! | **completing**: took a CQE flagged `IORING_CQE_F_MORE` (given to [`OpCode::more`]) | the op, pinned | still may use them | as *in the kernel* |
//! | **done**: took its last CQE, or never reached the kernel | the output ([`OpCode::complete`] or [`OpCode::not_submitted`] hands them back) | is done with them | nothing left to do |
//!
//! How the driver's steps meet:
//!
//! - **Queueing** (`Driver::submit`, on the first poll) pushes the SQE into the SQ. A full SQ
//!   is handed to the kernel and the push retried; if the kernel refuses (a backed-up CQ),
//!   the op is answered at once through `not_submitted` with a `WouldBlock` error (a timer
//!   re-arms itself on the next tick instead: it must not fire early).
//! - **Submission** happens once per tick (`Driver::enter`): the kernel consumes the queued
//!   SQEs, reading then what it reads at submission (paths, addresses, `timespec`s, iovecs)
//!   and taking its own reference to each descriptor they name.
//! - **Dropping** an op never submits anything: an SQE the kernel has not consumed is
//!   withdrawn (so an op's memory is never read after it moved or was freed), one it has
//!   consumed is cancelled. An `AsyncCancel` that does not fit in the SQ waits in the
//!   driver's backlog and is queued again on every tick; the resources stay in the driver
//!   until the op's last CQE.
//! - **Completion** (`Driver::reap`) queues each CQE on its entry and wakes the future, which
//!   passes those flagged `F_MORE` to [`OpCode::more`] and the last one to
//!   [`OpCode::complete`]; the entry leaves the table with the last one.
//! - **Flushing** (`Driver::flush`: submit now, best effort) happens only when a runtime
//!   leaves `block_on` or is dropped, so that nothing waits in the SQ of a runtime that is
//!   not running.
//! - **Linking** ([`Op::timeout`]) queues the op's SQE with `IOSQE_IO_LINK` and a
//!   `LINK_TIMEOUT` SQE right after it, making room for both first so that one
//!   `io_uring_enter` consumes the pair; withdrawing the op withdraws its timeout too. An op
//!   never sets `IO_LINK` itself (see [`OpCode`]'s contract): only the driver links.
//! - **Forgetting** an op (`mem::forget`) leaks it: its memory stays valid, so the kernel
//!   may still use it, and its entry stays in the table. It also ends the op's borrow of its
//!   stream or file. Closing that object then withdraws the queued SQEs that name its
//!   descriptor, and if another ring may still hold one, closes the number only after that
//!   ring has submitted: the forgotten op's I/O never reaches a socket or file that reuses
//!   the number.
//! - **Lost completions** (the kernel reports `EBADR`): every op the kernel may still owe a
//!   completion is probed with an `AsyncCancel`. One the kernel no longer knows in two
//!   probes a tick apart lost its completion: its future gets an error that says so (an
//!   abandoned op's resources are dropped). One the probe cancelled gets an error asking
//!   for a retry (a timer re-arms for the time left).
//!
//! Multishot opcodes (one SQE, a stream of CQEs) use [`OpStream`] and [`Multishot`] instead
//! of `Op` and `OpCode`: the same states, with one item per CQE.

use std::fmt;
use std::future::Future;
use std::io;
use std::marker::{PhantomData, PhantomPinned};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, ready};

use io_uring::{squeue, types};

use crate::driver::{Feature, LOST, SWEPT, poll_completion};
use crate::runtime::waker::is_own;
use crate::runtime::{Shared, current};
use crate::util::gen_slab::Key;

/// One io_uring operation: how to build its SQE and how to turn its completions into output.
///
/// Implement it to add an opcode iomgr does not wrap; the built-in ops live in
/// [`net`](crate::net), [`fs`](crate::fs) and [`time`](crate::time).
///
/// **Completions.** An op's resources are held (by its future, or by the driver once the
/// future is dropped) until its *last* completion: the CQE without `IORING_CQE_F_MORE`.
/// A single-shot opcode posts exactly one CQE, which goes to [`complete`](Self::complete).
/// An opcode that posts more for one SQE (`SEND_ZC`: the result, then a notification once the
/// kernel no longer reads the buffer) gets each earlier CQE in [`more`](Self::more), in order,
/// and the last one in `complete`, so the buffer is handed back only when the kernel is done
/// with it. For a stream of results (multishot receive or accept) use [`Multishot`].
///
/// # Safety
/// Every pointer placed in the SQE must stay valid as long as the kernel may use it:
/// - memory the kernel reads **at submission** (paths, socket addresses to connect to,
///   `timespec`s, iovec arrays; the kernel copies them with `IORING_FEAT_SUBMIT_STABLE`) may
///   live inside `self`: the op is pinned from its first poll until it is dropped, and a drop
///   before submission withdraws the SQE, so the kernel never reads it after the op moved;
/// - memory the kernel reads or writes **until the last completion** (data buffers,
///   addresses an `accept` or `recvmsg` fills in, `statx` output) must not move when `self`
///   moves: keep it on the heap (a `Vec`, a `Box`) or in `'static` memory, because an
///   abandoned op's value is moved into the driver until its last completion arrives;
/// - a descriptor the SQE names must stay open until the op completes; borrow the object
///   that owns it for the op's lifetime, as the built-in ops do (iomgr's sockets and files
///   withdraw a forgotten op's queued SQE when they close). The SQE must not set
///   `IOSQE_IO_LINK`, `IOSQE_IO_HARDLINK`, `IOSQE_IO_DRAIN` or `IOSQE_ASYNC`: the kernel
///   resolves the descriptor of such an SQE after submission, not during it.
pub unsafe trait OpCode: 'static {
    /// What the op's future resolves to (usually `(io::Result<T>, resources)`).
    type Output;

    /// Whether a successful result is a new file descriptor that must be closed if nobody
    /// takes it (accept, open, socket).
    const RETURNS_FD: bool = false;

    /// Builds the SQE; `user_data` is set by the driver. Called once, on the first poll.
    fn build(&mut self) -> squeue::Entry;

    /// A completion flagged `IORING_CQE_F_MORE`: more follow for the same SQE, and the
    /// kernel may still use the op's memory. The default ignores it.
    fn more(&mut self, result: io::Result<u32>, flags: u32) {
        let _ = (result, flags);
    }

    /// Turns the last completion (a negative result is already an `io::Error`) into the output.
    fn complete(self, result: io::Result<u32>, flags: u32) -> Self::Output;

    /// The SQE never reached the kernel (no runtime, a saturated ring, or the future was
    /// dropped before submission): nothing of `self` was used. The default is
    /// `complete(Err(error), 0)`; an op that gave something away in [`build`](Self::build)
    /// (a descriptor to close, say) takes it back here.
    fn not_submitted(self, error: io::Error) -> Self::Output
    where
        Self: Sized,
    {
        self.complete(Err(error), 0)
    }
}

enum State {
    Unsubmitted,
    InFlight { shared: Rc<Shared>, key: Key },
    Failed(io::Error),
    Done,
}

/// The future of one io_uring operation; see the [module docs](self).
///
/// `'a` is the borrow of the object the op works on (a stream, a file), so the object cannot
/// be closed while its op is alive. The op is `!Unpin`: once polled, it stays put until dropped.
#[must_use = "an op does nothing unless awaited"]
pub struct Op<'a, T: OpCode> {
    data: Option<T>,
    state: State,
    _borrow: PhantomData<(&'a (), *const ())>,
    _pinned: PhantomPinned,
}

impl<T: OpCode> Op<'_, T> {
    /// An op that submits `data` when first polled.
    pub fn new(data: T) -> Self {
        Op {
            data: Some(data),
            state: State::Unsubmitted,
            _borrow: PhantomData,
            _pinned: PhantomPinned,
        }
    }

    /// An op that fails with `error` when first polled, handing its resources back.
    pub fn fail(data: T, error: io::Error) -> Self {
        Op {
            data: Some(data),
            state: State::Failed(error),
            _borrow: PhantomData,
            _pinned: PhantomPinned,
        }
    }

    fn take_data(&mut self) -> T {
        self.state = State::Done;
        self.data.take().expect("op polled after it completed")
    }
}

fn no_runtime() -> io::Error {
    io::Error::other(
        "no iomgr runtime is running on this thread: await I/O inside Runtime::block_on",
    )
}

/// Why the driver, not the kernel, ended an op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// Dropped before its SQE reached the kernel (what `not_submitted` gets then).
    Withdrawn,
    /// The kernel lost its completion.
    Lost,
    /// Cancelled by the driver while it looked for lost completions.
    Swept,
}

impl fmt::Display for Ended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ended::Withdrawn => "the op was dropped before it was submitted",
            Ended::Lost => {
                "io_uring lost this operation's completion (the kernel reported EBADR: it \
                 could not allocate memory for an overflowing completion queue); whether it \
                 took effect is unknown"
            }
            Ended::Swept => {
                "io_uring lost completions (the kernel reported EBADR), and iomgr cancelled \
                 this operation to find out which; it did not take effect: retry it"
            }
        })
    }
}

impl std::error::Error for Ended {}

impl Ended {
    fn error(self) -> io::Error {
        let kind = match self {
            Ended::Lost => io::ErrorKind::Other,
            Ended::Withdrawn | Ended::Swept => io::ErrorKind::Interrupted,
        };
        io::Error::new(kind, self)
    }
}

fn withdrawn() -> io::Error {
    Ended::Withdrawn.error()
}

/// Whether `error` says the op's completion was lost, or that the driver cancelled the op
/// while looking for lost completions: nothing about the op itself, worth a retry.
pub(crate) fn lost_or_swept(error: &io::Error) -> bool {
    error
        .get_ref()
        .and_then(|e| e.downcast_ref::<Ended>())
        .is_some_and(|e| matches!(e, Ended::Lost | Ended::Swept))
}

/// A completion's result as the op sees it.
#[inline]
pub(crate) fn cqe_result(result: i32) -> io::Result<u32> {
    match result {
        LOST => Err(Ended::Lost.error()),
        SWEPT => Err(Ended::Swept.error()),
        r if r < 0 => Err(io::Error::from_raw_os_error(-r)),
        r => Ok(r as u32),
    }
}

impl<T: OpCode> Future for Op<'_, T> {
    type Output = T::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T::Output> {
        self.poll_linked(cx, None)
    }
}

impl<T: OpCode> Op<'_, T> {
    /// Polls the op; on the first poll, `link` (a timeout and its duration) is submitted as
    /// a `LINK_TIMEOUT` linked to the op's SQE, and an op it cancels completes with
    /// `TimedOut`.
    fn poll_linked(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        link: Option<(&types::Timespec, std::time::Duration)>,
    ) -> Poll<T::Output> {
        // SAFETY: nothing is moved out of the pinned op while the kernel may use it: `data`
        // is taken out only once the op has completed (or never reached the kernel).
        let this = unsafe { self.get_unchecked_mut() };
        // Loops once at most: after a submit with a foreign waker, to register it.
        loop {
            match &this.state {
                State::Unsubmitted => {
                    let Some(shared) = current() else {
                        return Poll::Ready(this.take_data().not_submitted(no_runtime()));
                    };
                    let sqe = this
                        .data
                        .as_mut()
                        .expect("op polled after it completed")
                        .build();
                    let mut driver = shared.driver.borrow_mut();
                    let submitted = match link {
                        // SAFETY: the OpCode contract keeps the SQE's memory valid: the op is
                        // pinned from now on, and its drop withdraws the SQE or hands the
                        // resources to the driver.
                        None => unsafe { driver.submit(sqe, cx.waker()) },
                        Some((timespec, _)) => {
                            match driver.features().require(Feature::LinkTimeout) {
                                // SAFETY: as above; the timespec lives in the pinned `Timed` that
                                // polls us, so it is valid until the SQEs are submitted (the kernel
                                // copies it then), and a drop before that withdraws both SQEs.
                                Ok(()) => unsafe {
                                    driver.submit_linked(sqe, timespec, cx.waker())
                                },
                                Err(e) => Err(e),
                            }
                        }
                    };
                    drop(driver);
                    match submitted {
                        Ok(key) => {
                            crate::trace::op_submitted(std::any::type_name::<T>(), key.to_u64());
                            this.state = State::InFlight { shared, key };
                            if is_own(cx.waker()) {
                                return Poll::Pending;
                            }
                            // The driver did not clone a foreign waker (user code): the
                            // in-flight path registers it.
                        }
                        Err(e) => return Poll::Ready(this.take_data().not_submitted(e)),
                    }
                }
                State::InFlight { shared, key } => loop {
                    let cqe = ready!(poll_completion(&shared.driver, *key, cx));
                    let result = cqe_result(cqe.result);
                    if cqe.more() {
                        let data = this.data.as_mut().expect("op polled after it completed");
                        data.more(result, cqe.flags);
                        continue;
                    }
                    crate::trace::op_completed(
                        std::any::type_name::<T>(),
                        key.to_u64(),
                        cqe.result,
                    );
                    let result = match (result, link) {
                        (Err(e), Some((_, after))) if e.raw_os_error() == Some(libc::ECANCELED) => {
                            Err(linked::timed_out(after))
                        }
                        (result, _) => result,
                    };
                    return Poll::Ready(this.take_data().complete(result, cqe.flags));
                },
                State::Failed(_) => {
                    let State::Failed(error) = std::mem::replace(&mut this.state, State::Done)
                    else {
                        unreachable!()
                    };
                    return Poll::Ready(this.take_data().not_submitted(error));
                }
                State::Done => panic!("op polled after it completed"),
            }
        }
    }
}

impl<T: OpCode> Drop for Op<'_, T> {
    fn drop(&mut self) {
        // The common case, an op that completed (or never started), has nothing to undo.
        if !matches!(self.state, State::InFlight { .. }) {
            return;
        }
        let State::InFlight { shared, key } = std::mem::replace(&mut self.state, State::Done)
        else {
            return;
        };
        let Some(data) = self.data.take() else {
            return;
        };
        let Ok(mut driver) = shared.driver.try_borrow_mut() else {
            // Only reachable if an op is dropped from inside the driver, which never runs user
            // code; never free memory the kernel may hold.
            std::mem::forget(data);
            return;
        };
        if driver.withdraw(key) {
            // The kernel never saw the SQE: nothing of `data` is in use.
            drop(driver);
            drop(data.not_submitted(withdrawn()));
            return;
        }
        let resources = crate::driver::Resources::new(data);
        let finished = driver.abandon(key, resources, T::RETURNS_FD);
        drop(driver);
        drop(finished);
    }
}

impl<T: OpCode> fmt::Debug for Op<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Unsubmitted => "unsubmitted",
            State::InFlight { .. } => "in flight",
            State::Failed(_) => "failed",
            State::Done => "done",
        };
        f.debug_struct("Op")
            .field("op", &std::any::type_name::<T>())
            .field("state", &state)
            .finish()
    }
}

mod fixed;
mod fs;
mod linked;
mod multishot;
mod provided;
mod rw;
mod socket;
mod timeout;
mod vectored;
mod zc;

pub(crate) use fixed::Target;
pub use fixed::{FixedRead, FixedWrite};
pub use fs::{Close, Fsync, OpenAt, Statx};
pub use linked::Timed;
pub use multishot::{Multishot, OpStream};
pub use provided::{AcceptMulti, RecvEvent, RecvMulti};
pub use rw::{ReadAt, ReadvAt, Recv, Send, WriteAt, WritevAt};
pub use socket::{Accept, Connect, RecvFrom, SendTo, Shutdown};
pub use timeout::Timeout;
pub(crate) use vectored::{MsgVec, RecvMsgVec, SendMsgVec, advance_read, advance_write};
pub use zc::SendZc;
