//! An iomgr echo server, driven by an iomgr client.
//!
//! ```text
//! cargo run --release --example echo                       # server + client, prints figures
//! cargo run --release --example echo -- --serve 127.0.0.1:7000   # serve only, until killed
//! cargo run --release --example echo -- --secs 5 --conns 64 --size 4096
//! cargo run --release --example echo -- --threads 2            # thread per core
//! ```
//!
//! While `--serve` runs, `kill -QUIT <pid>` (or Ctrl-\\) prints a task dump: every connection's
//! task and the `.await` it waits at.
//!
//! The server runs `--threads` runtimes (default 1), one per thread (`Builder::threads`),
//! each with its own `SO_REUSEPORT` listener on the same port: an accept loop that spawns one
//! task per connection, each echoing what it reads. The client runs on the main thread's
//! runtime with several connections doing ping-pong (write a message, read it back whole),
//! and reports requests per second and latency percentiles, in total and per server thread.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use iomgr::buf::BufExt;
use iomgr::net::{TcpListener, TcpStream};
use iomgr::runtime::{StopReason, ThreadError};
use iomgr::{Runtime, spawn};

struct Options {
    serve: Option<String>,
    secs: u64,
    conns: usize,
    size: usize,
    threads: usize,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        serve: None,
        secs: 3,
        conns: 16,
        size: 64,
        threads: 1,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--serve" => options.serve = Some(value("--serve")?),
            "--secs" => {
                options.secs = value("--secs")?
                    .parse()
                    .map_err(|e| format!("--secs: {e}"))?
            }
            "--conns" => {
                options.conns = value("--conns")?
                    .parse()
                    .map_err(|e| format!("--conns: {e}"))?
            }
            "--size" => {
                options.size = value("--size")?
                    .parse()
                    .map_err(|e| format!("--size: {e}"))?
            }
            "--threads" => {
                options.threads = value("--threads")?
                    .parse()
                    .map_err(|e| format!("--threads: {e}"))?
            }
            other => {
                return Err(format!(
                    "unknown argument {other:?}; usage: echo [--serve ADDR] [--secs N] [--conns N] [--size BYTES] [--threads N]"
                ));
            }
        }
    }
    if options.conns == 0 || options.size == 0 || options.threads == 0 {
        return Err("--conns, --size and --threads must be at least 1".into());
    }
    Ok(options)
}

/// Echoes everything one connection sends until it closes, counting the reads it answers.
/// An `#[iomgr::task]`: a named type of constant size that says where it waits (`kill -QUIT`
/// a `--serve` process to see every connection's `.await`).
#[iomgr::task]
async fn echo(stream: TcpStream, answered: Arc<AtomicU64>) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let (res, b) = stream.read(buf).await;
        let n = res?;
        if n == 0 {
            return Ok(());
        }
        let (res, slice) = stream.write_all(b.slice(..n)).await;
        res?;
        buf = slice.into_inner();
        answered.fetch_add(1, Ordering::Relaxed);
    }
}

/// Accepts connections until the runtime stops, one task each.
async fn serve(listener: TcpListener, answered: Arc<AtomicU64>) -> io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let answered = answered.clone();
        spawn(async move {
            if let Err(e) = echo(stream, answered).await {
                eprintln!("echo: connection error: {e}");
            }
        });
    }
}

/// Runs `threads` server runtimes on `addr`, one per thread; `ready` gets the bound address
/// once every thread listens. Returns when the threads are stopped (a signal, or a failure).
fn serve_per_core(
    addr: SocketAddr,
    threads: usize,
    stop_on_signals: bool,
    answered: &[Arc<AtomicU64>],
    ready: std::sync::mpsc::Sender<()>,
) -> io::Result<()> {
    let results = iomgr::Builder::new()
        .threads(threads)
        .pin_to_cores(true)
        .stop_on_signals(stop_on_signals)
        .dump_on_sigquit(stop_on_signals)
        .run(|thread| {
            let answered = answered[thread.index()].clone();
            let ready = ready.clone();
            async move {
                let listener = TcpListener::bind_reuseport(addr)?;
                let _ = ready.send(());
                serve(listener, answered).await
            }
        })?;
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Ok(Err(e)) => eprintln!("echo: server thread {i}: {e}"),
            // Ctrl-C: the normal end of `--serve`.
            Err(ThreadError::Stopped(StopReason::Signal(_))) => {}
            Err(e) => eprintln!("echo: server thread {i}: {e}"),
            Ok(Ok(())) => {}
        }
    }
    Ok(())
}

