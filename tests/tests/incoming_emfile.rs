//! The kernel ends a multishot accept on an error (here `EMFILE`: out of descriptors):
//! `incoming()` yields the error and arms a new accept, which works once descriptors are
//! free again. Alone in its binary: it lowers the process's descriptor limit.

use std::pin::pin;

use iomgr::net::TcpListener;
use iomgr::runtime::Feature;
use std::time::Duration;

use iomgr::Runtime;
use iomgr::time::timeout;

fn set_fd_limit(soft: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    let old = lim.rlim_cur;
    lim.rlim_cur = soft;
    // SAFETY: as above; lowering the soft limit needs no privilege.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    old
}

/// The number the next new descriptor would get: a limit of it leaves none free.
fn lowest_free_fd() -> u64 {
    // SAFETY: dup of stdin, closed at once.
    let fd = unsafe { libc::dup(0) };
    assert!(fd >= 0);
    // SAFETY: `fd` was just made and is ours.
    unsafe { libc::close(fd) };
    fd as u64
}

/// A TCP socket connected to `addr`, with `between` run after the socket was made and
/// before it connects.
fn socket_connected_after<T>(
    addr: std::net::SocketAddr,
    between: impl FnOnce() -> T,
) -> (std::net::TcpStream, T) {
    use std::os::fd::FromRawFd;
    let std::net::SocketAddr::V4(v4) = addr else {
        panic!("expected IPv4")
    };
    // SAFETY: plain socket creation; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0);
    // SAFETY: `fd` is a new socket we own.
    let stream = unsafe { std::net::TcpStream::from_raw_fd(fd) };
    let value = between();
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: v4.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(v4.ip().octets()),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: a valid socket and a sockaddr_in of the size given.
    let rc = unsafe {
        libc::connect(
            fd,
            (&sin as *const libc::sockaddr_in).cast(),
            size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    (stream, value)
}

#[test]
fn incoming_yields_emfile_then_re_arms_and_accepts_again() {
    let rt = Runtime::new().unwrap();
    if !rt.supports(Feature::AcceptMultishot) {
        println!("skipped: this kernel has no multishot accept");
        return;
    }
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let first = std::net::TcpStream::connect(addr).unwrap();
        let a = {
            let mut incoming = pin!(listener.incoming());
            incoming.as_mut().next().await.unwrap().unwrap()
        };
        // Wait for the cancelled accept's end, or it could take the next connection.
        iomgr_tests::until(1000, "the first accept's end", || rt.ops_in_flight() == 0).await;
        // The kernel reads the descriptor limit when it takes an accept's SQE: arm the
        // stream while no descriptor is free, then free them again.
        let (second, ()) = socket_connected_after(addr, || {});
        let mut incoming = pin!(listener.incoming());
        let old = set_fd_limit(lowest_free_fd());
        // SAFETY: dup of stdin has no memory-safety preconditions; it must fail here.
        let dup = unsafe { libc::dup(0) };
        assert_eq!(dup, -1, "the limit left a descriptor free");
        let armed = timeout(Duration::from_millis(5), incoming.as_mut().next()).await;
        set_fd_limit(old);
        let err = match armed {
            Ok(item) => item.unwrap().unwrap_err(),
            Err(_) => incoming.as_mut().next().await.unwrap().unwrap_err(),
        };
        assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err}");
        // The stream armed a new accept: the waiting connection comes through.
        let b = incoming.as_mut().next().await.unwrap().unwrap();
        assert_eq!(b.peer_addr().unwrap(), second.local_addr().unwrap());
        drop((a, b, first, second));
    });
}
