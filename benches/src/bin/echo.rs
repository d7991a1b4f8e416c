//! Ping-pong TCP echo: iomgr beside tokio (`current_thread`) and monoio, under one load.
//!
//! For every cell (1, 16 and 256 connections × 64 B and 4 KiB messages) and every server, a
//! fresh server thread pinned to core 0 starts a fresh runtime, binds `127.0.0.1:0`, accepts
//! exactly as many connections as the cell has, spawns one task per connection (read into a
//! 4 KiB buffer, then `write_all` what came in, `TCP_NODELAY` on) and returns once every
//! connection has been closed. The servers are the same program written four ways; the
//! second, `iomgr-ring`, is iomgr with a multishot accept (`incoming()`) and multishot
//! receives into one provided-buffer ring shared by every connection.
//!
//! The load generator runs on the main thread, pinned to core 1. It is one loop written
//! directly on the `io-uring` crate (one ring, one op in flight per connection): each
//! connection sends a message, waits for all of it to come back, records the round trip and
//! sends again. We chose it over an iomgr, tokio or monoio client, or a thread per
//! connection, because
//! - it is none of the contestants, so no server shares a runtime (or its bugs) with its load;
//! - it is the cheapest client we know how to write: with 256 connections, 256 blocking
//!   threads on one core would make the client's context switches, not the server, the
//!   bottleneck; a single completion loop batches everything into one `io_uring_enter`.
//!
//! After a warm-up, a timed window counts round trips and samples the server thread's CPU
//! clock (`pthread_getcpuclockid`, user + system, nanosecond resolution) at both ends. Per
//! `PRIOR_ART.md`, loopback ping-pong is mostly kernel time and noisy, so the figure to trust
//! is the server's CPU time per request; each cell is repeated (servers interleaved, in a
//! rotating order, so that background load hits them alike) and the median of each column is
//! printed, with its ratio to iomgr (the first row) and, for the CPU time, its spread
//! ((max - min) / median over the runs). Kernel work done on the server thread (its syscalls, io_uring task work, and the
//! loopback softirqs run while it sends) is part of its CPU time; io-wq helper threads are not
//! (sockets do not use them).
//!
//! ```text
//! cargo run --release --manifest-path benches/Cargo.toml --bin echo [-- --secs 2 --reps 3]
//! cargo run --release --manifest-path benches/Cargo.toml --bin echo -- --quick
//! ```

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::os::unix::thread::JoinHandleExt;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Connection counts of the cells.
const CONNECTIONS: [usize; 3] = [1, 16, 256];
/// Message sizes of the cells, in bytes.
const MESSAGE_SIZES: [usize; 2] = [64, 4096];
/// Every server reads into a buffer this large.
const SERVER_BUF: usize = 4096;
/// Ring entries for every io_uring in this benchmark (monoio's minimum).
const RING_ENTRIES: u32 = 256;
/// Core of the server threads and of the load generator.
const SERVER_CORE: usize = 0;
const LOAD_CORE: usize = 1;

fn main() -> io::Result<()> {
    let config = Config::from_args()?;
    pin_to_core(LOAD_CORE)?;
    print_header(&config);
    for &cell in &config.cells {
        let results = run_cell(cell, &config)?;
        print_cell(cell, &results);
    }
    println!("\nload average after: {}", load_average());
    Ok(())
}

/// How long and how often to measure.
struct Config {
    warmup: Duration,
    window: Duration,
    reps: usize,
    servers: Vec<Server>,
    cells: Vec<Cell>,
}

impl Config {
    /// `--secs F` (timed window per run, default 2), `--reps N` (runs per cell and server,
    /// default 5), `--quick` (0.3 s, one run: a smoke test, not a measurement), `--only NAME`
    /// (one server: `iomgr`, `iomgr-ring`, `tokio` or `monoio`), `--conns N` and `--size B` (one cell;
    /// the last three are for profiling).
    fn from_args() -> io::Result<Self> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let quick = args.iter().any(|a| a == "--quick");
        let secs: f64 = parse_flag(&args, "--secs")?.unwrap_or(if quick { 0.3 } else { 2.0 });
        let reps: usize = parse_flag(&args, "--reps")?.unwrap_or(if quick { 1 } else { 5 });
        Ok(Config {
            warmup: Duration::from_secs_f64((secs / 5.0).min(0.5)),
            window: Duration::from_secs_f64(secs),
            reps: reps.max(1),
            servers: select_servers(&args)?,
            cells: select_cells(&args)?,
        })
    }
}

