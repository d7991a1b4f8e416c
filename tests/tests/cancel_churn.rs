//! Cancellation churn: many tasks doing socket reads and writes, file I/O, accepts, connects
//! and sleeps, aborted at random points, their ops dropped by random timeouts, and whole
//! runtimes dropped with ops in flight.
//!
//! Every buffer handed to an op is a [`ChurnBuf`] with an id. When it is dropped it records
//! the drop in a ledger, fills its whole memory with a canary byte and is *kept* (not freed)
//! until the iteration ends. Then the test checks that:
//!
//! - every buffer was dropped exactly once (none leaked, none dropped twice);
//! - no canary was overwritten: the kernel never wrote into a buffer after it was dropped
//!   (a read buffer freed while its read was still in flight would be);
//! - no canary byte ever reached a peer or a file: the kernel never read from a write buffer
//!   after it was dropped (data bytes are all below `0x80`, the canary is `0xDE`);
//! - every descriptor opened during the iteration was closed (accepts, connects and opens
//!   that complete after their future was dropped included).
//!
//! (AddressSanitizer cannot see these faults: the kernel's accesses are not instrumented.
//! The canary sees them.)
//!
//! Data arrives and drains at any moment: threads trickle bytes into some sockets and drain
//! others slowly. Half the runtimes use `DEFER_TASKRUN` (the kernel finishes a receive or
//! send only inside our ring entries), half do not (it finishes them on return from any
//! syscall, so the test makes one after each abort and timeout). Checked by mutation: with
//! `Op`'s drop freeing the buffer at once instead of handing it to the driver, every one of
//! six default runs failed, on each of the three checks above.
//!
//! Runs are seeded and reproducible in their choices (the kernel's timing is not). The seed
//! is printed at the start (`--nocapture`) and in every failure message.
//!
//! ```text
//! cargo test -p iomgr-tests --test cancel_churn                       # default: a few seconds
//! IOMGR_CHURN_SEED=0x5eed IOMGR_CHURN_ITERS=2000 \
//!     cargo test --release -p iomgr-tests --test cancel_churn -- --nocapture   # long mode
//! ```
//!
//! `IOMGR_CHURN_SEED` (decimal or `0x` hex) replays a run; `IOMGR_CHURN_ITERS` sets the number
//! of iterations (one runtime each; default 16).

use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use iomgr::buf::{IoBuf, IoBufMut};
use iomgr::fs::{File, OpenOptions};
use iomgr::net::{TcpListener, TcpStream, UnixStream};
use iomgr::time::{sleep, timeout};
use iomgr::{JoinHandle, Runtime, spawn, yield_now};
use iomgr_tests::{TempDir, open_fds};

/// Fills a dropped buffer. Data bytes are always below `0x80`, so they never look like it.
const CANARY: u8 = 0xDE;

const DEFAULT_ITERS: u64 = 16;

/// xorshift64*: small, fast, and the same on every machine.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        // Never zero (xorshift's fixed point).
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below((hi - lo) as u64) as usize
    }

    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }

    fn micros(&mut self, max: u64) -> Duration {
        Duration::from_micros(self.below(max + 1))
    }

    /// A task's own generator, split off this one.
    fn split(&mut self) -> Rng {
        Rng::new(self.next())
    }

    fn data(&mut self, len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len);
        while v.len() < len {
            let word = self.next();
            for byte in word.to_le_bytes() {
                if v.len() < len {
                    v.push(byte & 0x7F);
                }
            }
        }
        v
    }
}

/// What the buffers of one iteration report.
#[derive(Default)]
struct Ledger {
    /// Drops per buffer id.
    drops: RefCell<Vec<u32>>,
    /// Dropped buffers' memory, canary-filled, kept until the iteration is checked.
    quarantine: RefCell<Vec<(usize, Vec<u8>)>>,
    /// Bytes that came back from a socket or file and were not data bytes.
    bad_bytes: Cell<usize>,
    bytes_read: Cell<usize>,
    bytes_written: Cell<usize>,
    ops: Cell<usize>,
    timeouts: Cell<usize>,
    errors: Cell<usize>,
}

impl Ledger {
    fn check_read(&self, bytes: &[u8]) {
        self.bytes_read.set(self.bytes_read.get() + bytes.len());
        let bad = bytes.iter().filter(|&&b| b >= 0x80).count();
        self.bad_bytes.set(self.bad_bytes.get() + bad);
    }

    fn op(&self) {
        self.ops.set(self.ops.get() + 1);
    }

    fn timed_out(&self) {
        self.timeouts.set(self.timeouts.get() + 1);
    }

