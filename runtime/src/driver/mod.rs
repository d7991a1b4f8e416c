//! The driver: one io_uring, the table of ops in flight, submission and completion.
//!
//! Every op in flight has an entry in a generational slab; its key, packed into 64 bits, is
//! the SQE's `user_data`, so a completion finds its entry in O(1), and a completion for an
//! entry that was freed and reused (a stale key) finds nothing instead of the newer op.
//!
//! An entry moves through a small lifecycle (the op side is in [`crate::op`]'s docs):
//!
//! ```text
//!   submit ──► Active { waker, cqes } ──CQE──► CQE queued, waker woken
//!                 │            ▲      ╰─ the op's future takes CQEs in order; the one
//!                 │            ╰──────── without IORING_CQE_F_MORE removes the entry
//!                 │
//!                 ├─ future dropped, SQE not consumed yet ──► SQE rewritten as a NOP,
//!                 │                                            entry removed (withdraw)
//!                 ╰─ future dropped, SQE consumed ──► Abandoned(resources) + AsyncCancel
//!                                                       ──last CQE──► resources dropped
//! ```
//!
//! `Active` keeps a queue because one SQE may complete several times: multishot opcodes post
//! a CQE per event and `SEND_ZC` a result and then a notification, all but the last flagged
//! `IORING_CQE_F_MORE`. The first queued CQE is stored inline, so a single-shot op allocates
//! nothing; a multishot op's backlog goes to a queue allocated the first time it needs one.
//!
//! `Abandoned` is what makes dropping an in-flight op safe: the buffers, addresses and paths
//! the kernel may still touch move here, an `AsyncCancel` is queued, and they are dropped only
//! when the op's last completion arrives. A file descriptor produced by an abandoned `accept`
//! or `open` is closed then (each one, for a multishot accept).
//!
//! Submissions collect in the SQ and are entered once per scheduler tick ([`Driver::enter`]);
//! a full SQ is flushed and retried. Completions are turned into wakers and dead resources
//! ([`Driver::reap`]), which the runtime wakes and drops *after* releasing the driver, so no
//! user code runs while the driver is borrowed. The same holds for the wakers the op table
//! keeps: iomgr's own (a copied word) are cloned and dropped in place, any other is cloned
//! by [`poll_completion`] outside the borrow and dropped, once displaced, with the next
//! reap's leftovers. (A foreign waker's clone or drop is user code: it may drop an op, which
//! needs the driver.)
//!
//! # When the ring is saturated or fails
//!
//! - An op whose SQE cannot be queued fails with `WouldBlock` (a timer waits a tick and
//!   tries again instead: it must not fire early). A `Close` that cannot be queued closes its
//!   descriptor with `close(2)`.
//! - An `AsyncCancel` that cannot be queued goes to a backlog queued again on every tick, so
//!   an abandoned op is always cancelled (and the socket it kept open is closed).
//! - If the read on the wake eventfd cannot be queued, a wait is bounded (1 ms), so wakes
//!   from other threads are still seen.
//! - The kernel may lose completions (`EBADR`: with `IORING_FEAT_NODROP`, which the driver
//!   requires, only when it cannot allocate memory for an overflowing CQ). Which ops lost
//!   theirs is unknown, so every op in flight is probed with an `AsyncCancel`: an op the
//!   kernel still knows completes as usual (most likely `ECANCELED`); one it does not know in
//!   two probes, one tick apart, has lost its completion and is answered with an error that
//!   says so (its resources are then safe to release).
//! - Closing a descriptor never frees a number a queued SQE still names ([`fd`]).

#[cfg(test)]
pub(crate) mod fault;
pub(crate) mod fd;
mod features;
mod register;
mod setup;
mod sqes;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use io_uring::{IoUring, cqueue, opcode, squeue, types};

use crate::runtime::waker::{TaskAddr, addr_of, is_own};
use crate::util::gen_slab::{GenSlab, Key};
/// What the driver keeps of an abandoned op: its value, type-erased in a recycled block (so
/// cancelling allocates nothing once warm).
pub(crate) use crate::util::recycle::Parked as Resources;

pub(crate) use fd::RingFd;
pub use features::Feature;
pub(crate) use features::Features;
pub(crate) use register::BUFFER_TABLE;
pub use setup::RingFlags;
pub(crate) use setup::SetupOptions;

/// `user_data` of SQEs whose completion nobody waits for (cancellations, withdrawn SQEs).
const IGNORED: u64 = u64::MAX;
/// `user_data` of the read on the runtime's wake eventfd.
const WAKE: u64 = u64::MAX - 1;
/// `user_data` of the two rounds of probes of the wake read after lost completions.
const WAKE_PROBES: [u64; 2] = [u64::MAX - 2, u64::MAX - 3];
/// `user_data` of the `LINK_TIMEOUT` SQE linked to an op (see [`Driver::submit_linked`]);
/// its completion is ignored: the op's own completion says whether the timeout fired.
const LINKED_TIMEOUT: u64 = u64::MAX - 4;
/// In the low (index) word of a `user_data`: this is a probe of the op whose key is the rest.
const PROBE: u64 = 1 << 31;
/// With [`PROBE`]: the second round.
const ROUND_2: u64 = 1 << 30;
/// Op table indices stay below this, so an op's `user_data` never has the probe bits.
const MAX_OPS: u32 = 1 << 30;
/// How many busy ticks may pass without looking for completions (tokio uses 61 too).
const EVENT_INTERVAL: u32 = 61;
/// `IORING_ENTER_GETEVENTS`: also run deferred completion work and wait for `min_complete`.
const ENTER_GETEVENTS: u32 = 1;
/// The longest a wait blocks while the wake read could not be armed.
const UNARMED_WAIT: Duration = Duration::from_millis(1);

