//! Which runtime is running on this thread.
//!
//! `block_on` installs its runtime here for its duration; `spawn`, ops on first poll, and
//! wakers on this thread find it here.
//!
//! The slot is a plain pointer in a `const` thread-local without a destructor, so reading it
//! is one load from thread-local storage: no lazy initialisation, no `RefCell` borrow, and no
//! reference count touched unless the caller wants its own `Rc`. The pointer owns one strong
//! reference (it was made by `Rc::into_raw`), which only the [`EnterGuard`] that installed it
//! gives back.

use std::cell::Cell;
use std::ptr;
use std::rc::Rc;

use super::Shared;

thread_local! {
    /// The running runtime: null, or a pointer from `Rc::into_raw` owning one strong
    /// reference, installed and released only by an [`EnterGuard`].
    static CURRENT: Cell<*const Shared> = const { Cell::new(ptr::null()) };
}

/// The runtime running on this thread, if any (a new reference to it).
#[inline]
pub(crate) fn current() -> Option<Rc<Shared>> {
    let p = CURRENT.with(Cell::get);
    if p.is_null() {
        return None;
    }
    // SAFETY: a non-null `CURRENT` came from `Rc::into_raw` and owns a strong reference that
    // is given back only when its guard drops, so the count is at least one right now; the
    // new reference is then owned by the `Rc` we make.
    unsafe {
        Rc::increment_strong_count(p);
        Some(Rc::from_raw(p))
    }
}

/// Runs `f` with the runtime running on this thread, without touching its reference count.
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&Shared>) -> R) -> R {
    let p = CURRENT.with(Cell::get);
    // SAFETY: a non-null `CURRENT` owns a strong reference, released only by the guard that
    // installed it, when `block_on` (or the runtime's drop) returns. That frame is below this
    // one on the stack, so the runtime outlives `f`; nothing in `f` can replace the slot (a
    // nested `enter` panics before touching it, `enter_if_vacant` leaves it alone). The
    // `Shared` is only ever reached through shared references.
    f(unsafe { p.as_ref() })
}

/// Whether a runtime is running on this thread.
#[inline]
pub(crate) fn is_running() -> bool {
    !CURRENT.with(Cell::get).is_null()
}

/// Gives the slot back to its previous occupant (none) when dropped, also on unwinding.
pub(crate) struct EnterGuard {
    _private: (),
}

/// Makes `shared` the current runtime. Panics if another `block_on` is running on this
/// thread: a runtime blocked inside another would stall the outer one.
pub(crate) fn enter(shared: Rc<Shared>) -> EnterGuard {
    if is_running() {
        drop(shared);
        panic!(
            "iomgr: `block_on` was called while a runtime is already running on this thread; \
             await the future instead (or `spawn` it), or run the second runtime on another thread"
        );
    }
    CURRENT.with(|c| c.set(Rc::into_raw(shared)));
    EnterGuard { _private: () }
}

/// Makes `shared` current only if no runtime is; used by teardown paths.
pub(crate) fn enter_if_vacant(shared: &Rc<Shared>) -> Option<EnterGuard> {
    if is_running() {
        return None;
    }
    CURRENT.with(|c| c.set(Rc::into_raw(shared.clone())));
    Some(EnterGuard { _private: () })
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        // Empty the slot before dropping the reference, so the drop (which may run the
        // runtime's destructor) finds no runtime here.
        let old = CURRENT.with(|c| c.replace(ptr::null()));
        debug_assert!(
            !old.is_null(),
            "an EnterGuard's slot is occupied until it drops"
        );
        // SAFETY: `old` is the pointer this guard installed (guards nest strictly: a guard is
        // made only while the slot is empty), made by `Rc::into_raw`; its reference is given
        // back exactly once, here.
        drop(unsafe { Rc::from_raw(old) });
    }
}
