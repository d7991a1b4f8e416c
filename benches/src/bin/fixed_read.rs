//! Plain vs registered-buffer reads: 4 KiB random reads at queue depth 32 from a file in the
//! page cache, on one thread, side by side in one run.
//!
//! - **iomgr read_at**: 32 tasks, each looping `file.read_at(vec, offset)` on one owned
//!   `Vec<u8>` (`IORING_OP_READ`).
//! - **iomgr read_fixed_at**: the same 32 tasks, each with one `FixedBuf` from a
//!   `FixedBufPool` of 32 (`IORING_OP_READ_FIXED`).
//! - **bare READ** / **bare READ_FIXED**: the same reads straight on the `io-uring` crate
//!   (one ring, 32 buffers, refill on each completion), the reference for what the opcode
//!   itself gains.
//!
//! Every contestant reads the same list of 4 KiB-aligned random offsets (fixed seed), each
//! read checked to return 4 KiB. The runs rotate so background load hits all alike; the
//! median of each column is printed, and each `READ_FIXED` row's ratio is to the `READ` row
//! above it. IOPS is wall-clock throughput; CPU ns/read is the thread's own CPU time.
//!
//! The file (1 GiB by default) is the one `file_read` uses, created under
//! `std::env::temp_dir()` if missing, then read once so it sits in the page cache.
//!
//! `--direct` opens the file with `O_DIRECT` instead (the reads go to the device, past the
//! page cache; 64 Ki reads per run by default): there the kernel pins a plain buffer's page
//! for every read, and a registered buffer's once, which is what registration is for. Every
//! buffer is page-aligned in both modes.
//!
//! ```text
//! cargo run --release --manifest-path benches/Cargo.toml --bin fixed_read [-- --size-mib 1024 --reads 1048576 --reps 5]
//! cargo run --release --manifest-path benches/Cargo.toml --bin fixed_read -- --direct
//! cargo run --release --manifest-path benches/Cargo.toml --bin fixed_read -- --quick
//! ```

use std::cell::Cell;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use iomgr_benches::args::parse_flag;
use iomgr_benches::machine::{load_average, pin_to_core, thread_cpu_time};
use iomgr_benches::stats::{median, rotated};
use iomgr_benches::test_file::{self, read_error};

/// Bytes per read.
const BLOCK: usize = 4096;
/// Reads kept in flight.
const DEPTH: usize = 32;
/// Ring entries for every contestant.
const RING_ENTRIES: u32 = 256;
/// The core the benchmark thread is pinned to.
const CORE: usize = 1;

#[derive(Clone, Copy, Debug)]
enum Contestant {
    IomgrPlain,
    IomgrFixed,
    BarePlain,
    BareFixed,
}

impl Contestant {
    const ALL: [Contestant; 4] = [
        Contestant::IomgrPlain,
        Contestant::IomgrFixed,
        Contestant::BarePlain,
        Contestant::BareFixed,
    ];

    fn name(self) -> &'static str {
        match self {
            Contestant::IomgrPlain => "iomgr read_at",
            Contestant::IomgrFixed => "iomgr read_fixed_at",
            Contestant::BarePlain => "bare READ",
            Contestant::BareFixed => "bare READ_FIXED",
        }
    }

    fn run(self, path: &Path, offsets: &Rc<[u64]>, direct: bool) -> io::Result<Duration> {
        match self {
            Contestant::IomgrPlain => with_iomgr::run(path, offsets.clone(), false, direct),
            Contestant::IomgrFixed => with_iomgr::run(path, offsets.clone(), true, direct),
            Contestant::BarePlain => bare::run(path, offsets, false, direct),
            Contestant::BareFixed => bare::run(path, offsets, true, direct),
        }
    }
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let direct = args.iter().any(|a| a == "--direct");
    let size_mib: u64 = parse_flag(&args, "--size-mib")?.unwrap_or(if quick { 64 } else { 1024 });
    let reads: usize =
        parse_flag(&args, "--reads")?.unwrap_or(if quick || direct { 1 << 16 } else { 1 << 20 });
    let reps: usize = parse_flag::<usize>(&args, "--reps")?
        .unwrap_or(if quick { 1 } else { 5 })
        .max(1);
    if size_mib == 0 || reads == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--size-mib and --reads must be positive",
        ));
    }
    let size = size_mib << 20;
    pin_to_core(CORE)?;
    let path = test_file::prepare(size)?;
    let offsets: Rc<[u64]> = test_file::random_offsets(size, BLOCK, reads).into();
    let source = if direct { "O_DIRECT" } else { "page cache" };
    println!(
        "4 KiB random reads, queue depth {DEPTH}, one thread on core {CORE}: {reads} reads per \
         run from {} ({size_mib} MiB, {source}), median of {reps} run(s)",
        path.display()
    );
    println!("load average before: {}", load_average());
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); Contestant::ALL.len()];
    for rep in 0..reps {
        for i in rotated(Contestant::ALL.len(), rep) {
            samples[i].push(measure(Contestant::ALL[i], &path, &offsets, direct)?);
        }
    }
    print_table(&samples);
    println!("\nload average after: {}", load_average());
    Ok(())
}

