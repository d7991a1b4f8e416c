//! `#[iomgr::task]` on plain futures: every handler is written once and compiled twice, as a
//! task and as a plain `async fn` (the `twin!` macro), then both run on the same inputs. The
//! outputs, the number of polls and the log of drops must be identical.

// The handlers are written to exercise the lowering, not in the most idiomatic style.
#![allow(
    clippy::manual_is_multiple_of,
    clippy::while_let_on_iterator,
    clippy::never_loop
)]

use std::cell::RefCell;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::{Pin, pin};
use std::task::{Context, Poll, Waker};

thread_local! {
    static LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn log(s: impl Into<String>) {
    LOG.with(|l| l.borrow_mut().push(s.into()));
}

fn take_log() -> Vec<String> {
    LOG.with(|l| std::mem::take(&mut *l.borrow_mut()))
}

/// Polls to completion with a no-op waker; returns the output and the number of polls.
fn block_on<F: Future>(f: F) -> (F::Output, usize) {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    let mut n = 0;
    loop {
        n += 1;
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return (v, n);
        }
        assert!(n < 100_000, "future never finished");
    }
}

/// Polls `n` times (or to completion); returns the output if it finished.
fn poll_n<F: Future>(f: Pin<&mut F>, n: usize) -> Option<F::Output> {
    let mut f = f;
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..n {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return Some(v);
        }
    }
    None
}

/// Ready with `value` after `n` pendings; logs its drop.
struct Tick {
    n: u32,
    tag: &'static str,
    value: u32,
}

impl Future for Tick {
    type Output = u32;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        if self.n == 0 {
            return Poll::Ready(self.value);
        }
        self.n -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Drop for Tick {
    fn drop(&mut self) {
        log(format!("drop tick {}", self.tag));
    }
}

fn tick(tag: &'static str, value: u32) -> Tick {
    Tick { n: 1, tag, value }
}

fn never(tag: &'static str) -> Tick {
    Tick {
        n: u32::MAX,
        tag,
        value: 0,
    }
}

struct Guard(&'static str);

impl Drop for Guard {
    fn drop(&mut self) {
        log(format!("drop guard {}", self.0));
    }
}

/// A fake stream: reads hand out queued chunks, writes append. The read future borrows the
/// stream (like `stream.read(buf)` does in the runtime).
struct Stream {
    input: Vec<Vec<u8>>,
    output: Vec<u8>,
}

impl Drop for Stream {
    fn drop(&mut self) {
        log("drop stream");
    }
}

struct ReadFut<'a> {
    s: &'a mut Stream,
    buf: Option<Vec<u8>>,
    pend: bool,
}

impl Future for ReadFut<'_> {
    type Output = (std::io::Result<usize>, Vec<u8>);
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.pend {
            self.pend = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let this = &mut *self;
        let mut buf = this.buf.take().expect("polled after completion");
        if this.s.input.is_empty() {
            return Poll::Ready((Ok(0), buf));
        }
        let chunk = this.s.input.remove(0);
        if chunk == b"ERR" {
            return Poll::Ready((Err(std::io::Error::other("boom")), buf));
        }
        let n = chunk.len().min(buf.len());
        buf[..n].copy_from_slice(&chunk[..n]);
        Poll::Ready((Ok(n), buf))
    }
}

impl Drop for ReadFut<'_> {
    fn drop(&mut self) {
        // Touches the borrowed stream: it must still be alive.
        log(format!("drop read ({} queued)", self.s.input.len()));
    }
}

impl Stream {
    fn new(input: Vec<Vec<u8>>) -> Self {
        Stream {
            input,
            output: Vec::new(),
        }
    }
    fn read(&mut self, buf: Vec<u8>) -> ReadFut<'_> {
        ReadFut {
            s: self,
            buf: Some(buf),
            pend: true,
        }
    }
    async fn write_all(&mut self, data: Vec<u8>) -> (std::io::Result<()>, Vec<u8>) {
        self.output.extend_from_slice(&data);
        (Ok(()), data)
    }
}

