//! Real handlers over loopback sockets, temp files, channels and timers, each written once
//! and compiled twice (`twin!`): as an `#[iomgr::task]` and as a plain `async fn`. Both run
//! on the same inputs (random ones where it fits); what the peer observes and what the
//! handler returns must be identical. `task_sizes` prints the size table and checks that
//! each task is exactly as large as the `async fn`'s future.

use std::io;
use std::net::Shutdown;
use std::time::Duration;

use iomgr::buf::BufExt;
use iomgr::net::{TcpListener, TcpStream};
use iomgr::sync::{Receiver, chan};
use iomgr::{Runtime, spawn};

/// Defines `$task` (`#[iomgr::task(...)]`) and `$plain` (`async fn`) with one body.
macro_rules! twin {
    (#[task($($opt:tt)*)] $task:ident, $plain:ident, ($($arg:ident : $ty:ty),*) -> $ret:ty $body:block) => {
        #[iomgr::task($($opt)*)]
        pub async fn $task($($arg: $ty),*) -> $ret $body
        pub async fn $plain($($arg: $ty),*) -> $ret $body
    };
}

/// A deterministic xorshift generator for random inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Connects a client that sends `input` in `chunks` (then shuts its write half) and reads
/// everything back; runs `handler` on the accepted stream. Returns (bytes the client got,
/// handler output).
fn serve<F, Fut>(input: Vec<u8>, chunks: Vec<usize>, handler: F) -> (Vec<u8>, Fut::Output)
where
    F: FnOnce(TcpStream) -> Fut,
    Fut: std::future::Future,
{
    Runtime::new().unwrap().block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = spawn(async move {
            let stream = TcpStream::connect(addr).await.unwrap();
            let mut rest = input;
            let mut chunks = chunks.into_iter();
            while !rest.is_empty() {
                let n = chunks.next().unwrap_or(usize::MAX).clamp(1, rest.len());
                let tail = rest.split_off(n);
                let (res, _) = stream.write_all(rest).await;
                if res.is_err() {
                    break;
                }
                rest = tail;
                iomgr::yield_now().await;
            }
            let _ = stream.shutdown(Shutdown::Write).await;
            let mut got = Vec::new();
            loop {
                let (res, buf) = stream.read(vec![0u8; 4096]).await;
                match res {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            got
        });
        let (stream, _) = listener.accept().await.unwrap();
        let out = handler(stream).await;
        let got = client.await.unwrap();
        (got, out)
    })
}

fn random_chunks(rng: &mut Rng, len: usize) -> Vec<usize> {
    (0..len / 3 + 2)
        .map(|_| 1 + rng.below(64) as usize)
        .collect()
}

// ---- 1. echo (the example) ----------------------------------------------------

twin!(#[task()] echo_t, echo_p, (stream: TcpStream) -> io::Result<u64> {
    let mut buf: Vec<u8> = vec![0; 4096];
    let mut total = 0u64;
    loop {
        let (res, b) = stream.read(buf).await;
        let n = res?;
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
        let (res, b) = stream.write_all(b.slice(..n)).await;
        res?;
        buf = b.into_inner();
    }
});

#[test]
fn echo_loop() {
    let mut rng = Rng(0x1234_5678);
    for round in 0..6 {
        let len = if round == 0 {
            0
        } else {
            rng.below(20_000) as usize
        };
        let input: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let chunks = random_chunks(&mut rng, len);
        let (got_t, out_t) = serve(input.clone(), chunks.clone(), echo_t);
        let (got_p, out_p) = serve(input.clone(), chunks, echo_p);
        assert_eq!(got_t, input);
        assert_eq!(got_t, got_p);
        assert_eq!(out_t.unwrap(), out_p.unwrap());
    }
}

// ---- 2. line protocol with match ------------------------------------------------------

