//! The frame of the loopback server benchmarks, `echo` and `http`.
//!
//! Both measure a cell (a number of connections, a message size) by running each server on a
//! fresh thread pinned to one core, under a closed-loop load from the calling thread: every
//! connection sends a request, waits for the whole response, records the round trip and sends
//! again. The load is one completion loop written directly on the `io-uring` crate (one ring,
//! one op in flight per connection), so that it is none of the contestants and costs as little
//! as we know how. After a warm-up, a timed window counts round trips and samples the server
//! thread's CPU clock at both ends; then every connection finishes its round trip and stops.
//!
//! This module is that frame: the flags both take ([`Timing`], [`select_servers`]),
//! [`run_once`] (the server thread and its CPU clock), [`run_load`] (the completion loop and
//! the timed window), [`run_cell`] (repeated runs, interleaved) and [`print_table`]. What
//! differs, the servers and the protocol a client connection speaks, stays in each binary: a
//! client connection is a [`Connection`].

use std::io;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use io_uring::{IoUring, squeue};

use crate::args::parse_flag;
use crate::machine::{CpuClock, pin_to_core};
use crate::stats::{median, micros, rotated, spread};

/// The load's ring has at least this many entries (and twice as many as connections).
const MIN_RING_ENTRIES: u32 = 256;
/// `user_data` bit set on receives (the low bits are the connection's index).
const RECV: u64 = 1 << 32;

/// How long and how often every server is measured.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Load before the timed window, unmeasured.
    pub warmup: Duration,
    /// The timed window of a run.
    pub window: Duration,
    /// Runs per cell and server.
    pub reps: usize,
}

impl Timing {
    /// `--secs F` (timed window per run, default 2), `--reps N` (runs per cell and server,
    /// default 5), `--quick` (0.3 s, one run: a smoke test, not a measurement). The warm-up is
    /// a fifth of the window, at most 0.5 s.
    pub fn from_args(args: &[String]) -> io::Result<Self> {
        let quick = args.iter().any(|a| a == "--quick");
        let secs: f64 = parse_flag(args, "--secs")?.unwrap_or(if quick { 0.3 } else { 2.0 });
        let reps: usize = parse_flag(args, "--reps")?.unwrap_or(if quick { 1 } else { 5 });
        Ok(Timing {
            warmup: Duration::from_secs_f64((secs / 5.0).min(0.5)),
            window: Duration::from_secs_f64(secs),
            reps: reps.max(1),
        })
    }
}

/// `--only NAME`: the server of `all` whose `name` is `NAME`; without the flag, all of them.
pub fn select_servers<S: Copy>(
    args: &[String],
    all: &[S],
    name: impl Fn(S) -> &'static str,
) -> io::Result<Vec<S>> {
    let Some(only) = parse_flag::<String>(args, "--only")? else {
        return Ok(all.to_vec());
    };
    if let Some(&server) = all.iter().find(|&&s| name(s) == only) {
        return Ok(vec![server]);
    }
    // "a, b or c"
    let names: Vec<&str> = all.iter().map(|&s| name(s)).collect();
    let expected = match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => names.concat(),
    };
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("--only {only}: expected {expected}"),
    ))
}

/// What one run measured.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    /// Round trips completed per second of the window.
    pub requests_per_sec: f64,
    /// Round-trip latency, median and 99th percentile.
    pub p50: Duration,
    pub p99: Duration,
    /// Server thread CPU time per request.
    pub cpu_per_request: Duration,
    /// Of a median: (max - min) / median of the runs' CPU time per request.
    pub cpu_spread: f64,
}

impl Sample {
    /// The median of each column separately.
    pub fn median_of(samples: &[Sample]) -> Sample {
        Sample {
            requests_per_sec: median(samples.iter().map(|s| s.requests_per_sec)),
            p50: median(samples.iter().map(|s| s.p50)),
            p99: median(samples.iter().map(|s| s.p99)),
            cpu_per_request: median(samples.iter().map(|s| s.cpu_per_request)),
            cpu_spread: spread(samples.iter().map(|s| micros(s.cpu_per_request))),
        }
    }
}

/// Runs every server `timing.reps` times on one cell (interleaved, in a rotating order) with
/// `run_once`, and returns each server's medians.
pub fn run_cell<S: Copy>(
    servers: &[S],
    timing: &Timing,
    mut run_once: impl FnMut(S) -> io::Result<Sample>,
) -> io::Result<Vec<(S, Sample)>> {
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); servers.len()];
    for rep in 0..timing.reps {
        for i in rotated(servers.len(), rep) {
            samples[i].push(run_once(servers[i])?);
        }
    }
    Ok(servers
        .iter()
        .copied()
        .zip(samples.iter().map(|s| Sample::median_of(s)))
        .collect())
}

