//! Reads and writes: `recv`/`send` on sockets, `read`/`write` at an offset on files, and
//! their vectored forms.

use std::io;
use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types};

use super::OpCode;
use crate::buf::{
    BufResult, IoBuf, IoBufMut, IoVecBuf, IoVecBufMut, read_iovecs, set_init_vectored, write_iovecs,
};

/// Receive into a buffer (`IORING_OP_RECV`); resolves to the byte count (0 at end of stream).
#[derive(Debug)]
pub struct Recv<B> {
    fd: RawFd,
    buf: B,
}

impl<B: IoBufMut> Recv<B> {
    pub(crate) fn new(fd: RawFd, buf: B) -> Self {
        Recv { fd, buf }
    }
}

// SAFETY: the buffer's memory is stable (IoBufMut) and owned by the op until completion.
unsafe impl<B: IoBufMut> OpCode for Recv<B> {
    type Output = BufResult<usize, B>;

    fn build(&mut self) -> squeue::Entry {
        let len = clamp_len(self.buf.bytes_total());
        opcode::Recv::new(types::Fd(self.fd), self.buf.stable_mut_ptr(), len).build()
    }

    fn complete(mut self, result: io::Result<u32>, _flags: u32) -> Self::Output {
        let result = result.map(|n| n as usize);
        if let Ok(n) = result {
            // SAFETY: the kernel initialized the first `n` bytes.
            unsafe { self.buf.set_init(n) };
        }
        (result, self.buf)
    }
}

/// Send a buffer's initialized bytes (`IORING_OP_SEND`, with `MSG_NOSIGNAL`: a closed peer
/// is an `EPIPE` error, not a signal that kills the process).
#[derive(Debug)]
pub struct Send<B> {
    fd: RawFd,
    buf: B,
}

impl<B: IoBuf> Send<B> {
    pub(crate) fn new(fd: RawFd, buf: B) -> Self {
        Send { fd, buf }
    }
}

// SAFETY: the buffer's memory is stable (IoBuf) and owned by the op until completion.
unsafe impl<B: IoBuf> OpCode for Send<B> {
    type Output = BufResult<usize, B>;

    fn build(&mut self) -> squeue::Entry {
        let len = clamp_len(self.buf.bytes_init());
        opcode::Send::new(types::Fd(self.fd), self.buf.stable_ptr(), len)
            .flags(libc::MSG_NOSIGNAL)
            .build()
    }

    fn complete(self, result: io::Result<u32>, _flags: u32) -> Self::Output {
        (result.map(|n| n as usize), self.buf)
    }
}

/// Read at an offset (`IORING_OP_READ`); for sockets and pipes pass `u64::MAX` (current position).
#[derive(Debug)]
pub struct ReadAt<B> {
    fd: RawFd,
    offset: u64,
    buf: B,
}

impl<B: IoBufMut> ReadAt<B> {
    pub(crate) fn new(fd: RawFd, offset: u64, buf: B) -> Self {
        ReadAt { fd, offset, buf }
    }
}

// SAFETY: the buffer's memory is stable (IoBufMut) and owned by the op until completion.
unsafe impl<B: IoBufMut> OpCode for ReadAt<B> {
    type Output = BufResult<usize, B>;

    fn build(&mut self) -> squeue::Entry {
        let len = clamp_len(self.buf.bytes_total());
        opcode::Read::new(types::Fd(self.fd), self.buf.stable_mut_ptr(), len)
            .offset(self.offset)
            .build()
    }

    fn complete(mut self, result: io::Result<u32>, _flags: u32) -> Self::Output {
        let result = result.map(|n| n as usize);
        if let Ok(n) = result {
            // SAFETY: the kernel initialized the first `n` bytes.
            unsafe { self.buf.set_init(n) };
        }
        (result, self.buf)
    }
}

/// Write at an offset (`IORING_OP_WRITE`).
#[derive(Debug)]
pub struct WriteAt<B> {
    fd: RawFd,
    offset: u64,
    buf: B,
}

impl<B: IoBuf> WriteAt<B> {
    pub(crate) fn new(fd: RawFd, offset: u64, buf: B) -> Self {
        WriteAt { fd, offset, buf }
    }
}

// SAFETY: the buffer's memory is stable (IoBuf) and owned by the op until completion.
unsafe impl<B: IoBuf> OpCode for WriteAt<B> {
    type Output = BufResult<usize, B>;

    fn build(&mut self) -> squeue::Entry {
        let len = clamp_len(self.buf.bytes_init());
        opcode::Write::new(types::Fd(self.fd), self.buf.stable_ptr(), len)
            .offset(self.offset)
            .build()
    }

    fn complete(self, result: io::Result<u32>, _flags: u32) -> Self::Output {
        (result.map(|n| n as usize), self.buf)
    }
}

/// Scatter a read over several buffers: `IORING_OP_READV` at an offset (files, pipes), or
/// `IORING_OP_RECVMSG` on a socket.
#[derive(Debug)]
pub struct ReadvAt<B> {
    fd: RawFd,
    offset: u64,
    bufs: B,
    /// Heap-allocated so the kernel's view stays put while the op moves.
    iovecs: Vec<libc::iovec>,
    /// `Some` for a socket: the message header naming `iovecs`.
    msg: Option<MsgHdr>,
}

