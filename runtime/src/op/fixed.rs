//! Reads and writes that use what is registered with the ring: a registered (fixed) buffer
//! (`READ_FIXED`, `WRITE_FIXED`), a registered file (`IOSQE_FIXED_FILE`), or both.
//!
//! A registered buffer or file slot means something only to the ring that registered it.
//! The op checks, when it is submitted, that it runs on that ring's runtime; otherwise it
//! submits a `NOP` (which touches neither the buffer nor any file) and fails with an error
//! naming both runtimes. (A future can be made under one runtime and polled under another.)

use std::fmt;
use std::io;
use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types};

use super::OpCode;
use crate::buf::{BufResult, FixedIoBuf, IoBuf, IoBufMut};

/// What an op names: a descriptor, or a slot of the ring's registered-file table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Fd(RawFd),
    Fixed(u32),
}

/// Which ring an op's registered resources belong to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ring {
    /// Nothing registered: any ring.
    Any,
    /// Runtime `id`'s ring.
    Only(u32),
    /// Resources of two different rings: no ring can run it.
    Conflict(u32, u32),
}

impl Ring {
    fn and(self, other: Option<u32>) -> Ring {
        match (self, other) {
            (ring, None) => ring,
            (Ring::Any, Some(id)) => Ring::Only(id),
            (Ring::Only(a), Some(b)) if a == b => Ring::Only(a),
            (Ring::Only(a), Some(b)) => Ring::Conflict(a, b),
            (conflict @ Ring::Conflict(..), Some(_)) => conflict,
        }
    }

    /// `None` if the op may run on the current runtime, else why not.
    fn refuses_current(self) -> Option<WrongRing> {
        let current = crate::runtime::current().map(|shared| shared.id);
        match self {
            Ring::Any => None,
            Ring::Only(id) if current == Some(id) => None,
            Ring::Only(id) => Some(WrongRing {
                registered: id,
                running: current,
            }),
            Ring::Conflict(a, _) => Some(WrongRing {
                registered: a,
                running: current,
            }),
        }
    }
}

/// An op that named another runtime's registered buffer or file.
#[derive(Clone, Copy, Debug)]
struct WrongRing {
    registered: u32,
    running: Option<u32>,
}

impl WrongRing {
    fn error(self) -> io::Error {
        let running = match self.running {
            Some(id) => format!("runtime {id}"),
            None => "no runtime".to_string(),
        };
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "this op names a registered buffer or file of runtime {}'s ring, but it was \
                 submitted on {running}: a registered buffer or file slot means something \
                 only to the ring that registered it (nothing was read or written)",
                self.registered
            ),
        )
    }
}

