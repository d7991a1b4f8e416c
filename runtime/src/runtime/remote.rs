//! Wakes that arrive from other threads.
//!
//! Each runtime registers a [`Remote`] under its id in a process-wide registry. A waker woken
//! off-thread looks the runtime up, queues the task address, and, if the runtime is parked in
//! its ring wait, writes the runtime's eventfd, whose pending read completes and ends the wait.
//! This is the slow path (a mutex and maybe a syscall); wakes on the runtime's own thread never
//! come here.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use super::waker::{MAX_RUNTIME_ID, TaskAddr};

/// Work sent to a runtime from another thread: runs on the runtime's thread, once.
pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

/// The part of a runtime other threads may touch.
pub(crate) struct Remote {
    queue: Mutex<Vec<u64>>,
    /// Jobs from [`Handle::spawn`](super::Handle::spawn); `None` once the runtime is gone.
    jobs: Mutex<Option<Vec<Job>>>,
    /// True while the runtime is (about to be) blocked in its ring wait.
    parked: AtomicBool,
    /// True when wakes or jobs may be queued: lets the runtime skip both locks on every tick.
    pending: AtomicBool,
    wake_fd: OwnedFd,
}

static REGISTRY: LazyLock<Mutex<HashMap<u32, Arc<Remote>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));
static NEXT_ID: AtomicU32 = AtomicU32::new(1);

impl Remote {
    /// Creates a `Remote` waking `wake_fd`, registers it, and returns it with its runtime id.
    pub(crate) fn register(wake_fd: OwnedFd) -> (u32, Arc<Remote>) {
        let remote = Arc::new(Remote {
            queue: Mutex::new(Vec::new()),
            jobs: Mutex::new(Some(Vec::new())),
            parked: AtomicBool::new(false),
            pending: AtomicBool::new(false),
            wake_fd,
        });
        let mut registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
        let id = loop {
            let id = NEXT_ID.fetch_add(1, Ordering::Relaxed) % MAX_RUNTIME_ID + 1;
            if !registry.contains_key(&id) {
                break id;
            }
        };
        registry.insert(id, remote.clone());
        (id, remote)
    }

    pub(crate) fn unregister(id: u32) {
        REGISTRY
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }

    /// Queues a wake for `addr` on its runtime, from any thread. Unknown runtimes are ignored
    /// (the runtime is gone, and so is the task).
    pub(crate) fn wake(addr: TaskAddr) {
        let remote = REGISTRY
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&addr.runtime)
            .cloned();
        if let Some(remote) = remote {
            remote.push(addr);
        }
    }

    fn push(&self, addr: TaskAddr) {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(addr.pack());
        self.notify();
    }

    /// Queues `job` to run on the runtime's thread; gives it back if the runtime is gone.
    pub(crate) fn submit(&self, job: Job) -> Result<(), Job> {
        match &mut *self.jobs.lock().unwrap_or_else(PoisonError::into_inner) {
            Some(jobs) => jobs.push(job),
            None => return Err(job),
        }
        self.notify();
        Ok(())
    }

    /// Moves queued jobs into `out`.
    pub(crate) fn drain_jobs(&self, out: &mut Vec<Job>) {
        if let Some(jobs) = &mut *self.jobs.lock().unwrap_or_else(PoisonError::into_inner) {
            out.append(jobs);
        }
    }

    /// The runtime is shutting down: refuse new jobs, and return the queued ones to drop.
    pub(crate) fn close(&self) -> Vec<Job> {
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .unwrap_or_default()
    }

    /// Whether anything was queued since the last [`take_pending`](Self::take_pending); clears
    /// the flag. Call before draining, so a push racing the drain sets it again.
    pub(crate) fn take_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire) && self.pending.swap(false, Ordering::AcqRel)
    }

    /// Wakes the runtime out of its ring wait if it is parked there.
    fn notify(&self) {
        self.pending.store(true, Ordering::SeqCst);
        if self.parked.swap(false, Ordering::SeqCst) {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a live local to an eventfd we own. A failure
            // (EAGAIN when the counter is saturated) still leaves the eventfd readable.
            unsafe {
                libc::write(
                    self.wake_fd.as_raw_fd(),
                    (&one as *const u64).cast(),
                    std::mem::size_of::<u64>(),
                )
            };
        }
    }

    /// Moves queued wakes into `out`.
    pub(crate) fn drain(&self, out: &mut Vec<u64>) {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        out.append(&mut queue);
    }

    /// Announces that the runtime is about to block. Returns false (and stays unparked) when
    /// wakes or jobs are already queued, so the runtime must not block.
    ///
    /// With `notify`, this is a store-then-load handshake on both sides (SeqCst): either the
    /// runtime sees `pending`, or the notifier sees `parked` and writes the eventfd.
    pub(crate) fn park(&self) -> bool {
        self.parked.store(true, Ordering::SeqCst);
        if self.pending.load(Ordering::SeqCst) {
            self.parked.store(false, Ordering::SeqCst);
            return false;
        }
        true
    }

    pub(crate) fn unpark(&self) {
        self.parked.store(false, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("parked", &self.parked.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}
