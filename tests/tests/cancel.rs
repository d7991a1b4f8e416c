//! Cancellation safety: dropping ops in flight never frees memory the kernel may still use.
//!
//! Each test hands a [`TrackedBuf`] to an op, drops the op while the kernel owns it, and checks
//! that the buffer outlives the op's completion: it is *not* freed when the future is dropped
//! (the driver holds it), and it *is* freed once the completion has been reaped, with nothing
//! left in flight and no descriptor leaked.

use std::io::{Read, Write};
use std::pin::pin;
use std::task::{Context, Poll};
use std::time::Duration;

use iomgr::net::{TcpListener, UnixStream};
use iomgr::time::{sleep, timeout};
use iomgr::{Runtime, spawn, yield_now};
use iomgr_tests::{TrackedBuf, open_fds, poll_once, serial, until};

#[test]
fn dropped_socket_read_keeps_its_buffer_until_cancelled_and_loses_no_later_data() {
    let _serial = serial();
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let (a, b) = UnixStream::pair().unwrap();
        let (buf, probe) = TrackedBuf::new(64);
        {
            let mut read = pin!(b.read(buf));
            assert!(poll_once(read.as_mut()).is_pending());
            yield_now().await; // the read is now in the kernel
            assert_eq!(rt.ops_in_flight(), 1);
        } // dropped in flight
        assert!(
            !probe.dropped(),
            "freed while the kernel may still write into it"
        );
        until(1000, "the cancelled read is reaped", || probe.dropped()).await;
        assert_eq!(rt.ops_in_flight(), 0);
        // Data sent after the cancellation stays in the socket for the next read.
        let (res, _) = a.write_all(b"after cancel".as_slice()).await;
        res.unwrap();
        let (res, got) = b.read_exact(Vec::with_capacity(12)).await;
        res.unwrap();
        assert_eq!(got, b"after cancel");
    });
}

#[test]
fn data_racing_a_cancel_lands_in_the_held_buffer_not_in_freed_memory() {
    let _serial = serial();
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        for _ in 0..50 {
            let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
            let b = UnixStream::from_std(b).unwrap();
            let (buf, probe) = TrackedBuf::new(64);
            {
                let mut read = pin!(b.read(buf));
                assert!(poll_once(read.as_mut()).is_pending());
                yield_now().await;
            }
            // The peer writes before the cancellation reaches the kernel: the read may
            // complete with data, which must land in the buffer the driver still holds.
            (&a).write_all(b"racing bytes").unwrap();
            until(1000, "the abandoned read is reaped", || probe.dropped()).await;
            assert!(probe.len_at_drop() == 0 || probe.len_at_drop() == 12);
            if probe.len_at_drop() == 0 {
                // The cancel won: the bytes are still in the socket.
                let (res, got) = b.read_exact(Vec::with_capacity(12)).await;
                res.unwrap();
                assert_eq!(got, b"racing bytes");
            }
            assert_eq!(rt.ops_in_flight(), 0);
        }
    });
}

#[test]
fn a_read_timed_out_with_timeout_is_cancelled_safely() {
    let _serial = serial();
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let (_a, b) = UnixStream::pair().unwrap();
        let (buf, probe) = TrackedBuf::new(128);
        let res = timeout(Duration::from_millis(10), b.read(buf)).await;
        assert!(res.is_err(), "nobody writes, so the read times out");
        assert!(
            !probe.dropped(),
            "the timed-out read still owned its buffer"
        );
        until(1000, "the timed-out read is reaped", || probe.dropped()).await;
        assert_eq!(rt.ops_in_flight(), 0);
    });
}

#[test]
fn a_dropped_accept_leaks_no_connection() {
    let _serial = serial();
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let baseline = open_fds();
        for round in 0..20 {
            {
                let mut accept = pin!(listener.accept_op());
                assert!(poll_once(accept.as_mut()).is_pending());
                yield_now().await;
            }
            // Connect right away: half the rounds race the cancel, half come after it.
            if round % 2 == 1 {
                until(1000, "the cancelled accept is reaped", || {
                    rt.ops_in_flight() == 0
                })
                .await;
            }
            let mut client = std::net::TcpStream::connect(addr).unwrap();
            until(1000, "the abandoned accept is reaped", || {
                rt.ops_in_flight() == 0
            })
            .await;
            // Either the cancelled accept took the connection (and the driver closed it, so
            // the client sees end of stream), or it is still queued for the next accept.
            client.set_nonblocking(true).unwrap();
            let mut byte = [0u8; 1];
            match client.read(&mut byte) {
                Ok(0) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let (stream, _) = listener.accept().await.unwrap();
                    drop(stream);
                }
                other => panic!("unexpected read result {other:?}"),
            }
            drop(client);
        }
        assert_eq!(open_fds(), baseline, "no descriptor leaked");
    });
}