/// Every server, or the one `--only` names.
fn select_servers(args: &[String]) -> io::Result<Vec<Server>> {
    let Some(only) = parse_flag::<String>(args, "--only")? else {
        return Ok(Server::ALL.to_vec());
    };
    match Server::ALL.into_iter().find(|s| s.name() == only) {
        Some(server) => Ok(vec![server]),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("--only {only}: expected iomgr, iomgr-ring, tokio or monoio"),
        )),
    }
}

/// Every cell, or those `--conns` and `--size` narrow it to.
fn select_cells(args: &[String]) -> io::Result<Vec<Cell>> {
    let conns: Option<usize> = parse_flag(args, "--conns")?;
    let size: Option<usize> = parse_flag(args, "--size")?;
    let mut cells = Vec::new();
    for c in conns.map_or(CONNECTIONS.to_vec(), |c| vec![c.max(1)]) {
        for s in size.map_or(MESSAGE_SIZES.to_vec(), |s| vec![s.max(1)]) {
            cells.push(Cell { conns: c, size: s });
        }
    }
    Ok(cells)
}

fn parse_flag<T: std::str::FromStr>(args: &[String], name: &str) -> io::Result<Option<T>> {
    let Some(i) = args.iter().position(|a| a == name) else {
        return Ok(None);
    };
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name} needs a number"),
        )
    };
    let value = args.get(i + 1).ok_or_else(bad)?;
    value.parse().map(Some).map_err(|_| bad())
}

/// One cell of the table.
#[derive(Clone, Copy, Debug)]
struct Cell {
    conns: usize,
    size: usize,
}

/// The echo servers under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Server {
    Iomgr,
    /// iomgr with one multishot accept and multishot receives into a shared buffer ring.
    IomgrRing,
    Tokio,
    Monoio,
}

impl Server {
    const ALL: [Server; 4] = [
        Server::Iomgr,
        Server::IomgrRing,
        Server::Tokio,
        Server::Monoio,
    ];

    fn name(self) -> &'static str {
        match self {
            Server::Iomgr => "iomgr",
            Server::IomgrRing => "iomgr-ring",
            Server::Tokio => "tokio",
            Server::Monoio => "monoio",
        }
    }

    /// Runs the server on this thread: reports its address, serves `conns` connections until
    /// they close, returns.
    fn serve(self, conns: usize, ready: mpsc::Sender<SocketAddr>) -> io::Result<()> {
        match self {
            Server::Iomgr => servers::iomgr(conns, ready),
            Server::IomgrRing => servers::iomgr_ring(conns, ready),
            Server::Tokio => servers::tokio(conns, ready),
            Server::Monoio => servers::monoio(conns, ready),
        }
    }
}

/// What one run measured.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    requests_per_sec: f64,
    p50: Duration,
    p99: Duration,
    /// Server thread CPU time per request.
    cpu_per_request: Duration,
    /// Of a median: (max - min) / median of the runs' CPU time per request.
    cpu_spread: f64,
}

/// Runs every server `reps` times on `cell` (interleaved) and returns each server's medians.
fn run_cell(cell: Cell, config: &Config) -> io::Result<Vec<(Server, Sample)>> {
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); config.servers.len()];
    for rep in 0..config.reps {
        for i in rotated(config.servers.len(), rep) {
            let x = config.servers[i];
            samples[i].push(run_once(x, cell, config)?);
        }
    }
    Ok(config
        .servers
        .iter()
        .copied()
        .zip(samples.iter().map(|s| median_sample(s)))
        .collect())
}

/// One run: a server thread on core 0, the load from this thread.
fn run_once(server: Server, cell: Cell, config: &Config) -> io::Result<Sample> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let handle = thread::Builder::new()
        .name(format!("{}-server", server.name()))
        .spawn(move || {
            pin_to_core(SERVER_CORE)?;
            server.serve(cell.conns, ready_tx)
        })?;
    let clock = CpuClock::of_thread(&handle)?;
    let Ok(addr) = ready_rx.recv() else {
        return Err(server_failed(server, handle));
    };
    let sample = load::run(addr, cell, config, &clock)?;
    handle
        .join()
        .map_err(|_| io::Error::other(format!("the {} server panicked", server.name())))??;
    Ok(sample)
}

/// The server thread ended before reporting its address: return its error.
fn server_failed(server: Server, handle: thread::JoinHandle<io::Result<()>>) -> io::Error {
    let cause = match handle.join() {
        Ok(Err(e)) => e.to_string(),
        Ok(Ok(())) => "it returned early".to_string(),
        Err(_) => "it panicked".to_string(),
    };
    io::Error::other(format!(
        "the {} server did not start: {cause}",
        server.name()
    ))
}

