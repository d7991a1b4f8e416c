//! TCP: listeners and streams.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};

use socket2::{SockAddr, Type};

use super::multishot::{Accepted, Incoming};
use super::socket::{connect, each_addr, each_addr_sync, new_socket, to_std, with_socket};
use super::stream_io::impl_stream_io;
use crate::driver::RingFd;
use crate::op::{Accept, Op};

/// A TCP socket listening for connections.
///
/// ```no_run
/// # iomgr::Runtime::new()?.block_on(async {
/// let listener = iomgr::net::TcpListener::bind("127.0.0.1:0")?;
/// let (stream, peer) = listener.accept().await?;
/// # let _ = (stream, peer);
/// # std::io::Result::Ok(()) })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct TcpListener {
    fd: RingFd,
}

impl TcpListener {
    /// Binds to the first address that works (with `SO_REUSEADDR`) and listens (backlog 1024).
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<Self> {
        Self::bind_with(addr, false)
    }

    /// Like [`bind`](Self::bind), also setting `SO_REUSEPORT` so that one listener per
    /// runtime (per core) can share the port; the kernel spreads connections among them.
    pub fn bind_reuseport(addr: impl ToSocketAddrs) -> io::Result<Self> {
        Self::bind_with(addr, true)
    }

    fn bind_with(addr: impl ToSocketAddrs, reuse_port: bool) -> io::Result<Self> {
        each_addr_sync(addr, |addr| {
            let socket = new_socket(&addr, Type::STREAM)?;
            socket.set_reuse_address(true)?;
            if reuse_port {
                socket.set_reuse_port(true)?;
            }
            socket.bind(&addr.into())?;
            socket.listen(1024)?;
            Ok(TcpListener {
                fd: RingFd::new(socket.into()),
            })
        })
    }

    /// Waits for a connection; returns the connected stream and the peer's address.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (fd, addr) = self.accept_op().await?;
        Ok((TcpStream { fd: fd.into() }, to_std(addr)?))
    }

    /// Every connection, as a stream, from one multishot accept (armed again when the kernel
    /// ends it): one SQE for any number of connections. See [`Incoming`].
    pub fn incoming(&self) -> Incoming<'_, TcpStream> {
        Incoming::new(self.fd.raw())
    }

    /// The raw accept op, for code that wants the future's concrete type.
    pub fn accept_op(&self) -> Op<'_, Accept> {
        Op::new(Accept::new(self.fd.raw()))
    }

    /// The address the listener is bound to (with the real port after binding port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        with_socket(&self.fd, |s| to_std(s.local_addr()?))
    }
}

/// A TCP connection.
///
/// Reads and writes take owned buffers and give them back with the result:
///
/// ```no_run
/// use iomgr::net::TcpStream;
/// # iomgr::Runtime::new()?.block_on(async {
/// let stream = TcpStream::connect("127.0.0.1:8080").await?;
/// let (res, _) = stream.write_all(b"ping").await;
/// res?;
/// let (res, buf) = stream.read(vec![0u8; 64]).await;
/// println!("got {:?}", &buf[..res?]);
/// # std::io::Result::Ok(()) })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct TcpStream {
    fd: RingFd,
}

impl TcpStream {
    /// Connects to the first address that accepts. A refused connection is an error
    /// (`ConnectionRefused`) naming the address.
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<Self> {
        each_addr(addr, |addr| async move {
            let socket = new_socket(&addr, Type::STREAM)?;
            let fd = connect(socket, SockAddr::from(addr)).await?;
            Ok(TcpStream { fd })
        })
        .await
    }

    fn fd(&self) -> RawFd {
        self.fd.raw()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        with_socket(&self.fd, |s| to_std(s.peer_addr()?))
    }

    /// This end's address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        with_socket(&self.fd, |s| to_std(s.local_addr()?))
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        with_socket(&self.fd, |s| s.set_tcp_nodelay(nodelay))
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        with_socket(&self.fd, |s| s.tcp_nodelay())
    }

    /// Wraps a connected `std` stream (it is switched to non-blocking mode).
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<Self> {
        stream.set_nonblocking(true)?;
        Ok(TcpStream {
            fd: OwnedFd::from(stream).into(),
        })
    }
}

impl_stream_io!(TcpStream);

impl crate::registered::private::Sealed for TcpStream {
    fn op_fd(&self) -> RawFd {
        self.fd.raw()
    }
    fn untracked_fd(&self) -> RawFd {
        self.fd.untracked().as_raw_fd()
    }
}

impl Accepted for TcpStream {
    fn from_accepted(fd: OwnedFd) -> Self {
        TcpStream { fd: fd.into() }
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for TcpStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl IntoRawFd for TcpStream {
    /// Gives the descriptor away. If a ring may still submit an SQE that names it (an op
    /// on it was forgotten), the result is a duplicate and the original is closed after.
    fn into_raw_fd(self) -> RawFd {
        self.fd.into_owned().into_raw_fd()
    }
}

impl FromRawFd for TcpStream {
    /// # Safety
    /// `fd` must be an open, connected TCP socket that the caller owns.
    unsafe fn from_raw_fd(fd: RawFd) -> Self {
        // SAFETY: forwarded from this function's contract.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        TcpStream { fd: fd.into() }
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