twin!(#[task()] lines_t, lines_p, (stream: TcpStream) -> io::Result<u32> {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf: Vec<u8> = vec![0; 256];
    let mut handled = 0u32;
    loop {
        while let Some(pos) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=pos).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            let mut words = text.split_whitespace();
            let reply = match (words.next(), words.next(), words.next()) {
                (Some("PING"), None, _) => "PONG\n".to_string(),
                (Some("ADD"), Some(a), Some(b)) => match (a.parse::<i64>(), b.parse::<i64>()) {
                    (Ok(a), Ok(b)) => format!("{}\n", a + b),
                    _ => "ERR number\n".to_string(),
                },
                (Some("QUIT"), _, _) => {
                    let (res, _) = stream.write_all(b"BYE\n").await;
                    res?;
                    return Ok(handled);
                }
                (None, _, _) => continue,
                _ => "ERR unknown\n".to_string(),
            };
            handled += 1;
            let (res, _) = stream.write_all(reply.into_bytes()).await;
            res?;
        }
        let (res, b) = stream.read(buf).await;
        let n = res?;
        if n == 0 {
            return Ok(handled);
        }
        pending.extend_from_slice(&b[..n]);
        buf = b;
    }
});

#[test]
fn line_protocol() {
    let mut rng = Rng(42);
    let words = [
        "PING",
        "ADD 2 40",
        "ADD x 1",
        "HELLO",
        "",
        "ADD -5 3",
        "PING extra",
    ];
    for round in 0..5 {
        let mut input = String::new();
        for _ in 0..rng.below(30) {
            input.push_str(words[rng.below(words.len() as u64) as usize]);
            input.push('\n');
        }
        if round % 2 == 1 {
            input.push_str("QUIT\nPING\n");
        }
        let input = input.into_bytes();
        let chunks = random_chunks(&mut rng, input.len());
        let (got_t, out_t) = serve(input.clone(), chunks.clone(), lines_t);
        let (got_p, out_p) = serve(input, chunks, lines_p);
        assert_eq!(got_t, got_p);
        assert_eq!(out_t.unwrap(), out_p.unwrap());
        if round % 2 == 1 {
            assert!(got_t.ends_with(b"BYE\n"));
        }
    }
}

// ---- 3. HTTP/1.1 keep-alive loop with `?` and early returns ---------------------------

#[derive(Debug, PartialEq)]
pub enum HttpError {
    Io(io::ErrorKind),
    Malformed(String),
}

impl From<io::Error> for HttpError {
    fn from(e: io::Error) -> Self {
        HttpError::Io(e.kind())
    }
}

fn parse_head(head: &[u8]) -> Result<(String, bool), HttpError> {
    let text = std::str::from_utf8(head).map_err(|_| HttpError::Malformed("utf8".into()))?;
    let mut lines = text.split("\r\n");
    let request = lines.next().unwrap_or("");
    let mut parts = request.split(' ');
    let (Some("GET"), Some(path), Some("HTTP/1.1")) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpError::Malformed(request.to_string()));
    };
    let close = lines.any(|l| l.eq_ignore_ascii_case("connection: close"));
    Ok((path.to_string(), close))
}

twin!(#[task()] http_t, http_p, (stream: TcpStream) -> Result<u32, HttpError> {
    let mut pending: Vec<u8> = Vec::new();
    let mut served = 0u32;
    'conn: loop {
        let end = loop {
            if let Some(i) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if pending.len() > 8192 {
                return Err(HttpError::Malformed("head too large".into()));
            }
            let (res, b) = stream.read(vec![0u8; 1024]).await;
            let n = res?;
            if n == 0 {
                if pending.is_empty() {
                    break 'conn;
                }
                return Err(HttpError::Malformed("truncated".into()));
            }
            pending.extend_from_slice(&b[..n]);
        };
        let head: Vec<u8> = pending.drain(..end).collect();
        let (path, close) = parse_head(&head)?;
        let body = format!("you asked for {path}");
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{}",
            body.len(),
            body
        );
        let (res, _) = stream.write_all(response.into_bytes()).await;
        res?;
        served += 1;
        if close {
            break;
        }
    }
    Ok(served)
});

