//! 4 KiB random reads at queue depth 32 from a file in the page cache, on one thread:
//! iomgr and monoio beside a bare loop written directly on the `io-uring` crate.
//!
//! The file (1 GiB by default) is created once under `std::env::temp_dir()` if it is missing
//! or has the wrong size, then read once from end to end so that it sits in the page cache.
//! Every contestant performs the same reads: the same list of 4 KiB-aligned random offsets
//! (a fixed-seed xorshift), each read checked to return 4 KiB, with 32 reads in flight.
//!
//! - **bare**: one ring, 32 reused buffers; fill 32 SQEs, then `submit_and_wait(1)`, and for
//!   every completion queue the next read into the buffer it freed: one `io_uring_enter` per
//!   batch, no allocation, nothing but the ring between the reads. The ring is as lean as the
//!   kernel allows: `SINGLE_ISSUER | DEFER_TASKRUN` (required: completion work runs only in
//!   our enter, on our thread, as in iomgr), plus `NO_SQARRAY` (Linux 6.6: no SQ index
//!   array) and a registered ring fd (no file lookup per enter) when the kernel has them.
//!   The header prints the flags each contestant's ring got. The fastest way we know to do
//!   this with io_uring; the reference the others are compared with.
//! - **iomgr** and **monoio**: 32 spawned tasks, each looping `read_at` on one owned buffer,
//!   taking the next offset from a shared counter, the way an application would write it.
//!
//! The runs alternate (bare, iomgr, monoio, then iomgr, monoio, bare, …) so that background
//! load hits all alike, and the median of each column is printed. IOPS is wall-clock throughput; CPU ns/read is the
//! thread's own CPU time (`CLOCK_THREAD_CPUTIME_ID`) per read, which other processes on the
//! machine disturb less; its spread is (max - min) / median over the runs. The thread is
//! pinned to one core.
//!
//! ```text
//! cargo run --release --manifest-path benches/Cargo.toml --bin file_read [-- --size-mib 1024 --reads 2097152 --reps 3]
//! cargo run --release --manifest-path benches/Cargo.toml --bin file_read -- --quick
//! ```

use std::cell::Cell;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use iomgr_benches::args::parse_flag;
use iomgr_benches::machine::{load_average, pin_to_core, thread_cpu_time};
use iomgr_benches::stats::{median, rotated, spread};
use iomgr_benches::test_file::{self, read_error};

/// Bytes per read.
const BLOCK: usize = 4096;
/// Reads kept in flight.
const DEPTH: usize = 32;
/// Ring entries for every contestant (monoio's minimum).
const RING_ENTRIES: u32 = 256;
/// The core the benchmark thread is pinned to.
const CORE: usize = 1;

fn main() -> io::Result<()> {
    let config = Config::from_args()?;
    pin_to_core(CORE)?;
    let path = test_file::prepare(config.size)?;
    let offsets: Rc<[u64]> = test_file::random_offsets(config.size, BLOCK, config.reads).into();
    print_header(&config, &path);
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); config.contestants.len()];
    for rep in 0..config.reps {
        for i in rotated(config.contestants.len(), rep) {
            let x = config.contestants[i];
            samples[i].push(measure(x, &path, &offsets)?);
        }
    }
    print_table(&config.contestants, &samples);
    println!("\nload average after: {}", load_average());
    Ok(())
}

/// The file size, the number of reads per run and the runs per contestant.
struct Config {
    size: u64,
    reads: usize,
    reps: usize,
    contestants: Vec<Contestant>,
}

impl Config {
    /// `--size-mib N` (default 1024), `--reads N` (per run, default 2 Mi), `--reps N`
    /// (default 5), `--quick` (64 MiB, 64 Ki reads, one run: a smoke test), `--only NAME`
    /// (run one contestant: `bare`, `iomgr` or `monoio`; for profiling).
    fn from_args() -> io::Result<Self> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let quick = args.iter().any(|a| a == "--quick");
        let size_mib: u64 =
            parse_flag(&args, "--size-mib")?.unwrap_or(if quick { 64 } else { 1024 });
        let reads: usize =
            parse_flag(&args, "--reads")?.unwrap_or(if quick { 1 << 16 } else { 1 << 21 });
        let reps: usize = parse_flag(&args, "--reps")?.unwrap_or(if quick { 1 } else { 5 });
        if size_mib == 0 || reads == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "--size-mib and --reads must be positive",
            ));
        }
        Ok(Config {
            size: size_mib << 20,
            reads,
            reps: reps.max(1),
            contestants: select_contestants(&args)?,
        })
    }
}

