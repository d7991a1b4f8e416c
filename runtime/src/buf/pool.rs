//! A recycling pool of owned buffers in size classes, one per thread: see [`BufPool`].

use std::alloc::Layout;
use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use super::guard::{self, GUARD_LEN};
use super::{IoBuf, IoBufMut};

/// The smallest class: 2^9 = 512 bytes.
const MIN_SHIFT: u32 = 9;
/// The largest class: 2^20 = 1 MiB.
const MAX_SHIFT: u32 = 20;
/// Number of size classes.
const CLASSES: usize = (MAX_SHIFT - MIN_SHIFT + 1) as usize;
/// `class` of a buffer that belongs to no class (larger than the largest).
const OVERSIZE: u8 = u8::MAX;
/// Idle bytes each class keeps by default.
const DEFAULT_IDLE_LIMIT: usize = 4 << 20;
/// Debug builds: bytes of the stamp after the guard (a generation and an "in use" bit).
const STAMP_LEN: usize = if cfg!(debug_assertions) { 8 } else { 0 };

/// A recycling pool of owned buffers in size classes, one per thread (ASIO's recycling
/// allocator). Its functions act on the calling thread's pool.
///
/// [`BufPool::get`] hands out a [`PooledBuf`] of at least the size asked for, from the
/// smallest class that fits: powers of two from 512 bytes to 1 MiB. Dropping it puts the
/// memory back on its class's idle list, and the next `get` of that class takes it from
/// there: after warm-up, buffers cost no allocation. Each class keeps at most
/// [`set_idle_limit`](BufPool::set_idle_limit) bytes idle (4 MiB by default); what would exceed
/// it is freed. Larger requests are allocated and freed each time (counted as `oversize`).
///
/// ```
/// use iomgr::buf::BufPool;
///
/// let mut buf = BufPool::get(3000); // from the 4 KiB class
/// assert_eq!(buf.capacity(), 4096);
/// buf.extend_from_slice(b"hello");
/// drop(buf); // back to the pool
///
/// let again = BufPool::get(4096); // the same memory, no allocation
/// assert!(again.is_empty());
/// let stats = BufPool::stats();
/// assert_eq!((stats.hits, stats.misses, stats.in_use), (1, 1, 1));
/// ```
///
/// The counters ([`BufPool::stats`]) say how many buffers are in use, idle and allocated,
/// per class and in total, so a test can show that nothing leaked: after a workload,
/// `in_use` is back to what it was.
///
/// A `PooledBuf` is `!Send`: it returns to the pool of the thread that made it. In debug
/// builds each buffer carries guard bytes after its capacity and a stamp, both checked when
/// it returns: a write past its end panics with a message naming the buffer, and so does a
/// buffer returned twice (only unsafe code can duplicate one) while its memory is still the
/// pool's. A debugging aid, not a guarantee: if the first return freed the memory (the class
/// had enough idle buffers, or it was trimmed), reading the stamp is itself undefined.
#[derive(Debug)]
pub struct BufPool(());

/// Counters of one size class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClassStats {
    /// The class's buffer capacity in bytes.
    pub size: usize,
    /// Buffers handed out and not returned yet.
    pub in_use: usize,
    /// Buffers waiting in the pool.
    pub idle: usize,
    /// `get`s served from the idle list.
    pub hits: u64,
    /// `get`s that allocated.
    pub misses: u64,
    /// Returned buffers freed because the class already kept its idle limit.
    pub trimmed: u64,
}

/// The thread's pool counters: [`BufPool::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BufPoolStats {
    /// Buffers handed out and not returned yet (oversize ones included).
    pub in_use: usize,
    /// Buffers waiting in the pool.
    pub idle: usize,
    /// Buffers allocated now (`in_use + idle`).
    pub allocated: usize,
    /// Bytes allocated now (capacities).
    pub allocated_bytes: usize,
    /// `get`s served from an idle list.
    pub hits: u64,
    /// `get`s that allocated (oversize ones included).
    pub misses: u64,
    /// Returned buffers freed because their class kept its idle limit.
    pub trimmed: u64,
    /// Oversize buffers (larger than 1 MiB, never pooled) in use now.
    pub oversize_in_use: usize,
    /// Buffers freed instead of reused in debug builds: their guard bytes were overwritten.
    pub quarantined: u64,
    /// Per class, smallest first.
    pub classes: [ClassStats; CLASSES],
}

