//! Files over io_uring: open, positional and vectored reads and writes, sync, metadata, close.
//!
//! [`read()`] and [`write()`] do a whole file in one call:
//!
//! ```no_run
//! # iomgr::Runtime::new()?.block_on(async {
//! iomgr::fs::write("/tmp/greeting", b"hello".to_vec()).await?;
//! assert_eq!(iomgr::fs::read("/tmp/greeting").await?, b"hello");
//! # std::io::Result::Ok(()) })?;
//! # Ok::<(), std::io::Error>(())
//! ```

mod file;
mod fixed_io;
mod metadata;
mod open_options;

use std::io;
use std::path::Path;

pub use file::File;
pub use metadata::Metadata;
pub use open_options::OpenOptions;

use crate::buf::{BufExt, IoBuf};

/// Reads a whole file into a `Vec<u8>`.
///
/// The buffer is reserved once for the size the file reports (plus one byte, so the read
/// that sees the end of the file needs no second buffer), and grows if the file turns out
/// longer. A size this process cannot allocate is an [`io::ErrorKind::OutOfMemory`] error
/// naming the file, as with [`std::fs::read`], never an abort.
pub async fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let path = path.as_ref();
    let file = File::open(path).await?;
    let size = file.metadata().await?.len();
    let first = usize::try_from(size)
        .unwrap_or(usize::MAX)
        .saturating_add(1)
        .max(MIN_READ);
    let mut data = Vec::new();
    data.try_reserve_exact(first).map_err(|_| {
        io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!(
                "{}: the file reports {size} bytes, more than this process can allocate",
                path.display()
            ),
        )
    })?;
    loop {
        if data.len() == data.capacity() {
            // Longer than it said (or still growing): make room, doubling as a `Vec` does.
            data.try_reserve(MIN_READ).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::OutOfMemory,
                    format!(
                        "{}: out of memory after reading {} bytes",
                        path.display(),
                        data.len()
                    ),
                )
            })?;
        }
        let offset = data.len();
        let end = data.capacity();
        // Read straight into the spare capacity: the slice starts at the initialized end.
        let (res, slice) = file.read_at(data.slice(offset..end), offset as u64).await;
        data = slice.into_inner();
        if res? == 0 {
            break;
        }
    }
    file.close().await?;
    Ok(data)
}

/// The least `read` asks for at once.
const MIN_READ: usize = 4096;

/// Writes `data` to a file, creating or truncating it; the data comes back on success.
pub async fn write<B: IoBuf>(path: impl AsRef<Path>, data: B) -> io::Result<B> {
    let file = File::create(path).await?;
    let (res, data) = file.write_all_at(data, 0).await;
    res?;
    file.close().await?;
    Ok(data)
}
