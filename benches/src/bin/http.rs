//! The same hyper service on iomgr (`iomgr-hyper`) and on tokio (`current_thread` runtime,
//! `hyper_util::rt::TokioIo`), under one keep-alive HTTP/1.1 load.
//!
//! For every cell (1, 16 and 256 connections × response bodies of 13 B, 4 KiB and 64 KiB)
//! and every server, a fresh server thread pinned to core 0 starts a fresh runtime, binds
//! `127.0.0.1:0`, accepts exactly as many connections as the cell has, serves each with
//! hyper's `http1::Builder::serve_connection` in its own task (`TCP_NODELAY` on) and returns
//! once every connection has closed. The service is one function for both: `GET` answered
//! with a `Full<Bytes>` body of the cell's size. The only differences are the runtime and the
//! I/O adapter (`iomgr_hyper::HyperIo` over owned-buffer io_uring ops, or `TokioIo` over
//! tokio's readiness-based `TcpStream`). With `--timer`, both get their runtime's hyper timer
//! (a `ConnectionTimer` per connection, as `iomgr_hyper::serve` sets; one `TokioTimer`) and
//! hence hyper's default 30 s header-read timeout, set anew for every request.
//!
//! The load generator runs on the main thread, pinned to core 1: one loop written directly on
//! the `io-uring` crate (one ring, one op in flight per connection), as in the echo
//! benchmark, so that it is neither contestant. Each connection sends
//! `GET / HTTP/1.1`, receives until the whole response has arrived (its head, then as many
//! body bytes as its `content-length` says; every response is checked), records the round
//! trip and sends the next request on the same connection.
//!
//! After a warm-up, a timed window counts responses and samples the server thread's CPU
//! clock (`pthread_getcpuclockid`: user + system, including the kernel's socket work done on
//! that thread) at both ends. Loopback throughput on a shared machine is noisy; the figure to
//! trust is the server's CPU time per request. Each cell is repeated (servers interleaved, in
//! a rotating order, so that background load hits them alike) and the median of each column
//! is printed with its ratio to the first row (iomgr) and, for the CPU time, its spread
//! ((max - min) / median over the runs).
//!
//! ```text
//! cargo run --release --manifest-path benches/Cargo.toml --bin http [-- --secs 2 --reps 5]
//! cargo run --release --manifest-path benches/Cargo.toml --bin http -- --quick
//! cargo run --release --manifest-path benches/Cargo.toml --bin http -- --timer --conns 16
//! ```

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::mpsc;

use iomgr_benches::args::parse_flag;
use iomgr_benches::machine::{load_average, pin_to_core};
use iomgr_benches::stats::format_size;
use iomgr_benches::tcp_load::{self, Sample, Timing};

/// Connection counts of the cells.
const CONNECTIONS: [usize; 3] = [1, 16, 256];
/// Response body sizes of the cells, in bytes.
const BODY_SIZES: [usize; 3] = [13, 4096, 65536];
/// The request every connection sends, over and over.
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nhost: bench\r\n\r\n";
/// Ring entries for the iomgr server and the load generator.
const RING_ENTRIES: u32 = 256;
/// Core of the server threads and of the load generator.
const SERVER_CORE: usize = 0;
const LOAD_CORE: usize = 1;

fn main() -> io::Result<()> {
    let config = Config::from_args()?;
    pin_to_core(LOAD_CORE)?;
    print_header(&config);
    for &cell in &config.cells {
        let results = tcp_load::run_cell(&config.servers, &config.timing, |server| {
            run_once(server, cell, &config)
        })?;
        print_cell(cell, &results);
    }
    println!("\nload average after: {}", load_average());
    Ok(())
}

/// How long and how often to measure.
struct Config {
    timing: Timing,
    timer: bool,
    servers: Vec<Server>,
    cells: Vec<Cell>,
}

impl Config {
    /// The flags of [`Timing`] (`--secs F`, `--reps N`, `--quick`), `--timer` (both servers
    /// get a timer and hyper's header-read timeout), `--only NAME` (one server: `iomgr` or
    /// `tokio`), `--conns N` and `--size B` (one cell).
    fn from_args() -> io::Result<Self> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        Ok(Config {
            timing: Timing::from_args(&args)?,
            timer: args.iter().any(|a| a == "--timer"),
            servers: tcp_load::select_servers(&args, &Server::ALL, Server::name)?,
            cells: select_cells(&args)?,
        })
    }
}

/// Every cell, or those `--conns` and `--size` narrow it to.
fn select_cells(args: &[String]) -> io::Result<Vec<Cell>> {
    let conns: Option<usize> = parse_flag(args, "--conns")?;
    let size: Option<usize> = parse_flag(args, "--size")?;
    if size.is_some_and(|s| s > BODY.len()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("--size: at most {} bytes", BODY.len()),
        ));
    }
    let mut cells = Vec::new();
    for c in conns.map_or(CONNECTIONS.to_vec(), |c| vec![c.max(1)]) {
        for s in size.map_or(BODY_SIZES.to_vec(), |s| vec![s]) {
            cells.push(Cell { conns: c, size: s });
        }
    }
    Ok(cells)
}

