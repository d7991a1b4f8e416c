//! Registered (fixed) buffers: see [`FixedBufPool`].

use std::alloc::Layout;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::ptr::NonNull;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use slab::Slab;

use super::guard::{self, GUARD_LEN};
use super::{IoBuf, IoBufMut, Slice};
use crate::runtime::{Shared, current};

/// The largest buffer the kernel registers (1 GiB).
const MAX_SIZE: usize = 1 << 30;
/// The most buffers one pool holds (the driver's registered-buffer table has this many slots).
const MAX_COUNT: usize = crate::driver::BUFFER_TABLE as usize;

pub(crate) mod private {
    pub trait Sealed {}
}

/// A buffer in memory registered with a ring: what `read_fixed` and `write_fixed` take.
///
/// Implemented by [`FixedBuf`], by [`Slice`]s of one, and by lent slots of a
/// [`RegisteredMemoryManager`](crate::memory::RegisteredMemoryManager). Sealed: only
/// iomgr can register memory with its rings.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a registered buffer: `*_fixed` ops need a buffer from a `FixedBufPool`",
    label = "expected a `FixedBuf` (or a `Slice` of one)",
    note = "check one out with `pool.get().await` or `pool.try_get()?` from an \
            `iomgr::buf::FixedBufPool`",
    note = "for an ordinary owned buffer use the plain op (`read`, `read_at`, `write`, ...)"
)]
pub trait FixedIoBuf: IoBuf + private::Sealed {
    /// The buffer's slot in the ring's registered-buffer table (the SQE's `buf_index`).
    fn buf_index(&self) -> u16;

    /// The id of the runtime whose ring registered the buffer.
    #[doc(hidden)]
    fn ring_id(&self) -> u32;
}

/// A registered buffer the kernel may write into: what `read_fixed` takes.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be read into with `read_fixed`: it needs a writable registered buffer",
    label = "expected a `FixedBuf` (or a `Slice` of one)",
    note = "check one out with `pool.get().await` or `pool.try_get()?` from an \
            `iomgr::buf::FixedBufPool`",
    note = "for an ordinary owned buffer use the plain op (`read`, `read_at`)"
)]
pub trait FixedIoBufMut: FixedIoBuf + IoBufMut {}

impl<B: FixedIoBuf> private::Sealed for Slice<B> {}

impl<B: FixedIoBuf> FixedIoBuf for Slice<B> {
    fn buf_index(&self) -> u16 {
        self.get_ref().buf_index()
    }
    fn ring_id(&self) -> u32 {
        self.get_ref().ring_id()
    }
}

impl<B: FixedIoBufMut> FixedIoBufMut for Slice<B> {}

/// A pool of buffers registered with the current runtime's ring once, used by `READ_FIXED`
/// and `WRITE_FIXED` without the kernel mapping them again for every op. Cloning gives
/// another handle to the same pool.
///
/// A `FixedBufPool` allocates `count` buffers of `size` bytes in one page-aligned block,
/// registers them with the current runtime's ring (one slot of the ring's registered-buffer
/// table each), and lends them out as owned [`FixedBuf`]s. A `FixedBuf` knows its slot and
/// goes back to the pool when dropped, so a buffer in flight stays checked out until the
/// kernel is done with it: an op dropped mid-flight keeps its buffer in the driver until the
/// last completion, and only then does the buffer return.
///
/// ```no_run
/// use iomgr::buf::FixedBufPool;
/// use iomgr::fs::File;
/// # iomgr::Runtime::new()?.block_on(async {
/// let pool = FixedBufPool::new(32, 4096)?;
/// let file = File::open("/etc/hosts").await?;
/// let buf = pool.get().await; // waits if all 32 are out
/// let (res, buf) = file.read_fixed_at(buf, 0).await;
/// println!("{:?}", &buf[..res?]);
/// # std::io::Result::Ok(()) })?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// - [`FixedBufPool::get`] waits (asynchronously, first come first served) when every buffer
///   is checked out; [`FixedBufPool::try_get`] fails at once with [`PoolExhausted`].
/// - A `FixedBuf` is also an ordinary owned buffer ([`IoBuf`], [`IoBufMut`]): any op takes it.
///   The `*_fixed` methods take only registered buffers ([`FixedIoBuf`]): passing a `Vec<u8>`
///   to `read_fixed` does not compile.
/// - A `FixedBuf` belongs to the ring that registered it. An op on another runtime's ring
///   fails with an error (and touches nothing); the type is `!Send`, so it never leaves its
///   thread.
/// - The pool's memory is freed, and its slots cleared, when the pool and every buffer are
///   gone.
///
/// In debug builds each buffer is followed by guard bytes, checked when it returns: a write
/// past its end (by unsafe code) panics naming the buffer. A buffer returned twice (possible
/// only through unsafe code that duplicated it) panics in every build.
#[derive(Clone)]
pub struct FixedBufPool {
    inner: Rc<PoolInner>,
}

