//! The I/O methods every byte stream has (TCP and Unix), written once.

use std::os::fd::RawFd;

use crate::buf::{BufResult, IoBuf, IoBufMut, read_exact_with, write_all_with};
use crate::op::{Op, Recv, Send};

/// Reads until `buf` is full (its whole capacity); an early end of stream is
/// `ErrorKind::UnexpectedEof`, and the buffer comes back either way.
pub(crate) async fn read_exact<B: IoBufMut>(fd: RawFd, buf: B) -> BufResult<(), B> {
    read_exact_with(buf, |slice, _filled| Op::new(Recv::new(fd, slice))).await
}

/// Writes every initialized byte of `buf`; a peer that stops accepting bytes is
/// `ErrorKind::WriteZero`, and the buffer comes back either way.
pub(crate) async fn write_all<B: IoBuf>(fd: RawFd, buf: B) -> BufResult<(), B> {
    write_all_with(buf, |slice, _written| Op::new(Send::new(fd, slice))).await
}

/// Adds the owned-buffer stream methods to a type with an `fn fd(&self) -> RawFd`.
macro_rules! impl_stream_io {
    ($ty:ty) => {
        impl $ty {
            /// Reads into `buf` from its start, up to its capacity; `Ok(0)` is the end of the
            /// stream. The buffer comes back with the result.
            pub fn read<B: $crate::buf::IoBufMut>(
                &self,
                buf: B,
            ) -> $crate::op::Op<'_, $crate::op::Recv<B>> {
                $crate::op::Op::new($crate::op::Recv::new(self.fd(), buf))
            }

            /// Writes `buf`'s initialized bytes; returns how many were sent (maybe fewer:
            /// see [`write_all`](Self::write_all)).
            pub fn write<B: $crate::buf::IoBuf>(
                &self,
                buf: B,
            ) -> $crate::op::Op<'_, $crate::op::Send<B>> {
                $crate::op::Op::new($crate::op::Send::new(self.fd(), buf))
            }

            /// Reads into several buffers in order (scatter), with one `recvmsg`.
            pub fn readv<B: $crate::buf::IoVecBufMut>(
                &self,
                bufs: B,
            ) -> $crate::op::Op<'_, $crate::op::ReadvAt<B>> {
                $crate::op::Op::new($crate::op::ReadvAt::socket(self.fd(), bufs))
            }

            /// Writes several buffers in order (gather), with one `sendmsg`; returns how many
            /// bytes were sent. A closed peer is an `EPIPE` error (`BrokenPipe`), never a
            /// `SIGPIPE`, whether or not the process ignores that signal.
            pub fn writev<B: $crate::buf::IoVecBuf>(
                &self,
                bufs: B,
            ) -> $crate::op::Op<'_, $crate::op::WritevAt<B>> {
                $crate::op::Op::new($crate::op::WritevAt::socket(self.fd(), bufs))
            }

            /// Reads until `buf`'s whole capacity is filled. An early end of stream is an
            /// `UnexpectedEof` error; the buffer comes back either way.
            pub async fn read_exact<B: $crate::buf::IoBufMut>(
                &self,
                buf: B,
            ) -> $crate::buf::BufResult<(), B> {
                $crate::net::stream_io::read_exact(self.fd(), buf).await
            }

            /// Writes every initialized byte of `buf`, however many sends it takes.
            pub async fn write_all<B: $crate::buf::IoBuf>(
                &self,
                buf: B,
            ) -> $crate::buf::BufResult<(), B> {
                $crate::net::stream_io::write_all(self.fd(), buf).await
            }

            /// Shuts down the read half, the write half, or both.
            pub fn shutdown(
                &self,
                how: std::net::Shutdown,
            ) -> $crate::op::Op<'_, $crate::op::Shutdown> {
                $crate::op::Op::new($crate::op::Shutdown::new(self.fd(), how))
            }
        }
    };
}

pub(crate) use impl_stream_io;
