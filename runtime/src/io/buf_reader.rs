//! [`BufReader`]: read until a delimiter into a growing owned buffer.

use std::future::Future;
use std::io;

use crate::buf::{BufExt, BufResult, IoBufMut};
use crate::net::{TcpStream, UnixStream};

/// Something that reads into owned buffers: `let (res, buf) = r.read_owned(buf).await`.
pub trait ReadOwned {
    /// Reads into `buf` from its start, up to its capacity; `Ok(0)` is the end of the
    /// stream. The buffer comes back with the result.
    fn read_owned<B: IoBufMut>(&self, buf: B) -> impl Future<Output = BufResult<usize, B>>;
}

impl ReadOwned for TcpStream {
    fn read_owned<B: IoBufMut>(&self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
        self.read(buf)
    }
}

impl ReadOwned for UnixStream {
    fn read_owned<B: IoBufMut>(&self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
        self.read(buf)
    }
}

impl<R: ReadOwned> ReadOwned for &R {
    fn read_owned<B: IoBufMut>(&self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
        (**self).read_owned(buf)
    }
}

/// How much a read asks for at least, when the caller's buffer must grow.
const MIN_READ: usize = 4096;

/// A reader that reads until a delimiter into the caller's growing buffer and keeps what it
/// read past the delimiter for the next call; see the [module docs](crate::io).
///
/// Reads go straight into the caller's `Vec` (grown ahead of each read, never past the
/// maximum), so a line is copied only when it spans calls; what follows the delimiter is
/// moved into the reader's own buffer and handed out first next time.
///
/// **Cancellation.** Dropping a `read_until` or `read_line` future loses the line in
/// progress (it is in the buffer the future owns) and whatever its read in flight
/// receives; bytes already waiting inside the reader are kept.
#[derive(Debug)]
pub struct BufReader<R> {
    inner: R,
    /// Bytes read past a delimiter, not handed out yet.
    pending: Vec<u8>,
}

impl<R: ReadOwned> BufReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        BufReader {
            inner,
            pending: Vec::new(),
        }
    }

    /// The wrapped reader (to write to it, say).
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// Bytes read from the stream and not handed out yet.
    pub fn buffer(&self) -> &[u8] {
        &self.pending
    }

    /// The wrapped reader and the bytes read but not handed out.
    pub fn into_parts(self) -> (R, Vec<u8>) {
        (self.inner, self.pending)
    }

    /// Appends to `buf` the bytes up to and including the next `delimiter`; returns how
    /// many it appended (0 at the end of the stream). At the end of the stream the bytes
    /// after the last delimiter are returned without one.
    ///
    /// `buf` grows as needed, but never past `max` bytes in all: a line that does not fit
    /// is an `InvalidData` error, with `buf` holding the first bytes of it, and the reader
    /// then stands where that read stopped. The buffer comes back either way.
    pub async fn read_until(
        &mut self,
        delimiter: u8,
        mut buf: Vec<u8>,
        max: usize,
    ) -> BufResult<usize, Vec<u8>> {
        let start = buf.len();
        // First what an earlier read left.
        if !self.pending.is_empty() {
            let (found, take) = match memchr(delimiter, &self.pending) {
                Some(i) => (true, i + 1),
                None => (false, self.pending.len()),
            };
            let room = max.saturating_sub(buf.len());
            if take > room {
                buf.extend_from_slice(&self.pending[..room]);
                self.pending.drain(..room);
                return (Err(too_long(max)), buf);
            }
            buf.extend_from_slice(&self.pending[..take]);
            self.pending.drain(..take);
            if found {
                return (Ok(buf.len() - start), buf);
            }
        }
        let mut scanned = buf.len();
        loop {
            if buf.len() >= max {
                return (Err(too_long(max)), buf);
            }
            // Grow ahead of the read: doubling, at least MIN_READ, never past `max`.
            let want = buf.len().max(MIN_READ).min(max - buf.len());
            if buf.capacity() - buf.len() < want {
                buf.reserve(want);
            }
            let end = buf.capacity().min(max);
            let len = buf.len();
            let (res, slice) = self.inner.read_owned(buf.slice(len..end)).await;
            buf = slice.into_inner();
            let n = match res {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return (Err(e), buf),
            };
            if n == 0 {
                return (Ok(buf.len() - start), buf);
            }
            if let Some(i) = memchr(delimiter, &buf[scanned..]) {
                let end = scanned + i + 1;
                self.pending.extend_from_slice(&buf[end..]);
                buf.truncate(end);
                return (Ok(buf.len() - start), buf);
            }
            scanned = buf.len();
        }
    }

    /// Appends the next line (up to and including `\n`) to `line`; returns how many bytes it
    /// appended (0 at the end of the stream). A line longer than `max` bytes (with what
    /// `line` already holds) is `InvalidData`, `line` keeping its first bytes (cut back to a
    /// character boundary); bytes that are not UTF-8 are `InvalidData` too, and then `line`
    /// is left as it was.
    pub async fn read_line(&mut self, line: String, max: usize) -> BufResult<usize, String> {
        let start = line.len();
        let (res, buf) = self.read_until(b'\n', line.into_bytes(), max).await;
        match String::from_utf8(buf) {
            Ok(line) => (res, line),
            Err(e) => {
                let utf8 = e.utf8_error();
                // Cut at the maximum inside a character: keep what is whole, as `read_until`
                // keeps the first bytes. Any other bad byte: give the line back as it was.
                let keep = if res.is_err() && utf8.error_len().is_none() {
                    utf8.valid_up_to()
                } else {
                    start
                };
                let mut buf = e.into_bytes();
                buf.truncate(keep);
                // SAFETY: the first `keep` bytes are valid UTF-8: `valid_up_to` says so of
                // its prefix, and the first `start` were a `String`'s.
                let line = unsafe { String::from_utf8_unchecked(buf) };
                let error = match res {
                    Err(e) => e,
                    Ok(_) => io::Error::new(
                        io::ErrorKind::InvalidData,
                        "the line read is not valid UTF-8",
                    ),
                };
                (Err(error), line)
            }
        }
    }

    /// Reads into `buf` (from its start, as a plain read does), handing out bytes the reader
    /// holds first; `Ok(0)` is the end of the stream.
    pub async fn read<B: IoBufMut>(&mut self, mut buf: B) -> BufResult<usize, B> {
        if self.pending.is_empty() {
            return self.inner.read_owned(buf).await;
        }
        let n = self.pending.len().min(buf.bytes_total());
        // SAFETY: `n <= bytes_total`, so the copy stays within the buffer's memory, which we
        // own; the first `n` bytes are initialized by the copy before `set_init`.
        unsafe {
            std::ptr::copy_nonoverlapping(self.pending.as_ptr(), buf.stable_mut_ptr(), n);
            buf.set_init(n);
        }
        self.pending.drain(..n);
        (Ok(n), buf)
    }
}

fn too_long(max: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("no delimiter within {max} bytes: the line is longer than the maximum allowed"),
    )
}

fn memchr(byte: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == byte)
}
