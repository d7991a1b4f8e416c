//! One SQE, several completions: an op keeps its resources until its last CQE.
//!
//! `SEND_ZC` posts its result with `IORING_CQE_F_MORE` and a notification once the kernel no
//! longer reads the buffer; multishot opcodes post a CQE per event, all flagged `F_MORE` but
//! the last. The buffer must come back (or be freed) only after the last one. Each test
//! probes the kernel for what it needs and skips with a notice when it is missing.

use std::cell::Cell;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use futures_core::Stream;
use io_uring::{cqueue, opcode, squeue, types};
use iomgr::buf::IoBuf;
use iomgr::net::{TcpListener, TcpStream};
use iomgr::op::{Multishot, Op, OpCode, OpStream};
use iomgr::{Runtime, yield_now};
use iomgr_tests::{TrackedBuf, until};

/// Whether this kernel's io_uring supports `opcode`.
fn supported(opcode: u8) -> bool {
    let ring = io_uring::IoUring::new(2).expect("io_uring");
    let mut probe = io_uring::Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .expect("register_probe");
    probe.is_supported(opcode)
}

/// The next item of `stream`.
async fn next<S: Stream>(mut stream: Pin<&mut S>) -> Option<S::Item> {
    std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await
}

/// `IORING_OP_SEND_ZC` as a user would write it: the result CQE goes to `more`, the
/// notification (the last CQE) to `complete`, which hands the buffer back.
struct SendZc {
    fd: RawFd,
    buf: TrackedBuf,
    sent: Option<io::Result<u32>>,
}

// SAFETY: the buffer's bytes are on the heap, owned by the op until its last completion.
unsafe impl OpCode for SendZc {
    /// The send's result, the buffer, and the flags of the last CQE.
    type Output = (io::Result<u32>, TrackedBuf, u32);

    fn build(&mut self) -> squeue::Entry {
        opcode::SendZc::new(
            types::Fd(self.fd),
            self.buf.stable_ptr(),
            self.buf.bytes_init() as u32,
        )
        .build()
    }

    fn more(&mut self, result: io::Result<u32>, _flags: u32) {
        self.sent = Some(result);
    }

    fn complete(self, result: io::Result<u32>, flags: u32) -> Self::Output {
        let result = if cqueue::notif(flags) {
            self.sent.expect("the result comes before the notification")
        } else {
            result
        };
        (result, self.buf, flags)
    }
}

#[test]
fn a_send_zc_op_gives_its_buffer_back_only_after_the_notification() {
    if !supported(opcode::SendZc::CODE) {
        println!("skipped: this kernel's io_uring has no SEND_ZC");
        return;
    }
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (buf, probe) = TrackedBuf::filled(b"zero copy".to_vec());
        let (res, buf, flags) = Op::new(SendZc {
            fd: server.as_raw_fd(),
            buf,
            sent: None,
        })
        .await;
        assert!(
            !cqueue::more(flags),
            "the op completed on a CQE flagged F_MORE: the kernel still holds the buffer"
        );
        assert!(cqueue::notif(flags), "the last CQE is the notification");
        assert_eq!(res.unwrap(), 9);
        assert!(!probe.dropped());
        assert_eq!(buf.bytes(), b"zero copy");
        let mut got = [0u8; 9];
        client.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"zero copy");
        assert_eq!(rt.ops_in_flight(), 0);
    });
}

/// A timeout that fires every `period`, `count` times (0: until cancelled), holding a buffer
/// the test watches. As an [`OpCode`], it completes once, at its last CQE.
struct Ticker {
    period: types::Timespec,
    count: u32,
    ticks: Rc<Cell<u32>>,
    _held: TrackedBuf,
}

impl Ticker {
    fn new(period: Duration, count: u32) -> (Self, Rc<Cell<u32>>, Rc<iomgr_tests::DropProbe>) {
        let (held, probe) = TrackedBuf::new(16);
        let ticks = Rc::new(Cell::new(0));
        let ticker = Ticker {
            period: types::Timespec::from(period),
            count,
            ticks: ticks.clone(),
            _held: held,
        };
        (ticker, ticks, probe)
    }

