//! Buffers side by side: plain receive vs provided-buffer ring under many connections, and
//! plain send vs `SEND_ZC` for 64 KiB messages. Both sides in one run, interleaved, each
//! cell repeated; medians, with ratios to the first row.
//!
//! **Receive.** An iomgr server (one thread, pinned to core 0) holds `--conns` connections
//! (default 1024) and counts what arrives; the load (one thread on core 1, blocking writes)
//! sends 512-byte messages round-robin over all connections. `plain` gives each connection
//! its own 4 KiB buffer and a `read` in flight; `ring` gives every connection a multishot
//! receive into one shared ring of 4 KiB buffers: 256 of them (a quarter of the memory,
//! so the ring runs dry and streams re-arm), and one per connection (the same memory). Reported: the server's CPU time
//! per message (the figure to trust on loopback), throughput, and the buffer memory each
//! design keeps for the connections.
//!
//! **Send.** An iomgr server sends 64 KiB messages on one connection (`write_all` vs
//! `write_all_zc`); a blocking reader on core 1 drains them. On loopback the kernel cannot
//! hand the pages to a NIC, so `SEND_ZC` completes by copying when the data is delivered,
//! and its cost (pinning pages, a second completion per send) shows without its benefit.
//!
//! ```text
//! cargo run --release --manifest-path benches/Cargo.toml --bin buffers [-- --reps 5 --conns 1024]
//! ```

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use iomgr::buf::{BufExt, BufRing};
use iomgr::net::{TcpListener, TcpStream};
use iomgr_benches::args::parse_flag;
use iomgr_benches::machine::{load_average, pin_to_core, thread_cpu_time};
use iomgr_benches::stats::{median, rotated};

const MESSAGE: usize = 512;
const ROUNDS_PER_CONN: usize = 200;
const SERVER_BUF: usize = 4096;
const RING_ENTRIES: u16 = 256;
const ZC_MESSAGE: usize = 64 * 1024;
const ZC_MESSAGES: usize = 20_000;

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // A flag with a missing or malformed value gets its default.
    let flag = |name: &str| parse_flag::<usize>(&args, name).ok().flatten();
    let reps = flag("--reps").unwrap_or(5).max(1);
    let conns = flag("--conns").unwrap_or(1024).max(1);
    raise_fd_limit(conns * 2 + 64)?;
    pin_to_core(1)?;
    println!(
        "buffers: server on core 0, load on core 1; median of {reps} run(s); ratios are to \
         the first row; load average before: {}",
        load_average()
    );

    println!(
        "\nreceive: {conns} connections, {MESSAGE} B messages, {} messages",
        conns * ROUNDS_PER_CONN
    );
    let recv_kinds = [
        Recv::Plain,
        Recv::Ring(RING_ENTRIES),
        Recv::Ring(ring_for(conns)),
    ];
    let mut recv: Vec<Vec<Sample>> = vec![Vec::new(); 3];
    for rep in 0..reps {
        for i in rotated(3, rep) {
            recv[i].push(run_recv(recv_kinds[i], conns)?);
        }
    }
    print_table(
        &recv_kinds.map(|k| k.describe(conns)),
        &recv,
        "msg",
        |k| k.buffer_bytes(conns),
        &recv_kinds,
    );

    println!("\nsend: 1 connection, {ZC_MESSAGES} messages of 64 KiB");
    let send_kinds = [Send::Plain, Send::Zc];
    let mut send: Vec<Vec<Sample>> = vec![Vec::new(); 2];
    for rep in 0..reps {
        for i in rotated(2, rep) {
            send[i].push(run_send(send_kinds[i])?);
        }
    }
    print_table(
        &send_kinds.map(|k| k.describe()),
        &send,
        "msg",
        |_| 0,
        &send_kinds,
    );
    println!("\nload average after: {}", load_average());
    Ok(())
}

#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    /// Server CPU time per message.
    cpu_per_msg: Duration,
    /// Payload bytes per second.
    bytes_per_sec: f64,
}

fn print_table<K>(
    names: &[String],
    samples: &[Vec<Sample>],
    unit: &str,
    memory: impl Fn(&K) -> usize,
    kinds: &[K],
) {
    println!(
        "{:<34} {:>12} {:>6} {:>10} {:>6} {:>12}",
        "server",
        format!("CPU ns/{unit}"),
        "ratio",
        "MB/s",
        "ratio",
        "buffer mem"
    );
    let medians: Vec<Sample> = samples.iter().map(|s| median_sample(s)).collect();
    let base = medians[0];
    for ((name, m), kind) in names.iter().zip(&medians).zip(kinds) {
        let mem = memory(kind);
        println!(
            "{:<34} {:>12.0} {:>6.2} {:>10.0} {:>6.2} {:>12}",
            name,
            m.cpu_per_msg.as_secs_f64() * 1e9,
            m.cpu_per_msg.as_secs_f64() / base.cpu_per_msg.as_secs_f64(),
            m.bytes_per_sec / 1e6,
            m.bytes_per_sec / base.bytes_per_sec,
            if mem == 0 {
                "-".to_string()
            } else {
                format!("{} KiB", mem / 1024)
            },
        );
    }
}

/// The median of each column separately.
fn median_sample(samples: &[Sample]) -> Sample {
    Sample {
        cpu_per_msg: median(samples.iter().map(|s| s.cpu_per_msg)),
        bytes_per_sec: median(samples.iter().map(|s| s.bytes_per_sec)),
    }
}

#[derive(Clone, Copy, Debug)]
enum Recv {
    Plain,
    /// A shared ring of this many buffers.
    Ring(u16),
}

