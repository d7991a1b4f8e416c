//! Heap blocks recycled through per-thread free lists.
//!
//! The runtime allocates a few kinds of small blocks over and over: the cell of every spawned
//! task, the address an `accept` or `recvmsg` fills in, a `statx` buffer, the resources of an
//! op abandoned in flight. Each lives for one task or one op, and a busy thread makes and
//! frees thousands a second. The general-purpose allocator is slow for that pattern (glibc
//! keeps only seven blocks of a size in its per-thread cache; past that, and above its
//! 120-byte "fast" sizes, every `malloc`/`free` pair costs a few hundred instructions), so
//! blocks go back to a free list of this thread instead, one list per size class, and the
//! next block of that class comes from it: a pop and a push, no lock, no atomic.
//!
//! - Sizes up to [`MAX_SIZE`] bytes with alignment up to 16 are recycled, in classes of 16
//!   bytes; anything else goes straight to the global allocator.
//! - Each list keeps at most [`KEEP_BYTES`] bytes (and at least [`KEEP_MIN`] blocks); blocks
//!   beyond that go back to the global allocator, so a burst does not pin memory forever.
//! - A block may be freed on any thread (it joins that thread's list): memory is memory.
//! - At thread exit the lists give their blocks back; a block freed after that (by another
//!   thread-local's destructor) goes straight to the global allocator.
//!
//! So after warm-up (once a thread has seen its high-water mark of live blocks per class),
//! allocating and freeing them never reaches the global allocator: the counting-allocator
//! tests prove it per op.

use std::alloc::{self, Layout};
use std::cell::Cell;
use std::marker::PhantomData;
use std::mem;
use std::ops::{Deref, DerefMut};
use std::ptr::{self, NonNull};

/// Bytes per size class.
const GRANULE: usize = 16;
/// Number of size classes: blocks of 16, 32, ... bytes up to [`MAX_SIZE`].
const CLASSES: usize = 64;
/// The largest block recycled; larger ones use the global allocator directly.
pub(crate) const MAX_SIZE: usize = GRANULE * CLASSES;
/// The largest alignment recycled (every block is allocated with it).
const MAX_ALIGN: usize = 16;
/// Bytes of free blocks one list keeps.
pub(crate) const KEEP_BYTES: usize = 256 * 1024;
/// Free blocks one list keeps at least, whatever their size.
pub(crate) const KEEP_MIN: usize = 64;

/// A free block: its first word links to the next.
struct FreeBlock {
    next: *mut FreeBlock,
}

/// This thread's free lists.
struct Lists {
    heads: [Cell<*mut FreeBlock>; CLASSES],
    lens: [Cell<u32>; CLASSES],
}

impl Drop for Lists {
    fn drop(&mut self) {
        for class in 0..CLASSES {
            let mut block = self.heads[class].replace(ptr::null_mut());
            while !block.is_null() {
                // SAFETY: every block on a list is a live allocation of `class_layout(class)`
                // that nothing else refers to; its first word is the link written by `push`.
                let next = unsafe { (*block).next };
                // SAFETY: as above: allocated by the global allocator with this layout.
                unsafe { alloc::dealloc(block.cast(), class_layout(class)) };
                block = next;
            }
            self.lens[class].set(0);
        }
    }
}

thread_local! {
    static LISTS: Lists = const {
        Lists {
            heads: [const { Cell::new(ptr::null_mut()) }; CLASSES],
            lens: [const { Cell::new(0) }; CLASSES],
        }
    };
}

/// The size class of `layout`, if it is recycled.
#[inline]
fn class_of(layout: Layout) -> Option<usize> {
    let size = layout.size();
    (size != 0 && size <= MAX_SIZE && layout.align() <= MAX_ALIGN).then(|| (size - 1) / GRANULE)
}

