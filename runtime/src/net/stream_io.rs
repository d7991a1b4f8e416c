//! The I/O methods every byte stream has (TCP and Unix), written once.

use std::io;
use std::os::fd::RawFd;

use crate::buf::{
    BufResult, IoBuf, IoBufMut, IoVecBuf, IoVecBufMut, read_exact_with, write_all_with,
};
use crate::driver::Feature;
use crate::op::{
    MsgVec, Op, Recv, RecvMsgVec, Send, SendMsgVec, SendZc, advance_read, advance_write,
};
use crate::runtime::current;

/// The error an op needing `feature` gets on this runtime, if its kernel lacks it.
pub(crate) fn missing(feature: Feature) -> Option<io::Error> {
    let shared = current()?;
    let driver = shared.driver.borrow();
    driver.features().require(feature).err()
}

/// A zero-copy send, or an op that fails naming the feature if the kernel has none.
pub(crate) fn send_zc<'a, B: IoBuf>(fd: RawFd, buf: B) -> Op<'a, SendZc<B>> {
    match missing(Feature::SendZc) {
        None => Op::new(SendZc::new(fd, buf)),
        Some(e) => Op::fail(SendZc::new(fd, buf), e),
    }
}

/// [`write_all`] with zero-copy sends: each send's buffer is held until its notification.
pub(crate) async fn write_all_zc<B: IoBuf>(fd: RawFd, buf: B) -> BufResult<(), B> {
    write_all_with(buf, |slice, _written| send_zc(fd, slice)).await
}

/// Writes every initialized byte of every buffer of `bufs`, in order, with as many
/// `sendmsg`s as it takes, each starting where the last stopped.
pub(crate) async fn writev_all<V: IoVecBuf>(fd: RawFd, bufs: V) -> BufResult<(), V> {
    let total: usize = bufs.bufs().iter().map(|b| b.bytes_init()).sum();
    let (mut index, mut offset) = advance_write(&bufs, 0, 0, 0);
    if index == bufs.bufs().len() {
        return (Ok(()), bufs);
    }
    let mut bufs = bufs;
    let mut msg = MsgVec::boxed(bufs.bufs().len() - index);
    let mut done = 0;
    while index < bufs.bufs().len() {
        msg.fill_write(&bufs, index, offset);
        let (res, b, m) = Op::new(SendMsgVec::new(fd, bufs, msg)).await;
        (bufs, msg) = (b, m);
        match res {
            Ok(0) => {
                let e = io::Error::new(
                    io::ErrorKind::WriteZero,
                    format!("the other side stopped accepting data after {done} of {total} bytes"),
                );
                return (Err(e), bufs);
            }
            Ok(n) => {
                done += n;
                (index, offset) = advance_write(&bufs, index, offset, n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (Err(e), bufs),
        }
    }
    (Ok(()), bufs)
}

/// Fills every buffer of `bufs` to its capacity, in order, with as many `recvmsg`s as it
/// takes; an early end of stream is `UnexpectedEof`.
pub(crate) async fn readv_exact<V: IoVecBufMut>(fd: RawFd, bufs: V) -> BufResult<(), V> {
    let total: usize = bufs.bufs().iter().map(|b| b.bytes_total()).sum();
    let mut bufs = bufs;
    let (mut index, mut offset) = skip_full(&bufs, 0, 0);
    if index == bufs.bufs().len() {
        return (Ok(()), bufs);
    }
    let mut msg = MsgVec::boxed(bufs.bufs().len() - index);
    let mut done = 0;
    while index < bufs.bufs().len() {
        msg.fill_read(&mut bufs, index, offset);
        let (res, b, m) = Op::new(RecvMsgVec::new(fd, bufs, msg)).await;
        (bufs, msg) = (b, m);
        match res {
            Ok(0) => {
                let e = io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("stream ended after {done} of {total} bytes"),
                );
                return (Err(e), bufs);
            }
            Ok(n) => {
                done += n;
                (index, offset) = advance_read(&mut bufs, index, offset, n);
                (index, offset) = skip_full(&bufs, index, offset);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (Err(e), bufs),
        }
    }
    (Ok(()), bufs)
}

/// Moves past buffers with no room left (zero capacity).
fn skip_full<V: IoVecBufMut>(bufs: &V, mut index: usize, mut offset: usize) -> (usize, usize) {
    let bufs = bufs.bufs();
    while index < bufs.len() && offset >= bufs[index].bytes_total() {
        index += 1;
        offset = 0;
    }
    (index, offset)
}

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

            /// Receives into the buffers of `ring` with one multishot receive: a stream of
            /// chunks, each giving its buffer back to the ring when dropped. See
            /// [`RecvStream`]($crate::net::RecvStream) and [`BufRing`]($crate::buf::BufRing).
            pub fn recv_multishot(
                &self,
                ring: &$crate::buf::BufRing,
            ) -> $crate::net::RecvStream<'_> {
                $crate::net::RecvStream::new(self.fd(), ring, false)
            }

            /// Sends `buf`'s initialized bytes without copying them (`IORING_OP_SEND_ZC`);
            /// returns how many were sent. The buffer comes back only once the kernel no
            /// longer reads it (its notification), which may be after the peer acknowledged
            /// the data. A kernel without zero-copy send (before Linux 6.0) makes it fail
            /// with `Unsupported`, naming the feature: use [`write`](Self::write) there.
            pub fn send_zc<B: $crate::buf::IoBuf>(
                &self,
                buf: B,
            ) -> $crate::op::Op<'_, $crate::op::SendZc<B>> {
                $crate::net::stream_io::send_zc(self.fd(), buf)
            }

            /// [`write_all`](Self::write_all) with zero-copy sends.
            pub async fn write_all_zc<B: $crate::buf::IoBuf>(
                &self,
                buf: B,
            ) -> $crate::buf::BufResult<(), B> {
                $crate::net::stream_io::write_all_zc(self.fd(), buf).await
            }

            /// Writes every initialized byte of every buffer in `bufs` (`Vec<B>`, `[B; N]`),
            /// in order, however many `sendmsg`s it takes: after a partial write the next
            /// one starts in the middle of the buffer where it stopped. The buffers come
            /// back either way; a peer that stops accepting data is `WriteZero`.
            pub async fn writev_all<V: $crate::buf::IoVecBuf>(
                &self,
                bufs: V,
            ) -> $crate::buf::BufResult<(), V> {
                $crate::net::stream_io::writev_all(self.fd(), bufs).await
            }

            /// Fills every buffer in `bufs` to its capacity, in order, however many
            /// `recvmsg`s it takes. An early end of stream is `UnexpectedEof`; the buffers
            /// come back either way, holding what was read.
            pub async fn readv_exact<V: $crate::buf::IoVecBufMut>(
                &self,
                bufs: V,
            ) -> $crate::buf::BufResult<(), V> {
                $crate::net::stream_io::readv_exact(self.fd(), bufs).await
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
