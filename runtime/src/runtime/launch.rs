//! Thread-per-core launches; see [`PerCore`].

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::sync::Mutex;
use std::sync::mpsc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use super::{Builder, Runtime};
use crate::future::{Either, select};
use crate::sync::{AsyncPromise, async_promise};

/// Why the threads were asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The process received this signal (`SIGINT` or `SIGTERM`).
    Signal(i32),
    /// This thread failed (see its [`ThreadError`]).
    ThreadFailed(usize),
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::Signal(libc::SIGINT) => f.write_str("SIGINT"),
            StopReason::Signal(libc::SIGTERM) => f.write_str("SIGTERM"),
            StopReason::Signal(n) => write!(f, "signal {n}"),
            StopReason::ThreadFailed(i) => write!(f, "thread {i} failed"),
        }
    }
}

/// How a thread ended without its future's output.
#[derive(Debug)]
pub enum ThreadError {
    /// The thread's runtime could not start.
    Start(io::Error),
    /// The thread's future panicked, with this message.
    Panicked(String),
    /// The thread was stopped before its future finished.
    Stopped(StopReason),
}

impl fmt::Display for ThreadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThreadError::Start(e) => write!(f, "its runtime could not start: {e}"),
            ThreadError::Panicked(m) => write!(f, "it panicked: {m}"),
            ThreadError::Stopped(reason) => write!(f, "it was stopped ({reason})"),
        }
    }
}

impl std::error::Error for ThreadError {}

/// What a thread's future knows about its place in the launch.
#[derive(Debug, Clone)]
pub struct ThreadContext {
    index: usize,
    threads: usize,
    stop: Rc<LocalStop>,
}

impl ThreadContext {
    /// This thread's number, from 0.
    pub fn index(&self) -> usize {
        self.index
    }

    /// How many threads were started.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Resolves when the threads are asked to stop: await it (or race it) to finish cleanly
    /// within the [grace period](PerCore::grace_period).
    pub fn stopped(&self) -> Stopped {
        Stopped(self.stop.clone())
    }
}

/// The future of [`ThreadContext::stopped`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Stopped(Rc<LocalStop>);