/// One client connection: ping-pong until `deadline`; returns each round trip's latency (ns).
async fn ping_pong(addr: SocketAddr, size: usize, deadline: Instant) -> io::Result<Vec<u32>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut latencies = Vec::with_capacity(1 << 16);
    let mut msg = vec![0xA5u8; size];
    let mut reply = Vec::with_capacity(size);
    while Instant::now() < deadline {
        let start = Instant::now();
        let (res, m) = stream.write_all(msg).await;
        res?;
        msg = m;
        let (res, r) = stream.read_exact(reply).await;
        res?;
        reply = r;
        latencies.push(start.elapsed().as_nanos().min(u32::MAX as u128) as u32);
        if reply != msg {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "echo came back different",
            ));
        }
        reply.clear();
    }
    Ok(latencies)
}

fn percentile(sorted: &[u32], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    Duration::from_nanos(u64::from(sorted[index]))
}

fn main() {
    let options = match parse_args() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("echo: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(options) {
        eprintln!("echo: {e}");
        std::process::exit(1);
    }
}

fn run(options: Options) -> io::Result<()> {
    let answered: Vec<Arc<AtomicU64>> = (0..options.threads).map(|_| Arc::default()).collect();
    if let Some(addr) = &options.serve {
        let addr = std::net::ToSocketAddrs::to_socket_addrs(addr.as_str())?
            .next()
            .ok_or_else(|| io::Error::other("--serve: no address"))?;
        let (ready, _ready_rx) = std::sync::mpsc::channel();
        println!(
            "echo: serving on {addr} with {} thread(s); Ctrl-C stops, `kill -QUIT {}` prints where every task waits",
            options.threads,
            std::process::id()
        );
        return serve_per_core(addr, options.threads, true, &answered, ready);
    }

    // The servers run on their own threads; they stop when the process exits.
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    drop(listener);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    {
        let answered = answered.clone();
        let threads = options.threads;
        std::thread::spawn(move || serve_per_core(addr, threads, false, &answered, ready_tx));
    }
    for _ in 0..options.threads {
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .map_err(|_| io::Error::other("the server did not start"))?;
    }

    println!(
        "echo: {} connections, {} B messages, {} s, {} server thread(s) on {addr}",
        options.conns, options.size, options.secs, options.threads
    );
    let rt = Runtime::new()?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(options.secs);
    let mut latencies = rt.block_on(async {
        let clients: Vec<_> = (0..options.conns)
            .map(|_| spawn(ping_pong(addr, options.size, deadline)))
            .collect();
        let mut all = Vec::new();
        for client in clients {
            let lat = client.await??;
            all.extend(lat);
        }
        io::Result::Ok(all)
    })?;
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let requests = latencies.len();
    println!(
        "echo: {requests} requests in {:.2} s: {:.0} requests/s, p50 {:?}, p99 {:?}",
        elapsed.as_secs_f64(),
        requests as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
    );
    if options.threads > 1 {
        for (i, count) in answered.iter().enumerate() {
            let n = count.load(Ordering::Relaxed);
            println!(
                "echo:   server thread {i}: {n} requests, {:.0} requests/s",
                n as f64 / elapsed.as_secs_f64()
            );
        }
    }
    if requests == 0 {
        return Err(io::Error::other("no request completed"));
    }
    Ok(())
}