#[test]
fn aborting_a_task_with_reads_and_writes_in_flight_frees_buffers_after_completion() {
    let _serial = serial();
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // A peer that never reads, so a large write stays in flight; it stays connected until
        // the test is done (a fixed sleep made the write fail early on a loaded machine).
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let peer = std::thread::spawn(move || {
            let _s = std::net::TcpStream::connect(addr).unwrap();
            let _ = done_rx.recv_timeout(Duration::from_secs(30));
        });
        let (writer, _) = listener.accept().await.unwrap();
        let (_quiet, reader) = UnixStream::pair().unwrap();
        let (read_buf, read_probe) = TrackedBuf::new(4096);
        let (write_buf, write_probe) = TrackedBuf::filled(vec![7u8; 64 << 20]);
        let task = spawn(async move {
            let read = reader.read(read_buf);
            let write = writer.write_all(write_buf);
            let mut read = pin!(read);
            let mut write = pin!(write);
            std::future::poll_fn(|cx| {
                let _ = read.as_mut().poll(cx);
                let _ = write.as_mut().poll(cx);
                Poll::<()>::Pending
            })
            .await;
        });
        until(2000, "both ops are in flight", || rt.ops_in_flight() == 2).await;
        task.abort();
        // Aborting only asks: nothing is dropped until the scheduler reaches the task.
        assert!(!read_probe.dropped() && !write_probe.dropped());
        assert!(task.await.unwrap_err().is_cancelled());
        // From here on, a buffer is freed exactly when its op has left the driver: freed
        // buffers plus ops still in flight is always 2 (early free or a leak breaks it).
        let freed = || usize::from(read_probe.dropped()) + usize::from(write_probe.dropped());
        until(2000, "both ops are reaped", || {
            assert_eq!(
                freed() + rt.ops_in_flight(),
                2,
                "a buffer outlived or predeceased its op"
            );
            freed() == 2
        })
        .await;
        assert_eq!(rt.ops_in_flight(), 0);
        drop(done_tx);
        peer.join().unwrap();
    });
}

/// Shutdown frees every buffer and closes every descriptor. *When* each buffer is freed
/// (only after its completion) happens inside `Runtime::drop` and cannot be observed here;
/// the abandonment path it uses is the one the tests above pin down.
#[test]
fn shutting_a_runtime_down_with_ops_in_flight_frees_everything() {
    let _serial = serial();
    let mut probes = Vec::new();
    let baseline = open_fds();
    {
        let rt = Runtime::new().unwrap();
        let mut keep = Vec::new();
        rt.block_on(async {
            for _ in 0..8 {
                let (a, b) = UnixStream::pair().unwrap();
                let (buf, probe) = TrackedBuf::new(1024);
                probes.push(probe);
                spawn(async move {
                    let _ = b.read(buf).await;
                });
                keep.push(a);
            }
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            spawn(async move {
                let _ = listener.accept().await;
            });
            sleep(Duration::from_millis(5)).await;
            assert_eq!(rt.ops_in_flight(), 9);
        });
        assert!(probes.iter().all(|p| !p.dropped()));
        drop(rt);
        assert!(
            probes.iter().all(|p| p.dropped()),
            "every buffer is freed once its op completed, none leaked"
        );
        drop(keep);
    }
    assert_eq!(
        open_fds(),
        baseline,
        "ring, eventfd and sockets are all closed"
    );
}

#[test]
fn a_completed_but_unpolled_op_is_cleaned_up_when_dropped() {
    let _serial = serial();
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let (a, b) = UnixStream::pair().unwrap();
        let (res, _) = a.write_all(b"ready".as_slice()).await;
        res.unwrap();
        let (buf, probe) = TrackedBuf::new(16);
        {
            let mut read = pin!(b.read(buf));
            assert!(poll_once(read.as_mut()).is_pending());
            sleep(Duration::from_millis(5)).await; // completes, but nobody polls it
        }
        assert!(probe.dropped(), "already completed: freed right away");
        assert_eq!(rt.ops_in_flight(), 0);
    });
}

#[test]
fn a_dropped_sleep_is_cancelled() {
    let _serial = serial();
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        for _ in 0..100 {
            let mut s = pin!(sleep(Duration::from_secs(3600)));
            assert!(poll_once(s.as_mut()).is_pending());
        }
        until(1000, "the cancelled timers are reaped", || {
            rt.ops_in_flight() == 0
        })
        .await;
    });
}

/// A waker that is not iomgr's and owns a future: its clone or its last drop (user code, as
/// a combinator's waker may run) drops that future, and with it an op in flight.
mod owning_waker {
    use std::cell::{Cell, RefCell};
    use std::future::Future;
    use std::pin::Pin;
    use std::rc::Rc;
    use std::task::{RawWaker, RawWakerVTable, Waker};

