//! Wakes that arrive from other threads.
//!
//! Each runtime registers a [`Remote`] under its id in a process-wide registry. A waker woken
//! off-thread looks the runtime up, queues the task address, and, if the runtime is parked in
//! its ring wait, writes the runtime's eventfd, whose pending read completes and ends the wait.
//! This is the slow path (a mutex and maybe a syscall); wakes on the runtime's own thread never
//! come here. A thread remembers the last runtime it woke (a `Weak`), so a thread that keeps
//! waking one runtime (a producer feeding a channel) skips the process-wide registry's lock.
//!
//! The queue holds each task at most once: a wake for a task that is already queued (and not
//! yet taken by the runtime) is dropped, so a thread that wakes one task in a loop cannot grow
//! it. What a burst of distinct wakes made it allocate is given back after the drain (beyond
//! [`KEEP_CAPACITY`] entries).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};

use super::waker::{MAX_RUNTIME_ID, TaskAddr};

/// Work sent to a runtime from another thread: runs on the runtime's thread, once.
pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

/// Entries of capacity a drained wake or job queue keeps for the next burst; what a larger
/// burst allocated beyond this is freed once it is drained.
pub(crate) const KEEP_CAPACITY: usize = 1024;

/// Wakes from other threads, each task at most once, in the order of their first wake.
#[derive(Default)]
struct WakeQueue {
    /// Packed task addresses ([`TaskAddr::pack`]).
    order: Vec<u64>,
    /// The addresses in `order`, to drop a wake for a task that is already queued.
    queued: HashSet<u64, BuildHasherDefault<WordHasher>>,
}

/// Hashes one packed task address (already unique; only needs spreading) with a multiply.
#[derive(Default)]
struct WordHasher(u64);

impl Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The part of a runtime other threads may touch.
pub(crate) struct Remote {
    queue: Mutex<WakeQueue>,
    /// Jobs from [`Handle::spawn`](super::Handle::spawn); `None` once the runtime is gone.
    jobs: Mutex<Option<Vec<Job>>>,
    /// True while the runtime is (about to be) blocked in its ring wait.
    parked: AtomicBool,
    /// True when wakes or jobs may be queued: lets the runtime skip both locks on every tick.
    pending: AtomicBool,
    /// Set when the runtime unregisters: wakes for it are dropped from then on.
    closed: AtomicBool,
    wake_fd: OwnedFd,
}

thread_local! {
    /// The runtime this thread last woke from afar, by id.
    static LAST_WOKEN: RefCell<Option<(u32, Weak<Remote>)>> = const { RefCell::new(None) };
}

static REGISTRY: LazyLock<Mutex<HashMap<u32, Arc<Remote>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));
static NEXT_ID: AtomicU32 = AtomicU32::new(1);

