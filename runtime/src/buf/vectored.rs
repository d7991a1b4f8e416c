//! Owned sequences of buffers for scatter-gather I/O (`readv`/`writev`).

use super::{IoBuf, IoBufMut};

/// An owned sequence of buffers a vectored write gathers from.
///
/// # Safety
/// Every buffer obeys the [`IoBuf`] contract.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be used for vectored I/O: pass an owned sequence of buffers",
    label = "expected `Vec<B>` or `[B; N]` where `B` is an owned buffer",
    note = "pass the sequence by value and take it back from the result: \
            `let (res, bufs) = stream.writev(bufs).await;`"
)]
pub unsafe trait IoVecBuf: 'static {
    /// The type of each buffer.
    type Buf: IoBuf;

    /// The buffers, in order.
    fn bufs(&self) -> &[Self::Buf];
}

/// An owned sequence of buffers a vectored read scatters into.
///
/// # Safety
/// Every buffer obeys the [`IoBufMut`] contract.
pub unsafe trait IoVecBufMut: IoVecBuf<Buf: IoBufMut> {
    /// The buffers, in order, mutably.
    fn bufs_mut(&mut self) -> &mut [Self::Buf];
}

// SAFETY: each element is an `IoBuf`.
unsafe impl<B: IoBuf> IoVecBuf for Vec<B> {
    type Buf = B;

    fn bufs(&self) -> &[B] {
        self
    }
}

// SAFETY: each element is an `IoBufMut`.
unsafe impl<B: IoBufMut> IoVecBufMut for Vec<B> {
    fn bufs_mut(&mut self) -> &mut [B] {
        self
    }
}

// SAFETY: each element is an `IoBuf`; the array itself may move, but the iovecs pointing at
// the elements' (heap) memory are built from it, not pointers into the array.
unsafe impl<B: IoBuf, const N: usize> IoVecBuf for [B; N] {
    type Buf = B;

    fn bufs(&self) -> &[B] {
        self
    }
}

// SAFETY: as above.
unsafe impl<B: IoBufMut, const N: usize> IoVecBufMut for [B; N] {
    fn bufs_mut(&mut self) -> &mut [B] {
        self
    }
}

/// iovecs describing the initialized bytes of each buffer (for writes).
pub(crate) fn write_iovecs(bufs: &impl IoVecBuf) -> Vec<libc::iovec> {
    bufs.bufs()
        .iter()
        .map(|b| libc::iovec {
            iov_base: b.stable_ptr() as *mut _,
            iov_len: b.bytes_init(),
        })
        .collect()
}

/// iovecs describing the whole capacity of each buffer (for reads).
pub(crate) fn read_iovecs(bufs: &mut impl IoVecBufMut) -> Vec<libc::iovec> {
    bufs.bufs_mut()
        .iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.stable_mut_ptr().cast(),
            iov_len: b.bytes_total(),
        })
        .collect()
}

/// After a vectored read of `n` bytes, marks the filled prefix of each buffer initialized.
pub(crate) fn set_init_vectored(bufs: &mut impl IoVecBufMut, mut n: usize) {
    for b in bufs.bufs_mut() {
        let filled = n.min(b.bytes_total());
        // SAFETY: the kernel wrote the first `n` bytes across the buffers in order.
        unsafe { b.set_init(filled) };
        n -= filled;
        if n == 0 {
            break;
        }
    }
}