    fn error(&self) {
        self.errors.set(self.errors.get() + 1);
    }

    fn live(&self) -> usize {
        self.drops.borrow().iter().filter(|&&d| d == 0).count()
    }
}

/// A drop-counting buffer; see the module docs.
struct ChurnBuf {
    data: Vec<u8>,
    id: usize,
    ledger: Rc<Ledger>,
}

impl ChurnBuf {
    fn with_data(ledger: &Rc<Ledger>, data: Vec<u8>) -> Self {
        let mut drops = ledger.drops.borrow_mut();
        drops.push(0);
        ChurnBuf {
            data,
            id: drops.len() - 1,
            ledger: ledger.clone(),
        }
    }

    /// An empty buffer of `capacity` bytes, for reads.
    fn empty(ledger: &Rc<Ledger>, capacity: usize) -> Self {
        Self::with_data(ledger, Vec::with_capacity(capacity))
    }
}

impl Drop for ChurnBuf {
    fn drop(&mut self) {
        self.ledger.drops.borrow_mut()[self.id] += 1;
        let mut data = std::mem::take(&mut self.data);
        let capacity = data.capacity();
        data.clear();
        data.resize(capacity, CANARY); // within the capacity: the memory does not move
        self.ledger.quarantine.borrow_mut().push((self.id, data));
    }
}

// SAFETY: delegates to `Vec<u8>`, whose heap memory is stable; the memory is never freed
// while the buffer lives (and is kept after it is dropped).
unsafe impl IoBuf for ChurnBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.data.stable_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.data.bytes_init()
    }
    fn bytes_total(&self) -> usize {
        self.data.bytes_total()
    }
}

// SAFETY: delegates to `Vec<u8>`.
unsafe impl IoBufMut for ChurnBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.data.stable_mut_ptr()
    }
    unsafe fn set_init(&mut self, pos: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { self.data.set_init(pos) }
    }
}

/// Either kind of stream, so one task body drives both.
enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Conn {
    async fn read(&self, buf: ChurnBuf) -> (io::Result<usize>, ChurnBuf) {
        match self {
            Conn::Tcp(s) => s.read(buf).await,
            Conn::Unix(s) => s.read(buf).await,
        }
    }

    async fn write_all(&self, buf: ChurnBuf) -> (io::Result<()>, ChurnBuf) {
        match self {
            Conn::Tcp(s) => s.write_all(buf).await,
            Conn::Unix(s) => s.write_all(buf).await,
        }
    }
}

/// Runs `fut` under a random short timeout `percent`% of the time: `None` if it timed out
/// (dropping it, and its op, in flight).
async fn maybe_timeout<F: Future>(rng: &mut Rng, percent: u64, fut: F) -> Option<F::Output> {
    if rng.percent(percent) {
        let out = timeout(rng.micros(400), fut).await.ok();
        if out.is_none() {
            syscall();
        }
        out
    } else {
        Some(fut.await)
    }
}

/// Any system call. Without `DEFER_TASKRUN` the kernel finishes pending io_uring work (a
/// receive copying into its buffer, a send copying out of it) when the thread returns from
/// one, so a syscall between dropping an op and the next ring entry is when a buffer freed
/// too early would be written or read.
fn syscall() {
    std::thread::yield_now();
}

/// Reads until the end of the stream, `timeouts`% of the reads under a short timeout.
async fn reader(conn: Conn, timeouts: u64, mut rng: Rng, ledger: Rc<Ledger>) {
    loop {
        let buf = ChurnBuf::empty(&ledger, rng.range(1, 16 << 10));
        let Some((res, buf)) = maybe_timeout(&mut rng, timeouts, conn.read(buf)).await else {
            ledger.timed_out();
            continue;
        };
        ledger.op();
        match res {
            Ok(0) => return,
            Ok(n) => ledger.check_read(&buf.data[..n]),
            Err(_) => return ledger.error(),
        }
    }
}

async fn writer(conn: Conn, mut rng: Rng, ledger: Rc<Ledger>) {
    loop {
        let len = rng.range(1, 16 << 10);
        let buf = ChurnBuf::with_data(&ledger, rng.data(len));
        let Some((res, _buf)) = maybe_timeout(&mut rng, 30, conn.write_all(buf)).await else {
            ledger.timed_out();
            continue;
        };
        ledger.op();
        match res {
            Ok(()) => ledger.bytes_written.set(ledger.bytes_written.get() + len),
            Err(_) => return ledger.error(),
        }
        if rng.percent(20) {
            sleep(rng.micros(500)).await;
        }
    }
}

