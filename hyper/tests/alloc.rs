//! `HyperIo`'s buffers are reused (no allocation per round trip once warm) and freed (also
//! when it is dropped with a recv and a send in flight).
//!
//! The adapter is driven directly through hyper's `Read`/`Write` traits, without hyper's
//! connection code (which allocates per request of its own accord), by a global allocator
//! that counts allocations and frees made on the test's thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Poll, ready};
use std::time::Duration;

use hyper::rt::{Read, ReadBuf, Write};
use iomgr::Runtime;
use iomgr::net::{TcpListener, TcpStream, UnixStream};
use iomgr_hyper::{HyperIo, Stream};

/// The system allocator, counting this thread's allocations and frees while `COUNTING`.
struct LiveAlloc;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
    static FREES: Cell<usize> = const { Cell::new(0) };
}

fn note(counter: &'static std::thread::LocalKey<Cell<usize>>) {
    // `try_with`: the allocator may run while this thread's locals are torn down.
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = counter.try_with(|c| c.set(c.get() + 1));
    }
}

// SAFETY: every call goes to the system allocator unchanged; this only counts.
unsafe impl GlobalAlloc for LiveAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(&ALLOCS);
        // SAFETY: forwarded from the caller.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(&ALLOCS);
        // SAFETY: forwarded from the caller.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(&FREES);
        // SAFETY: forwarded from the caller.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // A move to a new block: one allocation and one free.
        note(&ALLOCS);
        note(&FREES);
        // SAFETY: forwarded from the caller.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: LiveAlloc = LiveAlloc;

/// Allocations and frees made on this thread while `future` ran.
async fn counted<F: Future>(future: F) -> (F::Output, usize, usize) {
    ALLOCS.with(|c| c.set(0));
    FREES.with(|c| c.set(0));
    COUNTING.with(|c| c.set(true));
    let output = future.await;
    COUNTING.with(|c| c.set(false));
    (output, ALLOCS.with(Cell::get), FREES.with(Cell::get))
}

/// Writes all of `data` through `poll_write`, then flushes.
async fn write_all<S: Stream>(io: &mut HyperIo<S>, data: &[u8]) -> io::Result<()> {
    let mut done = 0;
    while done < data.len() {
        let n = poll_fn(|cx| Pin::new(&mut *io).poll_write(cx, &data[done..])).await?;
        assert!(n > 0);
        done += n;
    }
    poll_fn(|cx| Pin::new(&mut *io).poll_flush(cx)).await
}

/// Reads through `poll_read` until `buf` is full.
async fn read_exact<S: Stream>(io: &mut HyperIo<S>, buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = poll_fn(|cx| {
            let mut read_buf = ReadBuf::new(&mut buf[filled..]);
            ready!(Pin::new(&mut *io).poll_read(cx, read_buf.unfilled()))?;
            Poll::Ready(io::Result::Ok(read_buf.filled().len()))
        })
        .await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        filled += n;
    }
    Ok(())
}

/// `rounds` round trips: `a` sends a message of `size` bytes, `b` reads it and sends it
/// back, `a` reads it back, all through the adapter.
async fn round_trips<S: Stream>(
    a: &mut HyperIo<S>,
    b: &mut HyperIo<S>,
    message: &[u8],
    scratch: &mut [u8],
    rounds: usize,
) {
    for _ in 0..rounds {
        write_all(a, message).await.unwrap();
        read_exact(b, scratch).await.unwrap();
        write_all(b, scratch).await.unwrap();
        scratch.fill(0);
        read_exact(a, scratch).await.unwrap();
        assert_eq!(scratch, message);
    }
}

async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (client, server)
}

#[test]
fn round_trips_through_the_adapter_allocate_nothing_after_warm_up() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let (client, server) = tcp_pair().await;
        // A 64 KiB staging buffer, so that the largest message goes in turns.
        let mut a = HyperIo::with_capacity(client, 8192, 64 * 1024);
        let mut b = HyperIo::with_capacity(server, 8192, 64 * 1024);
        // Messages larger than the read buffer (so reads leave bytes behind) and than the
        // staging buffer (so they are sent in turns, and sends may be partial).
        for size in [1, 100, 20_000, 200_000] {
            let message: Vec<u8> = (0..size).map(|i| (i % 253) as u8).collect();
            let mut scratch = vec![0u8; size];
            round_trips(&mut a, &mut b, &message, &mut scratch, 5).await;
            let ((), allocs, _) =
                counted(round_trips(&mut a, &mut b, &message, &mut scratch, 200)).await;
            assert_eq!(allocs, 0, "allocations in 200 round trips of {size} bytes");
        }
    });
}

/// What a cycle of "wrap, talk, drop with ops in flight" leaves allocated once the kernel
/// has completed everything.
async fn cycle_with_ops_in_flight(rt: &Runtime) {
    let (x, y) = UnixStream::pair().unwrap();
    // Small socket buffers, so that a large send stays in flight.
    x.set_recv_buffer_size(4096).unwrap();
    y.set_recv_buffer_size(4096).unwrap();
    let mut a = HyperIo::new(x);
    let mut b = HyperIo::new(y);
    let message = vec![7u8; 1000];
    let mut scratch = vec![0u8; 1000];
    round_trips(&mut a, &mut b, &message, &mut scratch, 3).await;

    // A recv in flight on `a` (nothing to read), a send in flight on `b` (the peer does not
    // read): poll each once, then drop both adapters mid-flight.
    let mut read_into = [0u8; 16];
    let polled = poll_fn(|cx| {
        let mut read_buf = ReadBuf::new(&mut read_into);
        Poll::Ready(
            Pin::new(&mut a)
                .poll_read(cx, read_buf.unfilled())
                .is_pending(),
        )
    })
    .await;
    assert!(polled, "nothing to read yet");
    let big = vec![1u8; 4 << 20];
    let flushed = poll_fn(|cx| {
        let mut sent = 0;
        while sent < big.len() {
            match Pin::new(&mut b).poll_write(cx, &big[sent..]) {
                Poll::Ready(Ok(n)) => sent += n,
                Poll::Ready(Err(e)) => panic!("{e}"),
                Poll::Pending => break,
            }
        }
        Poll::Ready(Pin::new(&mut b).poll_flush(cx).is_ready())
    })
    .await;
    assert!(
        !flushed,
        "4 MiB cannot all be taken by a 4 KiB socket buffer"
    );
    assert_eq!(a.ops_in_flight(), 1);
    assert_eq!(b.ops_in_flight(), 1);
    drop(a);
    drop(b);
    // The driver frees what the dropped ops owned when their last completions arrive.
    for _ in 0..1000 {
        if rt.ops_in_flight() == 0 {
            return;
        }
        iomgr::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("the cancelled ops never completed");
}

#[test]
fn dropping_the_adapter_mid_flight_frees_its_buffers() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        // Warm up the runtime's own tables (op slab, cancel paths, timers).
        cycle_with_ops_in_flight(&rt).await;
        cycle_with_ops_in_flight(&rt).await;
        let ((), allocs, frees) = counted(cycle_with_ops_in_flight(&rt)).await;
        assert!(allocs > 0);
        assert_eq!(
            allocs, frees,
            "everything allocated in the cycle is freed: {allocs} allocations, {frees} frees"
        );
    });
}
