//! Registered files: descriptors in the ring's registered-file table, named by slot
//! (`IOSQE_FIXED_FILE`), so the kernel skips looking the descriptor up (and taking and
//! dropping a reference to its file) on every op.
//!
//! [`Registered<T>`] owns a [`File`], [`TcpStream`], [`UnixStream`] or [`UdpSocket`] and a
//! slot of the current runtime's file table; its ops name the slot. Dropping it (or
//! [`close`](Registered::close), [`into_inner`](Registered::into_inner)) empties the slot,
//! and the next registration reuses it.
//!
//! ```no_run
//! use iomgr::fs::File;
//! # iomgr::Runtime::new()?.block_on(async {
//! let file = File::open("/etc/hosts").await?.register()?;
//! let (res, buf) = file.read_at(vec![0u8; 4096], 0).await; // IOSQE_FIXED_FILE
//! println!("slot {}: {} bytes", file.slot(), res?);
//! file.close().await?; // empties the slot, then closes the file
//! # std::io::Result::Ok(()) })?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! **Closing while ops are in flight.** Ops borrow the `Registered`, so safe code closes it
//! only after they are done or dropped. An op the kernel has already consumed keeps working
//! even after its slot is emptied (or reused): the kernel took its own reference to the file
//! when it read the SQE. An op whose SQE is still queued (one whose future was forgotten)
//! is withdrawn before the slot is emptied, so it can never reach a file that takes the slot
//! next.
//!
//! A slot means something only to the ring that registered it: `Registered` is `!Send`, and
//! an op submitted on another runtime of the same thread fails (and touches nothing).

use std::fmt;
use std::io;
use std::rc::Weak;

use crate::buf::{
    BufResult, FixedIoBuf, FixedIoBufMut, IoBuf, IoBufMut, read_exact_with, write_all_with,
};
use crate::fs::File;
use crate::net::{TcpStream, UdpSocket, UnixStream};
use crate::op::{FixedRead, FixedWrite, Op, Target};
use crate::runtime::{Shared, current};

pub(crate) mod private {
    /// Gives [`Registered`](super::Registered) the descriptor of the types it can hold.
    pub trait Sealed {
        /// The descriptor's number for an op (noted as used by this thread's rings).
        fn op_fd(&self) -> std::os::fd::RawFd;
        /// The descriptor's number for a plain system call (no SQE names it).
        fn untracked_fd(&self) -> std::os::fd::RawFd;
    }
}

/// The types that can be registered: [`File`], [`TcpStream`], [`UnixStream`],
/// [`UdpSocket`]. Sealed.
pub trait Register: private::Sealed + Sized {}

impl<T: private::Sealed> Register for T {}

/// A file or socket in a slot of the current runtime's registered-file table; see the
/// [module docs](self).
pub struct Registered<T: Register> {
    /// `Some` until given back by `into_inner` or `close`.
    io: Option<T>,
    slot: u32,
    ring_id: u32,
    ring: Weak<Shared>,
}

/// A registration that failed, with the file or socket handed back.
pub struct RegisterError<T> {
    /// Why it failed.
    pub error: io::Error,
    /// The file or socket, unchanged.
    pub io: T,
}

impl<T> RegisterError<T> {
    /// The file or socket.
    pub fn into_inner(self) -> T {
        self.io
    }
}

impl<T> From<RegisterError<T>> for io::Error {
    fn from(e: RegisterError<T>) -> io::Error {
        e.error
    }
}

impl<T> fmt::Debug for RegisterError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisterError")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Display for RegisterError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (the file or socket is handed back)", self.error)
    }
}

impl<T> std::error::Error for RegisterError<T> {}

