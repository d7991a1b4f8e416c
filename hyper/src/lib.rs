//! # iomgr-hyper: hyper 1.x on iomgr
//!
//! [hyper](https://docs.rs/hyper/1)'s HTTP/1 server and client on an iomgr runtime:
//!
//! - [`HyperIo`]: hyper's `rt::Read` and `rt::Write` over an iomgr [`TcpStream`] or
//!   [`UnixStream`], built on the owned-buffer ops;
//! - [`ConnectionTimer`] and [`IomgrTimer`]: hyper's `rt::Timer` on io_uring timeouts, for
//!   `header_read_timeout` and the other timeouts of hyper's builders (a `ConnectionTimer`
//!   per connection re-uses its armed timeout from one request to the next);
//! - [`IomgrExecutor`]: hyper's `rt::Executor`, spawning iomgr tasks (hyper's HTTP/2
//!   connections take one; HTTP/1 connections need none);
//! - [`serve`] / [`serve_with`]: an accept loop, one HTTP/1 connection task per connection.
//!
//! ```no_run
//! use std::convert::Infallible;
//! use hyper::{Request, Response, body::Incoming, service::service_fn};
//!
//! async fn hello(_: Request<Incoming>) -> Result<Response<String>, Infallible> {
//!     Ok(Response::new("Hello, world!\n".to_string()))
//! }
//!
//! fn main() -> std::io::Result<()> {
//!     iomgr::Runtime::new()?.block_on(async {
//!         let listener = iomgr::net::TcpListener::bind("127.0.0.1:8080")?;
//!         iomgr_hyper::serve(listener, |_peer| service_fn(hello)).await
//!     })
//! }
//! ```
//!
//! [`serve`] is a short loop: accept, wrap the stream in [`HyperIo`], hand it to hyper's
//! `http1::Builder::serve_connection`, spawn the connection. Write your own where you need
//! more control (graceful shutdown, connection limits).
//!
//! Everything runs on the thread of its runtime: services, bodies and connections need not
//! be `Send`. For several cores, run one runtime per core, each with its own listener
//! ([`TcpListener::bind_reuseport`](iomgr::net::TcpListener::bind_reuseport)).
//!
//! A client connection works the same way:
//!
//! ```no_run
//! use http_body_util::Empty;
//! use hyper::body::Bytes;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let stream = iomgr::net::TcpStream::connect("127.0.0.1:8080").await?;
//! let (mut sender, conn) =
//!     hyper::client::conn::http1::handshake(iomgr_hyper::HyperIo::new(stream)).await?;
//! iomgr::spawn(conn);
//! let response = sender.send_request(hyper::Request::new(Empty::<Bytes>::new())).await?;
//! println!("{}", response.status());
//! # Ok(()) }
//! ```
//!
//! ## What the poll-based layer costs
//!
//! hyper's I/O traits are poll-based and **lend** their buffers: `poll_read` writes into a
//! cursor over hyper's read buffer, `poll_write` gets a `&[u8]`, and both borrows end when
//! the call returns. io_uring reads and writes memory **after** the call that submits an op
//! returns, and even after the future waiting for it is dropped, so an op must own its
//! buffer until the kernel's last completion: that is why iomgr's API takes buffers by value
//! (`let (res, buf) = stream.read(buf).await;`). A lent buffer cannot be given to the
//! kernel, so [`HyperIo`] keeps buffers of its own and copies:
//!
//! - every byte read is copied once more: the kernel writes it into the adapter's buffer,
//!   then the adapter copies it into hyper's;
//! - every byte written is copied once more: from hyper's buffers (its header buffer and
//!   the body chunks it queues, since the adapter asks for vectored writes) into the
//!   adapter's staging buffer, which a send op then owns;
//! - a flush completes one scheduler tick after it starts (the send's completion arrives
//!   with the next ring entry), where a readiness-based runtime's `write` returns at once;
//! - an idle connection keeps its read buffer (8 KiB by default) in the kernel with a recv
//!   in flight.
//!
//! With iomgr's own API none of these copies happen: the kernel writes into and reads from
//! the buffers the program owns. The adapter's buffers are allocated once per connection
//! and reused, so it allocates nothing per request once warm (a test counts allocations).
//!
//! `benches/src/bin/http.rs` runs the same hyper service on this crate and on tokio
//! (`current_thread`, hyper-util's `TokioIo`) side by side. With small responses (13 B,
//! 4 KiB) the server CPU per request is on par with tokio's (within the run-to-run noise,
//! ±15%); with 64 KiB responses tokio needed up to a quarter less (ratios 0.74 to 1.02 over
//! two full runs), and a profile shows why: the copy into the staging buffer takes about as
//! much of the server's CPU (≈9%) as the kernel's own copy into the socket. Large bodies
//! are where iomgr's owned-buffer API, which skips that copy, pays off.
//!
//! Timers: hyper makes a new sleep for the header-read timeout of every request. With a
//! [`ConnectionTimer`] per connection (what [`serve`] uses) its armed kernel timeout passes
//! from one sleep to the next and costs nothing measurable; with the plain [`IomgrTimer`]
//! each request arms and cancels one (about 10 µs of server CPU).
//!
//! [`TcpStream`]: iomgr::net::TcpStream
//! [`UnixStream`]: iomgr::net::UnixStream
//! [`TcpListener`]: iomgr::net::TcpListener

#![warn(missing_docs)]

mod io;
mod rt;
mod serve;

pub use io::{DEFAULT_READ_BUF, DEFAULT_WRITE_BUF, HyperIo, Stream};
pub use rt::{ConnectionTimer, IomgrExecutor, IomgrSleep, IomgrTimer};
pub use serve::{serve, serve_with};
