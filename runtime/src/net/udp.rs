//! UDP sockets.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use socket2::{SockAddr, Type};

use super::socket::{each_addr_sync, new_socket, to_std, with_socket};
use crate::buf::{BufResult, IoBuf, IoBufMut};
use crate::driver::RingFd;
use crate::op::{Op, Recv, RecvFrom, Send, SendTo};

/// A UDP socket.
///
/// ```no_run
/// # iomgr::Runtime::new()?.block_on(async {
/// let socket = iomgr::net::UdpSocket::bind("127.0.0.1:0")?;
/// let (res, buf) = socket.recv_from(vec![0u8; 1500]).await;
/// let (n, peer) = res?;
/// let (res, _) = socket.send_to(buf, peer).await; // echo it back
/// # let _ = (n, res);
/// # std::io::Result::Ok(()) })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct UdpSocket {
    fd: RingFd,
}

impl UdpSocket {
    /// Binds to the first address that works.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<Self> {
        each_addr_sync(addr, |addr| {
            let socket = new_socket(&addr, Type::DGRAM)?;
            socket.bind(&addr.into())?;
            Ok(UdpSocket {
                fd: OwnedFd::from(socket).into(),
            })
        })
    }

    /// Sets the default peer for [`send`](Self::send) and filters [`recv`](Self::recv) to it
    /// (a local operation: nothing is sent).
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        each_addr_sync(addr, |addr| {
            with_socket(&self.fd, |s| s.connect(&SockAddr::from(addr)))
        })
    }

    fn fd(&self) -> RawFd {
        self.fd.raw()
    }

    /// Sends one datagram to `addr`. An address that does not resolve is an error, and the
    /// buffer comes back.
    pub async fn send_to<B: IoBuf>(&self, buf: B, addr: impl ToSocketAddrs) -> BufResult<usize, B> {
        let addr = match addr.to_socket_addrs().map(|mut a| a.next()) {
            Ok(Some(addr)) => SockAddr::from(addr),
            Ok(None) => {
                let e = io::Error::new(io::ErrorKind::InvalidInput, "no address to send to");
                return (Err(e), buf);
            }
            Err(e) => return (Err(e), buf),
        };
        Op::new(SendTo::new(self.fd(), buf, &addr)).await
    }

    /// Receives one datagram into `buf` (from its start); returns its length and sender.
    pub async fn recv_from<B: IoBufMut>(&self, buf: B) -> BufResult<(usize, SocketAddr), B> {
        let (res, buf) = Op::new(RecvFrom::new(self.fd(), buf)).await;
        (res.and_then(|(n, addr)| Ok((n, to_std(addr)?))), buf)
    }

    /// Sends one datagram to the connected peer.
    pub fn send<B: IoBuf>(&self, buf: B) -> Op<'_, Send<B>> {
        Op::new(Send::new(self.fd(), buf))
    }

    /// Receives one datagram from the connected peer into `buf` (from its start).
    pub fn recv<B: IoBufMut>(&self, buf: B) -> Op<'_, Recv<B>> {
        Op::new(Recv::new(self.fd(), buf))
    }

    /// Receives datagrams from the connected peer into the buffers of `ring`, with one
    /// multishot receive: a stream of chunks, one per datagram (cut to the ring's buffer
    /// size; empty datagrams are skipped). See [`RecvStream`](crate::net::RecvStream).
    pub fn recv_multishot(&self, ring: &crate::buf::BufRing) -> crate::net::RecvStream<'_> {
        crate::net::RecvStream::new(self.fd(), ring, true)
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        with_socket(&self.fd, |s| to_std(s.local_addr()?))
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        with_socket(&self.fd, |s| to_std(s.peer_addr()?))
    }
}

impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl crate::registered::private::Sealed for UdpSocket {
    fn op_fd(&self) -> RawFd {
        self.fd.raw()
    }
    fn untracked_fd(&self) -> RawFd {
        self.fd.untracked().as_raw_fd()
    }
}
