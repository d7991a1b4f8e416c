//! [`HyperIo`]: hyper's poll-based `Read`/`Write` over iomgr's owned-buffer ops.

use std::fmt;
use std::io::{self, IoSlice};
use std::mem;
use std::net::Shutdown as How;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use hyper::rt::{Read, ReadBufCursor, Write};
use iomgr::buf::{BufExt, Slice};
use iomgr::net::{TcpStream, UnixStream};
use iomgr::op::{Op, OpCode, Recv, Send, Shutdown};

/// Default size of the buffer each connection reads into (hyper's own first read buffer is
/// as large).
pub const DEFAULT_READ_BUF: usize = 8 * 1024;

/// Default number of bytes [`HyperIo`] stages for one send: a response up to this size
/// (head and body) goes out in one send op. Larger ones go in turns of this size, two
/// buffers alternating (one sending, one filling). The buffers grow only as far as the
/// connection's messages need.
pub const DEFAULT_WRITE_BUF: usize = 256 * 1024;

type RecvOp = Op<'static, Recv<Vec<u8>>>;
type SendOp = Op<'static, Send<Slice<Vec<u8>>>>;
type ShutdownOp = Op<'static, Shutdown>;

mod sealed {
    use super::*;

    /// The ops [`HyperIo`](super::HyperIo) issues. Sealed: `HyperIo`'s safety argument
    /// relies on these ops naming the stream by its descriptor only (no pointer into it).
    pub trait Sealed {
        fn recv(&self, buf: Vec<u8>) -> Op<'_, Recv<Vec<u8>>>;
        fn send(&self, buf: Slice<Vec<u8>>) -> Op<'_, Send<Slice<Vec<u8>>>>;
        fn shutdown_write(&self) -> Op<'_, Shutdown>;
    }

    impl Sealed for TcpStream {
        fn recv(&self, buf: Vec<u8>) -> Op<'_, Recv<Vec<u8>>> {
            self.read(buf)
        }
        fn send(&self, buf: Slice<Vec<u8>>) -> Op<'_, Send<Slice<Vec<u8>>>> {
            self.write(buf)
        }
        fn shutdown_write(&self) -> Op<'_, Shutdown> {
            self.shutdown(How::Write)
        }
    }

    impl Sealed for UnixStream {
        fn recv(&self, buf: Vec<u8>) -> Op<'_, Recv<Vec<u8>>> {
            self.read(buf)
        }
        fn send(&self, buf: Slice<Vec<u8>>) -> Op<'_, Send<Slice<Vec<u8>>>> {
            self.write(buf)
        }
        fn shutdown_write(&self) -> Op<'_, Shutdown> {
            self.shutdown(How::Write)
        }
    }
}

/// An iomgr byte stream [`HyperIo`] can drive: [`TcpStream`] or [`UnixStream`].
pub trait Stream: sealed::Sealed + Unpin + 'static {}

impl Stream for TcpStream {}
impl Stream for UnixStream {}