/// Every contestant, or the one `--only` names.
fn select_contestants(args: &[String]) -> io::Result<Vec<Contestant>> {
    let Some(only) = parse_flag::<String>(args, "--only")? else {
        return Ok(Contestant::ALL.to_vec());
    };
    let chosen: Vec<_> = Contestant::ALL
        .into_iter()
        .filter(|c| c.name().starts_with(only.as_str()))
        .collect();
    if chosen.is_empty() {
        let msg = format!("--only {only}: expected bare, iomgr or monoio");
        return Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
    }
    Ok(chosen)
}

/// The implementations compared.
#[derive(Clone, Copy, Debug)]
enum Contestant {
    Bare,
    Iomgr,
    Monoio,
}

impl Contestant {
    const ALL: [Contestant; 3] = [Contestant::Bare, Contestant::Iomgr, Contestant::Monoio];

    fn name(self) -> &'static str {
        match self {
            Contestant::Bare => "bare io-uring",
            Contestant::Iomgr => "iomgr",
            Contestant::Monoio => "monoio",
        }
    }

    /// Performs one read at each offset; returns the wall time the reads took.
    fn run(self, path: &Path, offsets: &Rc<[u64]>) -> io::Result<Duration> {
        match self {
            Contestant::Bare => bare::run(path, offsets),
            Contestant::Iomgr => with_iomgr::run(path, offsets.clone()),
            Contestant::Monoio => with_monoio::run(path, offsets.clone()),
        }
    }
}

/// What one run measured.
#[derive(Clone, Copy, Debug)]
struct Sample {
    iops: f64,
    cpu_per_read: Duration,
}

fn measure(contestant: Contestant, path: &Path, offsets: &Rc<[u64]>) -> io::Result<Sample> {
    let cpu_before = thread_cpu_time();
    let elapsed = contestant.run(path, offsets)?;
    let cpu_used = thread_cpu_time() - cpu_before;
    Ok(Sample {
        iops: offsets.len() as f64 / elapsed.as_secs_f64(),
        cpu_per_read: cpu_used / offsets.len() as u32,
    })
}

/// The reference: a completion loop straight on the `io-uring` crate.
mod bare {
    use io_uring::{IoUring, SubmissionQueue, opcode, types};

    use super::*;

    /// Queues a read of one block at `offset` into `buf`, tagged with its buffer's `slot`.
    ///
    /// # Safety
    /// `buf` must stay valid and unmoved until the read's completion has been reaped.
    unsafe fn queue_read(
        sq: &mut SubmissionQueue<'_>,
        fd: types::Fd,
        buf: &mut [u8; BLOCK],
        slot: usize,
        offset: u64,
    ) {
        let sqe = opcode::Read::new(fd, buf.as_mut_ptr(), BLOCK as u32)
            .offset(offset)
            .build()
            .user_data(slot as u64);
        // SAFETY: the caller keeps `buf` valid until completion; at most `DEPTH` entries are
        // queued at once, fewer than the SQ holds.
        unsafe { sq.push(&sqe) }.expect("the SQ has room for DEPTH reads");
    }