/// One cell of the table.
#[derive(Clone, Copy, Debug)]
struct Cell {
    conns: usize,
    /// Response body size.
    size: usize,
}

/// The bytes response bodies are cut from (`Bytes::from_static`, so neither server copies
/// them to build a response).
static BODY: [u8; 65536] = {
    let mut body = [0u8; 65536];
    let mut i = 0;
    while i < body.len() {
        body[i] = b'a' + (i % 26) as u8;
        i += 1;
    }
    body
};

/// The hyper servers under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Server {
    Iomgr,
    Tokio,
}

impl Server {
    const ALL: [Server; 2] = [Server::Iomgr, Server::Tokio];

    fn name(self) -> &'static str {
        match self {
            Server::Iomgr => "iomgr",
            Server::Tokio => "tokio",
        }
    }

    /// Runs the server on this thread: reports its address, serves `cell.conns`
    /// connections until they close, returns.
    fn serve(self, cell: Cell, timer: bool, ready: mpsc::Sender<SocketAddr>) -> io::Result<()> {
        match self {
            Server::Iomgr => servers::iomgr(cell, timer, ready),
            Server::Tokio => servers::tokio(cell, timer, ready),
        }
    }
}

/// One run: a server thread on core 0, the load from this thread.
fn run_once(server: Server, cell: Cell, config: &Config) -> io::Result<Sample> {
    let timer = config.timer;
    let serve = move |ready| server.serve(cell, timer, ready);
    tcp_load::run_once(server.name(), SERVER_CORE, serve, |addr, clock| {
        load::run(addr, cell, config, clock)
    })
}

fn print_header(config: &Config) {
    println!(
        "hyper HTTP/1.1 keep-alive GET on 127.0.0.1: server on core {SERVER_CORE}, load on core \
         {LOAD_CORE}; {:.1} s window after {:.1} s warm-up, median of {} run(s); timer and \
         header-read timeout: {}; ratios are to the first row",
        config.timing.window.as_secs_f64(),
        config.timing.warmup.as_secs_f64(),
        config.timing.reps,
        if config.timer { "on" } else { "off" },
    );
    println!("load average before: {}", load_average());
}

fn print_cell(cell: Cell, results: &[(Server, Sample)]) {
    println!(
        "\n{} connection(s), {} response bodies",
        cell.conns,
        format_size(cell.size)
    );
    let rows: Vec<(&str, Sample)> = results.iter().map(|(s, x)| (s.name(), *x)).collect();
    tcp_load::print_table(8, &rows);
}

/// The two servers: one hyper service, two runtimes.
mod servers {
    use std::convert::Infallible;

    use http_body_util::Full;
    use hyper::body::{Bytes, Incoming};
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper::{Request, Response};

    use super::*;

    /// The service both servers run: the cell's body, whatever the request.
    async fn respond(
        _req: Request<Incoming>,
        size: usize,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        Ok(Response::new(Full::new(Bytes::from_static(&BODY[..size]))))
    }

    pub(super) fn iomgr(
        cell: Cell,
        timer: bool,
        ready: mpsc::Sender<SocketAddr>,
    ) -> io::Result<()> {
        use iomgr::net::TcpListener;
        use iomgr_hyper::{ConnectionTimer, HyperIo};

        let builder = http1::Builder::new();
        let rt = iomgr::Runtime::builder().entries(RING_ENTRIES).build()?;
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let _ = ready.send(listener.local_addr()?);
            let mut tasks = Vec::with_capacity(cell.conns);
            for _ in 0..cell.conns {
                let (stream, _) = listener.accept().await?;
                stream.set_nodelay(true)?;
                let service = service_fn(move |req| respond(req, cell.size));
                // As `iomgr_hyper::serve` does: a timer per connection.
                let mut builder = builder.clone();
                if timer {
                    builder.timer(ConnectionTimer::new());
                }
                let conn = builder.serve_connection(HyperIo::new(stream), service);
                tasks.push(iomgr::spawn(conn));
            }
            for task in tasks {
                let _ = task.await;
            }
            Ok(())
        })
    }

    pub(super) fn tokio(
        cell: Cell,
        timer: bool,
        ready: mpsc::Sender<SocketAddr>,
    ) -> io::Result<()> {
        use hyper_util::rt::{TokioIo, TokioTimer};
        use tokio::net::TcpListener;

        let mut builder = http1::Builder::new();
        if timer {
            builder.timer(TokioTimer::new());
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let _ = ready.send(listener.local_addr()?);
            let mut tasks = Vec::with_capacity(cell.conns);
            for _ in 0..cell.conns {
                let (stream, _) = listener.accept().await?;
                stream.set_nodelay(true)?;
                let service = service_fn(move |req| respond(req, cell.size));
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                tasks.push(tokio::spawn(conn));
            }
            for task in tasks {
                let _ = task.await;
            }
            Ok(())
        })
    }
}

