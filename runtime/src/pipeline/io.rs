//! Stages that do I/O: byte readers and writers over sockets and files, datagram readers and
//! writers over UDP sockets.
//!
//! Each keeps its in-flight op inside itself, with the op's buffer: a pipeline dropped while
//! a read or write is in the kernel drops the op, which hands the buffer to the runtime until
//! the kernel is done with it (see [`op`](crate::op)). A stage borrows its descriptor through a
//! [`Handle`] (`&TcpStream`, an owned `File`, a [`ReadHalf`], an `Rc<UdpSocket>`, ...), which
//! it keeps alive for as long as its op may use it.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, ready};

use socket2::SockAddr;

use super::chunk::{Chunk, ChunkPool};
use super::pin::Pinned;
use super::stage::{Input, IntoSink, IntoSource, Sink, Source, StageError};
use crate::buf::{BufExt, BufResult, IoBuf, IoBufMut, Slice};
use crate::fs::File;
use crate::net::{ReadHalf, TcpStream, UdpSocket, UnixStream, WriteHalf};
use crate::op::{Op, OpCode, ReadAt, Recv, RecvFrom, Send, SendTo, Shutdown, WriteAt};

/// An op kept inside its stage while the kernel works on it: `'static` because the stage
/// also holds the handle that keeps the descriptor open, declared (so dropped) after it.
type InFlight<T> = Option<Op<'static, T>>;

/// A reader's read in flight.
type ReadOp<T, P> = InFlight<<T as Target>::Read<<P as Buffers>::Buf>>;

/// A writer's write in flight.
type WriteOp<T, B> = InFlight<<T as Target>::Write<Slice<<B as WriteBuf>::Buf>>>;

/// Bytes a socket reader reads at a time, unless told otherwise.
pub const SOCKET_CHUNK: usize = 16 * 1024;
/// Bytes a file reader reads at a time, unless told otherwise.
pub const FILE_CHUNK: usize = 64 * 1024;
/// Spare buffers a reader's pool keeps.
const SPARE: usize = 4;

/// Something that keeps a descriptor open and names it: a socket or file, a reference to
/// one, an `Rc` of one, or a stream's half.
pub trait Handle {
    /// The descriptor.
    fn raw_fd(&self) -> RawFd;
}

macro_rules! handles {
    ($($ty:ty),*) => {$(
        impl Handle for $ty {
            fn raw_fd(&self) -> RawFd {
                self.as_raw_fd()
            }
        }
        impl Handle for &$ty {
            fn raw_fd(&self) -> RawFd {
                self.as_raw_fd()
            }
        }
        impl Handle for Rc<$ty> {
            fn raw_fd(&self) -> RawFd {
                self.as_raw_fd()
            }
        }
    )*};
}

handles!(TcpStream, UnixStream, UdpSocket, File);

impl<S: AsRawFd> Handle for ReadHalf<S> {
    fn raw_fd(&self) -> RawFd {
        self.as_raw_fd()
    }
}

impl<S: AsRawFd> Handle for WriteHalf<S> {
    fn raw_fd(&self) -> RawFd {
        self.as_raw_fd()
    }
}

/// Where a reader gets the buffer for its next read.
///
/// A [`ChunkPool`] (the default) recycles the [`Chunk`]s it hands out; a closure
/// `|| -> B` makes any owned buffer (its capacity is how much one read takes).
pub trait Buffers {
    /// The buffers, which are the reader's items.
    type Buf: IoBufMut;
    /// A buffer for the next read (empty: reads fill from the start).
    fn next_buf(&mut self) -> Self::Buf;
}

impl Buffers for ChunkPool {
    type Buf = Chunk;
    #[inline]
    fn next_buf(&mut self) -> Chunk {
        self.get()
    }
}

impl<B: IoBufMut, F: FnMut() -> B> Buffers for F {
    type Buf = B;
    #[inline]
    fn next_buf(&mut self) -> B {
        self()
    }
}

