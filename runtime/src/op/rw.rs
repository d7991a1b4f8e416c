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

/// Scatter a read over several buffers (`IORING_OP_READV`).
#[derive(Debug)]
pub struct ReadvAt<B> {
    fd: RawFd,
    offset: u64,
    bufs: B,
    /// Heap-allocated so the kernel's view stays put while the op moves.
    iovecs: Vec<libc::iovec>,
}

impl<B: IoVecBufMut> ReadvAt<B> {
    pub(crate) fn new(fd: RawFd, offset: u64, mut bufs: B) -> Self {
        let iovecs = read_iovecs(&mut bufs);
        ReadvAt {
            fd,
            offset,
            bufs,
            iovecs,
        }
    }
}

// SAFETY: the iovec array and every buffer it points to live on the heap (or in 'static
// memory) and are owned by the op until completion.
unsafe impl<B: IoVecBufMut> OpCode for ReadvAt<B> {
    type Output = BufResult<usize, B>;

    fn build(&mut self) -> squeue::Entry {
        opcode::Readv::new(
            types::Fd(self.fd),
            self.iovecs.as_ptr(),
            self.iovecs.len() as u32,
        )
        .offset(self.offset)
        .build()
    }

    fn complete(mut self, result: io::Result<u32>, _flags: u32) -> Self::Output {
        let result = result.map(|n| n as usize);
        if let Ok(n) = result {
            set_init_vectored(&mut self.bufs, n);
        }
        (result, self.bufs)
    }
}

/// Gather a write from several buffers (`IORING_OP_WRITEV`).
#[derive(Debug)]
pub struct WritevAt<B> {
    fd: RawFd,
    offset: u64,
    bufs: B,
    iovecs: Vec<libc::iovec>,
}

impl<B: IoVecBuf> WritevAt<B> {
    pub(crate) fn new(fd: RawFd, offset: u64, bufs: B) -> Self {
        let iovecs = write_iovecs(&bufs);
        WritevAt {
            fd,
            offset,
            bufs,
            iovecs,
        }
    }
}

// SAFETY: as for `ReadvAt`.
unsafe impl<B: IoVecBuf> OpCode for WritevAt<B> {
    type Output = BufResult<usize, B>;

    fn build(&mut self) -> squeue::Entry {
        opcode::Writev::new(
            types::Fd(self.fd),
            self.iovecs.as_ptr(),
            self.iovecs.len() as u32,
        )
        .offset(self.offset)
        .build()
    }

    fn complete(self, result: io::Result<u32>, _flags: u32) -> Self::Output {
        (result.map(|n| n as usize), self.bufs)
    }
}

/// io_uring lengths are 32-bit; larger buffers are used in 4 GiB - 1 chunks.
fn clamp_len(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}