impl Future for Stopped {
    type Output = StopReason;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<StopReason> {
        let mut state = self.0.state.borrow_mut();
        match state.0 {
            Some(reason) => Poll::Ready(reason),
            None => {
                state.1.push(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// One thread's view of the stop request.
#[derive(Debug, Default)]
struct LocalStop {
    state: RefCell<(Option<StopReason>, Vec<Waker>)>,
}

impl LocalStop {
    fn set(&self, reason: StopReason) {
        let wakers = {
            let mut state = self.state.borrow_mut();
            state.0 = Some(reason);
            std::mem::take(&mut state.1)
        };
        wakers.into_iter().for_each(Waker::wake);
    }
}

/// The stop request shared by the launcher and its threads.
#[derive(Default)]
struct StopAll {
    inner: Mutex<(Option<StopReason>, Vec<AsyncPromise<StopReason>>)>,
}

impl StopAll {
    /// Tells `promise` when the threads must stop (at once if they already must).
    fn register(&self, promise: AsyncPromise<StopReason>) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match inner.0 {
            Some(reason) => drop(promise.set(reason)),
            None => inner.1.push(promise),
        }
    }

    /// Asks every thread to stop; the first reason wins. Returns whether this call asked.
    fn stop(&self, reason: StopReason) -> bool {
        let promises = {
            let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            if inner.0.is_some() {
                return false;
            }
            inner.0 = Some(reason);
            std::mem::take(&mut inner.1)
        };
        for p in promises {
            let _ = p.set(reason);
        }
        true
    }
}

/// Thread-per-core: one runtime per thread, each on its own ring.
///
/// [`Builder::threads`](super::Builder::threads) starts `n` threads, each with a [`Runtime`] built from the same
/// builder, and runs the future that `f(ThreadContext)` makes on every one of them. Threads
/// share nothing but what the closure shares: each accepts on its own
/// [`TcpListener::bind_reuseport`](crate::net::TcpListener::bind_reuseport) listener, say,
/// and the kernel spreads connections among them.
///
/// ```no_run
/// use iomgr::net::TcpListener;
///
/// let results = iomgr::Builder::new().threads(2).pin_to_cores(true).run(|thread| async move {
///     let listener = TcpListener::bind_reuseport("127.0.0.1:7000")?;
///     loop {
///         let (stream, _) = listener.accept().await?;
///         iomgr::spawn(async move { drop(stream) });
///         # if thread.index() > 100 { return Ok::<(), std::io::Error>(()); }
///     }
/// })?;
/// for (i, result) in results.iter().enumerate() {
///     if let Err(e) = result {
///         eprintln!("thread {i}: {e}");
///     }
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// **How it ends.** [`run`](Self::run) returns when every thread's future has finished. A stop
/// is requested of all threads when a thread fails (its future panics, or its runtime cannot
/// start) and, unless turned off, on `SIGINT` or `SIGTERM` (a second one exits the process at
/// once). A stopped thread's future is dropped (its ops cancelled safely, its runtime's tasks
/// with it) after the [grace period](PerCore::grace_period), during which
/// [`ThreadContext::stopped`] lets it finish on its own. Every thread's end is in the result:
/// its output, or a [`ThreadError`] that says what happened; a panic is never lost.
#[derive(Debug, Clone)]
pub struct PerCore {
    builder: Builder,
    threads: usize,
    pin: bool,
    signals: bool,
    dump_on_sigquit: bool,
    grace: Duration,
}

impl Builder {
    /// Runs `n` runtimes, one per thread, each built from this builder (see [`PerCore`]).
    pub fn threads(&self, n: usize) -> PerCore {
        PerCore {
            builder: self.clone(),
            threads: n.max(1),
            pin: false,
            signals: true,
            dump_on_sigquit: false,
            grace: Duration::ZERO,
        }
    }
}

impl PerCore {
    /// Pins thread `i` to the `i`-th CPU this process may run on (wrapping around). Off by
    /// default.
    pub fn pin_to_cores(&mut self, on: bool) -> &mut Self {
        self.pin = on;
        self
    }

    /// Stops every thread on `SIGINT` or `SIGTERM` (on by default). While [`run`](Self::run)
    /// runs, those signals are blocked in the calling thread (and so in the threads it
    /// starts) and read from a `signalfd`: call it from the main thread before starting
    /// other threads, which would otherwise receive them.
    pub fn stop_on_signals(&mut self, on: bool) -> &mut Self {
        self.signals = on;
        self
    }

    /// On `SIGQUIT` (Ctrl-\\), prints every thread's [task dump](super::TaskDump) on stderr
    /// and goes on: where each task of a running server waits. Off by default (`SIGQUIT`
    /// then keeps its default action).
    pub fn dump_on_sigquit(&mut self, on: bool) -> &mut Self {
        self.dump_on_sigquit = on;
        self
    }

    /// How long a thread's future may go on after a stop is requested, to finish by itself
    /// ([`ThreadContext::stopped`]); then it is dropped. Default: zero (dropped at once).
    pub fn grace_period(&mut self, grace: Duration) -> &mut Self {
        self.grace = grace;
        self
    }

    /// Starts the threads, runs `f`'s future on each, and returns each thread's end, in
    /// thread order. Blocks until every thread has ended.
    ///
    /// # Errors
    /// An error for the launch itself: the signal handling could not be set up. Each thread's
    /// own failure is in its element of the result.
    pub fn run<F, Fut>(&self, f: F) -> io::Result<Vec<Result<Fut::Output, ThreadError>>>
    where
        F: Fn(ThreadContext) -> Fut + Sync,
        Fut: Future,
        Fut::Output: Send,
    {
        let mut watched = Vec::new();
        if self.signals {
            watched.extend([libc::SIGINT, libc::SIGTERM]);
        }
        if self.dump_on_sigquit {
            watched.push(libc::SIGQUIT);
        }
        let signals = if watched.is_empty() {
            None
        } else {
            Some(SignalWatch::new(&watched)?)
        };
        let handles: Mutex<Vec<Option<super::Handle>>> = Mutex::new(vec![None; self.threads]);
        let done = EventFd::new()?;
        let cpus = if self.pin { allowed_cpus() } else { Vec::new() };
        let stop = StopAll::default();
        let n = self.threads;
        let (tx, rx) = mpsc::channel();
        std::thread::scope(|scope| {
            for index in 0..n {
                let thread_tx = tx.clone();
                let (f, stop, done, handles) = (&f, &stop, &done, &handles);
                let cpu = (!cpus.is_empty()).then(|| cpus[index % cpus.len()]);
                let builder = &self.builder;
                let grace = self.grace;
                let spawned = std::thread::Builder::new()
                    .name(format!("iomgr-{index}"))
                    .spawn_scoped(scope, move || {
                        if let Some(cpu) = cpu {
                            pin_to(cpu);
                        }
                        let result = run_thread(builder, index, n, grace, stop, handles, f);
                        let _ = thread_tx.send((index, result));
                        done.notify();
                    });
                if let Err(e) = spawned {
                    let _ = tx.send((index, Err(ThreadError::Start(e))));
                    done.notify();
                }
            }
            drop(tx);
            let mut results: Vec<Option<Result<Fut::Output, ThreadError>>> =
                (0..n).map(|_| None).collect();
            let mut ended = 0;
            while ended < n {
                match wait(&done, signals.as_ref()) {
                    Wake::Done => {
                        for (index, result) in rx.try_iter() {
                            if matches!(
                                result,
                                Err(ThreadError::Start(_) | ThreadError::Panicked(_))
                            ) {
                                stop.stop(StopReason::ThreadFailed(index));
                            }
                            results[index] = Some(result);
                            ended += 1;
                        }
                    }
                    Wake::Signal(libc::SIGQUIT) => print_dumps(&handles),
                    Wake::Signal(signo) => {
                        if !stop.stop(StopReason::Signal(signo)) {
                            // A second signal: the user wants out now.
                            std::process::exit(128 + signo);
                        }
                    }
                }
            }
            Ok(results
                .into_iter()
                .map(|r| r.expect("every thread sent its result"))
                .collect())
        })
    }
}

/// One thread's whole life: its runtime, its future, and how it ended.
fn run_thread<F, Fut>(
    builder: &Builder,
    index: usize,
    threads: usize,
    grace: Duration,
    stop: &StopAll,
    handles: &Mutex<Vec<Option<super::Handle>>>,
    f: &F,
) -> Result<Fut::Output, ThreadError>
where
    F: Fn(ThreadContext) -> Fut,
    Fut: Future,
{
    let runtime: Runtime = builder.build().map_err(ThreadError::Start)?;
    handles.lock().unwrap_or_else(|e| e.into_inner())[index] = Some(runtime.handle());
    let (stop_requested, promise) = async_promise::<StopReason>();
    stop.register(promise);
    let local = Rc::new(LocalStop::default());
    let context = ThreadContext {
        index,
        threads,
        stop: local.clone(),
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        runtime.block_on(async {
            let mut future = pin!(f(context));
            match select(future.as_mut(), stop_requested).await {
                Either::Left(output) => Ok(output),
                Either::Right(Ok(reason)) => {
                    local.set(reason);
                    if grace.is_zero() {
                        return Err(ThreadError::Stopped(reason));
                    }
                    crate::time::timeout(grace, future)
                        .await
                        .map_err(|_| ThreadError::Stopped(reason))
                }
                // The launcher is gone: nothing can ask for a stop any more.
                Either::Right(Err(_)) => Ok(future.await),
            }
        })
    }));
    match outcome {
        Ok(result) => result,
        Err(payload) => Err(ThreadError::Panicked(panic_message(payload.as_ref()))),
    }
}

/// Prints each thread's task dump on stderr (a thread that does not answer within a second
/// is said to be busy).
fn print_dumps(handles: &Mutex<Vec<Option<super::Handle>>>) {
    let handles: Vec<Option<super::Handle>> =
        handles.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for (i, handle) in handles.iter().enumerate() {
        let Some(handle) = handle else { continue };
        match wait_for(handle.dump(), Duration::from_secs(1)) {
            Some(Ok(tasks)) => {
                eprintln!("iomgr: thread {i}: {} task(s)", tasks.len());
                for task in tasks {
                    eprintln!("  {task}");
                }
            }
            Some(Err(_)) => eprintln!("iomgr: thread {i}: its runtime is gone"),
            None => eprintln!("iomgr: thread {i}: busy (no answer within 1 s)"),
        }
    }
}

/// Polls `future` on this thread until it is ready or `limit` passed.
fn wait_for<F: Future>(future: F, limit: Duration) -> Option<F::Output> {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return Some(output);
        }
        let now = std::time::Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::park_timeout(deadline - now);
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_string()
    }
}