/// The layout every block of `class` is allocated with.
#[inline]
fn class_layout(class: usize) -> Layout {
    // SAFETY: the size is a nonzero multiple of 16 far below isize::MAX, and 16 is a power
    // of two.
    unsafe { Layout::from_size_align_unchecked((class + 1) * GRANULE, MAX_ALIGN) }
}

/// How many free blocks the list of each class keeps.
const KEEP: [u32; CLASSES] = {
    let mut keep = [0; CLASSES];
    let mut class = 0;
    while class < CLASSES {
        let blocks = KEEP_BYTES / ((class + 1) * GRANULE);
        keep[class] = if blocks > KEEP_MIN { blocks } else { KEEP_MIN } as u32;
        class += 1;
    }
    keep
};

/// Allocates a block for `layout` (from this thread's free list when it has one).
///
/// A zero-sized layout gets a dangling, aligned pointer. Aborts through
/// [`alloc::handle_alloc_error`] if the global allocator fails, like `Box::new`.
#[inline]
pub(crate) fn alloc(layout: Layout) -> NonNull<u8> {
    if layout.size() == 0 {
        // A dangling pointer with the layout's alignment, as `Box` uses for zero-sized values.
        return NonNull::new(ptr::without_provenance_mut(layout.align()))
            .expect("an alignment is never zero");
    }
    let Some(class) = class_of(layout) else {
        return global_alloc(layout);
    };
    let popped = LISTS.try_with(|lists| {
        let block = lists.heads[class].get();
        if block.is_null() {
            return None;
        }
        // SAFETY: `block` heads this thread's list: a live block nothing else refers to,
        // whose first word is the link `push` wrote.
        lists.heads[class].set(unsafe { (*block).next });
        lists.lens[class].set(lists.lens[class].get() - 1);
        NonNull::new(block.cast::<u8>())
    });
    match popped {
        Ok(Some(block)) => block,
        _ => global_alloc(class_layout(class)),
    }
}

#[cold]
fn global_alloc(layout: Layout) -> NonNull<u8> {
    // SAFETY: `layout` has a nonzero size (checked by the caller).
    let p = unsafe { alloc::alloc(layout) };
    NonNull::new(p).unwrap_or_else(|| alloc::handle_alloc_error(layout))
}

/// Frees a block from [`alloc`] (on any thread).
///
/// # Safety
/// `ptr` came from [`alloc`] with this same `layout`, and nothing uses the block any more.
#[inline]
pub(crate) unsafe fn dealloc(ptr: NonNull<u8>, layout: Layout) {
    if layout.size() == 0 {
        return;
    }
    let Some(class) = class_of(layout) else {
        // SAFETY: `alloc` got this block from the global allocator with `layout`.
        unsafe { alloc::dealloc(ptr.as_ptr(), layout) };
        return;
    };
    let kept = LISTS.try_with(|lists| {
        let len = lists.lens[class].get();
        if len >= KEEP[class] {
            return false;
        }
        let block = ptr.as_ptr().cast::<FreeBlock>();
        // SAFETY: the block is at least 16 bytes and 16-aligned (its class layout), so it
        // holds a link; the caller gave it up, so nothing else reads or writes it.
        unsafe {
            block.write(FreeBlock {
                next: lists.heads[class].get(),
            })
        };
        lists.heads[class].set(block);
        lists.lens[class].set(len + 1);
        true
    });
    if kept != Ok(true) {
        // SAFETY: every recycled block was allocated with its class layout.
        unsafe { alloc::dealloc(ptr.as_ptr(), class_layout(class)) };
    }
}

/// Free blocks this thread keeps for `layout`'s class (tests).
#[cfg(test)]
pub(crate) fn kept(layout: Layout) -> usize {
    class_of(layout).map_or(0, |class| {
        LISTS.with(|lists| lists.lens[class].get() as usize)
    })
}