struct Class {
    idle: Vec<NonNull<u8>>,
    stats: ClassStats,
}

struct Pool {
    classes: [Class; CLASSES],
    idle_limit: usize,
    oversize_in_use: usize,
    oversize_bytes: usize,
    oversize_allocs: u64,
    quarantined: u64,
}

thread_local! {
    static POOL: RefCell<Pool> = RefCell::new(Pool::new());
}

impl Pool {
    fn new() -> Self {
        Pool {
            classes: std::array::from_fn(|i| Class {
                idle: Vec::new(),
                stats: ClassStats {
                    size: 1 << (MIN_SHIFT as usize + i),
                    ..ClassStats::default()
                },
            }),
            idle_limit: DEFAULT_IDLE_LIMIT,
            oversize_in_use: 0,
            oversize_bytes: 0,
            oversize_allocs: 0,
            quarantined: 0,
        }
    }

    fn max_idle(&self, class: usize) -> usize {
        self.idle_limit / self.classes[class].stats.size
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        for class in &mut self.classes {
            let size = class.stats.size;
            for ptr in class.idle.drain(..) {
                // SAFETY: idle buffers were allocated with `layout(size)` and nobody owns them.
                unsafe { std::alloc::dealloc(ptr.as_ptr(), layout(size)) };
            }
        }
    }
}

/// The allocation of a buffer of `capacity` bytes: the buffer, then (debug builds) the guard
/// and the stamp. Aligned to 4096 from 4 KiB up, so such buffers suit `O_DIRECT`.
fn layout(capacity: usize) -> Layout {
    let align = if capacity >= 4096 { 4096 } else { 64 };
    Layout::from_size_align(capacity + GUARD_LEN + STAMP_LEN, align)
        .expect("pool buffer sizes are far below isize::MAX")
}

/// The class that serves `size` bytes, or `None` above the largest.
fn class_of(size: usize) -> Option<usize> {
    let shift = size
        .max(1)
        .next_power_of_two()
        .trailing_zeros()
        .max(MIN_SHIFT);
    (shift <= MAX_SHIFT).then(|| (shift - MIN_SHIFT) as usize)
}

impl BufPool {
    /// A buffer of at least `size` bytes (its [`capacity`](PooledBuf::capacity)), holding
    /// nothing yet: from the idle list of the smallest class that fits, else newly allocated.
    ///
    /// # Panics
    /// If the memory cannot be allocated (as `Vec::with_capacity` does), or `size` is above
    /// `isize::MAX`.
    pub fn get(size: usize) -> PooledBuf {
        let Some(class) = class_of(size) else {
            return PooledBuf::oversize(size);
        };
        let reused = POOL
            .try_with(|pool| {
                let mut pool = pool.borrow_mut();
                let class = &mut pool.classes[class];
                class.stats.in_use += 1;
                match class.idle.pop() {
                    Some(ptr) => {
                        class.stats.hits += 1;
                        Some(ptr)
                    }
                    None => {
                        class.stats.misses += 1;
                        None
                    }
                }
            })
            .ok();
        let capacity = 1usize << (MIN_SHIFT as usize + class);
        let ptr = match reused.flatten() {
            Some(ptr) => ptr,
            None => allocate(capacity),
        };
        let mut buf = PooledBuf {
            ptr,
            capacity,
            len: 0,
            class: class as u8,
            generation: 0,
            _not_send: PhantomData,
        };
        buf.stamp_out();
        buf
    }

    /// The calling thread's counters.
    pub fn stats() -> BufPoolStats {
        POOL.try_with(|pool| {
            let pool = pool.borrow();
            let mut stats = BufPoolStats {
                oversize_in_use: pool.oversize_in_use,
                quarantined: pool.quarantined,
                in_use: pool.oversize_in_use,
                allocated: pool.oversize_in_use,
                allocated_bytes: pool.oversize_bytes,
                misses: pool.oversize_allocs,
                ..BufPoolStats::default()
            };
            for (i, class) in pool.classes.iter().enumerate() {
                let mut c = class.stats;
                c.idle = class.idle.len();
                stats.classes[i] = c;
                stats.in_use += c.in_use;
                stats.idle += c.idle;
                stats.allocated += c.in_use + c.idle;
                stats.allocated_bytes += (c.in_use + c.idle) * c.size;
                stats.hits += c.hits;
                stats.misses += c.misses;
                stats.trimmed += c.trimmed;
            }
            stats
        })
        .unwrap_or_default()
    }

