//! The multishot ops: receive into a provided-buffer ring, and accept.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::task::Waker;

use io_uring::{cqueue, opcode, squeue, types};

use super::Multishot;
use crate::buf::{RingBuf, RingInner};
use crate::driver::{Cqe, Resources};

/// What one completion of a multishot receive says.
#[derive(Debug)]
pub enum RecvEvent {
    /// Data, in a buffer of the ring.
    Data(RingBuf),
    /// The peer closed its side (a 0-byte receive on a stream socket), or an empty
    /// datagram arrived (on a datagram socket).
    Empty,
    /// The ring had no buffer for data that arrived (`ENOBUFS`): the data is still in the
    /// socket, and the receive has ended.
    NoBuffers,
    /// The receive failed.
    Error(io::Error),
}

/// Multishot receive into a provided-buffer ring (`IORING_OP_RECV` with
/// `IORING_RECV_MULTISHOT` and `IOSQE_BUFFER_SELECT`): one completion per chunk of data,
/// each naming the buffer the kernel filled.
#[derive(Debug)]
pub struct RecvMulti {
    fd: RawFd,
    ring: Rc<RingInner>,
}

impl RecvMulti {
    pub(crate) fn new(fd: RawFd, ring: Rc<RingInner>) -> Self {
        RecvMulti { fd, ring }
    }

    /// Gives back the buffer a completion of an abandoned receive carries.
    pub(crate) fn reclaim(resources: &mut Resources, cqe: Cqe, wakers: &mut Vec<Waker>) {
        if let Some(op) = resources.downcast_mut::<RecvMulti>()
            && let Some(bid) = cqueue::buffer_select(cqe.flags)
        {
            op.ring.reclaim(bid, wakers);
        }
    }
}

// SAFETY: the op points at no memory of its own; the kernel writes into the ring's buffers,
// which live on the heap as long as a count of them does (the op holds one until its last
// completion, also when abandoned).
unsafe impl Multishot for RecvMulti {
    type Item = RecvEvent;

    fn build(&mut self) -> squeue::Entry {
        opcode::RecvMulti::new(types::Fd(self.fd), self.ring.bgid()).build()
    }

    fn next(&mut self, result: io::Result<u32>, flags: u32) -> RecvEvent {
        let chunk = match cqueue::buffer_select(flags) {
            Some(bid) => Some(self.ring.take(bid, *result.as_ref().unwrap_or(&0))),
            None => None,
        };
        match (result, chunk) {
            (Ok(0), _) => RecvEvent::Empty, // a buffer taken for nothing goes back at once
            (Ok(_), Some(Ok(chunk))) => RecvEvent::Data(chunk),
            (Ok(_), Some(Err(e))) => RecvEvent::Error(e),
            (Ok(n), None) => RecvEvent::Error(io::Error::other(format!(
                "a multishot receive of {n} bytes named no buffer"
            ))),
            (Err(e), _) if e.raw_os_error() == Some(libc::ENOBUFS) => RecvEvent::NoBuffers,
            (Err(e), _) => RecvEvent::Error(e),
        }
    }
}

/// Multishot accept (`IORING_OP_ACCEPT` with `IORING_ACCEPT_MULTISHOT`): one completion per
/// connection, each a new close-on-exec descriptor.
#[derive(Debug)]
pub struct AcceptMulti {
    fd: RawFd,
}

impl AcceptMulti {
    pub(crate) fn new(fd: RawFd) -> Self {
        AcceptMulti { fd }
    }
}

// SAFETY: multishot accept points at no memory (no address buffer).
unsafe impl Multishot for AcceptMulti {
    type Item = io::Result<OwnedFd>;
    const RETURNS_FD: bool = true;

    fn build(&mut self) -> squeue::Entry {
        opcode::AcceptMulti::new(types::Fd(self.fd))
            .flags(libc::SOCK_CLOEXEC)
            .build()
    }

    fn next(&mut self, result: io::Result<u32>, _flags: u32) -> Self::Item {
        // SAFETY: a successful accept is a new descriptor that the item now owns.
        result.map(|fd| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
    }
}