/// The result the driver gives an op whose completion the kernel lost. Never a kernel
/// result: those are byte counts, descriptors, or `-errno` above -4096.
pub(crate) const LOST: i32 = i32::MIN;
/// The result the driver gives an op it cancelled itself while looking for lost completions
/// (the op's own `-ECANCELED`): it did not fail, it may be submitted again.
pub(crate) const SWEPT: i32 = i32::MIN + 1;

/// One completion, as an op sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cqe {
    pub(crate) result: i32,
    pub(crate) flags: u32,
}

impl Cqe {
    /// Whether more completions follow for the same SQE (`IORING_CQE_F_MORE`).
    pub(crate) fn more(&self) -> bool {
        cqueue::more(self.flags)
    }
}

/// Completions an op's future has not taken yet, oldest first. The first two are stored
/// inline, and an empty `VecDeque` owns no memory: a single-shot op never allocates here,
/// and neither does `SEND_ZC`, whose result and notification often arrive in one reap.
#[derive(Default)]
struct Cqes {
    first: Option<Cqe>,
    /// Only `Some` while `first` is; `rest` is empty while this is `None`.
    second: Option<Cqe>,
    rest: VecDeque<Cqe>,
}

impl Cqes {
    fn push(&mut self, cqe: Cqe) {
        if self.first.is_none() {
            self.first = Some(cqe);
        } else if self.second.is_none() {
            self.second = Some(cqe);
        } else {
            self.rest.push_back(cqe);
        }
    }

    fn pop(&mut self) -> Option<Cqe> {
        let cqe = self.first.take()?;
        self.first = self.second.take();
        self.second = self.rest.pop_front();
        Some(cqe)
    }

    fn iter(&self) -> impl Iterator<Item = &Cqe> {
        self.first
            .iter()
            .chain(self.second.iter())
            .chain(self.rest.iter())
    }

    /// Whether the last completion (the one without `F_MORE`) is queued: the kernel is done.
    fn ended(&self) -> bool {
        self.iter().last().is_some_and(|cqe| !cqe.more())
    }
}

/// Where an op in flight is in its life; see the module docs.
enum Lifecycle {
    Active {
        waker: Option<Waker>,
        cqes: Cqes,
        /// A lost-completion sweep queued an `AsyncCancel` for it.
        probed: bool,
    },
    Abandoned {
        resources: Resources,
        closes_fd: bool,
        reclaim: Option<Reclaim>,
    },
}

/// What to do with each completion of an abandoned op besides waiting for the last one:
/// give back what it carries (a provided buffer goes back to its ring). It runs inside the
/// driver, so it must not run user code: wakers it would wake go into the vector, woken
/// once the driver is released.
pub(crate) type Reclaim = fn(resources: &mut Resources, cqe: Cqe, wakers: &mut Vec<Waker>);

impl Lifecycle {
    /// Whether the kernel may still post completions for this entry.
    fn pending(&self) -> bool {
        match self {
            Lifecycle::Active { cqes, .. } => !cqes.ended(),
            Lifecycle::Abandoned { .. } => true,
        }
    }
}

/// What [`Driver::poll_cqe`] found.
pub(crate) enum CqePoll {
    Ready(Cqe),
    /// No completion yet; the task's waker is registered.
    Pending,
    /// No completion yet, and the task's waker is a foreign one the op table does not hold
    /// yet: clone it with the driver released and give it to [`Driver::set_waker`].
    NeedsWaker,
}

/// The next completion of the op named by `key` ([`Driver::poll_cqe`]), registering `cx`'s
/// waker for the next one. A foreign waker is cloned while the driver is not borrowed: its
/// clone is user code, which may drop an op (and that needs the driver).
pub(crate) fn poll_completion(
    driver: &RefCell<Driver>,
    key: Key,
    cx: &mut Context<'_>,
) -> Poll<Cqe> {
    match driver.borrow_mut().poll_cqe(key, cx) {
        CqePoll::Ready(cqe) => return Poll::Ready(cqe),
        CqePoll::Pending => return Poll::Pending,
        CqePoll::NeedsWaker => {}
    }
    let waker = cx.waker().clone();
    driver.borrow_mut().set_waker(key, waker)
}