struct PoolInner {
    /// `count * stride` bytes, zeroed when allocated (so every byte is initialized).
    memory: NonNull<u8>,
    layout: Layout,
    size: usize,
    /// Distance between buffers: `size` plus the guard, rounded up.
    stride: usize,
    count: u16,
    /// The first of the pool's `count` slots in the ring's registered-buffer table.
    first_slot: u32,
    ring_id: u32,
    ring: Weak<Shared>,
    state: RefCell<PoolState>,
}

struct PoolState {
    /// Buffers in the pool, the most recently returned last (taken first: warm in cache).
    free: Vec<u16>,
    /// Per buffer: `generation << 1 | out`. The generation grows at each checkout, so a
    /// stale duplicate is told apart from the buffer's current owner.
    marks: Vec<u32>,
    waiters: Slab<Waiter>,
    /// Keys of `waiters` still waiting, first come first served.
    queue: VecDeque<usize>,
    checkouts: u64,
    waited: u64,
    quarantined: u32,
}

enum Waiter {
    Waiting(Option<Waker>),
    /// A returned buffer handed straight to this waiter (already checked out for it).
    Granted {
        index: u16,
        generation: u32,
    },
}

/// How a pool is doing: see [`FixedBufPool::stats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FixedPoolStats {
    /// Buffers the pool was made with.
    pub capacity: usize,
    /// Buffers in the pool now.
    pub available: usize,
    /// Buffers checked out now (by their owners, or by ops in flight).
    pub in_use: usize,
    /// Futures of [`FixedBufPool::get`] waiting for a buffer.
    pub waiting: usize,
    /// Checkouts since the pool was made.
    pub checkouts: u64,
    /// Checkouts that had to wait.
    pub waited: u64,
    /// Buffers taken out of circulation because their guard bytes were overwritten.
    pub quarantined: usize,
}

/// [`FixedBufPool::try_get`] found every buffer checked out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolExhausted {
    count: usize,
    size: usize,
}

impl fmt::Display for PoolExhausted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "all {} registered buffers of {} bytes are checked out; await `pool.get()` to wait \
             for one, or make the pool larger",
            self.count, self.size
        )
    }
}

impl std::error::Error for PoolExhausted {}

impl From<PoolExhausted> for io::Error {
    fn from(e: PoolExhausted) -> io::Error {
        io::Error::new(io::ErrorKind::WouldBlock, e)
    }
}