    /// Frees every idle buffer of the calling thread's pool.
    pub fn trim() {
        let _ = POOL.try_with(|pool| {
            let mut pool = pool.borrow_mut();
            for class in &mut pool.classes {
                let size = class.stats.size;
                for ptr in class.idle.drain(..) {
                    // SAFETY: idle buffers were allocated with `layout(size)`; nobody owns them.
                    unsafe { std::alloc::dealloc(ptr.as_ptr(), layout(size)) };
                }
            }
        });
    }

    /// Keeps at most `bytes` idle per class on the calling thread (as many whole buffers as
    /// fit in it); the surplus is freed now. Default: 4 MiB.
    pub fn set_idle_limit(bytes: usize) {
        let _ = POOL.try_with(|pool| {
            let mut pool = pool.borrow_mut();
            pool.idle_limit = bytes;
            for i in 0..CLASSES {
                let keep = pool.max_idle(i);
                let class = &mut pool.classes[i];
                let size = class.stats.size;
                while class.idle.len() > keep {
                    let ptr = class.idle.pop().expect("longer than keep");
                    class.stats.trimmed += 1;
                    // SAFETY: as in `trim`.
                    unsafe { std::alloc::dealloc(ptr.as_ptr(), layout(size)) };
                }
            }
        });
    }

    /// The calling thread's idle limit per class, in bytes.
    pub fn idle_limit() -> usize {
        POOL.try_with(|pool| pool.borrow().idle_limit)
            .unwrap_or(DEFAULT_IDLE_LIMIT)
    }
}

/// Allocates a buffer of `capacity` bytes (debug: with its guard armed and stamp zeroed).
fn allocate(capacity: usize) -> NonNull<u8> {
    let layout = layout(capacity);
    // SAFETY: the layout's size is non-zero.
    let Some(ptr) = NonNull::new(unsafe { std::alloc::alloc(layout) }) else {
        std::alloc::handle_alloc_error(layout)
    };
    if GUARD_LEN > 0 {
        // SAFETY: the guard and stamp lie inside the new allocation, after the buffer.
        unsafe {
            guard::arm(ptr.as_ptr().add(capacity));
            ptr.as_ptr()
                .add(capacity + GUARD_LEN)
                .cast::<u64>()
                .write_unaligned(0);
        }
    }
    ptr
}

/// An owned buffer from the calling thread's [`BufPool`]; goes back to it when dropped.
///
/// Like a `Vec<u8>` with a fixed capacity: it dereferences to its initialized bytes (none
/// when handed out), a read fills it from its start, a write sends `len()` bytes.
pub struct PooledBuf {
    ptr: NonNull<u8>,
    capacity: usize,
    /// Initialized bytes from the start.
    len: usize,
    class: u8,
    /// Debug builds: the stamp this owner expects (see [`PooledBuf::stamp_out`]).
    generation: u32,
    _not_send: PhantomData<*const ()>,
}

impl PooledBuf {
    fn oversize(size: usize) -> PooledBuf {
        let ptr = allocate(size);
        let _ = POOL.try_with(|pool| {
            let mut pool = pool.borrow_mut();
            pool.oversize_in_use += 1;
            pool.oversize_bytes += size;
            pool.oversize_allocs += 1;
        });
        let mut buf = PooledBuf {
            ptr,
            capacity: size,
            len: 0,
            class: OVERSIZE,
            generation: 0,
            _not_send: PhantomData,
        };
        buf.stamp_out();
        buf
    }

    /// Debug builds: the stamp after the guard holds `generation << 1 | in_use`.
    fn stamp(&self) -> *mut u64 {
        // SAFETY: debug builds allocate `capacity + GUARD_LEN + 8` bytes (only called then).
        unsafe { self.ptr.as_ptr().add(self.capacity + GUARD_LEN).cast() }
    }

    /// Debug builds: stamps the buffer handed out under the next generation.
    fn stamp_out(&mut self) {
        if STAMP_LEN == 0 {
            return;
        }
        // SAFETY: the stamp lies inside the allocation; only the pool and the owner touch it.
        let old = unsafe { self.stamp().read_unaligned() };
        self.generation = ((old >> 1) as u32).wrapping_add(1);
        // SAFETY: as above.
        unsafe {
            self.stamp()
                .write_unaligned(u64::from(self.generation) << 1 | 1)
        };
    }

