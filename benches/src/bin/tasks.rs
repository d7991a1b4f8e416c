//! What a task and a primitive cost: iomgr beside tokio (`current_thread` + `LocalSet`, with
//! and without its I/O driver), monoio and smol's `async-executor`, in one run, as ratios.
//!
//! | row | iomgr | peers |
//! |---|---|---|
//! | spawn + complete | `iomgr::spawn` (boxed) and `#[iomgr::task(pool = 1024)]` `.spawn()` | `spawn_local`, `monoio::spawn`, `LocalExecutor::spawn` |
//! | yield / switch | two tasks alternating `iomgr::yield_now()` | the same with each runtime's yield |
//! | promise round trip | `sync::promise`, `sync::async_promise` | `tokio::sync::oneshot` on each peer runtime |
//! | local ping-pong | `sync::chan` | tokio mpsc on tokio (both) and on monoio, `async-channel` on async-executor |
//! | cross-thread | `sync::async_chan` | `async-channel` and `flume` on tokio, `async-channel` on async-executor |
//! | handler (ready, pending once) | `#[iomgr::task]` | the same `async fn` |
//!
//! - **spawn + complete**: the root future spawns a batch of `BATCH` tasks, then awaits them
//!   all, and again; each task returns its argument (`black_box`ed) and the sum is checked.
//!   ns per task, spawn to join.
//! - **yield / switch**: two spawned tasks each loop on the runtime's own yield (tokio's
//!   `task::yield_now`, iomgr's `yield_now`; monoio has none and async-executor's is
//!   `futures_lite::future::yield_now`, so both get that one: wake self, return `Pending`).
//!   ns per switch: the run's time over the number of yields of both tasks.
//! - **promise round trip**: in the root future, make a pair, set it, await it (the value is
//!   there already: no task switch is measured, only the primitive).
//! - **local ping-pong**: two spawned tasks, two channels of capacity 1; one sends a number,
//!   the other sends it back plus one. ns per round trip.
//! - **cross-thread**: `PRODUCERS` plain threads (pinned to core `PRODUCER_CORE`) send to one
//!   consumer on the runtime (core `CORE`), capacity `CAPACITY`; million items per second,
//!   from the start of the producers to the last item received.
//! - **handler**: the same body compiled as a `#[iomgr::task]` and as a plain `async fn`,
//!   polled to completion directly (no runtime) with a no-op waker: one body awaits only
//!   ready futures, the other awaits futures that are pending once (`Tick`). ns per call.
//!
//! Method: every runtime is created fresh for each run (an iomgr and a monoio ring of
//! `RING_ENTRIES` entries; tokio twice: with I/O and time enabled, as a server has it, and
//! with no driver, where an idle pass of its scheduler skips the `epoll_wait` it otherwise
//! makes, which is most of its cost per yield), runs a warm-up of a tenth of the work, then
//! the timed work. Each row's contestants run in turn,
//! the order rotated from one repetition to the next so that background load hits all alike;
//! the median of the repetitions is printed with its spread ((max - min) / median) and the
//! fastest run. Many short runs rather than a few long ones: on a shared machine the
//! interference comes and goes, and short interleaved runs let every contestant see the same
//! mix of it. The benchmark thread is pinned to core `CORE`.
//!
//! Every row but the cross-thread one runs on the benchmark thread alone, so its figure is
//! that thread's **CPU time** (`CLOCK_THREAD_CPUTIME_ID`) per operation: time the thread spends
//! preempted by other work on a shared machine is not counted (the wall-clock median is
//! printed beside it; on an idle machine the two agree). The cross-thread row is read from
//! the wall clock (the consumer thread's CPU time per item is printed beside it).
//!
//! A ratio is **peer / iomgr**, per operation: above 1 iomgr is faster. In the handler rows
//! the "peer" is the plain `async fn`, so the ratio is async fn / task (1: equal; task /
//! async fn is its inverse). The closing summary sets each iomgr variant against its fastest
//! peer, by the medians and by the fastest runs.
//!
//! ioManager's published figures (C++20 on Windows, i5-9300HF) are printed in the spawn and
//! switch rows for reference: they were not measured here, on other hardware.
//!
//! ```text
//! cd benches && cargo run --release --bin tasks                 # 15 runs per cell, about a minute
//! cd benches && cargo run --release --bin tasks -- --quick      # 5 shorter runs, about 10 s
//! cd benches && cargo run --release --bin tasks -- --reps 11 --scale 2 --row spawn --impl iomgr
//! ```
//!
//! `--reps N` repetitions; `--scale F` multiplies the work per run; `--row WORD` keeps the
//! rows whose key contains it (`spawn`, `switch`, `promise`, `ping-pong`, `cross-thread`,
//! `handler-ready`, `handler-pending`); `--impl WORD` keeps the contestants whose name
//! starts with it or whose description contains it (to profile one: `--impl iomgr`,
//! `--impl pool`); `--samples` prints every run's figure, sorted.

