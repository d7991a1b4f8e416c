//! The file the read benchmarks (`file_read`, `fixed_read`) read from, and the reads they make.
//!
//! One file of a given size under `std::env::temp_dir()`, created with pseudo-random bytes
//! when it is missing or has the wrong size, and read once from end to end before every
//! benchmark so that it sits in the page cache. Both binaries use the same file (its name
//! holds only its size) and the same fixed-seed list of random block-aligned offsets, so
//! every contestant of both performs the same reads.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Makes sure the test file of `size` bytes exists and is in the page cache; returns its path.
pub fn prepare(size: u64) -> io::Result<PathBuf> {
    let path = std::env::temp_dir().join(format!("iomgr-bench-file_read-{}MiB.dat", size >> 20));
    let current = std::fs::metadata(&path).map(|m| m.len()).ok();
    if current != Some(size) {
        println!("creating {} ({} MiB)…", path.display(), size >> 20);
        write_file(&path, size)?;
    }
    warm_page_cache(&path)?;
    Ok(path)
}

fn write_file(path: &Path, size: u64) -> io::Result<()> {
    let mut file = std::fs::File::create(path)?;
    let mut rng = XorShift(0x1234_5678_9abc_def1);
    let mut chunk = vec![0u8; 1 << 20];
    let mut written = 0;
    while written < size {
        for word in chunk.chunks_exact_mut(8) {
            word.copy_from_slice(&rng.next().to_le_bytes());
        }
        let n = (size - written).min(chunk.len() as u64) as usize;
        file.write_all(&chunk[..n])?;
        written += n as u64;
    }
    file.sync_all()
}

/// Reads the whole file once so that the benchmark's reads hit the page cache.
fn warm_page_cache(path: &Path) -> io::Result<()> {
    let mut file = std::fs::File::open(path)?;
    let mut chunk = vec![0u8; 1 << 20];
    while file.read(&mut chunk)? > 0 {}
    Ok(())
}

/// A xorshift64* generator: fast, deterministic, good enough to scatter offsets.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// `count` random `block`-aligned offsets inside a file of `size` bytes (always the same
/// ones for the same arguments).
pub fn random_offsets(size: u64, block: usize, count: usize) -> Vec<u64> {
    let blocks = size / block as u64;
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    (0..count)
        .map(|_| (rng.next() % blocks) * block as u64)
        .collect()
}

/// The error of a read that returned `result` (a negated errno, or a byte count that fell
/// short of the block); `what` names the read.
pub fn read_error(what: &str, result: i32) -> io::Error {
    if result < 0 {
        io::Error::from_raw_os_error(-result)
    } else {
        io::Error::other(format!("{what}: short read of {result} bytes"))
    }
}
