//! [`File`]'s registered-buffer reads and writes (`READ_FIXED`, `WRITE_FIXED`) and its
//! registration ([`Registered`]).

use crate::buf::{BufResult, FixedIoBuf, FixedIoBufMut, read_exact_with, write_all_with};
use crate::op::{FixedRead, FixedWrite, Op, Target};
use crate::registered::private::Sealed;
use crate::registered::{RegisterError, Registered};

use super::File;

impl File {
    /// Reads into a registered buffer from `offset` (`IORING_OP_READ_FIXED`): as
    /// [`read_at`](Self::read_at), without the kernel mapping the buffer for the op.
    ///
    /// A plain buffer does not compile here; use `read_at` for it.
    ///
    /// ```no_run
    /// # iomgr::Runtime::new()?.block_on(async {
    /// let pool = iomgr::buf::FixedBufPool::new(4, 4096)?;
    /// let file = iomgr::fs::File::open("/etc/hosts").await?;
    /// let (res, buf) = file.read_fixed_at(pool.try_get()?, 0).await;
    /// println!("{} bytes from registered buffer {}", res?, buf.buf_index());
    /// # std::io::Result::Ok(()) })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read_fixed_at<B: FixedIoBufMut>(&self, buf: B, offset: u64) -> Op<'_, FixedRead<B>> {
        Op::new(FixedRead::fixed(
            Target::Fd(self.op_fd()),
            None,
            offset,
            buf,
        ))
    }

    /// Writes a registered buffer's initialized bytes at `offset`
    /// (`IORING_OP_WRITE_FIXED`); returns how many were written.
    pub fn write_fixed_at<B: FixedIoBuf>(&self, buf: B, offset: u64) -> Op<'_, FixedWrite<B>> {
        Op::new(FixedWrite::fixed(
            Target::Fd(self.op_fd()),
            None,
            offset,
            buf,
        ))
    }

    /// Writes all of a registered buffer at `offset`, however many `WRITE_FIXED`s it takes.
    pub async fn write_all_fixed_at<B: FixedIoBuf>(&self, buf: B, offset: u64) -> BufResult<(), B> {
        write_all_with(buf, |slice, done| {
            self.write_fixed_at(slice, offset + done as u64)
        })
        .await
    }

    /// Fills a registered buffer's whole capacity from `offset` with `READ_FIXED`s
    /// (`UnexpectedEof` if the file ends first).
    pub async fn read_exact_fixed_at<B: FixedIoBufMut>(
        &self,
        buf: B,
        offset: u64,
    ) -> BufResult<(), B> {
        read_exact_with(buf, |slice, done| {
            self.read_fixed_at(slice, offset + done as u64)
        })
        .await
    }

    /// Registers the file with the current runtime's ring; its ops then name a slot of the
    /// ring's file table. See [`Registered`].
    ///
    /// # Errors
    /// As [`Registered::new`]; the file comes back in the error.
    pub fn register(self) -> Result<Registered<File>, RegisterError<File>> {
        Registered::new(self)
    }
}