/// The median of each column separately.
/// Indices `0..n` starting at `rep % n`, so that no contestant always runs first.
fn rotated(n: usize, rep: usize) -> impl Iterator<Item = usize> {
    (0..n).map(move |i| (i + rep) % n)
}

fn median_sample(samples: &[Sample]) -> Sample {
    Sample {
        requests_per_sec: median(samples.iter().map(|s| s.requests_per_sec)),
        p50: median(samples.iter().map(|s| s.p50)),
        p99: median(samples.iter().map(|s| s.p99)),
        cpu_per_request: median(samples.iter().map(|s| s.cpu_per_request)),
        cpu_spread: spread(samples.iter().map(|s| micros(s.cpu_per_request))),
    }
}

/// (max - min) / median: how far apart the runs were.
fn spread(values: impl Iterator<Item = f64> + Clone) -> f64 {
    let max = values.clone().fold(f64::MIN, f64::max);
    let min = values.clone().fold(f64::MAX, f64::min);
    (max - min) / median(values)
}

fn median<T: PartialOrd + Copy + Default>(values: impl Iterator<Item = T>) -> T {
    let mut v: Vec<T> = values.collect();
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN in samples"));
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn print_header(config: &Config) {
    println!(
        "echo ping-pong on 127.0.0.1: server on core {SERVER_CORE}, load on core {LOAD_CORE}; \
         {:.1} s window after {:.1} s warm-up, median of {} run(s); ratios are to the first row",
        config.window.as_secs_f64(),
        config.warmup.as_secs_f64(),
        config.reps
    );
    println!("load average before: {}", load_average());
}

fn print_cell(cell: Cell, results: &[(Server, Sample)]) {
    println!(
        "\n{} connection(s), {} messages",
        cell.conns,
        format_size(cell.size)
    );
    println!(
        "{:<10} {:>10} {:>6} {:>9} {:>6} {:>9} {:>6} {:>11} {:>6} {:>7}",
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
    let base = results[0].1;
    for (server, s) in results {
        println!(
            "{:<10} {:>10.0} {:>6.2} {:>9.1} {:>6.2} {:>9.1} {:>6.2} {:>11.2} {:>6.2} {:>6.0}%",
            server.name(),
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

fn format_size(size: usize) -> String {
    if size.is_multiple_of(1024) {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_string())
}

/// Pins the calling thread to one CPU.
fn pin_to_core(core: usize) -> io::Result<()> {
    // SAFETY: `cpu_set_t` is plain bytes; all zeros is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `core` (a small constant, 0 or 1) is below CPU_SETSIZE, and `set` is
    // initialized.
    unsafe { libc::CPU_SET(core, &mut set) };
    // SAFETY: pid 0 is the calling thread; `set` is valid for the size passed.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("pinning to core {core}: {e}"),
        ));
    }
    Ok(())
}

/// The CPU-time clock of another thread of this process.
struct CpuClock(libc::clockid_t);

impl CpuClock {
    fn of_thread<T>(handle: &thread::JoinHandle<T>) -> io::Result<Self> {
        let mut clock: libc::clockid_t = 0;
        // SAFETY: the thread is alive (its handle is not joined), and `clock` is writable.
        let rc = unsafe { libc::pthread_getcpuclockid(handle.as_pthread_t(), &mut clock) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(CpuClock(clock))
    }

    /// CPU time the thread has used so far.
    fn now(&self) -> io::Result<Duration> {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is writable; a clock of a thread that has exited only makes the call
        // fail (EINVAL), which is reported.
        if unsafe { libc::clock_gettime(self.0, &mut ts) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    }
}

/// The three echo servers, written the same way.
mod servers {
    use super::*;

    pub(super) fn iomgr(conns: usize, ready: mpsc::Sender<SocketAddr>) -> io::Result<()> {
        use iomgr::buf::BufExt;
        use iomgr::net::{TcpListener, TcpStream};

        async fn echo(stream: TcpStream) {
            let mut buf = vec![0u8; SERVER_BUF];
            loop {
                let (res, b) = stream.read(buf).await;
                let n = match res {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let (res, slice) = stream.write_all(b.slice(..n)).await;
                if res.is_err() {
                    return;
                }
                buf = slice.into_inner();
            }
        }

        let rt = iomgr::Runtime::builder().entries(RING_ENTRIES).build()?;
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let _ = ready.send(listener.local_addr()?);
            let mut tasks = Vec::with_capacity(conns);
            for _ in 0..conns {
                let (stream, _) = listener.accept().await?;
                stream.set_nodelay(true)?;
                tasks.push(iomgr::spawn(echo(stream)));
            }
            for task in tasks {
                let _ = task.await;
            }
            Ok(())
        })
    }

    /// The same echo with io_uring's multishot ops: `incoming()` (one accept SQE for every
    /// connection) and `recv_multishot` into one provided-buffer ring shared by all
    /// connections; each chunk is written back as it is (a ring buffer is an `IoBuf`) and
    /// returns to the ring when the write is done.
    pub(super) fn iomgr_ring(conns: usize, ready: mpsc::Sender<SocketAddr>) -> io::Result<()> {
        use std::pin::pin;

        use iomgr::buf::BufRing;
        use iomgr::net::{TcpListener, TcpStream};

        async fn echo(stream: TcpStream, ring: BufRing) {
            let mut chunks = pin!(stream.recv_multishot(&ring));
            while let Some(Ok(chunk)) = chunks.as_mut().next().await {
                let (res, _chunk) = stream.write_all(chunk).await;
                if res.is_err() {
                    return;
                }
            }
        }

        let rt = iomgr::Runtime::builder().entries(RING_ENTRIES).build()?;
        rt.block_on(async {
            // Ping-pong keeps at most one chunk per connection out of the ring.
            let entries = (conns * 2).next_power_of_two().clamp(64, 32768) as u16;
            let ring = BufRing::new(entries, SERVER_BUF)?;
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let _ = ready.send(listener.local_addr()?);
            let mut tasks = Vec::with_capacity(conns);
            {
                let mut incoming = pin!(listener.incoming());
                for _ in 0..conns {
                    let stream = incoming.as_mut().next().await.expect("incoming ended")?;
                    stream.set_nodelay(true)?;
                    tasks.push(iomgr::spawn(echo(stream, ring.clone())));
                }
            }
            for task in tasks {
                let _ = task.await;
            }
            Ok(())
        })
    }

    pub(super) fn tokio(conns: usize, ready: mpsc::Sender<SocketAddr>) -> io::Result<()> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use tokio::net::{TcpListener, TcpStream};

        async fn echo(mut stream: TcpStream) {
            let mut buf = vec![0u8; SERVER_BUF];
            loop {
                let n = match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if stream.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }

        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let _ = ready.send(listener.local_addr()?);
            let mut tasks = Vec::with_capacity(conns);
            for _ in 0..conns {
                let (stream, _) = listener.accept().await?;
                stream.set_nodelay(true)?;
                tasks.push(tokio::spawn(echo(stream)));
            }
            for task in tasks {
                let _ = task.await;
            }
            Ok(())
        })
    }

    pub(super) fn monoio(conns: usize, ready: mpsc::Sender<SocketAddr>) -> io::Result<()> {
        use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
        use monoio::net::{TcpListener, TcpStream};

        async fn echo(mut stream: TcpStream) {
            // monoio reads into a `Vec`'s spare capacity and sets its length to what came in.
            let mut buf = Vec::with_capacity(SERVER_BUF);
            loop {
                let (res, b) = stream.read(buf).await;
                match res {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                let (res, b) = stream.write_all(b).await;
                if res.is_err() {
                    return;
                }
                buf = b;
            }
        }

        let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .with_entries(RING_ENTRIES)
            .build()?;
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let _ = ready.send(listener.local_addr()?);
            let mut tasks = Vec::with_capacity(conns);
            for _ in 0..conns {
                let (stream, _) = listener.accept().await?;
                stream.set_nodelay(true)?;
                tasks.push(monoio::spawn(echo(stream)));
            }
            for task in tasks {
                task.await;
            }
            Ok(())
        })
    }
}