/// One io_uring and the ops in flight on it.
pub(crate) struct Driver {
    ring: IoUring,
    /// The driver's own mapping of the SQE array, to withdraw SQEs not consumed yet.
    sqes: sqes::SqeArray,
    /// How many SQEs were queued since the ring was made (wrapping): the SQ tail.
    sq_tail: u32,
    /// Whether the SQ may hold SQEs the kernel has not consumed (mirrors `watch`).
    sq_dirty: bool,
    ops: GenSlab<Lifecycle>,
    flags: RingFlags,
    /// Eventfd other threads write to wake this ring out of its wait.
    wake_fd: OwnedFd,
    /// Where the eventfd read lands; boxed so its address is stable while the read is in flight.
    wake_buf: Box<u64>,
    wake_armed: bool,
    /// Ticks since the last enter that skipped it (see [`Driver::enter`]).
    skipped_enters: u32,
    /// `AsyncCancel`s (and probes) that did not fit in the SQ: `(target, own user_data)`,
    /// queued again at every tick until they fit.
    backlog: Vec<(u64, u64)>,
    /// Probes of a lost-completion sweep not answered yet (0: no sweep is running).
    probes: usize,
    /// More completions were lost while a sweep ran: sweep again when it ends.
    sweep_again: bool,
    /// What descriptors being closed (on any thread) see of this ring.
    watch: Arc<fd::RingWatch>,
    /// What this kernel's io_uring can do (probed once).
    features: Features,
    /// The registered buffer and file tables.
    registry: register::Registry,
    /// Group ids of the provided-buffer rings registered on this ring.
    buf_groups: Vec<u16>,
    /// Foreign wakers the op table let go of: dropped after the driver is released (with
    /// the next reap's leftovers), since their drop is user code.
    stale_wakers: Vec<Waker>,
    /// Results of the completions of abandoned ops, for tests to inspect.
    #[cfg(test)]
    pub(crate) abandoned_results: Vec<i32>,
}

/// What a reap found: tasks to schedule, wakers to wake and abandoned resources to drop, once
/// the driver is released. The vectors keep their capacity from tick to tick.
#[derive(Default)]
pub(crate) struct Reaped {
    /// iomgr's own wakers, recognised and unpacked: the runtime schedules these directly.
    pub(crate) tasks: Vec<TaskAddr>,
    /// Any other waker.
    pub(crate) wakers: Vec<Waker>,
    pub(crate) dead: Vec<Resources>,
    /// Foreign wakers the op table let go of, to drop.
    pub(crate) stale: Vec<Waker>,
}

impl Reaped {
    /// Wakes and drops what was collected, leaving the vectors empty (capacity kept).
    pub(crate) fn finish(&mut self) {
        for addr in self.tasks.drain(..) {
            crate::runtime::wake_addr(addr);
        }
        for waker in self.wakers.drain(..) {
            waker.wake();
        }
        self.dead.clear();
        self.stale.clear();
    }

    fn wake(&mut self, waker: Waker) {
        match addr_of(&waker) {
            Some(addr) => self.tasks.push(addr),
            None => self.wakers.push(waker),
        }
    }
}

/// Refuses a ring that could drop completions silently.
fn check_features(nodrop: bool) -> io::Result<()> {
    if nodrop {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "this kernel's io_uring lacks IORING_FEAT_NODROP (Linux 5.5+): it would drop \
         completions when the completion queue overflows, leaving ops waiting forever; \
         iomgr needs Linux 5.19 or newer",
    ))
}

impl Driver {
    pub(crate) fn new(options: &SetupOptions) -> io::Result<Self> {
        let (ring, flags) = setup::build_ring(options)?;
        check_features(ring.params().is_feature_nodrop())?;
        let sqes = sqes::SqeArray::map(&ring)?;
        // SAFETY: eventfd has no memory-safety preconditions; the result is checked below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a freshly created descriptor that nothing else owns.
        let wake_fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let watch = fd::RingWatch::register(wake_fd.as_raw_fd());
        let features = Features::probe(&ring);
        Ok(Driver {
            ring,
            sqes,
            sq_tail: 0,
            sq_dirty: false,
            ops: GenSlab::with_capacity(options.entries as usize),
            flags,
            wake_fd,
            wake_buf: Box::new(0),
            wake_armed: false,
            skipped_enters: 0,
            backlog: Vec::new(),
            probes: 0,
            sweep_again: false,
            watch,
            features,
            registry: register::Registry::new(),
            buf_groups: Vec::new(),
            stale_wakers: Vec::new(),
            #[cfg(test)]
            abandoned_results: Vec::new(),
        })
    }

    pub(crate) fn flags(&self) -> RingFlags {
        self.flags
    }

    pub(crate) fn wake_fd(&self) -> &OwnedFd {
        &self.wake_fd
    }

    pub(crate) fn watch(&self) -> &Arc<fd::RingWatch> {
        &self.watch
    }

    /// What this ring's kernel can do.
    pub(crate) fn features(&self) -> &Features {
        &self.features
    }

    /// Pretends the kernel lacks `feature` (tests of the error paths).
    #[cfg(test)]
    pub(crate) fn disable(&mut self, feature: Feature) {
        self.features = self.features.without(feature);
    }

