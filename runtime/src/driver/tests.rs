//! The driver's saturation paths, reached with fault injection ([`super::fault`]) on a real
//! ring, real sockets and real files.
//!
//! Each test makes one submission path fail the way a saturated or broken ring would, and
//! checks the promises the runtime makes there: nothing the kernel may use is freed early,
//! nothing leaks (descriptors are looked up in `/proc/self/fd`), and every op is answered
//! with a value (an error with a clear message) rather than a hang or a panic.
//!
//! Those that build a runtime need a real io_uring, so Miri skips them
//! (`#[cfg_attr(miri, ignore)]`); `cargo test` runs them natively.

use std::io::{Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::mpsc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use io_uring::{opcode, squeue, types};

use super::fault::{self, Fault};
use crate::Runtime;
use crate::op::{Op, OpCode, Timeout};
use crate::time::sleep;

/// Polls `fut` once with a no-op waker: enough to queue an op's SQE.
fn poll_once<F: Future + ?Sized>(fut: Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

/// What `/proc/self/fd/<fd>` points at (`socket:[1234]`, a path, ...).
fn fd_target(fd: RawFd) -> String {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// Whether any descriptor of this process still points at `target`. Unlike a descriptor
/// count, this is exact while other tests open and close descriptors on other threads.
fn still_open(target: &str) -> bool {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .any(|p| p.display().to_string() == target)
}

/// Runs the runtime until `cond` holds (1 ms per try); false if it never did.
async fn within(ms: u64, mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..ms {
        if cond() {
            return true;
        }
        sleep(Duration::from_millis(1)).await;
    }
    cond()
}

/// What a non-blocking socket has received so far, and whether the peer closed it.
fn drain(stream: &mut std::os::unix::net::UnixStream) -> (Vec<u8>, bool) {
    stream.set_nonblocking(true).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return (got, false),
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// A `writev` whose iovec lives inside the op: memory the kernel reads at submission only,
/// which the `OpCode` contract allows to live inside the (pinned) op.
struct InlineWritev {
    fd: RawFd,
    iov: libc::iovec,
    _data: Vec<u8>,
}

impl InlineWritev {
    fn new(fd: RawFd, data: &[u8]) -> Self {
        let mut data = data.to_vec();
        let iov = libc::iovec {
            iov_base: data.as_mut_ptr().cast(),
            iov_len: data.len(),
        };
        InlineWritev {
            fd,
            iov,
            _data: data,
        }
    }
}

// SAFETY: the iovec is read at submission (it may live in the pinned op); the bytes it
// points to are on the heap and owned by the op until completion.
unsafe impl OpCode for InlineWritev {
    type Output = std::io::Result<u32>;

    fn build(&mut self) -> squeue::Entry {
        opcode::Writev::new(types::Fd(self.fd), &self.iov, 1).build()
    }

    fn complete(self, result: std::io::Result<u32>, _flags: u32) -> Self::Output {
        result
    }
}

/// An op whose SQE is still queued when it is dropped must never be read by the kernel
/// from the op's old memory: here the memory is reused for another op (same layout), whose
/// iovec points at other bytes, before the tick submits.
#[cfg_attr(miri, ignore)]
#[test]
fn an_op_dropped_before_its_sqe_was_submitted_is_never_read_from_its_old_memory() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut slot: Box<MaybeUninit<Op<'_, InlineWritev>>> = Box::new(MaybeUninit::uninit());
        slot.write(Op::new(InlineWritev::new(a.as_raw_fd(), b"meant")));
        // SAFETY: the op stays in `slot` until it is dropped in place below.
        let op = unsafe { Pin::new_unchecked(slot.assume_init_mut()) };
        assert!(poll_once(op).is_pending(), "the SQE is queued");
        {
            // A drop that cannot hand the queued SQE to the kernel first.
            let _faults = fault::arm(Fault::Submit(libc::EBUSY), 1);
            // SAFETY: dropped once; the slot is not used as an op afterwards.
            unsafe { slot.assume_init_drop() };
        }
        // The memory is reused: an op of the same type now sits where the iovec was.
        slot.write(Op::new(InlineWritev::new(a.as_raw_fd(), b"WRONG")));
        crate::yield_now().await; // the tick submits whatever is queued
        sleep(Duration::from_millis(10)).await;
        let (got, _) = drain(&mut b);
        assert!(
            got != b"WRONG",
            "the kernel read the dropped op's iovec from reused memory"
        );
        // SAFETY: the second op was never polled; dropping it is plain.
        unsafe { slot.assume_init_drop() };
        assert!(within(1000, || rt.ops_in_flight() == 0).await);
    });
}

/// The same for a timer, whose timespec lives inside the op.
#[cfg_attr(miri, ignore)]
#[test]
fn a_timer_dropped_before_its_sqe_was_submitted_is_never_read_from_its_old_memory() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let mut slot: Box<MaybeUninit<Op<'_, Timeout>>> = Box::new(MaybeUninit::uninit());
        slot.write(Op::new(Timeout::new(Duration::from_secs(3600))));
        // SAFETY: the op stays in `slot` until it is dropped in place below.
        let op = unsafe { Pin::new_unchecked(slot.assume_init_mut()) };
        assert!(poll_once(op).is_pending(), "the SQE is queued");
        {
            let _faults = fault::arm(Fault::Submit(libc::EBUSY), 1);
            // SAFETY: dropped once; the slot is only overwritten afterwards.
            unsafe { slot.assume_init_drop() };
        }
        // Reused memory: all bits set, so a timespec read from it is negative (EINVAL).
        // SAFETY: writes bytes into the slot's own (dropped, uninitialized) storage.
        unsafe { std::ptr::write_bytes(slot.as_mut_ptr().cast::<u8>(), 0xff, size_of_op()) };
        crate::yield_now().await;
        assert!(within(1000, || rt.ops_in_flight() == 0).await);
        let driver = crate::runtime::current().unwrap();
        let results = driver.driver.borrow().abandoned_results.clone();
        assert!(
            !results.contains(&-libc::EINVAL),
            "the kernel read the dropped timer's timespec from reused memory: {results:?}"
        );
    });

    fn size_of_op() -> usize {
        std::mem::size_of::<Op<'static, Timeout>>()
    }
}

