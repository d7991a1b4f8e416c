//! Files.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::{Metadata, OpenOptions};
use crate::buf::{
    BufResult, IoBuf, IoBufMut, IoVecBuf, IoVecBufMut, read_exact_with, write_all_with,
};
use crate::driver::RingFd;
use crate::op::{Close, Fsync, Op, OpenAt, ReadAt, ReadvAt, Statx, WriteAt, WritevAt};

/// An open file. Reads and writes name their offset (`pread`/`pwrite` style), so one file can
/// have many ops in flight at once.
///
/// ```no_run
/// use iomgr::fs::File;
/// # iomgr::Runtime::new()?.block_on(async {
/// let file = File::create("/tmp/hello.txt").await?;
/// let (res, _) = file.write_at(b"hello".as_slice(), 0).await;
/// res?;
/// file.sync_all().await?;
/// file.close().await?;
/// # std::io::Result::Ok(()) })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct File {
    fd: RingFd,
}

impl File {
    /// Opens a file read-only.
    pub async fn open(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new().read(true).open(path).await
    }

    /// Opens a file write-only, creating it or truncating it.
    pub async fn create(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .await
    }

    pub(crate) async fn open_with(path: &Path, flags: i32, mode: u32) -> io::Result<File> {
        let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("path contains a NUL byte: {}", path.display()),
            )
        })?;
        let fd = Op::new(OpenAt::new(c_path, flags, mode))
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Ok(File { fd: fd.into() })
    }

    fn fd(&self) -> RawFd {
        self.fd.raw()
    }

    /// Reads into `buf` (from its start, up to its capacity) from `offset`; `Ok(0)` at end of
    /// file. For a pipe or terminal, pass `u64::MAX` (the current position).
    pub fn read_at<B: IoBufMut>(&self, buf: B, offset: u64) -> Op<'_, ReadAt<B>> {
        Op::new(ReadAt::new(self.fd(), offset, buf))
    }

    /// Writes `buf`'s initialized bytes at `offset`; returns how many were written.
    pub fn write_at<B: IoBuf>(&self, buf: B, offset: u64) -> Op<'_, WriteAt<B>> {
        Op::new(WriteAt::new(self.fd(), offset, buf))
    }

    /// Reads into several buffers in order, starting at `offset`.
    pub fn readv_at<B: IoVecBufMut>(&self, bufs: B, offset: u64) -> Op<'_, ReadvAt<B>> {
        Op::new(ReadvAt::new(self.fd(), offset, bufs))
    }

    /// Writes several buffers in order, starting at `offset`.
    pub fn writev_at<B: IoVecBuf>(&self, bufs: B, offset: u64) -> Op<'_, WritevAt<B>> {
        Op::new(WritevAt::new(self.fd(), offset, bufs))
    }

    /// Writes all of `buf` at `offset`, however many writes it takes.
    pub async fn write_all_at<B: IoBuf>(&self, buf: B, offset: u64) -> BufResult<(), B> {
        write_all_with(buf, |slice, written| {
            self.write_at(slice, offset + written as u64)
        })
        .await
    }

    /// Reads exactly `buf`'s capacity from `offset`; reaching the end of the file first is
    /// an `UnexpectedEof` error, and the buffer (with what was read) comes back either way.
    pub async fn read_exact_at<B: IoBufMut>(&self, buf: B, offset: u64) -> BufResult<(), B> {
        read_exact_with(buf, |slice, filled| {
            self.read_at(slice, offset + filled as u64)
        })
        .await
    }

    /// Flushes data and metadata to storage.
    pub fn sync_all(&self) -> Op<'_, Fsync> {
        Op::new(Fsync::new(self.fd(), false))
    }

    /// Flushes data (and only the metadata needed to read it back) to storage.
    pub fn sync_data(&self) -> Op<'_, Fsync> {
        Op::new(Fsync::new(self.fd(), true))
    }

    /// The file's metadata, read with `statx`.
    pub async fn metadata(&self) -> io::Result<Metadata> {
        Op::new(Statx::new(self.fd()))
            .await
            .map(Metadata::from_statx)
    }

    /// Closes the file through the ring and reports the error a close can return (dropping
    /// a `File` closes it too, but ignores that error).
    pub async fn close(self) -> io::Result<()> {
        match self.fd.into_closable() {
            Some(fd) => Op::new(Close::new(fd)).await,
            // Another ring may still submit an SQE that names the descriptor (an op on this
            // file was forgotten): it is closed once that ring has, and reported as closed.
            None => Ok(()),
        }
    }
}

impl From<OwnedFd> for File {
    /// Wraps an open descriptor (a file, or a pipe or terminal written at offset `u64::MAX`).
    fn from(fd: OwnedFd) -> Self {
        File { fd: fd.into() }
    }
}

impl From<std::fs::File> for File {
    fn from(file: std::fs::File) -> Self {
        File {
            fd: OwnedFd::from(file).into(),
        }
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.raw()
    }
}

impl crate::registered::private::Sealed for File {
    fn op_fd(&self) -> RawFd {
        self.fd.raw()
    }
    fn untracked_fd(&self) -> RawFd {
        self.fd.untracked().as_raw_fd()
    }
}