/// The load generator: one completion loop on a bare io_uring, one op in flight per connection.
mod load {
    use std::net::TcpStream;

    use io_uring::{IoUring, cqueue, opcode, squeue, types};

    use super::*;

    /// `user_data` bit set on receives (the low bits are the connection's index).
    const RECV: u64 = 1 << 32;

    /// One client connection and where its current round trip is.
    struct Conn {
        stream: TcpStream,
        tx: Vec<u8>,
        rx: Vec<u8>,
        /// Bytes of the current message sent or received so far.
        done: usize,
        started: Instant,
    }

    impl Conn {
        fn new(addr: SocketAddr, size: usize, seed: usize) -> io::Result<Self> {
            let stream = TcpStream::connect(addr)?;
            stream.set_nodelay(true)?;
            let tx = (0..size).map(|i| (i + seed) as u8).collect();
            Ok(Conn {
                stream,
                tx,
                rx: vec![0; size],
                done: 0,
                started: Instant::now(),
            })
        }

        /// The SQE sending the rest of the message.
        fn send(&self, index: usize) -> squeue::Entry {
            let rest = &self.tx[self.done..];
            let fd = types::Fd(self.stream.as_raw_fd());
            opcode::Send::new(fd, rest.as_ptr(), rest.len() as u32)
                .flags(libc::MSG_NOSIGNAL)
                .build()
                .user_data(index as u64)
        }