use std::cell::Cell;
use std::future::{Future, ready};
use std::hint::black_box;
use std::io;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use iomgr_benches::args::parse_flag;
use iomgr_benches::machine::{load_average, pin_to_core, thread_cpu_time};
use iomgr_benches::stats::rotated;

/// Core of the benchmark thread (runtimes and consumers).
const CORE: usize = 1;
/// Core of the producer threads of the cross-thread row.
const PRODUCER_CORE: usize = 0;
/// Ring entries of the iomgr and monoio runtimes (monoio's minimum).
const RING_ENTRIES: u32 = 256;
/// Tasks spawned before the first is awaited, in the spawn row.
const BATCH: usize = 256;
/// Producer threads, cross-thread.
const PRODUCERS: u64 = 2;
/// Channel capacity, cross-thread.
const CAPACITY: usize = 1024;

/// Work per run at `--scale 1`, per row (the full mode runs half of it, `--quick` a quarter).
const SPAWNS: u64 = 512 * 1024;
const SWITCHES: u64 = 1 << 21;
const PROMISES: u64 = 1 << 21;
const PINGS: u64 = 1 << 18;
const ITEMS: u64 = 1 << 19;
const CALLS: u64 = 1 << 22;

/// ioManager's published figures, ns (not measured here).
const IOMANAGER_CREATE_NS: f64 = 195.0;
const IOMANAGER_SWITCH_NS: f64 = 94.0;

