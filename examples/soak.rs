//! Soak test: connection churn on loopback against an iomgr echo server in this process.
//!
//! ```text
//! cargo run --release --example soak -- --secs 60 --conns 64
//! cargo run --release --example soak -- --secs 300 --conns 64 --every 10 --seed 7
//! ```
//!
//! The server runs on its own thread and runtime (an accept loop, one echo task per
//! connection). The client runtime, on the main thread, keeps `--conns` workers busy until
//! `--secs` have passed; each worker picks, per connection, one of:
//!
//! - **round trips**: a few messages of random size written whole and read back whole, every
//!   byte compared; then a half close and the server's end of stream;
//! - **reset mid-echo**: a large message written, part of its echo read, then the socket is
//!   closed with `SO_LINGER` 0 (an RST) while the server is still writing;
//! - **read cancelled by a timeout**: a read nobody answers, cancelled by `timeout`, then a
//!   round trip on the same connection (the cancelled read must not have eaten any byte);
//! - **connect and close**: connect, then drop at once.
//!
//! Every `--every` seconds it prints the resident set (`/proc/self/statm`), the open
//! descriptors (`/proc/self/fd`), connections done, errors and byte mismatches. It exits with
//! status 1 if a byte mismatch or an unexpected error happened, if the resident set grew more
//! than `--rss-slack-mb` (default 32) over its size after the warm-up (a fifth of the run, at
//! most 10 s), if the descriptors ever exceeded the warm-up count plus two per worker plus 16,
//! or if, at the end, with every connection closed, any descriptor is left over. Loopback
//! only, and bounded in time.

use std::cell::Cell;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use iomgr::buf::BufExt;
use iomgr::future::{Either, select};
use iomgr::net::{TcpListener, TcpStream};
use iomgr::time::{sleep, timeout};
use iomgr::{Runtime, spawn};

struct Options {
    secs: u64,
    conns: usize,
    every: u64,
    seed: u64,
    rss_slack_mb: u64,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        secs: 60,
        conns: 64,
        every: 5,
        seed: 1,
        rss_slack_mb: 32,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args
            .next()
            .ok_or(format!("{arg} needs a value"))?
            .parse::<u64>()
            .map_err(|e| format!("{arg}: {e}"))?;
        match arg.as_str() {
            "--secs" => options.secs = value,
            "--conns" => options.conns = value as usize,
            "--every" => options.every = value.max(1),
            "--seed" => options.seed = value,
            "--rss-slack-mb" => options.rss_slack_mb = value,
            other => {
                return Err(format!(
                    "unknown argument {other:?}; usage: soak [--secs N] [--conns N] [--every SECS] \
                     [--seed N] [--rss-slack-mb MB]"
                ));
            }
        }
    }
    if options.conns == 0 || options.secs == 0 {
        return Err("--secs and --conns must be at least 1".into());
    }
    Ok(options)
}

/// Counters shared by the server thread and the client.
#[derive(Default)]
struct Stats {
    round_trips: AtomicU64,
    resets: AtomicU64,
    cancelled_reads: AtomicU64,
    connect_closes: AtomicU64,
    bytes: AtomicU64,
    mismatches: AtomicU64,
    errors: AtomicU64,
    /// Connection errors the server saw because a client reset on purpose.
    server_resets_seen: AtomicU64,
    server_conns: AtomicU64,
    server_open: AtomicU64,
}

impl Stats {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    fn conns_done(&self) -> u64 {
        Self::get(&self.round_trips)
            + Self::get(&self.resets)
            + Self::get(&self.cancelled_reads)
            + Self::get(&self.connect_closes)
    }
}

/// xorshift64*, one per worker.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len);
        while v.len() < len {
            let word = self.next().to_le_bytes();
            v.extend_from_slice(&word[..word.len().min(len - v.len())]);
        }
        v
    }
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    )
}

