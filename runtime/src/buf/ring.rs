//! Provided-buffer rings: [`BufRing`] and its chunks, [`RingBuf`].

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicU16, Ordering};
use std::task::Waker;

use super::IoBuf;
use crate::runtime::{Shared, current};

/// `struct io_uring_buf`: one ring entry. The ring's tail overlays `resv` of entry 0.
#[repr(C)]
struct RawEntry {
    addr: u64,
    len: u32,
    bid: u16,
    resv: u16,
}

const _: () = assert!(size_of::<RawEntry>() == 16);

/// The kernel wants the ring of entries page-aligned.
const RING_ALIGN: usize = 4096;

/// A provided-buffer ring: the kernel picks a buffer for each receive.
///
/// A `BufRing` is `N` buffers of `S` bytes registered with the runtime's io_uring under a
/// buffer group (`IORING_REGISTER_PBUF_RING`). A multishot receive
/// ([`TcpStream::recv_multishot`](crate::net::TcpStream::recv_multishot)) names the group
/// instead of a buffer: each time data arrives, the kernel takes a buffer from the ring,
/// fills it and posts a completion naming it. The stream hands it out as a [`RingBuf`],
/// which derefs to the bytes and puts its buffer back into the ring when dropped. Memory
/// is only tied up while data waits to be used, not while a connection is idle: with many
/// mostly idle connections, one ring serves them all.
///
/// ```no_run
/// use iomgr::buf::BufRing;
/// use iomgr::net::TcpStream;
/// # async fn demo(stream: TcpStream) -> std::io::Result<()> {
/// let ring = BufRing::new(64, 4096)?; // 64 buffers of 4 KiB, for this runtime
/// let mut chunks = std::pin::pin!(stream.recv_multishot(&ring));
/// while let Some(chunk) = chunks.as_mut().next().await {
///     let chunk = chunk?;
///     println!("{} bytes: {:?}", chunk.len(), &chunk[..]);
/// } // each chunk's buffer went back to the ring when it was dropped
/// # Ok(()) }
/// ```
///
/// # Who owns the memory
///
/// The ring's memory (the ring of `io_uring_buf` entries and the buffers) is reference
/// counted: every [`BufRing`] handle, every [`RingBuf`] and every receive op in flight holds
/// a count, and the memory is unregistered and freed when the last one goes. A chunk is
/// therefore `'static`: it may be kept after its stream and the `BufRing` handle are gone,
/// moved into another task, or written to another socket (a `RingBuf` is an
/// [`IoBuf`](super::IoBuf)). A receive abandoned in flight keeps the memory until the
/// kernel's last completion, and a chunk that completion carries goes straight back into
/// the ring. We chose reference counting over a borrow (`RingBuf<'ring>`), which would make
/// "a chunk outlives its ring" a compile error: the memory must outlive the handle anyway
/// (an abandoned op may still write into it), and chunks that cannot leave the scope of a
/// borrow cannot be handed to a spawned task, which is what servers do with them. A count
/// costs one non-atomic increment per chunk and nothing else; `RingBuf` is `!Send`, since
/// its buffer goes back to a ring only the runtime's thread touches.
///
/// # When the ring runs dry
///
/// If data arrives while every buffer is out (held by chunks not dropped yet), the kernel
/// ends the multishot receive with `ENOBUFS` and leaves the data in the socket. The stream
/// then waits until a chunk gives its buffer back and arms a new receive: nothing is lost
/// and the order is kept. A consumer slower than its peer is thus paced by the ring's size,
/// like a fixed window.
///
/// Cloning the handle is cheap (a reference count); every clone names the same ring.
#[derive(Clone)]
pub struct BufRing {
    inner: Rc<RingInner>,
}

