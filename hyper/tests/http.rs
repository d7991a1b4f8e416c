//! hyper's HTTP/1 server and client on iomgr, over real loopback sockets.
//!
//! The server side is `iomgr_hyper::serve_with` or a hand-made accept loop; clients are
//! hyper's own client on `HyperIo` (so both halves of the adapter run), or raw bytes written
//! with iomgr's owned-buffer API where a test needs to misbehave (pipelining, hanging up
//! mid-request, stalling in the headers).

use std::cell::Cell;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use iomgr::net::{TcpListener, TcpStream, UnixStream};
use iomgr_hyper::{HyperIo, IomgrTimer};

/// `GET /size/N`: N bytes of a known pattern; `POST /echo`: the request body; otherwise
/// "Hello, world!".
async fn route(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let path = req.uri().path().to_string();
    if req.method() == Method::POST && path == "/echo" {
        let body = req.into_body().collect().await?.to_bytes();
        return Ok(Response::new(Full::new(body)));
    }
    if let Some(n) = path.strip_prefix("/size/") {
        let n: usize = n.parse().expect("a size");
        return Ok(Response::new(Full::new(pattern(n).into())));
    }
    Ok(Response::new(Full::new(Bytes::from_static(
        b"Hello, world!",
    ))))
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn timer_builder() -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder.timer(IomgrTimer);
    builder
}

/// Starts `serve_with` on a new listener; returns its address and a count of accepted
/// connections (counted by the service maker).
fn start_server(builder: http1::Builder) -> (SocketAddr, Rc<Cell<usize>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Rc::new(Cell::new(0));
    let count = accepted.clone();
    iomgr::spawn(iomgr_hyper::serve_with(listener, builder, move |_| {
        count.set(count.get() + 1);
        service_fn(route)
    }));
    (addr, accepted)
}

/// A hyper client connection on `HyperIo`, its connection task spawned.
async fn client(addr: SocketAddr) -> SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(HyperIo::new(stream))
        .await
        .unwrap();
    iomgr::spawn(async move {
        let _ = conn.await;
    });
    sender
}

async fn request(
    sender: &mut SendRequest<Full<Bytes>>,
    method: Method,
    path: &str,
    body: Vec<u8>,
) -> (StatusCode, Bytes) {
    sender.ready().await.unwrap();
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "test")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = sender.send_request(req).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, body)
}

const SIZES: [usize; 4] = [0, 1, 64 * 1024, 1024 * 1024];

#[iomgr::test]
async fn get_bodies_of_several_sizes() {
    let (addr, _) = start_server(timer_builder());
    let mut sender = client(addr).await;
    for size in SIZES {
        let (status, body) =
            request(&mut sender, Method::GET, &format!("/size/{size}"), vec![]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body.len(), size, "GET /size/{size}");
        assert!(body == pattern(size), "GET /size/{size}: wrong bytes");
    }
}

#[iomgr::test]
async fn post_bodies_of_several_sizes_come_back() {
    let (addr, _) = start_server(timer_builder());
    let mut sender = client(addr).await;
    for size in SIZES {
        let sent: Vec<u8> = pattern(size).into_iter().rev().collect();
        let (status, body) = request(&mut sender, Method::POST, "/echo", sent.clone()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body.len(), size, "POST of {size} bytes");
        assert!(body == sent, "POST of {size} bytes: wrong bytes");
    }
}

