//! Provided-buffer rings and multishot receive, over real loopback sockets.
//!
//! The kernel picks a buffer of the ring for each receive; a chunk gives it back when
//! dropped. The unhappy paths: a ring that runs dry under a slow consumer (the stream must
//! re-arm with nothing lost and the order kept), a stream dropped mid-flight (chunks stay
//! valid, buffers come back, the ring's memory outlives the kernel's last completion), and
//! no allocation per chunk after warm-up.

use std::io::Write;
use std::pin::pin;
use std::thread;
use std::time::Duration;

use futures_core::Stream;
use iomgr::buf::{BufRing, IoBuf};
use iomgr::net::{TcpListener, TcpStream, UdpSocket, UnixStream};
use iomgr::runtime::Feature;
use iomgr::time::sleep;
use iomgr::{Runtime, spawn};
use iomgr_tests::{CountingAlloc, allocations_during, until};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// The byte at position `i` of the test streams: order mistakes show.
fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

fn patterned(len: usize) -> Vec<u8> {
    (0..len).map(pattern).collect()
}

fn runtime() -> Option<Runtime> {
    let rt = Runtime::new().unwrap();
    if !rt.supports(Feature::RecvMultishot) || !rt.supports(Feature::BufRing) {
        println!("skipped: this kernel has no multishot receive into buffer rings");
        return None;
    }
    Some(rt)
}

/// A connected pair: `(iomgr side, std side)`.
async fn tcp_pair() -> (TcpStream, std::net::TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (server, client)
}

#[test]
fn chunks_arrive_in_order_and_the_stream_ends_when_the_peer_closes() {
    let Some(rt) = runtime() else { return };
    rt.block_on(async {
        let ring = BufRing::new(16, 1024).unwrap();
        assert_eq!(ring.available(), 16);
        let (server, mut client) = tcp_pair().await;
        let data = patterned(100_000);
        let sent = data.clone();
        let writer = thread::spawn(move || {
            for piece in sent.chunks(3000) {
                client.write_all(piece).unwrap();
            }
        });
        let mut chunks = pin!(server.recv_multishot(&ring));
        let mut got = Vec::new();
        while let Some(chunk) = chunks.as_mut().next().await {
            let chunk = chunk.unwrap();
            assert!(!chunk.is_empty() && chunk.len() <= 1024);
            got.extend_from_slice(&chunk);
        }
        writer.join().unwrap();
        assert_eq!(got.len(), data.len());
        assert!(got == data, "bytes out of order or corrupted");
        assert!(chunks.as_mut().next().await.is_none(), "stays ended");
        assert_eq!(ring.available(), 16, "every buffer went back");
        assert_eq!(rt.ops_in_flight(), 0);
    });
}

#[test]
fn an_exhausted_ring_re_arms_when_buffers_come_back_losing_nothing() {
    let Some(rt) = runtime() else { return };
    rt.block_on(async {
        // 4 buffers of 64 bytes for 256 KiB: the ring runs dry again and again.
        let ring = BufRing::new(4, 64).unwrap();
        let (server, mut client) = tcp_pair().await;
        let data = patterned(256 * 1024);
        let sent = data.clone();
        let writer = thread::spawn(move || client.write_all(&sent).unwrap());
        let mut chunks = pin!(server.recv_multishot(&ring));
        let mut got = Vec::with_capacity(data.len());
        let mut held = Vec::new();
        let mut dry = 0;
        while let Some(chunk) = chunks.as_mut().next().await {
            // A slow consumer: hold every chunk until the ring is empty, then pause.
            held.push(chunk.unwrap());
            if ring.available() == 0 {
                dry += 1;
                if dry % 64 == 0 {
                    sleep(Duration::from_millis(1)).await;
                }
                for chunk in held.drain(..) {
                    got.extend_from_slice(&chunk);
                }
            }
        }
        for chunk in held.drain(..) {
            got.extend_from_slice(&chunk);
        }
        writer.join().unwrap();
        assert!(dry > 100, "the ring ran dry only {dry} times");
        assert_eq!(got.len(), data.len(), "bytes lost");
        assert!(got == data, "bytes out of order or corrupted");
        assert_eq!(ring.available(), 4);
        assert_eq!(rt.ops_in_flight(), 0);
    });
}

