//! Socket ops: accept, connect, shutdown, and message send/receive with addresses.

use std::io;
use std::mem;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use io_uring::{opcode, squeue, types};
use socket2::SockAddr;

use super::OpCode;
use crate::buf::{BufResult, IoBuf, IoBufMut};

/// Accept a connection (`IORING_OP_ACCEPT`); the new descriptor is close-on-exec.
#[derive(Debug)]
pub struct Accept {
    fd: RawFd,
    /// Written by the kernel at completion: boxed so it stays put if the op is abandoned.
    addr: Box<(libc::sockaddr_storage, libc::socklen_t)>,
}

impl Accept {
    pub(crate) fn new(fd: RawFd) -> Self {
        // SAFETY: an all-zero sockaddr_storage is a valid (empty) value.
        let storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
        Accept {
            fd,
            addr: Box::new((storage, mem::size_of::<libc::sockaddr_storage>() as _)),
        }
    }
}

// SAFETY: the address buffer is boxed; the kernel writes it until completion.
unsafe impl OpCode for Accept {
    type Output = io::Result<(OwnedFd, SockAddr)>;
    const RETURNS_FD: bool = true;

    fn build(&mut self) -> squeue::Entry {
        let (storage, len) = &mut *self.addr;
        opcode::Accept::new(
            types::Fd(self.fd),
            (storage as *mut libc::sockaddr_storage).cast(),
            len,
        )
        .flags(libc::SOCK_CLOEXEC)
        .build()
    }

    fn complete(self, result: io::Result<u32>, _flags: u32) -> Self::Output {
        let fd = result?;
        // SAFETY: a successful accept returns a new descriptor that we now own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        let (storage, len) = *self.addr;
        // SAFETY: the kernel filled `storage` with an address of `len` bytes.
        let addr = unsafe { SockAddr::new(mem::transmute_copy(&storage), len) };
        Ok((fd, addr))
    }
}

/// Connect a socket (`IORING_OP_CONNECT`).
#[derive(Debug)]
pub struct Connect {
    fd: RawFd,
    addr: Box<SockAddr>,
}

impl Connect {
    pub(crate) fn new(fd: RawFd, addr: SockAddr) -> Self {
        Connect {
            fd,
            addr: Box::new(addr),
        }
    }
}

// SAFETY: the address is boxed and owned by the op until completion.
unsafe impl OpCode for Connect {
    type Output = io::Result<()>;

    fn build(&mut self) -> squeue::Entry {
        opcode::Connect::new(
            types::Fd(self.fd),
            self.addr.as_ptr().cast(),
            self.addr.len(),
        )
        .build()
    }

    fn complete(self, result: io::Result<u32>, _flags: u32) -> Self::Output {
        result.map(drop)
    }
}

/// Shut down one or both halves of a connection (`IORING_OP_SHUTDOWN`).
#[derive(Debug)]
pub struct Shutdown {
    fd: RawFd,
    how: i32,
}

impl Shutdown {
    pub(crate) fn new(fd: RawFd, how: std::net::Shutdown) -> Self {
        let how = match how {
            std::net::Shutdown::Read => libc::SHUT_RD,
            std::net::Shutdown::Write => libc::SHUT_WR,
            std::net::Shutdown::Both => libc::SHUT_RDWR,
        };
        Shutdown { fd, how }
    }
}

// SAFETY: points at no memory.
unsafe impl OpCode for Shutdown {
    type Output = io::Result<()>;

    fn build(&mut self) -> squeue::Entry {
        opcode::Shutdown::new(types::Fd(self.fd), self.how).build()
    }

    fn complete(self, result: io::Result<u32>, _flags: u32) -> Self::Output {
        result.map(drop)
    }
}

/// The parts of a `msghdr` the kernel keeps pointers into until completion.
struct MsgParts {
    msg: libc::msghdr,
    iov: libc::iovec,
    addr: libc::sockaddr_storage,
}