/// How bytes go in and out of a kind of descriptor.
pub trait Target: Unpin {
    /// The read op.
    type Read<B: IoBufMut>: OpCode<Output = BufResult<usize, B>>;
    /// The write op.
    type Write<B: IoBuf>: OpCode<Output = BufResult<usize, B>>;
    /// Whether closing a writer shuts the write direction down.
    const SHUTDOWN: bool;
    /// A read into `buf` at the current position.
    fn read<B: IoBufMut>(&self, fd: RawFd, buf: B) -> Self::Read<B>;
    /// A write of `buf` at the current position.
    fn write<B: IoBuf>(&self, fd: RawFd, buf: B) -> Self::Write<B>;
    /// `n` bytes were read or written.
    fn advance(&mut self, n: usize);
}

/// A stream socket: `recv`/`send`; closing a writer shuts its write direction down, so the
/// peer reads the end of the stream.
#[derive(Debug, Clone, Copy, Default)]
pub struct SocketIo;

impl Target for SocketIo {
    type Read<B: IoBufMut> = Recv<B>;
    type Write<B: IoBuf> = Send<B>;
    const SHUTDOWN: bool = true;
    #[inline]
    fn read<B: IoBufMut>(&self, fd: RawFd, buf: B) -> Recv<B> {
        Recv::new(fd, buf)
    }
    #[inline]
    fn write<B: IoBuf>(&self, fd: RawFd, buf: B) -> Send<B> {
        Send::new(fd, buf)
    }
    #[inline]
    fn advance(&mut self, _n: usize) {}
}

/// A file: positional reads and writes from an offset (0 unless told otherwise) onwards.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileIo {
    offset: u64,
}

impl Target for FileIo {
    type Read<B: IoBufMut> = ReadAt<B>;
    type Write<B: IoBuf> = WriteAt<B>;
    const SHUTDOWN: bool = false;
    #[inline]
    fn read<B: IoBufMut>(&self, fd: RawFd, buf: B) -> ReadAt<B> {
        ReadAt::new(fd, self.offset, buf)
    }
    #[inline]
    fn write<B: IoBuf>(&self, fd: RawFd, buf: B) -> WriteAt<B> {
        WriteAt::new(fd, self.offset, buf)
    }
    #[inline]
    fn advance(&mut self, n: usize) {
        self.offset += n as u64;
    }
}

struct ReaderState<H, T, P> {
    handle: H,
    target: T,
    buffers: P,
    done: bool,
}

/// A source that reads a descriptor until its end, one buffer per read: a socket
/// ([`SocketReader`]) or a file ([`FileReader`]). Its items are the buffers read (with as
/// many bytes as each read got); one read is in flight at a time, and only while the
/// segment after it has room.
///
/// `&stream` or `&file` as a first stage is a reader with the defaults; make one to choose
/// the buffers or the offset:
///
/// ```no_run
/// use iomgr::pipeline::{FileReader, SocketReader};
/// # async fn demo(stream: iomgr::net::TcpStream, file: iomgr::fs::File) -> std::io::Result<()> {
/// // 64 KiB reads from the stream, written to the file from byte 1024 on.
/// iomgr::pipeline! {
///     SocketReader::new(&stream).chunk_size(64 * 1024)
///     => iomgr::pipeline::FileWriter::new(&file).offset(1024)
/// }
/// .await?;
/// // Reads into buffers of your own (each read fills one, from its start).
/// let mut sizes = Vec::new();
/// iomgr::pipeline! {
///     FileReader::new(&file).buffers(|| Vec::with_capacity(512))
///     => |buf: Vec<u8>| buf.len()
///     => &mut sizes
/// }
/// .await?;
/// # Ok(()) }
/// ```
pub struct Reader<H, T: Target, P: Buffers = ChunkPool> {
    // The op is declared (and so dropped) before the handle that keeps its descriptor open.
    inner: Pinned<ReadOp<T, P>, (), ReaderState<H, T, P>>,
}

/// Reads a stream socket: `&TcpStream`, `&UnixStream`, a `ReadHalf`, or an owned stream.
pub type SocketReader<H, P = ChunkPool> = Reader<H, SocketIo, P>;