    /// Registers a provided-buffer ring of `entries` entries at `ring_addr` under a free group
    /// id, which it returns.
    ///
    /// # Safety
    /// `ring_addr` must be page-aligned memory for `entries` `io_uring_buf` entries that
    /// stays valid until [`unregister_buf_ring`](Self::unregister_buf_ring) (or the ring's
    /// end), and the buffers it will list must stay valid while the kernel may pick them.
    pub(crate) unsafe fn register_buf_ring(
        &mut self,
        ring_addr: u64,
        entries: u16,
    ) -> io::Result<u16> {
        self.features.require(Feature::BufRing)?;
        let bgid = (0..=u16::MAX)
            .find(|id| !self.buf_groups.contains(id))
            .ok_or_else(|| io::Error::other("every provided-buffer group id is in use"))?;
        // SAFETY: forwarded from this function's contract.
        unsafe {
            self.ring
                .submitter()
                .register_buf_ring_with_flags(ring_addr, entries, bgid, 0)
        }
        .map_err(|e| match e.raw_os_error() {
            Some(libc::EINVAL) if !self.features.has(Feature::BufRing) => {
                Feature::BufRing.unsupported(None)
            }
            _ => io::Error::new(
                e.kind(),
                format!(
                    "registering a provided-buffer ring of {entries} entries (group {bgid}) \
                     failed: {e}"
                ),
            ),
        })?;
        self.buf_groups.push(bgid);
        Ok(bgid)
    }

    /// Unregisters the provided-buffer ring of group `bgid`: the kernel no longer reads it.
    pub(crate) fn unregister_buf_ring(&mut self, bgid: u16) -> io::Result<()> {
        self.ring.submitter().unregister_buf_ring(bgid)?;
        self.buf_groups.retain(|&id| id != bgid);
        Ok(())
    }

    /// Number of ops the kernel may still be working on (including abandoned ones).
    pub(crate) fn in_flight(&self) -> usize {
        self.ops.len()
    }

    /// Queues `sqe` for submission, flushing the SQ to the kernel if it is full.
    ///
    /// # Safety
    /// Every pointer in `sqe` must stay valid as its op's contract requires (see [`crate::op::OpCode`]).
    unsafe fn push(&mut self, sqe: &squeue::Entry, kind: SqeKind) -> io::Result<()> {
        #[cfg(test)]
        if kind.fault().is_some_and(fault::fires) {
            return Err(stayed_full());
        }
        let _ = kind;
        if !self.sq_dirty {
            self.sq_dirty = true;
            self.watch.mark_dirty();
        }
        for _ in 0..3 {
            // SAFETY: forwarded from this function's contract.
            if unsafe { self.ring.submission().push(sqe) }.is_ok() {
                self.sq_tail = self.sq_tail.wrapping_add(1);
                return Ok(());
            }
            // The SQ is full: hand what is queued to the kernel and try again.
            match self.submit_queued() {
                Ok(()) => {}
                Err(e) if is_busy(&e) => {
                    // The CQ is backed up; the kernel refuses new work until we reap.
                    // Completions are recorded in the table by the next `reap`.
                    return Err(saturated());
                }
                Err(e) => return Err(e),
            }
        }
        Err(stayed_full())
    }

    /// Makes room for `n` SQEs in the SQ, handing the queued ones to the kernel if needed.
    fn reserve(&mut self, n: usize) -> io::Result<()> {
        #[cfg(test)]
        if fault::fires(fault::Fault::PushOp) {
            return Err(stayed_full());
        }
        for _ in 0..3 {
            let sq = self.ring.submission();
            if sq.capacity() - sq.len() >= n {
                return Ok(());
            }
            drop(sq);
            match self.submit_queued() {
                Ok(()) => {}
                Err(e) if is_busy(&e) => return Err(saturated()),
                Err(e) => return Err(e),
            }
        }
        Err(stayed_full())
    }

