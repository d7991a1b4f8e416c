//! An iomgr echo server, driven by an iomgr client.
//!
//! ```text
//! cargo run --release --example echo                       # server + client, prints figures
//! cargo run --release --example echo -- --serve 127.0.0.1:7000   # serve only, until killed
//! cargo run --release --example echo -- --secs 5 --conns 64 --size 4096
//! ```
//!
//! The server runs on its own thread and runtime: an accept loop that spawns one task per
//! connection, each echoing what it reads. The client runs on the main thread's runtime with
//! several connections doing ping-pong (write a message, read it back whole), and reports
//! requests per second and latency percentiles.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use iomgr::buf::BufExt;
use iomgr::net::{TcpListener, TcpStream};
use iomgr::{Runtime, spawn};

struct Options {
    serve: Option<String>,
    secs: u64,
    conns: usize,
    size: usize,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        serve: None,
        secs: 3,
        conns: 16,
        size: 64,
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
            other => {
                return Err(format!(
                    "unknown argument {other:?}; usage: echo [--serve ADDR] [--secs N] [--conns N] [--size BYTES]"
                ));
            }
        }
    }
    if options.conns == 0 || options.size == 0 {
        return Err("--conns and --size must be at least 1".into());
    }
    Ok(options)
}

/// Echoes everything one connection sends until it closes.
async fn echo(stream: TcpStream) -> io::Result<()> {
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
    }
}

/// Accepts connections forever, one task each.
async fn serve(listener: TcpListener) -> io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        spawn(async move {
            if let Err(e) = echo(stream).await {
                eprintln!("echo: connection error: {e}");
            }
        });
    }
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
    if let Some(addr) = &options.serve {
        let rt = Runtime::new()?;
        return rt.block_on(async {
            let listener = TcpListener::bind(addr.as_str())?;
            println!("echo: serving on {}", listener.local_addr()?);
            serve(listener).await
        });
    }

    // Server on its own thread and runtime; it stops when the process exits.
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    drop(listener);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || -> io::Result<()> {
        let rt = Runtime::new()?;
        rt.block_on(async {
            let listener = TcpListener::bind(addr)?;
            let _ = ready_tx.send(());
            serve(listener).await
        })
    });
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .map_err(|_| io::Error::other("the server did not start"))?;

    println!(
        "echo: {} connections, {} B messages, {} s, server on {addr}",
        options.conns, options.size, options.secs
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
    if requests == 0 {
        return Err(io::Error::other("no request completed"));
    }
    Ok(())
}