/// Reads a file from an offset (0 unless set) to its end: `&File` or an owned `File`.
pub type FileReader<H, P = ChunkPool> = Reader<H, FileIo, P>;

impl<H: Handle, T: Target> Reader<H, T> {
    fn with_target(handle: H, target: T, chunk: usize) -> Self {
        Reader {
            inner: Pinned::new(
                None,
                (),
                ReaderState {
                    handle,
                    target,
                    buffers: ChunkPool::new(chunk, SPARE),
                    done: false,
                },
            ),
        }
    }
}

impl<H: Handle> SocketReader<H> {
    /// Reads `handle` in chunks of [`SOCKET_CHUNK`] bytes.
    pub fn new(handle: H) -> Self {
        Reader::with_target(handle, SocketIo, SOCKET_CHUNK)
    }
}

impl<H: Handle> FileReader<H> {
    /// Reads `handle` from offset 0 in chunks of [`FILE_CHUNK`] bytes.
    pub fn new(handle: H) -> Self {
        Reader::with_target(handle, FileIo { offset: 0 }, FILE_CHUNK)
    }

    /// Starts at `offset` instead.
    pub fn offset(mut self, offset: u64) -> Self {
        self.inner_mut().target.offset = offset;
        self
    }
}

impl<H: Handle, T: Target> Reader<H, T> {
    /// Reads `size` bytes at a time (from a fresh pool of `size`-byte chunks).
    ///
    /// # Panics
    /// If `size` is 0.
    pub fn chunk_size(mut self, size: usize) -> Self {
        self.inner_mut().buffers = ChunkPool::new(size, SPARE);
        self
    }
}

impl<H: Handle, T: Target, P: Buffers> Reader<H, T, P> {
    /// Reads into buffers from `buffers` instead (a [`ChunkPool`] to share, or a closure
    /// that makes each buffer).
    pub fn buffers<Q: Buffers>(self, buffers: Q) -> Reader<H, T, Q> {
        let (_, _, state) = self.inner.into_parts();
        Reader {
            inner: Pinned::new(
                None,
                (),
                ReaderState {
                    handle: state.handle,
                    target: state.target,
                    buffers,
                    done: false,
                },
            ),
        }
    }

    fn inner_mut(&mut self) -> &mut ReaderState<H, T, P> {
        self.inner.rest_mut()
    }
}

impl<H: Handle, T: Target, P: Buffers> Source for Reader<H, T, P> {
    type Item = P::Buf;

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<P::Buf>, StageError>> {
        // SAFETY: `Reader` has no `Drop` impl, is not packed, and never moves `inner` out of
        // a pinned `Reader`.
        let inner = unsafe { self.map_unchecked_mut(|r| &mut r.inner) };
        let (mut op, _, state) = inner.project();
        loop {
            if state.done {
                return Poll::Ready(Ok(None));
            }
            if op.is_none() {
                let buf = state.buffers.next_buf();
                let read = state.target.read(state.handle.raw_fd(), buf);
                op.set(Some(Op::new(read)));
            }
            let read = op.as_mut().as_pin_mut().expect("a read is in flight");
            let (res, buf) = ready!(read.poll(cx));
            op.set(None);
            return Poll::Ready(match res {
                Ok(0) => {
                    state.done = true;
                    Ok(None)
                }
                Ok(n) => {
                    state.target.advance(n);
                    Ok(Some(buf))
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(StageError::new(e)),
            });
        }
    }
}

impl<H, T: Target, P: Buffers> fmt::Debug for Reader<H, T, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (op, _, state) = self.inner.parts();
        f.debug_struct("Reader")
            .field("target", &std::any::type_name::<T>())
            .field("reading", &op.is_some())
            .field("done", &state.done)
            .finish()
    }
}

struct WriterState<H, T, B> {
    handle: H,
    target: T,
    /// Bytes of the current buffer written so far, and its length.
    written: usize,
    len: usize,
    shutdown: bool,
    _buf: PhantomData<fn(B)>,
}

