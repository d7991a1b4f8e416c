//! Zero-copy send.

use std::io;
use std::os::fd::RawFd;

use io_uring::{cqueue, opcode, squeue, types};

use super::OpCode;
use crate::buf::{BufResult, IoBuf};

/// Send a buffer without copying it into the kernel (`IORING_OP_SEND_ZC`, with
/// `MSG_NOSIGNAL`).
///
/// The kernel posts two completions: the send's result (flagged `IORING_CQE_F_MORE`), and a
/// notification once the network stack no longer reads the buffer, which may be much later
/// (when the peer has acknowledged the data). The op completes, and hands the buffer back,
/// only at the notification: until then the kernel may still read the memory.
#[derive(Debug)]
pub struct SendZc<B> {
    fd: RawFd,
    buf: B,
    /// The send's result, from the first completion.
    sent: Option<io::Result<u32>>,
}

impl<B: IoBuf> SendZc<B> {
    pub(crate) fn new(fd: RawFd, buf: B) -> Self {
        SendZc {
            fd,
            buf,
            sent: None,
        }
    }
}

// SAFETY: the buffer's memory is stable (IoBuf) and owned by the op until its last
// completion (the notification), also when the op is abandoned.
unsafe impl<B: IoBuf> OpCode for SendZc<B> {
    type Output = BufResult<usize, B>;

    fn build(&mut self) -> squeue::Entry {
        let len = u32::try_from(self.buf.bytes_init()).unwrap_or(u32::MAX);
        opcode::SendZc::new(types::Fd(self.fd), self.buf.stable_ptr(), len)
            .flags(libc::MSG_NOSIGNAL)
            .build()
    }

    fn more(&mut self, result: io::Result<u32>, flags: u32) {
        if !cqueue::notif(flags) {
            self.sent = Some(result);
        }
    }

    fn complete(self, result: io::Result<u32>, flags: u32) -> Self::Output {
        // The last completion is the notification when the send got that far; otherwise
        // (an error before any data was queued) it is the send's own result.
        let result = match self.sent {
            Some(sent) if cqueue::notif(flags) => sent,
            _ => result,
        };
        (result.map(|n| n as usize), self.buf)
    }
}