    pub struct Holder {
        future: RefCell<Option<Pin<Box<dyn Future<Output = ()>>>>>,
        drop_on_clone: Cell<bool>,
    }

    impl Holder {
        pub fn new(future: impl Future<Output = ()> + 'static, drop_on_clone: bool) -> Rc<Self> {
            Rc::new(Holder {
                future: RefCell::new(Some(Box::pin(future))),
                drop_on_clone: Cell::new(drop_on_clone),
            })
        }

        pub fn holds_future(&self) -> bool {
            self.future.borrow().is_some()
        }
    }

    /// A waker holding a strong count of `holder`. (`std::task::Wake` wants `Send + Sync`,
    /// which a future holding ops is not; the test never sends it to another thread.)
    pub fn waker(holder: Rc<Holder>) -> Waker {
        static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, release);
        unsafe fn clone(data: *const ()) -> RawWaker {
            // SAFETY: `data` came from `Rc::into_raw` and its count is held by the waker.
            let holder = unsafe { &*data.cast::<Holder>() };
            if holder.drop_on_clone.replace(false) {
                let future = holder.future.borrow_mut().take();
                std::mem::drop(future);
            }
            // SAFETY: as above; the new count belongs to the clone.
            unsafe { Rc::increment_strong_count(data.cast::<Holder>()) };
            RawWaker::new(data, &VTABLE)
        }
        unsafe fn wake(data: *const ()) {
            // SAFETY: `wake` consumes the waker: its count goes.
            unsafe { release(data) }
        }
        unsafe fn wake_by_ref(_: *const ()) {}
        unsafe fn release(data: *const ()) {
            // SAFETY: the waker's count, given back once.
            unsafe { Rc::decrement_strong_count(data.cast::<Holder>()) };
        }
        let data = Rc::into_raw(holder).cast::<()>();
        // SAFETY: the vtable's functions keep the `Rc` count balanced; the waker stays on
        // this thread.
        unsafe { Waker::from_raw(RawWaker::new(data, &VTABLE)) }
    }
}

/// A read on its own socket pair, in flight (the kernel holds `buf`), as a boxed future.
async fn read_in_flight(buf: TrackedBuf) -> (impl Future<Output = ()> + 'static, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    let mut read = Box::pin(async move {
        let _ = b.read(buf).await;
    });
    assert!(poll_once(read.as_mut()).is_pending());
    yield_now().await; // submitted
    (read, a)
}

#[test]
fn a_foreign_wakers_drop_that_drops_an_op_does_not_run_inside_the_driver() {
    let _serial = serial();
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let (buf, probe) = TrackedBuf::new(64);
        let (inner, _peer) = read_in_flight(buf).await;
        let holder = owning_waker::Holder::new(inner, false);
        let (x, y) = UnixStream::pair().unwrap();
        let mut outer = pin!(y.read(Vec::with_capacity(8)));
        {
            let waker = owning_waker::waker(holder.clone());
            assert!(
                outer
                    .as_mut()
                    .poll(&mut Context::from_waker(&waker))
                    .is_pending()
            );
        }
        drop(holder); // the op table's clone is the last count
        // Another waker displaces it: its drop drops the inner read in flight.
        assert!(poll_once(outer.as_mut()).is_pending());
        assert!(
            !probe.dropped(),
            "freed while the kernel may still write into it"
        );
        until(1000, "the inner read is cancelled and reaped", || {
            probe.dropped()
        })
        .await;
        assert_eq!(rt.ops_in_flight(), 1, "only the outer read is left");
        let (res, _) = x.write_all(b"hi".as_slice()).await;
        res.unwrap();
        let (res, got) = outer.await;
        assert_eq!(res.unwrap(), 2);
        assert_eq!(got, b"hi");
    });
}

#[test]
fn a_foreign_wakers_clone_that_drops_an_op_does_not_run_inside_the_driver() {
    let _serial = serial();
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let (buf, probe) = TrackedBuf::new(64);
        let (inner, _peer) = read_in_flight(buf).await;
        let holder = owning_waker::Holder::new(inner, true);
        let (_x, y) = UnixStream::pair().unwrap();
        let mut outer = pin!(y.read(Vec::with_capacity(8)));
        let waker = owning_waker::waker(holder.clone());
        // Registering the waker clones it; the clone drops the inner read in flight.
        assert!(
            outer
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        assert!(!holder.holds_future(), "the clone ran");
        until(1000, "the inner read is cancelled and reaped", || {
            probe.dropped()
        })
        .await;
        assert_eq!(rt.ops_in_flight(), 1, "only the outer read is left");
    });
}