/// A sink that writes every byte of every buffer to a descriptor, in order: a socket
/// ([`SocketWriter`]) or a file ([`FileWriter`]). One write is in flight at a time; a short
/// write continues with the rest of the buffer. Once its input ends it closes: a socket
/// writer shuts the write direction down (the peer reads the end of the stream), unless
/// told [`keep_open`](Writer::keep_open).
///
/// A failed write stops the pipeline and hands back the buffer it was writing.
pub struct Writer<H, T: Target, B: WriteBuf> {
    inner: Pinned<WriteOp<T, B>, InFlight<Shutdown>, WriterState<H, T, B>>,
}

/// Writes to a stream socket: `&TcpStream`, `&UnixStream`, a `WriteHalf`, or an owned stream.
pub type SocketWriter<H, B> = Writer<H, SocketIo, B>;

/// Writes to a file from an offset (0 unless set): `&File` or an owned `File`.
pub type FileWriter<H, B> = Writer<H, FileIo, B>;

impl<H: Handle, T: Target, B: WriteBuf> Writer<H, T, B> {
    fn with_target(handle: H, target: T) -> Self {
        Writer {
            inner: Pinned::new(
                None,
                None,
                WriterState {
                    handle,
                    target,
                    written: 0,
                    len: 0,
                    shutdown: T::SHUTDOWN,
                    _buf: PhantomData,
                },
            ),
        }
    }

    /// Leaves the descriptor open for writing when the input ends (a socket writer shuts
    /// the write direction down otherwise).
    pub fn keep_open(mut self) -> Self {
        self.inner.rest_mut().shutdown = false;
        self
    }
}

impl<H: Handle, B: WriteBuf> SocketWriter<H, B> {
    /// Writes to `handle`.
    pub fn new(handle: H) -> Self {
        Writer::with_target(handle, SocketIo)
    }
}

impl<H: Handle, B: WriteBuf> FileWriter<H, B> {
    /// Writes to `handle` from offset 0.
    pub fn new(handle: H) -> Self {
        Writer::with_target(handle, FileIo { offset: 0 })
    }

    /// Starts at `offset` instead.
    pub fn offset(mut self, offset: u64) -> Self {
        self.inner.rest_mut().target.offset = offset;
        self
    }
}

impl<H: Handle, T: Target, B: WriteBuf> Sink for Writer<H, T, B> {
    type Item = B;

    fn poll_sink(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        input: &mut Input<'_, B>,
    ) -> Poll<Result<(), StageError>> {
        // SAFETY: `Writer` has no `Drop` impl, is not packed, and never moves `inner` out of
        // a pinned `Writer`.
        let inner = unsafe { self.map_unchecked_mut(|w| &mut w.inner) };
        let (mut write, mut shutdown, state) = inner.project();
        loop {
            if let Some(op) = write.as_mut().as_pin_mut() {
                let (res, slice) = ready!(op.poll(cx));
                write.set(None);
                let buf = slice.into_inner();
                match res {
                    Ok(0) if state.written < state.len => {
                        let e = io::Error::new(
                            io::ErrorKind::WriteZero,
                            format!(
                                "the other side stopped accepting data after {} of {} bytes",
                                state.written, state.len
                            ),
                        );
                        return Poll::Ready(Err(StageError::with_item(e, buf)));
                    }
                    Ok(n) => {
                        state.written += n;
                        state.target.advance(n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Poll::Ready(Err(StageError::with_item(e, buf))),
                }
                if state.written < state.len {
                    let rest = buf.slice(state.written..state.len);
                    let op = state.target.write(state.handle.raw_fd(), rest);
                    write.set(Some(Op::new(op)));
                    continue;
                }
                // `buf` is done with here (a `Chunk` goes back to its pool).
            }
            if let Some(op) = shutdown.as_mut().as_pin_mut() {
                let res = ready!(op.poll(cx));
                shutdown.set(None);
                return Poll::Ready(match res {
                    // The peer may already be gone: the stream is closed either way.
                    Err(e) if e.raw_os_error() != Some(libc::ENOTCONN) => Err(StageError::new(e)),
                    _ => Ok(()),
                });
            }
            match input.take() {
                Some(buf) => {
                    let buf = buf.into_buf();
                    state.written = 0;
                    state.len = buf.bytes_init();
                    if state.len > 0 {
                        let op = state.target.write(state.handle.raw_fd(), buf.slice(..));
                        write.set(Some(Op::new(op)));
                    }
                }
                None if input.is_ended() => {
                    if !state.shutdown {
                        return Poll::Ready(Ok(()));
                    }
                    state.shutdown = false;
                    let op = Shutdown::new(state.handle.raw_fd(), std::net::Shutdown::Write);
                    shutdown.set(Some(Op::new(op)));
                }
                None => return Poll::Pending,
            }
        }
    }
}

impl<H, T: Target, B: WriteBuf> fmt::Debug for Writer<H, T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (write, shutdown, state) = self.inner.parts();
        f.debug_struct("Writer")
            .field("target", &std::any::type_name::<T>())
            .field("writing", &write.is_some())
            .field("closing", &shutdown.is_some())
            .field("written", &state.written)
            .finish()
    }
}