impl Remote {
    /// Creates a `Remote` waking `wake_fd`, registers it, and returns it with its runtime id.
    pub(crate) fn register(wake_fd: OwnedFd) -> (u32, Arc<Remote>) {
        let remote = Arc::new(Remote {
            queue: Mutex::new(WakeQueue::default()),
            jobs: Mutex::new(Some(Vec::new())),
            parked: AtomicBool::new(false),
            pending: AtomicBool::new(false),
            closed: AtomicBool::new(false),
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
        let removed = REGISTRY
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        if let Some(remote) = removed {
            // Threads that cached it see this and look the id up again (and find nothing,
            // or a new runtime that reuses the id).
            remote.closed.store(true, Ordering::Release);
        }
    }

    /// Queues a wake for `addr` on its runtime, from any thread. Unknown runtimes are ignored
    /// (the runtime is gone, and so is the task).
    pub(crate) fn wake(addr: TaskAddr) {
        let cached = LAST_WOKEN
            .try_with(|last| match &*last.borrow() {
                Some((id, remote)) if *id == addr.runtime => remote.upgrade(),
                _ => None,
            })
            .ok()
            .flatten()
            .filter(|remote| !remote.closed.load(Ordering::Acquire));
        let remote = cached.or_else(|| {
            let remote = REGISTRY
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&addr.runtime)
                .cloned()?;
            let _ = LAST_WOKEN.try_with(|last| {
                // The old entry (a `Weak`) is dropped after the borrow ends.
                let old = last
                    .borrow_mut()
                    .replace((addr.runtime, Arc::downgrade(&remote)));
                drop(old);
            });
            Some(remote)
        });
        if let Some(remote) = remote {
            remote.push(addr);
        }
    }

    fn push(&self, addr: TaskAddr) {
        let word = addr.pack();
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if !queue.queued.insert(word) {
            // Already queued: the runtime has been told (`pending`) and will take it.
            return;
        }
        queue.order.push(word);
        drop(queue);
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

    /// Moves queued jobs into `out`, which must be empty (swapping the vectors: no copy).
    /// Give `out` to [`recycle`] once its jobs have run.
    pub(crate) fn drain_jobs(&self, out: &mut Vec<Job>) {
        debug_assert!(out.is_empty());
        if let Some(jobs) = &mut *self.jobs.lock().unwrap_or_else(PoisonError::into_inner) {
            std::mem::swap(jobs, out);
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

    /// Moves queued wakes into `out`, which must be empty (swapping the vectors: no copy);
    /// the tasks become wakeable from other threads again. Give `out` to [`recycle`] once the
    /// wakes are delivered.
    pub(crate) fn drain(&self, out: &mut Vec<u64>) {
        debug_assert!(out.is_empty());
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::swap(&mut queue.order, out);
        queue.queued.clear();
        queue.queued.shrink_to(KEEP_CAPACITY);
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

/// Empties a vector filled by [`Remote::drain`] or [`Remote::drain_jobs`], keeping at most
/// [`KEEP_CAPACITY`] entries of capacity (it goes back into the queue at the next drain).
pub(crate) fn recycle<T>(out: &mut Vec<T>) {
    out.clear();
    out.shrink_to(KEEP_CAPACITY);
}

#[cfg(test)]
impl Remote {
    /// Wakes waiting for the runtime to take them.
    fn queued_wakes(&self) -> usize {
        self.queue.lock().unwrap().order.len()
    }

    /// Entries the wake queue could hold without allocating.
    fn wake_capacity(&self) -> usize {
        let queue = self.queue.lock().unwrap();
        queue.order.capacity().max(queue.queued.capacity())
    }
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("parked", &self.parked.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::future::Future;
    use std::os::fd::FromRawFd;
    use std::pin::Pin;
    use std::rc::Rc;
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll, Waker};

    use super::*;
    use crate::runtime::context;
    use crate::{Runtime, spawn, yield_now};

    /// A task that never finishes, counts its polls and publishes its waker.
    struct Counting {
        polls: Rc<Cell<u32>>,
        waker: Arc<Mutex<Option<Waker>>>,
    }

    impl Future for Counting {
        type Output = ();

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.set(self.polls.get() + 1);
            *self.waker.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    fn wake_from_another_thread(waker: &Waker, times: usize) {
        let waker = waker.clone();
        std::thread::spawn(move || {
            for _ in 0..times {
                waker.wake_by_ref();
            }
        })
        .join()
        .unwrap();
    }

    #[test]
    #[cfg_attr(miri, ignore = "builds a runtime (an io_uring)")]
    fn foreign_wakes_of_a_queued_task_are_coalesced() {
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let remote = context::current().unwrap().remote.clone();
            let polls = Rc::new(Cell::new(0));
            let waker = Arc::new(Mutex::new(None));
            let _task = spawn(Counting {
                polls: polls.clone(),
                waker: waker.clone(),
            });
            yield_now().await;
            assert_eq!(polls.get(), 1);
            let waker = waker.lock().unwrap().clone().unwrap();

            // Many wakes while the runtime is busy here and cannot drain: one entry.
            wake_from_another_thread(&waker, 100_000);
            assert_eq!(remote.queued_wakes(), 1);
            for _ in 0..3 {
                yield_now().await;
            }
            assert_eq!(polls.get(), 2, "woken once, polled once");
            assert_eq!(remote.queued_wakes(), 0);

            // Once drained, the next wake queues the task again: no wake is lost.
            wake_from_another_thread(&waker, 1);
            assert_eq!(remote.queued_wakes(), 1);
            for _ in 0..3 {
                yield_now().await;
            }
            assert_eq!(polls.get(), 3);
        });
    }

    #[test]
    fn a_large_drain_gives_its_capacity_back() {
        // SAFETY: plain syscall (Miri supports eventfd); the result is checked and owned below.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        assert!(raw >= 0);
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let (id, remote) = Remote::register(fd);
        // Wakes for many distinct (stale) tasks of this runtime: all queued, once each.
        let wakes: u32 = if cfg!(miri) {
            4 * KEEP_CAPACITY as u32
        } else {
            100_000
        };
        for index in 0..wakes {
            remote.push(TaskAddr {
                runtime: id,
                index,
                generation: 0,
            });
        }
        assert_eq!(remote.queued_wakes(), wakes as usize);
        let mut out = Vec::new();
        remote.drain(&mut out);
        assert_eq!(out.len(), wakes as usize);
        recycle(&mut out);
        assert!(out.is_empty());
        assert!(out.capacity() <= KEEP_CAPACITY, "{}", out.capacity());
        // (A hash set rounds its capacity up to a power-of-two bucket count.)
        assert!(
            remote.wake_capacity() <= 2 * KEEP_CAPACITY,
            "{}",
            remote.wake_capacity()
        );
        Remote::unregister(id);
    }
}
