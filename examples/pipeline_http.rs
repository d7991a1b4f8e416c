//! HTTP/1.1 as a pipeline, after ioManager's `http_rpc_demo`: a request parser (a
//! `Decoder`), a handler (a function), a response serializer (an `Encoder`), over each
//! keep-alive connection; and a load client that prints requests per second.
//!
//! ```text
//! cargo run --release --example pipeline_http                      # server + load, prints requests/s
//! cargo run --release --example pipeline_http -- --secs 5 --conns 64 --depth 4
//! cargo run --release --example pipeline_http -- --serve 127.0.0.1:8080   # try `curl localhost:8080/hello`
//! ```
//!
//! Each connection runs
//!
//! ```text
//! &stream => RequestParser::new() => route => ResponseWriter => &stream
//! ```
//!
//! Requests may be pipelined (several sent before the first answer): the parser gives them
//! one by one, in order, and the writer answers them in order. A request head over 8 KiB or
//! a body over 64 KiB is an error that closes the connection (never an unbounded buffer).
//! The server runs on its own thread; the load client (plain blocking sockets, one thread
//! per connection, `--depth` requests in flight on each) on the main thread.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use iomgr::net::{TcpListener, TcpStream};
use iomgr::pipeline::{Decoder, Encoder};
use iomgr::{Runtime, spawn};

const MAX_HEAD: usize = 8 * 1024;
const MAX_BODY: usize = 64 * 1024;

/// A parsed request.
#[derive(Debug)]
struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
    close: bool,
}

/// A response to serialize.
struct Response {
    status: u16,
    reason: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
    close: bool,
}

/// The parser: bytes in, one `Request` per whole request (head and body).
struct RequestParser;

impl RequestParser {
    fn new() -> Self {
        RequestParser
    }
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

impl Decoder for RequestParser {
    type Frame = Request;

    fn decode(&mut self, bytes: &[u8]) -> io::Result<Option<(Request, usize)>> {
        let window = &bytes[..bytes.len().min(MAX_HEAD)];
        let Some(head_end) = window.windows(4).position(|w| w == b"\r\n\r\n") else {
            if bytes.len() >= MAX_HEAD {
                return Err(bad("a request head over 8 KiB"));
            }
            return Ok(None);
        };
        let head =
            std::str::from_utf8(&bytes[..head_end]).map_err(|_| bad("a head that is not UTF-8"))?;
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default();
        let mut parts = request_line.split(' ');
        let (Some(method), Some(path), Some(version)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad(format!("a malformed request line: {request_line:?}")));
        };
        let mut length = 0usize;
        let mut close = version == "HTTP/1.0";
        for header in lines {
            let Some((name, value)) = header.split_once(':') else {
                return Err(bad(format!("a malformed header: {header:?}")));
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().map_err(|_| bad("a bad Content-Length"))?;
                if length > MAX_BODY {
                    return Err(bad("a body over 64 KiB"));
                }
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
        let body_start = head_end + 4;
        let Some(body) = bytes.get(body_start..body_start + length) else {
            return Ok(None); // the body is still coming
        };
        let request = Request {
            method: method.to_string(),
            path: path.to_string(),
            body: body.to_vec(),
            close,
        };
        Ok(Some((request, body_start + length)))
    }

    fn max_frame(&self) -> usize {
        MAX_HEAD + MAX_BODY
    }
}

/// The handler.
fn route(request: Request) -> Response {
    let (status, reason, content_type, body) =
        match (request.method.as_str(), request.path.as_str()) {
            ("GET", "/hello") => (200, "OK", "text/plain", b"hello, pipelines\n".to_vec()),
            ("POST", "/echo") => (200, "OK", "application/octet-stream", request.body),
            ("GET", path) if path.starts_with("/len/") => (
                200,
                "OK",
                "text/plain",
                format!("{}\n", path.len() - 5).into_bytes(),
            ),
            _ => (404, "Not Found", "text/plain", b"no such thing\n".to_vec()),
        };
    Response {
        status,
        reason,
        content_type,
        body,
        close: request.close,
    }
}

/// The serializer: one buffer per response, head and body.
struct ResponseWriter;

impl Encoder<Response> for ResponseWriter {
    type Out = Vec<u8>;

