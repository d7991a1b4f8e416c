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
mod metadata;
mod open_options;

use std::io;
use std::path::Path;

pub use file::File;
pub use metadata::Metadata;
pub use open_options::OpenOptions;

use crate::buf::IoBuf;

/// Reads a whole file into a `Vec<u8>`.
pub async fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let file = File::open(path).await?;
    let size = file.metadata().await?.len() as usize;
    let mut data = Vec::with_capacity(size.max(4096));
    loop {
        if data.len() == data.capacity() {
            data.reserve(data.capacity().max(4096));
        }
        let offset = data.len();
        let chunk = Vec::with_capacity(data.capacity() - offset);
        let (res, chunk) = file.read_at(chunk, offset as u64).await;
        if res? == 0 {
            break;
        }
        data.extend_from_slice(&chunk);
    }
    file.close().await?;
    Ok(data)
}

/// Writes `data` to a file, creating or truncating it; the data comes back on success.
pub async fn write<B: IoBuf>(path: impl AsRef<Path>, data: B) -> io::Result<B> {
    let file = File::create(path).await?;
    let (res, data) = file.write_all_at(data, 0).await;
    res?;
    file.close().await?;
    Ok(data)
}