/// A ring with a buffer per connection: as much memory as `plain`.
fn ring_for(conns: usize) -> u16 {
    conns.next_power_of_two().clamp(1, 32768) as u16
}

impl Recv {
    fn describe(self, conns: usize) -> String {
        match self {
            Recv::Plain => format!("plain read, {conns} x 4 KiB buffers"),
            Recv::Ring(n) => format!("recv_multishot, ring {n} x 4 KiB"),
        }
    }

    fn buffer_bytes(&self, conns: usize) -> usize {
        match self {
            Recv::Plain => conns * SERVER_BUF,
            Recv::Ring(n) => *n as usize * SERVER_BUF,
        }
    }
}

/// One receive run: the server thread's CPU per message and the throughput.
fn run_recv(kind: Recv, conns: usize) -> io::Result<Sample> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let server = thread::spawn(move || -> io::Result<Duration> {
        pin_to_core(0)?;
        let rt = iomgr::Runtime::builder().entries(1024).build()?;
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let _ = ready_tx.send(listener.local_addr()?);
            let mut streams = Vec::with_capacity(conns);
            for _ in 0..conns {
                streams.push(listener.accept().await?.0);
            }
            let ring = match kind {
                Recv::Ring(n) => Some(BufRing::new(n, SERVER_BUF)?),
                Recv::Plain => None,
            };
            let start = thread_cpu_time();
            let mut tasks = Vec::with_capacity(conns);
            for stream in streams {
                let ring = ring.clone();
                tasks.push(iomgr::spawn(async move {
                    let mut total = 0usize;
                    match ring {
                        None => {
                            let mut buf = vec![0u8; SERVER_BUF];
                            loop {
                                let (res, b) = stream.read(buf).await;
                                buf = b;
                                match res {
                                    Ok(0) | Err(_) => return total,
                                    Ok(n) => total += n,
                                }
                            }
                        }
                        Some(ring) => {
                            let mut chunks = pin!(stream.recv_multishot(&ring));
                            while let Some(Ok(chunk)) = chunks.as_mut().next().await {
                                total += chunk.len();
                            }
                            total
                        }
                    }
                }));
            }
            let mut total = 0;
            for task in tasks {
                total += task.await.unwrap_or(0);
            }
            assert_eq!(total, conns * ROUNDS_PER_CONN * MESSAGE, "bytes lost");
            Ok(thread_cpu_time() - start)
        })
    });
    let addr: SocketAddr = ready_rx
        .recv()
        .map_err(|_| io::Error::other("the server did not start"))?;
    let mut clients = Vec::with_capacity(conns);
    for _ in 0..conns {
        clients.push(std::net::TcpStream::connect(addr)?);
    }
    let message = [7u8; MESSAGE];
    let start = Instant::now();
    for _ in 0..ROUNDS_PER_CONN {
        for client in &mut clients {
            client.write_all(&message)?;
        }
    }
    drop(clients);
    let cpu = server
        .join()
        .map_err(|_| io::Error::other("the server panicked"))??;
    let wall = start.elapsed();
    let messages = conns * ROUNDS_PER_CONN;
    Ok(Sample {
        cpu_per_msg: cpu / messages as u32,
        bytes_per_sec: (messages * MESSAGE) as f64 / wall.as_secs_f64(),
    })
}

#[derive(Clone, Copy, Debug)]
enum Send {
    Plain,
    Zc,
}

impl Send {
    fn describe(self) -> String {
        match self {
            Send::Plain => "write_all (send)".to_string(),
            Send::Zc => "write_all_zc (SEND_ZC)".to_string(),
        }
    }
}

/// One send run: the server thread's CPU per 64 KiB message and the throughput.
fn run_send(kind: Send) -> io::Result<Sample> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let server = thread::spawn(move || -> io::Result<(Duration, Duration)> {
        pin_to_core(0)?;
        let rt = iomgr::Runtime::new()?;
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let _ = ready_tx.send(listener.local_addr()?);
            let (stream, _): (TcpStream, _) = listener.accept().await?;
            let mut buf = vec![1u8; ZC_MESSAGE];
            let start = thread_cpu_time();
            let wall = Instant::now();
            for _ in 0..ZC_MESSAGES {
                let (res, b) = match kind {
                    Send::Plain => stream.write_all(buf.slice(..)).await,
                    Send::Zc => stream.write_all_zc(buf.slice(..)).await,
                };
                res?;
                buf = b.into_inner();
            }
            Ok((thread_cpu_time() - start, wall.elapsed()))
        })
    });
    let addr: SocketAddr = ready_rx
        .recv()
        .map_err(|_| io::Error::other("the server did not start"))?;
    let mut client = std::net::TcpStream::connect(addr)?;
    let mut sink = vec![0u8; 256 * 1024];
    let mut got = 0;
    while got < ZC_MESSAGE * ZC_MESSAGES {
        match client.read(&mut sink)? {
            0 => break,
            n => got += n,
        }
    }
    let (cpu, wall) = server
        .join()
        .map_err(|_| io::Error::other("the server panicked"))??;
    Ok(Sample {
        cpu_per_msg: cpu / ZC_MESSAGES as u32,
        bytes_per_sec: (ZC_MESSAGE * ZC_MESSAGES) as f64 / wall.as_secs_f64(),
    })
}

fn raise_fd_limit(want: usize) -> io::Result<()> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur as usize >= want {
        return Ok(());
    }
    lim.rlim_cur = (want as libc::rlim_t).min(lim.rlim_max);
    // SAFETY: as above; raising the soft limit up to the hard one needs no privilege.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
