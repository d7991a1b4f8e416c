//! The thread's recycling buffer pool: size classes, reuse, counters that show leaks, the
//! idle bound, I/O with pooled buffers (an op dropped in flight returns its buffer after the
//! last completion), no allocation after warm-up, and the debug checks.
//!
//! Each test runs on its own thread, so each sees its own pool.

use std::rc::Rc;
use std::time::Duration;

use iomgr::Runtime;
use iomgr::buf::{BufExt, BufPool, IoBuf, IoBufMut};
use iomgr::fs::File;
use iomgr::net::UnixStream;
use iomgr_tests::{CountingAlloc, TempDir, allocations_during, until};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

#[test]
fn buffers_come_from_power_of_two_classes_and_are_reused() {
    let a = BufPool::get(100);
    assert_eq!((a.capacity(), a.len()), (512, 0));
    let b = BufPool::get(3000);
    assert_eq!(b.capacity(), 4096);
    assert_eq!(
        b.stable_ptr() as usize % 4096,
        0,
        "4 KiB and up are page-aligned"
    );
    assert_eq!(BufPool::get(1 << 20).capacity(), 1 << 20);
    let stats = BufPool::stats();
    assert_eq!(
        (stats.in_use, stats.idle, stats.misses, stats.hits),
        (2, 1, 3, 0)
    );

    let ptr = b.stable_ptr();
    drop(b);
    let mut again = BufPool::get(4096);
    assert_eq!(again.stable_ptr(), ptr, "the same memory");
    assert!(again.is_empty(), "handed out empty");
    again.extend_from_slice(b"abc");
    again.resize(6, b'!');
    assert_eq!(&again[..], b"abc!!!");
    let stats = BufPool::stats();
    assert_eq!((stats.hits, stats.misses), (1, 3));
    let class = stats.classes.iter().find(|c| c.size == 4096).unwrap();
    assert_eq!(
        (class.in_use, class.idle, class.hits, class.misses),
        (1, 0, 1, 1)
    );
    drop((a, again));
    let stats = BufPool::stats();
    assert_eq!((stats.in_use, stats.idle, stats.allocated), (0, 3, 3));
    assert_eq!(stats.allocated_bytes, 512 + 4096 + (1 << 20));
}

#[test]
fn idle_memory_per_class_is_bounded() {
    BufPool::set_idle_limit(3 * 4096);
    let bufs: Vec<_> = (0..5).map(|_| BufPool::get(4096)).collect();
    drop(bufs);
    let stats = BufPool::stats();
    let class = stats.classes.iter().find(|c| c.size == 4096).unwrap();
    assert_eq!((class.idle, class.trimmed), (3, 2), "kept 3, freed 2");
    assert_eq!(stats.allocated, 3);

    // Lowering the limit frees the surplus now; trim frees everything idle.
    BufPool::set_idle_limit(4096);
    assert_eq!(BufPool::stats().idle, 1);
    BufPool::trim();
    assert_eq!(BufPool::stats().allocated, 0);
}

#[test]
fn oversize_buffers_are_allocated_and_freed_each_time() {
    let big = BufPool::get(3 << 20);
    assert_eq!(big.capacity(), 3 << 20);
    let stats = BufPool::stats();
    assert_eq!(
        (stats.oversize_in_use, stats.in_use, stats.misses),
        (1, 1, 1)
    );
    drop(big);
    let stats = BufPool::stats();
    assert_eq!(
        (stats.oversize_in_use, stats.allocated, stats.idle),
        (0, 0, 0)
    );
}

#[test]
fn pooled_buffers_do_io_and_churn_leaks_nothing() {
    let dir = TempDir::new("bufpool");
    let path = dir.join("f");
    let data: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let file = Rc::new(File::open(&path).await.unwrap());
        let (a, b) = UnixStream::pair().unwrap();
        let mut tasks = Vec::new();
        for t in 0..8usize {
            let file = file.clone();
            let data = data.clone();
            tasks.push(iomgr::spawn(async move {
                for i in 0..40usize {
                    let size = [700, 4096, 10_000, 65_536][(t + i) % 4];
                    let offset = (t * 977 + i * 131) % 1024;
                    let buf = BufPool::get(size);
                    let (res, buf) = file.read_at(buf.slice(..size), offset as u64).await;
                    let n = res.unwrap();
                    assert_eq!(&buf[..], &data[offset..offset + n]);
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        // A read dropped in the kernel keeps its buffer until the cancellation completes.
        {
            let read = b.read(BufPool::get(4096));
            let _ = iomgr::time::timeout(Duration::from_millis(2), read).await;
        }
        until(100, "the cancelled read returned its buffer", || {
            BufPool::stats().in_use == 0
        })
        .await;
        let (res, _) = a.write(BufPool::get(16)).await;
        res.unwrap();
    });
    let stats = BufPool::stats();
    assert_eq!(stats.in_use, 0, "nothing leaked: {stats:?}");
    assert_eq!(stats.allocated, stats.idle);
    assert!(stats.hits > 8 * 40 / 2, "most gets were reuses: {stats:?}");
    assert_eq!(stats.quarantined, 0);
}

#[test]
fn get_and_return_allocate_nothing_after_warm_up() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let (a, b) = UnixStream::pair().unwrap();
        let round = |n: usize| {
            let (a, b) = (&a, &b);
            async move {
                for i in 0..n {
                    let mut out = BufPool::get(512);
                    out.extend_from_slice(&(i as u64).to_le_bytes());
                    let (res, out) = a.write_all(out).await;
                    res.unwrap();
                    drop(out);
                    let (res, got) = b.read_exact(BufPool::get(8).slice(..8)).await;
                    res.unwrap();
                    assert_eq!(&got[..], &(i as u64).to_le_bytes());
                    let big = BufPool::get(100_000);
                    drop(big);
                }
            }
        };
        round(50).await;
        let ((), allocations) = allocations_during(round(1000)).await;
        assert_eq!(
            allocations, 0,
            "allocations in 1000 rounds of get, I/O and return"
        );
    });
}

#[cfg(debug_assertions)]
#[test]
#[should_panic(expected = "was written past its end: guard byte 0 after its 512 usable bytes")]
fn a_write_past_the_end_of_a_pooled_buffer_panics_when_it_returns() {
    let mut buf = BufPool::get(512);
    // SAFETY: byte 512 is the first guard byte: debug builds allocate 16 guard bytes (and a
    // stamp) after the 512 usable ones, in the same allocation, which `buf` owns; writing
    // there is the bug the guard catches, not an out-of-bounds access.
    unsafe { buf.stable_mut_ptr().add(512).write(0x41) };
    drop(buf);
}

#[cfg(debug_assertions)]
#[test]
#[should_panic(expected = "was returned to its pool twice")]
fn a_pooled_buffer_returned_twice_panics() {
    let buf = BufPool::get(512);
    // SAFETY: the duplicate owner is the bug being detected: the first drop returns the
    // memory to the pool, which keeps it allocated (idle), so the second drop reads the
    // buffer's stamp in live memory, sees it already returned, and touches nothing more.
    let copy = unsafe { std::ptr::read(&buf) };
    drop(buf);
    drop(copy);
}