/// Echoes one connection until it closes or is reset.
async fn echo(stream: TcpStream, stats: Arc<Stats>) {
    let mut buf = vec![0u8; 16 * 1024];
    let result: io::Result<()> = async {
        loop {
            let (res, b) = stream.read(buf).await;
            let n = res?;
            if n == 0 {
                return Ok(());
            }
            let (res, slice) = stream.write_all(b.slice(..n)).await;
            res?;
            buf = slice.into_inner();
        }
    }
    .await;
    match result {
        Ok(()) => {}
        Err(e) if is_reset(&e) => Stats::add(&stats.server_resets_seen, 1),
        Err(e) => {
            eprintln!("soak: server: {e}");
            Stats::add(&stats.errors, 1);
        }
    }
    stats.server_open.fetch_sub(1, Ordering::Relaxed);
}

/// The server thread: sends its address, accepts until `stop`, then lets its connections
/// finish.
fn server(bound: mpsc::Sender<io::Result<SocketAddr>>, stats: Arc<Stats>, stop: Arc<AtomicBool>) {
    let rt = match Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return bound.send(Err(e)).unwrap_or(()),
    };
    rt.block_on(async {
        let listener = match TcpListener::bind("127.0.0.1:0") {
            Ok(listener) => listener,
            Err(e) => return bound.send(Err(e)).unwrap_or(()),
        };
        let _ = bound.send(listener.local_addr());
        while !stop.load(Ordering::Relaxed) {
            // A short timeout so that the loop sees `stop`.
            match timeout(Duration::from_millis(50), listener.accept()).await {
                Err(_elapsed) => {}
                Ok(Ok((stream, _))) => {
                    Stats::add(&stats.server_conns, 1);
                    Stats::add(&stats.server_open, 1);
                    spawn(echo(stream, stats.clone()));
                }
                Ok(Err(e)) => {
                    eprintln!("soak: accept: {e}");
                    Stats::add(&stats.errors, 1);
                }
            }
        }
        // Clients are done: every connection ends (end of stream or reset) shortly.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Stats::get(&stats.server_open) > 0 && Instant::now() < deadline {
            sleep(Duration::from_millis(5)).await;
        }
    });
}

/// Writes `msg` whole and reads its echo back whole; counts a mismatch if it differs.
async fn round_trip(stream: &TcpStream, msg: Vec<u8>, stats: &Stats) -> io::Result<()> {
    let len = msg.len();
    let (res, msg) = stream.write_all(msg).await;
    res?;
    let (res, back) = stream.read_exact(Vec::with_capacity(len)).await;
    res?;
    if back != msg {
        Stats::add(&stats.mismatches, 1);
        eprintln!(
            "soak: MISMATCH: {len} bytes sent, a different {} came back",
            back.len()
        );
    }
    Stats::add(&stats.bytes, 2 * len as u64);
    Ok(())
}

/// Half-closes and waits for the server's end of stream.
async fn close_cleanly(stream: &TcpStream) -> io::Result<()> {
    stream.shutdown(Shutdown::Write).await?;
    let (res, _) = stream.read(Vec::with_capacity(1)).await;
    match res? {
        0 => Ok(()),
        n => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{n} unexpected byte(s) before the end of stream"),
        )),
    }
}