        /// The SQE receiving the rest of the echo.
        fn recv(&mut self, index: usize) -> squeue::Entry {
            let rest = &mut self.rx[self.done..];
            let fd = types::Fd(self.stream.as_raw_fd());
            opcode::Recv::new(fd, rest.as_mut_ptr(), rest.len() as u32)
                .build()
                .user_data(index as u64 | RECV)
        }
    }

    /// What a completion led to.
    enum Step {
        /// The next op of the same round trip.
        Next(squeue::Entry),
        /// The round trip is complete after this long.
        Done(Duration),
    }

    /// Advances connection `index` by one completion.
    fn advance(
        conn: &mut Conn,
        index: usize,
        cqe: &cqueue::Entry,
        now: Instant,
    ) -> io::Result<Step> {
        let recv = cqe.user_data() & RECV != 0;
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
        conn.done += n;
        let size = conn.tx.len();
        if !recv {
            if conn.done < size {
                return Ok(Step::Next(conn.send(index)));
            }
            conn.done = 0;
            return Ok(Step::Next(conn.recv(index)));
        }
        if conn.done < size {
            return Ok(Step::Next(conn.recv(index)));
        }
        if conn.rx != conn.tx {
            return Err(io::Error::other("the server echoed different bytes"));
        }
        conn.done = 0;
        Ok(Step::Done(now - conn.started))
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
        fn new(config: &Config) -> Self {
            let now = Instant::now();
            Window {
                phase: Phase::Warmup,
                measure_at: now + config.warmup,
                drain_at: now + config.warmup + config.window,
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

    fn new_ring(entries: u32) -> io::Result<IoUring> {
        IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .build(entries)
            .or_else(|_| IoUring::new(entries))
    }

    /// Drives `cell.conns` ping-pong connections against `addr` through warm-up, the timed
    /// window and a drain, sampling the server's CPU clock at the window's ends.
    pub(super) fn run(
        addr: SocketAddr,
        cell: Cell,
        config: &Config,
        server_cpu: &CpuClock,
    ) -> io::Result<Sample> {
        let mut conns = (0..cell.conns)
            .map(|i| Conn::new(addr, cell.size, i))
            .collect::<io::Result<Vec<_>>>()?;
        let entries = (2 * cell.conns as u32)
            .next_power_of_two()
            .max(RING_ENTRIES);
        let mut ring = new_ring(entries)?;
        let mut window = Window::new(config);
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

    /// Runs the connections through the window's phases. On success no op is in flight.
    fn drive(
        ring: &mut IoUring,
        conns: &mut [Conn],
        window: &mut Window,
        server_cpu: &CpuClock,
    ) -> io::Result<()> {
        let (submitter, mut sq, mut cq) = ring.split();
        for (i, conn) in conns.iter_mut().enumerate() {
            conn.started = window.started;
            // SAFETY: the SQEs point into the connections' `tx`/`rx` buffers, on the heap;
            // `run` keeps them (and the sockets) alive until every op has completed, or leaks
            // them.
            unsafe { sq.push(&conn.send(i)) }.map_err(|_| io::Error::other("SQ full"))?;
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
                let conn = &mut conns[index];
                let next = match advance(conn, index, &cqe, now)? {
                    Step::Next(sqe) => sqe,
                    Step::Done(latency) => {
                        if window.phase == Phase::Measure {
                            window.latencies.push(latency);
                        }
                        if window.phase == Phase::Drain {
                            in_flight -= 1;
                            continue;
                        }
                        conn.started = now;
                        conn.send(index)
                    }
                };
                // SAFETY: as above; each connection has at most one op in flight and the SQ
                // holds twice as many entries as there are connections, so it has room.
                unsafe { sq.push(&next) }.map_err(|_| io::Error::other("SQ full"))?;
            }
        }
        Ok(())
    }
}