/// `File::close` whose SQE cannot be queued still closes the file (synchronously) and
/// answers; it used to leak the descriptor.
#[cfg_attr(miri, ignore)]
#[test]
fn a_close_that_cannot_be_queued_still_closes_the_file() {
    let dir = std::env::temp_dir().join(format!("iomgr-close-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("closed");
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let file = crate::fs::File::from(std::fs::File::create(&path).unwrap());
        let target = fd_target(file.as_raw_fd());
        assert!(still_open(&target));
        let res = {
            let _faults = fault::arm(Fault::PushOp, 3);
            file.close().await
        };
        assert!(res.is_ok(), "the file was closed without the ring: {res:?}");
        assert!(!still_open(&target), "the descriptor leaked");
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An abandoned read whose `AsyncCancel` does not fit in the SQE is cancelled on a later
/// tick: its buffer is freed, and the socket (which the read kept alive) closes: the peer
/// sees the end of the stream.
#[cfg_attr(miri, ignore)]
#[test]
fn a_cancel_that_does_not_fit_is_queued_on_a_later_tick() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let server = crate::net::TcpStream::from_std(listener.accept().unwrap().0).unwrap();
        let buf = Probe::new(64);
        let freed = buf.freed.clone();
        {
            let mut read = Box::pin(server.read(buf));
            assert!(poll_once(read.as_mut()).is_pending());
            crate::yield_now().await; // the read is in the kernel now
            let _faults = fault::arm(Fault::PushCancel, 1);
            drop(read);
        }
        drop(server);
        assert!(
            !freed.get(),
            "freed while the kernel may still write into it"
        );
        assert!(
            within(2000, || freed.get()).await,
            "the abandoned read was never cancelled"
        );
        client.set_nonblocking(true).unwrap();
        let mut byte = [0u8; 1];
        assert!(
            within(2000, || matches!(client.read(&mut byte), Ok(0))).await,
            "the peer never saw the connection close"
        );
        assert_eq!(rt.ops_in_flight(), 0);
    });
}

/// A runtime whose wake eventfd read cannot be queued must not block forever: a wake from
/// another thread still gets through.
#[cfg_attr(miri, ignore)]
#[test]
fn a_wake_read_that_cannot_be_queued_does_not_lose_wakes_from_other_threads() {
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _faults = fault::arm(Fault::PushWake, u32::MAX);
        let rt = Runtime::new().unwrap();
        let value = rt.block_on(async {
            let (future, promise) = crate::sync::async_promise::<u32>();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                let _ = promise.set(7);
            });
            future.await.unwrap()
        });
        let _ = done_tx.send(value);
    });
    let value = done_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the runtime blocked and missed a wake from another thread");
    assert_eq!(value, 7);
}

