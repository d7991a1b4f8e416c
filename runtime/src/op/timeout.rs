//! The timer op.

use std::io;
use std::time::Duration;

use io_uring::{opcode, squeue, types};

use super::OpCode;

/// Complete after a relative duration (`IORING_OP_TIMEOUT`).
#[derive(Debug)]
pub struct Timeout {
    /// Read by the kernel at submission only, so it may live inside the (pinned) op.
    timespec: types::Timespec,
}

impl Timeout {
    pub(crate) fn new(duration: Duration) -> Self {
        Timeout {
            timespec: saturating_timespec(duration),
        }
    }
}

/// The kernel's `tv_sec` is signed: more than `i64::MAX` seconds (`Duration::MAX`, say) would
/// turn negative and be refused with `EINVAL`. 2^63 seconds is "never" for any caller, so
/// saturate there (the kernel saturates the timer itself at `KTIME_MAX`).
fn saturating_timespec(duration: Duration) -> types::Timespec {
    let secs = duration.as_secs().min(i64::MAX as u64);
    types::Timespec::new()
        .sec(secs)
        .nsec(duration.subsec_nanos())
}

// SAFETY: the timespec is copied by the kernel when the SQE is submitted, and the op is
// pinned (or flushed before it moves) until then.
unsafe impl OpCode for Timeout {
    type Output = io::Result<()>;

    fn build(&mut self) -> squeue::Entry {
        opcode::Timeout::new(&self.timespec).build()
    }

    fn complete(self, result: io::Result<u32>, _flags: u32) -> Self::Output {
        match result {
            Ok(_) => Ok(()),
            // ETIME is how a timeout says it fired.
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