impl<T: Register> Registered<T> {
    /// Registers `io` with the ring of the runtime running on this thread.
    ///
    /// # Errors
    /// `Unsupported` on a kernel without a sparse file table (Linux 5.19), `OutOfMemory` if
    /// the table is full, an error if no runtime is running; `io` comes back in each case.
    pub fn new(io: T) -> Result<Self, RegisterError<T>> {
        let Some(shared) = current() else {
            let error = io::Error::other(
                "registering a file needs a running runtime: the slot is in its ring's table; \
                 call it inside Runtime::block_on",
            );
            return Err(RegisterError { error, io });
        };
        let fd = io.untracked_fd();
        let registered = shared.driver.borrow_mut().register_file(fd);
        match registered {
            Ok(slot) => Ok(Registered {
                io: Some(io),
                slot,
                ring_id: shared.id,
                ring: std::rc::Rc::downgrade(&shared),
            }),
            Err(error) => Err(RegisterError { error, io }),
        }
    }

    /// The slot in the ring's registered-file table (what an SQE with `IOSQE_FIXED_FILE`
    /// names; for your own [`OpCode`](crate::op::OpCode)s: `types::Fixed(slot)`).
    pub fn slot(&self) -> u32 {
        self.slot
    }

    /// The file or socket (for options, addresses, or plain ops by descriptor).
    pub fn get_ref(&self) -> &T {
        self.io
            .as_ref()
            .expect("Registered used after it was given back")
    }

    /// Empties the slot and gives the file or socket back.
    pub fn into_inner(mut self) -> T {
        let _ = self.unregister();
        self.io.take().expect("Registered given back twice")
    }

    /// Empties the slot (withdrawing queued SQEs that name it); idempotent.
    fn unregister(&mut self) -> io::Result<()> {
        if self.slot == u32::MAX {
            return Ok(());
        }
        let slot = std::mem::replace(&mut self.slot, u32::MAX);
        let Some(shared) = self.ring.upgrade() else {
            // The ring is gone, and its table with it.
            return Ok(());
        };
        let Ok(mut driver) = shared.driver.try_borrow_mut() else {
            // Dropped from inside the driver (it never runs user code): the slot stays taken.
            return Err(io::Error::other(
                "the ring was busy; the file slot stays taken",
            ));
        };
        driver.unregister_file(slot)
    }

    fn fixed(&self) -> Target {
        Target::Fixed(self.slot)
    }
}

impl<T: Register> Drop for Registered<T> {
    fn drop(&mut self) {
        // Empty the slot first; the file itself closes when `io` drops, after this.
        let _ = self.unregister();
    }
}

impl<T: Register + fmt::Debug> fmt::Debug for Registered<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registered")
            .field("slot", &self.slot)
            .field("io", &self.io)
            .finish()
    }
}

impl Registered<File> {
    /// As [`File::read_at`], naming the registered slot.
    pub fn read_at<B: IoBufMut>(&self, buf: B, offset: u64) -> Op<'_, FixedRead<B>> {
        Op::new(FixedRead::read(self.slot, self.ring_id, offset, buf))
    }

    /// As [`File::write_at`], naming the registered slot.
    pub fn write_at<B: IoBuf>(&self, buf: B, offset: u64) -> Op<'_, FixedWrite<B>> {
        Op::new(FixedWrite::write(self.slot, self.ring_id, offset, buf))
    }

    /// As [`File::read_fixed_at`] (`READ_FIXED`), naming the registered slot.
    pub fn read_fixed_at<B: FixedIoBufMut>(&self, buf: B, offset: u64) -> Op<'_, FixedRead<B>> {
        Op::new(FixedRead::fixed(
            self.fixed(),
            Some(self.ring_id),
            offset,
            buf,
        ))
    }

    /// As [`File::write_fixed_at`] (`WRITE_FIXED`), naming the registered slot.
    pub fn write_fixed_at<B: FixedIoBuf>(&self, buf: B, offset: u64) -> Op<'_, FixedWrite<B>> {
        Op::new(FixedWrite::fixed(
            self.fixed(),
            Some(self.ring_id),
            offset,
            buf,
        ))
    }

    /// As [`File::write_all_at`], naming the registered slot.
    pub async fn write_all_at<B: IoBuf>(&self, buf: B, offset: u64) -> BufResult<(), B> {
        write_all_with(buf, |slice, done| {
            self.write_at(slice, offset + done as u64)
        })
        .await
    }

    /// As [`File::read_exact_at`], naming the registered slot.
    pub async fn read_exact_at<B: IoBufMut>(&self, buf: B, offset: u64) -> BufResult<(), B> {
        read_exact_with(buf, |slice, done| self.read_at(slice, offset + done as u64)).await
    }

    /// Empties the slot, then closes the file through the ring and reports the error a close
    /// can return.
    pub async fn close(mut self) -> io::Result<()> {
        let unregistered = self.unregister();
        let file = self.io.take().expect("Registered given back twice");
        let closed = file.close().await;
        unregistered.and(closed)
    }
}