impl FixedBufPool {
    /// `count` buffers of `size` bytes, registered with the ring of the runtime running on
    /// this thread. Buffers whose size is a multiple of 4096 are page-aligned.
    ///
    /// # Errors
    /// - `InvalidInput` if `count` is not 1 to 4096 or `size` not 1 byte to 1 GiB;
    /// - `Unsupported` (naming the feature and the Linux version it needs) on a kernel
    ///   without `READ_FIXED`, `WRITE_FIXED` or a sparse buffer table;
    /// - `OutOfMemory` if the memory cannot be allocated or the ring's table has no room;
    /// - the registration's error otherwise, explained (a small `RLIMIT_MEMLOCK`, say);
    /// - an error if no runtime is running on this thread.
    pub fn new(count: usize, size: usize) -> io::Result<FixedBufPool> {
        if count == 0 || count > MAX_COUNT {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "FixedBufPool::new({count}, {size}): a pool holds 1 to {MAX_COUNT} buffers"
                ),
            ));
        }
        if size == 0 || size > MAX_SIZE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "FixedBufPool::new({count}, {size}): a registered buffer holds 1 byte to \
                     1 GiB"
                ),
            ));
        }
        let shared = current().ok_or_else(|| {
            io::Error::other(
                "FixedBufPool::new needs a running runtime: the buffers are registered with \
                 its ring; call it inside Runtime::block_on",
            )
        })?;
        {
            let mut driver = shared.driver.borrow_mut();
            driver.require(crate::driver::Feature::ReadFixed)?;
            driver.require(crate::driver::Feature::WriteFixed)?;
            driver.require(crate::driver::Feature::RegisteredBuffers)?;
        }
        let align = if size.is_multiple_of(4096) { 4096 } else { 64 };
        let stride = (size + GUARD_LEN).next_multiple_of(align);
        let too_big = || {
            io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!("FixedBufPool::new({count}, {size}): the pool would not fit in memory"),
            )
        };
        let layout = stride
            .checked_mul(count)
            .and_then(|bytes| Layout::from_size_align(bytes, 4096).ok())
            .ok_or_else(too_big)?;
        // SAFETY: the layout has a non-zero size (count and size are at least 1).
        let memory =
            NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) }).ok_or_else(too_big)?;
        let iovecs: Vec<libc::iovec> = (0..count)
            .map(|i| {
                // SAFETY: `i * stride + size <= count * stride`: inside the allocation.
                let base = unsafe { memory.as_ptr().add(i * stride) };
                if GUARD_LEN > 0 {
                    // SAFETY: the guard, `size..size + GUARD_LEN` of buffer `i`, lies within
                    // its stride, and nothing else uses the new allocation.
                    unsafe { guard::arm(base.add(size)) };
                }
                libc::iovec {
                    iov_base: base.cast(),
                    iov_len: size,
                }
            })
            .collect();
        // SAFETY: each iovec names `size` bytes of `memory`, which `PoolInner` frees only
        // after unregistering them (leaking them if it cannot), and only once every
        // `FixedBuf` (so every op using one) is gone. The guard bytes are not registered.
        let registered = unsafe { shared.driver.borrow_mut().register_buffers(&iovecs) };
        let first_slot = match registered {
            Ok(first) => first,
            Err(e) => {
                // SAFETY: allocated above with this layout; nothing was registered.
                unsafe { std::alloc::dealloc(memory.as_ptr(), layout) };
                return Err(e);
            }
        };
        let count = count as u16;
        Ok(FixedBufPool {
            inner: Rc::new(PoolInner {
                memory,
                layout,
                size,
                stride,
                count,
                first_slot,
                ring_id: shared.id,
                ring: Rc::downgrade(&shared),
                state: RefCell::new(PoolState {
                    free: (0..count).rev().collect(),
                    marks: vec![0; count as usize],
                    waiters: Slab::new(),
                    queue: VecDeque::new(),
                    checkouts: 0,
                    waited: 0,
                    quarantined: 0,
                }),
            }),
        })
    }

    /// A buffer if one is in the pool, else [`PoolExhausted`] at once.
    ///
    /// # Errors
    /// [`PoolExhausted`] when every buffer is checked out (it converts to an
    /// [`io::Error`] of kind `WouldBlock`).
    pub fn try_get(&self) -> Result<FixedBuf, PoolExhausted> {
        let taken = {
            let mut state = self.inner.state.borrow_mut();
            state
                .free
                .pop()
                .map(|index| (index, state.check_out(index)))
        };
        match taken {
            Some((index, generation)) => Ok(self.inner.buf(index, generation)),
            None => Err(PoolExhausted {
                count: self.inner.count as usize,
                size: self.inner.size,
            }),
        }
    }

    /// A buffer, waiting (first come, first served) while every one is checked out.
    ///
    /// A returned buffer goes straight to the longest waiter. Dropping the future gives up
    /// its place (and a buffer it was just granted goes to the next waiter). Bound the wait
    /// with [`timeout`](crate::time::timeout) if buffers may never come back.
    pub fn get(&self) -> GetFixed<'_> {
        GetFixed {
            pool: self,
            key: None,
        }
    }

    /// Bytes per buffer.
    pub fn buf_size(&self) -> usize {
        self.inner.size
    }

    /// How many buffers the pool was made with.
    pub fn capacity(&self) -> usize {
        self.inner.count as usize
    }

    /// How many buffers are in the pool now.
    pub fn available(&self) -> usize {
        self.inner.state.borrow().free.len()
    }

    /// The counters: buffers in the pool and out of it, waiters, checkouts.
    pub fn stats(&self) -> FixedPoolStats {
        let state = self.inner.state.borrow();
        let quarantined = state.quarantined as usize;
        FixedPoolStats {
            capacity: self.inner.count as usize,
            available: state.free.len(),
            in_use: self.inner.count as usize - state.free.len() - quarantined,
            waiting: state.queue.len(),
            checkouts: state.checkouts,
            waited: state.waited,
            quarantined,
        }
    }

    /// The slots of the ring's registered-buffer table the pool's buffers occupy.
    pub fn slots(&self) -> std::ops::Range<u32> {
        self.inner.first_slot..self.inner.first_slot + u32::from(self.inner.count)
    }
}