    fn sqe(&self) -> squeue::Entry {
        opcode::Timeout::new(&self.period)
            .count(self.count)
            .flags(types::TimeoutFlags::MULTISHOT)
            .build()
    }
}

// SAFETY: the timespec is read at submission (the op is pinned until then); the held buffer
// is on the heap.
unsafe impl OpCode for Ticker {
    /// Ticks seen through `more`, and the last CQE's result and flags.
    type Output = (u32, io::Result<u32>, u32);

    fn build(&mut self) -> squeue::Entry {
        self.sqe()
    }

    fn more(&mut self, _result: io::Result<u32>, _flags: u32) {
        self.ticks.set(self.ticks.get() + 1);
    }

    fn complete(self, result: io::Result<u32>, flags: u32) -> Self::Output {
        (self.ticks.get(), result, flags)
    }
}

// SAFETY: as for the `OpCode` impl.
unsafe impl Multishot for Ticker {
    type Item = io::Result<u32>;

    fn build(&mut self) -> squeue::Entry {
        self.sqe()
    }

    fn next(&mut self, result: io::Result<u32>, _flags: u32) -> io::Result<u32> {
        self.ticks.set(self.ticks.get() + 1);
        result
    }
}

/// Multishot timeouts need Linux 6.4; older kernels reject the flag with `EINVAL`.
fn multishot_timeouts_work(rt: &Runtime) -> bool {
    let (ticker, _, _) = Ticker::new(Duration::from_millis(1), 1);
    let (_, res, _) = rt.block_on(Op::new(ticker));
    match res {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            println!("skipped: this kernel has no multishot timeouts (Linux 6.4+)");
            false
        }
        _ => true,
    }
}

#[test]
fn an_op_with_several_cqes_completes_at_its_last_one() {
    let rt = Runtime::new().unwrap();
    if !multishot_timeouts_work(&rt) {
        return;
    }
    rt.block_on(async {
        let (ticker, _, probe) = Ticker::new(Duration::from_millis(2), 3);
        let (ticks, res, flags) = Op::new(ticker).await;
        assert!(!cqueue::more(flags), "completed before the last CQE");
        assert_eq!(ticks, 2, "the first two CQEs went to `more`");
        assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::ETIME));
        assert!(probe.dropped(), "the op's value is gone once it completed");
        assert_eq!(rt.ops_in_flight(), 0);
    });
}

#[test]
fn dropping_an_op_between_its_cqes_keeps_its_resources_until_the_last() {
    let rt = Runtime::new().unwrap();
    if !multishot_timeouts_work(&rt) {
        return;
    }
    rt.block_on(async {
        let (ticker, ticks, probe) = Ticker::new(Duration::from_millis(2), 0);
        {
            let mut op = pin!(Op::new(ticker));
            std::future::poll_fn(|cx| match op.as_mut().poll(cx) {
                Poll::Ready(_) => panic!("an endless ticker completed"),
                Poll::Pending if ticks.get() >= 2 => Poll::Ready(()),
                Poll::Pending => Poll::Pending,
            })
            .await;
        } // dropped between two CQEs flagged F_MORE
        assert!(
            !probe.dropped(),
            "freed while the kernel still posts completions for it"
        );
        assert_eq!(rt.ops_in_flight(), 1);
        until(1000, "the cancelled ticker's last CQE", || probe.dropped()).await;
        assert_eq!(rt.ops_in_flight(), 0);
    });
}

