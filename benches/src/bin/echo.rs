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
use std::sync::mpsc;

use iomgr_benches::args::parse_flag;
use iomgr_benches::machine::{load_average, pin_to_core};
use iomgr_benches::stats::format_size;
use iomgr_benches::tcp_load::{self, Sample, Timing};

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
    servers: Vec<Server>,
    cells: Vec<Cell>,
}

impl Config {
    /// The flags of [`Timing`] (`--secs F`, `--reps N`, `--quick`), `--only NAME` (one server:
    /// `iomgr`, `iomgr-ring`, `tokio` or `monoio`), `--conns N` and `--size B` (one cell; the
    /// last three are for profiling).
    fn from_args() -> io::Result<Self> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        Ok(Config {
            timing: Timing::from_args(&args)?,
            servers: tcp_load::select_servers(&args, &Server::ALL, Server::name)?,
            cells: select_cells(&args)?,
        })
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

/// One run: a server thread on core 0, the load from this thread.
fn run_once(server: Server, cell: Cell, config: &Config) -> io::Result<Sample> {
    let serve = move |ready| server.serve(cell.conns, ready);
    tcp_load::run_once(server.name(), SERVER_CORE, serve, |addr, clock| {
        load::run(addr, cell, config, clock)
    })
}

fn print_header(config: &Config) {
    println!(
        "echo ping-pong on 127.0.0.1: server on core {SERVER_CORE}, load on core {LOAD_CORE}; \
         {:.1} s window after {:.1} s warm-up, median of {} run(s); ratios are to the first row",
        config.timing.window.as_secs_f64(),
        config.timing.warmup.as_secs_f64(),
        config.timing.reps
    );
    println!("load average before: {}", load_average());
}

fn print_cell(cell: Cell, results: &[(Server, Sample)]) {
    println!(
        "\n{} connection(s), {} messages",
        cell.conns,
        format_size(cell.size)
    );
    let rows: Vec<(&str, Sample)> = results.iter().map(|(s, x)| (s.name(), *x)).collect();
    tcp_load::print_table(10, &rows);
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

/// The load generator's client connections: the [`tcp_load`] frame drives them, one op in
/// flight per connection.
mod load {
    use std::net::TcpStream;

    use io_uring::{opcode, squeue, types};
    use iomgr_benches::machine::CpuClock;
    use iomgr_benches::tcp_load::{Connection, Op, Step};

    use super::*;

    /// One client connection and where its current round trip is.
    struct Conn {
        stream: TcpStream,
        tx: Vec<u8>,
        rx: Vec<u8>,
        /// Bytes of the current message sent or received so far.
        done: usize,
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
            })
        }

        /// The SQE receiving the rest of the echo.
        fn recv(&mut self) -> squeue::Entry {
            let rest = &mut self.rx[self.done..];
            let fd = types::Fd(self.stream.as_raw_fd());
            opcode::Recv::new(fd, rest.as_mut_ptr(), rest.len() as u32).build()
        }
    }

    // SAFETY: the SQEs are single-shot sends and receives pointing into the connection's
    // `tx`/`rx` buffers, on the heap, which it owns and never resizes (the socket, too, lives
    // as long as the connection).
    unsafe impl Connection for Conn {
        /// The SQE sending the rest of the message.
        fn send(&self) -> squeue::Entry {
            let rest = &self.tx[self.done..];
            let fd = types::Fd(self.stream.as_raw_fd());
            opcode::Send::new(fd, rest.as_ptr(), rest.len() as u32)
                .flags(libc::MSG_NOSIGNAL)
                .build()
        }

        fn advance(&mut self, op: Op, n: usize) -> io::Result<Step> {
            self.done += n;
            let size = self.tx.len();
            if op == Op::Send {
                if self.done < size {
                    return Ok(Step::Next(Op::Send, self.send()));
                }
                self.done = 0;
                return Ok(Step::Next(Op::Recv, self.recv()));
            }
            if self.done < size {
                return Ok(Step::Next(Op::Recv, self.recv()));
            }
            if self.rx != self.tx {
                return Err(io::Error::other("the server echoed different bytes"));
            }
            self.done = 0;
            Ok(Step::Done)
        }
    }

    /// Drives `cell.conns` ping-pong connections against `addr` through warm-up, the timed
    /// window and a drain, sampling the server's CPU clock at the window's ends.
    pub(super) fn run(
        addr: SocketAddr,
        cell: Cell,
        config: &Config,
        server_cpu: &CpuClock,
    ) -> io::Result<Sample> {
        let conns = (0..cell.conns)
            .map(|i| Conn::new(addr, cell.size, i))
            .collect::<io::Result<Vec<_>>>()?;
        tcp_load::run_load(conns, &config.timing, server_cpu)
    }
}
