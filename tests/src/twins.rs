//! Running a `#[iomgr::task]` and the same `async fn` side by side.
//!
//! [`twin!`](crate::twin) writes one body twice, once under `#[iomgr::task]` and once as a
//! plain `async fn`. [`assert_same`] runs both on a deterministic executor (a no-op waker,
//! polled until ready) and compares the output and the event log: everything the body
//! [`log`]s, every [`Guard`] and [`Tick`] drop, and a `"pending"` entry each time a poll
//! returns `Pending`. Then, for every pending point `k`, it polls each twin `k` times and
//! drops it, and compares the logs again: a task dropped while suspended must drop what it
//! holds in the same order as the `async fn`.

use std::cell::RefCell;
use std::fmt::Debug;
use std::future::Future;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, Waker};

thread_local! {
    static LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Appends an event to this thread's log.
pub fn log(event: impl Into<String>) {
    LOG.with(|l| l.borrow_mut().push(event.into()));
}

/// Takes this thread's log.
pub fn take_log() -> Vec<String> {
    LOG.with(|l| std::mem::take(&mut *l.borrow_mut()))
}

/// Logs `drop <name>` when dropped.
#[derive(Debug, PartialEq)]
pub struct Guard(pub &'static str);

impl Drop for Guard {
    fn drop(&mut self) {
        log(format!("drop {}", self.0));
    }
}

impl Guard {
    /// A by-reference method with a consuming-sounding name.
    pub fn into_name(&self) -> &'static str {
        self.0
    }
    /// A by-reference method named like `Option::expect`.
    pub fn expect(&self, _: &str) -> usize {
        self.0.len()
    }
    /// A by-value method with a borrowing-sounding name.
    pub fn peek(self) -> &'static str {
        self.0
    }
}

/// A future that is pending `n` times, then ready with `value`; logs its drop.
#[derive(Debug)]
pub struct Tick {
    n: u32,
    tag: &'static str,
    value: u32,
}

impl Future for Tick {
    type Output = u32;
    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u32> {
        if self.n == 0 {
            return Poll::Ready(self.value);
        }
        self.n -= 1;
        Poll::Pending
    }
}

impl Drop for Tick {
    fn drop(&mut self) {
        log(format!("drop tick {}", self.tag));
    }
}

/// A [`Tick`] pending once.
pub fn tick(tag: &'static str, value: u32) -> Tick {
    Tick { n: 1, tag, value }
}

/// Polls until ready, logging each `Pending`.
pub fn run<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => log("pending"),
        }
    }
}

/// Polls at most `polls` times (logging each `Pending`), then drops the future. Returns
/// whether it finished.
pub fn run_then_drop<F: Future>(f: F, polls: usize) -> bool {
    let mut f = Box::pin(f);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..polls {
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(_) => return true,
            Poll::Pending => log("pending"),
        }
    }
    log("drop the future");
    drop(f);
    false
}

/// Runs both twins to completion and dropped at every pending point; their outputs and logs
/// must be identical. Returns the output.
pub fn assert_same<T, FT, FP>(name: &str, task: impl Fn() -> FT, plain: impl Fn() -> FP) -> T
where
    FT: Future<Output = T>,
    FP: Future<Output = T>,
    T: Debug + PartialEq,
{
    let _ = take_log();
    let t = run(task());
    let t_log = take_log();
    let p = run(plain());
    let p_log = take_log();
    assert_eq!(
        t, p,
        "{name}: the task's output differs from the async fn's"
    );
    assert_eq!(
        t_log, p_log,
        "{name}: the task's events (left) differ from the async fn's (right)"
    );
    let pending = p_log.iter().filter(|e| *e == "pending").count();
    for polls in 0..=pending {
        run_then_drop(task(), polls);
        let t_log = take_log();
        run_then_drop(plain(), polls);
        let p_log = take_log();
        assert_eq!(
            t_log, p_log,
            "{name}: dropped after {polls} polls, the task's events (left) differ from the async fn's (right)"
        );
    }
    t
}

/// Declares `$task` (under `#[iomgr::task]`) and `$plain` (a plain `async fn`) with one body.
#[macro_export]
macro_rules! twin {
    ($task:ident, $plain:ident, ($($arg:ident : $ty:ty),*) -> $ret:ty $body:block) => {
        #[iomgr::task]
        async fn $task($($arg: $ty),*) -> $ret $body
        async fn $plain($($arg: $ty),*) -> $ret $body
    };
}
