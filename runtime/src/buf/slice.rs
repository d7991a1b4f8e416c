//! An owned sub-range of a buffer.

use std::ops::{Bound, Deref, DerefMut, RangeBounds};

use super::{IoBuf, IoBufMut};

/// An owned view of `begin..end` of a buffer: write part of a buffer, or read into part of
/// it, and get the whole buffer back with [`Slice::into_inner`].
///
/// ```
/// use iomgr::buf::{BufExt, IoBuf};
///
/// let slice = b"hello world".to_vec().slice(6..);
/// assert_eq!(&slice[..], b"world");
/// assert_eq!(slice.bytes_init(), 5);
/// assert_eq!(slice.into_inner().len(), 11);
/// ```
///
/// A buffer counts its initialized bytes as a prefix (a `Vec`'s length). Writing a slice
/// sends its initialized bytes ([`IoBuf::bytes_init`]: none if it starts past the prefix).
/// Reading into a slice that starts past the prefix zeroes the gap between the prefix and
/// the slice when data arrives, so the buffer never shows memory nobody wrote:
///
/// ```
/// use iomgr::buf::BufExt;
/// use iomgr::net::UnixStream;
/// # iomgr::Runtime::new()?.block_on(async {
/// let (a, b) = UnixStream::pair()?;
/// let (res, _) = a.write(b"hi").await;
/// res?;
/// let (res, slice) = b.read(Vec::with_capacity(8).slice(4..8)).await;
/// assert_eq!(res?, 2);
/// assert_eq!(&slice[..], b"hi");
/// assert_eq!(slice.into_inner(), b"\0\0\0\0hi"); // bytes 0..4 were zeroed, not left as found
/// # std::io::Result::Ok(()) })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Slice<B> {
    buf: B,
    begin: usize,
    end: usize,
}

impl<B: IoBuf> Slice<B> {
    pub(crate) fn new(buf: B, range: impl RangeBounds<usize>) -> Self {
        let begin = match range.start_bound() {
            Bound::Included(&n) => n,
            Bound::Excluded(&n) => n + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&n) => n + 1,
            Bound::Excluded(&n) => n,
            Bound::Unbounded => buf.bytes_init().max(begin),
        };
        assert!(
            begin <= end && end <= buf.bytes_total(),
            "slice {begin}..{end} is out of range for a buffer of {} bytes",
            buf.bytes_total()
        );
        Slice { buf, begin, end }
    }

    /// Offset of the slice's start in the underlying buffer.
    pub fn begin(&self) -> usize {
        self.begin
    }

    /// Offset just past the slice's end in the underlying buffer.
    pub fn end(&self) -> usize {
        self.end
    }

    /// The underlying buffer.
    pub fn get_ref(&self) -> &B {
        &self.buf
    }

    /// Gives the whole buffer back.
    pub fn into_inner(self) -> B {
        self.buf
    }
}

impl<B: IoBuf> Deref for Slice<B> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        let init = self.buf.bytes_init().clamp(self.begin, self.end);
        // SAFETY: `begin..init` lies within the buffer's initialized bytes.
        unsafe {
            std::slice::from_raw_parts(self.buf.stable_ptr().add(self.begin), init - self.begin)
        }
    }
}

impl<B: IoBufMut> DerefMut for Slice<B> {
    fn deref_mut(&mut self) -> &mut [u8] {
        let init = self.buf.bytes_init().clamp(self.begin, self.end);
        // SAFETY: `begin..init` lies within the buffer's initialized bytes, and we hold the
        // buffer mutably.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.buf.stable_mut_ptr().add(self.begin),
                init - self.begin,
            )
        }
    }
}

// SAFETY: a sub-range of a stable buffer is stable; `bytes_init` counts only initialized bytes
// inside the range.
unsafe impl<B: IoBuf> IoBuf for Slice<B> {
    fn stable_ptr(&self) -> *const u8 {
        // SAFETY: `begin <= bytes_total`, so the offset stays within (or one past) the buffer.
        unsafe { self.buf.stable_ptr().add(self.begin) }
    }
    fn bytes_init(&self) -> usize {
        self.buf.bytes_init().clamp(self.begin, self.end) - self.begin
    }
    fn bytes_total(&self) -> usize {
        self.end - self.begin
    }
}

// SAFETY: writes stay within `begin..end`, which lies within the buffer's capacity, and
// `set_init` never marks a byte initialized that was not written (see there).
unsafe impl<B: IoBufMut> IoBufMut for Slice<B> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        // SAFETY: as for `stable_ptr`.
        unsafe { self.buf.stable_mut_ptr().add(self.begin) }
    }

    /// Marks `begin..begin + pos` of the buffer initialized.
    ///
    /// The buffer can only count an initialized *prefix*. If the slice starts past it, the
    /// bytes between (`bytes_init()..begin`) were never written: they are zeroed first, so
    /// that extending the prefix over them exposes no uninitialized memory.
    unsafe fn set_init(&mut self, pos: usize) {
        if pos == 0 {
            return;
        }
        let init = self.buf.bytes_init();
        if init < self.begin {
            // SAFETY: `init < begin <= end <= bytes_total`, so `init..begin` lies within the
            // buffer's capacity, which `stable_mut_ptr` is valid for writes of; we hold the
            // buffer mutably and no kernel op uses it (its read has completed).
            unsafe {
                self.buf
                    .stable_mut_ptr()
                    .add(init)
                    .write_bytes(0, self.begin - init)
            };
        }
        // SAFETY: the buffer's first `init` bytes were initialized, `init..begin` has just
        // been zeroed (or is empty), and the caller guarantees `begin..begin + pos`.
        unsafe { self.buf.set_init(self.begin + pos) };
    }
}
