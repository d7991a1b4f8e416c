//! The new buffer paths allocate nothing per op after warm-up: linked timeouts, zero-copy
//! sends, multishot accept (and, in `buf_ring.rs`, each received chunk).

use std::io::{Read, Write};
use std::pin::pin;
use std::time::Duration;

use iomgr::Runtime;
use iomgr::net::{TcpListener, UnixStream};
use iomgr::runtime::Feature;
use iomgr_tests::{CountingAlloc, allocations_during};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

#[test]
fn timed_ops_allocate_nothing_after_warm_up() {
    let rt = Runtime::new().unwrap();
    if !rt.supports(Feature::LinkTimeout) {
        return;
    }
    rt.block_on(async {
        let (a, b) = UnixStream::pair().unwrap();
        let mut buf = vec![0u8; 16];
        let round = async |buf: Vec<u8>| {
            let (res, _) = b.write(b"ping").await;
            res.unwrap();
            let (res, buf) = a.read(buf).timeout(Duration::from_secs(5)).await;
            assert_eq!(res.unwrap(), 4);
            buf
        };
        for _ in 0..100 {
            buf = round(buf).await;
        }
        let (_, allocations) = allocations_during(async {
            for _ in 0..1000 {
                buf = round(std::mem::take(&mut buf)).await;
            }
        })
        .await;
        assert_eq!(allocations, 0, "allocations during 1000 timed reads");
    });
}

#[test]
fn zero_copy_sends_allocate_nothing_after_warm_up() {
    let rt = Runtime::new().unwrap();
    if !rt.supports(Feature::SendZc) {
        return;
    }
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let drain = std::thread::spawn(move || {
            let mut sink = [0u8; 65536];
            while client.read(&mut sink).unwrap_or(0) > 0 {}
        });
        let mut buf = vec![3u8; 4096];
        for _ in 0..100 {
            let (res, b) = server.send_zc(buf).await;
            res.unwrap();
            buf = b;
        }
        let (_, allocations) = allocations_during(async {
            for _ in 0..1000 {
                let (res, b) = server.send_zc(std::mem::take(&mut buf)).await;
                res.unwrap();
                buf = b;
            }
        })
        .await;
        assert_eq!(allocations, 0, "allocations during 1000 zero-copy sends");
        drop(server);
        drain.join().unwrap();
    });
}

#[test]
fn multishot_accepts_allocate_nothing_after_warm_up() {
    let rt = Runtime::new().unwrap();
    if !rt.supports(Feature::AcceptMultishot) {
        return;
    }
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut incoming = pin!(listener.incoming());
        // The clients are made (and dropped) on another thread: only the server counts.
        let (go, rx) = std::sync::mpsc::channel::<usize>();
        let clients = std::thread::spawn(move || {
            while let Ok(n) = rx.recv() {
                for _ in 0..n {
                    let mut c = std::net::TcpStream::connect(addr).unwrap();
                    c.write_all(b"x").unwrap();
                }
            }
        });
        // Warm-up with the same burst: the op's queue of completions grows to its size.
        go.send(600).unwrap();
        for _ in 0..600 {
            drop(incoming.as_mut().next().await.unwrap().unwrap());
        }
        go.send(300).unwrap();
        let (_, allocations) = allocations_during(async {
            for _ in 0..300 {
                drop(incoming.as_mut().next().await.unwrap().unwrap());
            }
        })
        .await;
        drop(go);
        clients.join().unwrap();
        // One accept op serves them all. Its queue of completions not yet taken may still
        // double once, if a burst queues more than the warm-up's did: amortized growth, not
        // an allocation per connection.
        assert!(
            allocations <= 2,
            "{allocations} allocations during 300 accepted connections"
        );
    });
}