async fn one_connection(addr: SocketAddr, rng: &mut Rng, stats: &Stats) -> io::Result<()> {
    let kind = rng.below(10);
    let stream = TcpStream::connect(addr).await?;
    match kind {
        // Round trips (half the connections).
        0..=4 => {
            for _ in 0..1 + rng.below(4) {
                let len = 1 + rng.below(64 << 10) as usize;
                round_trip(&stream, rng.bytes(len), stats).await?;
            }
            close_cleanly(&stream).await?;
            Stats::add(&stats.round_trips, 1);
        }
        // Reset mid-echo.
        5 | 6 => {
            let len = (256 << 10) + rng.below(256 << 10) as usize;
            let part = 1 + rng.below(32 << 10) as usize;
            {
                // Write a large message and read a part of its echo; the write may still be
                // in flight (the server stops reading once our receive buffer is full), and
                // is then cancelled by being dropped.
                let mut writer = pin!(stream.write_all(rng.bytes(len)));
                let reader = stream.read_exact(Vec::with_capacity(part));
                match select(writer.as_mut(), reader).await {
                    Either::Left((res, _)) => {
                        res?;
                        let (res, _) = stream.read_exact(Vec::with_capacity(part)).await;
                        res?;
                    }
                    Either::Right((res, _)) => res?,
                }
            }
            socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO))?;
            drop(stream); // an RST, with echo bytes still in flight both ways
            Stats::add(&stats.resets, 1);
        }
        // A read cancelled by a timeout, then a round trip on the same connection.
        7 | 8 => {
            let wait = Duration::from_micros(100 + rng.below(2000));
            let read = timeout(wait, stream.read(Vec::with_capacity(4096))).await;
            match read {
                Err(_elapsed) => {}
                Ok((res, _)) => {
                    let n = res?;
                    return Err(io::Error::other(format!(
                        "a read nobody answered returned {n} bytes"
                    )));
                }
            }
            let len = 1 + rng.below(8 << 10) as usize;
            round_trip(&stream, rng.bytes(len), stats).await?;
            close_cleanly(&stream).await?;
            Stats::add(&stats.cancelled_reads, 1);
        }
        // Connect and close.
        _ => {
            drop(stream);
            Stats::add(&stats.connect_closes, 1);
        }
    }
    Ok(())
}

async fn worker(addr: SocketAddr, seed: u64, deadline: Instant, stats: Arc<Stats>) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    while Instant::now() < deadline {
        if let Err(e) = one_connection(addr, &mut rng, &stats).await {
            eprintln!("soak: client: {e}");
            Stats::add(&stats.errors, 1);
        }
    }
}

/// Resident set size; `statm` counts pages, 4 KiB on the targets iomgr supports (x86_64 and
/// aarch64 with 4 KiB pages).
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// What the reporter saw, for the verdict.
#[derive(Default)]
struct Watch {
    /// After the warm-up: (RSS, fds).
    baseline: Cell<Option<(u64, u64)>>,
    max_rss: Cell<u64>,
    max_fds: Cell<u64>,
}