    /// The leanest ring the kernel gives: `SINGLE_ISSUER | DEFER_TASKRUN` (an error without
    /// them: the comparison would not be like for like), and `NO_SQARRAY` when it has it.
    /// Returns the ring and whether `NO_SQARRAY` is in effect.
    pub(super) fn ring() -> io::Result<(IoUring, bool)> {
        let mut builder = IoUring::builder();
        builder.setup_single_issuer().setup_defer_taskrun();
        let lean = builder.clone().setup_no_sqarray().build(RING_ENTRIES);
        match lean {
            Ok(ring) => Ok((ring, true)),
            Err(_) => builder
                .build(RING_ENTRIES)
                .map(|ring| (ring, false))
                .map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("bare ring: SINGLE_ISSUER | DEFER_TASKRUN (Linux 6.1) needed: {e}"),
                    )
                }),
        }
    }

    /// What the bare loop's ring gets on this kernel, for the header.
    pub(super) fn describe() -> String {
        match ring() {
            Ok((ring, no_sqarray)) => {
                let mut submitter = ring.submitter();
                let registered = submitter.register_ring_fd().is_ok();
                if registered {
                    // The registration holds the ring open until it is undone.
                    let _ = submitter.unregister_ring_fd();
                }
                format!(
                    "SINGLE_ISSUER | DEFER_TASKRUN{}{}",
                    if no_sqarray { " | NO_SQARRAY" } else { "" },
                    if registered {
                        ", registered ring fd"
                    } else {
                        ""
                    }
                )
            }
            Err(e) => format!("unavailable: {e}"),
        }
    }

    pub(super) fn run(path: &Path, offsets: &[u64]) -> io::Result<Duration> {
        let file = std::fs::File::open(path)?;
        let (mut ring, _) = ring()?;
        let mut bufs = vec![[0u8; BLOCK]; DEPTH];
        let start = Instant::now();
        match drive(&mut ring, types::Fd(file.as_raw_fd()), &mut bufs, offsets) {
            Ok(()) => Ok(start.elapsed()),
            Err(e) => {
                // Reads may still be in flight: leak their buffers rather than free them
                // under the kernel.
                std::mem::forget(bufs);
                Err(e)
            }
        }
    }

    /// Reads every offset with `DEPTH` reads in flight. On success none is left in flight.
    fn drive(
        ring: &mut IoUring,
        fd: types::Fd,
        bufs: &mut [[u8; BLOCK]],
        offsets: &[u64],
    ) -> io::Result<()> {
        let (mut submitter, mut sq, mut cq) = ring.split();
        // Enters name the ring by its registered index: no file lookup per enter. (Best
        // effort: Linux 5.18+; the split submitter remembers it for the whole run, and the
        // registration, which holds the ring open, is undone at the end.)
        let registered = submitter.register_ring_fd().is_ok();
        let result = reads(&submitter, &mut sq, &mut cq, fd, bufs, offsets);
        if registered {
            let _ = submitter.unregister_ring_fd();
        }
        result
    }

    /// The loop of [`drive`].
    fn reads(
        submitter: &io_uring::Submitter<'_>,
        sq: &mut SubmissionQueue<'_>,
        cq: &mut io_uring::CompletionQueue<'_>,
        fd: types::Fd,
        bufs: &mut [[u8; BLOCK]],
        offsets: &[u64],
    ) -> io::Result<()> {
        let mut next = 0;
        let mut in_flight = 0;
        while next < DEPTH.min(offsets.len()) {
            // SAFETY: `bufs` outlives every read: `run` leaks it if we return early.
            unsafe { queue_read(sq, fd, &mut bufs[next], next, offsets[next]) };
            next += 1;
            in_flight += 1;
        }
        while in_flight > 0 {
            sq.sync();
            submitter.submit_and_wait(1)?;
            cq.sync();
            for cqe in &mut *cq {
                if cqe.result() != BLOCK as i32 {
                    return Err(read_error("bare read", cqe.result()));
                }
                in_flight -= 1;
                if next < offsets.len() {
                    let slot = cqe.user_data() as usize;
                    // SAFETY: as above; this slot's previous read has just completed.
                    unsafe { queue_read(sq, fd, &mut bufs[slot], slot, offsets[next]) };
                    next += 1;
                    in_flight += 1;
                }
            }
        }
        Ok(())
    }
}

/// iomgr: 32 tasks, each reading with one owned buffer.
mod with_iomgr {
    use iomgr::fs::File;

    use super::*;