#[test]
fn http_keep_alive() {
    let mut rng = Rng(7);
    let cases: Vec<String> = vec![
        String::new(),
        "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\n\r\n".into(),
        "GET /a HTTP/1.1\r\nConnection: close\r\n\r\nGET /never HTTP/1.1\r\n\r\n".into(),
        "GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\n\r\n".into(),
        "GET /a HTTP/1.1\r\n\r\nGET /trunc".into(),
    ];
    for input in cases {
        let input = input.into_bytes();
        let chunks = random_chunks(&mut rng, input.len());
        let (got_t, out_t) = serve(input.clone(), chunks.clone(), http_t);
        let (got_p, out_p) = serve(input, chunks, http_p);
        assert_eq!(
            String::from_utf8_lossy(&got_t),
            String::from_utf8_lossy(&got_p)
        );
        assert_eq!(out_t, out_p);
    }
}

// ---- 4. file copy with `while` --------------------------------------------------------

twin!(#[task()] copy_t, copy_p, (from: std::path::PathBuf, to: std::path::PathBuf, chunk: usize) -> io::Result<u64> {
    let src = iomgr::fs::File::open(&from).await?;
    let dst = iomgr::fs::File::create(&to).await?;
    let mut offset = 0u64;
    let mut buf: Vec<u8> = vec![0; chunk];
    let mut done = false;
    while !done {
        let (res, b) = src.read_at(buf, offset).await;
        let n = res?;
        if n == 0 {
            done = true;
            buf = b;
            continue;
        }
        let (res, slice) = dst.write_all_at(b.slice(..n), offset).await;
        res?;
        offset += n as u64;
        buf = slice.into_inner();
    }
    dst.sync_all().await?;
    Ok(offset)
});

