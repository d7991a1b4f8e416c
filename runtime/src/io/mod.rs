//! Reading by delimiter with owned, growing buffers.
//!
//! ASIO's `async_read_until(socket, dynamic_buffer(data), '\n')` reads into a buffer that
//! grows as needed, and may read past the delimiter: what comes after it stays in the
//! buffer for the next call. [`BufReader`] is that, with owned buffers: the line you ask for
//! is read *into your `Vec`* (it grows, up to a maximum you give), and bytes past the
//! delimiter wait inside the reader for the next call, never lost.
//!
//! ```no_run
//! use iomgr::io::BufReader;
//! # async fn demo(stream: iomgr::net::TcpStream) -> std::io::Result<()> {
//! let mut reader = BufReader::new(stream);
//! let mut line = String::new();
//! loop {
//!     let (res, l) = reader.read_line(line, 8 * 1024).await;
//!     line = l;
//!     if res? == 0 {
//!         break; // end of stream
//!     }
//!     print!("{line}");
//!     line.clear();
//! }
//! # Ok(()) }
//! ```
//!
//! A line longer than the maximum is an `InvalidData` error, not unbounded memory: a peer
//! that never sends the delimiter cannot make the reader grow past what you allowed.

mod buf_reader;

pub use buf_reader::{BufReader, ReadOwned};