/// A timer whose SQE cannot be queued waits for its time instead of firing at once.
#[cfg_attr(miri, ignore)]
#[test]
fn a_timer_that_cannot_be_queued_fires_late_not_early() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let _faults = fault::arm(Fault::PushOp, 2);
        let started = Instant::now();
        sleep(Duration::from_millis(30)).await;
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_millis(30),
            "the timer fired after {elapsed:?}"
        );
    });
}

/// The kernel lost a completion (it reports `EBADR`): the op whose completion was lost is
/// answered with an error that says so, the runtime keeps running, and wakes from other
/// threads still arrive.
#[cfg_attr(miri, ignore)]
#[test]
fn a_lost_completion_fails_its_op_instead_of_hanging() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let b = crate::net::UnixStream::from_std(b).unwrap();
        a.write_all(b"ready").unwrap();
        let armed = fault::arm(Fault::LoseCqe, 1);
        let read = crate::spawn(async move {
            let (res, _buf) = b.read(vec![0u8; 16]).await;
            res
        });
        // The read completes at once, and its completion is lost.
        assert!(
            !within(20, || read.is_finished()).await,
            "the lost read was answered"
        );
        drop(armed);
        // The next enter reports the loss.
        let _faults = fault::arm(Fault::Enter(libc::EBADR), 1);
        let res = crate::time::timeout(Duration::from_secs(5), read)
            .await
            .expect("the op whose completion was lost was never answered")
            .unwrap();
        let err = res.expect_err("its result is unknown");
        assert!(err.to_string().contains("lost"), "{err}");
        // The runtime still works, and a wake from another thread still ends its wait.
        let (future, promise) = crate::sync::async_promise::<u32>();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            let _ = promise.set(1);
        });
        let woken = crate::time::timeout(Duration::from_secs(5), future).await;
        assert!(matches!(woken, Ok(Ok(1))), "{woken:?}");
    });
}

/// A stream dropped while a ring that is not running still holds an SQE naming it (the
/// ring's last flush failed) is closed only once that ring has submitted it.
#[cfg_attr(miri, ignore)]
#[test]
fn a_close_waits_until_an_idle_ring_has_submitted_what_names_the_descriptor() {
    let (mut peer_a, a) = std::os::unix::net::UnixStream::pair().unwrap();
    let a = crate::net::UnixStream::from_std(a).unwrap();
    let target = fd_target(a.as_raw_fd());
    let rt = Runtime::new().unwrap();
    {
        let _faults = fault::arm(Fault::Submit(libc::EBUSY), u32::MAX);
        rt.block_on(async {
            let mut write = Box::pin(a.write(b"for a".as_slice()));
            assert!(poll_once(write.as_mut()).is_pending());
            std::mem::forget(write);
        });
    }
    // The runtime is idle with the write still queued (its flush failed).
    drop(a);
    assert!(
        still_open(&target),
        "closed while an SQE naming it is queued"
    );
    let (b, mut peer_b) = std::os::unix::net::UnixStream::pair().unwrap();
    rt.block_on(crate::yield_now()); // submits the queued write
    assert!(!still_open(&target), "the deferred close never happened");
    assert_eq!(drain(&mut peer_b).0, b"", "b received a's bytes");
    assert_eq!(drain(&mut peer_a), (b"for a".to_vec(), true));
    drop(b);
}

/// A kernel that could drop completions silently (no `IORING_FEAT_NODROP`) is refused with
/// an error that says why, instead of leaving ops waiting forever later.
#[test]
fn a_ring_without_nodrop_is_refused_with_a_clear_error() {
    assert!(super::check_features(true).is_ok());
    let err = super::check_features(false).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
    assert!(err.to_string().contains("IORING_FEAT_NODROP"), "{err}");
}

/// A buffer that records when it is freed.
struct Probe {
    data: Vec<u8>,
    freed: std::rc::Rc<std::cell::Cell<bool>>,
}

impl Probe {
    fn new(capacity: usize) -> Self {
        Probe {
            data: Vec::with_capacity(capacity),
            freed: Default::default(),
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.freed.set(true);
    }
}

// SAFETY: delegates to `Vec<u8>`, whose heap memory is stable.
unsafe impl crate::buf::IoBuf for Probe {
    fn stable_ptr(&self) -> *const u8 {
        self.data.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.data.len()
    }
    fn bytes_total(&self) -> usize {
        self.data.capacity()
    }
}

// SAFETY: delegates to `Vec<u8>`.
unsafe impl crate::buf::IoBufMut for Probe {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.data.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, pos: usize) {
        // SAFETY: the caller initialized `pos` bytes.
        unsafe { self.data.set_len(pos) }
    }
}
