//! Fault injection for iomgr's own unit tests: compiled only under `cfg(test)`.
//!
//! The saturation paths of the driver (an SQ that stays full, a submission the kernel refuses,
//! a completion the kernel lost) are hard to reach with a real ring. A test arms a [`Fault`]
//! on its thread for a number of shots; the driver consumes one shot each time it reaches the
//! matching site, and behaves exactly as if the kernel had failed there:
//!
//! ```ignore
//! let _faults = fault::arm(Fault::PushCancel, 1); // the next AsyncCancel does not fit
//! drop(read_in_flight);                         // ...so abandon() must keep it for later
//! ```
//!
//! Faults are per thread (each libtest test runs on its own thread), and the guard returned by
//! [`arm`] disarms everything when dropped, so a failing test leaks nothing into the next.

use std::cell::RefCell;

/// A failure the driver can be made to see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Queueing an op's SQE fails as if the SQ stayed full and the kernel took nothing.
    PushOp,
    /// Queueing an `AsyncCancel` fails likewise.
    PushCancel,
    /// Queueing the read on the wake eventfd fails likewise.
    PushWake,
    /// A submission that does not wait (a flush, or the one a full SQ triggers) fails with
    /// this errno before reaching the kernel: nothing is consumed.
    Submit(i32),
    /// The tick's `io_uring_enter` fails with this errno before reaching the kernel.
    Enter(i32),
    /// The next completion of an op is dropped while reaping, as if the kernel lost it.
    LoseCqe,
}

thread_local! {
    static ARMED: RefCell<Vec<(Fault, u32)>> = const { RefCell::new(Vec::new()) };
}

/// Disarms every fault of this thread when dropped.
#[must_use = "the faults are disarmed when the guard is dropped"]
pub(crate) struct Armed(());

impl Drop for Armed {
    fn drop(&mut self) {
        disarm_all();
    }
}

/// Arms `fault` for the next `shots` times its site is reached on this thread.
pub(crate) fn arm(fault: Fault, shots: u32) -> Armed {
    ARMED.with(|armed| armed.borrow_mut().push((fault, shots)));
    Armed(())
}

/// Disarms every fault of this thread.
pub(crate) fn disarm_all() {
    let _ = ARMED.try_with(|armed| armed.borrow_mut().clear());
}

/// Consumes one shot of the first armed fault that `matches`, and returns it.
fn take(matches: impl Fn(&Fault) -> bool) -> Option<Fault> {
    ARMED
        .try_with(|armed| {
            let mut armed = armed.borrow_mut();
            let i = armed
                .iter()
                .position(|(fault, shots)| *shots > 0 && matches(fault))?;
            armed[i].1 -= 1;
            Some(armed[i].0)
        })
        .ok()
        .flatten()
}

/// Whether `fault` (a push or a lost completion) fires here, consuming one shot.
pub(crate) fn fires(fault: Fault) -> bool {
    take(|f| *f == fault).is_some()
}

/// The errno an armed [`Fault::Submit`] makes this submission fail with.
pub(crate) fn submit_error() -> Option<i32> {
    match take(|f| matches!(f, Fault::Submit(_))) {
        Some(Fault::Submit(errno)) => Some(errno),
        _ => None,
    }
}

/// The errno an armed [`Fault::Enter`] makes this tick's enter fail with.
pub(crate) fn enter_error() -> Option<i32> {
    match take(|f| matches!(f, Fault::Enter(_))) {
        Some(Fault::Enter(errno)) => Some(errno),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_armed_fault_fires_its_shots_and_the_guard_disarms_the_rest() {
        let guard = arm(Fault::PushOp, 2);
        let _also = arm(Fault::Submit(libc::EBUSY), 1);
        assert!(!fires(Fault::PushCancel), "only the armed kind fires");
        assert!(fires(Fault::PushOp) && fires(Fault::PushOp));
        assert!(!fires(Fault::PushOp), "two shots, then no more");
        assert_eq!(enter_error(), None);
        drop(guard);
        assert_eq!(submit_error(), None, "the guard disarmed every fault");
        let _enter = arm(Fault::Enter(libc::EBADR), 1);
        assert_eq!(enter_error(), Some(libc::EBADR));
        assert!(!fires(Fault::LoseCqe));
    }
}