fn clamp_len(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

macro_rules! on_target {
    ($target:expr, |$fd:ident| $build:expr) => {
        match $target {
            Target::Fd(fd) => {
                let $fd = types::Fd(fd);
                $build
            }
            Target::Fixed(slot) => {
                let $fd = types::Fixed(slot);
                $build
            }
        }
    };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadKind {
    /// `IORING_OP_READ` at the offset.
    Read,
    /// `IORING_OP_READ_FIXED` at the offset, from registered buffer `n`.
    ReadFixed(u16),
    /// `IORING_OP_RECV`.
    Recv,
}

/// A read that uses a registered buffer (`IORING_OP_READ_FIXED`), a registered file, or
/// both; resolves to the byte count (0 at end of file or stream) and the buffer.
///
/// Made by `read_fixed` and `read_fixed_at` (on [`File`](crate::fs::File),
/// [`TcpStream`](crate::net::TcpStream), [`UnixStream`](crate::net::UnixStream),
/// [`UdpSocket`](crate::net::UdpSocket)) and by the reads of
/// [`Registered`](crate::registered::Registered) files and sockets.
pub struct FixedRead<B> {
    target: Target,
    offset: u64,
    kind: ReadKind,
    ring: Ring,
    wrong_ring: Option<WrongRing>,
    buf: B,
}

impl<B: IoBufMut> FixedRead<B> {
    /// `READ_FIXED` into `buf` at `offset` (`u64::MAX`: the current position, as for a
    /// socket).
    pub(crate) fn fixed(target: Target, ring: Option<u32>, offset: u64, buf: B) -> Self
    where
        B: FixedIoBuf,
    {
        let index = buf.buf_index();
        let ring = Ring::Any.and(ring).and(Some(buf.ring_id()));
        Self::new(target, ring, offset, ReadKind::ReadFixed(index), buf)
    }

    /// A plain `READ` at `offset` on a registered file.
    pub(crate) fn read(slot: u32, ring: u32, offset: u64, buf: B) -> Self {
        Self::new(
            Target::Fixed(slot),
            Ring::Only(ring),
            offset,
            ReadKind::Read,
            buf,
        )
    }

    /// A `RECV` on a registered socket.
    pub(crate) fn recv(slot: u32, ring: u32, buf: B) -> Self {
        Self::new(
            Target::Fixed(slot),
            Ring::Only(ring),
            0,
            ReadKind::Recv,
            buf,
        )
    }

    fn new(target: Target, ring: Ring, offset: u64, kind: ReadKind, buf: B) -> Self {
        FixedRead {
            target,
            offset,
            kind,
            ring,
            wrong_ring: None,
            buf,
        }
    }
}

// SAFETY: the buffer's memory is stable (IoBufMut) and owned by the op until completion; for
// READ_FIXED it lies inside registered buffer `n` of the op's ring (FixedIoBuf), which stays
// registered while the buffer lives, and the op runs only on that ring (checked in `build`,
// which submits a NOP otherwise). A registered file slot is checked the same way; the
// kernel resolves it when it consumes the SQE and holds its own reference until completion,
// and closing a `Registered` file withdraws queued SQEs that name its slot.
unsafe impl<B: IoBufMut> OpCode for FixedRead<B> {
    type Output = BufResult<usize, B>;

    fn build(&mut self) -> squeue::Entry {
        if let Some(wrong) = self.ring.refuses_current() {
            self.wrong_ring = Some(wrong);
            return opcode::Nop::new().build();
        }
        let ptr = self.buf.stable_mut_ptr();
        let len = clamp_len(self.buf.bytes_total());
        match self.kind {
            ReadKind::Read => on_target!(self.target, |fd| opcode::Read::new(fd, ptr, len)
                .offset(self.offset)
                .build()),
            ReadKind::ReadFixed(index) => {
                on_target!(self.target, |fd| opcode::ReadFixed::new(
                    fd, ptr, len, index
                )
                .offset(self.offset)
                .build())
            }
            ReadKind::Recv => on_target!(self.target, |fd| opcode::Recv::new(fd, ptr, len).build()),
        }
    }

    fn complete(mut self, result: io::Result<u32>, _flags: u32) -> Self::Output {
        if let Some(wrong) = self.wrong_ring {
            return (Err(wrong.error()), self.buf);
        }
        let result = result.map(|n| n as usize);
        if let Ok(n) = result {
            // SAFETY: the kernel initialized the first `n` bytes.
            unsafe { self.buf.set_init(n) };
        }
        (result, self.buf)
    }
}

impl<B> fmt::Debug for FixedRead<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FixedRead")
            .field("target", &self.target)
            .field("offset", &self.offset)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WriteKind {
    /// `IORING_OP_WRITE` at the offset.
    Write,
    /// `IORING_OP_WRITE_FIXED` at the offset, from registered buffer `n`.
    WriteFixed(u16),
    /// `IORING_OP_SEND` with `MSG_NOSIGNAL`.
    Send,
}

/// A write that uses a registered buffer (`IORING_OP_WRITE_FIXED`), a registered file, or
/// both; resolves to the byte count written and the buffer.
///
/// On a stream socket, `write_fixed` is an `IORING_OP_SEND` with `MSG_NOSIGNAL` from the
/// registered memory, not a `WRITE_FIXED`: the kernel writes to a socket through
/// `sock_write_iter`, which raises `SIGPIPE` when the peer has gone (killing a process that
/// has not ignored it), and iomgr never raises `SIGPIPE`. The bytes go from the registered
/// memory all the same; a copying send gains nothing from the registration (it pins no pages).
pub struct FixedWrite<B> {
    target: Target,
    offset: u64,
    kind: WriteKind,
    ring: Ring,
    wrong_ring: Option<WrongRing>,
    buf: B,
}

impl<B: IoBuf> FixedWrite<B> {
    /// `WRITE_FIXED` from `buf` at `offset`.
    pub(crate) fn fixed(target: Target, ring: Option<u32>, offset: u64, buf: B) -> Self
    where
        B: FixedIoBuf,
    {
        let index = buf.buf_index();
        let ring = Ring::Any.and(ring).and(Some(buf.ring_id()));
        Self::new(target, ring, offset, WriteKind::WriteFixed(index), buf)
    }

    /// A `SEND` (`MSG_NOSIGNAL`) from a registered buffer on a stream socket.
    pub(crate) fn send_fixed(target: Target, ring: Option<u32>, buf: B) -> Self
    where
        B: FixedIoBuf,
    {
        let ring = Ring::Any.and(ring).and(Some(buf.ring_id()));
        Self::new(target, ring, 0, WriteKind::Send, buf)
    }

    /// A plain `WRITE` at `offset` on a registered file.
    pub(crate) fn write(slot: u32, ring: u32, offset: u64, buf: B) -> Self {
        Self::new(
            Target::Fixed(slot),
            Ring::Only(ring),
            offset,
            WriteKind::Write,
            buf,
        )
    }

    /// A `SEND` (`MSG_NOSIGNAL`) on a registered socket.
    pub(crate) fn send(slot: u32, ring: u32, buf: B) -> Self {
        Self::new(
            Target::Fixed(slot),
            Ring::Only(ring),
            0,
            WriteKind::Send,
            buf,
        )
    }

    fn new(target: Target, ring: Ring, offset: u64, kind: WriteKind, buf: B) -> Self {
        FixedWrite {
            target,
            offset,
            kind,
            ring,
            wrong_ring: None,
            buf,
        }
    }
}

// SAFETY: as for `FixedRead`; the kernel only reads the buffer.
unsafe impl<B: IoBuf> OpCode for FixedWrite<B> {
    type Output = BufResult<usize, B>;

    fn build(&mut self) -> squeue::Entry {
        if let Some(wrong) = self.ring.refuses_current() {
            self.wrong_ring = Some(wrong);
            return opcode::Nop::new().build();
        }
        let ptr = self.buf.stable_ptr();
        let len = clamp_len(self.buf.bytes_init());
        match self.kind {
            WriteKind::Write => on_target!(self.target, |fd| opcode::Write::new(fd, ptr, len)
                .offset(self.offset)
                .build()),
            WriteKind::WriteFixed(index) => {
                on_target!(self.target, |fd| opcode::WriteFixed::new(
                    fd, ptr, len, index
                )
                .offset(self.offset)
                .build())
            }
            WriteKind::Send => on_target!(self.target, |fd| opcode::Send::new(fd, ptr, len)
                .flags(libc::MSG_NOSIGNAL)
                .build()),
        }
    }

    fn complete(self, result: io::Result<u32>, _flags: u32) -> Self::Output {
        if let Some(wrong) = self.wrong_ring {
            return (Err(wrong.error()), self.buf);
        }
        (result.map(|n| n as usize), self.buf)
    }
}

impl<B> fmt::Debug for FixedWrite<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FixedWrite")
            .field("target", &self.target)
            .field("offset", &self.offset)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}