/// Defines `$task` (`#[iomgr::task]`) and `$plain` (`async fn`) with one body.
macro_rules! twin {
    ($(#[$m:meta])* $task:ident, $plain:ident, ($($arg:ident : $ty:ty),*) -> $ret:ty $body:block) => {
        $(#[$m])*
        async fn $task($($arg: $ty),*) -> $ret $body
        async fn $plain($($arg: $ty),*) -> $ret $body
    };
}

/// Runs both versions on the same input; asserts same output, polls and log.
macro_rules! same {
    ($task:ident, $plain:ident, ($($arg:expr),*)) => {{
        let (r1, n1) = block_on($task($($arg),*));
        let l1 = take_log();
        let (r2, n2) = block_on($plain($($arg),*));
        let l2 = take_log();
        assert_eq!(r1, r2, "output of {}", stringify!($task));
        assert_eq!(n1, n2, "polls of {}", stringify!($task));
        assert_eq!(l1, l2, "drop log of {}", stringify!($task));
        r1
    }};
}

twin!(#[iomgr::task] echo_t, echo_p, (stream: Stream) -> (bool, Vec<u8>) {
    let mut stream = stream;
    let mut buf: Vec<u8> = vec![0; 8];
    let r: std::io::Result<()> = loop {
        let (res, b) = stream.read(buf).await;
        let n = match res {
            Ok(n) => n,
            Err(e) => break Err(e),
        };
        if n == 0 {
            break Ok(());
        }
        let mut b = b;
        b.truncate(n);
        let (res, b) = stream.write_all(b).await;
        if let Err(e) = res {
            break Err(e);
        }
        buf = b;
        buf.resize(8, 0);
    };
    (r.is_ok(), std::mem::take(&mut stream.output))
});

#[test]
fn echo_loop_borrowing_the_stream() {
    let inputs: Vec<Vec<Vec<u8>>> = vec![
        vec![],
        vec![b"hello".to_vec()],
        vec![b"ab".to_vec(), b"0123456789".to_vec(), b"x".to_vec()],
        vec![b"a".to_vec(), b"ERR".to_vec(), b"b".to_vec()],
    ];
    for input in inputs {
        let (ok, out) = same!(echo_t, echo_p, (Stream::new(input.clone())));
        assert_eq!(ok, !input.contains(&b"ERR".to_vec()));
        let expected: Vec<u8> = input
            .iter()
            .take_while(|c| c.as_slice() != b"ERR")
            .flat_map(|c| c[..c.len().min(8)].to_vec())
            .collect();
        assert_eq!(out, expected);
    }
}

#[derive(Debug, PartialEq)]
enum MyErr {
    Parse,
    Io,
}

impl From<std::num::ParseIntError> for MyErr {
    fn from(_: std::num::ParseIntError) -> Self {
        MyErr::Parse
    }
}

twin!(#[iomgr::task] ctl_t, ctl_p, (items: Vec<&'static str>, limit: u32) -> Result<u32, MyErr> {
    let _g = Guard("outer");
    let mut total = 0u32;
    let mut i = 0;
    'outer: while i < items.len() {
        let s = items[i];
        i += 1;
        if s == "skip" {
            continue;
        }
        if s == "io" {
            return Err(MyErr::Io);
        }
        let v: u32 = s.parse()?;
        let g = Guard("iter");
        let w = tick("a", v).await;
        match w {
            0 => {
                let z = tick("zero", 0).await;
                total += z;
            }
            1 | 2 => total += tick("small", w).await * 2,
            n if n > 100 => break 'outer,
            n => {
                for k in 0..n {
                    if k == 3 {
                        continue;
                    }
                    if k == 5 {
                        break;
                    }
                    total += tick("k", k).await;
                }
            }
        }
        drop(g);
        if total > limit {
            log("limit");
            break;
        }
        let x = if total % 2 == 0 { tick("even", 1).await } else { 2 };
        total += x;
    }
    let extra = {
        let a = tick("blk", 3).await;
        a + 1
    };
    Ok(total + extra)
});

