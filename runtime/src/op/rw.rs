//! Reads and writes: `recv`/`send` on sockets, `read`/`write` at an offset on files, and
//! their vectored forms.

use std::io;
use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types};

use super::OpCode;
use crate::buf::{
    BufResult, IoBuf, IoBufMut, IoVecBuf, IoVecBufMut, read_iovecs, set_init_vectored, write_iovecs,
};

// The buffer ops below check their buffer's trait (`IoBuf`, `IoBufMut`) once, where they are
// made (`new`, called by the method that takes the buffer), and take from it there what the
// SQE and the completion need: its address and length (stable while the value moves, by the
// traits' contracts) and, for reads, its `set_init`. Their `OpCode` impls then ask nothing
// of the buffer, so passing a borrow to `stream.read(..)` is one error, at the method,
// rather than the same error again for the op's type and for its `.await`.

/// A buffer's region, taken when an op is made (see above).
#[derive(Debug, Clone, Copy)]
struct Region {
    ptr: *mut u8,
    len: u32,
}

impl Region {
    fn readable<B: IoBuf>(buf: &B) -> Self {
        Region {
            ptr: buf.stable_ptr().cast_mut(),
            len: clamp_len(buf.bytes_init()),
        }
    }

    fn writable<B: IoBufMut>(buf: &mut B) -> Self {
        Region {
            ptr: buf.stable_mut_ptr(),
            len: clamp_len(buf.bytes_total()),
        }
    }
}

/// A read buffer's `IoBufMut::set_init`, taken when the op is made.
type SetInit<B> = unsafe fn(&mut B, usize);

/// Receive into a buffer (`IORING_OP_RECV`); resolves to the byte count (0 at end of stream).
#[derive(Debug)]
pub struct Recv<B> {
    fd: RawFd,
    region: Region,
    set_init: SetInit<B>,
    buf: B,
}

impl<B: IoBufMut> Recv<B> {
    pub(crate) fn new(fd: RawFd, mut buf: B) -> Self {
        Recv {
            fd,
            region: Region::writable(&mut buf),
            set_init: B::set_init,
            buf,
        }
    }
}

// SAFETY: `region` is the buffer's memory (`IoBufMut`: stable while the value moves, valid
// for writes of `bytes_total` bytes), owned by the op until completion.
unsafe impl<B: 'static> OpCode for Recv<B> {
    type Output = BufResult<usize, B>;

    fn build(&mut self) -> squeue::Entry {
        opcode::Recv::new(types::Fd(self.fd), self.region.ptr, self.region.len).build()
    }

    fn complete(mut self, result: io::Result<u32>, _flags: u32) -> Self::Output {
        let result = result.map(|n| n as usize);
        if let Ok(n) = result {
            // SAFETY: the kernel initialized the first `n` bytes.
            unsafe { (self.set_init)(&mut self.buf, n) };
        }
        (result, self.buf)
    }
}

/// Send a buffer's initialized bytes (`IORING_OP_SEND`, with `MSG_NOSIGNAL`: a closed peer
/// is an `EPIPE` error, not a signal that kills the process).
#[derive(Debug)]
pub struct Send<B> {
    fd: RawFd,
    region: Region,
    buf: B,
}

impl<B: IoBuf> Send<B> {
    pub(crate) fn new(fd: RawFd, buf: B) -> Self {
        Send {
            fd,
            region: Region::readable(&buf),
            buf,
        }
    }
}

// SAFETY: `region` is the buffer's initialized bytes (`IoBuf`: stable while the value
// moves), owned by the op until completion.
unsafe impl<B: 'static> OpCode for Send<B> {
    type Output = BufResult<usize, B>;

    fn build(&mut self) -> squeue::Entry {
        opcode::Send::new(types::Fd(self.fd), self.region.ptr, self.region.len)
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
    region: Region,
    set_init: SetInit<B>,
    buf: B,
}

impl<B: IoBufMut> ReadAt<B> {
    pub(crate) fn new(fd: RawFd, offset: u64, mut buf: B) -> Self {
        ReadAt {
            fd,
            offset,
            region: Region::writable(&mut buf),
            set_init: B::set_init,
            buf,
        }
    }
}

// SAFETY: as for `Recv`.
unsafe impl<B: 'static> OpCode for ReadAt<B> {
    type Output = BufResult<usize, B>;

    fn build(&mut self) -> squeue::Entry {
        opcode::Read::new(types::Fd(self.fd), self.region.ptr, self.region.len)
            .offset(self.offset)
            .build()
    }

    fn complete(mut self, result: io::Result<u32>, _flags: u32) -> Self::Output {
        let result = result.map(|n| n as usize);
        if let Ok(n) = result {
            // SAFETY: the kernel initialized the first `n` bytes.
            unsafe { (self.set_init)(&mut self.buf, n) };
        }
        (result, self.buf)
    }
}

/// Write at an offset (`IORING_OP_WRITE`).
#[derive(Debug)]
pub struct WriteAt<B> {
    fd: RawFd,
    offset: u64,
    region: Region,
    buf: B,
}

impl<B: IoBuf> WriteAt<B> {
    pub(crate) fn new(fd: RawFd, offset: u64, buf: B) -> Self {
        WriteAt {
            fd,
            offset,
            region: Region::readable(&buf),
            buf,
        }
    }
}

// SAFETY: as for `Send`.
unsafe impl<B: 'static> OpCode for WriteAt<B> {
    type Output = BufResult<usize, B>;

    fn build(&mut self) -> squeue::Entry {
        opcode::Write::new(types::Fd(self.fd), self.region.ptr, self.region.len)
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