impl BufRing {
    /// Registers `entries` buffers of `buf_len` bytes each with the runtime running on this
    /// thread, under a group id the runtime picks.
    ///
    /// `entries` must be a power of two from 1 to 32768. Fails with `Unsupported` on a kernel
    /// without provided-buffer rings (before Linux 5.19), and with `InvalidInput` for a
    /// size io_uring cannot take.
    pub fn new(entries: u16, buf_len: usize) -> io::Result<BufRing> {
        let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
        if entries == 0 || !entries.is_power_of_two() || entries > 32768 {
            return Err(invalid(format!(
                "BufRing::new({entries}, ..): a provided-buffer ring needs a power of two \
                 from 1 to 32768 entries"
            )));
        }
        let len = u32::try_from(buf_len)
            .ok()
            .filter(|&l| l > 0)
            .ok_or_else(|| {
                invalid(format!(
                    "BufRing::new(.., {buf_len}): buffers must have 1 to {} bytes",
                    u32::MAX
                ))
            })?;
        let total = (entries as usize)
            .checked_mul(buf_len)
            .ok_or_else(|| invalid("BufRing::new: the buffers' total size overflows".into()))?;
        let shared = current().ok_or_else(|| {
            io::Error::other(
                "BufRing::new needs the runtime it registers with: call it inside \
                 Runtime::block_on",
            )
        })?;
        let ring_layout =
            Layout::from_size_align(entries as usize * size_of::<RawEntry>(), RING_ALIGN)
                .map_err(|e| invalid(e.to_string()))?;
        let bufs_layout = Layout::from_size_align(total, 64).map_err(|e| invalid(e.to_string()))?;
        // SAFETY: both layouts have a non-zero size (entries >= 1, buf_len >= 1).
        let ring = NonNull::new(unsafe { alloc_zeroed(ring_layout) }.cast::<RawEntry>());
        // SAFETY: as above.
        let bufs = NonNull::new(unsafe { alloc_zeroed(bufs_layout) });
        let (Some(ring), Some(bufs)) = (ring, bufs) else {
            // SAFETY: each pointer, if not null, came from `alloc_zeroed` with its layout.
            unsafe {
                if let Some(r) = ring {
                    dealloc(r.as_ptr().cast(), ring_layout);
                }
                if let Some(b) = bufs {
                    dealloc(b.as_ptr(), bufs_layout);
                }
            }
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!("no memory for a ring of {entries} buffers of {buf_len} bytes"),
            ));
        };
        let mut inner = RingInner {
            runtime: Rc::downgrade(&shared),
            runtime_id: shared.id,
            bgid: 0,
            mask: entries - 1,
            entries,
            buf_len: len,
            ring,
            ring_layout,
            bufs,
            bufs_layout,
            tail: Cell::new(0),
            in_ring: Cell::new(0),
            waiters: RefCell::new(VecDeque::new()),
            registered: false,
        };
        // SAFETY: the ring memory is page-aligned, sized for `entries` entries, and freed only
        // by `RingInner::drop` after unregistering it (or never, if that fails); the buffers
        // it will list live as long.
        inner.bgid = unsafe {
            shared
                .driver
                .borrow_mut()
                .register_buf_ring(ring.as_ptr() as u64, entries)?
        };
        inner.registered = true;
        for bid in 0..entries {
            inner.push(bid);
        }
        inner.publish();
        Ok(BufRing {
            inner: Rc::new(inner),
        })
    }

    /// The buffer group id the ring is registered under.
    pub fn group_id(&self) -> u16 {
        self.inner.bgid
    }

    /// How many buffers the ring has.
    pub fn entries(&self) -> u16 {
        self.inner.entries
    }

    /// The size of each buffer.
    pub fn buf_len(&self) -> usize {
        self.inner.buf_len as usize
    }

    /// How many buffers are in the ring for the kernel to pick (the others are held by
    /// chunks, or taken by completions not yet seen).
    pub fn available(&self) -> usize {
        self.inner.in_ring.get() as usize
    }

    pub(crate) fn inner(&self) -> &Rc<RingInner> {
        &self.inner
    }
}

impl fmt::Debug for BufRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufRing")
            .field("group_id", &self.inner.bgid)
            .field("entries", &self.inner.entries)
            .field("buf_len", &self.inner.buf_len)
            .field("available", &self.inner.in_ring.get())
            .finish()
    }
}

impl fmt::Debug for RingInner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingInner")
            .field("group_id", &self.bgid)
            .field("in_ring", &self.in_ring.get())
            .finish_non_exhaustive()
    }
}