struct DatagramState<H, P> {
    handle: H,
    buffers: P,
}

/// A source that receives datagrams from a UDP socket: each item is a buffer holding one
/// datagram and the address it came from. It never ends by itself.
///
/// `&socket` as a stage receives (first) or sends (last); with an `Rc` the pipeline owns the
/// socket and can be spawned:
///
/// ```no_run
/// use std::rc::Rc;
/// use iomgr::pipeline::{DatagramReader, DatagramWriter};
/// # fn demo(socket: iomgr::net::UdpSocket) {
/// let socket = Rc::new(socket);
/// let echo = iomgr::pipeline! {
///     DatagramReader::new(socket.clone()) => DatagramWriter::new(socket)
/// }
/// .spawn();
/// # let _ = echo;
/// # }
/// ```
pub struct DatagramReader<H, P: Buffers = ChunkPool> {
    inner: Pinned<InFlight<RecvFrom<P::Buf>>, (), DatagramState<H, P>>,
}

/// Bytes a datagram reader's buffers hold: the largest UDP payload.
pub const DATAGRAM_CHUNK: usize = 65_536;

impl<H: Handle> DatagramReader<H> {
    /// Receives on `handle` into 64 KiB buffers (any datagram fits).
    pub fn new(handle: H) -> Self {
        DatagramReader {
            inner: Pinned::new(
                None,
                (),
                DatagramState {
                    handle,
                    buffers: ChunkPool::new(DATAGRAM_CHUNK, SPARE),
                },
            ),
        }
    }
}

impl<H: Handle, P: Buffers> DatagramReader<H, P> {
    /// Receives into buffers from `buffers` instead (a datagram longer than a buffer is
    /// truncated, as with `recvfrom`).
    pub fn buffers<Q: Buffers>(self, buffers: Q) -> DatagramReader<H, Q> {
        let (_, _, state) = self.inner.into_parts();
        DatagramReader {
            inner: Pinned::new(
                None,
                (),
                DatagramState {
                    handle: state.handle,
                    buffers,
                },
            ),
        }
    }
}

fn to_socket_addr(addr: SockAddr) -> io::Result<SocketAddr> {
    addr.as_socket().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "a datagram came from an address that is not an IP address",
        )
    })
}

impl<H: Handle, P: Buffers> Source for DatagramReader<H, P> {
    type Item = (P::Buf, SocketAddr);

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<Self::Item>, StageError>> {
        // SAFETY: `DatagramReader` has no `Drop` impl, is not packed, and never moves `inner`
        // out of a pinned `DatagramReader`.
        let inner = unsafe { self.map_unchecked_mut(|r| &mut r.inner) };
        let (mut op, _, state) = inner.project();
        loop {
            if op.is_none() {
                let buf = state.buffers.next_buf();
                op.set(Some(Op::new(RecvFrom::new(state.handle.raw_fd(), buf))));
            }
            let recv = op.as_mut().as_pin_mut().expect("a receive is in flight");
            let (res, buf) = ready!(recv.poll(cx));
            op.set(None);
            return Poll::Ready(match res.and_then(|(_, addr)| to_socket_addr(addr)) {
                Ok(peer) => Ok(Some((buf, peer))),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(StageError::new(e)),
            });
        }
    }
}