async fn file_worker(path: std::path::PathBuf, mut rng: Rng, ledger: Rc<Ledger>) {
    const SPAN: usize = 256 << 10;
    let mut options = OpenOptions::new();
    let open = options.read(true).write(true).create(true).open(&path);
    let Some(file) = maybe_timeout(&mut rng, 20, open).await else {
        return ledger.timed_out(); // an open completing after this is closed by the driver
    };
    let file: File = match file {
        Ok(file) => file,
        Err(_) => return ledger.error(),
    };
    loop {
        let offset = rng.range(0, SPAN) as u64;
        if rng.percent(50) {
            let len = rng.range(1, 8 << 10);
            let buf = ChurnBuf::with_data(&ledger, rng.data(len));
            match maybe_timeout(&mut rng, 20, file.write_at(buf, offset)).await {
                None => ledger.timed_out(),
                Some((Ok(n), _)) => {
                    ledger.op();
                    ledger.bytes_written.set(ledger.bytes_written.get() + n);
                }
                Some((Err(_), _)) => ledger.error(),
            }
        } else {
            let buf = ChurnBuf::empty(&ledger, rng.range(1, 32 << 10));
            match maybe_timeout(&mut rng, 20, file.read_at(buf, offset)).await {
                None => ledger.timed_out(),
                Some((Ok(n), buf)) => {
                    ledger.op();
                    ledger.check_read(&buf.data[..n]);
                }
                Some((Err(_), _)) => ledger.error(),
            }
        }
        if rng.percent(10) {
            yield_now().await;
        }
    }
}

async fn sleeper(mut rng: Rng, ledger: Rc<Ledger>) {
    loop {
        let nap = sleep(rng.micros(3000));
        match maybe_timeout(&mut rng, 50, nap).await {
            Some(()) => ledger.op(),
            None => ledger.timed_out(),
        }
    }
}

/// Accepts and drops connections (the accept may be cancelled with a connection in hand).
async fn acceptor(listener: TcpListener, mut rng: Rng, ledger: Rc<Ledger>) {
    loop {
        match maybe_timeout(&mut rng, 40, listener.accept()).await {
            None => ledger.timed_out(),
            Some(Ok(_)) => ledger.op(),
            Some(Err(_)) => ledger.error(),
        }
    }
}

/// Connects and drops (the connect may be cancelled half way).
async fn connector(addr: std::net::SocketAddr, mut rng: Rng, ledger: Rc<Ledger>) {
    loop {
        match maybe_timeout(&mut rng, 40, TcpStream::connect(addr)).await {
            None => ledger.timed_out(),
            Some(Ok(_)) => ledger.op(),
            Some(Err(_)) => ledger.error(),
        }
        sleep(rng.micros(300)).await;
    }
}

/// A TCP pair over loopback, set up with blocking std calls.
fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (b, _) = listener.accept().unwrap();
    (
        TcpStream::from_std(a).unwrap(),
        TcpStream::from_std(b).unwrap(),
    )
}

/// A thread trickling data bytes into `stream` until the other end closes or `stop` is set:
/// data that arrives at any moment, also while a read is being cancelled.
fn feeder(stream: StdUnixStream, seed: u64, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut rng = Rng::new(seed);
        stream.set_nonblocking(true).unwrap();
        let mut stream = stream;
        while !stop.load(Ordering::Relaxed) {
            let len = rng.range(1, 512);
            let chunk = rng.data(len);
            match stream.write(&chunk) {
                Ok(_) | Err(_) if stop.load(Ordering::Relaxed) => return,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return, // the runtime side is closed
            }
            std::thread::sleep(rng.micros(200));
        }
    })
}

/// A thread draining `stream` slowly, counting bytes that are not data bytes: a write
/// cancelled in flight must never send what its dropped buffer holds afterwards.
fn sink(
    stream: StdUnixStream,
    seed: u64,
    bad: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut rng = Rng::new(seed);
        stream.set_nonblocking(true).unwrap();
        let mut stream = stream;
        let mut buf = vec![0u8; 8192];
        while !stop.load(Ordering::Relaxed) {
            let len = rng.range(1, buf.len());
            match stream.read(&mut buf[..len]) {
                Ok(0) => return,
                Ok(n) => {
                    let n = buf[..n].iter().filter(|&&b| b >= 0x80).count();
                    bad.fetch_add(n, Ordering::Relaxed);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
            std::thread::sleep(rng.micros(200));
        }
    })
}

