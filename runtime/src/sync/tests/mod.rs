//! Unit tests of the sync primitives, on the test executor of `test_util`.

mod async_chan;
mod async_promise;
mod chan;
mod promise;

use std::cell::Cell;
use std::rc::Rc;

/// A value that counts its drops.
pub(super) struct DropCount(pub(super) Rc<Cell<usize>>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}
mod reentrancy;
