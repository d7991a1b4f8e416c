//! `sendmsg`/`recvmsg` over a part of an owned buffer sequence, with an iovec array that
//! the caller reuses from op to op (the loops of `writev_all` and `readv_exact`).

use std::io;
use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types};

use super::OpCode;
use crate::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};

/// Most iovecs one `sendmsg`/`recvmsg` takes (`IOV_MAX`).
const IOV_MAX: usize = 1024;

/// A message header and its iovec array, on the heap (the kernel reads both at submission,
/// and an abandoned op moves), reused by every op of one loop.
pub(crate) struct MsgVec {
    msg: libc::msghdr,
    iovecs: Vec<libc::iovec>,
}

impl MsgVec {
    /// An empty header with room for `n` iovecs (at most `IOV_MAX`).
    pub(crate) fn boxed(n: usize) -> Box<MsgVec> {
        Box::new(MsgVec {
            // SAFETY: an all-zero msghdr is a valid empty value (null pointers, zero lengths).
            msg: unsafe { std::mem::zeroed() },
            iovecs: Vec::with_capacity(n.min(IOV_MAX)),
        })
    }

    fn finish(&mut self) {
        self.msg.msg_iov = self.iovecs.as_mut_ptr();
        self.msg.msg_iovlen = self.iovecs.len() as _;
    }

    /// Describes the initialized bytes of `bufs`, from byte `offset` of buffer `index` on.
    pub(crate) fn fill_write<V: IoVecBuf>(&mut self, bufs: &V, index: usize, offset: usize) {
        self.iovecs.clear();
        for (i, b) in bufs.bufs().iter().enumerate().skip(index).take(IOV_MAX) {
            let skip = if i == index { offset } else { 0 };
            let len = b.bytes_init().saturating_sub(skip);
            // SAFETY: `skip <= bytes_init`, so the pointer stays within the buffer.
            let base = unsafe { b.stable_ptr().add(skip.min(b.bytes_init())) };
            self.iovecs.push(libc::iovec {
                iov_base: base as *mut _,
                iov_len: len,
            });
        }
        self.finish();
    }

    /// Describes the capacity of `bufs`, from byte `offset` of buffer `index` on.
    pub(crate) fn fill_read<V: IoVecBufMut>(&mut self, bufs: &mut V, index: usize, offset: usize) {
        self.iovecs.clear();
        for (i, b) in bufs
            .bufs_mut()
            .iter_mut()
            .enumerate()
            .skip(index)
            .take(IOV_MAX)
        {
            let skip = if i == index { offset } else { 0 };
            let len = b.bytes_total().saturating_sub(skip);
            // SAFETY: `skip <= bytes_total`, so the pointer stays within the buffer.
            let base = unsafe { b.stable_mut_ptr().add(skip.min(b.bytes_total())) };
            self.iovecs.push(libc::iovec {
                iov_base: base.cast(),
                iov_len: len,
            });
        }
        self.finish();
    }
}

/// `IORING_OP_SENDMSG` (with `MSG_NOSIGNAL`) of what a [`MsgVec`] describes in `bufs`.
pub(crate) struct SendMsgVec<V> {
    fd: RawFd,
    bufs: V,
    msg: Box<MsgVec>,
}

impl<V: IoVecBuf> SendMsgVec<V> {
    /// `msg` must describe memory of `bufs` ([`MsgVec::fill_write`]).
    pub(crate) fn new(fd: RawFd, bufs: V, msg: Box<MsgVec>) -> Self {
        SendMsgVec { fd, bufs, msg }
    }
}

// SAFETY: the header and iovecs are boxed (read at submission); the buffers they point into
// are stable (IoBuf) and owned by the op until completion.
unsafe impl<V: IoVecBuf> OpCode for SendMsgVec<V> {
    type Output = (io::Result<usize>, V, Box<MsgVec>);

    fn build(&mut self) -> squeue::Entry {
        opcode::SendMsg::new(types::Fd(self.fd), &self.msg.msg)
            .flags(libc::MSG_NOSIGNAL as u32)
            .build()
    }

    fn complete(self, result: io::Result<u32>, _flags: u32) -> Self::Output {
        (result.map(|n| n as usize), self.bufs, self.msg)
    }
}

/// `IORING_OP_RECVMSG` into what a [`MsgVec`] describes in `bufs`. Marking bytes
/// initialized is left to the caller, which knows where the message began.
pub(crate) struct RecvMsgVec<V> {
    fd: RawFd,
    bufs: V,
    msg: Box<MsgVec>,
}

impl<V: IoVecBufMut> RecvMsgVec<V> {
    /// `msg` must describe memory of `bufs` ([`MsgVec::fill_read`]).
    pub(crate) fn new(fd: RawFd, bufs: V, msg: Box<MsgVec>) -> Self {
        RecvMsgVec { fd, bufs, msg }
    }
}

// SAFETY: as for `SendMsgVec`; the kernel writes only within the capacities described.
unsafe impl<V: IoVecBufMut> OpCode for RecvMsgVec<V> {
    type Output = (io::Result<usize>, V, Box<MsgVec>);

    fn build(&mut self) -> squeue::Entry {
        opcode::RecvMsg::new(types::Fd(self.fd), &mut self.msg.msg).build()
    }

    fn complete(self, result: io::Result<u32>, _flags: u32) -> Self::Output {
        (result.map(|n| n as usize), self.bufs, self.msg)
    }
}

/// Fills `bufs` in order from byte `offset` of buffer `index`, `n` bytes, marking them
/// initialized; returns the new `(index, offset)`.
pub(crate) fn advance_read<V: IoVecBufMut>(
    bufs: &mut V,
    mut index: usize,
    mut offset: usize,
    mut n: usize,
) -> (usize, usize) {
    let bufs = bufs.bufs_mut();
    while n > 0 && index < bufs.len() {
        let room = bufs[index].bytes_total() - offset;
        let filled = n.min(room);
        // SAFETY: the kernel wrote the first `n` bytes described, in order: this buffer's
        // `offset..offset + filled`; its bytes before `offset` were filled by earlier ops.
        unsafe { bufs[index].set_init(offset + filled) };
        n -= filled;
        offset += filled;
        if offset == bufs[index].bytes_total() {
            index += 1;
            offset = 0;
        }
    }
    (index, offset)
}

/// Skips `n` bytes of `bufs`' initialized bytes from byte `offset` of buffer `index`;
/// returns the new `(index, offset)`.
pub(crate) fn advance_write<V: IoVecBuf>(
    bufs: &V,
    mut index: usize,
    mut offset: usize,
    mut n: usize,
) -> (usize, usize) {
    let bufs = bufs.bufs();
    loop {
        while index < bufs.len() && offset >= bufs[index].bytes_init() {
            index += 1;
            offset = 0;
        }
        if n == 0 || index == bufs.len() {
            return (index, offset);
        }
        let step = n.min(bufs[index].bytes_init() - offset);
        offset += step;
        n -= step;
    }
}

impl<V> std::fmt::Debug for SendMsgVec<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendMsgVec").field("fd", &self.fd).finish()
    }
}

impl<V> std::fmt::Debug for RecvMsgVec<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvMsgVec").field("fd", &self.fd).finish()
    }
}
