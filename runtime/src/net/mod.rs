//! Networking over io_uring: TCP, UDP and Unix sockets with owned-buffer I/O.
//!
//! Creating and binding sockets are quick system calls made directly; everything that waits
//! (accept, connect, read, write, send, receive, shutdown) is an io_uring op. Every op borrows
//! its socket, so a socket cannot be closed under an op, and takes its buffer by value,
//! returning it with the result (see [`buf`](crate::buf)).
//!
//! Multishot ops give streams: [`TcpListener::incoming`] (one accept SQE for every
//! connection) and [`TcpStream::recv_multishot`] (chunks received into a
//! [`BufRing`](crate::buf::BufRing)); each re-arms when the kernel ends it.
//!
//! Errors are `io::Error`s that say what happened: a refused connection is
//! `ConnectionRefused` naming the address, a closed peer shows up as a read of 0 bytes or a
//! write failing with `BrokenPipe`/`ConnectionReset` (never a `SIGPIPE`).

mod fixed_io;
mod multishot;
mod socket;
mod split;
pub(crate) mod stream_io;
mod tcp;
mod udp;
mod unix;

pub use multishot::{Accepted, Incoming, RecvStream};
pub use split::{ReadHalf, WriteHalf};
pub use tcp::{TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixListener, UnixStream};