    async fn reader(file: Rc<File>, offsets: Rc<[u64]>, next: Rc<Cell<usize>>) -> io::Result<()> {
        let mut buf = vec![0u8; BLOCK];
        loop {
            let i = next.get();
            let Some(&offset) = offsets.get(i) else {
                return Ok(());
            };
            next.set(i + 1);
            let (res, b) = file.read_at(buf, offset).await;
            buf = b;
            let n = res?;
            if n != BLOCK {
                return Err(read_error("iomgr read", n as i32));
            }
        }
    }

    pub(super) fn run(path: &Path, offsets: Rc<[u64]>) -> io::Result<Duration> {
        let rt = iomgr::Runtime::builder().entries(RING_ENTRIES).build()?;
        rt.block_on(async {
            let file = Rc::new(File::open(path).await?);
            let next = Rc::new(Cell::new(0));
            let start = Instant::now();
            let tasks: Vec<_> = (0..DEPTH)
                .map(|_| iomgr::spawn(reader(file.clone(), offsets.clone(), next.clone())))
                .collect();
            for task in tasks {
                task.await
                    .map_err(|e| io::Error::other(format!("reader failed: {e}")))??;
            }
            Ok(start.elapsed())
        })
    }
}

/// monoio: the same 32 tasks.
mod with_monoio {
    use monoio::fs::File;

    use super::*;

    async fn reader(file: Rc<File>, offsets: Rc<[u64]>, next: Rc<Cell<usize>>) -> io::Result<()> {
        let mut buf = vec![0u8; BLOCK];
        loop {
            let i = next.get();
            let Some(&offset) = offsets.get(i) else {
                return Ok(());
            };
            next.set(i + 1);
            let (res, b) = file.read_at(buf, offset).await;
            buf = b;
            let n = res?;
            if n != BLOCK {
                return Err(read_error("monoio read", n as i32));
            }
        }
    }

    pub(super) fn run(path: &Path, offsets: Rc<[u64]>) -> io::Result<Duration> {
        let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .with_entries(RING_ENTRIES)
            .build()?;
        rt.block_on(async {
            let file = Rc::new(File::open(path).await?);
            let next = Rc::new(Cell::new(0));
            let start = Instant::now();
            let tasks: Vec<_> = (0..DEPTH)
                .map(|_| monoio::spawn(reader(file.clone(), offsets.clone(), next.clone())))
                .collect();
            for task in tasks {
                task.await?;
            }
            Ok(start.elapsed())
        })
    }
}

fn print_header(config: &Config, path: &Path) {
    println!(
        "4 KiB random reads, queue depth {DEPTH}, one thread on core {CORE}: {} reads per run \
         from {} ({} MiB, page cache), median of {} run(s); ratios are to the first row",
        config.reads,
        path.display(),
        config.size >> 20,
        config.reps
    );
    println!("load average before: {}", load_average());
    println!("bare ring: {}", bare::describe());
    match iomgr::Runtime::builder().entries(RING_ENTRIES).build() {
        Ok(rt) => println!("iomgr ring: {:?}", rt.ring_flags()),
        Err(e) => println!("iomgr ring: unavailable: {e}"),
    }
}

fn print_table(contestants: &[Contestant], samples: &[Vec<Sample>]) {
    println!(
        "\n{:<14} {:>10} {:>6} {:>12} {:>6} {:>7}",
        "", "IOPS", "ratio", "CPU ns/read", "ratio", "spread"
    );
    let rows: Vec<(f64, f64, f64)> = samples
        .iter()
        .map(|s| {
            let iops = median(s.iter().map(|x| x.iops));
            let cpu = s.iter().map(|x| x.cpu_per_read.as_secs_f64() * 1e9);
            (iops, median(cpu.clone()), spread(cpu))
        })
        .collect();
    let (base_iops, base_cpu, _) = rows[0];
    for (contestant, (iops, cpu, spread)) in contestants.iter().zip(rows) {
        println!(
            "{:<14} {:>10.0} {:>6.2} {:>12.0} {:>6.2} {:>6.0}%",
            contestant.name(),
            iops,
            iops / base_iops,
            cpu,
            cpu / base_cpu,
            spread * 100.0
        );
    }
}
