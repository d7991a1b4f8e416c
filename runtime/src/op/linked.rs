//! Linked timeouts: [`Op::timeout`] and its future, [`Timed`].

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use io_uring::types;

use super::{Op, OpCode};

impl<'a, T: OpCode> Op<'a, T> {
    /// Bounds the op by `duration`, with a linked `IORING_OP_LINK_TIMEOUT`: if it has not
    /// completed by then, the kernel cancels it and it completes with a `TimedOut` error
    /// (handing its buffer back, as on any error).
    ///
    /// [`Op::timeout`] bounds one op in the kernel, not in user space: its SQE is queued with
    /// `IOSQE_IO_LINK` and followed by a `LINK_TIMEOUT` SQE, both in the same submission (the
    /// driver makes room for the pair first, so a nearly full SQ never splits them). If the
    /// time runs out first, the kernel cancels the op, which completes like any other: with an
    /// error (`TimedOut` here) and its resources, so a read's buffer comes back.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// # async fn demo(stream: iomgr::net::TcpStream) {
    /// let (res, buf) = stream.read(vec![0u8; 4096]).timeout(Duration::from_secs(5)).await;
    /// match res {
    ///     Ok(n) => println!("{:?}", &buf[..n]),
    ///     Err(e) if e.kind() == std::io::ErrorKind::TimedOut => println!("the peer is silent"),
    ///     Err(e) => println!("{e}"),
    /// }
    /// # }
    /// ```
    ///
    /// Compared with [`time::timeout`](crate::time::timeout), which races any future against a
    /// separate timer: one op, one submission, and the buffer is never lost, because the op is
    /// not dropped but completes.
    ///
    /// A kernel without linked timeouts (before Linux 5.5) makes the op fail with an
    /// `Unsupported` error that says so.
    pub fn timeout(self, duration: Duration) -> Timed<'a, T> {
        let secs = duration.as_secs().min(i64::MAX as u64);
        Timed {
            op: self,
            timespec: types::Timespec::new()
                .sec(secs)
                .nsec(duration.subsec_nanos()),
            duration,
        }
    }
}

/// An [`Op`] bounded by a linked timeout; see [`Op::timeout`].
#[must_use = "an op does nothing unless awaited"]
pub struct Timed<'a, T: OpCode> {
    op: Op<'a, T>,
    /// Read by the kernel when the pair is submitted; lives here, pinned, until then.
    timespec: types::Timespec,
    duration: Duration,
}

impl<T: OpCode> Future for Timed<'_, T> {
    type Output = T::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T::Output> {
        // SAFETY: structural pinning: `op` is never moved out of the pinned `Timed`, and
        // `timespec` stays put with it (the kernel reads it at submission).
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: `op` is pinned because `self` is.
        let op = unsafe { Pin::new_unchecked(&mut this.op) };
        op.poll_linked(cx, Some((&this.timespec, this.duration)))
    }
}

impl<T: OpCode> fmt::Debug for Timed<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timed")
            .field("op", &self.op)
            .field("duration", &self.duration)
            .finish()
    }
}

/// The error of an op whose linked timeout fired.
pub(super) fn timed_out(after: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("the operation did not complete within {after:?}: its linked timeout fired"),
    )
}