#[test]
fn loops_match_if_return_and_question_mark() {
    let cases: Vec<(Vec<&'static str>, u32)> = vec![
        (vec![], 10),
        (vec!["1", "2", "3"], 100),
        (vec!["0", "skip", "7"], 100),
        (vec!["5", "x"], 100),
        (vec!["4", "io"], 100),
        (vec!["3", "200", "1"], 100),
        (vec!["9", "9", "9", "9"], 12),
    ];
    let mut seen_err = 0;
    for (items, limit) in cases {
        if same!(ctl_t, ctl_p, (items.clone(), limit)).is_err() {
            seen_err += 1;
        }
    }
    assert_eq!(seen_err, 2);
}

twin!(#[iomgr::task] opt_t, opt_p, (xs: Vec<Option<u32>>) -> Option<u32> {
    let mut it = xs.into_iter();
    let mut sum = 0;
    while let Some(x) = it.next() {
        let Some(v) = x else { return Some(sum + 1000) };
        let doubled = tick("double", v * 2).await;
        sum += doubled;
        let checked = if doubled > 50 { None } else { Some(doubled) };
        let c = checked?;
        sum += c;
    }
    let sum = sum + tick("tail", 1).await;
    let sum = sum * 2;
    Some(sum)
});

#[test]
fn option_question_mark_let_else_while_let_shadowing() {
    assert_eq!(
        same!(opt_t, opt_p, (vec![Some(1), Some(2)])),
        Some((2 + 2 + 4 + 4 + 1) * 2)
    );
    assert_eq!(
        same!(opt_t, opt_p, (vec![Some(1), None, Some(2)])),
        Some(1004)
    );
    assert_eq!(same!(opt_t, opt_p, (vec![Some(30)])), None);
    assert_eq!(same!(opt_t, opt_p, (vec![])), Some(2));
}

twin!(#[iomgr::task] grid_t, grid_p, (w: u32, h: u32, stop: u32) -> (u32, u32) {
    let mut visited = 0;
    let found = 'rows: loop {
        for y in 0..h {
            let mut x = 0;
            loop {
                if x == w {
                    break;
                }
                let cell = tick("cell", y * w + x).await;
                visited += 1;
                if cell == stop {
                    break 'rows cell;
                }
                if cell % 7 == 3 {
                    x += 2;
                    continue;
                }
                x += 1;
            }
        }
        break 'rows u32::MAX;
    };
    (found, visited)
});

#[test]
fn labelled_break_with_value_and_continue() {
    assert_eq!(same!(grid_t, grid_p, (4, 4, 9)).0, 9);
    assert_eq!(same!(grid_t, grid_p, (3, 3, 100)).0, u32::MAX);
    same!(grid_t, grid_p, (5, 2, 0));
}

fn lengths(v: u32) -> Tick {
    tick("len", v)
}

twin!(#[iomgr::task] positions_t, positions_p, (words: Vec<String>) -> Vec<usize> {
    let mut out = Vec::new();
    if lengths(words.len() as u32).await > 2 {
        out.push(99);
    }
    match tick("scrut", 2).await {
        2 => out.push(2),
        _ => out.push(0),
    }
    let n = std::future::ready(words.clone()).await.len();
    out.push(n);
    let mut last = 0;
    for w in words.clone() {
        last = lengths(w.len() as u32).await;
        out.push(last as usize);
    }
    out.push(last as usize + tick("plus", 1).await as usize);
    let a = async { 5usize }.await;
    out.push(a);
    if out.len() > 100 {
        return out;
    }
    out.push(std::future::ready(7usize).await);
    out
});

#[test]
fn await_positions() {
    let r = same!(
        positions_t,
        positions_p,
        (vec!["ab".into(), "cde".into(), "".into()])
    );
    assert_eq!(r, vec![99, 2, 3, 2, 3, 0, 1, 5, 7]);
    same!(positions_t, positions_p, (vec![]));
}