#[test]
fn file_copy() {
    let dir = std::env::temp_dir().join(format!("iomgr-task-copy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = Rng(99);
    for (i, len) in [0usize, 1, 4096, 10_000].into_iter().enumerate() {
        let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let src = dir.join(format!("src{i}"));
        std::fs::write(&src, &data).unwrap();
        let rt = Runtime::new().unwrap();
        let a = rt
            .block_on(copy_t(src.clone(), dir.join(format!("t{i}")), 1000))
            .unwrap();
        let b = rt
            .block_on(copy_p(src.clone(), dir.join(format!("p{i}")), 1000))
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(a, len as u64);
        assert_eq!(std::fs::read(dir.join(format!("t{i}"))).unwrap(), data);
        assert_eq!(std::fs::read(dir.join(format!("p{i}"))).unwrap(), data);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- 5. nested loops with labelled `break` ----------------------------------------------

twin!(#[task()] frames_t, frames_p, (stream: TcpStream) -> io::Result<Vec<u32>> {
    // Frames of bytes terminated by 0; a frame starting with 255 ends the session.
    let mut sums = Vec::new();
    let mut buf: Vec<u8> = vec![0; 7];
    let mut sum = 0u32;
    let mut first = true;
    'session: loop {
        let (res, b) = stream.read(buf).await;
        let n = res?;
        if n == 0 {
            break 'session;
        }
        // The frame's bytes stay borrowed across the `.await` below, as in any `async fn`.
        for &byte in &b[..n] {
            if first && byte == 255 {
                break 'session;
            }
            first = false;
            if byte == 0 {
                sums.push(sum);
                let (res, _) = stream.write_all(sum.to_string().into_bytes()).await;
                res?;
                sum = 0;
                first = true;
                continue;
            }
            sum += byte as u32;
        }
        buf = b;
    }
    Ok(sums)
});

#[test]
fn nested_loops_labelled_break() {
    let mut rng = Rng(5);
    for round in 0..5 {
        let len = rng.below(200) as usize;
        let mut input: Vec<u8> = (0..len)
            .map(|_| {
                if rng.below(5) == 0 {
                    0
                } else {
                    1 + rng.below(250) as u8
                }
            })
            .collect();
        if round % 2 == 0 {
            // The terminator comes last: bytes left unread when the handler closes the socket
            // would make the kernel answer with a RST, which can discard the replies still on
            // their way to the client (a race between the twins, not a lowering difference).
            input.extend_from_slice(&[0, 255]);
        }
        let chunks = random_chunks(&mut rng, input.len());
        let (got_t, out_t) = serve(input.clone(), chunks.clone(), frames_t);
        let (got_p, out_p) = serve(input, chunks, frames_p);
        assert_eq!(got_t, got_p);
        assert_eq!(out_t.unwrap(), out_p.unwrap());
    }
}

// ---- 6. a state machine over a `match` on messages from a channel -----------------------

#[derive(Debug, Clone)]
pub enum Msg {
    Login(String),
    Data(u32),
    Logout,
    Flush,
}

twin!(#[task()] session_t, session_p, (rx: Receiver<Msg>) -> Vec<String> {
    let mut log = Vec::new();
    let mut user: Option<String> = None;
    let mut total = 0u32;
    while let Some(msg) = rx.recv().await {
        match (&user, msg) {
            (None, Msg::Login(name)) => {
                log.push(format!("hello {name}"));
                user = Some(name);
            }
            (None, other) => log.push(format!("rejected {other:?}")),
            (Some(_), Msg::Data(n)) if n > 1000 => {
                log.push("too big".into());
                break;
            }
            (Some(_), Msg::Data(n)) => total += n,
            (Some(u), Msg::Flush) => {
                let u = u.clone();
                iomgr::yield_now().await;
                log.push(format!("{u}: {total}"));
                total = 0;
            }
            (Some(_), Msg::Logout) => {
                log.push("bye".into());
                user = None;
            }
            (Some(_), Msg::Login(_)) => log.push("already".into()),
        }
    }
    log.push(format!("end {total}"));
    log
});

#[test]
fn channel_state_machine() {
    let mut rng = Rng(11);
    for _ in 0..6 {
        let msgs: Vec<Msg> = (0..rng.below(40))
            .map(|_| match rng.below(6) {
                0 => Msg::Login(format!("u{}", rng.below(3))),
                1 | 2 => Msg::Data(rng.below(1100) as u32),
                3 => Msg::Flush,
                4 => Msg::Logout,
                _ => Msg::Data(1),
            })
            .collect();
        let run = |task: bool, msgs: Vec<Msg>| {
            Runtime::new().unwrap().block_on(async move {
                let (tx, rx) = chan(4);
                let producer = spawn(async move {
                    for m in msgs {
                        if tx.send(m).await.is_err() {
                            break;
                        }
                    }
                });
                let out = if task {
                    session_t(rx).await
                } else {
                    session_p(rx).await
                };
                producer.await.unwrap();
                out
            })
        };
        assert_eq!(run(true, msgs.clone()), run(false, msgs));
    }
}

// ---- 7. an accept loop spawning children ------------------------------------------------

#[iomgr::task]
async fn accept_t(listener: TcpListener, n: usize) -> io::Result<u64> {
    let mut children = Vec::new();
    for _ in 0..n {
        let (stream, _) = listener.accept().await?;
        children.push(spawn(echo_t(stream)));
    }
    let mut total = 0;
    for child in children {
        total += child.await.unwrap()?;
    }
    Ok(total)
}

async fn accept_p(listener: TcpListener, n: usize) -> io::Result<u64> {
    let mut children = Vec::new();
    for _ in 0..n {
        let (stream, _) = listener.accept().await?;
        children.push(spawn(echo_p(stream)));
    }
    let mut total = 0;
    for child in children {
        total += child.await.unwrap()?;
    }
    Ok(total)
}

#[test]
fn accept_loop_spawning_children() {
    for task in [true, false] {
        let (total, echoed) = Runtime::new().unwrap().block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let server = if task {
                spawn(async move { accept_t(listener, 3).await })
            } else {
                spawn(accept_p(listener, 3))
            };
            let mut echoed = Vec::new();
            for i in 0..3u8 {
                let s = TcpStream::connect(addr).await.unwrap();
                let msg = vec![i; 100 * (i as usize + 1)];
                let (res, _) = s.write_all(msg.clone()).await;
                res.unwrap();
                s.shutdown(Shutdown::Write).await.unwrap();
                let mut got = Vec::new();
                loop {
                    let (res, b) = s.read(vec![0u8; 64]).await;
                    match res.unwrap() {
                        0 => break,
                        n => got.extend_from_slice(&b[..n]),
                    }
                }
                echoed.push(got == msg);
            }
            (server.await.unwrap().unwrap(), echoed)
        });
        assert_eq!(total, 100 + 200 + 300);
        assert_eq!(echoed, [true, true, true]);
    }
}