/// Totals over the run, printed at the end.
#[derive(Default, Debug)]
struct Totals {
    buffers: usize,
    ops: usize,
    timeouts: usize,
    aborts: usize,
    errors: usize,
    bytes_read: usize,
    bytes_written: usize,
    runtimes_dropped_with_ops_in_flight: usize,
    most_ops_in_flight_at_drop: usize,
}

/// One runtime's worth of churn, and what its tasks share.
struct Iteration<'a> {
    /// Names the iteration in failure messages, with how to replay it.
    ctx: String,
    index: u64,
    dir: &'a TempDir,
    ledger: Rc<Ledger>,
    /// Where the connector tasks connect (the acceptor task's listener).
    addr: std::net::SocketAddr,
    threads: RefCell<Vec<std::thread::JoinHandle<()>>>,
    stop: Arc<AtomicBool>,
    /// Non-data bytes the sink threads received.
    sunk_bad: Arc<AtomicUsize>,
}

impl Iteration<'_> {
    /// The iteration's `k`th file (several tasks may share one).
    fn file(&self, k: u64) -> std::path::PathBuf {
        self.dir.join(&format!("f{}-{k}", self.index))
    }

    /// Spawns one or two tasks of a random kind.
    fn spawn_some(&self, rng: &mut Rng, tasks: &mut Vec<JoinHandle<()>>) {
        let ledger = self.ledger.clone();
        match rng.below(6) {
            0 | 1 => {
                let (a, b) = if rng.percent(50) {
                    let (a, b) = tcp_pair();
                    (Conn::Tcp(a), Conn::Tcp(b))
                } else {
                    let (a, b) = UnixStream::pair().unwrap();
                    b.set_recv_buffer_size(4096).unwrap();
                    (Conn::Unix(a), Conn::Unix(b))
                };
                tasks.push(spawn(writer(a, rng.split(), ledger.clone())));
                tasks.push(spawn(reader(b, 30, rng.split(), ledger)));
            }
            2 => {
                let (mine, theirs) = StdUnixStream::pair().unwrap();
                let conn = Conn::Unix(UnixStream::from_std(mine).unwrap());
                let seed = rng.next();
                let stop = self.stop.clone();
                if rng.percent(50) {
                    self.threads.borrow_mut().push(feeder(theirs, seed, stop));
                    tasks.push(spawn(reader(conn, 70, rng.split(), ledger)));
                } else {
                    let bad = self.sunk_bad.clone();
                    self.threads
                        .borrow_mut()
                        .push(sink(theirs, seed, bad, stop));
                    tasks.push(spawn(writer(conn, rng.split(), ledger)));
                }
            }
            3 => {
                let path = self.file(rng.below(4));
                tasks.push(spawn(file_worker(path, rng.split(), ledger)));
            }
            4 => tasks.push(spawn(sleeper(rng.split(), ledger))),
            _ => tasks.push(spawn(connector(self.addr, rng.split(), ledger))),
        }
    }

    /// Runs the tasks, aborting and spawning at random; then either drops the runtime with
    /// everything in flight, or aborts every task and waits for every op to be reaped.
    async fn churn(&self, rt: &Runtime, mut rng: Rng, listener: TcpListener, totals: &mut Totals) {
        let drop_in_flight = rng.percent(50);
        let mut tasks = vec![spawn(acceptor(listener, rng.split(), self.ledger.clone()))];
        for _ in 0..rng.range(3, 8) {
            self.spawn_some(&mut rng, &mut tasks);
        }
        for _ in 0..rng.range(20, 60) {
            match rng.below(10) {
                0..=3 => sleep(rng.micros(1500)).await,
                4 | 5 => yield_now().await,
                6..=8 => {
                    let victim = rng.below(tasks.len() as u64) as usize;
                    tasks[victim].abort();
                    totals.aborts += 1;
                    yield_now().await; // the abort drops the task's ops
                    syscall();
                    if rng.percent(70) {
                        drop(tasks.swap_remove(victim));
                        self.spawn_some(&mut rng, &mut tasks);
                    }
                }
                _ => self.spawn_some(&mut rng, &mut tasks),
            }
        }
        if drop_in_flight {
            // The runtime is dropped with these tasks, and their ops, still running.
            totals.runtimes_dropped_with_ops_in_flight += 1;
            totals.most_ops_in_flight_at_drop =
                totals.most_ops_in_flight_at_drop.max(rt.ops_in_flight());
            return;
        }
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            if let Err(e) = task.await {
                assert!(e.is_cancelled(), "a task failed: {e} ({})", self.ctx);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while rt.ops_in_flight() > 0 {
            assert!(
                Instant::now() < deadline,
                "ops never completed ({})",
                self.ctx
            );
            sleep(Duration::from_millis(1)).await;
        }
        // Every op is reaped, so every buffer is back and dropped.
        assert_eq!(
            self.ledger.live(),
            0,
            "buffers outlived their ops ({})",
            self.ctx
        );
    }

    /// After the runtime is gone: every buffer dropped once, and never touched after.
    fn check(&self, totals: &mut Totals) {
        let ctx = &self.ctx;
        let ledger = &self.ledger;
        let drops = ledger.drops.borrow();
        for (id, &n) in drops.iter().enumerate() {
            assert_eq!(n, 1, "buffer {id} was dropped {n} times ({ctx})");
        }
        for (id, memory) in ledger.quarantine.borrow().iter() {
            if let Some(at) = memory.iter().position(|&b| b != CANARY) {
                panic!(
                    "buffer {id} was written after it was dropped (byte {at} of {}): \
                     freed while the kernel could still write it ({ctx})",
                    memory.len()
                );
            }
        }
        for k in 0..4 {
            if let Ok(bytes) = std::fs::read(self.file(k)) {
                let n = bytes.iter().filter(|&&b| b >= 0x80).count();
                ledger.bad_bytes.set(ledger.bad_bytes.get() + n);
            }
        }
        let bad = ledger.bad_bytes.get() + self.sunk_bad.load(Ordering::Relaxed);
        assert_eq!(
            bad, 0,
            "canary bytes reached a peer or a file: a write buffer was read by the kernel \
             after it was dropped ({ctx})"
        );
        totals.buffers += drops.len();
        totals.ops += ledger.ops.get();
        totals.timeouts += ledger.timeouts.get();
        totals.errors += ledger.errors.get();
        totals.bytes_read += ledger.bytes_read.get();
        totals.bytes_written += ledger.bytes_written.get();
    }
}