#[iomgr::test]
async fn keep_alive_serves_many_requests_on_one_connection() {
    let (addr, accepted) = start_server(timer_builder());
    let mut sender = client(addr).await;
    for i in 0..500 {
        let body = format!("request {i}").into_bytes();
        let (status, echoed) = request(&mut sender, Method::POST, "/echo", body.clone()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(echoed, body);
    }
    assert_eq!(accepted.get(), 1, "every request went over one connection");
}

/// Raw bytes in, raw bytes out: `n` pipelined requests written at once, `n` responses read.
#[iomgr::test]
async fn pipelined_requests_are_answered_in_order() {
    let (addr, accepted) = start_server(timer_builder());
    let stream = TcpStream::connect(addr).await.unwrap();
    let n = 20;
    let mut requests = Vec::new();
    for i in 0..n {
        let body = format!("pipelined {i}");
        requests.extend_from_slice(
            format!(
                "POST /echo HTTP/1.1\r\nhost: t\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
    }
    let (res, _) = stream.write_all(requests).await;
    res.unwrap();

    let mut received = Vec::new();
    let mut buf = vec![0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    while responses(&received).len() < n {
        assert!(Instant::now() < deadline, "responses did not all arrive");
        let (res, b) = stream.read(buf).await;
        let got = res.unwrap();
        assert!(
            got > 0,
            "the server closed after {} responses",
            responses(&received).len()
        );
        received.extend_from_slice(&b[..got]);
        buf = b;
    }
    let bodies = responses(&received);
    for (i, body) in bodies.iter().enumerate() {
        assert_eq!(body, format!("pipelined {i}").as_bytes());
    }
    assert_eq!(accepted.get(), 1);
}

/// The bodies of the complete responses at the start of `bytes` (content-length framing).
fn responses(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut bodies = Vec::new();
    loop {
        let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
            return bodies;
        };
        let head = std::str::from_utf8(&bytes[..end])
            .unwrap()
            .to_ascii_lowercase();
        assert!(
            head.starts_with("http/1.1 200"),
            "unexpected response: {head}"
        );
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .expect("content-length")
            .parse()
            .unwrap();
        let body_start = end + 4;
        if bytes.len() < body_start + len {
            return bodies;
        }
        bodies.push(bytes[body_start..body_start + len].to_vec());
        bytes = &bytes[body_start + len..];
    }
}

/// Accepts one connection and serves it with `builder`; the handle gives the connection's
/// result (a task that panicked would be an error of the handle).
async fn serve_one(
    listener: TcpListener,
    builder: http1::Builder,
) -> iomgr::JoinHandle<Result<(), hyper::Error>> {
    let (stream, _) = listener.accept().await.unwrap();
    iomgr::spawn(builder.serve_connection(HyperIo::new(stream), service_fn(route)))
}

#[iomgr::test]
async fn a_client_hanging_up_mid_request_ends_the_connection_task_cleanly() {
    // Mid-headers, and mid-body (the service is waiting for the rest of the body).
    type Expected = fn(&hyper::Error) -> bool;
    let partials: [(&[u8], Expected); 2] = [
        (
            b"GET /size/10 HTTP/1.1\r\nhost: t\r\nx-partial: ",
            hyper::Error::is_incomplete_message,
        ),
        (
            b"POST /echo HTTP/1.1\r\nhost: t\r\ncontent-length: 100000\r\n\r\nonly a few bytes",
            // The service's body read failed, and it returned that error.
            hyper::Error::is_user,
        ),
    ];
    for (partial, expected) in partials {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = iomgr::spawn(serve_one(listener, timer_builder()));
        let stream = TcpStream::connect(addr).await.unwrap();
        let conn = server.await.unwrap();
        let (res, _) = stream.write_all(partial).await;
        res.unwrap();
        iomgr::time::sleep(Duration::from_millis(20)).await;
        drop(stream);
        let result = iomgr::time::timeout(Duration::from_secs(5), conn)
            .await
            .expect("the connection task ended")
            .expect("the connection task did not panic");
        // hyper reports the early end as an error of this connection only.
        // hyper reports the early end as an error of this connection only.
        let error = result.expect_err("an incomplete message is an error");
        assert!(expected(&error), "{error:?}");
    }
}

#[iomgr::test]
async fn a_header_read_timeout_fires_through_the_timer() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut builder = timer_builder();
    builder.header_read_timeout(Duration::from_millis(150));
    let server = iomgr::spawn(serve_one(listener, builder));
    let stream = TcpStream::connect(addr).await.unwrap();
    let conn = server.await.unwrap();
    let started = Instant::now();
    let (res, _) = stream.write_all(b"GET / HTTP/1.1\r\nhost: ").await;
    res.unwrap();
    let result = iomgr::time::timeout(Duration::from_secs(5), conn)
        .await
        .expect("the timeout fired")
        .unwrap();
    let elapsed = started.elapsed();
    assert!(result.unwrap_err().is_timeout());
    assert!(
        elapsed >= Duration::from_millis(140),
        "fired early: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(3), "fired late: {elapsed:?}");
    // The server closed the connection.
    let (res, _) = stream.read(vec![0u8; 1024]).await;
    assert!(matches!(res, Ok(0) | Err(_)), "{res:?}");
}

/// hyper re-arms the header-read timeout for every request; a keep-alive connection whose
/// requests each come within the timeout lives longer than the timeout.
#[iomgr::test]
async fn the_header_read_timeout_restarts_with_each_request() {
    let mut builder = timer_builder();
    builder.header_read_timeout(Duration::from_millis(150));
    let (addr, accepted) = start_server(builder);
    let mut sender = client(addr).await;
    let started = Instant::now();
    for _ in 0..6 {
        let (status, body) = request(&mut sender, Method::GET, "/", vec![]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&body[..], b"Hello, world!");
        iomgr::time::sleep(Duration::from_millis(60)).await;
    }
    assert!(started.elapsed() > Duration::from_millis(300));
    assert_eq!(accepted.get(), 1, "the connection outlived the timeout");
    // Idle past the timeout: now the server closes it.
    iomgr::time::sleep(Duration::from_millis(400)).await;
    sender
        .ready()
        .await
        .expect_err("the server closed the idle connection");
}

#[iomgr::test]
async fn many_concurrent_connections() {
    let (addr, accepted) = start_server(timer_builder());
    let conns = 200;
    let per_conn = 20;
    let clients: Vec<_> = (0..conns)
        .map(|c| {
            iomgr::spawn(async move {
                let mut sender = client(addr).await;
                for i in 0..per_conn {
                    let body = format!("{c}/{i}").into_bytes();
                    let (status, echoed) =
                        request(&mut sender, Method::POST, "/echo", body.clone()).await;
                    assert_eq!(status, StatusCode::OK);
                    assert_eq!(echoed, body);
                }
            })
        })
        .collect();
    for c in clients {
        c.await.unwrap();
    }
    assert_eq!(accepted.get(), conns);
}

#[iomgr::test]
async fn unix_streams_work_too() {
    let (a, b) = UnixStream::pair().unwrap();
    let server =
        iomgr::spawn(http1::Builder::new().serve_connection(HyperIo::new(a), service_fn(route)));
    let (mut sender, conn) = hyper::client::conn::http1::handshake(HyperIo::new(b))
        .await
        .unwrap();
    let client_conn = iomgr::spawn(conn);
    let (status, body) = request(&mut sender, Method::POST, "/echo", pattern(100_000)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body == pattern(100_000));
    drop(sender);
    client_conn.await.unwrap().unwrap();
    server.await.unwrap().unwrap();
}

/// `Connection: close` makes the server shut its write half down (a real `SHUT_WR`): the
/// client sees the end of the stream after the response.
#[iomgr::test]
async fn connection_close_shuts_the_write_half_down() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = iomgr::spawn(serve_one(listener, timer_builder()));
    let stream = TcpStream::connect(addr).await.unwrap();
    let conn = server.await.unwrap();
    let (res, _) = stream
        .write_all(b"GET / HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
        .await;
    res.unwrap();
    let mut all = Vec::new();
    loop {
        let (res, b) = stream.read(vec![0u8; 1024]).await;
        let n = res.unwrap();
        if n == 0 {
            break;
        }
        all.extend_from_slice(&b[..n]);
    }
    assert!(
        all.ends_with(b"Hello, world!"),
        "{}",
        String::from_utf8_lossy(&all)
    );
    conn.await.unwrap().unwrap();
}

/// Infallible services work too (the `Error` bound is `Into<Box<dyn Error>>`).
#[iomgr::test]
async fn serve_takes_any_service() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    iomgr::spawn(iomgr_hyper::serve(listener, |peer: SocketAddr| {
        service_fn(move |_req: Request<Incoming>| async move {
            Ok::<_, Infallible>(Response::new(peer.ip().to_string()))
        })
    }));
    let mut sender = client(addr).await;
    let (status, body) = request(&mut sender, Method::GET, "/", vec![]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&body[..], b"127.0.0.1");
}