impl fmt::Debug for FixedBufPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FixedBufPool")
            .field("size", &self.inner.size)
            .field("slots", &self.slots())
            .field("stats", &self.stats())
            .finish()
    }
}

impl PoolState {
    /// Marks buffer `index` checked out under a new generation, which it returns.
    fn check_out(&mut self, index: u16) -> u32 {
        let mark = &mut self.marks[index as usize];
        debug_assert!(*mark & 1 == 0, "a free buffer is not checked out");
        let generation = (*mark >> 1).wrapping_add(1) & (u32::MAX >> 1);
        *mark = generation << 1 | 1;
        self.checkouts += 1;
        generation
    }
}

impl PoolInner {
    fn ptr(&self, index: u16) -> *mut u8 {
        // SAFETY: `index < count`, so the offset lies inside the allocation.
        unsafe { self.memory.as_ptr().add(index as usize * self.stride) }
    }

    fn buf(self: &Rc<Self>, index: u16, generation: u32) -> FixedBuf {
        FixedBuf {
            pool: self.clone(),
            index,
            generation,
            len: 0,
        }
    }

    fn describe(&self, index: u16) -> String {
        format!(
            "FixedBuf {index} (registered buffer {}) of a FixedBufPool of {} x {} bytes",
            self.first_slot + u32::from(index),
            self.count,
            self.size
        )
    }

    /// Takes buffer `index` back from its owner, which checked it out at `generation`.
    fn give_back(self: &Rc<Self>, index: u16, generation: u32) {
        if GUARD_LEN > 0 {
            // SAFETY: the guard of buffer `index` lies within its stride, was armed when the
            // pool was made, and is neither registered nor reachable through the buffer.
            if let Some((at, found)) = unsafe { guard::check(self.ptr(index).add(self.size)) } {
                {
                    let mut state = self.state.borrow_mut();
                    state.marks[index as usize] &= !1;
                    state.quarantined += 1;
                }
                guard::complain(guard::overrun(&self.describe(index), self.size, at, found));
                return;
            }
        }
        let granted = {
            let mut state = self.state.borrow_mut();
            let mark = state.marks[index as usize];
            if mark != (generation << 1 | 1) {
                drop(state);
                guard::complain(format!(
                    "iomgr: {} was returned to its pool twice (it is {}): unsafe code \
                     duplicated the FixedBuf (with ptr::read, say) and dropped both copies",
                    self.describe(index),
                    if mark & 1 == 0 {
                        "in the pool already"
                    } else {
                        "checked out again by someone else"
                    }
                ));
                return;
            }
            state.marks[index as usize] = mark & !1;
            let waiter = loop {
                let Some(key) = state.queue.pop_front() else {
                    break None;
                };
                if state.waiters.contains(key) {
                    break Some(key);
                }
            };
            match waiter {
                Some(key) => {
                    let generation = state.check_out(index);
                    match std::mem::replace(
                        &mut state.waiters[key],
                        Waiter::Granted { index, generation },
                    ) {
                        Waiter::Waiting(waker) => waker,
                        Waiter::Granted { .. } => unreachable!("a queued waiter is waiting"),
                    }
                }
                None => {
                    state.free.push(index);
                    None
                }
            }
        };
        if let Some(waker) = granted {
            waker.wake();
        }
    }
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        // Every FixedBuf is gone, so no op in flight uses the memory. Clear the slots before
        // freeing it: the kernel must not keep a registration of memory we give away.
        let cleared = match self.ring.upgrade() {
            Some(shared) => match shared.driver.try_borrow_mut() {
                Ok(mut driver) => driver
                    .unregister_buffers(self.first_slot, u32::from(self.count))
                    .is_ok(),
                // Dropped from inside the driver (it never runs user code): cannot clear.
                Err(_) => false,
            },
            // The ring is gone or going: no op of it can use the memory any more.
            None => true,
        };
        if cleared {
            // SAFETY: allocated in `new` with this layout; nothing refers to it any more.
            unsafe { std::alloc::dealloc(self.memory.as_ptr(), self.layout) };
        }
        // Otherwise leak it: the kernel may still hold the registration.
    }
}

