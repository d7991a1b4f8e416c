//! [`Chunk`]: the owned byte buffer that byte sources give, recycled through its pool.

use std::cell::RefCell;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::rc::Rc;

use crate::buf::{IoBuf, IoBufMut};

/// A pool of equal-sized byte buffers, shared by a source and the [`Chunk`]s it gives.
///
/// A chunk dropped anywhere down the pipeline (by a sink after its write, by a framing
/// adapter once it has read it) goes back to its pool, and the source reads into it again:
/// after warm-up, a byte pipeline allocates no buffers. The pool keeps at most a few spare
/// buffers (bounded by how many are in flight at once), and frees the rest.
///
/// Every reader makes its own pool; pass one to [`Reader::buffers`](super::Reader::buffers)
/// to size it, or to share it between readers:
///
/// ```no_run
/// use iomgr::pipeline::{ChunkPool, Lines, SocketReader};
/// # async fn demo(a: iomgr::net::TcpStream, b: iomgr::net::TcpStream) {
/// let pool = ChunkPool::new(4096, 16); // 4 KiB chunks, up to 16 spare
/// let from_a = SocketReader::new(&a).buffers(pool.clone());
/// let from_b = SocketReader::new(&b).buffers(pool.clone());
/// # let _ = (from_a, from_b);
/// # }
/// ```
#[derive(Clone)]
pub struct ChunkPool {
    inner: Rc<PoolInner>,
}

struct PoolInner {
    free: RefCell<Vec<Vec<u8>>>,
    size: usize,
    keep: usize,
}

impl ChunkPool {
    /// A pool of `size`-byte buffers that keeps up to `keep` spare ones.
    ///
    /// # Panics
    /// If `size` is 0.
    pub fn new(size: usize, keep: usize) -> Self {
        assert!(size > 0, "a chunk pool needs a chunk size above 0");
        ChunkPool {
            inner: Rc::new(PoolInner {
                free: RefCell::new(Vec::with_capacity(keep)),
                size,
                keep,
            }),
        }
    }

    /// The size of its buffers.
    pub fn chunk_size(&self) -> usize {
        self.inner.size
    }

    /// An empty chunk with room for [`chunk_size`](Self::chunk_size) bytes: a spare buffer
    /// if there is one, a new one otherwise.
    pub fn get(&self) -> Chunk {
        let buf = self
            .inner
            .free
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.inner.size));
        Chunk {
            buf,
            home: Some(self.inner.clone()),
        }
    }

    /// How many spare buffers it holds right now.
    pub fn spare(&self) -> usize {
        self.inner.free.borrow().len()
    }
}

impl fmt::Debug for ChunkPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkPool")
            .field("chunk_size", &self.inner.size)
            .field("spare", &self.spare())
            .finish()
    }
}

/// Bytes read by a byte source: an owned buffer that returns to its [`ChunkPool`] when
/// dropped.
///
/// It derefs to the bytes read (`&[u8]`), and is an [`IoBuf`], so a sink writes it as it is:
/// in `file => &socket` the buffer the file was read into is the buffer written to the
/// socket, with no copy. [`into_vec`](Chunk::into_vec) keeps the bytes and leaves the pool.
pub struct Chunk {
    buf: Vec<u8>,
    home: Option<Rc<PoolInner>>,
}

impl Chunk {
    /// A chunk holding `bytes`, in no pool.
    pub fn from_vec(bytes: Vec<u8>) -> Self {
        Chunk {
            buf: bytes,
            home: None,
        }
    }

    /// The bytes, as a vector that no longer returns to the pool.
    pub fn into_vec(mut self) -> Vec<u8> {
        self.home = None;
        std::mem::take(&mut self.buf)
    }

    /// Shortens the chunk to `len` bytes.
    pub fn truncate(&mut self, len: usize) {
        self.buf.truncate(len);
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        if let Some(home) = self.home.take() {
            let mut free = home.free.borrow_mut();
            if free.len() < home.keep && self.buf.capacity() >= home.size {
                let mut buf = std::mem::take(&mut self.buf);
                buf.clear();
                free.push(buf);
            }
        }
    }
}

impl Deref for Chunk {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf
    }
}

impl DerefMut for Chunk {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }
}

impl AsRef<[u8]> for Chunk {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl From<Vec<u8>> for Chunk {
    fn from(bytes: Vec<u8>) -> Self {
        Chunk::from_vec(bytes)
    }
}

impl PartialEq<[u8]> for Chunk {
    fn eq(&self, other: &[u8]) -> bool {
        self.buf == other
    }
}

impl fmt::Debug for Chunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chunk")
            .field("len", &self.buf.len())
            .field("pooled", &self.home.is_some())
            .finish()
    }
}

// SAFETY: delegates to the `Vec<u8>`, whose heap memory does not move when the chunk moves.
unsafe impl IoBuf for Chunk {
    fn stable_ptr(&self) -> *const u8 {
        self.buf.stable_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.buf.bytes_init()
    }
    fn bytes_total(&self) -> usize {
        self.buf.bytes_total()
    }
}

// SAFETY: delegates to the `Vec<u8>`.
unsafe impl IoBufMut for Chunk {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.buf.stable_mut_ptr()
    }
    unsafe fn set_init(&mut self, pos: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { self.buf.set_init(pos) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_chunk_goes_back_to_its_pool_and_is_reused() {
        let pool = ChunkPool::new(64, 2);
        let mut a = pool.get();
        a.buf.extend_from_slice(b"hello");
        let ptr = a.as_ptr();
        drop(a);
        assert_eq!(pool.spare(), 1);
        let b = pool.get();
        assert_eq!(b.as_ptr(), ptr, "the same memory again");
        assert!(b.is_empty(), "cleared");
        assert_eq!(pool.spare(), 0);
    }

    #[test]
    fn the_pool_keeps_at_most_keep_spares_and_into_vec_leaves_it() {
        let pool = ChunkPool::new(8, 1);
        let (a, b) = (pool.get(), pool.get());
        drop((a, b));
        assert_eq!(pool.spare(), 1);
        let mut c = pool.get();
        c.buf.push(7);
        assert_eq!(c.into_vec(), [7]);
        assert_eq!(pool.spare(), 0);
    }
}