macro_rules! registered_stream {
    ($ty:ty) => {
        impl Registered<$ty> {
            /// Reads into `buf` (`IORING_OP_RECV` on the registered slot); `Ok(0)` is the end
            /// of the stream.
            pub fn read<B: IoBufMut>(&self, buf: B) -> Op<'_, FixedRead<B>> {
                Op::new(FixedRead::recv(self.slot, self.ring_id, buf))
            }

            /// Writes `buf`'s initialized bytes (`IORING_OP_SEND`, `MSG_NOSIGNAL`, on the
            /// registered slot).
            pub fn write<B: IoBuf>(&self, buf: B) -> Op<'_, FixedWrite<B>> {
                Op::new(FixedWrite::send(self.slot, self.ring_id, buf))
            }

            /// Reads into a registered buffer (`READ_FIXED` on the registered slot).
            pub fn read_fixed<B: FixedIoBufMut>(&self, buf: B) -> Op<'_, FixedRead<B>> {
                Op::new(FixedRead::fixed(
                    self.fixed(),
                    Some(self.ring_id),
                    u64::MAX,
                    buf,
                ))
            }

            /// Writes from a registered buffer on the registered slot (a `SEND` with
            /// `MSG_NOSIGNAL`: see [`FixedWrite`]).
            pub fn write_fixed<B: FixedIoBuf>(&self, buf: B) -> Op<'_, FixedWrite<B>> {
                Op::new(FixedWrite::send_fixed(
                    self.fixed(),
                    Some(self.ring_id),
                    buf,
                ))
            }

            /// Writes every initialized byte of `buf`, however many sends it takes.
            pub async fn write_all<B: IoBuf>(&self, buf: B) -> BufResult<(), B> {
                write_all_with(buf, |slice, _| self.write(slice)).await
            }

            /// Reads until `buf`'s whole capacity is filled (`UnexpectedEof` if the stream
            /// ends first).
            pub async fn read_exact<B: IoBufMut>(&self, buf: B) -> BufResult<(), B> {
                read_exact_with(buf, |slice, _| self.read(slice)).await
            }
        }
    };
}

registered_stream!(TcpStream);
registered_stream!(UnixStream);

impl Registered<UdpSocket> {
    /// Receives one datagram into `buf` (`IORING_OP_RECV` on the registered slot).
    pub fn recv<B: IoBufMut>(&self, buf: B) -> Op<'_, FixedRead<B>> {
        Op::new(FixedRead::recv(self.slot, self.ring_id, buf))
    }

    /// Sends one datagram to the connected peer (`IORING_OP_SEND` on the registered slot).
    pub fn send<B: IoBuf>(&self, buf: B) -> Op<'_, FixedWrite<B>> {
        Op::new(FixedWrite::send(self.slot, self.ring_id, buf))
    }

    /// Receives one datagram into a registered buffer (`READ_FIXED` on the registered slot).
    pub fn read_fixed<B: FixedIoBufMut>(&self, buf: B) -> Op<'_, FixedRead<B>> {
        Op::new(FixedRead::fixed(
            self.fixed(),
            Some(self.ring_id),
            u64::MAX,
            buf,
        ))
    }

    /// Sends one datagram from a registered buffer to the connected peer (`WRITE_FIXED` on
    /// the registered slot).
    pub fn write_fixed<B: FixedIoBuf>(&self, buf: B) -> Op<'_, FixedWrite<B>> {
        Op::new(FixedWrite::fixed(
            self.fixed(),
            Some(self.ring_id),
            u64::MAX,
            buf,
        ))
    }
}