fn run(options: Options) -> io::Result<bool> {
    let stats = Arc::new(Stats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let fds_before = open_fds();
    let rss_before = rss_bytes();
    let (bound, addr) = mpsc::channel();
    let server_thread = {
        let (stats, stop) = (stats.clone(), stop.clone());
        std::thread::spawn(move || server(bound, stats, stop))
    };
    let addr = addr.recv().map_err(io::Error::other)??;

    let start = Instant::now();
    let deadline = start + Duration::from_secs(options.secs);
    let warm_up = Duration::from_secs((options.secs / 5).clamp(1, 10));
    let fd_bound_over_baseline = 2 * options.conns as u64 + 16;
    let watch = Rc::new(Watch::default());
    println!(
        "soak: {} s, {} workers, echo server on {addr}; start: rss {:.1} MiB, {} fds",
        options.secs,
        options.conns,
        mib(rss_before),
        fds_before
    );

    let rt = Runtime::new()?;
    rt.block_on(async {
        let workers: Vec<_> = (0..options.conns as u64)
            .map(|i| {
                spawn(worker(
                    addr,
                    options.seed ^ (i << 32),
                    deadline,
                    stats.clone(),
                ))
            })
            .collect();
        let reporter = {
            let (stats, watch) = (stats.clone(), watch.clone());
            spawn(async move {
                let mut next = start + Duration::from_secs(options.every);
                while Instant::now() < deadline {
                    sleep(next.saturating_duration_since(Instant::now())).await;
                    next += Duration::from_secs(options.every);
                    let (rss, fds) = (rss_bytes(), open_fds());
                    watch.max_rss.set(watch.max_rss.get().max(rss));
                    watch.max_fds.set(watch.max_fds.get().max(fds));
                    if watch.baseline.get().is_none() && start.elapsed() >= warm_up {
                        watch.baseline.set(Some((rss, fds)));
                    }
                    println!(
                        "soak: {:>5.1}s rss {:>7.1} MiB  fds {:>4}  conns {:>8} (echo {} reset {} \
                         cancelled-read {} connect-close {})  MiB echoed {:.0}  errors {}  \
                         mismatches {}",
                        start.elapsed().as_secs_f64(),
                        mib(rss),
                        fds,
                        stats.conns_done(),
                        Stats::get(&stats.round_trips),
                        Stats::get(&stats.resets),
                        Stats::get(&stats.cancelled_reads),
                        Stats::get(&stats.connect_closes),
                        mib(Stats::get(&stats.bytes)),
                        Stats::get(&stats.errors),
                        Stats::get(&stats.mismatches),
                    );
                }
            })
        };
        for w in workers {
            w.await.expect("worker");
        }
        reporter.abort();
        let _ = reporter.await;
    });
    drop(rt);
    stop.store(true, Ordering::Relaxed);
    server_thread.join().expect("server thread");

    let elapsed = start.elapsed();
    let (rss_end, fds_end) = (rss_bytes(), open_fds());
    let mismatches = Stats::get(&stats.mismatches);
    let errors = Stats::get(&stats.errors);
    let conns = stats.conns_done();
    println!(
        "soak: done in {:.1}s: {conns} connections ({:.0}/s; echo {} reset {} cancelled-read {} \
         connect-close {}), server accepted {} (saw {} resets), {:.0} MiB echoed, errors \
         {errors}, mismatches {mismatches}",
        elapsed.as_secs_f64(),
        conns as f64 / elapsed.as_secs_f64(),
        Stats::get(&stats.round_trips),
        Stats::get(&stats.resets),
        Stats::get(&stats.cancelled_reads),
        Stats::get(&stats.connect_closes),
        Stats::get(&stats.server_conns),
        Stats::get(&stats.server_resets_seen),
        mib(Stats::get(&stats.bytes)),
    );
    println!(
        "soak: rss start {:.1} MiB, after warm-up {}, max {:.1} MiB, end {:.1} MiB; fds start \
         {fds_before}, after warm-up {}, max {}, end {fds_end}",
        mib(rss_before),
        watch
            .baseline
            .get()
            .map_or("-".into(), |(r, _)| format!("{:.1} MiB", mib(r))),
        mib(watch.max_rss.get().max(rss_end)),
        mib(rss_end),
        watch
            .baseline
            .get()
            .map_or("-".into(), |(_, f)| f.to_string()),
        watch.max_fds.get(),
    );

    let mut ok = true;
    if mismatches > 0 {
        println!("soak: FAIL: {mismatches} echo(es) came back different");
        ok = false;
    }
    if errors > 0 {
        println!("soak: FAIL: {errors} unexpected error(s)");
        ok = false;
    }
    if let Some((rss_base, fds_base)) = watch.baseline.get() {
        let rss_bound = rss_base + options.rss_slack_mb * 1024 * 1024;
        let rss_max = watch.max_rss.get().max(rss_end);
        if rss_max > rss_bound {
            println!(
                "soak: FAIL: rss grew to {:.1} MiB, over {:.1} MiB after warm-up + {} MiB",
                mib(rss_max),
                mib(rss_base),
                options.rss_slack_mb
            );
            ok = false;
        }
        if watch.max_fds.get() > fds_base + fd_bound_over_baseline {
            println!(
                "soak: FAIL: {} fds open at once, over {fds_base} after warm-up + {}",
                watch.max_fds.get(),
                fd_bound_over_baseline
            );
            ok = false;
        }
    }
    // Both runtimes are gone and every connection closed: only the listener's descriptor
    // is gone too (the server thread dropped it), so the count is back where it started.
    if fds_end != fds_before {
        println!("soak: FAIL: {fds_end} fds open at the end, {fds_before} at the start");
        ok = false;
    }
    println!("soak: {}", if ok { "PASS" } else { "FAIL" });
    Ok(ok)
}

fn main() {
    let options = match parse_args() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("soak: {e}");
            std::process::exit(2);
        }
    };
    match run(options) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("soak: {e}");
            std::process::exit(1);
        }
    }
}