/// The ring's memory and bookkeeping, shared by handles, chunks and ops in flight.
pub(crate) struct RingInner {
    runtime: Weak<Shared>,
    runtime_id: u32,
    bgid: u16,
    mask: u16,
    entries: u16,
    buf_len: u32,
    /// `entries` entries, shared with the kernel (which reads them, up to the tail).
    ring: NonNull<RawEntry>,
    ring_layout: Layout,
    /// `entries * buf_len` bytes; the kernel writes a buffer it picked until it posts the
    /// completion naming it, and we touch a buffer only while a chunk holds it.
    bufs: NonNull<u8>,
    bufs_layout: Layout,
    /// Our tail: entries before it are visible to the kernel once published.
    tail: Cell<u16>,
    /// Buffers put in the ring and not yet seen taken by a completion.
    in_ring: Cell<u16>,
    /// Streams waiting for a buffer to come back (after `ENOBUFS`), oldest first.
    waiters: RefCell<VecDeque<Waker>>,
    registered: bool,
}

impl RingInner {
    pub(crate) fn bgid(&self) -> u16 {
        self.bgid
    }

    pub(crate) fn runtime_id(&self) -> u32 {
        self.runtime_id
    }

    pub(crate) fn in_ring(&self) -> u16 {
        self.in_ring.get()
    }

    /// Writes buffer `bid` into the entry at our tail and advances it (not yet published).
    fn push(&self, bid: u16) {
        let tail = self.tail.get();
        // SAFETY: `tail & mask < entries`, so the entry is inside the ring's allocation. The
        // kernel reads only entries between its head and the published tail, and this one is
        // past the published tail (at most `entries` buffers exist, and this one is not in the
        // ring), so nobody reads it concurrently. Fields are written one by one through raw
        // pointers: `resv` of entry 0 is the tail the kernel reads, and is not touched here.
        unsafe {
            let entry = self.ring.as_ptr().add((tail & self.mask) as usize);
            let addr = self.bufs.as_ptr().add(bid as usize * self.buf_len as usize);
            std::ptr::addr_of_mut!((*entry).addr).write(addr as u64);
            std::ptr::addr_of_mut!((*entry).len).write(self.buf_len);
            std::ptr::addr_of_mut!((*entry).bid).write(bid);
        }
        self.tail.set(tail.wrapping_add(1));
        self.in_ring.set(self.in_ring.get() + 1);
    }

    /// Makes the entries pushed so far visible to the kernel.
    fn publish(&self) {
        // SAFETY: the tail is the `resv` field of entry 0 (offset 14, 2-aligned), inside the
        // ring's allocation; the kernel reads it with acquire ordering, and only we write it,
        // always through this atomic view.
        let tail = unsafe { &*std::ptr::addr_of!((*self.ring.as_ptr()).resv).cast::<AtomicU16>() };
        tail.store(self.tail.get(), Ordering::Release);
    }

    /// Puts buffer `bid` back into the ring and wakes the stream that has waited longest
    /// for one (each waiting stream has data the ring had no room for, so one buffer is
    /// one stream's worth: waking them all would make all but one find the ring empty
    /// again). Inside the driver, the waker goes to `defer` instead.
    fn recycle(&self, bid: u16, defer: Option<&mut Vec<Waker>>) {
        self.push(bid);
        self.publish();
        let waker = match self.waiters.try_borrow_mut() {
            Ok(mut waiters) => waiters.pop_front(),
            Err(_) => None,
        };
        if let Some(waker) = waker {
            match defer {
                Some(out) => out.push(waker),
                None => waker.wake(),
            }
        }
    }

    /// Wakes `waker` when a buffer comes back (once, in turn with other waiting streams).
    /// A stream that stops waiting (it re-armed, or is dropped) must say so with
    /// [`stop_waiting`](Self::stop_waiting), so that no returned buffer's wake is spent on
    /// it while another stream waits.
    pub(crate) fn wait_for_buffer(&self, waker: &Waker) {
        let mut waiters = self.waiters.borrow_mut();
        if !waiters.iter().any(|w| w.will_wake(waker)) {
            waiters.push_back(waker.clone());
        }
    }

    /// Takes `waker` off the waiting list.
    pub(crate) fn stop_waiting(&self, waker: &Waker) {
        if let Ok(mut waiters) = self.waiters.try_borrow_mut() {
            waiters.retain(|w| !w.will_wake(waker));
        }
    }

