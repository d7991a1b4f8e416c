//! File ops: open, fsync, statx, close.

use std::ffi::CString;
use std::io;
use std::mem;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use io_uring::{opcode, squeue, types};

use super::OpCode;
use crate::util::recycle::RecycledBox;

/// Open a file relative to the current directory (`IORING_OP_OPENAT`).
#[derive(Debug)]
pub struct OpenAt {
    path: CString,
    flags: i32,
    mode: u32,
}

impl OpenAt {
    pub(crate) fn new(path: CString, flags: i32, mode: u32) -> Self {
        OpenAt { path, flags, mode }
    }
}

// SAFETY: the path lives on the heap (CString) and is owned by the op until completion.
unsafe impl OpCode for OpenAt {
    type Output = io::Result<OwnedFd>;
    const RETURNS_FD: bool = true;

    fn build(&mut self) -> squeue::Entry {
        opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), self.path.as_ptr())
            .flags(self.flags | libc::O_CLOEXEC)
            .mode(self.mode)
            .build()
    }

    fn complete(self, result: io::Result<u32>, _flags: u32) -> Self::Output {
        // SAFETY: a successful open returns a new descriptor that we now own.
        result.map(|fd| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
    }
}

/// Flush a file's data (and, unless `data_only`, its metadata) to storage (`IORING_OP_FSYNC`).
#[derive(Debug)]
pub struct Fsync {
    fd: RawFd,
    data_only: bool,
}

impl Fsync {
    pub(crate) fn new(fd: RawFd, data_only: bool) -> Self {
        Fsync { fd, data_only }
    }
}

// SAFETY: points at no memory.
unsafe impl OpCode for Fsync {
    type Output = io::Result<()>;

    fn build(&mut self) -> squeue::Entry {
        let mut op = opcode::Fsync::new(types::Fd(self.fd));
        if self.data_only {
            op = op.flags(types::FsyncFlags::DATASYNC);
        }
        op.build()
    }

    fn complete(self, result: io::Result<u32>, _flags: u32) -> Self::Output {
        result.map(drop)
    }
}

/// Read a file's metadata (`IORING_OP_STATX` on the descriptor).
pub struct Statx {
    fd: RawFd,
    /// Written by the kernel at completion: in a recycled block (no allocation once warm),
    /// so it stays put if the op is abandoned (moved into the driver).
    buf: RecycledBox<libc::statx>,
}

impl Statx {
    pub(crate) fn new(fd: RawFd) -> Self {
        // SAFETY: an all-zero statx is a valid value.
        let buf = RecycledBox::new(unsafe { mem::zeroed::<libc::statx>() });
        Statx { fd, buf }
    }
}

// SAFETY: the output buffer is in a recycled block the op owns (it does not move with the
// op); the empty path is 'static.
unsafe impl OpCode for Statx {
    type Output = io::Result<libc::statx>;

    fn build(&mut self) -> squeue::Entry {
        let buf: *mut libc::statx = self.buf.as_mut_ptr();
        opcode::Statx::new(types::Fd(self.fd), c"".as_ptr(), buf.cast())
            .flags(libc::AT_EMPTY_PATH)
            .mask(libc::STATX_BASIC_STATS | libc::STATX_BTIME)
            .build()
    }

    fn complete(self, result: io::Result<u32>, _flags: u32) -> Self::Output {
        result.map(|_| self.buf.into_inner())
    }
}

impl std::fmt::Debug for Statx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Statx").field("fd", &self.fd).finish()
    }
}

/// Close a descriptor (`IORING_OP_CLOSE`). The op owns the descriptor: once its SQE reaches
/// the kernel, the kernel closes it whatever happens to the op; if the SQE never gets there
/// (a saturated ring, no runtime, or the op is dropped first), it is closed with `close(2)`.
#[derive(Debug)]
pub struct Close {
    /// The descriptor until `build` hands its number to the SQE.
    fd: Option<OwnedFd>,
    /// The number in the SQE (-1 before `build`).
    raw: RawFd,
}

impl Close {
    pub(crate) fn new(fd: OwnedFd) -> Self {
        Close {
            fd: Some(fd),
            raw: -1,
        }
    }
}

// SAFETY: points at no memory.
unsafe impl OpCode for Close {
    type Output = io::Result<()>;

    fn build(&mut self) -> squeue::Entry {
        use std::os::fd::IntoRawFd;
        if let Some(fd) = self.fd.take() {
            self.raw = fd.into_raw_fd();
        }
        opcode::Close::new(types::Fd(self.raw)).build()
    }

    fn complete(self, result: io::Result<u32>, _flags: u32) -> Self::Output {
        result.map(drop)
    }

    fn not_submitted(mut self, _error: io::Error) -> Self::Output {
        use std::os::fd::IntoRawFd;
        let raw = match self.fd.take() {
            Some(fd) => fd.into_raw_fd(),
            None => self.raw,
        };
        if raw < 0 {
            return Ok(());
        }
        // SAFETY: the number was taken from the op's `OwnedFd` and never reached the kernel,
        // so the op still owns it and nobody else closes it.
        if unsafe { libc::close(raw) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}
