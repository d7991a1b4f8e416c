//! [`serve`]: an accept loop that runs each connection as an HTTP/1 connection task.

use std::error::Error as StdError;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::HttpService;
use iomgr::net::TcpListener;

use crate::{ConnectionTimer, HyperIo};

/// Accepts connections on `listener` forever, serving each with HTTP/1.1 in its own task.
///
/// `make_service` is called with each peer's address and returns the connection's
/// service (for example `|_| service_fn(handle)`). Connections use hyper's default HTTP/1
/// settings with a [`ConnectionTimer`] each, hence a 30 s header-read timeout; use
/// [`serve_with`] to choose the settings. `TCP_NODELAY` is set on every connection.
/// Connections already accepted keep running when the `serve` future is dropped.
///
/// A connection's error (a peer that vanished, a malformed request, a timeout) ends that
/// connection's task only. Errors of `accept` that concern one connection (it was aborted,
/// or reset) are skipped; running out of descriptors or memory pauses accepting for 10 ms;
/// any other error is returned.
///
/// ```no_run
/// use std::convert::Infallible;
/// use hyper::{Request, Response, body::Incoming, service::service_fn};
///
/// async fn hello(_: Request<Incoming>) -> Result<Response<String>, Infallible> {
///     Ok(Response::new("Hello, world!\n".to_string()))
/// }
///
/// # fn main() -> std::io::Result<()> {
/// iomgr::Runtime::new()?.block_on(async {
///     let listener = iomgr::net::TcpListener::bind("127.0.0.1:8080")?;
///     iomgr_hyper::serve(listener, |_peer| service_fn(hello)).await
/// })
/// # }
/// ```
pub async fn serve<M, S>(listener: TcpListener, make_service: M) -> io::Result<()>
where
    M: FnMut(SocketAddr) -> S,
    S: HttpService<Incoming> + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    S::ResBody: 'static,
    <S::ResBody as Body>::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    serve_with(listener, http1::Builder::new(), make_service).await
}

/// [`serve`] with the HTTP/1 settings of `builder`.
///
/// Each connection gets its own [`ConnectionTimer`], which replaces any timer set on
/// `builder`: hyper's timeouts then work (and cost one kernel timeout per connection and
/// timeout period). Set `header_read_timeout(None)` on `builder` to turn hyper's default
/// 30 s header-read timeout off.
///
/// ```no_run
/// # use std::convert::Infallible;
/// # use hyper::{Request, Response, body::Incoming, service::service_fn};
/// # async fn hello(_: Request<Incoming>) -> Result<Response<String>, Infallible> { todo!() }
/// use std::time::Duration;
/// use hyper::server::conn::http1;
///
/// # async fn demo(listener: iomgr::net::TcpListener) -> std::io::Result<()> {
/// let mut builder = http1::Builder::new();
/// builder.header_read_timeout(Duration::from_secs(5)).keep_alive(true);
/// iomgr_hyper::serve_with(listener, builder, |_| service_fn(hello)).await
/// # }
/// ```
pub async fn serve_with<M, S>(
    listener: TcpListener,
    builder: http1::Builder,
    mut make_service: M,
) -> io::Result<()>
where
    M: FnMut(SocketAddr) -> S,
    S: HttpService<Incoming> + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    S::ResBody: 'static,
    <S::ResBody as Body>::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => match AcceptError::of(&e) {
                AcceptError::Skip => continue,
                AcceptError::Pause => {
                    iomgr::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                AcceptError::Fatal => return Err(e),
            },
        };
        // Best effort: a connection without TCP_NODELAY still works.
        let _ = stream.set_nodelay(true);
        let mut conn_builder = builder.clone();
        conn_builder.timer(ConnectionTimer::new());
        let conn = conn_builder.serve_connection(HyperIo::new(stream), make_service(peer));
        drop(iomgr::spawn(async move {
            // The error concerns this connection only; it ends here.
            let _ = conn.await;
        }));
    }
}

/// What [`serve_with`] does about an `accept` error.
enum AcceptError {
    /// It concerns one connection: accept the next.
    Skip,
    /// Out of descriptors or memory: wait a little, then accept again.
    Pause,
    /// Anything else: give up.
    Fatal,
}

impl AcceptError {
    fn of(e: &io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted => return AcceptError::Skip,
            _ => {}
        }
        match e.raw_os_error() {
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => AcceptError::Pause,
            Some(libc::EPROTO | libc::EPERM) => AcceptError::Skip,
            _ => AcceptError::Fatal,
        }
    }
}