impl<H, P: Buffers> fmt::Debug for DatagramReader<H, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatagramReader")
            .field("receiving", &self.inner.parts().0.is_some())
            .finish()
    }
}

/// A sink that sends each `(buffer, address)` item as one datagram to that address.
///
/// A failed send stops the pipeline and hands back the item.
pub struct DatagramWriter<H, B: WriteBuf> {
    inner: Pinned<InFlight<SendTo<B::Buf>>, (), DatagramOut<H>>,
}

struct DatagramOut<H> {
    handle: H,
    to: Option<SocketAddr>,
}

impl<H: Handle, B: WriteBuf> DatagramWriter<H, B> {
    /// Sends on `handle`.
    pub fn new(handle: H) -> Self {
        DatagramWriter {
            inner: Pinned::new(None, (), DatagramOut { handle, to: None }),
        }
    }
}

impl<H: Handle, B: WriteBuf> Sink for DatagramWriter<H, B> {
    type Item = (B, SocketAddr);

    fn poll_sink(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        input: &mut Input<'_, (B, SocketAddr)>,
    ) -> Poll<Result<(), StageError>> {
        // SAFETY: `DatagramWriter` has no `Drop` impl, is not packed, and never moves `inner`
        // out of a pinned `DatagramWriter`.
        let inner = unsafe { self.map_unchecked_mut(|w| &mut w.inner) };
        let (mut op, _, state) = inner.project();
        loop {
            if let Some(send) = op.as_mut().as_pin_mut() {
                let (res, buf) = ready!(send.poll(cx));
                op.set(None);
                let to = state.to.take().expect("a send has an address");
                if let Err(e) = res {
                    return Poll::Ready(Err(StageError::with_item(e, (buf, to))));
                }
            }
            match input.take() {
                Some((buf, to)) => {
                    let addr = SockAddr::from(to);
                    state.to = Some(to);
                    let send = SendTo::new(state.handle.raw_fd(), buf.into_buf(), &addr);
                    op.set(Some(Op::new(send)));
                }
                None if input.is_ended() => return Poll::Ready(Ok(())),
                None => return Poll::Pending,
            }
        }
    }
}

impl<H, B: WriteBuf> fmt::Debug for DatagramWriter<H, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatagramWriter")
            .field("sending", &self.inner.parts().0.is_some())
            .finish()
    }
}

/// A buffer a writer stage writes: the owned buffers a pipeline usually carries.
///
/// `&stream`, `&file` and `&socket` as sinks take items of these types. It is implemented
/// for exactly the types below, not for every [`IoBuf`], so that an item of another type is
/// one clear error at the sink; write a buffer of your own type through a
/// [`Slice`](crate::buf::Slice) (`=> |b: MyBuf| b.slice(..)`), or implement this trait for it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a byte buffer: this sink writes byte buffers",
    label = "the stage before this sink gives `{Self}`",
    note = "writers take `Vec<u8>`, `String`, `Chunk`, `Box<[u8]>`, `&'static [u8]`, `&'static str` or a `Slice` of a buffer: encode the items first (`=> Lines::encoder()`, `=> |n| n.to_string()`, ...)"
)]
pub trait WriteBuf {
    /// The buffer written (`Self` for every type here).
    type Buf: IoBuf;
    /// The buffer to write.
    fn into_buf(self) -> Self::Buf;
}

macro_rules! write_bufs {
    ($($ty:ty),*) => {$(
        impl WriteBuf for $ty {
            type Buf = $ty;
            #[inline(always)]
            fn into_buf(self) -> $ty {
                self
            }
        }
    )*};
}

