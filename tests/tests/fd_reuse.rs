//! A forgotten op never does its I/O on a descriptor that reuses its number.
//!
//! An op polled once has queued an SQE that names its descriptor by number; the kernel reads
//! that number only when the tick submits the SQE. `mem::forget(op)` ends the op's borrow of
//! its stream or file, so the owner can be dropped while the SQE is still queued, and a new
//! socket or file takes the lowest free number: the old one. Each test here builds exactly
//! that scenario and checks that the unrelated connection or file receives nothing. Closed on
//! the thread whose runtime queued the SQE, the owner withdraws it (the forgotten op never
//! runs); closed on another thread, the close waits until that runtime has submitted it (the
//! bytes go where they were meant to).

use std::io::Read;
use std::os::fd::AsRawFd;
use std::time::Duration;

use iomgr::fs::File;
use iomgr::net::TcpStream;
use iomgr::time::sleep;
use iomgr::{Runtime, yield_now};
use iomgr_tests::{TempDir, poll_once, serial};

const SECRET: &[u8] = b"for connection A only";

/// Reads what `stream` has received within `wait`, without blocking past it.
fn received(stream: &mut std::net::TcpStream, wait: Duration) -> Vec<u8> {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return got;
            }
            Err(e) => panic!("read failed: {e}"),
        }
    }
}

/// A loopback connection: `(client, server)`.
fn connection(listener: &std::net::TcpListener) -> (std::net::TcpStream, std::net::TcpStream) {
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

#[test]
fn a_forgotten_socket_write_never_reaches_the_socket_that_reuses_its_number() {
    let _serial = serial();
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let (mut client_a, server_a) = connection(&listener);
        let server_a = TcpStream::from_std(server_a).unwrap();
        let number = server_a.as_raw_fd();
        {
            let mut write = Box::pin(server_a.write(SECRET));
            assert!(poll_once(write.as_mut()).is_pending(), "the SQE is queued");
            std::mem::forget(write); // ends the borrow of `server_a`, SQE still queued
        }
        drop(server_a);
        // Connection B's first socket takes the lowest free number: A's, once it is closed.
        let (mut client_b, mut server_b) = connection(&listener);
        let numbers = format!(
            "A's server was fd {number}; B's client is fd {}, B's server fd {}",
            client_b.as_raw_fd(),
            server_b.as_raw_fd()
        );
        yield_now().await; // the tick submits whatever is queued
        sleep(Duration::from_millis(20)).await;
        assert_eq!(
            received(&mut server_b, Duration::from_millis(50)),
            b"",
            "connection B received bytes written to connection A ({numbers})"
        );
        assert_eq!(
            received(&mut client_b, Duration::from_millis(50)),
            b"",
            "connection B received bytes written to connection A ({numbers})"
        );
        // The close withdrew the forgotten write from the queue: it never ran, and A is
        // closed.
        assert_eq!(received(&mut client_a, Duration::from_secs(2)), b"");
    });
}

#[test]
fn a_forgotten_file_write_never_reaches_the_file_that_reuses_its_number() {
    let _serial = serial();
    let dir = TempDir::new("fd-reuse");
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let a = File::create(dir.join("a")).await.unwrap();
        let number = a.as_raw_fd();
        {
            let mut write = Box::pin(a.write_at(b"meant for a".as_slice(), 0));
            assert!(poll_once(write.as_mut()).is_pending(), "the SQE is queued");
            std::mem::forget(write);
        }
        drop(a);
        let b = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.join("b"))
            .unwrap();
        yield_now().await;
        sleep(Duration::from_millis(20)).await;
        let b_now = std::fs::read(dir.join("b")).unwrap();
        assert_eq!(
            b_now,
            b"",
            "file b (fd {}, a had fd {number}) received a's write",
            b.as_raw_fd()
        );
        // Withdrawn when `a` closed: it never ran.
        assert_eq!(std::fs::read(dir.join("a")).unwrap(), b"");
        drop(b);
    });
}

#[test]
fn a_stream_dropped_on_another_thread_waits_for_the_owning_ring_to_submit() {
    let _serial = serial();
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let (mut client_a, server_a) = connection(&listener);
        let server_a = TcpStream::from_std(server_a).unwrap();
        {
            let mut write = Box::pin(server_a.write(SECRET));
            assert!(poll_once(write.as_mut()).is_pending(), "the SQE is queued");
            std::mem::forget(write);
        }
        // The stream leaves this thread while its SQE is still queued here, is dropped on the
        // other thread, and a new connection is made there. This thread's tick does not end
        // (and so does not submit) until the other thread is done.
        let (client_b, server_b) = std::thread::spawn(move || {
            drop(server_a);
            let client_b = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (server_b, _) = listener.accept().unwrap();
            (client_b, server_b)
        })
        .join()
        .unwrap();
        let (mut client_b, mut server_b) = (client_b, server_b);
        yield_now().await;
        sleep(Duration::from_millis(20)).await;
        assert_eq!(received(&mut server_b, Duration::from_millis(50)), b"");
        assert_eq!(received(&mut client_b, Duration::from_millis(50)), b"");
        // The close waited for this runtime to submit the write, which went to A.
        assert_eq!(received(&mut client_a, Duration::from_secs(2)), SECRET);
    });
}