impl<B: IoVecBufMut> ReadvAt<B> {
    /// A `readv` at `offset` (`u64::MAX`: the current position).
    pub(crate) fn new(fd: RawFd, offset: u64, mut bufs: B) -> Self {
        let iovecs = read_iovecs(&mut bufs);
        ReadvAt {
            fd,
            offset,
            bufs,
            iovecs,
            msg: None,
        }
    }

    /// A `recvmsg` on a connected socket, the twin of [`WritevAt::socket`].
    pub(crate) fn socket(fd: RawFd, bufs: B) -> Self {
        let mut op = Self::new(fd, u64::MAX, bufs);
        op.msg = Some(MsgHdr::new(&mut op.iovecs));
        op
    }
}

// SAFETY: the iovec array, the message header and every buffer they point to live on the
// heap (or in 'static memory) and are owned by the op until completion.
unsafe impl<B: IoVecBufMut> OpCode for ReadvAt<B> {
    type Output = BufResult<usize, B>;

    fn build(&mut self) -> squeue::Entry {
        match &mut self.msg {
            Some(msg) => opcode::RecvMsg::new(types::Fd(self.fd), msg.as_mut_ptr()).build(),
            None => opcode::Readv::new(
                types::Fd(self.fd),
                self.iovecs.as_ptr(),
                self.iovecs.len() as u32,
            )
            .offset(self.offset)
            .build(),
        }
    }

    fn complete(mut self, result: io::Result<u32>, _flags: u32) -> Self::Output {
        let result = result.map(|n| n as usize);
        if let Ok(n) = result {
            set_init_vectored(&mut self.bufs, n);
        }
        (result, self.bufs)
    }
}

/// Gather a write from several buffers: `IORING_OP_WRITEV` at an offset (files, pipes), or
/// `IORING_OP_SENDMSG` with `MSG_NOSIGNAL` on a socket, so that a closed peer is an `EPIPE`
/// error rather than a `SIGPIPE` that kills a process which has not ignored it (`writev`
/// cannot pass that flag).
#[derive(Debug)]
pub struct WritevAt<B> {
    fd: RawFd,
    offset: u64,
    bufs: B,
    iovecs: Vec<libc::iovec>,
    /// `Some` for a socket: the message header naming `iovecs`.
    msg: Option<MsgHdr>,
}

impl<B: IoVecBuf> WritevAt<B> {
    /// A `writev` at `offset` (`u64::MAX`: the current position).
    pub(crate) fn new(fd: RawFd, offset: u64, bufs: B) -> Self {
        let iovecs = write_iovecs(&bufs);
        WritevAt {
            fd,
            offset,
            bufs,
            iovecs,
            msg: None,
        }
    }

    /// A `sendmsg` with `MSG_NOSIGNAL` on a connected socket.
    pub(crate) fn socket(fd: RawFd, bufs: B) -> Self {
        let mut op = Self::new(fd, u64::MAX, bufs);
        op.msg = Some(MsgHdr::new(&mut op.iovecs));
        op
    }
}

// SAFETY: as for `ReadvAt`.
unsafe impl<B: IoVecBuf> OpCode for WritevAt<B> {
    type Output = BufResult<usize, B>;

    fn build(&mut self) -> squeue::Entry {
        match &mut self.msg {
            Some(msg) => opcode::SendMsg::new(types::Fd(self.fd), msg.as_mut_ptr())
                .flags(libc::MSG_NOSIGNAL as u32)
                .build(),
            None => opcode::Writev::new(
                types::Fd(self.fd),
                self.iovecs.as_ptr(),
                self.iovecs.len() as u32,
            )
            .offset(self.offset)
            .build(),
        }
    }

    fn complete(self, result: io::Result<u32>, _flags: u32) -> Self::Output {
        (result.map(|n| n as usize), self.bufs)
    }
}

/// A `msghdr` with no address and no control data, naming an op's iovecs; boxed, so it
/// stays put while the op moves (an abandoned op moves into the driver).
struct MsgHdr(Box<libc::msghdr>);

impl MsgHdr {
    /// Points at `iovecs`, whose heap array must outlive the header and not be reallocated.
    fn new(iovecs: &mut [libc::iovec]) -> Self {
        // SAFETY: an all-zero msghdr is a valid empty value (null pointers, zero lengths).
        let mut msg: Box<libc::msghdr> = Box::new(unsafe { std::mem::zeroed() });
        msg.msg_iov = iovecs.as_mut_ptr();
        msg.msg_iovlen = iovecs.len() as _;
        MsgHdr(msg)
    }

    fn as_mut_ptr(&mut self) -> *mut libc::msghdr {
        &mut *self.0
    }
}

impl std::fmt::Debug for MsgHdr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MsgHdr")
            .field("iovlen", &self.0.msg_iovlen)
            .finish_non_exhaustive()
    }
}

/// io_uring lengths are 32-bit; larger buffers are used in 4 GiB - 1 chunks.
fn clamp_len(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}
