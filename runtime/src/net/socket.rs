//! Creating sockets and turning addresses into something connect and bind can use.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::OwnedFd;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::driver::RingFd;
use crate::op::{Connect, Op};

/// A new non-blocking, close-on-exec socket for `addr`'s family.
pub(crate) fn new_socket(addr: &SocketAddr, ty: Type) -> io::Result<Socket> {
    let protocol = if ty == Type::STREAM {
        Protocol::TCP
    } else {
        Protocol::UDP
    };
    Socket::new(Domain::for_address(*addr), ty.cloexec(), Some(protocol))
}

/// Resolves `addrs` and tries each address until `attempt` succeeds; the error names every
/// address tried.
pub(crate) async fn each_addr<A, T, F, Fut>(addrs: A, mut attempt: F) -> io::Result<T>
where
    A: ToSocketAddrs,
    F: FnMut(SocketAddr) -> Fut,
    Fut: Future<Output = io::Result<T>>,
{
    let mut last = None;
    for addr in addrs.to_socket_addrs()? {
        match attempt(addr).await {
            Ok(value) => return Ok(value),
            Err(e) => last = Some(io::Error::new(e.kind(), format!("{addr}: {e}"))),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "no addresses to connect to or bind",
        )
    }))
}

/// Synchronous version of [`each_addr`] for bind (which never blocks).
pub(crate) fn each_addr_sync<A, T>(
    addrs: A,
    mut attempt: impl FnMut(SocketAddr) -> io::Result<T>,
) -> io::Result<T>
where
    A: ToSocketAddrs,
{
    let mut last = None;
    for addr in addrs.to_socket_addrs()? {
        match attempt(addr) {
            Ok(value) => return Ok(value),
            Err(e) => last = Some(io::Error::new(e.kind(), format!("{addr}: {e}"))),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no addresses to bind")))
}

/// Connects `socket` to `addr` through the ring.
pub(crate) async fn connect(socket: Socket, addr: SockAddr) -> io::Result<RingFd> {
    let fd = RingFd::new(OwnedFd::from(socket));
    Op::new(Connect::new(fd.raw(), addr)).await?;
    Ok(fd)
}

/// Borrows a descriptor as a `socket2::Socket` for option calls, without taking ownership.
pub(crate) fn with_socket<T>(
    fd: &RingFd,
    f: impl FnOnce(&Socket) -> io::Result<T>,
) -> io::Result<T> {
    let fd = fd.untracked();
    let socket = socket2::SockRef::from(&fd);
    f(&socket)
}

/// The `SocketAddr` inside `addr`, or an error naming what it is instead.
pub(crate) fn to_std(addr: SockAddr) -> io::Result<SocketAddr> {
    addr.as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an IP socket address"))
}