    /// Registers a new op whose SQE is linked to a `LINK_TIMEOUT` of `timeout`, queues both,
    /// side by side, and returns the key the op's completion will carry.
    ///
    /// The two SQEs are queued together (room for both is made first), so the same
    /// `io_uring_enter` consumes both: a link never spans two submissions, where the kernel
    /// would run the op without its timeout and resolve its descriptor late. If the timeout
    /// fires first, the op completes with `ECANCELED`; the timeout's own completion is
    /// ignored.
    ///
    /// # Safety
    /// As for [`Driver::push`]; `timeout` must stay valid until the SQEs are submitted (the
    /// kernel copies it then).
    pub(crate) unsafe fn submit_linked(
        &mut self,
        sqe: squeue::Entry,
        timeout: &types::Timespec,
        waker: &Waker,
    ) -> io::Result<Key> {
        if self.ring.submission().capacity() < 2 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a linked timeout needs room for two SQEs, and this runtime's submission \
                 queue has one entry: build it with Builder::entries(2) or more",
            ));
        }
        self.reserve(2)?;
        let key = self.insert_active(waker)?;
        let pair = [
            sqe.flags(squeue::Flags::IO_LINK).user_data(key.to_u64()),
            opcode::LinkTimeout::new(timeout)
                .build()
                .user_data(LINKED_TIMEOUT),
        ];
        if !self.sq_dirty {
            self.sq_dirty = true;
            self.watch.mark_dirty();
        }
        // SAFETY: forwarded from this function's contract; `reserve` made room for both.
        match unsafe { self.ring.submission().push_multiple(&pair) } {
            Ok(()) => {
                self.sq_tail = self.sq_tail.wrapping_add(2);
                Ok(key)
            }
            Err(_) => {
                self.remove_active(key);
                Err(stayed_full())
            }
        }
    }

    fn insert_active(&mut self, waker: &Waker) -> io::Result<Key> {
        let key = self.ops.insert(Lifecycle::Active {
            // A foreign waker's clone is user code: `poll_completion` registers it outside
            // the borrow.
            waker: is_own(waker).then(|| waker.clone()),
            cqes: Cqes::default(),
            probed: false,
        });
        if key.index >= MAX_OPS {
            self.remove_active(key);
            return Err(io::Error::other(format!(
                "more than {MAX_OPS} io_uring ops in flight on one runtime"
            )));
        }
        Ok(key)
    }

    /// Registers a new op, queues its SQE, and returns the key its completion will carry.
    ///
    /// # Safety
    /// As for [`Driver::push`].
    pub(crate) unsafe fn submit(&mut self, sqe: squeue::Entry, waker: &Waker) -> io::Result<Key> {
        let key = self.insert_active(waker)?;
        let sqe = sqe.user_data(key.to_u64());
        // SAFETY: forwarded from this function's contract.
        match unsafe { self.push(&sqe, SqeKind::Op) } {
            Ok(()) => Ok(key),
            Err(e) => {
                self.remove_active(key);
                Err(e)
            }
        }
    }

    /// The next completion of the op named by `key`. After the one without `F_MORE` the
    /// key is gone. Without one, registers `cx`'s waker if it is iomgr's own; a foreign one
    /// it leaves to the caller ([`CqePoll::NeedsWaker`]), to clone outside the borrow.
    pub(crate) fn poll_cqe(&mut self, key: Key, cx: &mut Context<'_>) -> CqePoll {
        let Some(Lifecycle::Active { waker, cqes, .. }) = self.ops.get_mut(key) else {
            unreachable!("an op is polled only by the future that owns it, until its last CQE")
        };
        if let Some(cqe) = cqes.pop() {
            if !cqe.more() {
                self.remove_active(key);
            }
            return CqePoll::Ready(cqe);
        }
        match waker {
            Some(w) if w.will_wake(cx.waker()) => CqePoll::Pending,
            _ if is_own(cx.waker()) => {
                let old = waker.replace(cx.waker().clone());
                self.stash_waker(old);
                CqePoll::Pending
            }
            _ => CqePoll::NeedsWaker,
        }
    }

    /// Stores `new` as the waker of the op named by `key` (after [`CqePoll::NeedsWaker`]),
    /// then takes a completion that may have come meanwhile.
    fn set_waker(&mut self, key: Key, new: Waker) -> Poll<Cqe> {
        let Some(Lifecycle::Active { waker, cqes, .. }) = self.ops.get_mut(key) else {
            unreachable!("an op is polled only by the future that owns it, until its last CQE")
        };
        if let Some(cqe) = cqes.pop() {
            if !cqe.more() {
                self.remove_active(key);
            }
            self.stash_waker(Some(new));
            return Poll::Ready(cqe);
        }
        let old = waker.replace(new);
        self.stash_waker(old);
        Poll::Pending
    }

    /// Removes the op named by `key`, keeping a foreign waker it held to drop later.
    fn remove_active(&mut self, key: Key) {
        if let Some(Lifecycle::Active { waker, .. }) = self.ops.remove(key) {
            self.stash_waker(waker);
        }
    }

    /// Lets go of a waker the op table held: iomgr's own is dropped here (it runs no code),
    /// a foreign one after the driver is released ([`Reaped::stale`]).
    fn stash_waker(&mut self, waker: Option<Waker>) {
        if let Some(waker) = waker
            && !is_own(&waker)
        {
            self.stale_wakers.push(waker);
        }
    }

    /// The SQ positions of the SQEs the kernel has not consumed yet, oldest first.
    fn unconsumed(&mut self) -> impl Iterator<Item = u32> + use<> {
        let queued = self.ring.submission().len() as u32;
        let first = self.sq_tail.wrapping_sub(queued);
        (0..queued).map(move |i| first.wrapping_add(i))
    }

    /// If the SQE of the op named by `key` has not been consumed by the kernel, turns it into
    /// a `NOP` and forgets the op: the kernel will never run it nor read its memory, so its
    /// resources may be dropped at once. Returns whether it did.
    pub(crate) fn withdraw(&mut self, key: Key) -> bool {
        let user_data = key.to_u64();
        for position in self.unconsumed() {
            // SAFETY: `position` has not been consumed, and we are on the ring's thread
            // outside `io_uring_enter`.
            if unsafe { self.sqes.user_data(position) } == user_data {
                // SAFETY: as above.
                unsafe { self.sqes.make_nop(position, IGNORED) };
                self.withdraw_linked_timeout(position.wrapping_add(1));
                self.remove_active(key);
                return true;
            }
        }
        false
    }

    /// If the SQE at `position` (just after a withdrawn one) is a linked timeout the kernel
    /// has not consumed, turns it into a `NOP` too: its op is gone.
    fn withdraw_linked_timeout(&mut self, position: u32) {
        let queued = self.ring.submission().len() as u32;
        let first = self.sq_tail.wrapping_sub(queued);
        if position.wrapping_sub(first) >= queued {
            return;
        }
        // SAFETY: `position` is among the unconsumed ones, and we are on the ring's thread
        // outside `io_uring_enter`.
        unsafe {
            if self.sqes.user_data(position) == LINKED_TIMEOUT {
                self.sqes.make_nop(position, IGNORED);
            }
        }
    }

    /// Turns every queued SQE that names descriptor `fd` into a `NOP` (keeping its
    /// `user_data`): `fd` is being closed, so the op that queued it was forgotten by its
    /// owner (a live op borrows its descriptor), and must not reach whatever reuses the number.
    pub(crate) fn withdraw_fd(&mut self, fd: i32) {
        if !self.sq_dirty {
            return;
        }
        for position in self.unconsumed() {
            // SAFETY: `position` has not been consumed, and we are on the ring's thread
            // outside `io_uring_enter`.
            unsafe {
                if self.sqes.names_fd(position, fd) {
                    let user_data = self.sqes.user_data(position);
                    self.sqes.make_nop(position, user_data);
                    self.withdraw_linked_timeout(position.wrapping_add(1));
                }
            }
        }
    }

    /// Hands the kernel everything queued so far (best effort: on failure it stays queued
    /// for the next tick).
    pub(crate) fn flush(&mut self) {
        for _ in 0..4 {
            if self.ring.submission().is_empty() {
                break;
            }
            match self.submit_queued() {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(_) => break,
            }
        }
        self.note_sq_state();
    }

    /// The future of an op in flight was dropped after the kernel consumed its SQE: keep
    /// `resources` until the kernel is done with them.
    ///
    /// Returns the resources when the op had already completed, so the caller drops them
    /// outside the driver borrow.
    pub(crate) fn abandon(
        &mut self,
        key: Key,
        resources: Resources,
        closes_fd: bool,
    ) -> Option<Resources> {
        self.abandon_with(key, resources, closes_fd, None, &mut Vec::new())
    }

    /// [`abandon`](Self::abandon), running `reclaim` on each completion the op had not
    /// taken and on each one still to come; wakers to wake (once the driver is released)
    /// go into `wakers`.
    pub(crate) fn abandon_with(
        &mut self,
        key: Key,
        mut resources: Resources,
        closes_fd: bool,
        reclaim: Option<Reclaim>,
        wakers: &mut Vec<Waker>,
    ) -> Option<Resources> {
        let Some(entry @ Lifecycle::Active { .. }) = self.ops.get_mut(key) else {
            // Not in flight (never happens: an op in flight is Active until its future takes
            // its last completion); nothing refers to the resources.
            return Some(resources);
        };
        let Lifecycle::Active { cqes, waker, .. } = entry else {
            unreachable!()
        };
        let waker = waker.take();
        if let Some(reclaim) = reclaim {
            for &cqe in cqes.iter() {
                reclaim(&mut resources, cqe, wakers);
            }
        }
        if closes_fd {
            // Descriptors the kernel already produced and nobody will take.
            for cqe in cqes.iter().filter(|cqe| cqe.result >= 0) {
                close_fd(cqe.result);
            }
        }
        if cqes.ended() {
            self.ops.remove(key);
            self.stash_waker(waker);
            return Some(resources);
        }
        *entry = Lifecycle::Abandoned {
            resources,
            closes_fd,
            reclaim,
        };
        self.stash_waker(waker);
        self.cancel(key.to_u64(), IGNORED);
        None
    }

    /// Queues an `AsyncCancel` of `target` (completing with `user_data`), or keeps it in the
    /// backlog if the SQ has no room.
    fn cancel(&mut self, target: u64, user_data: u64) {
        let sqe = opcode::AsyncCancel::new(target)
            .build()
            .user_data(user_data);
        // SAFETY: AsyncCancel points at no memory.
        if unsafe { self.push(&sqe, SqeKind::Cancel) }.is_err() {
            self.backlog.push((target, user_data));
        }
    }

    /// Queues what the backlog holds, until the SQ is full again.
    fn retry_backlog(&mut self) {
        let mut queued = 0;
        while let Some(&(target, user_data)) = self.backlog.get(queued) {
            let sqe = opcode::AsyncCancel::new(target)
                .build()
                .user_data(user_data);
            // SAFETY: AsyncCancel points at no memory.
            if unsafe { self.push(&sqe, SqeKind::Cancel) }.is_err() {
                break;
            }
            queued += 1;
        }
        self.backlog.drain(..queued);
    }

    /// Arms the read on the wake eventfd if it is not armed.
    pub(crate) fn arm_wake(&mut self) {
        if self.wake_armed {
            return;
        }
        let buf: *mut u64 = &mut *self.wake_buf;
        let sqe = opcode::Read::new(types::Fd(self.wake_fd.as_raw_fd()), buf.cast(), 8)
            .build()
            .user_data(WAKE);
        // SAFETY: `wake_buf` is boxed and lives as long as the driver, which outlives the
        // read: the driver's drop cancels it and waits for its completion.
        if unsafe { self.push(&sqe, SqeKind::Wake) }.is_ok() {
            self.wake_armed = true;
        }
        // Otherwise `enter` bounds its wait, and the next tick tries again.
    }

    /// Submits what is queued and collects completions; blocks for at least one completion
    /// when `wait` is true.
    pub(crate) fn enter(&mut self, wait: bool) -> io::Result<()> {
        if !self.backlog.is_empty() {
            self.retry_backlog();
        }
        let to_submit = self.ring.submission().len() as u32;
        if !wait && to_submit == 0 {
            // Tasks are ready and nothing is queued: a syscall would only look for completions.
            // Skip it while completions are already visible, and otherwise on all but every
            // `EVENT_INTERVAL`th tick, so tasks that talk among themselves (channels,
            // promises) do not pay a syscall per message, yet I/O is never starved.
            if !self.ring.completion().is_empty() || self.skipped_enters < EVENT_INTERVAL {
                self.skipped_enters += 1;
                self.note_sq_state();
                return Ok(());
            }
        }
        self.skipped_enters = 0;
        #[cfg(test)]
        if let Some(errno) = fault::enter_error() {
            return self.entered(Err(io::Error::from_raw_os_error(errno)));
        }
        let res = if wait && !self.wake_armed {
            // A wake from another thread would not end this wait: bound it.
            let ts = types::Timespec::from(UNARMED_WAIT);
            let args = types::SubmitArgs::new().timespec(&ts);
            self.ring.submitter().submit_with_args(1, &args).map(drop)
        } else {
            // SAFETY: plain io_uring_enter with no extra argument.
            unsafe {
                self.ring.submitter().enter::<libc::sigset_t>(
                    to_submit,
                    u32::from(wait),
                    ENTER_GETEVENTS,
                    None,
                )
            }
            .map(drop)
        };
        self.entered(res)
    }

    fn entered(&mut self, res: io::Result<()>) -> io::Result<()> {
        match res {
            Ok(()) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR) | Some(libc::ETIME)) => {}
            // CQ backed up: reaping makes room, the queued SQEs go on the next tick.
            Err(e) if is_busy(&e) => {}
            Err(e) if e.raw_os_error() == Some(libc::EBADR) => self.completions_lost(),
            Err(e) => return Err(e),
        }
        self.note_sq_state();
        Ok(())
    }

    /// Hands the queued SQEs to the kernel without waiting.
    fn submit_queued(&mut self) -> io::Result<()> {
        #[cfg(test)]
        if let Some(errno) = fault::submit_error() {
            return Err(io::Error::from_raw_os_error(errno));
        }
        let res = match self.ring.submit() {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBADR) => {
                self.completions_lost();
                Ok(())
            }
            Err(e) => Err(e),
        };
        self.note_sq_state();
        res
    }

    /// After a submission: if the SQ is empty, every SQE queued so far has been consumed.
    fn note_sq_state(&mut self) {
        if self.sq_dirty && self.ring.submission().is_empty() {
            self.sq_dirty = false;
            self.watch.mark_clean();
        }
    }

    /// The kernel reported lost completions: probe every op it may still owe one.
    fn completions_lost(&mut self) {
        if self.probes > 0 {
            self.sweep_again = true;
            return;
        }
        for key in self.ops.keys() {
            let Some(entry) = self.ops.get_mut(key) else {
                continue;
            };
            if !entry.pending() {
                continue;
            }
            if let Lifecycle::Active { probed, .. } = entry {
                *probed = true;
            }
            self.probes += 1;
            self.cancel(key.to_u64(), key.to_u64() | PROBE);
        }
        if self.wake_armed {
            self.probes += 1;
            self.cancel(WAKE, WAKE_PROBES[0]);
        }
    }

    /// Moves every available completion into the op table, collecting wakers and dead
    /// resources into `out`.
    pub(crate) fn reap(&mut self, out: &mut Reaped) {
        out.stale.append(&mut self.stale_wakers);
        let mut completion = self.ring.completion();
        completion.sync();
        for cqe in &mut completion {
            let user_data = cqe.user_data();
            let cqe = Cqe {
                result: cqe.result(),
                flags: cqe.flags(),
            };
            match user_data {
                IGNORED | LINKED_TIMEOUT => continue,
                WAKE => {
                    self.wake_armed = false;
                    continue;
                }
                _ if user_data == WAKE_PROBES[0] || user_data == WAKE_PROBES[1] => {
                    self.probes -= 1;
                    if cqe.result == -libc::ENOENT && self.wake_armed {
                        if user_data == WAKE_PROBES[0] {
                            self.probes += 1;
                            self.backlog.push((WAKE, WAKE_PROBES[1]));
                        } else {
                            // Unknown to the kernel twice: its completion was lost.
                            self.wake_armed = false;
                        }
                    }
                    continue;
                }
                _ if user_data & PROBE != 0 => {
                    self.probes -= 1;
                    let key = Key::from_u64(user_data & !(PROBE | ROUND_2));
                    let pending = self.ops.get_mut(key).is_some_and(|entry| entry.pending());
                    if cqe.result == -libc::ENOENT && pending {
                        if user_data & ROUND_2 == 0 {
                            // Unknown to the kernel; its completion may still be on the way
                            // (deferred task work, the overflow list). Ask again a tick later.
                            self.probes += 1;
                            self.backlog.push((key.to_u64(), user_data | ROUND_2));
                        } else {
                            lose(&mut self.ops, key, out);
                        }
                    }
                    continue;
                }
                _ => {}
            }
            #[cfg(test)]
            if fault::fires(fault::Fault::LoseCqe) {
                continue;
            }
            let key = Key::from_u64(user_data);
            match self.ops.get_mut(key) {
                Some(Lifecycle::Active {
                    waker,
                    cqes,
                    probed,
                }) => {
                    let mut cqe = cqe;
                    if *probed && cqe.result == -libc::ECANCELED && !cqe.more() {
                        // Cancelled by our own probe, not by its owner.
                        cqe.result = SWEPT;
                    }
                    cqes.push(cqe);
                    if let Some(waker) = waker.take() {
                        out.wake(waker);
                    }
                }
                Some(Lifecycle::Abandoned {
                    closes_fd,
                    resources,
                    reclaim,
                }) => {
                    #[cfg(test)]
                    self.abandoned_results.push(cqe.result);
                    if let Some(reclaim) = reclaim {
                        reclaim(resources, cqe, &mut out.wakers);
                    }
                    if *closes_fd && cqe.result >= 0 {
                        close_fd(cqe.result);
                    }
                    if !cqe.more()
                        && let Some(Lifecycle::Abandoned { resources, .. }) = self.ops.remove(key)
                    {
                        out.dead.push(resources);
                    }
                }
                // A stale key: nothing waits for it.
                None => {}
            }
        }
        drop(completion);
        if self.probes == 0 && self.sweep_again {
            self.sweep_again = false;
            self.completions_lost();
        }
    }

    /// Cancels every op in flight and waits (bounded) for their completions; what still
    /// has not completed after `patience` is leaked rather than freed under the kernel.
    fn cancel_all_and_wait(&mut self, patience: Duration) {
        for key in self.ops.keys() {
            let cancel = opcode::AsyncCancel::new(key.to_u64())
                .build()
                .user_data(IGNORED);
            // SAFETY: AsyncCancel points at no memory.
            let _ = unsafe { self.push(&cancel, SqeKind::Shutdown) };
        }
        if self.wake_armed {
            let cancel = opcode::AsyncCancel::new(WAKE).build().user_data(IGNORED);
            // SAFETY: AsyncCancel points at no memory.
            let _ = unsafe { self.push(&cancel, SqeKind::Shutdown) };
        }
        let deadline = Instant::now() + patience;
        let mut reaped = Reaped::default();
        while (!self.ops.is_empty() || self.wake_armed) && Instant::now() < deadline {
            let ts = types::Timespec::from(Duration::from_millis(50));
            let args = types::SubmitArgs::new().timespec(&ts);
            match self.ring.submitter().submit_with_args(1, &args) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ETIME) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) if is_busy(&e) => {}
                Err(_) => break,
            }
            self.reap(&mut reaped);
            // Ops whose last completion is queued but whose future is gone are done too.
            for key in self.ops.keys() {
                if self.ops.get_mut(key).is_some_and(|entry| !entry.pending()) {
                    self.ops.remove(key);
                }
            }
            // Nobody is left to wake; resources of finished ops are dropped here.
            reaped.tasks.clear();
            reaped.wakers.clear();
            reaped.dead.clear();
            reaped.stale.clear();
        }
    }
}