    /// The chunk a completion flagged `IORING_CQE_F_BUFFER` hands over: buffer `bid` with
    /// `len` bytes of data.
    pub(crate) fn take(self: &Rc<Self>, bid: u16, len: u32) -> io::Result<RingBuf> {
        if bid >= self.entries || len > self.buf_len {
            return Err(io::Error::other(format!(
                "the kernel named buffer {bid} ({len} bytes) of provided-buffer group {}, \
                 which has {} buffers of {} bytes: another ring on this runtime uses the \
                 same group id",
                self.bgid, self.entries, self.buf_len
            )));
        }
        self.in_ring.set(self.in_ring.get().saturating_sub(1));
        Ok(RingBuf {
            ring: self.clone(),
            bid,
            len,
        })
    }

    /// A completion of an abandoned receive took buffer `bid`: straight back into the ring.
    pub(crate) fn reclaim(&self, bid: u16, wakers: &mut Vec<Waker>) {
        if bid < self.entries {
            self.in_ring.set(self.in_ring.get().saturating_sub(1));
            self.recycle(bid, Some(wakers));
        }
    }
}

impl Drop for RingInner {
    fn drop(&mut self) {
        // Every chunk and every op that named the group is gone (each held a count), so
        // the kernel has no reason to read the ring; unregister it before freeing it.
        if self.registered {
            let unregistered = match self.runtime.upgrade() {
                Some(shared) => match shared.driver.try_borrow_mut() {
                    Ok(mut driver) => driver.unregister_buf_ring(self.bgid).is_ok(),
                    // Dropped from inside the driver: never free what the kernel may
                    // still consider registered.
                    Err(_) => false,
                },
                // The runtime is gone, and its driver waited for every op before closing
                // the ring (leaking the resources, and so this memory, of any op the kernel
                // did not finish): nothing can pick a buffer from this ring again.
                None => true,
            };
            if !unregistered {
                return;
            }
        }
        // SAFETY: both blocks came from `alloc_zeroed` with these layouts, and the kernel no
        // longer uses them (see above).
        unsafe {
            dealloc(self.ring.as_ptr().cast(), self.ring_layout);
            dealloc(self.bufs.as_ptr(), self.bufs_layout);
        }
    }
}

/// One received chunk: a buffer of a [`BufRing`] the kernel filled. Derefs to the bytes;
/// dropping it puts the buffer back into the ring.
///
/// It is an owned buffer ([`IoBuf`]): write it to a socket as it is, without a copy.
pub struct RingBuf {
    ring: Rc<RingInner>,
    bid: u16,
    len: u32,
}

impl RingBuf {
    /// The buffer's id in its ring.
    pub fn buffer_id(&self) -> u16 {
        self.bid
    }

    /// How many bytes the buffer can hold.
    pub fn capacity(&self) -> usize {
        self.ring.buf_len as usize
    }

    /// Shortens the chunk to its first `len` bytes (no effect if it is not longer).
    pub fn truncate(&mut self, len: usize) {
        if len < self.len as usize {
            self.len = len as u32;
        }
    }

    fn ptr(&self) -> *mut u8 {
        // SAFETY: `bid < entries` (checked in `take`), so the offset is inside the buffers.
        unsafe {
            self.ring
                .bufs
                .as_ptr()
                .add(self.bid as usize * self.ring.buf_len as usize)
        }
    }
}

impl Deref for RingBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: the kernel wrote `len` bytes into this buffer before posting the completion
        // that named it, and no longer touches it: it is out of the ring until this chunk
        // puts it back. `len <= buf_len`, checked in `take`.
        unsafe { std::slice::from_raw_parts(self.ptr(), self.len as usize) }
    }
}

impl DerefMut for RingBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for `deref`; this chunk is the buffer's only owner.
        unsafe { std::slice::from_raw_parts_mut(self.ptr(), self.len as usize) }
    }
}

impl Drop for RingBuf {
    fn drop(&mut self) {
        self.ring.recycle(self.bid, None);
    }
}

// SAFETY: the buffer lies in the ring's heap block, which the chunk keeps alive (its count)
// and which never moves; its first `len` bytes are initialized.
unsafe impl IoBuf for RingBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len as usize
    }
    fn bytes_total(&self) -> usize {
        self.len as usize
    }
}

impl fmt::Debug for RingBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingBuf")
            .field("group_id", &self.ring.bgid)
            .field("buffer_id", &self.bid)
            .field("len", &self.len)
            .finish()
    }
}
