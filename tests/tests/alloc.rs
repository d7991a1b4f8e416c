//! The submit/complete/wake path allocates nothing after warm-up, for every op and for
//! cancellation, and neither does spawning a task.
//!
//! A counting global allocator counts allocations made on this test's thread while the
//! measured section runs: echo round trips over loopback (server and client are iomgr tasks
//! on one runtime), accepts and connects, datagrams with addresses, `statx`, ops abandoned in
//! flight (accepts and timers), spawned tasks.

use iomgr::buf::BufExt;
use iomgr::fs::File;
use iomgr::net::{TcpListener, TcpStream, UdpSocket};
use iomgr::{Runtime, spawn};
use iomgr_tests::{CountingAlloc, allocations_during};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

async fn round_trips(client: &TcpStream, mut buf: Vec<u8>, n: usize) -> Vec<u8> {
    for i in 0..n {
        buf.clear();
        buf.extend_from_slice(&(i as u64).to_le_bytes());
        let (res, b) = client.write_all(buf).await;
        res.unwrap();
        let (res, b) = client.read_exact(b.slice(..8)).await;
        res.unwrap();
        assert_eq!(&b[..], &(i as u64).to_le_bytes());
        buf = b.into_inner();
    }
    buf
}

#[test]
fn echo_round_trips_allocate_nothing_after_warm_up() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            loop {
                let (res, b) = stream.read(buf).await;
                let n = res.unwrap();
                if n == 0 {
                    return;
                }
                let (res, s) = stream.write_all(b.slice(..n)).await;
                res.unwrap();
                buf = s.into_inner();
            }
        });
        let client = TcpStream::connect(addr).await.unwrap();
        let buf = round_trips(&client, Vec::with_capacity(64), 200).await;

        let (buf, allocations) = allocations_during(async {
            let buf = round_trips(&client, buf, 2000).await;
            // Timers and yields take the same path.
            iomgr::time::sleep(std::time::Duration::from_micros(100)).await;
            iomgr::yield_now().await;
            buf
        })
        .await;
        assert_eq!(allocations, 0, "allocations during 2000 echo round trips");
        drop((client, buf));
        server.await.unwrap();
    });
}

/// Polls `future` once (queueing its SQE), lets one tick hand it to the kernel, then drops
/// it: the op is abandoned in flight and cancelled.
async fn abandon_in_flight<F: Future>(future: F) {
    {
        let mut future = std::pin::pin!(future);
        std::future::poll_fn(|cx| {
            assert!(
                future.as_mut().poll(cx).is_pending(),
                "the op completed at once"
            );
            std::task::Poll::Ready(())
        })
        .await;
        iomgr::yield_now().await; // the tick enters the ring: the kernel consumes the SQE
    } // dropped here, in flight: the resources move to the driver, an AsyncCancel is queued
}

async fn accepts_and_connects(listener: &TcpListener, addr: std::net::SocketAddr, n: usize) {
    for _ in 0..n {
        let (accepted, connected) =
            iomgr::future::join(listener.accept(), TcpStream::connect(addr)).await;
        let (server, _peer) = accepted.unwrap();
        let client = connected.unwrap();
        drop((server, client));
    }
}

#[test]
fn accept_and_connect_allocate_nothing_after_warm_up() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        accepts_and_connects(&listener, addr, 20).await;
        let ((), allocations) =
            allocations_during(accepts_and_connects(&listener, addr, 500)).await;
        assert_eq!(
            allocations, 0,
            "allocations during 500 accepts and connects"
        );
    });
}

async fn datagrams(
    a: &UdpSocket,
    b: &UdpSocket,
    mut bufs: (Vec<u8>, Vec<u8>),
    n: usize,
) -> (Vec<u8>, Vec<u8>) {
    let to = b.local_addr().unwrap();
    let from = a.local_addr().unwrap();
    for i in 0..n {
        let (out, mut back) = bufs;
        let (res, out) = a.send_to(out, to).await;
        assert_eq!(res.unwrap(), 8);
        back.clear();
        let (res, back) = b.recv_from(back).await;
        let (len, peer) = res.unwrap();
        assert_eq!((len, peer), (8, from), "datagram {i}");
        bufs = (out, back);
    }
    bufs
}

#[test]
fn send_to_and_recv_from_allocate_nothing_after_warm_up() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let bufs = (vec![7u8; 8], Vec::with_capacity(64));
        let bufs = datagrams(&a, &b, bufs, 20).await;
        let (_, allocations) = allocations_during(datagrams(&a, &b, bufs, 2000)).await;
        assert_eq!(
            allocations, 0,
            "allocations during 2000 send_to/recv_from pairs"
        );
    });
}

async fn statxs(file: &File, n: usize) {
    for _ in 0..n {
        let meta = file.metadata().await.unwrap();
        assert_eq!(meta.len(), 5);
    }
}

#[test]
fn statx_allocates_nothing_after_warm_up() {
    let path = std::env::temp_dir().join(format!("iomgr-alloc-statx-{}", std::process::id()));
    std::fs::write(&path, b"hello").unwrap();
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let file = File::open(&path).await.unwrap();
        statxs(&file, 20).await;
        let ((), allocations) = allocations_during(statxs(&file, 2000)).await;
        assert_eq!(allocations, 0, "allocations during 2000 statx ops");
    });
    std::fs::remove_file(&path).unwrap();
}

async fn cancellations(rt: &Runtime, listener: &TcpListener, n: usize) {
    for _ in 0..n {
        abandon_in_flight(listener.accept_op()).await;
        // Abandoned, not withdrawn: the driver keeps it until its cancellation completes.
        assert!(rt.ops_in_flight() >= 1);
        abandon_in_flight(iomgr::time::sleep(std::time::Duration::from_secs(60))).await;
    }
    // Let the cancellations complete, so the driver drops what it kept.
    for _ in 0..4 {
        iomgr::yield_now().await;
    }
}

#[test]
fn cancelling_ops_in_flight_allocates_nothing_after_warm_up() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        cancellations(&rt, &listener, 20).await;
        let ((), allocations) = allocations_during(cancellations(&rt, &listener, 1000)).await;
        assert_eq!(allocations, 0, "allocations during 2000 cancellations");
    });
    assert_eq!(rt.ops_in_flight(), 0, "every cancelled op completed");
}

#[test]
fn spawning_tasks_allocates_nothing_after_warm_up() {
    async fn spawns(n: u64, handles: &mut Vec<iomgr::JoinHandle<u64>>) {
        let mut sum = 0;
        for round in 0..n {
            for i in 0..64 {
                handles.push(spawn(async move { round + i }));
            }
            for h in handles.drain(..) {
                sum += h.await.unwrap();
            }
        }
        assert!(sum > 0 || n == 0);
    }
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let mut handles = Vec::with_capacity(64);
        spawns(2, &mut handles).await;
        let ((), allocations) = allocations_during(spawns(100, &mut handles)).await;
        assert_eq!(allocations, 0, "allocations during 6400 spawns");
    });
}
