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
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

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
    let path = prepare_file(size)?;
    let offsets: Rc<[u64]> = random_offsets(size, reads).into();
    let source = if direct { "O_DIRECT" } else { "page cache" };
    println!(
        "4 KiB random reads, queue depth {DEPTH}, one thread on core {CORE}: {reads} reads per \
         run from {} ({size_mib} MiB, {source}), median of {reps} run(s)",
        path.display()
    );
    println!("load average before: {}", load_average());
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); Contestant::ALL.len()];
    for rep in 0..reps {
        for i in (0..Contestant::ALL.len()).map(|i| (i + rep) % Contestant::ALL.len()) {
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

fn io_error(what: &str, result: i32) -> io::Error {
    if result < 0 {
        io::Error::from_raw_os_error(-result)
    } else {
        io::Error::other(format!("{what}: short read of {result} bytes"))
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
                return Err(io_error("iomgr read_at", n as i32));
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
                return Err(io_error("iomgr read_fixed_at", n as i32));
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
                    return Err(io_error("bare read", cqe.result()));
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

fn parse_flag<T: std::str::FromStr>(args: &[String], name: &str) -> io::Result<Option<T>> {
    let Some(i) = args.iter().position(|a| a == name) else {
        return Ok(None);
    };
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name} needs a number"),
        )
    };
    let value = args.get(i + 1).ok_or_else(bad)?;
    value.parse().map(Some).map_err(|_| bad())
}

/// Makes sure the test file exists with the right size and is in the page cache (the same
/// file `file_read` uses).
fn prepare_file(size: u64) -> io::Result<PathBuf> {
    let path = std::env::temp_dir().join(format!("iomgr-bench-file_read-{}MiB.dat", size >> 20));
    if std::fs::metadata(&path).map(|m| m.len()).ok() != Some(size) {
        println!("creating {} ({} MiB)…", path.display(), size >> 20);
        let mut file = std::fs::File::create(&path)?;
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
        file.sync_all()?;
    }
    let mut file = std::fs::File::open(&path)?;
    let mut chunk = vec![0u8; 1 << 20];
    while file.read(&mut chunk)? > 0 {}
    Ok(path)
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

fn random_offsets(size: u64, count: usize) -> Vec<u64> {
    let blocks = size / BLOCK as u64;
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    (0..count)
        .map(|_| (rng.next() % blocks) * BLOCK as u64)
        .collect()
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_string())
}

/// CPU time (user + system) the calling thread has used.
fn thread_cpu_time() -> Duration {
    // SAFETY: `rusage` is plain data; all zeros is a valid value to be overwritten.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is writable; RUSAGE_THREAD needs nothing else.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    let to_duration = |tv: libc::timeval| Duration::new(tv.tv_sec as u64, tv.tv_usec as u32 * 1000);
    to_duration(usage.ru_utime) + to_duration(usage.ru_stime)
}

/// Pins the calling thread to one CPU.
fn pin_to_core(core: usize) -> io::Result<()> {
    // SAFETY: `cpu_set_t` is plain bytes; all zeros is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `core` (a small constant) is below CPU_SETSIZE, and `set` is initialized.
    unsafe { libc::CPU_SET(core, &mut set) };
    // SAFETY: pid 0 is the calling thread; `set` is valid for the size passed.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("pinning to core {core}: {e}"),
        ));
    }
    Ok(())
}