impl MsgParts {
    fn boxed(iov: libc::iovec) -> Box<Self> {
        // SAFETY: an all-zero msghdr is a valid empty value (null pointers, zero lengths).
        let msg: libc::msghdr = unsafe { mem::zeroed() };
        // SAFETY: an all-zero sockaddr_storage is a valid (unspecified) address.
        let addr: libc::sockaddr_storage = unsafe { mem::zeroed() };
        let mut parts = Box::new(MsgParts { msg, iov, addr });
        parts.msg.msg_iov = &mut parts.iov;
        parts.msg.msg_iovlen = 1;
        parts.msg.msg_name = (&mut parts.addr as *mut libc::sockaddr_storage).cast();
        parts.msg.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as _;
        parts
    }
}

/// Receive a datagram and its source address (`IORING_OP_RECVMSG`).
pub struct RecvFrom<B> {
    fd: RawFd,
    buf: B,
    /// Boxed: the kernel writes the address through `msg_name` at completion.
    parts: Box<MsgParts>,
}

impl<B: IoBufMut> RecvFrom<B> {
    pub(crate) fn new(fd: RawFd, mut buf: B) -> Self {
        let iov = libc::iovec {
            iov_base: buf.stable_mut_ptr().cast(),
            iov_len: buf.bytes_total(),
        };
        RecvFrom {
            fd,
            buf,
            parts: MsgParts::boxed(iov),
        }
    }
}

// SAFETY: the msghdr, iovec and address live in one box, the data in the stable buffer; both
// are owned by the op until completion.
unsafe impl<B: IoBufMut> OpCode for RecvFrom<B> {
    type Output = BufResult<(usize, SockAddr), B>;

    fn build(&mut self) -> squeue::Entry {
        opcode::RecvMsg::new(types::Fd(self.fd), &mut self.parts.msg).build()
    }

    fn complete(mut self, result: io::Result<u32>, _flags: u32) -> Self::Output {
        let result = result.map(|n| {
            // SAFETY: the kernel initialized the first `n` bytes.
            unsafe { self.buf.set_init(n as usize) };
            // SAFETY: the kernel wrote an address of `msg_namelen` bytes into `addr`.
            let addr = unsafe {
                SockAddr::new(
                    mem::transmute_copy(&self.parts.addr),
                    self.parts.msg.msg_namelen,
                )
            };
            (n as usize, addr)
        });
        (result, self.buf)
    }
}

/// Send a datagram to an address (`IORING_OP_SENDMSG`, with `MSG_NOSIGNAL`).
pub struct SendTo<B> {
    fd: RawFd,
    buf: B,
    parts: Box<MsgParts>,
}

impl<B: IoBuf> SendTo<B> {
    pub(crate) fn new(fd: RawFd, buf: B, addr: &SockAddr) -> Self {
        let iov = libc::iovec {
            iov_base: buf.stable_ptr() as *mut _,
            iov_len: buf.bytes_init(),
        };
        let mut parts = MsgParts::boxed(iov);
        let len = (addr.len() as usize).min(mem::size_of::<libc::sockaddr_storage>());
        // SAFETY: copies `len` bytes of a valid address into storage large enough for any.
        unsafe {
            std::ptr::copy_nonoverlapping(
                addr.as_ptr().cast::<u8>(),
                (&mut parts.addr as *mut libc::sockaddr_storage).cast::<u8>(),
                len,
            )
        };
        parts.msg.msg_namelen = len as _;
        SendTo { fd, buf, parts }
    }
}

// SAFETY: as for `RecvFrom`.
unsafe impl<B: IoBuf> OpCode for SendTo<B> {
    type Output = BufResult<usize, B>;

    fn build(&mut self) -> squeue::Entry {
        opcode::SendMsg::new(types::Fd(self.fd), &self.parts.msg)
            .flags(libc::MSG_NOSIGNAL as u32)
            .build()
    }

    fn complete(self, result: io::Result<u32>, _flags: u32) -> Self::Output {
        (result.map(|n| n as usize), self.buf)
    }
}

impl<B> std::fmt::Debug for RecvFrom<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvFrom").field("fd", &self.fd).finish()
    }
}

impl<B> std::fmt::Debug for SendTo<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendTo").field("fd", &self.fd).finish()
    }
}