fn main() -> io::Result<()> {
    let config = Config::from_args()?;
    pin_to_core(CORE)?;
    let rows: Vec<Row> = rows()
        .into_iter()
        .filter(|r| {
            config
                .row
                .as_ref()
                .is_none_or(|w| r.key.contains(w.as_str()))
        })
        .map(|mut r| {
            if let Some(w) = &config.imp {
                r.ours.retain(|c| c.matches(w));
                r.peers.retain(|c| c.matches(w));
            }
            r
        })
        .filter(|r| !r.ours.is_empty() || !r.peers.is_empty())
        .collect();
    println!(
        "iomgr tasks and primitives beside tokio (current_thread + LocalSet; \"no I/O\": without \
         its drivers), monoio and async-executor\nmedian of {} run(s) per cell, order rotated between runs; spread = \
         (max - min) / median; ratio = peer / iomgr per operation (> 1: iomgr faster)",
        config.reps
    );
    println!("load average before: {}", load_average());
    let mut summary = Vec::new();
    for row in &rows {
        let results = measure_row(row, &config);
        print_row(row, &results, &mut summary);
    }
    print_summary(&summary);
    println!("\nload average after: {}", load_average());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

struct Config {
    reps: usize,
    scale: f64,
    row: Option<String>,
    imp: Option<String>,
    /// Print every run's figure, not only the median.
    samples: bool,
}

impl Config {
    fn from_args() -> io::Result<Self> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let quick = args.iter().any(|a| a == "--quick");
        let reps: usize = parse_flag(&args, "--reps")?.unwrap_or(if quick { 5 } else { 15 });
        let scale: f64 = parse_flag(&args, "--scale")?.unwrap_or(if quick { 0.25 } else { 0.5 });
        if scale.is_nan() || scale <= 0.0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "--scale must be positive",
            ));
        }
        Ok(Config {
            reps: reps.max(1),
            scale,
            row: parse_flag(&args, "--row")?,
            imp: parse_flag(&args, "--impl")?,
            samples: args.iter().any(|a| a == "--samples"),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Rows, contestants, measurement, printing
// ---------------------------------------------------------------------------------------------

/// One implementation in a row: runs `ops` operations (after its own warm-up) and returns how
/// long the timed part took.
struct Contestant {
    who: &'static str,
    what: &'static str,
    /// Heads this variant's ratio column, when a row has several iomgr variants.
    tag: &'static str,
    run: fn(u64) -> Sample,
}

impl Contestant {
    /// Whether `--impl word` selects it: its name starts with `word`, or its description
    /// contains it.
    fn matches(&self, word: &str) -> bool {
        self.who.starts_with(word) || self.what.contains(word)
    }
}

/// How a row's figure is shown.
#[derive(Clone, Copy)]
enum Unit {
    /// Nanoseconds per operation; the label names the operation.
    Ns(&'static str),
    /// Million operations per second.
    Rate,
}

/// A published figure printed beside the measured ones.
struct Reference {
    who: &'static str,
    what: &'static str,
    ns: f64,
}

/// Which clock a row's figure is read from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Clock {
    /// CPU time of the benchmark thread: the whole row runs on it, and time it spends
    /// preempted by other work on the machine is not counted.
    Cpu,
    /// Wall-clock time: the row uses several threads.
    Wall,
}

struct Row {
    key: &'static str,
    title: String,
    unit: Unit,
    clock: Clock,
    ops: u64,
    /// iomgr's variants; every peer gets a ratio against each.
    ours: Vec<Contestant>,
    peers: Vec<Contestant>,
    reference: Option<Reference>,
}

fn c(who: &'static str, what: &'static str, run: fn(u64) -> Sample) -> Contestant {
    Contestant {
        who,
        what,
        tag: "ratio",
        run,
    }
}

/// An iomgr variant in a row that has several.
fn v(tag: &'static str, what: &'static str, run: fn(u64) -> Sample) -> Contestant {
    Contestant {
        who: "iomgr",
        what,
        tag,
        run,
    }
}

/// The peers of a row that runs the same generic workload on every peer runtime: `$run::<R>`
/// on tokio, with and without its drivers (both described as `$tokio`), on monoio (`$monoio`)
/// and on async-executor (`$smol`).
macro_rules! on_peer_runtimes {
    ($($run:ident)::+, $tokio:expr, $monoio:expr, $smol:expr) => {
        vec![
            c("tokio", $tokio, $($run)::+::<Tokio>),
            c("tokio, no I/O", $tokio, $($run)::+::<TokioNoDrivers>),
            c("monoio", $monoio, $($run)::+::<Monoio>),
            c("async-executor", $smol, $($run)::+::<Smol>),
        ]
    };
}

fn rows() -> Vec<Row> {
    vec![
        Row {
            key: "spawn",
            title: format!("spawn + complete (spawn {BATCH}, then await the {BATCH})"),
            unit: Unit::Ns("ns/task"),
            clock: Clock::Cpu,
            ops: SPAWNS,
            ours: vec![
                v("/boxed", "iomgr::spawn (boxed)", spawn::boxed::<Iomgr>),
                v("/pool", "#[task(pool = 1024)] .spawn()", spawn::pooled),
            ],
            peers: on_peer_runtimes!(
                spawn::boxed,
                "task::spawn_local",
                "monoio::spawn",
                "LocalExecutor::spawn"
            ),
            reference: Some(Reference {
                who: "ioManager",
                what: "create a coroutine, published",
                ns: IOMANAGER_CREATE_NS,
            }),
        },
        Row {
            key: "switch",
            title: "yield / switch (two tasks alternating yields)".to_string(),
            unit: Unit::Ns("ns/switch"),
            clock: Clock::Cpu,
            ops: SWITCHES,
            ours: vec![c("iomgr", "iomgr::yield_now", switch::run::<Iomgr>)],
            peers: on_peer_runtimes!(
                switch::run,
                "task::yield_now",
                "futures_lite yield_now",
                "futures_lite yield_now"
            ),
            reference: Some(Reference {
                who: "ioManager",
                what: "switch, published",
                ns: IOMANAGER_SWITCH_NS,
            }),
        },
        Row {
            key: "promise",
            title: "promise round trip (make a pair, set, await)".to_string(),
            unit: Unit::Ns("ns/trip"),
            clock: Clock::Cpu,
            ops: PROMISES,
            ours: vec![
                v("/promise", "sync::promise", promise::iomgr),
                v("/async_p", "sync::async_promise", promise::iomgr_async),
            ],
            peers: on_peer_runtimes!(
                promise::oneshot,
                "tokio oneshot",
                "tokio oneshot",
                "tokio oneshot"
            ),
            reference: None,
        },
        Row {
            key: "ping-pong",
            title: "local channel ping-pong between two tasks, capacity 1".to_string(),
            unit: Unit::Ns("ns/trip"),
            clock: Clock::Cpu,
            ops: PINGS,
            ours: vec![c("iomgr", "sync::chan", ping_pong::run::<Iomgr, IomgrChan>)],
            peers: vec![
                c("tokio", "tokio mpsc", ping_pong::run::<Tokio, TokioMpsc>),
                c(
                    "tokio, no I/O",
                    "tokio mpsc",
                    ping_pong::run::<TokioNoDrivers, TokioMpsc>,
                ),
                c("monoio", "tokio mpsc", ping_pong::run::<Monoio, TokioMpsc>),
                c(
                    "async-executor",
                    "async-channel",
                    ping_pong::run::<Smol, AsyncChannel>,
                ),
            ],
            reference: None,
        },
        Row {
            key: "cross-thread",
            title: format!(
                "cross-thread channel, {PRODUCERS} producer threads -> 1 consumer task, \
                 capacity {CAPACITY}"
            ),
            unit: Unit::Rate,
            clock: Clock::Wall,
            ops: ITEMS,
            ours: vec![c(
                "iomgr",
                "sync::async_chan",
                cross_thread::run::<Iomgr, IomgrAsyncChan>,
            )],
            peers: vec![
                c(
                    "tokio",
                    "async-channel",
                    cross_thread::run::<Tokio, AsyncChannel>,
                ),
                c("tokio", "flume", cross_thread::run::<Tokio, Flume>),
                c(
                    "async-executor",
                    "async-channel",
                    cross_thread::run::<Smol, AsyncChannel>,
                ),
            ],
            reference: None,
        },
        Row {
            key: "handler-ready",
            title: "handler awaiting ready futures, polled to completion with a no-op waker \
                    (no runtime)"
                .to_string(),
            unit: Unit::Ns("ns/call"),
            clock: Clock::Cpu,
            ops: CALLS,
            ours: vec![c("iomgr", "#[iomgr::task]", handler::task_ready)],
            peers: vec![c("async fn", "the same async fn", handler::plain_ready)],
            reference: None,
        },
        Row {
            key: "handler-pending",
            title: "handler awaiting futures pending once, polled to completion with a no-op \
                    waker (no runtime)"
                .to_string(),
            unit: Unit::Ns("ns/call"),
            clock: Clock::Cpu,
            ops: CALLS,
            ours: vec![c("iomgr", "#[iomgr::task]", handler::task_pending)],
            peers: vec![c("async fn", "the same async fn", handler::plain_pending)],
            reference: None,
        },
    ]
}

/// One contestant's runs, per operation: the median by the row's clock, its spread
/// ((max - min) / median), the fastest run, and the median by the other clock.
#[derive(Clone, Copy)]
struct Stat {
    ns: f64,
    spread: f64,
    /// The fastest run (by the row's clock).
    best_ns: f64,
    other_ns: f64,
}

/// Runs every contestant of `row` `config.reps` times, rotating the order.
fn measure_row(row: &Row, config: &Config) -> Vec<Stat> {
    let all: Vec<&Contestant> = row.ours.iter().chain(&row.peers).collect();
    let ops = ((row.ops as f64 * config.scale) as u64).max(100);
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); all.len()];
    for rep in 0..config.reps {
        for i in rotated(all.len(), rep) {
            samples[i].push((all[i].run)(ops));
        }
    }
    let per_op = |d: Duration| d.as_nanos() as f64 / ops as f64;
    samples
        .iter()
        .map(|s| {
            let wall: Vec<f64> = s.iter().map(|x| per_op(x.wall)).collect();
            let cpu: Vec<f64> = s.iter().map(|x| per_op(x.cpu)).collect();
            let (main, other) = match row.clock {
                Clock::Cpu => (cpu, wall),
                Clock::Wall => (wall, cpu),
            };
            if config.samples {
                let mut sorted = main.clone();
                sorted.sort_by(|a, b| a.partial_cmp(b).expect("no NaN in samples"));
                let runs: Vec<String> = sorted.iter().map(|x| format!("{x:.1}")).collect();
                println!("  runs, ns/op: {}", runs.join(" "));
            }
            let ns = median(&main);
            let max = main.iter().copied().fold(f64::MIN, f64::max);
            let min = main.iter().copied().fold(f64::MAX, f64::min);
            Stat {
                ns,
                spread: (max - min) / ns,
                best_ns: min,
                other_ns: median(&other),
            }
        })
        .collect()
}