twin!(#[iomgr::task] early_t, early_p, (mode: u32) -> u32 {
    let _a = Guard("a");
    let b = Guard("b");
    if mode == 0 {
        return tick("ret", 10).await;
    }
    {
        let _inner = Guard("inner");
        tick("inner", 0).await;
    }
    log("after inner");
    drop(b);
    tick("after b", 0).await;
    let _c = Guard("c");
    if mode == 1 {
        return 1;
    }
    tick("tail", mode).await
});

#[test]
fn drops_happen_where_the_async_fn_drops() {
    for mode in 0..3 {
        same!(early_t, early_p, (mode));
    }
}

// ---- cancellation -------------------------------------------------------------------

/// Drops both versions after `polls` polls; the drop logs must agree.
macro_rules! same_cancel {
    ($task:ident, $plain:ident, ($($arg:expr),*), $polls:expr) => {{
        {
            let mut t = pin!($task($($arg),*));
            poll_n(t.as_mut(), $polls);
        }
        let l1 = take_log();
        {
            let mut p = pin!($plain($($arg),*));
            poll_n(p.as_mut(), $polls);
        }
        let l2 = take_log();
        assert_eq!(l1, l2, "cancel log after {} polls", $polls);
        l1
    }};
}

twin!(#[iomgr::task] hold_t, hold_p, (tag: &'static str) -> u32 {
    let _g1 = Guard("g1");
    let a = tick("first", 1).await;
    let g2 = Guard(tag);
    let v = vec![Guard("in vec")];
    let b = never("forever").await;
    drop(g2);
    drop(v);
    a + b
});

#[test]
fn cancelling_drops_the_awaited_future_then_the_live_locals_once() {
    for polls in 0..4 {
        let l = same_cancel!(hold_t, hold_p, ("g2"), polls);
        if polls >= 2 {
            assert_eq!(
                l,
                [
                    "drop tick first",
                    "drop tick forever",
                    "drop guard in vec",
                    "drop guard g2",
                    "drop guard g1"
                ]
            );
        }
    }
}

#[test]
fn cancelling_a_borrowing_future_drops_it_before_the_stream() {
    for polls in 0..6 {
        let l = same_cancel!(
            echo_t,
            echo_p,
            (Stream::new(vec![b"abc".to_vec(), b"def".to_vec()])),
            polls
        );
        assert_eq!(l.iter().filter(|s| *s == "drop stream").count(), 1);
        if let Some(i) = l.iter().position(|s| s.starts_with("drop read")) {
            assert!(i < l.iter().position(|s| s == "drop stream").unwrap());
        }
    }
}

#[iomgr::task]
async fn panics_after(n: u32) -> u32 {
    let _g = Guard("p1");
    let a = tick("before", n).await;
    let _h = Guard("p2");
    if a == 3 {
        panic!("boom");
    }
    tick("after", a).await
}

#[test]
fn a_panic_drops_each_local_once_and_the_task_is_poisoned() {
    let mut t = Box::pin(panics_after(3));
    let r = catch_unwind(AssertUnwindSafe(|| poll_n(t.as_mut(), 10)));
    assert!(r.is_err());
    assert_eq!(
        take_log(),
        ["drop tick before", "drop guard p2", "drop guard p1"]
    );
    let again = catch_unwind(AssertUnwindSafe(|| poll_n(t.as_mut(), 1)));
    assert!(again.is_err(), "polling a panicked task must panic");
    drop(t);
    assert_eq!(take_log(), Vec::<String>::new());
}

#[test]
fn polling_after_completion_panics() {
    let mut t = Box::pin(panics_after(1));
    assert_eq!(poll_n(t.as_mut(), 10), Some(1));
    let again = catch_unwind(AssertUnwindSafe(|| poll_n(t.as_mut(), 1)));
    assert!(again.is_err());
    take_log();
}

