//! Socket ops: accept, connect, shutdown, and message send/receive with addresses.
//!
//! None allocates once warm: what the kernel writes at completion (an `accept`'s peer
//! address, a `recvmsg` header and source address) sits in a [`RecycledBox`], a block from
//! the thread's free lists that stays put while the op moves; what it only reads at
//! submission (a `connect` address, a `sendmsg` header and destination) sits in the op
//! itself, which is pinned from its first poll (see [`OpCode`]'s contract).

use std::io;
use std::mem;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use io_uring::{opcode, squeue, types};
use socket2::SockAddr;

use super::OpCode;
use crate::buf::{BufResult, IoBuf, IoBufMut};
use crate::util::recycle::RecycledBox;

/// The peer address an `accept` fills in.
#[derive(Debug)]
struct PeerAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

/// Accept a connection (`IORING_OP_ACCEPT`); the new descriptor is close-on-exec.
#[derive(Debug)]
pub struct Accept {
    fd: RawFd,
    /// Written by the kernel at completion: in a recycled block, so it stays put if the op
    /// is abandoned (moved into the driver).
    addr: RecycledBox<PeerAddr>,
}

impl Accept {
    pub(crate) fn new(fd: RawFd) -> Self {
        Accept {
            fd,
            addr: RecycledBox::new(PeerAddr {
                // SAFETY: an all-zero sockaddr_storage is a valid (empty) value.
                storage: unsafe { mem::zeroed() },
                len: mem::size_of::<libc::sockaddr_storage>() as _,
            }),
        }
    }
}

// SAFETY: the address buffer is in a recycled block the op owns (it does not move with the
// op); the kernel writes it until completion.
unsafe impl OpCode for Accept {
    type Output = io::Result<(OwnedFd, SockAddr)>;
    const RETURNS_FD: bool = true;

    fn build(&mut self) -> squeue::Entry {
        let addr = self.addr.as_mut_ptr();
        // SAFETY: `addr` points at the live block the op owns; only field addresses are taken.
        let (storage, len) = unsafe { (&raw mut (*addr).storage, &raw mut (*addr).len) };
        opcode::Accept::new(types::Fd(self.fd), storage.cast(), len)
            .flags(libc::SOCK_CLOEXEC)
            .build()
    }

    fn complete(self, result: io::Result<u32>, _flags: u32) -> Self::Output {
        let fd = result?;
        // SAFETY: a successful accept returns a new descriptor that we now own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        let PeerAddr { storage, len } = self.addr.into_inner();
        // SAFETY: the kernel filled `storage` with an address of `len` bytes.
        let addr = unsafe { SockAddr::new(mem::transmute_copy(&storage), len) };
        Ok((fd, addr))
    }
}

/// Connect a socket (`IORING_OP_CONNECT`).
#[derive(Debug)]
pub struct Connect {
    fd: RawFd,
    /// Read by the kernel at submission only (it copies the address then), so it may live in
    /// the op, which is pinned from its first poll until it is dropped.
    addr: SockAddr,
}

impl Connect {
    pub(crate) fn new(fd: RawFd, addr: SockAddr) -> Self {
        Connect { fd, addr }
    }
}

// SAFETY: the address is read by the kernel at submission (`IORING_FEAT_SUBMIT_STABLE`),
// while the op is pinned; nothing is written or read at completion.
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

/// The parts of a `msghdr`: the header, its one iovec and the address. The header points
/// at the other two, so its pointers are set where the parts will stay (see [`MsgParts::aim`]).
struct MsgParts {
    msg: libc::msghdr,
    iov: libc::iovec,
    addr: libc::sockaddr_storage,
}

impl MsgParts {
    fn new(iov: libc::iovec) -> Self {
        MsgParts {
            // SAFETY: an all-zero msghdr is a valid empty value (null pointers, zero lengths).
            msg: unsafe { mem::zeroed() },
            iov,
            // SAFETY: an all-zero sockaddr_storage is a valid (unspecified) address.
            addr: unsafe { mem::zeroed() },
        }
    }

    /// Points the header at the iovec and the address, where `parts` is now, and returns the
    /// header's address. `name_len` is the address's length (its capacity, for a receive).
    ///
    /// # Safety
    /// `parts` points at a live `MsgParts` that nothing else borrows.
    unsafe fn aim(parts: *mut MsgParts, name_len: libc::socklen_t) -> *mut libc::msghdr {
        // SAFETY: forwarded from the caller; only raw field pointers are made and written.
        unsafe {
            (*parts).msg.msg_iov = &raw mut (*parts).iov;
            (*parts).msg.msg_iovlen = 1;
            (*parts).msg.msg_name = (&raw mut (*parts).addr).cast();
            (*parts).msg.msg_namelen = name_len;
            &raw mut (*parts).msg
        }
    }
}

/// Receive a datagram and its source address (`IORING_OP_RECVMSG`).
pub struct RecvFrom<B> {
    fd: RawFd,
    buf: B,
    /// In a recycled block that stays put while the op moves: the kernel writes the address
    /// (and the header's `msg_namelen`) at completion.
    parts: RecycledBox<MsgParts>,
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
            parts: RecycledBox::new(MsgParts::new(iov)),
        }
    }
}

// SAFETY: the msghdr, iovec and address live in one recycled block, the data in the stable
// buffer; both are owned by the op until completion and do not move with it.
unsafe impl<B: IoBufMut> OpCode for RecvFrom<B> {
    type Output = BufResult<(usize, SockAddr), B>;

    fn build(&mut self) -> squeue::Entry {
        let capacity = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: the block is live and owned by the op; nothing borrows it now.
        let msg = unsafe { MsgParts::aim(self.parts.as_mut_ptr(), capacity) };
        opcode::RecvMsg::new(types::Fd(self.fd), msg).build()
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
    /// Read by the kernel at submission only (it copies the header, the iovec and the
    /// address then), so it lives in the op, which is pinned from its first poll (when
    /// `build` points the header at the iovec and address) until the kernel consumed the SQE.
    parts: MsgParts,
}

impl<B: IoBuf> SendTo<B> {
    pub(crate) fn new(fd: RawFd, buf: B, addr: &SockAddr) -> Self {
        let iov = libc::iovec {
            iov_base: buf.stable_ptr() as *mut _,
            iov_len: buf.bytes_init(),
        };
        let mut parts = MsgParts::new(iov);
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

// SAFETY: the header, iovec and address are read at submission (`IORING_FEAT_SUBMIT_STABLE`),
// while the op is pinned (`build` runs on the first poll, after which the op stays put until
// dropped, and a drop before submission withdraws the SQE); the data is in the stable buffer,
// owned by the op until completion.
unsafe impl<B: IoBuf> OpCode for SendTo<B> {
    type Output = BufResult<usize, B>;

    fn build(&mut self) -> squeue::Entry {
        let len = self.parts.msg.msg_namelen;
        // SAFETY: `parts` is a field of the op, which `&mut self` borrows uniquely.
        let msg = unsafe { MsgParts::aim(&mut self.parts, len) };
        opcode::SendMsg::new(types::Fd(self.fd), msg)
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
