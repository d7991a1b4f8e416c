//! Back-pressure and cancellation: a stalled sink stops the source's reads (counted) until it
//! moves again, and a pipeline dropped with ops in flight hands their buffers to the runtime
//! until the kernel is done with them (drop-recording buffers).

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use iomgr::buf::BufExt;
use iomgr::net::UnixStream;
use iomgr::pipeline::{Input, SegmentState, Sink, SocketReader, StageError};
use iomgr::time::sleep;
use iomgr::{Runtime, yield_now};
use iomgr_tests::{DropProbe, TrackedBuf, poll_once, until};

/// A sink that takes nothing while its gate is shut.
struct Gate {
    open: Rc<Cell<bool>>,
    waker: Rc<RefCell<Option<Waker>>>,
    bytes: usize,
}

impl Sink for Gate {
    type Item = Vec<u8>;

    fn poll_sink(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        input: &mut Input<'_, Vec<u8>>,
    ) -> Poll<Result<(), StageError>> {
        let this = self.get_mut();
        loop {
            if !this.open.get() {
                *this.waker.borrow_mut() = Some(cx.waker().clone());
                return Poll::Pending;
            }
            match input.take() {
                Some(buf) => this.bytes += buf.len(),
                None if input.is_ended() => return Poll::Ready(Ok(())),
                None => return Poll::Pending,
            }
        }
    }
}

#[test]
fn a_stalled_sink_stops_the_source_and_reads_resume_when_it_moves() {
    const TOTAL: usize = 4 << 20;
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    // A producer much faster than the sink: it blocks only when the socket is full.
    let producer = std::thread::spawn(move || {
        let mut theirs = theirs;
        let chunk = vec![7u8; 64 * 1024];
        for _ in 0..TOTAL / chunk.len() {
            theirs.write_all(&chunk).unwrap();
        }
    });
    Runtime::new().unwrap().block_on(async {
        let stream = UnixStream::from_std(ours).unwrap();
        let reads = Cell::new(0usize);
        let open = Rc::new(Cell::new(false));
        let waker = Rc::new(RefCell::new(None::<Waker>));
        let gate = Gate {
            open: open.clone(),
            waker: waker.clone(),
            bytes: 0,
        };
        let mut gate = gate;
        {
            let pipeline = iomgr::pipeline! {
                SocketReader::new(&stream).buffers(|| {
                    reads.set(reads.get() + 1);
                    Vec::with_capacity(16 * 1024)
                })
                => &mut gate
            };
            let mut pipeline = pin!(pipeline);
            let control = async {
                sleep(Duration::from_millis(30)).await;
                let stalled = reads.get();
                sleep(Duration::from_millis(60)).await;
                // The segment before the sink holds one buffer; no read started after it.
                assert_eq!(
                    reads.get(),
                    stalled,
                    "the source kept reading into a full segment"
                );
                assert!(stalled <= 2, "{stalled} reads before the stall");
                open.set(true);
                if let Some(w) = waker.borrow_mut().take() {
                    w.wake();
                }
                stalled
            };
            let stalled = match iomgr::future::select(pipeline.as_mut(), control).await {
                iomgr::future::Either::Right(stalled) => stalled,
                iomgr::future::Either::Left(r) => panic!("ended while stalled: {r:?}"),
            };
            // While stalled, the segment in front of the sink held the one buffer read.
            assert_eq!(pipeline.segments(), [SegmentState::Holding]);
            pipeline.as_mut().await.unwrap();
            assert!(
                reads.get() > stalled + 100,
                "reads resumed: {}",
                reads.get()
            );
        }
        assert_eq!(gate.bytes, TOTAL);
    });
    producer.join().unwrap();
}

