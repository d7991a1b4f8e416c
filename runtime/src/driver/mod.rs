//! The driver: one io_uring, the table of ops in flight, submission and completion.
//!
//! Every op in flight has an entry in a generational slab; its key, packed into 64 bits, is
//! the SQE's `user_data`, so a completion finds its entry in O(1), and a completion for an
//! entry that was freed and reused (a stale key) finds nothing instead of the newer op.
//!
//! An entry moves through a small lifecycle:
//!
//! ```text
//!   submit ──► Active { waker, cqes } ──CQE──► CQE queued, waker woken
//!                 │            ▲      ╰─ the op's future takes CQEs in order; the one
//!                 │            ╰──────── without IORING_CQE_F_MORE removes the entry
//!                 │
//!              op dropped (future cancelled)
//!                 ▼
//!              Abandoned(resources) ──last CQE──► resources dropped, entry removed
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
//! user code runs while the driver is borrowed.

#[cfg(test)]
pub(crate) mod fault;
mod setup;

use std::any::Any;
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use io_uring::{IoUring, cqueue, opcode, squeue, types};

use crate::runtime::waker::{TaskAddr, addr_of};
use crate::util::gen_slab::{GenSlab, Key};

pub use setup::RingFlags;
pub(crate) use setup::SetupOptions;

/// `user_data` of SQEs whose completion nobody waits for (cancellations).
const IGNORED: u64 = u64::MAX;
/// `user_data` of the read on the runtime's wake eventfd.
const WAKE: u64 = u64::MAX - 1;
/// How many busy ticks may pass without looking for completions (tokio uses 61 too).
const EVENT_INTERVAL: u32 = 61;
/// `IORING_ENTER_GETEVENTS`: also run deferred completion work and wait for `min_complete`.
const ENTER_GETEVENTS: u32 = 1;

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

/// Completions an op's future has not taken yet, oldest first. The first is stored inline,
/// and an empty `VecDeque` owns no memory: a single-shot op never allocates here.
#[derive(Default)]
struct Cqes {
    first: Option<Cqe>,
    rest: VecDeque<Cqe>,
}

impl Cqes {
    fn push(&mut self, cqe: Cqe) {
        if self.first.is_none() {
            self.first = Some(cqe);
        } else {
            self.rest.push_back(cqe);
        }
    }

    fn pop(&mut self) -> Option<Cqe> {
        let cqe = self.first.take()?;
        self.first = self.rest.pop_front();
        Some(cqe)
    }

    fn iter(&self) -> impl Iterator<Item = &Cqe> {
        self.first.iter().chain(self.rest.iter())
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
    },
    Abandoned {
        resources: Box<dyn Any>,
        closes_fd: bool,
    },
}

impl Lifecycle {
    /// Whether the kernel may still post completions for this entry.
    fn pending(&self) -> bool {
        match self {
            Lifecycle::Active { cqes, .. } => !cqes.ended(),
            Lifecycle::Abandoned { .. } => true,
        }
    }
}

/// One io_uring and the ops in flight on it.
pub(crate) struct Driver {
    ring: IoUring,
    ops: GenSlab<Lifecycle>,
    flags: RingFlags,
    /// Eventfd other threads write to wake this ring out of its wait.
    wake_fd: OwnedFd,
    /// Where the eventfd read lands; boxed so its address is stable while the read is in flight.
    wake_buf: Box<u64>,
    wake_armed: bool,
    /// Ticks since the last enter that skipped it (see [`Driver::enter`]).
    skipped_enters: u32,
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
    pub(crate) dead: Vec<Box<dyn Any>>,
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
    }
}