/// The median proper: of an even count, the mean of the two middle values (where
/// `iomgr_benches::stats::median` takes the upper one).
fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN in samples"));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn figure(unit: Unit, ns: f64) -> String {
    match unit {
        Unit::Ns(_) => format!("{ns:.1}"),
        Unit::Rate => format!("{:.2}", 1e3 / ns),
    }
}

/// One line of the closing summary: an iomgr variant against its fastest peer.
struct Verdict {
    row: &'static str,
    ours: &'static str,
    ns: f64,
    unit: Unit,
    best_peer: String,
    ratio: f64,
    /// The same ratio from the fastest runs.
    best_ratio: f64,
}

fn print_row(row: &Row, stats: &[Stat], summary: &mut Vec<Verdict>) {
    let (unit_label, other_label) = match (row.unit, row.clock) {
        (Unit::Ns(label), Clock::Cpu) => (label, "wall"),
        (Unit::Ns(label), Clock::Wall) => (label, "CPU"),
        (Unit::Rate, _) => ("M items/s", "CPU ns/item"),
    };
    let (ours, peers) = stats.split_at(row.ours.len());
    println!("\n{}", row.title);
    let mut header = format!(
        "  {:<16} {:<30} {:>10} {:>7} {:>9} {:>11}",
        "", "", unit_label, "spread", "best", other_label
    );
    for c in &row.ours {
        header += &format!(" {:>9}", c.tag);
    }
    println!("{header}");
    let ratios = |ns: f64| -> String {
        ours.iter()
            .map(|o| format!(" {:>9.2}", ns / o.ns))
            .collect::<String>()
    };
    let line = |who: &str, what: &str, s: &Stat, ratios: String| {
        println!(
            "  {:<16} {:<30} {:>10} {:>6.0}% {:>9} {:>11.1}{ratios}",
            who,
            what,
            figure(row.unit, s.ns),
            s.spread * 100.0,
            figure(row.unit, s.best_ns),
            s.other_ns,
        );
    };
    for (c, s) in row.ours.iter().zip(ours) {
        line(c.who, c.what, s, String::new());
    }
    for (c, s) in row.peers.iter().zip(peers) {
        line(c.who, c.what, s, ratios(s.ns));
    }
    if let Some(r) = &row.reference {
        println!(
            "  {:<16} {:<30} {:>10} {:>7} {:>9} {:>11}{}",
            r.who,
            r.what,
            figure(row.unit, r.ns),
            "-",
            "-",
            "-",
            ratios(r.ns)
        );
    }
    for (c, s) in row.ours.iter().zip(ours) {
        let Some((best, best_stat)) = row
            .peers
            .iter()
            .zip(peers)
            .min_by(|a, b| a.1.ns.partial_cmp(&b.1.ns).expect("no NaN"))
        else {
            continue;
        };
        summary.push(Verdict {
            row: row.key,
            ours: c.what,
            ns: s.ns,
            unit: row.unit,
            best_peer: format!("{} ({})", best.who, best.what),
            ratio: best_stat.ns / s.ns,
            best_ratio: row
                .peers
                .iter()
                .zip(peers)
                .map(|(_, p)| p.best_ns)
                .fold(f64::MAX, f64::min)
                / s.best_ns,
        });
    }
}

