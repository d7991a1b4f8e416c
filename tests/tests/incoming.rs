//! Multishot accept: `TcpListener::incoming()` and `UnixListener::incoming()`, one SQE for
//! any number of connections; connections accepted after the stream is dropped are closed.

use std::io::{Read, Write};
use std::pin::pin;

use iomgr::net::{TcpListener, UnixListener};
use iomgr::runtime::Feature;
use iomgr::{Runtime, yield_now};
use iomgr_tests::{TempDir, open_fds, serial, until};

/// The tests of this file run one at a time: one of them counts the process's descriptors.
fn runtime() -> Option<Runtime> {
    let rt = Runtime::new().unwrap();
    if !rt.supports(Feature::AcceptMultishot) {
        println!("skipped: this kernel has no multishot accept");
        return None;
    }
    Some(rt)
}

#[test]
fn incoming_yields_every_connection_from_one_accept() {
    let _serial = serial();
    let Some(rt) = runtime() else { return };
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut incoming = pin!(listener.incoming());
        let mut clients = Vec::new();
        for i in 0..20u8 {
            let mut client = std::net::TcpStream::connect(addr).unwrap();
            client.write_all(&[i]).unwrap();
            clients.push(client);
        }
        for i in 0..20u8 {
            let stream = incoming.as_mut().next().await.unwrap().unwrap();
            assert_eq!(
                stream.peer_addr().unwrap(),
                clients[i as usize].local_addr().unwrap(),
                "connections come in the order they were made"
            );
            let (res, buf) = stream.read(vec![0u8; 4]).await;
            assert_eq!(&buf[..res.unwrap()], &[i]);
            let (res, _) = stream.write_all(b"ok").await;
            res.unwrap();
        }
        for client in &mut clients {
            let mut reply = [0u8; 2];
            client.read_exact(&mut reply).unwrap();
            assert_eq!(&reply, b"ok");
        }
        assert_eq!(rt.ops_in_flight(), 1, "one accept serves them all");
    });
}

#[test]
fn dropping_incoming_with_connections_racing_leaks_no_descriptor() {
    let _serial = serial();
    let Some(rt) = runtime() else { return };
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let before = open_fds();
        let mut clients = Vec::new();
        {
            let mut incoming = pin!(listener.incoming());
            for _ in 0..3 {
                clients.push(std::net::TcpStream::connect(addr).unwrap());
                drop(incoming.as_mut().next().await.unwrap().unwrap());
            }
            // Accepted by the kernel, queued, never taken.
            for _ in 0..5 {
                clients.push(std::net::TcpStream::connect(addr).unwrap());
            }
            iomgr::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        // Racing the cancellation: accepted by the dropped op (and closed) or left queued.
        for _ in 0..5 {
            clients.push(std::net::TcpStream::connect(addr).unwrap());
        }
        until(1000, "the dropped accept's last completion", || {
            rt.ops_in_flight() == 0
        })
        .await;
        yield_now().await;
        // Take whatever is still queued in the listener's backlog.
        let mut leftover = 0;
        for client in &mut clients[3..] {
            client.set_nonblocking(true).unwrap();
            let mut byte = [0u8; 1];
            match client.read(&mut byte) {
                Ok(0) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => leftover += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        for _ in 0..leftover {
            drop(listener.accept().await.unwrap());
        }
        drop(clients);
        assert_eq!(open_fds(), before, "descriptors leaked");
    });
}

#[test]
fn unix_listeners_have_incoming_too() {
    let _serial = serial();
    let Some(rt) = runtime() else { return };
    let dir = TempDir::new("incoming");
    let path = dir.join("sock");
    rt.block_on(async {
        let listener = UnixListener::bind(&path).unwrap();
        let mut incoming = pin!(listener.incoming());
        let mut clients = Vec::new();
        for _ in 0..4 {
            clients.push(std::os::unix::net::UnixStream::connect(&path).unwrap());
        }
        for client in &mut clients {
            let stream = incoming.as_mut().next().await.unwrap().unwrap();
            let (res, _) = stream.write_all(b"hi").await;
            res.unwrap();
            let mut got = [0u8; 2];
            client.read_exact(&mut got).unwrap();
            assert_eq!(&got, b"hi");
        }
    });
}