// ---- types, generics, composition -----------------------------------------------------

#[iomgr::task]
async fn add(a: u32, b: u32) -> u32 {
    let x = std::future::ready(a).await;
    let y = std::future::ready(b).await;
    x + y
}

#[iomgr::task]
async fn add_twice(a: u32) -> u32 {
    let first = add(a, a).await;
    add(first, 1).await
}

/// The task type is nameable: a field, a const size.
struct Holder {
    task: AddTask,
}

const ADD_SIZE: usize = std::mem::size_of::<AddTask>();

#[test]
fn tasks_are_named_types_that_await_each_other() {
    let h = Holder { task: add(2, 3) };
    assert_eq!(block_on(h.task).0, 5);
    assert_eq!(block_on(add_twice(4)).0, 9);
    const { assert!(ADD_SIZE > 0 && ADD_SIZE <= 256) };
    fn is_future<F: Future<Output = u32>>(_: &F) {}
    is_future(&add_twice(1));
}

#[iomgr::task]
async fn generic<T: Clone + PartialEq, const N: usize>(x: T, n: u32) -> Vec<T> {
    let mut v = Vec::new();
    for _ in 0..n {
        let y: T = std::future::ready(x.clone()).await;
        v.push(y);
    }
    assert!(N > 0);
    v
}

#[iomgr::task]
async fn sum_impl(items: impl IntoIterator<Item = u32>) -> u32 {
    let mut s = 0;
    for i in items {
        s += tick("i", i).await;
    }
    s
}

#[iomgr::task]
async fn count_in(haystack: &str, needle: char) -> usize {
    let mut n = 0;
    for c in haystack.chars().collect::<Vec<_>>() {
        if c == needle {
            n += std::future::ready(1).await;
        }
    }
    n
}

#[iomgr::task]
#[allow(clippy::needless_lifetimes)] // the named lifetime is what this test is about
async fn first_word<'a>(s: &'a str) -> &'a str {
    let w = s.split(' ').next().unwrap_or("");
    std::future::ready(()).await;
    w
}

#[test]
fn generics_impl_trait_and_borrowed_arguments() {
    assert_eq!(block_on(generic::<_, 2>("a", 3)).0, vec!["a"; 3]);
    assert_eq!(block_on(sum_impl(vec![1, 2, 3])).0, 6);
    take_log();
    let s = String::from("banana");
    assert_eq!(block_on(count_in(&s, 'a')).0, 3);
    assert_eq!(block_on(first_word("hello world")).0, "hello");
}

#[iomgr::task]
async fn raw_names(r#type: u32, r#match: Vec<u32>) -> u32 {
    let r#loop = tick("raw", r#type).await;
    let mut total = r#loop;
    for r#in in r#match {
        total += tick("raw in", r#in).await;
    }
    let r#type = total;
    tick("raw end", 0).await;
    r#type + r#loop
}

#[test]
fn raw_identifiers_and_shadowed_arguments() {
    assert_eq!(block_on(raw_names(2, vec![3, 4])).0, 2 + 3 + 4 + 2);
    take_log();
}

/// Tasks compile in modules that forbid `unsafe_code` and deny missing docs: the generated
/// code has no `unsafe` of its own.
#[forbid(unsafe_code)]
#[deny(missing_docs, missing_debug_implementations)]
pub mod strict {
    /// A documented task.
    #[iomgr::task(pool = 1)]
    pub async fn documented(x: u32) -> u32 {
        std::future::ready(x).await
    }
}

#[test]
fn tasks_compile_under_strict_lints() {
    assert_eq!(block_on(strict::documented(3)).0, 3);
}

#[iomgr::task]
async fn forever(n: u32) -> u32 {
    let mut i = 0;
    loop {
        i += tick("forever", 1).await;
        if i == n {
            return i * 10;
        }
    }
}

#[test]
fn a_loop_without_break_as_the_body_tail() {
    assert_eq!(block_on(forever(3)).0, 30);
    take_log();
}