/// Ratios within `EVEN` of 1 are called even: the spreads are wider than that.
const EVEN: f64 = 0.03;

/// iomgr leads (or trails) when the medians and the fastest runs both say so.
fn verdict(median: f64, best: f64) -> &'static str {
    let side = |r: f64| {
        if r > 1.0 + EVEN {
            1
        } else if r < 1.0 - EVEN {
            -1
        } else {
            0
        }
    };
    match (side(median), side(best)) {
        (1, 1) => "leads",
        (-1, -1) => "trails",
        (0, 0) => "even",
        _ => "unclear",
    }
}

fn print_summary(summary: &[Verdict]) {
    if summary.is_empty() {
        return;
    }
    println!(
        "\nsummary: each iomgr variant against its fastest peer (ratio > 1: iomgr faster; \
         within {:.0} % of 1: even; unclear when the medians and the fastest runs disagree)",
        EVEN * 100.0
    );
    println!(
        "  {:<15} {:<30} {:>16}  {:<40} {:>6} {:>6}",
        "row", "iomgr", "median", "fastest peer", "ratio", "best"
    );
    for v in summary {
        let unit = match v.unit {
            Unit::Ns(label) => label,
            Unit::Rate => "M/s",
        };
        println!(
            "  {:<15} {:<30} {:>16}  {:<40} {:>6.2} {:>6.2}  {}",
            v.row,
            v.ours,
            format!("{} {unit}", figure(v.unit, v.ns)),
            v.best_peer,
            v.ratio,
            v.best_ratio,
            verdict(v.ratio, v.best_ratio)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The runtimes, behind one small interface
// ---------------------------------------------------------------------------------------------

/// What the generic workloads need of a runtime.
trait Rt: 'static {
    /// Runs `future` to completion on a fresh runtime on this thread.
    fn block_on<F: Future>(future: F) -> F::Output;
    /// Spawns a task; the handle resolves to the task's output.
    fn spawn<F>(future: F) -> impl Future<Output = F::Output> + Unpin + 'static
    where
        F: Future + 'static,
        F::Output: 'static;
    /// The runtime's own yield.
    fn yield_now() -> impl Future<Output = ()>;
}

/// A join handle whose output is a `Result` that must be `Ok`.
struct Unwrapped<H>(H);

impl<T, E: std::fmt::Debug, H: Future<Output = Result<T, E>> + Unpin> Future for Unwrapped<H> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.expect("the task finished"))
    }
}

struct Iomgr;

impl Rt for Iomgr {
    fn block_on<F: Future>(future: F) -> F::Output {
        let rt = iomgr::Runtime::builder()
            .entries(RING_ENTRIES)
            .build()
            .expect("an iomgr runtime");
        rt.block_on(future)
    }
    fn spawn<F>(future: F) -> impl Future<Output = F::Output> + Unpin + 'static
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        Unwrapped(iomgr::spawn(future))
    }
    fn yield_now() -> impl Future<Output = ()> {
        iomgr::yield_now()
    }
}

struct Tokio;

impl Rt for Tokio {
    fn block_on<F: Future>(future: F) -> F::Output {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        tokio::task::LocalSet::new().block_on(&rt, future)
    }
    fn spawn<F>(future: F) -> impl Future<Output = F::Output> + Unpin + 'static
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        Unwrapped(tokio::task::spawn_local(future))
    }
    fn yield_now() -> impl Future<Output = ()> {
        tokio::task::yield_now()
    }
}

/// tokio as a compute-only program has it: no I/O or time driver, so an idle pass of its
/// scheduler does not poll epoll.
struct TokioNoDrivers;

impl Rt for TokioNoDrivers {
    fn block_on<F: Future>(future: F) -> F::Output {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a tokio runtime");
        tokio::task::LocalSet::new().block_on(&rt, future)
    }
    fn spawn<F>(future: F) -> impl Future<Output = F::Output> + Unpin + 'static
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        Tokio::spawn(future)
    }
    fn yield_now() -> impl Future<Output = ()> {
        Tokio::yield_now()
    }
}