/// Extends an op's borrow of its stream to `'static`, so that [`HyperIo`] can keep the op
/// beside the stream it owns.
///
/// # Safety
/// The op must be dropped before the stream it was made from is dropped (which closes the
/// descriptor the op names).
unsafe fn detach<T: OpCode>(op: Op<'_, T>) -> Op<'static, T> {
    // SAFETY: the two types differ only in the lifetime, which the op uses as a marker
    // (`PhantomData`) for "the stream outlives me": layout and behaviour are identical. The
    // caller keeps that promise in place of the borrow checker.
    unsafe { mem::transmute::<Op<'_, T>, Op<'static, T>>(op) }
}

/// hyper's [`Read`] and [`Write`] over an iomgr stream's owned-buffer ops.
///
/// hyper's traits are poll-based and *lend* buffers: `poll_read` gets a cursor into hyper's
/// read buffer, `poll_write` a `&[u8]`, and both borrows end when the call returns. io_uring
/// needs memory that stays valid until the kernel completes the operation, even if the future
/// waiting for it is dropped. So `HyperIo` keeps buffers of its own and copies:
///
/// - **reads**: one recv op at a time into the adapter's buffer ([`DEFAULT_READ_BUF`] bytes,
///   reused for every read), then a copy into hyper's cursor. Bytes hyper has no room for
///   yet stay in the buffer for its next `poll_read`.
/// - **writes**: `poll_write` and `poll_write_vectored` copy hyper's bytes into a staging
///   buffer and return at once; `poll_flush` (or a full staging buffer) hands that buffer to
///   a send op and stages further writes in a second buffer meanwhile. The two buffers take
///   turns and are reused, so a connection allocates nothing per request once they have
///   grown to its message sizes (at most [`DEFAULT_WRITE_BUF`] bytes each).
/// - **shutdown**: `poll_shutdown` flushes, then shuts the write half down with a real
///   `shutdown(SHUT_WR)` op.
///
/// Every byte therefore crosses memory once more than with iomgr's own API, where the kernel
/// reads from and writes into the caller's buffer directly; see the crate docs for the
/// measured cost.
///
/// **Dropping it is safe at any point**, with reads or sends in flight: each op owns its
/// buffer, and an op dropped in flight hands the buffer to the runtime's driver, which frees
/// it only when the kernel's last completion for the op has arrived. The ops are dropped
/// before the stream, so the descriptor is closed after they have been handed over. Bytes a
/// cancelled read had taken, or a cancelled send had not sent, are lost with the connection.
///
/// ```no_run
/// use hyper::server::conn::http1;
/// use hyper::service::service_fn;
/// use iomgr_hyper::HyperIo;
/// # async fn handle(_: hyper::Request<hyper::body::Incoming>)
/// #     -> Result<hyper::Response<String>, std::convert::Infallible> { todo!() }
/// # async fn demo(listener: iomgr::net::TcpListener) -> std::io::Result<()> {
/// let (stream, _) = listener.accept().await?;
/// let conn = http1::Builder::new().serve_connection(HyperIo::new(stream), service_fn(handle));
/// iomgr::spawn(async move { conn.await });
/// # Ok(()) }
/// ```
pub struct HyperIo<S: Stream> {
    // The ops come first: fields are dropped in declaration order, so every op is dropped
    // (handed to the driver if it is in flight) before `stream` closes the descriptor; and
    // no method gives the stream away or lets it be replaced. This is the promise `detach`
    // asks for. (Moving a `HyperIo` is fine: the ops name the stream by its descriptor
    // number, not by address.) Each op lives in a box allocated once and reused
    // (`Pin::set`), so that `HyperIo` is `Unpin`, as hyper requires, and allocates nothing
    // per op.
    recv: Pin<Box<Option<RecvOp>>>,
    send: Pin<Box<Option<SendOp>>>,
    shutdown: Option<Pin<Box<ShutdownOp>>>,
    /// What the last recv brought; `read_pos..` is not yet given to hyper. Empty (and
    /// capacity-less) while a recv owns the buffer.
    read_buf: Vec<u8>,
    read_pos: usize,
    /// Bytes accepted from hyper and not yet handed to a send op.
    staged: Vec<u8>,
    /// The other write buffer, when no send op holds it.
    spare: Vec<u8>,
    write_capacity: usize,
    write_shut: bool,
    stream: S,
}

impl<S: Stream> HyperIo<S> {
    /// Wraps `stream` with the default buffer sizes.
    pub fn new(stream: S) -> Self {
        Self::with_capacity(stream, DEFAULT_READ_BUF, DEFAULT_WRITE_BUF)
    }

    /// Wraps `stream`, reading `read` bytes at most per recv and staging at most `write`
    /// bytes per send (both at least 1).
    pub fn with_capacity(stream: S, read: usize, write: usize) -> Self {
        HyperIo {
            recv: Box::pin(None),
            send: Box::pin(None),
            shutdown: None,
            read_buf: Vec::with_capacity(read.max(1)),
            read_pos: 0,
            staged: Vec::new(),
            spare: Vec::new(),
            write_capacity: write.max(1),
            write_shut: false,
            stream,
        }
    }

    /// The stream. (There is no `get_mut` or `into_inner`: replacing or taking the stream
    /// while an op is in flight would close a descriptor the op names.)
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// How many ops of this adapter (recv, send, shutdown) are in flight.
    pub fn ops_in_flight(&self) -> usize {
        usize::from(self.recv.is_some())
            + usize::from(self.send.is_some())
            + usize::from(self.shutdown.is_some())
    }

    /// Starts a recv into the read buffer (which must be drained).
    fn start_recv(&mut self) {
        let mut buf = mem::take(&mut self.read_buf);
        buf.clear();
        self.read_pos = 0;
        // SAFETY: `self.recv` is declared before `self.stream`, so the op is dropped first.
        let op = unsafe { detach(self.stream.recv(buf)) };
        self.recv.set(Some(op));
    }

    /// Hands the staged bytes to a send op; the spare buffer becomes the staging buffer.
    fn start_send(&mut self) {
        debug_assert!(self.send.is_none() && !self.staged.is_empty());
        let buf = mem::replace(&mut self.staged, mem::take(&mut self.spare));
        // SAFETY: `self.send` is declared before `self.stream`, so the op is dropped first.
        let op = unsafe { detach(self.stream.send(buf.slice(..))) };
        self.send.set(Some(op));
    }

    /// Drives the send in flight (and the sends for what it left unsent) to completion.
    fn poll_sent(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(op) = self.send.as_mut().as_pin_mut() {
            let (res, slice) = ready!(op.poll(cx));
            self.send.set(None);
            let (begin, end) = (slice.begin(), slice.end());
            let mut buf = slice.into_inner();
            let rest = match res {
                Ok(n) if n > 0 && begin + n < end => Ok(Some(begin + n)),
                Ok(n) if n > 0 => Ok(None),
                Ok(_) => Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "the peer stopped accepting bytes",
                )),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(Some(begin)),
                Err(e) => Err(e),
            };
            match rest {
                Ok(Some(rest)) => {
                    // SAFETY: as in `start_send`.
                    let op = unsafe { detach(self.stream.send(buf.slice(rest..end))) };
                    self.send.set(Some(op));
                }
                done => {
                    buf.clear();
                    self.spare = buf;
                    done?;
                }
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Copies as much of `bufs` as the staging buffer takes; `Pending` only if it is full
    /// while a send is in flight.
    fn poll_stage(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if bufs.iter().all(|b| b.is_empty()) {
            return Poll::Ready(Ok(0));
        }
        // Reap a finished send (and report its error) without waiting for one in progress.
        if let Poll::Ready(Err(e)) = self.poll_sent(cx) {
            return Poll::Ready(Err(e));
        }
        if self.staged.len() >= self.write_capacity {
            if self.send.is_some() {
                return Poll::Pending; // `poll_sent` registered the waker
            }
            self.start_send();
            if let Poll::Ready(Err(e)) = self.poll_sent(cx) {
                return Poll::Ready(Err(e));
            }
        }
        let mut copied = 0;
        for buf in bufs {
            let room = self.write_capacity - self.staged.len();
            if room == 0 {
                break;
            }
            let n = buf.len().min(room);
            self.staged.extend_from_slice(&buf[..n]);
            copied += n;
        }
        Poll::Ready(Ok(copied))
    }

    fn poll_flush_inner(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            ready!(self.poll_sent(cx))?;
            if self.staged.is_empty() {
                return Poll::Ready(Ok(()));
            }
            self.start_send();
        }
    }
}

impl<S: Stream> Read for HyperIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            let ready = &this.read_buf[this.read_pos..];
            if !ready.is_empty() {
                let n = ready.len().min(buf.remaining());
                buf.put_slice(&ready[..n]);
                this.read_pos += n;
                return Poll::Ready(Ok(()));
            }
            let Some(op) = this.recv.as_mut().as_pin_mut() else {
                if buf.remaining() == 0 {
                    return Poll::Ready(Ok(()));
                }
                this.start_recv();
                continue;
            };
            let (res, filled) = ready!(op.poll(cx));
            this.recv.set(None);
            this.read_buf = filled;
            match res {
                // The end of the stream: nothing put in the cursor tells hyper so.
                Ok(0) => return Poll::Ready(Ok(())),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl<S: Stream> Write for HyperIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_stage(cx, &[IoSlice::new(buf)])
    }

    /// `true`: hyper then queues body chunks instead of copying them into its own buffer
    /// first, and they are copied once, into the staging buffer, by `poll_write_vectored`.
    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_stage(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_flush_inner(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_flush_inner(cx))?;
        if this.write_shut {
            return Poll::Ready(Ok(()));
        }
        let stream = &this.stream;
        let op = this.shutdown.get_or_insert_with(|| {
            // SAFETY: `self.shutdown` is declared before `self.stream`, so the op is dropped
            // first.
            Box::pin(unsafe { detach(stream.shutdown_write()) })
        });
        let res = ready!(op.as_mut().poll(cx));
        this.shutdown = None;
        this.write_shut = true;
        Poll::Ready(res)
    }
}

impl<S: Stream + fmt::Debug> fmt::Debug for HyperIo<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HyperIo")
            .field("stream", &self.stream)
            .field("unread", &(self.read_buf.len() - self.read_pos))
            .field("staged", &self.staged.len())
            .field("recv_in_flight", &self.recv.is_some())
            .field("send_in_flight", &self.send.is_some())
            .field("write_shut", &self.write_shut)
            .finish()
    }
}
