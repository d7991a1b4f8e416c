//! Unix domain stream sockets.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use socket2::{Domain, SockAddr, Socket, Type};

use super::multishot::{Accepted, Incoming};
use super::socket::{connect, with_socket};
use super::stream_io::impl_stream_io;
use crate::driver::RingFd;
use crate::op::{Accept, Op};

/// A Unix domain socket listening for connections.
#[derive(Debug)]
pub struct UnixListener {
    fd: RingFd,
}

impl UnixListener {
    /// Binds to `path` (which must not exist yet) and listens.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<Self> {
        let socket = Socket::new(Domain::UNIX, Type::STREAM.cloexec(), None)?;
        socket.bind(&SockAddr::unix(path)?)?;
        socket.listen(1024)?;
        Ok(UnixListener {
            fd: OwnedFd::from(socket).into(),
        })
    }

    /// Waits for a connection.
    pub async fn accept(&self) -> io::Result<UnixStream> {
        let (fd, _addr) = Op::new(Accept::new(self.fd.raw())).await?;
        Ok(UnixStream { fd: fd.into() })
    }

    /// Every connection, as a stream, from one multishot accept (armed again when the kernel
    /// ends it). See [`Incoming`].
    pub fn incoming(&self) -> Incoming<'_, UnixStream> {
        Incoming::new(self.fd.raw())
    }
}

/// A Unix domain stream connection.
#[derive(Debug)]
pub struct UnixStream {
    fd: RingFd,
}

impl UnixStream {
    /// Connects to the socket at `path`.
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        let socket = Socket::new(Domain::UNIX, Type::STREAM.cloexec(), None)?;
        let addr = SockAddr::unix(path)?;
        let fd = connect(socket, addr)
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Ok(UnixStream { fd })
    }

    /// A connected pair of streams.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = Socket::pair(Domain::UNIX, Type::STREAM.cloexec(), None)?;
        Ok((
            UnixStream {
                fd: OwnedFd::from(a).into(),
            },
            UnixStream {
                fd: OwnedFd::from(b).into(),
            },
        ))
    }

    /// Wraps a connected `std` stream (it is switched to non-blocking mode).
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> io::Result<Self> {
        stream.set_nonblocking(true)?;
        Ok(UnixStream {
            fd: OwnedFd::from(stream).into(),
        })
    }

    fn fd(&self) -> RawFd {
        self.fd.raw()
    }

    /// Sets the socket's receive buffer size (`SO_RCVBUF`).
    pub fn set_recv_buffer_size(&self, size: usize) -> io::Result<()> {
        with_socket(&self.fd, |s| s.set_recv_buffer_size(size))
    }
}

impl_stream_io!(UnixStream);

impl crate::registered::private::Sealed for UnixStream {
    fn op_fd(&self) -> RawFd {
        self.fd.raw()
    }
    fn untracked_fd(&self) -> RawFd {
        self.fd.untracked().as_raw_fd()
    }
}

impl Accepted for UnixStream {
    fn from_accepted(fd: OwnedFd) -> Self {
        UnixStream { fd: fd.into() }
    }
}

impl AsRawFd for UnixStream {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
