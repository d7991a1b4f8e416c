//! Tasks: `#[iomgr::task]` (docs written below once the lowering settles).

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
