//! The owned-buffer traits.

/// A buffer the kernel may read from (the source of a write or send), owned by the op.
///
/// Ops take buffers **by value** and hand them back in their output, because the kernel uses
/// the memory after the call that started the op returns: a borrow could end (and the memory
/// be reused) while the kernel still reads it.
///
/// # Safety
/// `stable_ptr()` must point to `bytes_init()` initialized bytes that stay valid, and at the
/// same address, while the buffer value is moved around and until it is dropped or mutated
/// through `&mut` (heap or `'static` memory: never an inline array that moves with the value).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be used as an io_uring buffer: ops take an owned buffer",
    label = "this must be an owned buffer such as `Vec<u8>`, `Box<[u8]>`, `String` or `&'static [u8]`",
    note = "pass the buffer by value and take it back from the result: \
            `let (res, buf) = stream.write(buf).await;`",
    note = "a borrow (`&buf`, `&mut buf`) or an inline array cannot be used: the kernel keeps \
            using the memory after the call returns, even if the future is dropped"
)]
pub unsafe trait IoBuf: 'static {
    /// Start of the buffer's memory.
    fn stable_ptr(&self) -> *const u8;

    /// Number of initialized bytes (what a write sends).
    fn bytes_init(&self) -> usize;

    /// Total capacity in bytes (what a read may fill).
    fn bytes_total(&self) -> usize;
}

/// A buffer the kernel may write into (the target of a read or receive), owned by the op.
///
/// Reads fill it **from its start**, up to [`IoBuf::bytes_total`], and then mark that many
/// bytes initialized: read into `vec![0; 4096]` or `Vec::with_capacity(4096)` and use the
/// returned count. Read into a [`Slice`](crate::buf::Slice) to fill part of a buffer.
///
/// # Safety
/// As for [`IoBuf`], and `stable_mut_ptr()` must be valid for writes of `bytes_total()` bytes.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be read into: ops take an owned, mutable buffer",
    label = "this must be an owned buffer such as `Vec<u8>` or `Box<[u8]>`",
    note = "pass the buffer by value and take it back from the result: \
            `let (res, buf) = stream.read(buf).await;`",
    note = "a borrow (`&mut buf`) or an inline array cannot be used: the kernel writes into \
            the memory after the call returns, even if the future is dropped"
)]
pub unsafe trait IoBufMut: IoBuf {
    /// Start of the buffer's memory, for writing.
    fn stable_mut_ptr(&mut self) -> *mut u8;

    /// Marks the first `pos` bytes initialized (after the kernel wrote them). Never shrinks.
    ///
    /// # Safety
    /// The first `pos` bytes must really be initialized.
    unsafe fn set_init(&mut self, pos: usize);
}

// SAFETY: a Vec's heap memory does not move when the Vec value moves; the first `len` bytes
// are initialized and `capacity` bytes are allocated.
unsafe impl IoBuf for Vec<u8> {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.capacity()
    }
}

// SAFETY: as for `IoBuf for Vec<u8>`; writes stay within the capacity.
unsafe impl IoBufMut for Vec<u8> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, pos: usize) {
        if self.len() < pos {
            // SAFETY: the caller guarantees the first `pos` bytes are initialized, and
            // `pos <= capacity` since the kernel was given `capacity` bytes.
            unsafe { self.set_len(pos) };
        }
    }
}

// SAFETY: a boxed slice's heap memory does not move with the box; all of it is initialized.
unsafe impl IoBuf for Box<[u8]> {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.len()
    }
}

// SAFETY: as above; all bytes are always initialized, so `set_init` has nothing to do.
unsafe impl IoBufMut for Box<[u8]> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, _pos: usize) {}
}

// SAFETY: a String's heap memory does not move with it; `len` bytes are initialized. (No
// `IoBufMut`: the kernel could write bytes that are not UTF-8.)
unsafe impl IoBuf for String {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.capacity()
    }
}

// SAFETY: `'static` data is never freed or moved.
unsafe impl IoBuf for &'static [u8] {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.len()
    }
}

// SAFETY: `'static` data is never freed or moved.
unsafe impl IoBuf for &'static str {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.len()
    }
}

// SAFETY: `'static` data is never freed or moved (a byte-string literal such as `b"ping"`).
unsafe impl<const N: usize> IoBuf for &'static [u8; N] {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        N
    }
    fn bytes_total(&self) -> usize {
        N
    }
}