struct Monoio;

impl Rt for Monoio {
    fn block_on<F: Future>(future: F) -> F::Output {
        monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .with_entries(RING_ENTRIES)
            .build()
            .expect("a monoio runtime")
            .block_on(future)
    }
    fn spawn<F>(future: F) -> impl Future<Output = F::Output> + Unpin + 'static
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        monoio::spawn(future)
    }
    fn yield_now() -> impl Future<Output = ()> {
        futures_lite::future::yield_now()
    }
}

/// smol's executor: a thread-local `LocalExecutor` (as `smol::spawn` uses a global one), run
/// by `futures_lite::future::block_on`.
struct Smol;

thread_local! {
    static SMOL: async_executor::LocalExecutor<'static> =
        const { async_executor::LocalExecutor::new() };
}

impl Rt for Smol {
    fn block_on<F: Future>(future: F) -> F::Output {
        SMOL.with(|ex| futures_lite::future::block_on(ex.run(future)))
    }
    fn spawn<F>(future: F) -> impl Future<Output = F::Output> + Unpin + 'static
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        SMOL.with(|ex| ex.spawn(future))
    }
    fn yield_now() -> impl Future<Output = ()> {
        futures_lite::future::yield_now()
    }
}

/// Runs `work(warm-up)` then times `work(ops)`, on a fresh `R`.
fn timed<R: Rt, W, F>(ops: u64, work: W) -> Sample
where
    W: Fn(u64) -> F,
    F: Future<Output = ()>,
{
    R::block_on(async {
        work((ops / 10).max(1)).await;
        let watch = Stopwatch::start();
        work(ops).await;
        watch.stop()
    })
}

// ---------------------------------------------------------------------------------------------
// Workloads
// ---------------------------------------------------------------------------------------------

mod spawn {
    use super::*;

    /// The task body of the spawn row, for every runtime.
    async fn ident(x: u64) -> u64 {
        black_box(x)
    }

    /// The same body as a pooled iomgr task.
    #[iomgr::task(pool = 1024)]
    async fn pooled_ident(x: u64) -> u64 {
        black_box(x)
    }

    fn expected(ops: u64) -> u64 {
        (0..ops).sum()
    }

    pub(super) fn boxed<R: Rt>(ops: u64) -> Sample {
        timed::<R, _, _>(ops, |n| async move {
            let mut handles = Vec::with_capacity(BATCH);
            let mut sum = 0;
            let mut i = 0;
            while i < n {
                let k = (n - i).min(BATCH as u64);
                for j in i..i + k {
                    handles.push(R::spawn(ident(j)));
                }
                for h in handles.drain(..) {
                    sum += h.await;
                }
                i += k;
            }
            assert_eq!(sum, expected(n));
        })
    }

    pub(super) fn pooled(ops: u64) -> Sample {
        timed::<Iomgr, _, _>(ops, |n| async move {
            let mut handles = Vec::with_capacity(BATCH);
            let mut sum = 0;
            let mut i = 0;
            while i < n {
                let k = (n - i).min(BATCH as u64);
                for j in i..i + k {
                    handles.push(pooled_ident(j).spawn().expect("a free slot"));
                }
                for h in handles.drain(..) {
                    sum += h.await.expect("the task finished");
                }
                i += k;
            }
            assert_eq!(sum, expected(n));
        })
    }
}

mod switch {
    use super::*;

    async fn yielder<R: Rt>(n: u64) {
        for _ in 0..n {
            R::yield_now().await;
            YIELDS.with(|c| c.set(c.get() + 1));
        }
    }

    thread_local! {
        static YIELDS: Cell<u64> = const { Cell::new(0) };
    }

    /// `ops` switches: two tasks of `ops / 2` yields each.
    pub(super) fn run<R: Rt>(ops: u64) -> Sample {
        timed::<R, _, _>(ops, |n| async move {
            YIELDS.with(|c| c.set(0));
            let a = R::spawn(yielder::<R>(n / 2));
            let b = R::spawn(yielder::<R>(n - n / 2));
            a.await;
            b.await;
            assert_eq!(YIELDS.with(Cell::get), n);
        })
    }
}

mod promise {
    use super::*;

    fn expected(n: u64) -> u64 {
        (0..n).sum()
    }

    pub(super) fn iomgr(ops: u64) -> Sample {
        timed::<Iomgr, _, _>(ops, |n| async move {
            let mut sum = 0;
            for i in 0..n {
                let (fut, p) = iomgr::sync::promise::<u64>();
                p.set(black_box(i)).expect("the future is alive");
                sum += fut.await.expect("the promise was set");
            }
            assert_eq!(sum, expected(n));
        })
    }

    pub(super) fn iomgr_async(ops: u64) -> Sample {
        timed::<Iomgr, _, _>(ops, |n| async move {
            let mut sum = 0;
            for i in 0..n {
                let (fut, p) = iomgr::sync::async_promise::<u64>();
                p.set(black_box(i)).expect("the future is alive");
                sum += fut.await.expect("the promise was set");
            }
            assert_eq!(sum, expected(n));
        })
    }