write_bufs!(
    Vec<u8>,
    String,
    Chunk,
    Box<[u8]>,
    &'static [u8],
    &'static str
);

impl<B: IoBuf> WriteBuf for Slice<B> {
    type Buf = Slice<B>;
    #[inline(always)]
    fn into_buf(self) -> Slice<B> {
        self
    }
}

// Handles as stages: `&stream` reads or writes the stream, `&socket` receives or sends
// datagrams, `&file` reads or writes the file from its start.

macro_rules! stream_stages {
    ($($ty:ty),*) => {$(
        impl<'a> IntoSource for &'a $ty {
            type Source = SocketReader<&'a $ty>;
            fn into_source(self) -> Self::Source {
                SocketReader::new(self)
            }
        }
        impl<'a, B: WriteBuf> IntoSink<B> for &'a $ty {
            type Sink = SocketWriter<&'a $ty, B>;
            fn into_sink(self) -> Self::Sink {
                SocketWriter::new(self)
            }
        }
        impl IntoSource for ReadHalf<$ty> {
            type Source = SocketReader<ReadHalf<$ty>>;
            fn into_source(self) -> Self::Source {
                SocketReader::new(self)
            }
        }
        impl<B: WriteBuf> IntoSink<B> for WriteHalf<$ty> {
            type Sink = SocketWriter<WriteHalf<$ty>, B>;
            fn into_sink(self) -> Self::Sink {
                SocketWriter::new(self)
            }
        }
        impl $ty {
            /// A pipeline source that reads this stream (see
            /// [`pipeline`](mod@crate::pipeline)); `&stream` as a stage does the same.
            pub fn reader(&self) -> SocketReader<&Self> {
                SocketReader::new(self)
            }

            /// A pipeline sink that writes byte buffers to this stream and shuts its write
            /// direction down at the end (see [`pipeline`](mod@crate::pipeline)); `&stream` as
            /// the last stage does the same.
            pub fn writer<B: WriteBuf>(&self) -> SocketWriter<&Self, B> {
                SocketWriter::new(self)
            }
        }
    )*};
}

stream_stages!(TcpStream, UnixStream);

macro_rules! file_stages {
    ($($h:ty),*) => {$(
        impl IntoSource for $h {
            type Source = FileReader<$h>;
            fn into_source(self) -> Self::Source {
                FileReader::new(self)
            }
        }
        impl<B: WriteBuf> IntoSink<B> for $h {
            type Sink = FileWriter<$h, B>;
            fn into_sink(self) -> Self::Sink {
                FileWriter::new(self)
            }
        }
    )*};
}

file_stages!(File);

impl<'a> IntoSource for &'a File {
    type Source = FileReader<&'a File>;
    fn into_source(self) -> Self::Source {
        FileReader::new(self)
    }
}

impl<'a, B: WriteBuf> IntoSink<B> for &'a File {
    type Sink = FileWriter<&'a File, B>;
    fn into_sink(self) -> Self::Sink {
        FileWriter::new(self)
    }
}

impl File {
    /// A pipeline source that reads this file from its start (see
    /// [`pipeline`](mod@crate::pipeline)); `&file` as a stage does the same.
    pub fn reader(&self) -> FileReader<&Self> {
        FileReader::new(self)
    }

    /// A pipeline sink that writes byte buffers to this file from its start (see
    /// [`pipeline`](mod@crate::pipeline)); `&file` as the last stage does the same.
    pub fn writer<B: WriteBuf>(&self) -> FileWriter<&Self, B> {
        FileWriter::new(self)
    }
}

impl<'a> IntoSource for &'a UdpSocket {
    type Source = DatagramReader<&'a UdpSocket>;
    fn into_source(self) -> Self::Source {
        DatagramReader::new(self)
    }
}

impl<'a, B: WriteBuf> IntoSink<(B, SocketAddr)> for &'a UdpSocket {
    type Sink = DatagramWriter<&'a UdpSocket, B>;
    fn into_sink(self) -> Self::Sink {
        DatagramWriter::new(self)
    }
}