#[test]
fn a_multishot_stream_yields_every_cqe_and_ends_after_the_last() {
    let rt = Runtime::new().unwrap();
    if !multishot_timeouts_work(&rt) {
        return;
    }
    rt.block_on(async {
        let (ticker, _, probe) = Ticker::new(Duration::from_millis(1), 3);
        let mut stream = pin!(OpStream::new(ticker));
        let mut items = Vec::new();
        while let Some(item) = next(stream.as_mut()).await {
            items.push(item.map_err(|e| e.raw_os_error()));
        }
        assert_eq!(items.len(), 3, "{items:?}");
        assert_eq!(items[2], Err(Some(libc::ETIME)), "the last tick ends it");
        assert!(next(stream.as_mut()).await.is_none(), "stays ended");
        assert!(!probe.dropped(), "the stream still owns its op");
        assert_eq!(rt.ops_in_flight(), 0);
    });
}

#[test]
fn dropping_a_multishot_stream_mid_stream_frees_its_buffer_only_after_the_last_cqe() {
    let rt = Runtime::new().unwrap();
    if !multishot_timeouts_work(&rt) {
        return;
    }
    rt.block_on(async {
        let (ticker, ticks, probe) = Ticker::new(Duration::from_millis(1), 0);
        {
            let mut stream = pin!(OpStream::new(ticker));
            for _ in 0..3 {
                let tick = next(stream.as_mut()).await.unwrap();
                assert_eq!(tick.unwrap_err().raw_os_error(), Some(libc::ETIME));
            }
            assert_eq!(ticks.get(), 3);
        } // dropped between two CQEs flagged F_MORE
        assert!(!probe.dropped(), "freed before the last CQE");
        until(1000, "the cancelled stream's last CQE", || probe.dropped()).await;
        assert_eq!(rt.ops_in_flight(), 0);
    });
}

/// Multishot accept: one SQE, a connection per CQE.
struct AcceptMany {
    fd: RawFd,
    _held: TrackedBuf,
}

// SAFETY: multishot accept reads no memory of the op (no address buffer).
unsafe impl Multishot for AcceptMany {
    type Item = io::Result<OwnedFd>;
    const RETURNS_FD: bool = true;

    fn build(&mut self) -> squeue::Entry {
        opcode::AcceptMulti::new(types::Fd(self.fd))
            .flags(libc::SOCK_CLOEXEC)
            .build()
    }

    fn next(&mut self, result: io::Result<u32>, _flags: u32) -> Self::Item {
        // SAFETY: a successful accept is a new descriptor that the item now owns.
        result.map(|fd| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
    }
}

#[test]
fn a_multishot_accept_yields_connections_and_a_dropped_one_leaks_none() {
    if !supported(opcode::AcceptMulti::CODE) {
        println!("skipped: no IORING_OP_ACCEPT");
        return;
    }
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (held, probe) = TrackedBuf::new(8);
        let mut clients = Vec::new();
        {
            let mut accepts = pin!(OpStream::new(AcceptMany {
                fd: listener.as_raw_fd(),
                _held: held,
            }));
            for _ in 0..3 {
                clients.push(std::net::TcpStream::connect(addr).unwrap());
                let fd = next(accepts.as_mut()).await.unwrap().unwrap();
                let stream = TcpStream::from_std(fd.into()).unwrap();
                assert_eq!(
                    stream.peer_addr().unwrap(),
                    clients.last().unwrap().local_addr().unwrap()
                );
            }
        }
        // Connections racing the cancellation: accepted by the dropped op (and closed by the
        // driver), or left for the next accept.
        for _ in 0..3 {
            clients.push(std::net::TcpStream::connect(addr).unwrap());
        }
        assert!(!probe.dropped(), "freed before the last CQE");
        until(1000, "the dropped accept's last CQE", || probe.dropped()).await;
        yield_now().await;
        for client in &mut clients[3..] {
            client.set_nonblocking(true).unwrap();
            let mut byte = [0u8; 1];
            match client.read(&mut byte) {
                Ok(0) => {} // accepted by the dropped op and closed
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let (stream, _) = listener.accept().await.unwrap();
                    drop(stream);
                }
                other => panic!("unexpected read result {other:?}"),
            }
        }
        assert_eq!(rt.ops_in_flight(), 0);
    });
}
