//! A hyper "Hello, world!" server on iomgr, driven by a keep-alive HTTP/1.1 load generator.
//!
//! ```text
//! cargo run --release --example http_hyper                              # server + load, prints figures
//! cargo run --release --example http_hyper -- --serve 127.0.0.1:8080   # serve only, until killed
//! cargo run --release --example http_hyper -- --secs 5 --conns 64
//! ```
//!
//! The server is hyper's HTTP/1 connection on `iomgr_hyper::HyperIo` (via
//! `iomgr_hyper::serve`), on its own thread and runtime. The load runs on the main thread's
//! runtime, written with iomgr's owned-buffer API: several keep-alive connections, each
//! sending `GET /`, reading the whole response, and sending the next; it reports requests
//! per second and latency percentiles.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use iomgr::buf::BufExt;
use iomgr::net::{TcpListener, TcpStream};
use iomgr::{Runtime, spawn};

const BODY: &[u8] = b"Hello, world!\n";
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n";

/// The service: the same answer to every request.
async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(BODY))))
}

struct Options {
    serve: Option<String>,
    secs: u64,
    conns: usize,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        serve: None,
        secs: 3,
        conns: 16,
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
            other => {
                return Err(format!(
                    "unknown argument {other:?}; usage: http_hyper [--serve ADDR] [--secs N] [--conns N]"
                ));
            }
        }
    }
    if options.conns == 0 {
        return Err("--conns must be at least 1".into());
    }
    Ok(options)
}

/// The length of the complete response at the start of `bytes`, once its head and body
/// have arrived (`None` before); an error if it is not a `200` with a `content-length`.
fn response_len(bytes: &[u8]) -> Option<io::Result<usize>> {
    let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let Ok(head) = std::str::from_utf8(&bytes[..head_end]) else {
        return Some(Err(bad("a response head that is not UTF-8")));
    };
    if !head.starts_with("HTTP/1.1 200") {
        return Some(Err(bad(head.lines().next().unwrap_or(""))));
    }
    let content_length = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())?
    });
    match content_length {
        Some(len) => (bytes.len() >= head_end + len).then_some(Ok(head_end + len)),
        None => Some(Err(bad("a response without content-length"))),
    }
}

/// One keep-alive connection: request after request until `deadline`; returns each
/// request's latency (ns).
async fn load(addr: SocketAddr, deadline: Instant) -> io::Result<Vec<u32>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut latencies = Vec::with_capacity(1 << 16);
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    while Instant::now() < deadline {
        let start = Instant::now();
        let (res, _) = stream.write_all(REQUEST).await;
        res?;
        buf.clear();
        let len = loop {
            if let Some(len) = response_len(&buf) {
                break len?;
            }
            if buf.len() == buf.capacity() {
                buf.reserve(4096);
            }
            let (filled, capacity) = (buf.len(), buf.capacity());
            let (res, slice) = stream.read(buf.slice(filled..capacity)).await;
            buf = slice.into_inner();
            if res? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        };
        latencies.push(start.elapsed().as_nanos().min(u32::MAX as u128) as u32);
        if len != buf.len() || !buf.ends_with(BODY) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "unexpected response",
            ));
        }
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
            eprintln!("http_hyper: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(options) {
        eprintln!("http_hyper: {e}");
        std::process::exit(1);
    }
}

fn run(options: Options) -> io::Result<()> {
    if let Some(addr) = &options.serve {
        let rt = Runtime::new()?;
        return rt.block_on(async {
            let listener = TcpListener::bind(addr.as_str())?;
            println!("http_hyper: serving on http://{}", listener.local_addr()?);
            iomgr_hyper::serve(listener, |_| service_fn(hello)).await
        });
    }

    // Server on its own thread and runtime; it stops when the process exits.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || -> io::Result<()> {
        let rt = Runtime::new()?;
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let _ = ready_tx.send(listener.local_addr()?);
            iomgr_hyper::serve(listener, |_| service_fn(hello)).await
        })
    });
    let addr = ready_rx
        .recv_timeout(Duration::from_secs(5))
        .map_err(|_| io::Error::other("the server did not start"))?;

    println!(
        "http_hyper: {} keep-alive connections, GET / for {} s, hyper server on {addr}",
        options.conns, options.secs
    );
    let rt = Runtime::new()?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(options.secs);
    let mut latencies = rt.block_on(async {
        let clients: Vec<_> = (0..options.conns)
            .map(|_| spawn(load(addr, deadline)))
            .collect();
        let mut all = Vec::new();
        for client in clients {
            all.extend(client.await??);
        }
        io::Result::Ok(all)
    })?;
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let requests = latencies.len();
    println!(
        "http_hyper: {requests} requests in {:.2} s: {:.0} requests/s, p50 {:?}, p99 {:?}",
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
