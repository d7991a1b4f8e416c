//! The runtime of a generated batch crate: copied into it as `src/rt.rs` by `task-fuzz`.
//!
//! Everything a generated program can observe goes through the thread-local event log:
//! drops of `Guard`s and `Tick`s, calls of the logging helpers, polls, `pending` and the
//! returned value. `check` runs each program's task and plain versions on a deterministic
//! executor (a poll loop with a no-op waker) and prints one `RES` line per program, with
//! both logs when they differ.

use std::cell::{Cell, RefCell};
use std::fmt::Debug;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

thread_local! {
    static LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    static FUEL: Cell<u32> = const { Cell::new(0) };
}

/// Loop iterations a whole run may make (every loop body starts with `if fuel() { break; }`).
const FUEL_MAX: u32 = 40;
/// Polls after which a run is stopped.
const POLL_MAX: usize = 10_000;
/// Mid-flight drops tried per program (after 0, 1, .. polls).
const CANCEL_MAX: usize = 24;

pub fn log(s: String) {
    LOG.with(|l| l.borrow_mut().push(s));
}

/// True once the run's loop budget is spent.
pub fn fuel() -> bool {
    FUEL.with(|f| {
        let n = f.get();
        if n == 0 {
            true
        } else {
            f.set(n - 1);
            false
        }
    })
}

/// A value that logs its drop.
#[derive(Debug)]
pub struct Guard(pub &'static str);

impl Drop for Guard {
    fn drop(&mut self) {
        log(format!("drop {}", self.0));
    }
}

fn num(tag: &str) -> i64 {
    tag.bytes()
        .filter(u8::is_ascii_digit)
        .fold(0, |a, d| (a * 10 + i64::from(d - b'0')) % 97)
        % 10
}

impl Guard {
    /// By reference.
    pub fn val(&self) -> i64 {
        num(self.0)
    }
    /// By reference, despite the name.
    pub fn into_x(&self) -> i64 {
        log(format!("into_x {}", self.0));
        num(self.0) + 1
    }
    /// By reference, despite the name.
    pub fn expect(&self, n: i64) -> i64 {
        log(format!("expect {} {n}", self.0));
        num(self.0) + n
    }
    /// By value, despite the name: the guard is dropped inside.
    pub fn peek(self) -> i64 {
        log(format!("peek {}", self.0));
        num(self.0)
    }
    /// By reference.
    pub fn pick(&self) -> Option<i64> {
        let v = num(self.0);
        if v % 2 == 0 { Some(v) } else { None }
    }
}

#[derive(Debug)]
pub struct Pair {
    pub g: Guard,
    pub n: i64,
}

impl Pair {
    /// By reference.
    pub fn sum(&self) -> i64 {
        self.g.val() + self.n
    }
    /// By value.
    pub fn into_n(self) -> i64 {
        log(format!("into_n {}", self.g.0));
        self.n
    }
}

pub fn mk(tag: &'static str) -> Guard {
    log(format!("mk {tag}"));
    Guard(tag)
}

pub fn consume(g: Guard) -> i64 {
    log(format!("consume {}", g.0));
    g.val()
}

pub fn pass(g: Guard) -> Guard {
    log(format!("pass {}", g.0));
    g
}

pub fn lg(tag: &'static str, v: i64) -> i64 {
    log(format!("{tag}={v}"));
    v
}

pub fn lim(n: i64) -> i64 {
    n.rem_euclid(4)
}

pub fn idx(n: i64) -> usize {
    n.rem_euclid(3) as usize
}

pub fn chk(n: i64) -> Result<i64, i64> {
    if n % 2 == 0 { Ok(n) } else { Err(n) }
}

pub fn opt(n: i64) -> Option<i64> {
    if n % 3 == 0 { None } else { Some(n) }
}

/// A future that is pending `left` times (logging each poll), then ready with its value.
pub struct Tick<T> {
    tag: &'static str,
    left: u32,
    val: Option<T>,
}

pub fn tk<T>(tag: &'static str, left: u32, val: T) -> Tick<T> {
    Tick {
        tag,
        left,
        val: Some(val),
    }
}

impl<T: Unpin> Future for Tick<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = self.get_mut();
        log(format!("poll {}", this.tag));
        if this.left > 0 {
            this.left -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        } else {
            Poll::Ready(this.val.take().expect("Tick polled after completion"))
        }
    }
}

impl<T> Drop for Tick<T> {
    fn drop(&mut self) {
        log(format!("drop tick {}", self.tag));
    }
}

/// Takes a reference, returns a future that does not borrow.
pub fn rf(tag: &'static str, g: &Guard) -> Tick<i64> {
    tk(tag, 1, g.val())
}

/// A future that borrows across its own `.await`.
pub async fn rb(tag: &'static str, g: &Guard) -> i64 {
    tk(tag, 1, ()).await;
    g.into_x()
}

/// A future that owns a guard.
pub async fn eat(tag: &'static str, g: Guard, n: i64) -> i64 {
    tk(tag, 1, ()).await;
    consume(g) + n
}

/// Runs a future to completion, or for `limit` polls and then drops it; returns the log.
pub fn run<F: Future>(make: impl FnOnce() -> F, limit: Option<usize>) -> Vec<String>
where
    F::Output: Debug,
{
    LOG.with(|l| l.borrow_mut().clear());
    FUEL.with(|f| f.set(FUEL_MAX));
    let mut fut = Box::pin(make());
    let mut cx = Context::from_waker(Waker::noop());
    let mut polls = 0;
    loop {
        if limit == Some(polls) {
            log("cancel".into());
            break;
        }
        polls += 1;
        match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(&mut cx))) {
            Ok(Poll::Ready(v)) => {
                log(format!("ready {v:?}"));
                drop(v);
                break;
            }
            Ok(Poll::Pending) => {
                log("pending".into());
                if polls >= POLL_MAX {
                    log("poll limit".into());
                    break;
                }
            }
            Err(_) => {
                log("panic".into());
                break;
            }
        }
    }
    if catch_unwind(AssertUnwindSafe(move || drop(fut))).is_err() {
        log("panic in drop".into());
    }
    log("end".into());
    LOG.with(|l| std::mem::take(&mut *l.borrow_mut()))
}

/// Runs program `i` both ways, fully and then dropped after each number of polls, and
/// prints the verdict.
pub fn check<T, P>(i: usize, task: impl Fn() -> T, plain: impl Fn() -> P)
where
    T: Future,
    P: Future<Output = T::Output>,
    T::Output: Debug,
{
    let (st, sp) = (size_of::<T>(), size_of::<P>());
    println!("STAGE {i} plain");
    let lp = run(&plain, None);
    println!("STAGE {i} task");
    let lt = run(&task, None);
    let pend = lp.iter().filter(|e| *e == "pending").count();
    if lp != lt {
        report(i, "full", st, sp, pend, &lt, &lp);
        return;
    }
    for k in 0..=pend.min(CANCEL_MAX) {
        println!("STAGE {i} plain");
        let lp = run(&plain, Some(k));
        println!("STAGE {i} task");
        let lt = run(&task, Some(k));
        if lp != lt {
            report(i, &format!("drop-after-{k}-polls"), st, sp, pend, &lt, &lp);
            return;
        }
    }
    println!("RES {i} ok {st} {sp} {pend}");
}

fn report(i: usize, what: &str, st: usize, sp: usize, pend: usize, lt: &[String], lp: &[String]) {
    println!("RES {i} {what} {st} {sp} {pend}");
    println!("TASK\t{}", lt.join("\t"));
    println!("PLAIN\t{}", lp.join("\t"));
}