fn run_iteration(seed: u64, index: u64, dir: &TempDir, totals: &mut Totals) {
    let mut rng = Rng::new(seed ^ index.wrapping_mul(0xA076_1D64_78BD_642F));
    // Both ways the kernel runs io_uring's deferred work: at our ring entries only, or at
    // any return from a syscall.
    let defer_taskrun = rng.percent(50);
    let rt = Runtime::builder()
        .defer_taskrun(defer_taskrun)
        .coop_taskrun(rng.percent(50))
        .build()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let iteration = Iteration {
        ctx: format!(
            "seed {seed:#x}, iteration {index}; replay: IOMGR_CHURN_SEED={seed:#x} \
             IOMGR_CHURN_ITERS={}",
            index + 1
        ),
        index,
        dir,
        ledger: Rc::new(Ledger::default()),
        addr: listener.local_addr().unwrap(),
        threads: RefCell::new(Vec::new()),
        stop: Arc::new(AtomicBool::new(false)),
        sunk_bad: Arc::new(AtomicUsize::new(0)),
    };
    let task_rng = rng.split();
    rt.block_on(iteration.churn(&rt, task_rng, listener, totals));
    drop(rt);
    iteration.stop.store(true, Ordering::Relaxed);
    for thread in iteration.threads.take() {
        thread.join().unwrap();
    }
    iteration.check(totals);
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    let value = value.trim();
    let parsed = match value.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => value.parse(),
    };
    Some(parsed.unwrap_or_else(|e| panic!("{name}={value}: {e}")))
}

#[test]
fn random_aborts_timeouts_and_shutdowns_free_every_buffer_once_and_only_after_the_kernel() {
    let seed = env_u64("IOMGR_CHURN_SEED").unwrap_or_else(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        nanos as u64 ^ u64::from(std::process::id())
    });
    let iters = env_u64("IOMGR_CHURN_ITERS").unwrap_or(DEFAULT_ITERS);
    println!("cancel_churn: IOMGR_CHURN_SEED={seed:#x} IOMGR_CHURN_ITERS={iters}");
    let dir = TempDir::new("churn");
    let baseline = open_fds();
    let started = Instant::now();
    let mut totals = Totals::default();
    for index in 0..iters {
        run_iteration(seed, index, &dir, &mut totals);
        assert_eq!(
            open_fds(),
            baseline,
            "descriptors leaked (seed {seed:#x}, iteration {index})"
        );
    }
    println!(
        "cancel_churn: {iters} iterations in {:.1?}: {totals:?}",
        started.elapsed()
    );
    assert!(totals.ops > 0 && totals.aborts > 0);
}
