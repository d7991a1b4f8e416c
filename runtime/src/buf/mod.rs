//! Owned buffers: what ops read from and write into.
//!
//! io_uring reads and writes memory *after* the call that started an op returns, so an op must
//! own its buffer for as long as the kernel might touch it. iomgr's ops therefore take buffers
//! by value and give them back in their output, `(io::Result<T>, B)` ([`BufResult`]), on
//! success and on error alike.
//!
//! - [`IoBuf`]: readable by the kernel (the data of a write): `Vec<u8>`, `Box<[u8]>`, `b"literals"`,
//!   `String`, `&'static [u8]`, `&'static str`, [`Slice<B>`].
//! - [`IoBufMut`]: writable by the kernel (the target of a read): `Vec<u8>`, `Box<[u8]>`,
//!   [`Slice<B>`].
//! - [`IoVecBuf`] / [`IoVecBufMut`]: owned sequences (`Vec<B>`, `[B; N]`) for vectored I/O.
//! - [`PooledBuf`]: a buffer from the thread's recycling pool ([`BufPool`], size classes from
//!   512 bytes to 1 MiB), returned to it when dropped.
//! - [`FixedBuf`]: a buffer registered with the ring, from a [`FixedBufPool`], for
//!   `read_fixed`/`write_fixed` (`READ_FIXED`/`WRITE_FIXED`); an ordinary owned buffer too.
//! - [`IoVecBuf`] / [`IoVecBufMut`]: owned sequences (`Vec<B>`, `[B; N]`) for vectored I/O
//!   (`writev_all` / `readv_exact` on streams advance through them on partial completion).
//! - [`BufRing`] / [`RingBuf`]: provided-buffer rings, where the kernel picks the buffer for
//!   each receive of a multishot stream.
//!
//! Passing a borrow is a compile error that says what to do instead:
//!
//! ```compile_fail
//! # async fn demo(stream: iomgr::net::TcpStream) {
//! let mut buf = vec![0u8; 1024];
//! stream.read(&mut buf).await; // error: `&mut Vec<u8>` cannot be read into
//! # }
//! ```
//!
//! [`BufExt::slice`] makes an owned sub-range, to write part of a buffer or read into part:
//!
//! ```no_run
//! use iomgr::buf::BufExt;
//! # async fn demo(stream: iomgr::net::TcpStream) -> std::io::Result<()> {
//! let (res, buf) = stream.read(vec![0u8; 4096]).await;
//! let n = res?;
//! let (res, slice) = stream.write_all(buf.slice(..n)).await; // echo what came in
//! res?;
//! let buf = slice.into_inner(); // the whole buffer again
//! # Ok(()) }
//! ```

mod fixed;
mod guard;
mod io_buf;
mod loops;
mod pool;
mod ring;
mod slice;
mod vectored;

use std::io;
use std::ops::RangeBounds;

pub(crate) use fixed::private as fixed_sealed;
pub use fixed::{
    FixedBuf, FixedBufPool, FixedIoBuf, FixedIoBufMut, FixedPoolStats, GetFixed, PoolExhausted,
};
pub use io_buf::{IoBuf, IoBufMut};
pub(crate) use loops::{read_exact_with, write_all_with};
pub use pool::{BufPool, BufPoolStats, ClassStats, PooledBuf};
pub(crate) use ring::RingInner;
pub use ring::{BufRing, RingBuf};
pub use slice::Slice;
pub use vectored::{IoVecBuf, IoVecBufMut};
pub(crate) use vectored::{read_iovecs, set_init_vectored, write_iovecs};

/// An op's output: the result and the buffer, which always comes back.
pub type BufResult<T, B> = (io::Result<T>, B);

/// Methods every owned buffer gets.
pub trait BufExt: IoBuf + Sized {
    /// An owned view of `range` of this buffer. An open end stops at the initialized bytes.
    ///
    /// A read into a slice fills it from `range`'s start. If that is past the buffer's
    /// initialized bytes, the bytes in between are zeroed when the read completes: the
    /// buffer (a `Vec`'s length, say) then covers them, and never shows memory nobody
    /// wrote. See [`Slice`].
    ///
    /// # Panics
    /// If the range is out of the buffer's capacity.
    fn slice(self, range: impl RangeBounds<usize>) -> Slice<Self> {
        Slice::new(self, range)
    }
}

impl<B: IoBuf> BufExt for B {}