/// A `Box` whose block comes from the per-thread free lists.
///
/// For the small structs an op keeps on the heap so they stay put while the kernel writes
/// them (an `accept`'s peer address, a `recvmsg` header, a `statx` buffer): the op moves,
/// the block does not.
pub(crate) struct RecycledBox<T> {
    ptr: NonNull<T>,
    _owns: PhantomData<T>,
}

impl<T> RecycledBox<T> {
    #[inline]
    pub(crate) fn new(value: T) -> Self {
        let ptr = alloc(Layout::new::<T>()).cast::<T>();
        // SAFETY: the block is valid for a `T` (its class is at least `T`'s size and
        // alignment, or it is `T`'s own layout) and uninitialized.
        unsafe { ptr.as_ptr().write(value) };
        RecycledBox {
            ptr,
            _owns: PhantomData,
        }
    }

    /// A pointer to the value that stays valid while the box lives (however the box moves).
    #[inline]
    pub(crate) fn as_mut_ptr(&mut self) -> *mut T {
        self.ptr.as_ptr()
    }

    /// Moves the value out and frees the block.
    #[inline]
    pub(crate) fn into_inner(self) -> T {
        let this = mem::ManuallyDrop::new(self);
        // SAFETY: the box owns an initialized `T`; it is read once, and the box is not
        // dropped (`ManuallyDrop`), so the value is not dropped twice.
        let value = unsafe { this.ptr.as_ptr().read() };
        // SAFETY: the block came from `alloc` with `T`'s layout and is no longer used.
        unsafe { dealloc(this.ptr.cast(), Layout::new::<T>()) };
        value
    }
}

impl<T> Deref for RecycledBox<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the box owns an initialized `T`, borrowed for as long as the box is.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T> DerefMut for RecycledBox<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes the borrow unique.
        unsafe { self.ptr.as_mut() }
    }
}

impl<T> Drop for RecycledBox<T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the box owns an initialized `T`, dropped once, here.
        unsafe { ptr::drop_in_place(self.ptr.as_ptr()) };
        // SAFETY: the block came from `alloc` with `T`'s layout and is no longer used.
        unsafe { dealloc(self.ptr.cast(), Layout::new::<T>()) };
    }
}

// SAFETY: the box owns its `T` exclusively, like `Box<T>`; the free lists it returns its
// block to are per-thread and accept a block from any thread.
unsafe impl<T: Send> Send for RecycledBox<T> {}
// SAFETY: as for `Box<T>`: shared access only reaches `&T`.
unsafe impl<T: Sync> Sync for RecycledBox<T> {}

impl<T: std::fmt::Debug> std::fmt::Debug for RecycledBox<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

/// Any value, type-erased, in a recycled block: what the driver keeps of an op abandoned in
/// flight until the kernel is done with it (a `Box<dyn Any>` without the allocation).
pub(crate) struct Parked {
    ptr: NonNull<u8>,
    drop: unsafe fn(NonNull<u8>),
    type_id: std::any::TypeId,
}

impl Parked {
    #[inline]
    pub(crate) fn new<T: 'static>(value: T) -> Self {
        /// Drops the `T` in the block and frees the block.
        ///
        /// # Safety
        /// `ptr` is a block from `alloc` with `T`'s layout holding a `T`, used by nothing else.
        unsafe fn drop_parked<T>(ptr: NonNull<u8>) {
            // SAFETY: forwarded from the caller: the block holds a `T`, dropped once, here.
            unsafe { ptr::drop_in_place(ptr.cast::<T>().as_ptr()) };
            // SAFETY: forwarded from the caller: allocated with `T`'s layout, now unused.
            unsafe { dealloc(ptr, Layout::new::<T>()) };
        }
        let ptr = alloc(Layout::new::<T>());
        // SAFETY: the block is valid for a `T` and uninitialized.
        unsafe { ptr.cast::<T>().as_ptr().write(value) };
        Parked {
            ptr,
            drop: drop_parked::<T>,
            type_id: std::any::TypeId::of::<T>(),
        }
    }

    /// The value, if it is a `T` (what `Box<dyn Any>::downcast_mut` does).
    pub(crate) fn downcast_mut<T: 'static>(&mut self) -> Option<&mut T> {
        (self.type_id == std::any::TypeId::of::<T>()).then(|| {
            // SAFETY: the block holds the `T` that `new::<T>` wrote (same type id) until
            // `drop`; the `&mut self` borrow makes this the only reference to it.
            unsafe { &mut *self.ptr.cast::<T>().as_ptr() }
        })
    }
}