    pub(super) fn oneshot<R: Rt>(ops: u64) -> Sample {
        timed::<R, _, _>(ops, |n| async move {
            let mut sum = 0;
            for i in 0..n {
                let (tx, rx) = tokio::sync::oneshot::channel::<u64>();
                tx.send(black_box(i)).expect("the receiver is alive");
                sum += rx.await.expect("the value was sent");
            }
            assert_eq!(sum, expected(n));
        })
    }
}

/// A local channel of `u64`s, as the ping-pong row uses it.
trait LocalChan: 'static {
    type Tx: 'static;
    type Rx: 'static;
    fn pair(capacity: usize) -> (Self::Tx, Self::Rx);
    async fn send(tx: &Self::Tx, v: u64);
    async fn recv(rx: &mut Self::Rx) -> Option<u64>;
}

struct IomgrChan;

impl LocalChan for IomgrChan {
    type Tx = iomgr::sync::Sender<u64>;
    type Rx = iomgr::sync::Receiver<u64>;
    fn pair(capacity: usize) -> (Self::Tx, Self::Rx) {
        iomgr::sync::chan(capacity)
    }
    async fn send(tx: &Self::Tx, v: u64) {
        tx.send(v).await.expect("the receiver is alive");
    }
    async fn recv(rx: &mut Self::Rx) -> Option<u64> {
        rx.recv().await
    }
}

struct TokioMpsc;

impl LocalChan for TokioMpsc {
    type Tx = tokio::sync::mpsc::Sender<u64>;
    type Rx = tokio::sync::mpsc::Receiver<u64>;
    fn pair(capacity: usize) -> (Self::Tx, Self::Rx) {
        tokio::sync::mpsc::channel(capacity)
    }
    async fn send(tx: &Self::Tx, v: u64) {
        tx.send(v).await.expect("the receiver is alive");
    }
    async fn recv(rx: &mut Self::Rx) -> Option<u64> {
        rx.recv().await
    }
}

struct AsyncChannel;

impl LocalChan for AsyncChannel {
    type Tx = async_channel::Sender<u64>;
    type Rx = async_channel::Receiver<u64>;
    fn pair(capacity: usize) -> (Self::Tx, Self::Rx) {
        async_channel::bounded(capacity)
    }
    async fn send(tx: &Self::Tx, v: u64) {
        tx.send(v).await.expect("the receiver is alive");
    }
    async fn recv(rx: &mut Self::Rx) -> Option<u64> {
        rx.recv().await.ok()
    }
}

mod ping_pong {
    use super::*;

    /// `ops` round trips between two spawned tasks.
    pub(super) fn run<R: Rt, C: LocalChan>(ops: u64) -> Sample {
        timed::<R, _, _>(ops, |n| async move {
            let (ping_tx, mut ping_rx) = C::pair(1);
            let (pong_tx, mut pong_rx) = C::pair(1);
            let echo = R::spawn(async move {
                while let Some(v) = C::recv(&mut ping_rx).await {
                    C::send(&pong_tx, v + 1).await;
                }
            });
            let pinger = R::spawn(async move {
                let mut v = 0;
                for _ in 0..n {
                    C::send(&ping_tx, v).await;
                    v = C::recv(&mut pong_rx).await.expect("the echo task is alive");
                }
                v
            });
            assert_eq!(pinger.await, n);
            echo.await;
        })
    }
}

/// A channel of `u64`s from plain threads to a task, as the cross-thread row uses it.
trait CrossChan: 'static {
    type Tx: Clone + Send + 'static;
    type Rx: 'static;
    fn pair(capacity: usize) -> (Self::Tx, Self::Rx);
    fn send_blocking(tx: &Self::Tx, v: u64);
    async fn recv(rx: &Self::Rx) -> Option<u64>;
}

struct IomgrAsyncChan;

impl CrossChan for IomgrAsyncChan {
    type Tx = iomgr::sync::AsyncSender<u64>;
    type Rx = iomgr::sync::AsyncReceiver<u64>;
    fn pair(capacity: usize) -> (Self::Tx, Self::Rx) {
        iomgr::sync::async_chan(capacity)
    }
    fn send_blocking(tx: &Self::Tx, v: u64) {
        tx.send_blocking(v).expect("the receiver is alive");
    }
    async fn recv(rx: &Self::Rx) -> Option<u64> {
        rx.recv().await
    }
}

impl CrossChan for AsyncChannel {
    type Tx = async_channel::Sender<u64>;
    type Rx = async_channel::Receiver<u64>;
    fn pair(capacity: usize) -> (Self::Tx, Self::Rx) {
        async_channel::bounded(capacity)
    }
    fn send_blocking(tx: &Self::Tx, v: u64) {
        tx.send_blocking(v).expect("the receiver is alive");
    }
    async fn recv(rx: &Self::Rx) -> Option<u64> {
        rx.recv().await.ok()
    }
}

