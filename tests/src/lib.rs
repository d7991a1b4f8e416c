//! Shared helpers for iomgr's end-to-end tests (the tests themselves are in `tests/`).

mod alloc_counter;
pub mod twins;

use std::cell::Cell;
use std::rc::Rc;

use iomgr::buf::{IoBuf, IoBufMut};

pub use alloc_counter::{CountingAlloc, allocations_during};

/// A buffer that records when it is dropped and what it held then.
///
/// Tests hand it to an op, drop the op in flight, and check that the buffer is freed only
/// after the op's completion (never while the kernel may still write into it).
#[derive(Debug)]
pub struct TrackedBuf {
    data: Vec<u8>,
    probe: Rc<DropProbe>,
}

/// What a [`TrackedBuf`] reports about its end.
#[derive(Debug, Default)]
pub struct DropProbe {
    dropped: Cell<bool>,
    len_at_drop: Cell<usize>,
}

impl DropProbe {
    /// Whether the buffer has been dropped.
    pub fn dropped(&self) -> bool {
        self.dropped.get()
    }

    /// How many initialized bytes it held when dropped.
    pub fn len_at_drop(&self) -> usize {
        self.len_at_drop.get()
    }
}

impl TrackedBuf {
    /// A buffer of `capacity` bytes (none initialized) and the probe that watches it.
    pub fn new(capacity: usize) -> (Self, Rc<DropProbe>) {
        let probe = Rc::new(DropProbe::default());
        (
            TrackedBuf {
                data: Vec::with_capacity(capacity),
                probe: probe.clone(),
            },
            probe,
        )
    }

    /// A buffer holding `bytes`.
    pub fn filled(bytes: Vec<u8>) -> (Self, Rc<DropProbe>) {
        let probe = Rc::new(DropProbe::default());
        (
            TrackedBuf {
                data: bytes,
                probe: probe.clone(),
            },
            probe,
        )
    }

    /// The initialized bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for TrackedBuf {
    fn drop(&mut self) {
        self.probe.len_at_drop.set(self.data.len());
        self.probe.dropped.set(true);
    }
}

// SAFETY: delegates to `Vec<u8>`, whose heap memory is stable.
unsafe impl IoBuf for TrackedBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.data.stable_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.data.bytes_init()
    }
    fn bytes_total(&self) -> usize {
        self.data.bytes_total()
    }
}

// SAFETY: delegates to `Vec<u8>`.
unsafe impl IoBufMut for TrackedBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.data.stable_mut_ptr()
    }
    unsafe fn set_init(&mut self, pos: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { self.data.set_init(pos) }
    }
}

/// Number of open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .count()
}

/// A fresh directory under the system temp dir, removed when dropped.
#[derive(Debug)]
pub struct TempDir {
    path: std::path::PathBuf,
}

impl TempDir {
    /// Creates a uniquely named directory.
    pub fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "iomgr-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    /// Path of `name` inside the directory.
    pub fn join(&self, name: &str) -> std::path::PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Runs the runtime until `cond` holds, yielding between checks; panics after `ticks` tries.
pub async fn until(ticks: usize, what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..ticks {
        if cond() {
            return;
        }
        iomgr::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    panic!("gave up waiting until {what}");
}

/// Whether this process is the child that [`rerun_in_child`] started with `env` set: the
/// test then does its work here, in a process of its own.
pub fn in_child(env: &str) -> bool {
    std::env::var_os(env).is_some()
}

/// Runs the test named `test` again in a child process of this test binary, with `env` set
/// (the test takes its [`in_child`] branch there): for tests that change something
/// process-wide (a signal's disposition, a resource limit, a seccomp filter) or may die of a
/// signal, which must not touch the other tests. Returns the child's standard output once
/// it exited successfully; panics with both its outputs otherwise.
pub fn rerun_in_child(test: &str, env: &str) -> String {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture"])
        .env(env, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child failed ({:?}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Puts SIGPIPE back at its default disposition (the signal kills the process), as in a C
/// host or a Rust binary built with `-Zon-broken-pipe=kill`; Rust's runtime ignores it
/// otherwise. For a child of [`rerun_in_child`] only: it changes the whole process.
pub fn restore_default_sigpipe() {
    // SAFETY: setting a signal's disposition to the default has no memory-safety
    // preconditions.
    let previous = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    assert_ne!(previous, libc::SIG_ERR);
}

/// Polls `fut` once with a waker that does nothing: enough to submit an op (queue its SQE),
/// so a test can then drop it in flight.
pub fn poll_once<F: std::future::Future>(fut: std::pin::Pin<&mut F>) -> std::task::Poll<F::Output> {
    fut.poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
}

/// Holds the test binary's lock: for tests that count the process's open descriptors (or
/// otherwise observe the whole process), which must not run beside each other. Each test
/// binary has its own lock.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
