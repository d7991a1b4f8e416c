//! `writev_all` and `readv_exact` through a peer that takes a few bytes at a time: every
//! partial completion must resume in the middle of the right buffer.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::thread;
use std::time::Duration;

use iomgr::Runtime;
use iomgr::net::{TcpListener, TcpStream};

fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

/// Shrinks a socket buffer (`SO_RCVBUF` or `SO_SNDBUF`) to the kernel's minimum.
fn shrink(fd: &impl AsRawFd, option: libc::c_int) {
    let size: libc::c_int = 1;
    // SAFETY: a valid socket and an int option value of the right size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&size as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
}

async fn pair() -> (TcpStream, std::net::TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (server, client)
}

#[test]
fn writev_all_resumes_mid_buffer_through_a_slow_small_window_reader() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let (server, mut client) = pair().await;
        shrink(&server, libc::SO_SNDBUF);
        shrink(&client, libc::SO_RCVBUF);
        let bufs: Vec<Vec<u8>> = [1, 7_000, 0, 3, 30_000, 17]
            .iter()
            .scan(0usize, |at, &len| {
                let b: Vec<u8> = (*at..*at + len).map(pattern).collect();
                *at += len;
                Some(b)
            })
            .collect();
        let total: usize = bufs.iter().map(Vec::len).sum();
        let reader = thread::spawn(move || {
            let mut got = Vec::new();
            let mut small = [0u8; 7];
            let mut reads = 0;
            loop {
                let n = client.read(&mut small).unwrap();
                if n == 0 {
                    return got;
                }
                got.extend_from_slice(&small[..n]);
                reads += 1;
                if reads % 2000 == 0 {
                    thread::sleep(Duration::from_millis(1));
                }
            }
        });
        let (res, bufs) = server.writev_all(bufs).await;
        res.unwrap();
        assert_eq!(bufs.len(), 6, "the buffers come back");
        let (res, arr) = server.writev_all([b"ab".to_vec(), b"cd".to_vec()]).await;
        res.unwrap();
        assert_eq!(arr[1], b"cd");
        drop(server);
        let got = reader.join().unwrap();
        assert_eq!(got.len(), total + 4);
        assert!(
            got[..total]
                .iter()
                .enumerate()
                .all(|(i, &b)| b == pattern(i))
        );
        assert_eq!(&got[total..], b"abcd");
    });
}

#[test]
fn readv_exact_fills_each_buffer_in_order_from_a_trickling_peer() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let (server, mut client) = pair().await;
        let writer = thread::spawn(move || {
            let data: Vec<u8> = (0..5000).map(pattern).collect();
            for piece in data.chunks(5) {
                client.write_all(piece).unwrap();
                if piece[0] % 50 == 0 {
                    thread::sleep(Duration::from_micros(200));
                }
            }
            client
        });
        let bufs = vec![
            Vec::with_capacity(10),
            Vec::new(),
            Vec::with_capacity(3),
            Vec::with_capacity(4987),
        ];
        let caps: Vec<usize> = bufs.iter().map(Vec::capacity).collect();
        let (res, bufs) = server.readv_exact(bufs).await;
        res.unwrap();
        let flat: Vec<u8> = bufs.concat();
        assert_eq!(flat.len(), caps.iter().sum::<usize>());
        assert!(flat.iter().enumerate().all(|(i, &b)| b == pattern(i)));
        let client = writer.join().unwrap();
        drop(client);
        // Ends early: UnexpectedEof, and the buffer holds what came.
        let (res, bufs) = server.readv_exact([Vec::with_capacity(8)]).await;
        assert_eq!(res.unwrap_err().kind(), std::io::ErrorKind::UnexpectedEof);
        assert!(bufs[0].is_empty());
    });
}