impl Driver {
    pub(crate) fn new(options: &SetupOptions) -> io::Result<Self> {
        let (ring, flags) = setup::build_ring(options)?;
        // SAFETY: eventfd has no memory-safety preconditions; the result is checked below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a freshly created descriptor that nothing else owns.
        let wake_fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Driver {
            ring,
            ops: GenSlab::with_capacity(options.entries as usize),
            flags,
            wake_fd,
            wake_buf: Box::new(0),
            wake_armed: false,
            skipped_enters: 0,
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
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "io_uring submission queue stayed full after flushing it to the kernel",
            ));
        }
        let _ = kind;
        for _ in 0..3 {
            // SAFETY: forwarded from this function's contract.
            if unsafe { self.ring.submission().push(sqe) }.is_ok() {
                return Ok(());
            }
            // The SQ is full: hand what is queued to the kernel and try again.
            match self.submit_queued() {
                Ok(_) => {}
                Err(e) if is_busy(&e) => {
                    // The CQ is backed up; the kernel refuses new work until we reap.
                    // Completions are recorded in the table by the next `reap`.
                    return Err(io::Error::new(
                        io::ErrorKind::WouldBlock,
                        "io_uring is saturated: the submission queue is full and the kernel \
                         refuses more work until completions are reaped; retry the op",
                    ));
                }
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            "io_uring submission queue stayed full after flushing it to the kernel",
        ))
    }

    /// Registers a new op, queues its SQE, and returns the key its completion will carry.
    ///
    /// # Safety
    /// As for [`Driver::push`].
    pub(crate) unsafe fn submit(&mut self, sqe: squeue::Entry, waker: &Waker) -> io::Result<Key> {
        let key = self.ops.insert(Lifecycle::Active {
            waker: Some(waker.clone()),
            cqes: Cqes::default(),
        });
        let sqe = sqe.user_data(key.to_u64());
        // SAFETY: forwarded from this function's contract.
        match unsafe { self.push(&sqe, SqeKind::Op) } {
            Ok(()) => Ok(key),
            Err(e) => {
                self.ops.remove(key);
                Err(e)
            }
        }
    }

    /// The next completion of the op named by `key`. After the one without `F_MORE` the
    /// key is gone.
    pub(crate) fn poll_cqe(&mut self, key: Key, cx: &mut Context<'_>) -> Poll<Cqe> {
        let Some(Lifecycle::Active { waker, cqes }) = self.ops.get_mut(key) else {
            unreachable!("an op is polled only by the future that owns it, until its last CQE")
        };
        match cqes.pop() {
            Some(cqe) => {
                if !cqe.more() {
                    self.ops.remove(key);
                }
                Poll::Ready(cqe)
            }
            None => {
                match waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }

    /// Hands the kernel everything queued so far, so that data it reads at submission
    /// (paths, addresses, timespecs, iovec arrays) is consumed before its owner moves.
    pub(crate) fn flush(&mut self) {
        while !self.ring.submission().is_empty() {
            match self.submit_queued() {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                // Nothing better to do in a drop path; the entries stay queued and are
                // retried on the next tick.
                Err(_) => break,
            }
        }
    }

    /// The future of an op in flight was dropped: keep `resources` until the kernel is done.
    ///
    /// Returns the resources when the op had already completed, so the caller drops them
    /// outside the driver borrow.
    pub(crate) fn abandon(
        &mut self,
        key: Key,
        resources: Box<dyn Any>,
        closes_fd: bool,
    ) -> Option<Box<dyn Any>> {
        let Some(entry @ Lifecycle::Active { .. }) = self.ops.get_mut(key) else {
            // Not in flight (never happens: an op in flight is Active until its future takes
            // its last completion); nothing refers to the resources.
            return Some(resources);
        };
        let Lifecycle::Active { cqes, .. } = entry else {
            unreachable!()
        };
        if closes_fd {
            // Descriptors the kernel already produced and nobody will take.
            for cqe in cqes.iter().filter(|cqe| cqe.result >= 0) {
                close_fd(cqe.result);
            }
        }
        if cqes.ended() {
            self.ops.remove(key);
            return Some(resources);
        }
        *entry = Lifecycle::Abandoned {
            resources,
            closes_fd,
        };
        let cancel = opcode::AsyncCancel::new(key.to_u64())
            .build()
            .user_data(IGNORED);
        // SAFETY: AsyncCancel points at no memory.
        if unsafe { self.push(&cancel, SqeKind::Cancel) }.is_err() {
            // The ring is saturated: the op will still complete on its own; its
            // resources stay here until it does.
        }
        None
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
    }

    /// Submits what is queued and collects completions; blocks for at least one completion
    /// when `wait` is true.
    pub(crate) fn enter(&mut self, wait: bool) -> io::Result<()> {
        let to_submit = self.ring.submission().len() as u32;
        if !wait && to_submit == 0 {
            // Tasks are ready and nothing is queued: a syscall would only look for completions.
            // Skip it while completions are already visible, and otherwise on all but every
            // `EVENT_INTERVAL`th tick, so tasks that talk among themselves (channels,
            // promises) do not pay a syscall per message, yet I/O is never starved.
            if !self.ring.completion().is_empty() || self.skipped_enters < EVENT_INTERVAL {
                self.skipped_enters += 1;
                return Ok(());
            }
        }
        self.skipped_enters = 0;
        #[cfg(test)]
        if let Some(errno) = fault::enter_error() {
            return Err(io::Error::from_raw_os_error(errno));
        }
        let flags = ENTER_GETEVENTS;
        // SAFETY: plain io_uring_enter with no extra argument.
        let res = unsafe {
            self.ring
                .submitter()
                .enter::<libc::sigset_t>(to_submit, u32::from(wait), flags, None)
        };
        match res {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => Ok(()),
            // CQ backed up: reaping makes room, the queued SQEs go on the next tick.
            Err(e) if is_busy(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Moves every available completion into the op table, collecting wakers and dead
    /// resources into `out`.
    pub(crate) fn reap(&mut self, out: &mut Reaped) {
        let mut completion = self.ring.completion();
        completion.sync();
        for cqe in &mut completion {
            let user_data = cqe.user_data();
            match user_data {
                IGNORED => continue,
                WAKE => {
                    self.wake_armed = false;
                    continue;
                }
                _ => {}
            }
            #[cfg(test)]
            if fault::fires(fault::Fault::LoseCqe) {
                continue;
            }
            let key = Key::from_u64(user_data);
            let more = cqueue::more(cqe.flags());
            match self.ops.get_mut(key) {
                Some(Lifecycle::Active { waker, cqes }) => {
                    cqes.push(Cqe {
                        result: cqe.result(),
                        flags: cqe.flags(),
                    });
                    if let Some(waker) = waker.take() {
                        match addr_of(&waker) {
                            Some(addr) => out.tasks.push(addr),
                            None => out.wakers.push(waker),
                        }
                    }
                }
                Some(Lifecycle::Abandoned { closes_fd, .. }) => {
                    #[cfg(test)]
                    self.abandoned_results.push(cqe.result());
                    if *closes_fd && cqe.result() >= 0 {
                        close_fd(cqe.result());
                    }
                    if !more
                        && let Some(Lifecycle::Abandoned { resources, .. }) = self.ops.remove(key)
                    {
                        out.dead.push(resources);
                    }
                }
                // A stale key: nothing waits for it.
                None => {}
            }
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
        }
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
    }
}

impl Driver {
    /// Hands the queued SQEs to the kernel without waiting.
    fn submit_queued(&mut self) -> io::Result<usize> {
        #[cfg(test)]
        if let Some(errno) = fault::submit_error() {
            return Err(io::Error::from_raw_os_error(errno));
        }
        self.ring.submit()
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

fn is_busy(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EBUSY) | Some(libc::EAGAIN))
}

fn close_fd(fd: i32) {
    // SAFETY: `fd` was produced by a completed accept/open whose owner is gone; nothing else
    // refers to it, so closing it cannot affect another owner.
    unsafe { libc::close(fd) };
}