    /// Bytes it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes it can hold (its class's size, at least what was asked for).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Forgets the bytes it holds.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Keeps the first `len` bytes.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Bytes that still fit.
    pub fn remaining(&self) -> usize {
        self.capacity - self.len
    }

    /// Sets `len()` to `new_len`, filling new bytes with `value`.
    ///
    /// # Panics
    /// If `new_len` is more than the capacity.
    pub fn resize(&mut self, new_len: usize, value: u8) {
        assert!(
            new_len <= self.capacity,
            "PooledBuf::resize({new_len}): the buffer holds at most {} bytes",
            self.capacity
        );
        if new_len > self.len {
            // SAFETY: `len..new_len` lies within the buffer, which we own.
            unsafe {
                self.ptr
                    .as_ptr()
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
            "PooledBuf::extend_from_slice: {} bytes do not fit in the {} left of a {}-byte buffer",
            data.len(),
            self.remaining(),
            self.capacity
        );
        // SAFETY: `len..len + data.len()` lies within the buffer, which we own; `data`
        // cannot overlap it (we hold `&mut self`).
        unsafe {
            self.ptr
                .as_ptr()
                .add(self.len)
                .copy_from_nonoverlapping(data.as_ptr(), data.len())
        };
        self.len += data.len();
    }

    fn describe(&self) -> String {
        format!(
            "PooledBuf at {:p} ({} bytes, {})",
            self.ptr,
            self.capacity,
            if self.class == OVERSIZE {
                "oversize".to_string()
            } else {
                format!("class {}", self.class)
            }
        )
    }

    /// Debug builds: checks the guard and the stamp (and marks the stamp returned).
    fn check_return(&self) -> Verdict {
        if GUARD_LEN == 0 {
            return Verdict::Fine;
        }
        // SAFETY: the guard follows the buffer inside its allocation (debug builds).
        if let Some((at, found)) = unsafe { guard::check(self.ptr.as_ptr().add(self.capacity)) } {
            return Verdict::Overrun(guard::overrun(&self.describe(), self.capacity, at, found));
        }
        // SAFETY: the stamp follows the guard inside the allocation (debug builds).
        let stamp = unsafe { self.stamp().read_unaligned() };
        if stamp != u64::from(self.generation) << 1 | 1 {
            return Verdict::Twice(format!(
                "iomgr: {} was returned to its pool twice (it is {}): unsafe code duplicated \
                 the PooledBuf (with ptr::read, say) and dropped both copies",
                self.describe(),
                if stamp & 1 == 0 {
                    "idle in the pool already"
                } else {
                    "handed out again"
                }
            ));
        }
        // SAFETY: as above.
        unsafe {
            self.stamp()
                .write_unaligned(u64::from(self.generation) << 1)
        };
        Verdict::Fine
    }
}

enum Verdict {
    Fine,
    /// Guard bytes overwritten: free the buffer rather than reuse it, then complain.
    Overrun(String),
    /// Returned twice: the other copy owns the memory; touch nothing, complain.
    Twice(String),
}

impl Drop for PooledBuf {
    fn drop(&mut self) {
        match self.check_return() {
            Verdict::Fine => {}
            Verdict::Overrun(message) => {
                let _ = POOL.try_with(|pool| {
                    let mut pool = pool.borrow_mut();
                    pool.quarantined += 1;
                    if self.class == OVERSIZE {
                        pool.oversize_in_use -= 1;
                        pool.oversize_bytes -= self.capacity;
                    } else {
                        pool.classes[self.class as usize].stats.in_use -= 1;
                    }
                });
                // Out of circulation: freed, never reused (the overrun stayed inside this
                // allocation, in its guard).
                // SAFETY: allocated with `layout(capacity)`; we are its only owner.
                unsafe { std::alloc::dealloc(self.ptr.as_ptr(), layout(self.capacity)) };
                guard::complain(message);
                return;
            }
            Verdict::Twice(message) => {
                guard::complain(message);
                return;
            }
        }
        let ptr = self.ptr;
        let capacity = self.capacity;
        let class = self.class;
        let kept = POOL
            .try_with(|pool| {
                let mut pool = pool.borrow_mut();
                if class == OVERSIZE {
                    pool.oversize_in_use -= 1;
                    pool.oversize_bytes -= capacity;
                    return false;
                }
                let keep = pool.max_idle(class as usize);
                let class = &mut pool.classes[class as usize];
                class.stats.in_use -= 1;
                if class.idle.len() < keep {
                    class.idle.push(ptr);
                    true
                } else {
                    class.stats.trimmed += 1;
                    false
                }
            })
            .unwrap_or(false);
        if !kept {
            // SAFETY: allocated with `layout(capacity)` (a class size, or the oversize request);
            // we are its only owner and the pool did not keep it.
            unsafe { std::alloc::dealloc(ptr.as_ptr(), layout(capacity)) };
        }
    }
}

impl Deref for PooledBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: the first `len` bytes are initialized and only this owner reaches them.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for PooledBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for `deref`, and we hold the buffer mutably.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl fmt::Debug for PooledBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledBuf")
            .field("len", &self.len)
            .field("capacity", &self.capacity)
            .finish()
    }
}