/// The future of [`FixedBufPool::get`]: a buffer, once one is free.
#[must_use = "futures do nothing unless awaited"]
pub struct GetFixed<'a> {
    pool: &'a FixedBufPool,
    /// Our entry in the pool's waiters, once queued.
    key: Option<usize>,
}

impl Future for GetFixed<'_> {
    type Output = FixedBuf;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<FixedBuf> {
        let inner = &self.pool.inner;
        let mut state = inner.state.borrow_mut();
        match self.key {
            None => {
                if let Some(index) = state.free.pop() {
                    let generation = state.check_out(index);
                    drop(state);
                    return Poll::Ready(inner.buf(index, generation));
                }
                let key = state
                    .waiters
                    .insert(Waiter::Waiting(Some(cx.waker().clone())));
                state.queue.push_back(key);
                state.waited += 1;
                drop(state);
                self.key = Some(key);
                Poll::Pending
            }
            Some(key) => match &mut state.waiters[key] {
                Waiter::Granted { index, generation } => {
                    let (index, generation) = (*index, *generation);
                    state.waiters.remove(key);
                    drop(state);
                    self.key = None;
                    Poll::Ready(self.pool.inner.buf(index, generation))
                }
                Waiter::Waiting(waker) => {
                    match waker {
                        Some(w) if w.will_wake(cx.waker()) => {}
                        _ => *waker = Some(cx.waker().clone()),
                    }
                    Poll::Pending
                }
            },
        }
    }
}

impl Drop for GetFixed<'_> {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else {
            return;
        };
        let inner = &self.pool.inner;
        let granted = {
            let mut state = inner.state.borrow_mut();
            match state.waiters.remove(key) {
                Waiter::Waiting(_) => {
                    state.queue.retain(|&k| k != key);
                    None
                }
                Waiter::Granted { index, generation } => Some((index, generation)),
            }
        };
        // A buffer granted to us that we never took: it goes to the next waiter.
        if let Some((index, generation)) = granted {
            drop(inner.buf(index, generation));
        }
    }
}

impl fmt::Debug for GetFixed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GetFixed")
            .field("queued", &self.key.is_some())
            .finish_non_exhaustive()
    }
}

/// A registered buffer checked out of a [`FixedBufPool`]; goes back when dropped.
///
/// Like a `Vec<u8>` with a fixed capacity: it dereferences to its initialized bytes
/// (`len()` of them, none when checked out), a read fills it from its start, and a write
/// sends `len()` bytes. It works with every op; `read_fixed`/`write_fixed` use its
/// registration. `!Send`: it belongs to the thread (and ring) of its pool.
pub struct FixedBuf {
    pool: Rc<PoolInner>,
    index: u16,
    generation: u32,
    len: usize,
}