/// The load generator's client connections: the [`tcp_load`] frame drives them, one op in
/// flight per connection.
mod load {
    use std::net::TcpStream;

    use io_uring::{opcode, squeue, types};
    use iomgr_benches::machine::CpuClock;
    use iomgr_benches::tcp_load::{Connection, Op, Step};

    use super::*;

    /// One client connection and where its current request is.
    struct Conn {
        stream: TcpStream,
        /// The response so far: `rx[..received]`.
        rx: Vec<u8>,
        received: usize,
        /// Request bytes sent so far.
        sent: usize,
        /// The whole response's length, once its head has arrived.
        expected: Option<usize>,
        /// The body every response must carry.
        body: &'static [u8],
    }

    impl Conn {
        fn new(addr: SocketAddr, body: &'static [u8]) -> io::Result<Self> {
            let stream = TcpStream::connect(addr)?;
            stream.set_nodelay(true)?;
            Ok(Conn {
                stream,
                rx: vec![0; body.len() + 1024],
                received: 0,
                sent: 0,
                expected: None,
                body,
            })
        }

        /// The SQE receiving more of the response.
        fn recv(&mut self) -> squeue::Entry {
            let rest = &mut self.rx[self.received..];
            let fd = types::Fd(self.stream.as_raw_fd());
            opcode::Recv::new(fd, rest.as_mut_ptr(), rest.len() as u32).build()
        }

        /// After a receive: the response's length once its head is in, growing `rx` to hold
        /// it all.
        fn parse_head(&mut self) -> io::Result<()> {
            if self.expected.is_some() {
                return Ok(());
            }
            let got = &self.rx[..self.received];
            let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
                if self.received == self.rx.len() {
                    return Err(io::Error::other("a response head larger than expected"));
                }
                return Ok(());
            };
            let head = std::str::from_utf8(&got[..end])
                .map_err(|_| io::Error::other("a response head that is not UTF-8"))?;
            if !head.starts_with("HTTP/1.1 200") {
                return Err(io::Error::other(format!("unexpected response: {head}")));
            }
            let len = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .ok_or_else(|| io::Error::other("a response without content-length"))?;
            let total = end + 4 + len;
            if self.rx.len() < total {
                self.rx.resize(total, 0);
            }
            self.expected = Some(total);
            Ok(())
        }
    }

    // SAFETY: the SQEs are single-shot sends and receives pointing into `REQUEST` (static) or
    // the connection's `rx` buffer, which it owns; `rx` is resized only in `advance`, when no
    // op of the connection is in flight (the socket, too, lives as long as the connection).
    unsafe impl Connection for Conn {
        /// The SQE sending the rest of the request.
        fn send(&self) -> squeue::Entry {
            let rest = &REQUEST[self.sent..];
            let fd = types::Fd(self.stream.as_raw_fd());
            opcode::Send::new(fd, rest.as_ptr(), rest.len() as u32)
                .flags(libc::MSG_NOSIGNAL)
                .build()
        }

        fn advance(&mut self, op: Op, n: usize) -> io::Result<Step> {
            if op == Op::Send {
                self.sent += n;
                if self.sent < REQUEST.len() {
                    return Ok(Step::Next(Op::Send, self.send()));
                }
                self.sent = 0;
                self.received = 0;
                return Ok(Step::Next(Op::Recv, self.recv()));
            }
            self.received += n;
            self.parse_head()?;
            match self.expected {
                Some(total) if self.received == total => {
                    if !self.rx[..total].ends_with(self.body) {
                        return Err(io::Error::other("the server sent a different body"));
                    }
                    self.expected = None;
                    Ok(Step::Done)
                }
                Some(total) if self.received > total => Err(io::Error::other(
                    "more bytes than one response (nothing was pipelined)",
                )),
                _ => Ok(Step::Next(Op::Recv, self.recv())),
            }
        }
    }

    /// Drives `cell.conns` keep-alive connections against `addr` through warm-up, the timed
    /// window and a drain, sampling the server's CPU clock at the window's ends.
    pub(super) fn run(
        addr: SocketAddr,
        cell: Cell,
        config: &Config,
        server_cpu: &CpuClock,
    ) -> io::Result<Sample> {
        let body = &BODY[..cell.size];
        let conns = (0..cell.conns)
            .map(|_| Conn::new(addr, body))
            .collect::<io::Result<Vec<_>>>()?;
        tcp_load::run_load(conns, &config.timing, server_cpu)
    }
}