#[test]
fn a_stream_waits_for_a_chunk_to_be_dropped_when_it_holds_the_whole_ring() {
    let Some(rt) = runtime() else { return };
    rt.block_on(async {
        let ring = BufRing::new(2, 8).unwrap();
        let (server, mut client) = tcp_pair().await;
        client.write_all(&patterned(40)).unwrap();
        let mut chunks = pin!(server.recv_multishot(&ring));
        let first = chunks.as_mut().next().await.unwrap().unwrap();
        let second = chunks.as_mut().next().await.unwrap().unwrap();
        assert_eq!(ring.available(), 0);
        // The ring is empty and both chunks are held: the stream must wait, not spin or end.
        let waited = iomgr::time::timeout(Duration::from_millis(30), chunks.as_mut().next()).await;
        assert!(waited.is_err(), "got an item with every buffer held");
        assert_eq!(&first[..], &patterned(8)[..]);
        drop(first);
        let third = chunks.as_mut().next().await.unwrap().unwrap();
        assert_eq!(&second[..], &patterned(16)[8..]);
        assert_eq!(&third[..], &patterned(24)[16..]);
        drop((second, third));
        client.shutdown(std::net::Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        while let Some(chunk) = chunks.as_mut().next().await {
            rest.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(rest, &patterned(40)[24..]);
    });
}

#[test]
fn streams_sharing_a_dry_ring_each_get_their_turn_and_a_dropped_waiter_steals_none() {
    let Some(rt) = runtime() else { return };
    rt.block_on(async {
        let ring = BufRing::new(2, 16).unwrap();
        let mut tasks = Vec::new();
        let mut writers = Vec::new();
        // A stream that waits for a buffer and is then dropped: the wake a returned
        // buffer brings must go to a stream that still waits.
        let (quitter, mut quitter_peer) = tcp_pair().await;
        quitter_peer.write_all(&[0u8; 64]).unwrap();
        for i in 0..4usize {
            let (server, mut client) = tcp_pair().await;
            let data = patterned(4096 + i);
            writers.push(thread::spawn(move || client.write_all(&data).unwrap()));
            let ring = ring.clone();
            tasks.push(spawn(async move {
                let mut chunks = pin!(server.recv_multishot(&ring));
                let mut got = Vec::new();
                while let Some(chunk) = chunks.as_mut().next().await {
                    let chunk = chunk.unwrap();
                    // Hold it across a yield, so the ring is often dry.
                    iomgr::yield_now().await;
                    got.extend_from_slice(&chunk);
                }
                got
            }));
        }
        {
            let mut chunks = pin!(quitter.recv_multishot(&ring));
            let _ = iomgr::time::timeout(Duration::from_millis(2), chunks.as_mut().next()).await;
        }
        for w in writers {
            w.join().unwrap();
        }
        // Each writer thread closed its socket when it ended: every stream ends.
        for (i, task) in tasks.into_iter().enumerate() {
            let got = task.await.unwrap();
            assert!(
                got == patterned(4096 + i),
                "stream {i}: bytes lost or out of order"
            );
        }
        drop(quitter_peer);
        assert_eq!(ring.available(), 2);
    });
}

#[test]
fn dropping_the_stream_mid_flight_returns_every_buffer_and_chunks_outlive_the_ring() {
    let Some(rt) = runtime() else { return };
    rt.block_on(async {
        let ring = BufRing::new(8, 32).unwrap();
        let (server, mut client) = tcp_pair().await;
        client.write_all(&patterned(64)).unwrap();
        let kept = {
            let mut chunks = pin!(server.recv_multishot(&ring));
            let kept = chunks.as_mut().next().await.unwrap().unwrap();
            // Let the second chunk's completion arrive unseen, then keep data coming.
            sleep(Duration::from_millis(5)).await;
            client.write_all(&patterned(64)).unwrap();
            kept
        }; // dropped in flight, with a completion queued and more on the way
        assert_eq!(&kept[..], &patterned(32)[..]);
        until(1000, "the cancelled receive's last completion", || {
            rt.ops_in_flight() == 0
        })
        .await;
        assert_eq!(
            ring.available(),
            7,
            "all but the kept chunk's buffer are back"
        );
        // The chunk outlives the stream and the ring's handle; its memory is still there.
        drop(ring);
        assert_eq!(&kept[..], &patterned(32)[..]);
        assert_eq!(kept.bytes_init(), 32);
        drop(kept);
        drop(server);
    });
}

#[test]
fn a_chunk_can_be_written_to_another_socket_and_moved_into_another_task() {
    let Some(rt) = runtime() else { return };
    rt.block_on(async {
        let ring = BufRing::new(4, 4096).unwrap();
        let (server, mut client) = tcp_pair().await;
        let (a, b) = UnixStream::pair().unwrap();
        client.write_all(b"forward me").unwrap();
        let mut chunks = pin!(server.recv_multishot(&ring));
        let chunk = chunks.as_mut().next().await.unwrap().unwrap();
        let task = spawn(async move {
            let (res, chunk) = a.write_all(chunk).await; // no copy: the ring's buffer
            res.unwrap();
            chunk.len()
        });
        assert_eq!(task.await.unwrap(), 10);
        let (res, buf) = b.read(vec![0u8; 64]).await;
        assert_eq!(&buf[..res.unwrap()], b"forward me");
        assert_eq!(ring.available(), 4);
    });
}

#[test]
fn unix_streams_and_udp_sockets_receive_into_a_ring_too() {
    let Some(rt) = runtime() else { return };
    rt.block_on(async {
        let ring = BufRing::new(8, 256).unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        let (res, _) = a.write_all(patterned(1000)).await;
        res.unwrap();
        drop(a);
        let mut chunks = pin!(b.recv_multishot(&ring));
        let mut got = Vec::new();
        while let Some(chunk) = chunks.as_mut().next().await {
            got.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(got, patterned(1000));

        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.connect(tx.local_addr().unwrap()).unwrap();
        for i in 0..5u8 {
            tx.send_to(&[i; 10], rx.local_addr().unwrap()).unwrap();
        }
        tx.send_to(&[], rx.local_addr().unwrap()).unwrap(); // an empty datagram is skipped
        tx.send_to(&[9; 300], rx.local_addr().unwrap()).unwrap(); // cut to 256
        let mut datagrams = pin!(rx.recv_multishot(&ring));
        for i in 0..5u8 {
            let d = datagrams.as_mut().next().await.unwrap().unwrap();
            assert_eq!(&d[..], &[i; 10], "one chunk per datagram, in order");
        }
        let d = datagrams.as_mut().next().await.unwrap().unwrap();
        assert_eq!(d.len(), 256);
    });
}

#[test]
fn rings_get_their_own_group_ids_and_bad_sizes_are_refused_with_a_reason() {
    let Some(rt) = runtime() else { return };
    rt.block_on(async {
        let a = BufRing::new(2, 16).unwrap();
        let b = BufRing::new(2, 16).unwrap();
        assert_ne!(a.group_id(), b.group_id());
        let id = a.group_id();
        drop(a);
        let c = BufRing::new(4, 16).unwrap();
        assert_eq!(c.group_id(), id, "an unregistered group id is free again");
        let err = BufRing::new(3, 16).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("power of two"), "{err}");
        let err = BufRing::new(4, 0).unwrap_err();
        assert!(err.to_string().contains("1 to"), "{err}");
    });
    let err = BufRing::new(4, 16).unwrap_err();
    assert!(err.to_string().contains("Runtime::block_on"), "{err}");
}

#[test]
fn a_ring_of_another_runtime_is_an_error_item_not_a_wrong_buffer() {
    let Some(rt) = runtime() else { return };
    let other = Runtime::new().unwrap();
    let ring = other.block_on(async { BufRing::new(2, 16).unwrap() });
    rt.block_on(async {
        let (server, _client) = tcp_pair().await;
        let mut chunks = pin!(server.recv_multishot(&ring));
        let err = chunks.as_mut().next().await.unwrap().unwrap_err();
        assert!(err.to_string().contains("another runtime"), "{err}");
        assert!(chunks.as_mut().next().await.is_none());
    });
    drop(ring);
}

#[test]
fn receiving_chunks_allocates_nothing_after_warm_up() {
    let Some(rt) = runtime() else { return };
    rt.block_on(async {
        let ring = BufRing::new(64, 256).unwrap();
        let (server, client) = tcp_pair().await;
        let client = TcpStream::from_std(client).unwrap();
        let mut chunks = pin!(server.recv_multishot(&ring));
        let mut round = async |i: usize| {
            let msg: &'static [u8] = &[7u8; 100];
            let (res, _) = client.write_all(msg).await;
            res.unwrap();
            let mut n = 0;
            while n < 100 {
                let chunk = chunks.as_mut().next().await.unwrap().unwrap();
                n += chunk.len();
            }
            assert_eq!(n, 100, "round {i}");
        };
        for i in 0..100 {
            round(i).await;
        }
        let ((), allocations) = allocations_during(async {
            for i in 0..1000 {
                round(i).await;
            }
        })
        .await;
        assert_eq!(allocations, 0, "allocations during 1000 chunks");
    });
}

/// `Stream` is implemented (for combinators from other crates).
#[allow(dead_code)]
fn is_a_stream(
    s: iomgr::net::RecvStream<'_>,
) -> impl Stream<Item = std::io::Result<iomgr::buf::RingBuf>> + '_ {
    s
}