impl FixedBuf {
    /// The buffer's slot in the ring's registered-buffer table (the SQE's `buf_index`).
    pub fn buf_index(&self) -> u16 {
        (self.pool.first_slot + u32::from(self.index)) as u16
    }

    /// Bytes it holds (initialized and shown by `Deref`).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes it can hold (the pool's buffer size).
    pub fn capacity(&self) -> usize {
        self.pool.size
    }

    /// Forgets the bytes it holds (`len()` becomes 0).
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Keeps the first `len` bytes (nothing happens if it holds fewer).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Sets `len()` to `new_len`, filling new bytes with `value`.
    ///
    /// # Panics
    /// If `new_len` is more than the capacity.
    pub fn resize(&mut self, new_len: usize, value: u8) {
        assert!(
            new_len <= self.capacity(),
            "FixedBuf::resize({new_len}): the buffer holds at most {} bytes",
            self.capacity()
        );
        if new_len > self.len {
            // SAFETY: `len..new_len` lies within the buffer's `size` bytes, which we own.
            unsafe {
                self.pool
                    .ptr(self.index)
                    .add(self.len)
                    .write_bytes(value, new_len - self.len)
            };
        }
        self.len = new_len;
    }

    /// Appends `data`.
    ///
    /// # Panics
    /// If it does not fit (see [`remaining`](Self::remaining)).
    pub fn extend_from_slice(&mut self, data: &[u8]) {
        assert!(
            data.len() <= self.remaining(),
            "FixedBuf::extend_from_slice: {} bytes do not fit in the {} left of a {}-byte buffer",
            data.len(),
            self.remaining(),
            self.capacity()
        );
        // SAFETY: `len..len + data.len()` lies within the buffer, which we own; `data` is
        // another object (we hold `&mut self`, so it cannot borrow this buffer).
        unsafe {
            self.pool
                .ptr(self.index)
                .add(self.len)
                .copy_from_nonoverlapping(data.as_ptr(), data.len())
        };
        self.len += data.len();
    }

    /// Bytes that still fit.
    pub fn remaining(&self) -> usize {
        self.capacity() - self.len
    }
}

impl Drop for FixedBuf {
    fn drop(&mut self) {
        self.pool.give_back(self.index, self.generation);
    }
}

impl Deref for FixedBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: the first `len` bytes of our buffer are initialized (the whole pool was
        // zeroed when allocated) and only this owner reaches them.
        unsafe { std::slice::from_raw_parts(self.pool.ptr(self.index), self.len) }
    }
}

impl DerefMut for FixedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for `deref`, and we hold the buffer mutably.
        unsafe { std::slice::from_raw_parts_mut(self.pool.ptr(self.index), self.len) }
    }
}

impl fmt::Debug for FixedBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FixedBuf")
            .field("buf_index", &self.buf_index())
            .field("len", &self.len)
            .field("capacity", &self.capacity())
            .finish()
    }
}

// SAFETY: the buffer is `size` bytes of the pool's allocation, which does not move and stays
// allocated while this `FixedBuf` holds the pool; all of it is initialized, the first `len`
// bytes with the buffer's contents.
unsafe impl IoBuf for FixedBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.pool.ptr(self.index)
    }
    fn bytes_init(&self) -> usize {
        self.len
    }
    fn bytes_total(&self) -> usize {
        self.pool.size
    }
}

// SAFETY: as above; writes stay within `size` bytes, and every byte is initialized already,
// so counting more of them initialized is sound.
unsafe impl IoBufMut for FixedBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.pool.ptr(self.index)
    }
    unsafe fn set_init(&mut self, pos: usize) {
        self.len = self.len.max(pos.min(self.pool.size));
    }
}

impl private::Sealed for FixedBuf {}

// The buffer's `size` bytes are exactly what registered slot `buf_index` covers, and the
// registration lasts while the pool (which this buffer holds) lives.
impl FixedIoBuf for FixedBuf {
    fn buf_index(&self) -> u16 {
        FixedBuf::buf_index(self)
    }
    fn ring_id(&self) -> u32 {
        self.pool.ring_id
    }
}

impl FixedIoBufMut for FixedBuf {}