/// One run: `serve` on a fresh thread named `{name}-server`, pinned to `core`, where it sends
/// its address on the channel it is given, serves, and returns once its connections have
/// closed; `load` drives it from this thread, given that address and the server thread's CPU
/// clock. Returns what `load` measured, once the server thread has finished.
pub fn run_once<F>(
    name: &str,
    core: usize,
    serve: F,
    load: impl FnOnce(SocketAddr, &CpuClock) -> io::Result<Sample>,
) -> io::Result<Sample>
where
    F: FnOnce(mpsc::Sender<SocketAddr>) -> io::Result<()> + Send + 'static,
{
    let (ready_tx, ready_rx) = mpsc::channel();
    let handle = thread::Builder::new()
        .name(format!("{name}-server"))
        .spawn(move || {
            pin_to_core(core)?;
            serve(ready_tx)
        })?;
    let clock = CpuClock::of_thread(&handle)?;
    let Ok(addr) = ready_rx.recv() else {
        return Err(server_failed(name, handle));
    };
    let sample = load(addr, &clock)?;
    handle
        .join()
        .map_err(|_| io::Error::other(format!("the {name} server panicked")))??;
    Ok(sample)
}

/// The server thread ended before reporting its address: return its error.
fn server_failed(name: &str, handle: thread::JoinHandle<io::Result<()>>) -> io::Error {
    let cause = match handle.join() {
        Ok(Err(e)) => e.to_string(),
        Ok(Ok(())) => "it returned early".to_string(),
        Err(_) => "it panicked".to_string(),
    };
    io::Error::other(format!("the {name} server did not start: {cause}"))
}

/// Prints the table of one cell: a header, then a row per server (named in a column
/// `name_width` wide) with each figure and its ratio to the first row's, and the spread of the
/// CPU time per request.
pub fn print_table(name_width: usize, rows: &[(&str, Sample)]) {
    println!(
        "{:<name_width$} {:>10} {:>6} {:>9} {:>6} {:>9} {:>6} {:>11} {:>6} {:>7}",
        "server",
        "req/s",
        "ratio",
        "p50 µs",
        "ratio",
        "p99 µs",
        "ratio",
        "CPU µs/req",
        "ratio",
        "spread"
    );
    let base = rows[0].1;
    for (name, s) in rows {
        println!(
            "{:<name_width$} {:>10.0} {:>6.2} {:>9.1} {:>6.2} {:>9.1} {:>6.2} {:>11.2} {:>6.2} {:>6.0}%",
            name,
            s.requests_per_sec,
            s.requests_per_sec / base.requests_per_sec,
            micros(s.p50),
            micros(s.p50) / micros(base.p50),
            micros(s.p99),
            micros(s.p99) / micros(base.p99),
            micros(s.cpu_per_request),
            micros(s.cpu_per_request) / micros(base.cpu_per_request),
            s.cpu_spread * 100.0,
        );
    }
}

/// The kind of a connection's op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Send,
    Recv,
}

/// What a connection does after one of its ops has completed.
pub enum Step {
    /// This op next, in the same round trip.
    Next(Op, squeue::Entry),
    /// The round trip is complete (the response has been checked).
    Done,
}

/// A client connection of the load: the protocol it speaks, one op at a time.
///
/// [`run_load`] starts every round trip with [`send`](Connection::send) and hands every
/// completion to [`advance`](Connection::advance), which says what comes next. It tags the
/// SQEs itself (their `user_data` is overwritten), times the round trips, and turns a failed
/// op or a closed connection into an error.
///
/// # Safety
///
/// Every SQE `send` and `advance` return must be an op that completes with exactly one CQE
/// (no multishot op, no zero-copy send), and may point only at memory that is `'static` or
/// owned by the connection alone, valid for the length the SQE gives. [`run_load`] for its
/// part keeps at most one op of a connection in flight, calls neither method while it is, and
/// neither moves nor drops a connection that has an op in flight (it leaks the connections
/// when it fails): so that memory stays valid, and untouched, until the op has completed.
pub unsafe trait Connection {
    /// The first op of a round trip: sending (the start of) the request.
    fn send(&self) -> squeue::Entry;

    /// `op` has completed, having moved `n` bytes (at least one): what comes next.
    fn advance(&mut self, op: Op, n: usize) -> io::Result<Step>;
}

/// Drives `conns`, connected to the server whose CPU clock is `server_cpu`, through the
/// warm-up, the timed window and a drain (every connection finishes its round trip and starts
/// no new one); returns what the window measured.
pub fn run_load<C: Connection>(
    mut conns: Vec<C>,
    timing: &Timing,
    server_cpu: &CpuClock,
) -> io::Result<Sample> {
    let entries = (2 * conns.len() as u32)
        .next_power_of_two()
        .max(MIN_RING_ENTRIES);
    let mut ring = new_ring(entries)?;
    let mut window = Window::new(timing.warmup, timing.window);
    match drive(&mut ring, &mut conns, &mut window, server_cpu) {
        // Every op has completed; dropping the connections lets the server tasks finish.
        Ok(()) => Ok(window.sample()),
        Err(e) => {
            // Ops may still be in flight: leak their buffers rather than free them under
            // the kernel.
            std::mem::forget(conns);
            Err(e)
        }
    }
}