enum Wake {
    Done,
    Signal(i32),
}

/// Blocks until a thread ended or a watched signal arrived.
fn wait(done: &EventFd, signals: Option<&SignalWatch>) -> Wake {
    loop {
        let mut fds = [
            libc::pollfd {
                fd: done.fd,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: signals.map_or(-1, |s| s.fd),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: `fds` is a valid array of two `pollfd`s for the duration of the call; a
        // negative fd is ignored by poll(2).
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n < 0 {
            continue; // EINTR
        }
        if fds[1].revents & libc::POLLIN != 0
            && let Some(signo) = signals.and_then(SignalWatch::read)
        {
            return Wake::Signal(signo);
        }
        if fds[0].revents & libc::POLLIN != 0 {
            done.drain();
            return Wake::Done;
        }
    }
}

/// A counter the threads bump when they end.
struct EventFd {
    fd: libc::c_int,
}

impl EventFd {
    fn new() -> io::Result<Self> {
        // SAFETY: plain syscall; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(EventFd { fd })
    }

    fn notify(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to an eventfd this struct owns.
        unsafe { libc::write(self.fd, (&one as *const u64).cast(), 8) };
    }

    fn drain(&self) {
        let mut n: u64 = 0;
        // SAFETY: reads 8 bytes into a valid u64 from an eventfd this struct owns.
        unsafe { libc::read(self.fd, (&mut n as *mut u64).cast(), 8) };
    }
}

impl Drop for EventFd {
    fn drop(&mut self) {
        // SAFETY: the fd is owned by this struct and closed once.
        unsafe { libc::close(self.fd) };
    }
}

/// Signals blocked in this thread and read from a `signalfd`; the old mask is restored on
/// drop.
struct SignalWatch {
    fd: libc::c_int,
    old_mask: libc::sigset_t,
}

impl SignalWatch {
    fn new(signals: &[i32]) -> io::Result<Self> {
        // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialize it.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut old_mask: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` and `old_mask` are valid sigset_t values owned here.
        let rc = unsafe {
            libc::sigemptyset(&mut set);
            for &signal in signals {
                libc::sigaddset(&mut set, signal);
            }
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old_mask)
        };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        // SAFETY: `set` is initialized; the result is checked.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
        if fd < 0 {
            let e = io::Error::last_os_error();
            // SAFETY: restores the mask saved above.
            unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old_mask, std::ptr::null_mut()) };
            return Err(e);
        }
        Ok(SignalWatch { fd, old_mask })
    }

    /// The next signal, if one is pending.
    fn read(&self) -> Option<i32> {
        // SAFETY: signalfd_siginfo is plain data.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: reads at most `size` bytes into `info`, which is that large.
        let n = unsafe {
            libc::read(
                self.fd,
                (&mut info as *mut libc::signalfd_siginfo).cast(),
                size,
            )
        };
        (n as usize == size).then_some(info.ssi_signo as i32)
    }
}

impl Drop for SignalWatch {
    fn drop(&mut self) {
        // SAFETY: the fd is owned here and closed once; the mask was saved by `new`.
        unsafe {
            libc::close(self.fd);
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.old_mask, std::ptr::null_mut());
        }
    }
}

/// The CPUs this process may run on, in order.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data, filled by sched_getaffinity.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: passes a valid cpu_set_t and its size.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `cpu` is below CPU_SETSIZE, inside `set`.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

/// Pins the calling thread to `cpu` (best effort: a failure leaves it unpinned).
fn pin_to(cpu: usize) {
    // SAFETY: cpu_set_t is plain data.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` comes from `allowed_cpus`, below CPU_SETSIZE; the set is valid.
    unsafe {
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}
