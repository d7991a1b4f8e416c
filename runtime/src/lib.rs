//! # iomgr: io_uring programs as coroutines
//!
//! iomgr is a thread-per-core runtime on its own io_uring. Every I/O operation is a future
//! that owns what the kernel touches, so dropping it in flight is safe, and buffers travel by
//! value: `let (res, buf) = stream.read(buf).await;`.
//!
//! ```no_run
//! use iomgr::buf::BufExt;
//! use iomgr::net::{TcpListener, TcpStream};
//!
//! async fn echo(stream: TcpStream) -> std::io::Result<()> {
//!     let mut buf = vec![0u8; 4096];
//!     loop {
//!         let (res, b) = stream.read(buf).await;
//!         let n = res?;
//!         if n == 0 {
//!             return Ok(());
//!         }
//!         let (res, slice) = stream.write_all(b.slice(..n)).await;
//!         res?;
//!         buf = slice.into_inner();
//!     }
//! }
//!
//! fn main() -> std::io::Result<()> {
//!     iomgr::Runtime::new()?.block_on(async {
//!         let listener = TcpListener::bind("127.0.0.1:7000")?;
//!         loop {
//!             let (stream, _) = listener.accept().await?;
//!             iomgr::spawn(echo(stream));
//!         }
//!     })
//! }
//! ```
//!
//! - [`runtime`]: the executor ([`Runtime`], [`spawn`], [`JoinHandle`], [`yield_now`]).
//! - [`op`]: the op future and its cancellation rules.
//! - [`buf`]: owned buffers ([`buf::IoBuf`], [`buf::IoBufMut`], [`buf::Slice`], vectored),
//!   the thread's recycling [`buf::BufPool`], and registered [`buf::FixedBufPool`] buffers.
//! - [`registered`]: files and sockets in the ring's registered-file table.
//! - [`net`], [`fs`], [`time`]: sockets, files and timers.
//! - [`io`]: reading by delimiter into growing owned buffers ([`io::BufReader`]).
//! - [`sync`]: promises and channels between tasks, runtimes and threads.
//! - [`future`]: `join`, `select` and `race` over any futures ([`select!`]).
//! - [`pipeline`](mod@pipeline): `pipeline!`, a source, adapters and a sink moved as one state machine.
//! - [`task`](mod@task): `#[iomgr::task]`, an `async fn`'s future with a name and a constant size.
//!
//! # Features
//!
//! - `tracing` (off by default): spans for task polls and events for task spawn/finish and op
//!   submit/complete, at `TRACE` level under the targets `iomgr::task` and `iomgr::op`, for
//!   [`tracing`](https://docs.rs/tracing) subscribers. When off, the hooks compile to
//!   nothing.

#![warn(missing_docs)]

pub mod buf;
mod driver;
pub mod fs;
pub mod future;
pub mod io;
pub mod memory;
pub mod net;
pub mod op;
pub mod pipeline;
pub mod registered;
pub mod runtime;
pub mod sync;
pub mod task;
pub mod time;
mod trace;
mod util;

pub use iomgr_macros::{pipeline, task};

/// Runs `async fn main` on a new [`Runtime`].
///
/// ```no_run
/// #[iomgr::main]
/// async fn main() -> std::io::Result<()> {
///     let listener = iomgr::net::TcpListener::bind("127.0.0.1:7000")?;
///     let (stream, peer) = listener.accept().await?;
///     println!("{peer} connected");
///     # drop(stream);
///     Ok(())
/// }
/// ```
///
/// Options set the [`Builder`]: `#[iomgr::main(entries = 1024, cq_entries = 4096,
/// single_issuer = false, defer_taskrun = false, coop_taskrun = false)]`.
///
/// A runtime that cannot start (io_uring disabled, a bad ring size) is `main`'s error when
/// `main` returns a `Result` (its error type needs `From<std::io::Error>`); otherwise the
/// reason is printed on stderr and the process exits with status 1.
pub use iomgr_macros::main;

/// Runs an `async fn` test on a new [`Runtime`], one per test.
///
/// ```
/// #[iomgr::test]
/// async fn sleeps() {
///     iomgr::time::sleep(std::time::Duration::from_millis(1)).await;
/// }
///
/// #[iomgr::test(entries = 64)]
/// async fn may_fail() -> std::io::Result<()> {
///     let file = iomgr::fs::File::open("/proc/self/status").await?;
///     let (res, buf) = file.read_at(vec![0u8; 64], 0).await;
///     assert!(res? > 0 && buf.starts_with(b"Name:"));
///     Ok(())
/// }
/// ```
///
/// It takes the same options as [`main`](macro@main). A runtime that cannot start fails the
/// test with the reason.
pub use iomgr_macros::test;
pub use runtime::{Builder, JoinError, JoinHandle, Runtime, spawn, yield_now};