// SAFETY: the buffer's heap memory does not move with the value and stays allocated until it
// is dropped; the first `len` bytes are initialized.
unsafe impl IoBuf for PooledBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len
    }
    fn bytes_total(&self) -> usize {
        self.capacity
    }
}

// SAFETY: as above; the kernel writes within `capacity` bytes, and `set_init` is trusted by
// its contract to count only bytes it initialized.
unsafe impl IoBufMut for PooledBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }
    unsafe fn set_init(&mut self, pos: usize) {
        self.len = self.len.max(pos.min(self.capacity));
    }
}

#[cfg(test)]
mod tests {
    //! Run under Miri too (`scripts/miri.sh buf::pool`): the pool's unsafe code needs no ring.

    use super::*;

    #[test]
    fn a_buffer_is_reused_and_its_bytes_stay_in_bounds() {
        let mut a = BufPool::get(600);
        assert_eq!((a.capacity(), a.len()), (1024, 0));
        a.extend_from_slice(&[7; 1000]);
        a.resize(1024, 9);
        assert_eq!((a[999], a[1000], a[1023]), (7, 9, 9));
        a.truncate(10);
        // SAFETY: the whole capacity was written above.
        unsafe { a.set_init(1024) };
        assert_eq!(a.len(), 1024);
        let ptr = a.stable_ptr();
        drop(a);
        let b = BufPool::get(1024);
        assert_eq!(b.stable_ptr(), ptr);
        assert!(b.is_empty());
        let big = BufPool::get((1 << 20) + 1);
        assert_eq!(BufPool::stats().oversize_in_use, 1);
        drop((b, big));
        let stats = BufPool::stats();
        assert_eq!((stats.in_use, stats.idle, stats.hits), (0, 1, 1));
        BufPool::set_idle_limit(0);
        assert_eq!(BufPool::stats().allocated, 0);
    }

    #[cfg(debug_assertions)]
    #[test]
    fn overruns_and_double_returns_are_reported_not_undefined() {
        let mut buf = BufPool::get(512);
        // SAFETY: byte 512 is the guard, inside the allocation `buf` owns.
        unsafe { buf.stable_mut_ptr().add(512).write(0) };
        let overrun = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(buf)));
        assert!(overrun.is_err());
        assert_eq!(BufPool::stats().quarantined, 1);

        let buf = BufPool::get(512);
        // SAFETY: the duplicate is the bug detected: the first drop keeps the memory alive
        // (idle in the pool), so the second only reads its stamp and stops.
        let copy = unsafe { std::ptr::read(&buf) };
        drop(buf);
        let twice = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(copy)));
        assert!(twice.is_err());
        let stats = BufPool::stats();
        assert_eq!(
            (stats.in_use, stats.idle),
            (0, 1),
            "the pool is consistent after both"
        );
        BufPool::trim();
    }

    #[test]
    fn sizes_map_to_power_of_two_classes() {
        assert_eq!(class_of(0), Some(0));
        assert_eq!(class_of(1), Some(0));
        assert_eq!(class_of(512), Some(0));
        assert_eq!(class_of(513), Some(1));
        assert_eq!(class_of(4096), Some(3));
        assert_eq!(class_of(1 << 20), Some(CLASSES - 1));
        assert_eq!(class_of((1 << 20) + 1), None);
    }
}