fn new_ring(entries: u32) -> io::Result<IoUring> {
    IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(entries)
        .or_else(|_| IoUring::new(entries))
}

/// `sqe`, tagged with the index of its connection and its kind.
fn tag(sqe: squeue::Entry, index: usize, op: Op) -> squeue::Entry {
    let recv = if op == Op::Recv { RECV } else { 0 };
    sqe.user_data(index as u64 | recv)
}

/// Runs the connections through the window's phases. On success no op is in flight.
fn drive<C: Connection>(
    ring: &mut IoUring,
    conns: &mut [C],
    window: &mut Window,
    server_cpu: &CpuClock,
) -> io::Result<()> {
    let (submitter, mut sq, mut cq) = ring.split();
    // When each connection's current round trip started.
    let mut started = vec![window.started; conns.len()];
    for (i, conn) in conns.iter().enumerate() {
        // SAFETY: by the contract of `Connection`, the SQE points only at static memory or
        // memory the connection owns; `run_load` keeps the connections alive, in place, until
        // every op has completed, or leaks them.
        unsafe { sq.push(&tag(conn.send(), i, Op::Send)) }
            .map_err(|_| io::Error::other("SQ full"))?;
    }
    let mut in_flight = conns.len();
    while in_flight > 0 {
        sq.sync();
        submitter.submit_and_wait(1)?;
        cq.sync();
        let now = Instant::now();
        window.tick(now, server_cpu)?;
        for cqe in &mut cq {
            let index = (cqe.user_data() & (RECV - 1)) as usize;
            let op = if cqe.user_data() & RECV != 0 {
                Op::Recv
            } else {
                Op::Send
            };
            let n = match cqe.result() {
                r if r < 0 => return Err(io::Error::from_raw_os_error(-r)),
                0 => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "server closed",
                    ));
                }
                n => n as usize,
            };
            let conn = &mut conns[index];
            let (op, next) = match conn.advance(op, n)? {
                Step::Next(op, sqe) => (op, sqe),
                Step::Done => {
                    if window.phase == Phase::Measure {
                        window.latencies.push(now - started[index]);
                    }
                    if window.phase == Phase::Drain {
                        in_flight -= 1;
                        continue;
                    }
                    started[index] = now;
                    (Op::Send, conn.send())
                }
            };
            // SAFETY: as above; each connection has at most one op in flight (its previous
            // one has just completed) and the SQ holds twice as many entries as there are
            // connections, so it has room.
            unsafe { sq.push(&tag(next, index, op)) }.map_err(|_| io::Error::other("SQ full"))?;
        }
    }
    Ok(())
}

/// Where the run is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Warmup,
    Measure,
    /// Window over: let every connection finish its round trip, start no new one.
    Drain,
}

/// The timed window's bookkeeping.
struct Window {
    phase: Phase,
    measure_at: Instant,
    drain_at: Instant,
    started: Instant,
    elapsed: Duration,
    cpu_start: Duration,
    cpu_used: Duration,
    latencies: Vec<Duration>,
}

impl Window {
    fn new(warmup: Duration, window: Duration) -> Self {
        let now = Instant::now();
        Window {
            phase: Phase::Warmup,
            measure_at: now + warmup,
            drain_at: now + warmup + window,
            started: now,
            elapsed: Duration::ZERO,
            cpu_start: Duration::ZERO,
            cpu_used: Duration::ZERO,
            latencies: Vec::with_capacity(1 << 20),
        }
    }

    /// Moves to the next phase when its time has come.
    fn tick(&mut self, now: Instant, clock: &CpuClock) -> io::Result<()> {
        if self.phase == Phase::Warmup && now >= self.measure_at {
            self.phase = Phase::Measure;
            self.started = now;
            self.cpu_start = clock.now()?;
        } else if self.phase == Phase::Measure && now >= self.drain_at {
            self.phase = Phase::Drain;
            self.elapsed = now - self.started;
            self.cpu_used = clock.now()? - self.cpu_start;
        }
        Ok(())
    }

    fn sample(mut self) -> Sample {
        let count = self.latencies.len();
        if count == 0 {
            return Sample::default();
        }
        let p50 = percentile(&mut self.latencies, 50);
        let p99 = percentile(&mut self.latencies, 99);
        Sample {
            requests_per_sec: count as f64 / self.elapsed.as_secs_f64(),
            p50,
            p99,
            cpu_per_request: self.cpu_used / count as u32,
            cpu_spread: 0.0,
        }
    }
}

fn percentile(values: &mut [Duration], pct: usize) -> Duration {
    let rank = (values.len() * pct / 100).min(values.len() - 1);
    *values.select_nth_unstable(rank).1
}
