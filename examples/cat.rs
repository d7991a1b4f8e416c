//! Prints files to standard output through io_uring.
//!
//! ```text
//! cargo run --example cat -- Cargo.toml README.md
//! ```
//!
//! Each file is read with positional reads into one reused buffer, and every chunk is written
//! to stdout with a write op at the current position (`u64::MAX`), so pipes and terminals work.

use std::io;
use std::os::fd::AsFd;

use iomgr::buf::BufExt;
use iomgr::fs::File;

const CHUNK: usize = 64 * 1024;

async fn cat(path: &str, stdout: &File, mut buf: Vec<u8>) -> io::Result<Vec<u8>> {
    let file = File::open(path).await?;
    let mut offset = 0u64;
    loop {
        buf.clear();
        let (res, b) = file.read_at(buf, offset).await;
        let n = res?;
        if n == 0 {
            file.close().await?;
            return Ok(b);
        }
        offset += n as u64;
        let mut written = 0;
        let mut chunk = b;
        while written < n {
            let (res, slice) = stdout.write_at(chunk.slice(written..n), u64::MAX).await;
            written += res?;
            chunk = slice.into_inner();
        }
        buf = chunk;
    }
}

#[iomgr::main]
async fn main() {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        eprintln!("usage: cat FILE...");
        std::process::exit(2);
    }
    if let Err(e) = cat_all(&paths).await {
        eprintln!("cat: {e}");
        std::process::exit(1);
    }
}

async fn cat_all(paths: &[String]) -> io::Result<()> {
    let stdout = File::from(io::stdout().as_fd().try_clone_to_owned()?);
    let mut buf = Vec::with_capacity(CHUNK);
    for path in paths {
        buf = cat(path, &stdout, buf).await?;
    }
    Ok(())
}
