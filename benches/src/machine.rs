//! The machine under a benchmark: which core a thread runs on, how loaded the machine is, and
//! how much CPU time a thread has used.
//!
//! The benchmarks run on a shared machine with two cores: each pins its threads (a server to
//! one core, its load to the other), prints the load average before and after so that a
//! disturbed run can be recognized, and reads thread CPU clocks, which time spent preempted
//! by other work does not advance, beside (or instead of) the wall clock.

use std::io;
use std::os::unix::thread::JoinHandleExt;
use std::thread;
use std::time::Duration;

/// Pins the calling thread to one CPU.
pub fn pin_to_core(core: usize) -> io::Result<()> {
    if core >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("pinning to core {core}: beyond CPU_SETSIZE"),
        ));
    }
    // SAFETY: `cpu_set_t` is plain bytes; all zeros is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `core` is below CPU_SETSIZE (checked above), and `set` is initialized.
    unsafe { libc::CPU_SET(core, &mut set) };
    // SAFETY: pid 0 is the calling thread; `set` is valid for the size passed.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("pinning to core {core}: {e}"),
        ));
    }
    Ok(())
}

/// The 1, 5 and 15 minute load averages from `/proc/loadavg`, or "unknown".
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_string())
}

/// CPU time (user + system) the calling thread has used so far (`CLOCK_THREAD_CPUTIME_ID`,
/// nanosecond resolution).
pub fn thread_cpu_time() -> Duration {
    read_clock(libc::CLOCK_THREAD_CPUTIME_ID).expect("clock_gettime(CLOCK_THREAD_CPUTIME_ID)")
}

/// The CPU-time clock of another thread of this process (`pthread_getcpuclockid`: user +
/// system, including the kernel work done on that thread).
pub struct CpuClock(libc::clockid_t);

impl CpuClock {
    /// The clock of the thread behind `handle`, which must not have been joined.
    pub fn of_thread<T>(handle: &thread::JoinHandle<T>) -> io::Result<Self> {
        let mut clock: libc::clockid_t = 0;
        // SAFETY: the thread is alive (its handle is not joined), and `clock` is writable.
        let rc = unsafe { libc::pthread_getcpuclockid(handle.as_pthread_t(), &mut clock) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(CpuClock(clock))
    }

    /// CPU time the thread has used so far.
    pub fn now(&self) -> io::Result<Duration> {
        read_clock(self.0)
    }
}

fn read_clock(clock: libc::clockid_t) -> io::Result<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is writable; a clock that does not exist (that of a thread that has
    // exited) only makes the call fail (EINVAL), which is reported.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}