    fn encode(&mut self, r: Response) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(128 + r.body.len());
        write!(
            out,
            "HTTP/1.1 {} {}\r\ncontent-type: {}\r\ncontent-length: {}\r\n{}\r\n",
            r.status,
            r.reason,
            r.content_type,
            r.body.len(),
            if r.close { "connection: close\r\n" } else { "" }
        )?;
        out.extend_from_slice(&r.body);
        Ok(out)
    }
}

async fn connection(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let result = iomgr::pipeline! {
        &stream => RequestParser::new() => route => ResponseWriter => &stream
    }
    .await;
    if let Err(e) = result
        && e.kind() != io::ErrorKind::ConnectionReset
    {
        eprintln!("connection closed: {e}");
    }
}

async fn serve(listener: TcpListener) -> io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        spawn(connection(stream));
    }
}

struct Options {
    serve: Option<String>,
    secs: u64,
    conns: usize,
    depth: usize,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        serve: None,
        secs: 3,
        conns: 16,
        depth: 1,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or(format!("{arg} needs a value"))?;
        let number = || value.parse::<usize>().map_err(|e| format!("{arg}: {e}"));
        match arg.as_str() {
            "--serve" => o.serve = Some(value.clone()),
            "--secs" => o.secs = number()? as u64,
            "--conns" => o.conns = number()?,
            "--depth" => o.depth = number()?.max(1),
            other => {
                return Err(format!(
                    "unknown argument {other:?}; usage: pipeline_http [--serve ADDR] [--secs N] [--conns N] [--depth N]"
                ));
            }
        }
    }
    Ok(o)
}

/// One load connection: keeps `depth` requests in flight, counts whole responses.
fn load(
    addr: SocketAddr,
    depth: usize,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
) -> io::Result<()> {
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    let request = b"GET /hello HTTP/1.1\r\nhost: bench\r\n\r\n";
    let response_len = {
        s.write_all(request)?;
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf)?;
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200 OK"),
            "{:?}",
            String::from_utf8_lossy(&buf[..n])
        );
        n
    };
    let batch: Vec<u8> = request.repeat(depth);
    let mut buf = vec![0u8; response_len * depth];
    while !stop.load(Ordering::Relaxed) {
        s.write_all(&batch)?;
        s.read_exact(&mut buf)?;
        done.fetch_add(depth as u64, Ordering::Relaxed);
    }
    Ok(())
}

fn main() -> io::Result<()> {
    let o = options().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    if let Some(addr) = &o.serve {
        let listener = TcpListener::bind(addr.as_str())?;
        println!("serving HTTP/1.1 on {}", listener.local_addr()?);
        return Runtime::new()?.block_on(serve(listener));
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || -> io::Result<()> {
        let rt = Runtime::new()?;
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            tx.send(listener.local_addr()?).expect("main thread");
            serve(listener).await
        })
    });
    let addr = rx.recv().expect("server thread");
    println!(
        "{} connections, {} request(s) in flight each, for {} s against {addr}",
        o.conns, o.depth, o.secs
    );
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..o.conns)
        .map(|_| {
            let (stop, done) = (stop.clone(), done.clone());
            std::thread::spawn(move || load(addr, o.depth, stop, done))
        })
        .collect();
    let start = Instant::now();
    let mut last = 0;
    for second in 1..=o.secs {
        std::thread::sleep(Duration::from_secs(1));
        let now = done.load(Ordering::Relaxed);
        println!("{second:>3} s: {:>9} requests/s", now - last);
        last = now;
    }
    stop.store(true, Ordering::Relaxed);
    let total = done.load(Ordering::Relaxed);
    for c in clients {
        c.join().expect("load thread")?;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "total: {total} requests in {secs:.1} s = {:.0} requests/s",
        total as f64 / secs
    );
    Ok(())
}
