//! Registered-buffer reads and writes on sockets, and their registration ([`Registered`]).
//!
//! `READ_FIXED` works on sockets (at offset 0 or -1; any other offset is `ESPIPE`). Writes
//! from a registered buffer on a *stream* socket are `IORING_OP_SEND`s with `MSG_NOSIGNAL`
//! instead of `WRITE_FIXED`: the kernel writes to a socket through `sock_write_iter`, which
//! sends without `MSG_NOSIGNAL`, so a `WRITE_FIXED` to a peer that has gone raises `SIGPIPE`
//! and kills a process that has not ignored it (tested on Linux 6.18). A datagram socket
//! raises no `SIGPIPE`, so `UdpSocket::write_fixed` is a real `WRITE_FIXED`.

use crate::buf::{BufResult, FixedIoBuf, FixedIoBufMut, read_exact_with, write_all_with};
use crate::op::{FixedRead, FixedWrite, Op, Target};
use crate::registered::private::Sealed;
use crate::registered::{RegisterError, Registered};

use super::{TcpStream, UdpSocket, UnixStream};

macro_rules! stream_fixed_io {
    ($ty:ident) => {
        impl $ty {
            /// Reads into a registered buffer (`IORING_OP_READ_FIXED`); `Ok(0)` is the end of
            /// the stream. A plain buffer does not compile here; use `read` for it.
            pub fn read_fixed<B: FixedIoBufMut>(&self, buf: B) -> Op<'_, FixedRead<B>> {
                Op::new(FixedRead::fixed(
                    Target::Fd(self.op_fd()),
                    None,
                    u64::MAX,
                    buf,
                ))
            }

            /// Writes a registered buffer's initialized bytes; returns how many were sent.
            ///
            /// An `IORING_OP_SEND` with `MSG_NOSIGNAL` from the registered memory, not a
            /// `WRITE_FIXED`, which would raise `SIGPIPE` on a closed peer (see the
            /// [`FixedWrite`] docs): a closed peer is a `BrokenPipe` error.
            pub fn write_fixed<B: FixedIoBuf>(&self, buf: B) -> Op<'_, FixedWrite<B>> {
                Op::new(FixedWrite::send_fixed(Target::Fd(self.op_fd()), None, buf))
            }

            /// Writes every initialized byte of a registered buffer, however many sends it
            /// takes.
            pub async fn write_all_fixed<B: FixedIoBuf>(&self, buf: B) -> BufResult<(), B> {
                write_all_with(buf, |slice, _| self.write_fixed(slice)).await
            }

            /// Fills a registered buffer's whole capacity with `READ_FIXED`s
            /// (`UnexpectedEof` if the stream ends first).
            pub async fn read_exact_fixed<B: FixedIoBufMut>(&self, buf: B) -> BufResult<(), B> {
                read_exact_with(buf, |slice, _| self.read_fixed(slice)).await
            }

            /// Registers the socket with the current runtime's ring; its ops then name a slot
            /// of the ring's file table. See [`Registered`].
            ///
            /// # Errors
            /// As [`Registered::new`]; the socket comes back in the error.
            pub fn register(self) -> Result<Registered<$ty>, RegisterError<$ty>> {
                Registered::new(self)
            }
        }
    };
}

stream_fixed_io!(TcpStream);
stream_fixed_io!(UnixStream);

impl UdpSocket {
    /// Receives one datagram into a registered buffer (`IORING_OP_READ_FIXED`).
    pub fn read_fixed<B: FixedIoBufMut>(&self, buf: B) -> Op<'_, FixedRead<B>> {
        Op::new(FixedRead::fixed(
            Target::Fd(self.op_fd()),
            None,
            u64::MAX,
            buf,
        ))
    }

    /// Sends one datagram from a registered buffer to the connected peer
    /// (`IORING_OP_WRITE_FIXED`; an unconnected socket fails with `EDESTADDRREQ`).
    pub fn write_fixed<B: FixedIoBuf>(&self, buf: B) -> Op<'_, FixedWrite<B>> {
        Op::new(FixedWrite::fixed(
            Target::Fd(self.op_fd()),
            None,
            u64::MAX,
            buf,
        ))
    }

    /// Registers the socket with the current runtime's ring. See [`Registered`].
    ///
    /// # Errors
    /// As [`Registered::new`]; the socket comes back in the error.
    pub fn register(self) -> Result<Registered<UdpSocket>, RegisterError<UdpSocket>> {
        Registered::new(self)
    }
}
