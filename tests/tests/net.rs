//! Sockets over loopback: TCP, UDP and Unix, the happy paths and the unhappy ones.

use std::io::{self, Read, Write};
use std::time::Duration;

use iomgr::buf::{BufExt, IoBuf};
use iomgr::net::{TcpListener, TcpStream, UdpSocket, UnixListener, UnixStream};
use iomgr::{Runtime, spawn};
use iomgr_tests::{TempDir, in_child, rerun_in_child, restore_default_sigpipe};

fn echo_server(listener: TcpListener) -> iomgr::JoinHandle<io::Result<()>> {
    spawn(async move {
        let (stream, _) = listener.accept().await?;
        let mut buf = vec![0u8; 4096];
        loop {
            let (res, b) = stream.read(buf).await;
            let n = res?;
            if n == 0 {
                return Ok(());
            }
            let (res, slice) = stream.write_all(b.slice(..n)).await;
            res?;
            buf = slice.into_inner();
        }
    })
}

#[test]
fn tcp_echo_round_trips_preserve_every_byte() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        assert_ne!(addr.port(), 0);
        let server = echo_server(listener);
        let client = TcpStream::connect(addr).await.unwrap();
        client.set_nodelay(true).unwrap();
        assert!(client.nodelay().unwrap());
        assert_eq!(client.peer_addr().unwrap(), addr);
        let mut seed = 0x9e37_79b9_u32;
        for round in 0..200 {
            let len = 1 + (round * 37) % 9000;
            let msg: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed as u8
                })
                .collect();
            let (res, msg) = client.write_all(msg).await;
            res.unwrap();
            let (res, back) = client.read_exact(Vec::with_capacity(len)).await;
            res.unwrap();
            assert_eq!(back, msg, "round {round}");
        }
        drop(client);
        server.await.unwrap().unwrap();
    });
}

#[test]
fn vectored_io_gathers_and_scatters_in_order() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let (a, b) = UnixStream::pair().unwrap();
        let (res, bufs) = a
            .writev([b"head-".to_vec(), b"body-".to_vec(), b"tail".to_vec()])
            .await;
        assert_eq!(res.unwrap(), 14);
        assert_eq!(bufs[2], b"tail");
        let (res, bufs) = b
            .readv(vec![Vec::with_capacity(5), Vec::with_capacity(9)])
            .await;
        assert_eq!(res.unwrap(), 14);
        assert_eq!(bufs[0], b"head-");
        assert_eq!(bufs[1], b"body-tail");
    });
}

#[test]
fn a_refused_connection_is_an_error_naming_the_address() {
    let rt = Runtime::new().unwrap();
    // Bind then drop a listener to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = rt
        .block_on(TcpStream::connect(("127.0.0.1", port)))
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

#[test]
fn a_closed_peer_is_end_of_stream_then_a_write_error_not_a_signal() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let peer = std::net::TcpStream::connect(addr).unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        drop(peer);
        let (res, buf) = stream.read(vec![0u8; 64]).await;
        assert_eq!(res.unwrap(), 0, "end of stream");
        assert_eq!(buf.len(), 64, "the buffer comes back");
        // Writing to a closed peer fails (EPIPE or ECONNRESET) instead of raising SIGPIPE.
        let mut failed = None;
        for _ in 0..50 {
            let (res, _) = stream.write(vec![1u8; 1024]).await;
            if let Err(e) = res {
                failed = Some(e);
                break;
            }
            iomgr::time::sleep(Duration::from_millis(1)).await;
        }
        let err = failed.expect("writing to a closed peer must fail");
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            ),
            "{err:?}"
        );
    });
}

#[test]
fn read_exact_reports_early_end_of_stream_and_returns_the_buffer() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let (a, b) = UnixStream::pair().unwrap();
        let (res, _) = a.write_all(b"only five".as_slice()).await;
        res.unwrap();
        a.shutdown(std::net::Shutdown::Write).await.unwrap();
        let (res, buf) = b.read_exact(Vec::with_capacity(100)).await;
        let err = res.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(err.to_string().contains("after 9 of 100 bytes"), "{err}");
        assert_eq!(buf, b"only five", "the bytes that did arrive are kept");
    });
}

#[test]
fn write_all_pushes_a_large_buffer_through_a_slow_reader() {
    let rt = Runtime::new().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let reader = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut data = Vec::new();
        s.read_to_end(&mut data).unwrap();
        data
    });
    let payload: Vec<u8> = (0..8 << 20).map(|i: u32| (i % 251) as u8).collect();
    let expected = payload.clone();
    rt.block_on(async {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (res, back) = stream.write_all(payload).await;
        res.unwrap();
        assert_eq!(back.len(), 8 << 20);
    });
    assert_eq!(reader.join().unwrap(), expected);
}

#[test]
fn udp_send_to_and_recv_from_carry_addresses() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        let server_addr = server.local_addr().unwrap();
        let (res, _) = client.send_to(b"ping".as_slice(), server_addr).await;
        assert_eq!(res.unwrap(), 4);
        let (res, buf) = server.recv_from(vec![0u8; 1500]).await;
        let (n, from) = res.unwrap();
        assert_eq!(&buf[..n], b"ping");
        assert_eq!(from, client.local_addr().unwrap());
        // Connected mode: send/recv without addresses.
        client.connect(server_addr).unwrap();
        assert_eq!(client.peer_addr().unwrap(), server_addr);
        let (res, _) = client.send(b"pong".to_vec()).await;
        assert_eq!(res.unwrap(), 4);
        let (res, buf) = server.recv(Vec::with_capacity(1500)).await;
        assert_eq!(&buf[..res.unwrap()], b"pong");
    });
}

