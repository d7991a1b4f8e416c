//! Closing a descriptor only when no queued SQE can still name it.
//!
//! An SQE names its descriptor by number, and the kernel resolves the number when it consumes
//! the SQE (it then holds its own reference to the file, so closing the number afterwards is
//! harmless). Between queueing and consuming, an op's future keeps its stream or file
//! borrowed, so the owner cannot close it... unless the future is *forgotten*
//! (`mem::forget` is safe), which ends the borrow and leaves the SQE queued. Closing the
//! number then and letting a new socket or file take it would hand that SQE's I/O to the
//! newcomer. Every iomgr type that owns a descriptor ops may name (sockets, listeners, files)
//! holds a [`RingFd`], whose close makes sure that cannot happen:
//!
//! 1. On the runtime running on this thread, SQEs still queued that name the descriptor are
//!    withdrawn (rewritten as `NOP`s, see [`super::sqes`]): the forgotten op never runs. No
//!    system call; the SQ is scanned only when it holds something.
//! 2. Any other ring that may hold such an SQE (one of this thread that is not running, or
//!    the ring of another thread the descriptor was used on) is *dirty*: its SQ may hold SQEs
//!    the kernel has not consumed. The close is then deferred (a [`Grave`]) until each such
//!    ring has submitted what it held, and happens right after (a ring that waits in the
//!    kernel is woken for it). A ring that is dropped counts as having submitted.
//!
//! Rings publish "dirty" in a [`RingWatch`]: the driver marks it before queueing an SQE and
//! clears it when a submission leaves the SQ empty, bumping an epoch. A grave remembers the
//! epoch it saw on each dirty ring and waits only for those rings to move past it, so a busy
//! ring that is dirty again on every tick cannot hold a close back for more than one tick.
//!
//! Which rings to look at: a `RingFd` notes the thread of every op made on it (a
//! thread-local read and a compare, on the op path). Used on one thread only, only that
//! thread's rings can name it (ops are `!Send`: an op is queued by the thread that made it),
//! and its close looks at them alone; used on several threads, or closed on another, it looks
//! at every ring of the process. Never used by an op, it closes at once.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Threads are told apart by a token: `NOBODY` is no thread, `MANY` is "several (or
/// unknown) threads"; a thread that would get a token past the range gets `MANY`.
const NOBODY: u32 = 0;
const MANY: u32 = u32::MAX;

static NEXT_TOKEN: AtomicU32 = AtomicU32::new(1);

thread_local! {
    static TOKEN: Cell<u32> = const { Cell::new(NOBODY) };
    /// The rings made on this thread (a ring never leaves its thread).
    static LOCAL_RINGS: RefCell<Vec<Arc<RingWatch>>> = const { RefCell::new(Vec::new()) };
}

/// Every live ring of the process.
static ALL_RINGS: Mutex<Vec<Arc<RingWatch>>> = Mutex::new(Vec::new());

/// This thread's token.
fn thread_token() -> u32 {
    TOKEN.with(|token| {
        let t = token.get();
        if t != NOBODY {
            return t;
        }
        let t = NEXT_TOKEN
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < MANY).then_some(n + 1)
            })
            .unwrap_or(MANY);
        token.set(t);
        t
    })
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A descriptor that ops name by number, closed only when no queued SQE names it.
pub(crate) struct RingFd {
    /// `None` only while being given away or dropped.
    fd: Option<OwnedFd>,
    /// Token of the thread ops were made on: `NOBODY` yet, one thread, or `MANY`.
    users: AtomicU32,
}

impl RingFd {
    pub(crate) fn new(fd: OwnedFd) -> Self {
        RingFd {
            fd: Some(fd),
            users: AtomicU32::new(NOBODY),
        }
    }

    fn owned(&self) -> &OwnedFd {
        self.fd
            .as_ref()
            .expect("RingFd used after it was given away")
    }

    /// The descriptor's number, for an op (or anything that may build one).
    #[inline]
    pub(crate) fn raw(&self) -> RawFd {
        self.note_user();
        self.owned().as_raw_fd()
    }