struct Flume;

impl CrossChan for Flume {
    type Tx = flume::Sender<u64>;
    type Rx = flume::Receiver<u64>;
    fn pair(capacity: usize) -> (Self::Tx, Self::Rx) {
        flume::bounded(capacity)
    }
    fn send_blocking(tx: &Self::Tx, v: u64) {
        tx.send(v).expect("the receiver is alive");
    }
    async fn recv(rx: &Self::Rx) -> Option<u64> {
        rx.recv_async().await.ok()
    }
}

mod cross_thread {
    use super::*;

    /// `ops` items in all, from `PRODUCERS` threads, to a consumer in the root future.
    pub(super) fn run<R: Rt, C: CrossChan>(ops: u64) -> Sample {
        timed::<R, _, _>(ops, |n| async move {
            let per_producer = n / PRODUCERS;
            let (tx, rx) = C::pair(CAPACITY);
            let producers: Vec<_> = (0..PRODUCERS)
                .map(|_| {
                    let tx = tx.clone();
                    thread::spawn(move || {
                        pin_to_core(PRODUCER_CORE).expect("pinning a producer");
                        for i in 0..per_producer {
                            C::send_blocking(&tx, i);
                        }
                    })
                })
                .collect();
            drop(tx);
            let mut sum = 0;
            while let Some(v) = C::recv(&rx).await {
                sum += v;
            }
            for p in producers {
                p.join().expect("a producer panicked");
            }
            assert_eq!(sum, PRODUCERS * (0..per_producer).sum::<u64>());
        })
    }
}

mod handler {
    use super::*;

    /// A future that is pending once (waking its waker), then ready with its value.
    pub(super) struct Tick {
        value: u64,
        ticked: bool,
    }

    fn tick(value: u64) -> Tick {
        Tick {
            value,
            ticked: false,
        }
    }

    impl Future for Tick {
        type Output = u64;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u64> {
            if self.ticked {
                return Poll::Ready(self.value);
            }
            self.ticked = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    /// The same body twice, once as a task and once as a plain `async fn`.
    macro_rules! twins {
        ($task:ident, $plain:ident, $x:ident, $await_on:ident) => {
            #[iomgr::task]
            async fn $task($x: u64) -> u64 {
                let a = $await_on($x).await;
                let b = $await_on(a.wrapping_mul(0x9e37_79b9_7f4a_7c15)).await;
                let c = $await_on(b ^ (b >> 29)).await;
                $await_on(c.wrapping_add($x)).await
            }

            async fn $plain($x: u64) -> u64 {
                let a = $await_on($x).await;
                let b = $await_on(a.wrapping_mul(0x9e37_79b9_7f4a_7c15)).await;
                let c = $await_on(b ^ (b >> 29)).await;
                $await_on(c.wrapping_add($x)).await
            }
        };
    }

    twins!(handle_ready, handle_ready_fn, x, ready);
    twins!(handle_pending, handle_pending_fn, x, tick);

    /// What both bodies compute, without futures.
    fn expected(n: u64) -> u64 {
        (0..n).fold(0u64, |sum, x| {
            let b = x.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            sum.wrapping_add((b ^ (b >> 29)).wrapping_add(x))
        })
    }

    /// Polls `future` until it is ready, with a waker that does nothing.
    fn run_to_completion<F: Future>(future: F) -> F::Output {
        let mut future = pin!(future);
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    fn calls<F: Future<Output = u64>>(ops: u64, handler: fn(u64) -> F) -> Sample {
        let run = |n: u64| {
            let mut sum = 0u64;
            for i in 0..n {
                sum = sum.wrapping_add(run_to_completion(handler(black_box(i))));
            }
            assert_eq!(black_box(sum), expected(n));
        };
        run((ops / 10).max(1));
        let watch = Stopwatch::start();
        run(ops);
        watch.stop()
    }

    pub(super) fn task_ready(ops: u64) -> Sample {
        calls(ops, handle_ready)
    }
    pub(super) fn task_pending(ops: u64) -> Sample {
        calls(ops, handle_pending)
    }
    pub(super) fn plain_ready(ops: u64) -> Sample {
        calls(ops, handle_ready_fn)
    }
    pub(super) fn plain_pending(ops: u64) -> Sample {
        calls(ops, handle_pending_fn)
    }
}

// ---------------------------------------------------------------------------------------------
// The machine
// ---------------------------------------------------------------------------------------------

/// What one timed run took: wall-clock time, and the CPU time of the benchmark thread.
#[derive(Clone, Copy)]
struct Sample {
    wall: Duration,
    cpu: Duration,
}

struct Stopwatch {
    wall: Instant,
    cpu: Duration,
}

impl Stopwatch {
    fn start() -> Self {
        Stopwatch {
            wall: Instant::now(),
            cpu: thread_cpu_time(),
        }
    }

    fn stop(&self) -> Sample {
        Sample {
            cpu: thread_cpu_time() - self.cpu,
            wall: self.wall.elapsed(),
        }
    }
}