#[test]
fn a_pipeline_dropped_mid_read_keeps_the_buffer_until_the_read_is_reaped() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let (_a, b) = UnixStream::pair().unwrap();
        let probes: RefCell<Vec<Rc<DropProbe>>> = RefCell::new(Vec::new());
        let mut out: Vec<TrackedBuf> = Vec::new();
        {
            let pipeline = iomgr::pipeline! {
                SocketReader::new(&b).buffers(|| {
                    let (buf, probe) = TrackedBuf::new(256);
                    probes.borrow_mut().push(probe);
                    buf
                })
                => &mut out
            };
            let mut pipeline = pin!(pipeline);
            assert!(poll_once(pipeline.as_mut()).is_pending());
            yield_now().await; // the read is in the kernel
            assert_eq!(rt.ops_in_flight(), 1);
            assert_eq!(pipeline.segments(), [SegmentState::Pulling]);
        } // dropped with the read in flight
        let probes = probes.into_inner();
        assert_eq!(probes.len(), 1);
        assert!(
            !probes[0].dropped(),
            "freed while the kernel may write into it"
        );
        until(1000, "the cancelled read is reaped", || probes[0].dropped()).await;
        assert_eq!(rt.ops_in_flight(), 0);
        assert!(out.is_empty());
    });
}

#[test]
fn a_pipeline_dropped_mid_write_keeps_the_buffer_until_the_write_is_reaped() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let (a, _b) = UnixStream::pair().unwrap(); // nobody reads `_b`
        let (big, probe) = TrackedBuf::filled(vec![1u8; 8 << 20]);
        {
            let pipeline = iomgr::pipeline! {
                iomgr::pipeline::iter([big]) => |b: TrackedBuf| b.slice(..) => &a
            };
            let mut pipeline = pin!(pipeline);
            // The first send fills the socket; the rest of the buffer is in a send that
            // cannot complete.
            for _ in 0..20 {
                assert!(poll_once(pipeline.as_mut()).is_pending());
                yield_now().await;
            }
            assert_eq!(rt.ops_in_flight(), 1);
        } // dropped with the write in flight
        assert!(!probe.dropped(), "freed while the kernel may read from it");
        until(1000, "the cancelled write is reaped", || probe.dropped()).await;
        assert_eq!(rt.ops_in_flight(), 0);
    });
}

#[test]
fn a_pipeline_dropped_mid_call_drops_the_async_stage_future_once() {
    Runtime::new().unwrap().block_on(async {
        struct Guard(Rc<Cell<u32>>);
        impl Drop for Guard {
            fn drop(&mut self) {
                self.0.set(self.0.get() + 1);
            }
        }
        let drops = Rc::new(Cell::new(0));
        let mut out: Vec<u32> = Vec::new();
        {
            let d = drops.clone();
            let pipeline = iomgr::pipeline! {
                iomgr::pipeline::iter([1u32, 2, 3])
                => move |x| {
                    let guard = Guard(d.clone());
                    async move {
                        std::future::pending::<()>().await;
                        drop(guard);
                        x
                    }
                }
                => &mut out
            };
            let mut pipeline = pin!(pipeline);
            assert!(poll_once(pipeline.as_mut()).is_pending());
            // The second item waits in the first segment; the async stage is working on the
            // first (its output segment is "pulling").
            assert_eq!(
                pipeline.segments(),
                [SegmentState::Holding, SegmentState::Pulling]
            );
            assert_eq!(drops.get(), 0);
        }
        assert_eq!(drops.get(), 1);
    });
}

/// A sink that never takes anything.
struct Stuck;

impl Sink for Stuck {
    type Item = u32;
    fn poll_sink(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        _input: &mut Input<'_, u32>,
    ) -> Poll<Result<(), StageError>> {
        Poll::Pending
    }
}

#[test]
fn behind_a_stuck_sink_every_segment_fills_with_exactly_one_item() {
    Runtime::new().unwrap().block_on(async {
        let produced = Cell::new(0u32);
        let pipeline = iomgr::pipeline! {
            iomgr::pipeline::iter((0..1_000_000u32).inspect(|_| produced.set(produced.get() + 1)))
            => |x| x + 1
            => |x| x * 2
            => Stuck
        };
        let mut pipeline = pin!(pipeline);
        for _ in 0..3 {
            assert!(poll_once(pipeline.as_mut()).is_pending());
        }
        // Each segment moved as soon as both of its ends were ready, and holds one item:
        // however fast the source, three items are in flight, no more.
        assert_eq!(pipeline.segments(), [SegmentState::Holding; 3]);
        assert_eq!(produced.get(), 3);
    });
}