/// The kernel does not know the op `key` any more and its last completion never came: it
/// was lost. An op's future gets a [`LOST`] completion; an abandoned op's resources die.
fn lose(ops: &mut GenSlab<Lifecycle>, key: Key, out: &mut Reaped) {
    match ops.get_mut(key) {
        Some(Lifecycle::Active { waker, cqes, .. }) => {
            cqes.push(Cqe {
                result: LOST,
                flags: 0,
            });
            if let Some(waker) = waker.take() {
                out.wake(waker);
            }
        }
        Some(Lifecycle::Abandoned { .. }) => {
            if let Some(Lifecycle::Abandoned { resources, .. }) = ops.remove(key) {
                out.dead.push(resources);
            }
        }
        None => {}
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.cancel_all_and_wait(Duration::from_secs(5));
        if !self.ops.is_empty() || self.wake_armed {
            // The kernel still holds some of our memory. Leaking it is the only sound choice:
            // closing the ring cancels those ops asynchronously, and they may still write.
            for key in self.ops.keys() {
                if let Some(Lifecycle::Abandoned { resources, .. }) = self.ops.remove(key) {
                    std::mem::forget(resources);
                }
            }
            std::mem::forget(std::mem::replace(&mut self.wake_buf, Box::new(0)));
        }
        // Nothing queued here can be submitted any more: closes waiting for us may proceed.
        self.watch.retire();
    }
}

/// Who queues an SQE (fault injection targets one kind).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SqeKind {
    Op,
    Cancel,
    Wake,
    Shutdown,
}

#[cfg(test)]
impl SqeKind {
    fn fault(self) -> Option<fault::Fault> {
        match self {
            SqeKind::Op => Some(fault::Fault::PushOp),
            SqeKind::Cancel => Some(fault::Fault::PushCancel),
            SqeKind::Wake => Some(fault::Fault::PushWake),
            SqeKind::Shutdown => None,
        }
    }
}

fn saturated() -> io::Error {
    io::Error::new(
        io::ErrorKind::WouldBlock,
        "io_uring is saturated: the submission queue is full and the kernel refuses more \
         work until completions are reaped; retry the op",
    )
}

fn stayed_full() -> io::Error {
    io::Error::new(
        io::ErrorKind::WouldBlock,
        "io_uring submission queue stayed full after flushing it to the kernel",
    )
}

fn is_busy(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EBUSY) | Some(libc::EAGAIN))
}

fn close_fd(fd: i32) {
    // SAFETY: `fd` was produced by a completed accept/open whose owner is gone; nothing else
    // refers to it, so closing it cannot affect another owner.
    unsafe { libc::close(fd) };
}