#[derive(Clone, Copy, Debug)]
struct Sample {
    iops: f64,
    cpu_ns: f64,
}

fn measure(
    contestant: Contestant,
    path: &Path,
    offsets: &Rc<[u64]>,
    direct: bool,
) -> io::Result<Sample> {
    let cpu_before = thread_cpu_time();
    let elapsed = contestant.run(path, offsets, direct)?;
    let cpu = thread_cpu_time() - cpu_before;
    Ok(Sample {
        iops: offsets.len() as f64 / elapsed.as_secs_f64(),
        cpu_ns: cpu.as_secs_f64() * 1e9 / offsets.len() as f64,
    })
}

fn print_table(samples: &[Vec<Sample>]) {
    println!(
        "\n{:<22} {:>10} {:>12} {:>24}",
        "", "IOPS", "CPU ns/read", "fixed vs plain (IOPS, CPU)"
    );
    let rows: Vec<(f64, f64)> = samples
        .iter()
        .map(|s| {
            (
                median(s.iter().map(|x| x.iops)),
                median(s.iter().map(|x| x.cpu_ns)),
            )
        })
        .collect();
    for (i, contestant) in Contestant::ALL.iter().enumerate() {
        let (iops, cpu) = rows[i];
        let ratio = if i % 2 == 1 {
            let (plain_iops, plain_cpu) = rows[i - 1];
            format!("{:>10.3}x {:>10.3}x", iops / plain_iops, cpu / plain_cpu)
        } else {
            String::new()
        };
        println!(
            "{:<22} {:>10.0} {:>12.0} {ratio:>24}",
            contestant.name(),
            iops,
            cpu
        );
    }
}

/// iomgr: 32 tasks, each reading with one buffer (owned `Vec` or `FixedBuf`).
mod with_iomgr {
    use iomgr::buf::{BufPool, FixedBuf, FixedBufPool};
    use iomgr::fs::{File, OpenOptions};

    use super::*;

    async fn plain(file: Rc<File>, offsets: Rc<[u64]>, next: Rc<Cell<usize>>) -> io::Result<()> {
        // Page-aligned (O_DIRECT needs it); a plain owned buffer all the same.
        let mut buf = BufPool::get(BLOCK);
        loop {
            let i = next.get();
            let Some(&offset) = offsets.get(i) else {
                return Ok(());
            };
            next.set(i + 1);
            buf.clear();
            let (res, b) = file.read_at(buf, offset).await;
            buf = b;
            let n = res?;
            if n != BLOCK {
                return Err(read_error("iomgr read_at", n as i32));
            }
        }
    }

    async fn fixed(
        file: Rc<File>,
        offsets: Rc<[u64]>,
        next: Rc<Cell<usize>>,
        mut buf: FixedBuf,
    ) -> io::Result<()> {
        loop {
            let i = next.get();
            let Some(&offset) = offsets.get(i) else {
                return Ok(());
            };
            next.set(i + 1);
            buf.clear();
            let (res, b) = file.read_fixed_at(buf, offset).await;
            buf = b;
            let n = res?;
            if n != BLOCK {
                return Err(read_error("iomgr read_fixed_at", n as i32));
            }
        }
    }

    pub(super) fn run(
        path: &Path,
        offsets: Rc<[u64]>,
        use_fixed: bool,
        direct: bool,
    ) -> io::Result<Duration> {
        let rt = iomgr::Runtime::builder().entries(RING_ENTRIES).build()?;
        rt.block_on(async {
            let flags = if direct { libc::O_DIRECT } else { 0 };
            let file = OpenOptions::new()
                .read(true)
                .custom_flags(flags)
                .open(path)
                .await?;
            let file = Rc::new(file);
            let pool = FixedBufPool::new(DEPTH, BLOCK)?;
            let next = Rc::new(Cell::new(0));
            let start = Instant::now();
            let mut tasks = Vec::with_capacity(DEPTH);
            for _ in 0..DEPTH {
                let (file, offsets, next) = (file.clone(), offsets.clone(), next.clone());
                tasks.push(if use_fixed {
                    iomgr::spawn(fixed(file, offsets, next, pool.try_get()?))
                } else {
                    iomgr::spawn(plain(file, offsets, next))
                });
            }
            for task in tasks {
                task.await
                    .map_err(|e| io::Error::other(format!("reader failed: {e}")))??;
            }
            Ok(start.elapsed())
        })
    }
}