#[test]
fn udp_send_to_an_unresolvable_address_returns_the_buffer() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (res, buf) = socket.send_to(b"x".to_vec(), "not an address").await;
        assert!(res.is_err());
        assert_eq!(buf, b"x");
    });
}

#[test]
fn unix_listener_accepts_and_streams_talk() {
    let dir = TempDir::new("unix");
    let path = dir.join("sock");
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let listener = UnixListener::bind(&path).unwrap();
        let server = spawn(async move {
            let stream = listener.accept().await.unwrap();
            let (res, buf) = stream.read(vec![0u8; 32]).await;
            let n = res.unwrap();
            let (res, _) = stream.write_all(buf.slice(..n)).await;
            res.unwrap();
        });
        let client = UnixStream::connect(&path).await.unwrap();
        let (res, _) = client.write_all("over unix".to_string()).await;
        res.unwrap();
        let (res, buf) = client.read_exact(Vec::with_capacity(9)).await;
        res.unwrap();
        assert_eq!(buf, b"over unix");
        server.await.unwrap();
        let missing = UnixStream::connect(dir.join("nobody")).await.unwrap_err();
        assert!(missing.to_string().contains("nobody"), "{missing}");
    });
}

#[test]
fn many_connections_are_served_concurrently() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = spawn(async move {
            for _ in 0..32 {
                let (stream, _) = listener.accept().await.unwrap();
                spawn(async move {
                    let (res, buf) = stream.read(vec![0u8; 64]).await;
                    let n = res.unwrap();
                    let (res, _) = stream.write_all(buf.slice(..n)).await;
                    res.unwrap();
                });
            }
        });
        let clients: Vec<_> = (0..32u8)
            .map(|i| {
                spawn(async move {
                    let s = TcpStream::connect(addr).await.unwrap();
                    let (res, _) = s.write_all(vec![i; 10]).await;
                    res.unwrap();
                    let (res, buf) = s.read_exact(Vec::with_capacity(10)).await;
                    res.unwrap();
                    buf == vec![i; 10]
                })
            })
            .collect();
        for c in clients {
            assert!(c.await.unwrap());
        }
        acceptor.await.unwrap();
    });
}

#[test]
fn std_and_iomgr_streams_interoperate() {
    let rt = Runtime::new().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.write_all(b"from std").unwrap();
    });
    rt.block_on(async {
        let stream = TcpStream::from_std(std::net::TcpStream::connect(addr).unwrap()).unwrap();
        let (res, buf) = stream.read_exact(Vec::with_capacity(8)).await;
        res.unwrap();
        assert_eq!(buf.bytes_init(), 8);
        assert_eq!(buf, b"from std");
    });
    peer.join().unwrap();
}

#[test]
fn read_exact_into_a_slice_past_the_initialized_bytes_zeroes_the_gap() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let (a, b) = UnixStream::pair().unwrap();
        let writer = spawn(async move {
            // Two pieces, so read_exact loops over a slice of the user's slice.
            let (res, _) = a.write_all(b"abc".to_vec()).await;
            res.unwrap();
            iomgr::time::sleep(Duration::from_millis(5)).await;
            let (res, _) = a.write_all(b"defgh".to_vec()).await;
            res.unwrap();
        });
        let mut stale = vec![0xAAu8; 32];
        stale.clear();
        let (res, slice) = b.read_exact(stale.slice(16..24)).await;
        res.unwrap();
        writer.await.unwrap();
        assert_eq!(&slice[..], b"abcdefgh");
        let buf = slice.into_inner();
        assert_eq!(buf.len(), 24);
        assert!(
            buf[..16].iter().all(|&b| b == 0),
            "gap shows {:x?}",
            &buf[..16]
        );
    });
}

const SIGPIPE_CHILD_ENV: &str = "IOMGR_TEST_SIGPIPE_CHILD";

#[test]
fn writev_to_a_closed_peer_is_epipe_even_with_sigpipe_at_its_default() {
    if in_child(SIGPIPE_CHILD_ENV) {
        restore_default_sigpipe();
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            drop(b);
            let (res, bufs) = a.writev(vec![b"head".to_vec(), b"tail".to_vec()]).await;
            let err = res.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err:?}");
            assert_eq!(bufs.len(), 2, "the buffers come back");
            println!("child unix writev: {err}");

            // TCP: the first writes may be accepted before the peer's reset arrives.
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (stream, _) = listener.accept().await.unwrap();
            drop(peer);
            let mut failed = None;
            for _ in 0..50 {
                let (res, _) = stream.writev([vec![1u8; 512], vec![2u8; 512]]).await;
                if let Err(e) = res {
                    failed = Some(e);
                    break;
                }
                iomgr::time::sleep(Duration::from_millis(1)).await;
            }
            let err = failed.expect("writing to a closed peer must fail");
            assert!(
                matches!(
                    err.kind(),
                    io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                ),
                "{err:?}"
            );
            println!("child tcp writev: {err}");
        });
        return;
    }
    let stdout = rerun_in_child(
        "writev_to_a_closed_peer_is_epipe_even_with_sigpipe_at_its_default",
        SIGPIPE_CHILD_ENV,
    );
    assert!(stdout.contains("child unix writev: "), "{stdout}");
    assert!(stdout.contains("child tcp writev: "), "{stdout}");
}