// ---- 8. a timeout race -----------------------------------------------------------------

twin!(#[task()] deadline_t, deadline_p, (stream: TcpStream, ms: u64) -> io::Result<String> {
    let mut got = Vec::new();
    loop {
        match iomgr::time::timeout(Duration::from_millis(ms), stream.read(vec![0u8; 64])).await {
            Ok((res, b)) => {
                let n = res?;
                if n == 0 {
                    return Ok(format!("eof after {}", got.len()));
                }
                got.extend_from_slice(&b[..n]);
            }
            Err(_elapsed) => {
                let (res, _) = stream.write_all(b"TIMEOUT").await;
                res?;
                return Ok(format!("timeout after {}", got.len()));
            }
        }
    }
});

#[test]
fn timeout_race() {
    for task in [true, false] {
        let (reply, out) = Runtime::new().unwrap().block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let client = spawn(async move {
                let s = TcpStream::connect(addr).await.unwrap();
                let (res, _) = s.write_all(b"abc").await;
                res.unwrap();
                // Stay silent (without closing) until the server gives up.
                let (res, b) = s.read(vec![0u8; 64]).await;
                let n = res.unwrap();
                b[..n].to_vec()
            });
            let (stream, _) = listener.accept().await.unwrap();
            let out = if task {
                deadline_t(stream, 50).await
            } else {
                deadline_p(stream, 50).await
            };
            (client.await.unwrap(), out.unwrap())
        });
        assert_eq!(reply, b"TIMEOUT");
        assert_eq!(out, "timeout after 3");
    }
}

// ---- the size table -----------------------------------------------------------------------

fn size_of_val_fut<F: std::future::Future>(_: &F) -> usize {
    std::mem::size_of::<F>()
}

#[test]
fn task_sizes() {
    use std::mem::size_of;
    let rt = Runtime::new().unwrap();
    let rows: Vec<(&str, usize, usize)> = rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let s = TcpStream::connect(addr).await.unwrap();
        let (rx_tx, rx) = chan::<Msg>(1);
        drop(rx_tx);
        let p = std::path::PathBuf::new();
        let l2 = TcpListener::bind("127.0.0.1:0").unwrap();
        vec![
            ("echo", size_of::<EchoTTask>(), size_of_val_fut(&echo_p(s))),
            ("lines", size_of::<LinesTTask>(), {
                let s = TcpStream::connect(addr).await.unwrap();
                size_of_val_fut(&lines_p(s))
            }),
            ("http", size_of::<HttpTTask>(), {
                let s = TcpStream::connect(addr).await.unwrap();
                size_of_val_fut(&http_p(s))
            }),
            (
                "copy",
                size_of::<CopyTTask>(),
                size_of_val_fut(&copy_p(p.clone(), p, 1)),
            ),
            ("frames", size_of::<FramesTTask>(), {
                let s = TcpStream::connect(addr).await.unwrap();
                size_of_val_fut(&frames_p(s))
            }),
            (
                "session",
                size_of::<SessionTTask>(),
                size_of_val_fut(&session_p(rx)),
            ),
            (
                "accept",
                size_of::<AcceptTTask>(),
                size_of_val_fut(&accept_p(l2, 0)),
            ),
            ("deadline", size_of::<DeadlineTTask>(), {
                let s = TcpStream::connect(addr).await.unwrap();
                size_of_val_fut(&deadline_p(s, 1))
            }),
        ]
    });
    println!("| handler | #[iomgr::task] | async fn |");
    println!("|---|---:|---:|");
    for (name, task, plain) in &rows {
        println!("| {name} | {task} | {plain} |");
        assert_eq!(task, plain, "size of the {name} task");
    }
}
