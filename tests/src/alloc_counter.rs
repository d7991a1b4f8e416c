//! A global allocator that counts the allocations made on one thread, for "allocates nothing"
//! tests. Each test binary that uses it installs it:
//!
//! ```ignore
//! #[global_allocator]
//! static GLOBAL: iomgr_tests::CountingAlloc = iomgr_tests::CountingAlloc;
//! ```
//!
//! Only allocations on the thread that called [`allocations_during`] (while its future runs)
//! are counted, so other tests in the same binary do not disturb the count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The counting allocator: the system allocator plus a per-thread counter.
#[derive(Debug)]
pub struct CountingAlloc;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn note_allocation() {
    // `try_with`: the allocator may run while this thread's locals are being torn down.
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOCATIONS.try_with(|a| a.set(a.get() + 1));
    }
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded from the caller.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded from the caller.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded from the caller.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Runs `future` and returns its output with the number of allocations this thread made
/// meanwhile (including the runtime's, when awaited inside `block_on`).
pub async fn allocations_during<F: Future>(future: F) -> (F::Output, usize) {
    ALLOCATIONS.with(|a| a.set(0));
    COUNTING.with(|c| c.set(true));
    let output = future.await;
    COUNTING.with(|c| c.set(false));
    (output, ALLOCATIONS.with(Cell::get))
}
