//! Guard bytes after a pool buffer's usable memory (debug builds only), after ASIO's buffer
//! debugging: a write past the end of a buffer changes them, and the pool checks them when
//! the buffer comes back.
//!
//! Safe code cannot write past a buffer (its slices are bounds-checked) and the kernel
//! cannot either (an op's length is the buffer's; a registered buffer's registration ends
//! before its guard). What the check catches is unsafe code that trusts a wrong length.

/// How many guard bytes follow each pool buffer: 16 in debug builds, none in release.
pub(crate) const GUARD_LEN: usize = if cfg!(debug_assertions) { 16 } else { 0 };

/// What the guard bytes hold while intact.
pub(crate) const GUARD_BYTE: u8 = 0xfd;

/// Fills the guard after a buffer.
///
/// # Safety
/// `end` must be valid for writes of [`GUARD_LEN`] bytes that nothing else uses.
pub(crate) unsafe fn arm(end: *mut u8) {
    // SAFETY: forwarded from this function's contract.
    unsafe { end.write_bytes(GUARD_BYTE, GUARD_LEN) };
}

/// The first changed guard byte after a buffer: its offset in the guard and what it holds.
///
/// # Safety
/// `end` must be valid for reads of [`GUARD_LEN`] initialized bytes that nobody writes now.
pub(crate) unsafe fn check(end: *const u8) -> Option<(usize, u8)> {
    // SAFETY: forwarded from this function's contract.
    let guard = unsafe { std::slice::from_raw_parts(end, GUARD_LEN) };
    guard
        .iter()
        .position(|&b| b != GUARD_BYTE)
        .map(|at| (at, guard[at]))
}

/// What to say about a broken guard (report it with [`complain`]).
pub(crate) fn overrun(what: &str, capacity: usize, at: usize, found: u8) -> String {
    format!(
        "iomgr: {what} was written past its end: guard byte {at} after its {capacity} usable \
         bytes (offset {}) holds {found:#04x}, not {GUARD_BYTE:#04x}; some unsafe code wrote \
         beyond the buffer (the buffer is not reused)",
        capacity + at
    )
}

/// Panics with `message`, unless the thread is already panicking (then prints it: a second
/// panic would abort).
pub(crate) fn complain(message: String) {
    if std::thread::panicking() {
        eprintln!("{message}");
    } else {
        panic!("{message}");
    }
}