    /// The descriptor for plain system calls on this thread (socket options, addresses),
    /// which never queue an SQE: not noted as a use.
    pub(crate) fn untracked(&self) -> BorrowedFd<'_> {
        self.owned().as_fd()
    }

    #[inline]
    fn note_user(&self) {
        let me = thread_token();
        let seen = self.users.load(Ordering::Relaxed);
        if seen != me || me == MANY {
            self.note_new_user(seen, me);
        }
    }

    #[cold]
    fn note_new_user(&self, seen: u32, me: u32) {
        if seen == NOBODY && me != MANY {
            match self
                .users
                .compare_exchange(NOBODY, me, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(other) if other == me => return,
                Err(_) => {}
            }
        }
        // Relaxed is enough: whoever closes the descriptor owns it, and ownership reached
        // that thread through a synchronizing hand-over that ordered these stores before it.
        self.users.store(MANY, Ordering::Relaxed);
    }

    /// Which rings may hold an SQE naming the descriptor.
    fn scope(&self) -> Option<Scope> {
        match self.users.load(Ordering::Relaxed) {
            NOBODY => None,
            MANY => Some(Scope::Process),
            t if t == thread_token() => Some(Scope::Thread),
            _ => Some(Scope::Process),
        }
    }

    /// Takes the descriptor out if no queued SQE can name it any more; otherwise defers its
    /// close and returns `None`. For closing through the ring (`IORING_OP_CLOSE`).
    pub(crate) fn into_closable(mut self) -> Option<OwnedFd> {
        let fd = self.fd.take()?;
        match settle(fd, self.scope()) {
            Ok(fd) => Some(fd),
            Err(grave) => {
                grave.settle();
                None
            }
        }
    }

    /// Gives the descriptor away (`into_raw_fd`): its new owner may close it at once.
    ///
    /// When a ring that may still name it has not submitted yet, the caller gets a duplicate
    /// (a different number for the same open file) and the original is closed later.
    ///
    /// # Panics
    /// If that duplicate cannot be made (the process is out of descriptors).
    pub(crate) fn into_owned(mut self) -> OwnedFd {
        let fd = self.fd.take().expect("RingFd given away twice");
        match settle(fd, self.scope()) {
            Ok(fd) => fd,
            Err(grave) => {
                let dup = grave.fd.try_clone().unwrap_or_else(|e| {
                    panic!(
                        "iomgr: into_raw_fd: the descriptor is still named by a queued SQE of \
                         another ring and duplicating it failed: {e}"
                    )
                });
                grave.settle();
                dup
            }
        }
    }
}

impl Drop for RingFd {
    fn drop(&mut self) {
        if let Some(fd) = self.fd.take() {
            match settle(fd, self.scope()) {
                Ok(fd) => drop(fd),
                Err(grave) => grave.settle(),
            }
        }
    }
}

impl AsRawFd for RingFd {
    fn as_raw_fd(&self) -> RawFd {
        self.raw()
    }
}

impl AsFd for RingFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.note_user();
        self.owned().as_fd()
    }
}

impl From<OwnedFd> for RingFd {
    fn from(fd: OwnedFd) -> Self {
        RingFd::new(fd)
    }
}

impl fmt::Debug for RingFd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.fd {
            Some(fd) => fd.fmt(f),
            None => f.write_str("RingFd(closed)"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    /// Only rings of this thread may name the descriptor.
    Thread,
    /// Any ring of the process may.
    Process,
}

/// `Ok(fd)` when no queued SQE can name `fd` any more (after withdrawing those of the
/// running ring), else the grave that waits for the rings that still may.
fn settle(fd: OwnedFd, scope: Option<Scope>) -> Result<OwnedFd, Grave> {
    let Some(scope) = scope else {
        return Ok(fd);
    };
    let skip = withdraw_from_running_ring(fd.as_raw_fd());
    let waits = dirty_rings(scope, skip);
    if waits.is_empty() {
        Ok(fd)
    } else {
        Err(Grave { fd, waits, next: 0 })
    }
}

/// Withdraws the SQEs naming `fd` from the ring running on this thread; returns that ring's
/// watch (it no longer names `fd`), or null if none could be reached.
fn withdraw_from_running_ring(fd: RawFd) -> *const RingWatch {
    let Some(shared) = crate::runtime::current() else {
        return std::ptr::null();
    };
    // Busy only if a descriptor is closed from inside the driver (it never runs user code);
    // the ring then counts as any other dirty ring.
    let Ok(mut driver) = shared.driver.try_borrow_mut() else {
        return std::ptr::null();
    };
    driver.withdraw_fd(fd);
    Arc::as_ptr(driver.watch())
}

/// The rings in `scope` (but `skip`) whose SQ may hold unconsumed SQEs, with their state.
fn dirty_rings(scope: Scope, skip: *const RingWatch) -> Vec<(Arc<RingWatch>, u64)> {
    let pick = |ring: &Arc<RingWatch>| {
        if Arc::as_ptr(ring) == skip {
            return None;
        }
        let state = ring.state.load(Ordering::SeqCst);
        (state & 1 == 1).then(|| (ring.clone(), state))
    };
    if scope == Scope::Thread {
        let local = LOCAL_RINGS.try_with(|rings| {
            rings
                .try_borrow()
                .ok()
                .map(|rings| rings.iter().filter_map(pick).collect())
        });
        if let Ok(Some(waits)) = local {
            return waits;
        }
    }
    lock(&ALL_RINGS).iter().filter_map(pick).collect()
}

/// A descriptor whose close waits for some rings to submit what they hold.
pub(crate) struct Grave {
    fd: OwnedFd,
    /// The rings that were dirty, and the state each was seen in.
    waits: Vec<(Arc<RingWatch>, u64)>,
    /// The first ring in `waits` that may not have moved on yet.
    next: usize,
}

impl Grave {
    /// Parks the grave on the first ring that is still in the state it was seen in, or
    /// closes the descriptor if every ring has moved on.
    fn settle(mut self) {
        while let Some((ring, seen)) = self.waits.get(self.next) {
            if ring.state.load(Ordering::SeqCst) == *seen {
                let ring = ring.clone();
                match ring.park(self) {
                    Ok(()) => return,
                    Err(grave) => self = grave,
                }
            }
            self.next += 1;
        }
        drop(self.fd);
    }
}

/// What other threads (and descriptors being closed) may see of a ring.
pub(crate) struct RingWatch {
    /// `2 * epoch + dirty`. Dirty: the SQ may hold SQEs the kernel has not consumed. Only
    /// the ring's thread writes it.
    state: AtomicU64,
    /// Whether `graves.list` may be non-empty, so a clean tick need not lock.
    has_graves: AtomicBool,
    graves: Mutex<Graves>,
    /// Token of the ring's thread.
    thread: u32,
}

struct Graves {
    /// False once the ring is gone: it will never submit again.
    alive: bool,
    /// The ring's wake eventfd (valid while `alive`: the ring closes it after `retire`).
    wake_fd: RawFd,
    list: Vec<Grave>,
}

impl RingWatch {
    /// The watch of a new ring on this thread, registered for descriptors to find.
    pub(crate) fn register(wake_fd: RawFd) -> Arc<Self> {
        let watch = Arc::new(RingWatch {
            state: AtomicU64::new(0),
            has_graves: AtomicBool::new(false),
            graves: Mutex::new(Graves {
                alive: true,
                wake_fd,
                list: Vec::new(),
            }),
            thread: thread_token(),
        });
        LOCAL_RINGS.with(|rings| rings.borrow_mut().push(watch.clone()));
        lock(&ALL_RINGS).push(watch.clone());
        watch
    }