impl Drop for Parked {
    fn drop(&mut self) {
        // SAFETY: `drop` is `drop_parked::<T>` for the `T` that `new` wrote into `ptr`; this
        // is the one drop of the value.
        unsafe { (self.drop)(self.ptr) }
    }
}

impl std::fmt::Debug for Parked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Parked { .. }")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn a_freed_block_is_handed_out_again() {
        let layout = Layout::new::<[u64; 5]>();
        let a = alloc(layout);
        // SAFETY: `a` came from `alloc(layout)` and is unused.
        unsafe { dealloc(a, layout) };
        let b = alloc(layout);
        assert_eq!(a, b, "the same class reuses the block");
        // SAFETY: as above.
        unsafe { dealloc(b, layout) };
    }

    #[test]
    fn odd_layouts_use_the_global_allocator() {
        for layout in [
            Layout::from_size_align(MAX_SIZE + 1, 8).unwrap(),
            Layout::from_size_align(64, 64).unwrap(),
            Layout::from_size_align(0, 8).unwrap(),
        ] {
            let p = alloc(layout);
            assert_eq!(p.as_ptr().addr() % layout.align(), 0);
            // SAFETY: `p` came from `alloc(layout)` and is unused.
            unsafe { dealloc(p, layout) };
            assert_eq!(kept(layout), 0);
        }
    }

    #[test]
    fn lists_keep_a_bounded_number_of_blocks() {
        let layout = Layout::from_size_align(MAX_SIZE, 16).unwrap();
        let keep = KEEP[CLASSES - 1] as usize;
        assert_eq!(keep, (KEEP_BYTES / MAX_SIZE).max(KEEP_MIN));
        let blocks: Vec<_> = (0..keep + 10).map(|_| alloc(layout)).collect();
        for b in blocks {
            // SAFETY: each came from `alloc(layout)` and is unused.
            unsafe { dealloc(b, layout) };
        }
        assert_eq!(kept(layout), keep);
    }

    #[test]
    fn boxes_and_parked_values_drop_their_contents() {
        let marker = Rc::new(());
        let mut b = RecycledBox::new((marker.clone(), 7u32));
        b.1 += 1;
        assert_eq!(b.1, 8);
        let parked = Parked::new(marker.clone());
        assert_eq!(Rc::strong_count(&marker), 3);
        drop(b);
        drop(parked);
        assert_eq!(Rc::strong_count(&marker), 1);
        let (m, n) = RecycledBox::new((marker.clone(), 1u8)).into_inner();
        assert_eq!(n, 1);
        drop(m);
        assert_eq!(Rc::strong_count(&marker), 1);
    }

    #[test]
    fn a_parked_value_is_reached_as_its_own_type_only() {
        let mut parked = Parked::new((5u64, String::from("kept")));
        assert!(parked.downcast_mut::<u64>().is_none());
        assert!(parked.downcast_mut::<(u64, &str)>().is_none());
        let (n, s) = parked.downcast_mut::<(u64, String)>().unwrap();
        *n += 1;
        s.push('!');
        assert_eq!(
            parked.downcast_mut::<(u64, String)>().unwrap(),
            &mut (6, String::from("kept!"))
        );
    }

    #[test]
    fn blocks_freed_on_another_thread_are_fine() {
        let b = RecycledBox::new([1u8; 100]);
        std::thread::spawn(move || assert_eq!(b[99], 1))
            .join()
            .unwrap();
    }
}