/// The reference: a completion loop straight on the `io-uring` crate.
mod bare {
    use std::os::unix::fs::OpenOptionsExt;

    use io_uring::{IoUring, SubmissionQueue, opcode, types};

    use super::*;

    /// One page-aligned block (O_DIRECT needs the alignment).
    #[derive(Clone, Copy)]
    #[repr(C, align(4096))]
    pub(super) struct Block([u8; BLOCK]);

    /// Queues a read of one block at `offset` into `buf`, tagged with its buffer's `slot`.
    ///
    /// # Safety
    /// `buf` must stay valid and unmoved until the read's completion has been reaped; with
    /// `fixed`, it must be registered buffer `slot`.
    unsafe fn queue_read(
        sq: &mut SubmissionQueue<'_>,
        fd: types::Fd,
        buf: &mut Block,
        slot: usize,
        offset: u64,
        fixed: bool,
    ) {
        let sqe = if fixed {
            opcode::ReadFixed::new(fd, buf.0.as_mut_ptr(), BLOCK as u32, slot as u16)
                .offset(offset)
                .build()
        } else {
            opcode::Read::new(fd, buf.0.as_mut_ptr(), BLOCK as u32)
                .offset(offset)
                .build()
        };
        // SAFETY: the caller keeps `buf` valid until completion; at most `DEPTH` entries are
        // queued at once, fewer than the SQ holds.
        unsafe { sq.push(&sqe.user_data(slot as u64)) }.expect("the SQ has room for DEPTH reads");
    }

    pub(super) fn run(
        path: &Path,
        offsets: &[u64],
        fixed: bool,
        direct: bool,
    ) -> io::Result<Duration> {
        let flags = if direct { libc::O_DIRECT } else { 0 };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(flags)
            .open(path)?;
        let mut ring = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .build(RING_ENTRIES)
            .or_else(|_| IoUring::new(RING_ENTRIES))?;
        let mut bufs = vec![Block([0u8; BLOCK]); DEPTH];
        if fixed {
            let iovecs: Vec<libc::iovec> = bufs
                .iter_mut()
                .map(|b| libc::iovec {
                    iov_base: b.0.as_mut_ptr().cast(),
                    iov_len: BLOCK,
                })
                .collect();
            // SAFETY: `bufs` outlives the ring's registration: the ring is dropped (which
            // unregisters) before `bufs`, or `bufs` is leaked below.
            unsafe { ring.submitter().register_buffers(&iovecs)? };
        }
        let start = Instant::now();
        match drive(
            &mut ring,
            types::Fd(file.as_raw_fd()),
            &mut bufs,
            offsets,
            fixed,
        ) {
            Ok(()) => {
                drop(ring);
                Ok(start.elapsed())
            }
            Err(e) => {
                // Reads may still be in flight: leak their buffers rather than free them
                // under the kernel.
                std::mem::forget(bufs);
                Err(e)
            }
        }
    }

    fn drive(
        ring: &mut IoUring,
        fd: types::Fd,
        bufs: &mut [Block],
        offsets: &[u64],
        fixed: bool,
    ) -> io::Result<()> {
        let (submitter, mut sq, mut cq) = ring.split();
        let mut next = 0;
        let mut in_flight = 0;
        while next < DEPTH.min(offsets.len()) {
            // SAFETY: `bufs` outlives every read: `run` leaks it if we return early; slot
            // `next` is registered buffer `next` when `fixed`.
            unsafe { queue_read(&mut sq, fd, &mut bufs[next], next, offsets[next], fixed) };
            next += 1;
            in_flight += 1;
        }
        while in_flight > 0 {
            sq.sync();
            submitter.submit_and_wait(1)?;
            cq.sync();
            for cqe in &mut cq {
                if cqe.result() != BLOCK as i32 {
                    return Err(read_error("bare read", cqe.result()));
                }
                in_flight -= 1;
                if next < offsets.len() {
                    let slot = cqe.user_data() as usize;
                    // SAFETY: as above; this slot's previous read has just completed.
                    unsafe { queue_read(&mut sq, fd, &mut bufs[slot], slot, offsets[next], fixed) };
                    next += 1;
                    in_flight += 1;
                }
            }
        }
        Ok(())
    }
}
