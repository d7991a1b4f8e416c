//! Which runtime is running on this thread.
//!
//! `block_on` installs its runtime here for its duration; `spawn`, ops on first poll, and
//! wakers on this thread find it here.

use std::cell::RefCell;
use std::rc::Rc;

use super::Shared;

thread_local! {
    static CURRENT: RefCell<Option<Rc<Shared>>> = const { RefCell::new(None) };
}

/// The runtime running on this thread, if any.
pub(crate) fn current() -> Option<Rc<Shared>> {
    // `try_with`: a socket dropped by another thread-local's destructor asks too.
    CURRENT.try_with(|c| c.borrow().clone()).ok().flatten()
}

/// Runs `f` with the runtime running on this thread, without touching its reference count.
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&Shared>) -> R) -> R {
    CURRENT.with(|c| f(c.borrow().as_deref()))
}

/// Restores the previous runtime (normally none) when dropped, also on unwinding.
pub(crate) struct EnterGuard {
    previous: Option<Rc<Shared>>,
}

/// Makes `shared` the current runtime. Panics if another `block_on` is running on this
/// thread: a runtime blocked inside another would stall the outer one.
pub(crate) fn enter(shared: Rc<Shared>) -> EnterGuard {
    let previous = CURRENT.with(|c| c.borrow_mut().replace(shared));
    if previous.is_some() {
        CURRENT.with(|c| *c.borrow_mut() = previous);
        panic!(
            "iomgr: `block_on` was called while a runtime is already running on this thread; \
             await the future instead (or `spawn` it), or run the second runtime on another thread"
        );
    }
    EnterGuard { previous: None }
}

/// Makes `shared` current only if no runtime is; used by teardown paths.
pub(crate) fn enter_if_vacant(shared: &Rc<Shared>) -> Option<EnterGuard> {
    CURRENT.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_some() {
            return None;
        }
        *c = Some(shared.clone());
        Some(EnterGuard { previous: None })
    })
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        // Take the old value out before dropping it, so its drop can use the thread-local.
        let old = CURRENT.with(|c| std::mem::replace(&mut *c.borrow_mut(), previous));
        drop(old);
    }
}
