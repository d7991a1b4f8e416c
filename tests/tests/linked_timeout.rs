//! `op.timeout(d)`: an op and a linked `LINK_TIMEOUT` in one submission. On expiry the op
//! completes with `TimedOut` and gives its buffer back; the pair is never split, even when
//! the submission queue is nearly full.

use std::future::Future;
use std::io::Write;
use std::time::{Duration, Instant};

use iomgr::Runtime;
use iomgr::future::join;
use iomgr::net::{TcpListener, TcpStream, UnixStream};
use iomgr::runtime::Feature;
use iomgr_tests::{TrackedBuf, until};

fn runtime(entries: u32) -> Option<Runtime> {
    let rt = Runtime::builder().entries(entries).build().unwrap();
    if !rt.supports(Feature::LinkTimeout) {
        println!("skipped: this kernel has no linked timeouts");
        return None;
    }
    Some(rt)
}

#[test]
fn a_read_that_times_out_gives_its_buffer_back() {
    let Some(rt) = runtime(256) else { return };
    rt.block_on(async {
        let (a, _b) = UnixStream::pair().unwrap();
        let (buf, probe) = TrackedBuf::new(64);
        let start = Instant::now();
        let (res, buf) = a.read(buf).timeout(Duration::from_millis(20)).await;
        let err = res.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
        assert!(err.to_string().contains("20ms"), "{err}");
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert!(!probe.dropped(), "the buffer came back");
        assert_eq!(buf.bytes().len(), 0);
        assert_eq!(rt.ops_in_flight(), 0);
    });
}

#[test]
fn an_op_that_completes_in_time_is_untouched_by_its_timeout() {
    let Some(rt) = runtime(256) else { return };
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().await.unwrap();
        client.write_all(b"in time").unwrap();
        let (res, buf) = server
            .read(vec![0u8; 16])
            .timeout(Duration::from_secs(10))
            .await;
        assert_eq!(&buf[..res.unwrap()], b"in time");
        let connect = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (res, _) = connect.write(b"x").timeout(Duration::from_secs(5)).await;
        assert_eq!(res.unwrap(), 1);
        // The timeouts were cancelled with their ops: nothing is left in the kernel.
        until(100, "the linked timeouts' completions", || {
            rt.ops_in_flight() == 0
        })
        .await;
    });
}

#[test]
fn timed_ops_on_a_nearly_full_submission_queue_keep_each_pair_together() {
    // 4 entries: with one SQE queued, a pair still fits; with three, the driver must flush
    // before queueing a pair, never split it across two submissions.
    let Some(rt) = runtime(4) else { return };
    rt.block_on(async {
        let pairs: Vec<_> = (0..9).map(|_| UnixStream::pair().unwrap()).collect();
        let mut results = Vec::new();
        // Poll three at a time so the SQ holds odd numbers of entries between pairs.
        let mut it = pairs.iter();
        while let (Some(x), Some(y), Some(z)) = (it.next(), it.next(), it.next()) {
            let d = Duration::from_millis(15);
            let (r1, (r2, r3)) = join(
                x.0.read(vec![0u8; 8]).timeout(d),
                join(
                    y.0.read(vec![0u8; 8]).timeout(d),
                    z.0.read(vec![0u8; 8]).timeout(d),
                ),
            )
            .await;
            results.extend([r1.0, r2.0, r3.0]);
        }
        assert_eq!(results.len(), 9);
        for res in results {
            let err = res.unwrap_err();
            assert_eq!(
                err.kind(),
                std::io::ErrorKind::TimedOut,
                "a split link shows up as EINVAL or a read that never ends: {err}"
            );
        }
        assert_eq!(rt.ops_in_flight(), 0);
    });
}

#[test]
fn a_timed_op_dropped_before_or_after_submission_leaves_nothing_behind() {
    let Some(rt) = runtime(256) else { return };
    rt.block_on(async {
        let (a, b) = UnixStream::pair().unwrap();
        // Dropped before its first poll, and after queueing (withdrawn with its timeout).
        drop(a.read(vec![0u8; 8]).timeout(Duration::from_millis(1)));
        {
            let timed = std::pin::pin!(a.read(vec![0u8; 8]).timeout(Duration::from_secs(60)));
            let mut timed = timed;
            std::future::poll_fn(|cx| {
                assert!(timed.as_mut().poll(cx).is_pending());
                std::task::Poll::Ready(())
            })
            .await;
        }
        // Dropped in the kernel: cancelled, the buffer freed at the last completion.
        let (buf, probe) = TrackedBuf::new(8);
        {
            let op = a.read(buf).timeout(Duration::from_secs(60));
            let _ = iomgr::time::timeout(Duration::from_millis(5), op).await;
        }
        until(1000, "the cancelled read", || probe.dropped()).await;
        assert_eq!(rt.ops_in_flight(), 0);
        // The stream still works, and no stray timeout fires into the next read.
        let (res, _) = b.write(b"next").await;
        res.unwrap();
        let (res, buf) = a.read(vec![0u8; 8]).timeout(Duration::from_secs(5)).await;
        assert_eq!(&buf[..res.unwrap()], b"next");
    });
}