    /// The ring is about to queue an SQE.
    pub(crate) fn mark_dirty(&self) {
        let state = self.state.load(Ordering::Relaxed);
        self.state.store(state | 1, Ordering::Release);
    }

    /// A submission left the SQ empty: every SQE queued so far has been consumed.
    pub(crate) fn mark_clean(&self) {
        let state = self.state.load(Ordering::Relaxed);
        // Store-then-load, SeqCst on both sides (see `park`): either this load sees a grave
        // parked meanwhile, or `park` sees the new state and does not park.
        self.state.store((state | 1) + 1, Ordering::SeqCst);
        if self.has_graves.load(Ordering::SeqCst) {
            self.bury();
        }
    }

    /// Parks `grave` here if this ring is still in the state the grave saw.
    fn park(&self, grave: Grave) -> Result<(), Grave> {
        let mut graves = lock(&self.graves);
        if !graves.alive {
            return Err(grave);
        }
        self.has_graves.store(true, Ordering::SeqCst);
        if self.state.load(Ordering::SeqCst) != grave.waits[grave.next].1 {
            return Err(grave);
        }
        graves.list.push(grave);
        if self.thread != thread_token() || self.thread == MANY {
            // The ring may be blocked in the kernel with its SQ already consumed; wake it so
            // that it notices (the wake ends its wait, and the enter marks it clean).
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a live local to the ring's eventfd, which stays
            // open while `alive` (checked under the lock that `retire` takes).
            unsafe { libc::write(graves.wake_fd, (&one as *const u64).cast(), 8) };
        }
        Ok(())
    }

    /// Moves the graves parked here on to their next ring (or closes them).
    fn bury(&self) {
        let list = {
            let mut graves = lock(&self.graves);
            self.has_graves.store(false, Ordering::SeqCst);
            mem::take(&mut graves.list)
        };
        for mut grave in list {
            grave.next += 1;
            grave.settle();
        }
    }

    /// The ring is being dropped and will never submit again: unregisters it and moves its
    /// graves on. Call after its last submission.
    pub(crate) fn retire(self: &Arc<Self>) {
        let list = {
            let mut graves = lock(&self.graves);
            graves.alive = false;
            mem::take(&mut graves.list)
        };
        // Never dirty again: nothing it held can be submitted any more.
        let state = self.state.load(Ordering::Relaxed);
        self.state.store((state | 1) + 1, Ordering::SeqCst);
        let _ = LOCAL_RINGS.try_with(|rings| {
            if let Ok(mut rings) = rings.try_borrow_mut() {
                rings.retain(|r| !Arc::ptr_eq(r, self));
            }
        });
        lock(&ALL_RINGS).retain(|r| !Arc::ptr_eq(r, self));
        for mut grave in list {
            grave.next += 1;
            grave.settle();
        }
    }
}

impl fmt::Debug for RingWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingWatch")
            .field("state", &self.state.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}
