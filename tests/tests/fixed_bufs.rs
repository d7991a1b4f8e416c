//! Registered (fixed) buffers: the pool, `read_fixed`/`write_fixed` on files and sockets,
//! and the unhappy paths (an exhausted pool, an op dropped in flight, another runtime's
//! buffer, a write past a buffer's end, a buffer returned twice).

use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use iomgr::buf::{BufExt, FixedBufPool, IoBuf};
use iomgr::fs::{File, OpenOptions};
use iomgr::net::{TcpListener, TcpStream, UdpSocket, UnixStream};
use iomgr::{Runtime, spawn};
use iomgr_tests::{
    CountingAlloc, TempDir, allocations_during, in_child, rerun_in_child, restore_default_sigpipe,
    until,
};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn try_get_fails_fast_on_an_exhausted_pool_and_succeeds_after_a_return() {
    Runtime::new().unwrap().block_on(async {
        let pool = FixedBufPool::new(3, 4096).unwrap();
        assert_eq!(
            (pool.capacity(), pool.available(), pool.buf_size()),
            (3, 3, 4096)
        );
        let bufs: Vec<_> = (0..3).map(|_| pool.try_get().unwrap()).collect();
        let mut indices: Vec<_> = bufs.iter().map(|b| b.buf_index()).collect();
        indices.sort();
        indices.dedup();
        assert_eq!(indices.len(), 3, "each buffer has its own slot");
        assert!(
            indices
                .iter()
                .all(|i| pool.slots().contains(&u32::from(*i)))
        );
        assert!(bufs.iter().all(|b| b.is_empty() && b.capacity() == 4096));
        assert!(
            bufs.iter()
                .all(|b| (b.stable_ptr() as usize).is_multiple_of(4096)),
            "page-aligned"
        );

        let err = pool.try_get().unwrap_err();
        assert!(
            err.to_string()
                .contains("all 3 registered buffers of 4096 bytes are checked out"),
            "{err}"
        );
        assert_eq!(io::Error::from(err).kind(), io::ErrorKind::WouldBlock);
        assert_eq!(pool.stats().in_use, 3);

        let last = bufs[2].buf_index();
        drop(bufs); // returned in order: bufs[2] last
        assert_eq!(pool.available(), 3);
        // The most recently returned buffer is handed out first (warm in cache).
        assert_eq!(pool.try_get().unwrap().buf_index(), last);
    });
}

#[test]
fn get_waits_for_a_buffer_and_wakes_when_one_returns_first_come_first_served() {
    Runtime::new().unwrap().block_on(async {
        let pool = FixedBufPool::new(1, 512).unwrap();
        let held = pool.try_get().unwrap();
        let order = Rc::new(Cell::new(0u32));
        let mut waiters = Vec::new();
        for i in 0..3u32 {
            let (pool, order) = (pool.clone(), order.clone());
            waiters.push(spawn(async move {
                let mut buf = pool.get().await;
                // Each waiter gets the buffer in its turn.
                assert_eq!(order.get(), i, "waiter {i} served out of turn");
                order.set(i + 1);
                buf.extend_from_slice(&[i as u8]);
                iomgr::time::sleep(Duration::from_millis(2)).await;
                buf.buf_index()
            }));
        }
        until(100, "the waiters queued", || pool.stats().waiting == 3).await;
        assert_eq!(order.get(), 0, "nobody got a buffer while it was held");
        let index = held.buf_index();
        drop(held);
        for waiter in waiters {
            assert_eq!(waiter.await.unwrap(), index);
        }
        let stats = pool.stats();
        assert_eq!((stats.available, stats.waiting, stats.waited), (1, 0, 3));
    });
}

#[test]
fn a_dropped_waiter_passes_its_buffer_on() {
    Runtime::new().unwrap().block_on(async {
        let pool = FixedBufPool::new(1, 512).unwrap();
        let held = pool.try_get().unwrap();
        let first = {
            let pool = pool.clone();
            spawn(async move { drop(pool.get().await) })
        };
        let second = {
            let pool = pool.clone();
            spawn(async move { pool.get().await.buf_index() })
        };
        until(100, "both queued", || pool.stats().waiting == 2).await;
        // The first waiter is granted the buffer and dropped before it takes it.
        drop(held);
        first.abort();
        assert!(
            second.await.is_ok(),
            "the grant moved on to the second waiter"
        );
        assert_eq!(pool.available(), 1);

        // A waiter that times out leaves the queue.
        let _held = pool.try_get().unwrap();
        let timed_out = iomgr::time::timeout(Duration::from_millis(5), pool.get()).await;
        assert!(timed_out.is_err());
        assert_eq!(pool.stats().waiting, 0);
    });
}

#[test]
fn read_fixed_and_write_fixed_on_a_file() {
    let dir = TempDir::new("fixed-file");
    let path = dir.join("data");
    Runtime::new().unwrap().block_on(async {
        let pool = FixedBufPool::new(4, 8192).unwrap();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .open(&path)
            .await
            .unwrap();
        let data = pattern(8192, 7);
        let mut out = pool.try_get().unwrap();
        out.extend_from_slice(&data);
        let (res, out) = file.write_fixed_at(out, 4096).await;
        assert_eq!(res.unwrap(), 8192);
        assert_eq!(out.len(), 8192, "the buffer comes back unchanged");

        let (res, back) = file.read_fixed_at(pool.try_get().unwrap(), 4096).await;
        assert_eq!(res.unwrap(), 8192);
        assert_eq!(&back[..], &data[..]);

        // A slice of a fixed buffer is a fixed buffer: read into its second half.
        let (res, half) = file
            .read_fixed_at(pool.try_get().unwrap().slice(4096..8192), 4096)
            .await;
        assert_eq!(res.unwrap(), 4096);
        assert_eq!(&half[..], &data[..4096]);
        assert_eq!(
            half.get_ref().len(),
            8192,
            "bytes before the slice were zeroed"
        );

        // A fixed buffer works with plain ops too.
        let (res, plain) = file.read_at(pool.try_get().unwrap(), 4096 + 100).await;
        assert_eq!(res.unwrap(), 8092);
        assert_eq!(&plain[..], &data[100..]);

        // write_all / read_exact loops, and the end of the file.
        drop(plain);
        let mut whole = pool.try_get().unwrap();
        whole.resize(8192, 0xaa);
        let (res, whole) = file.write_all_fixed_at(whole, 0).await;
        res.unwrap();
        drop(whole);
        let (res, _) = file
            .read_exact_fixed_at(pool.try_get().unwrap(), 8192)
            .await;
        assert_eq!(res.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        drop((out, back, half));
        assert_eq!(pool.available(), 4);
        assert_eq!(std::fs::read(&path).unwrap()[..8192], vec![0xaa; 8192][..]);
    });
}

#[test]
fn read_fixed_and_write_fixed_on_tcp_unix_and_udp_sockets() {
    Runtime::new().unwrap().block_on(async {
        let pool = FixedBufPool::new(4, 4096).unwrap();

        // TCP, both ways, through write_all_fixed and read_exact_fixed.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let mut out = pool.try_get().unwrap();
        out.extend_from_slice(&pattern(4096, 1));
        let (res, out) = client.write_all_fixed(out).await;
        res.unwrap();
        let (res, got) = server.read_exact_fixed(pool.try_get().unwrap()).await;
        res.unwrap();
        assert_eq!(&got[..], &out[..]);
        let (res, _) = server.write_fixed(got.slice(..10)).await;
        assert_eq!(res.unwrap(), 10);
        let (res, back) = client.read_fixed(pool.try_get().unwrap()).await;
        assert_eq!(res.unwrap(), 10);
        assert_eq!(&back[..], &pattern(4096, 1)[..10]);
        drop((out, back));

        // Unix stream: the end of the stream is a read of 0.
        let (a, b) = UnixStream::pair().unwrap();
        let mut msg = pool.try_get().unwrap();
        msg.extend_from_slice(b"over a unix socket");
        let (res, msg) = a.write_fixed(msg).await;
        assert_eq!(res.unwrap(), msg.len());
        drop(a);
        let (res, got) = b.read_fixed(pool.try_get().unwrap()).await;
        assert_eq!(&got[..res.unwrap()], b"over a unix socket");
        let (res, _) = b.read_fixed(got).await;
        assert_eq!(res.unwrap(), 0);
        drop(msg);

        // Connected UDP: one datagram each way with WRITE_FIXED / READ_FIXED.
        let u1 = UdpSocket::bind("127.0.0.1:0").unwrap();
        let u2 = UdpSocket::bind("127.0.0.1:0").unwrap();
        u1.connect(u2.local_addr().unwrap()).unwrap();
        let mut dgram = pool.try_get().unwrap();
        dgram.extend_from_slice(b"datagram");
        let (res, _) = u1.write_fixed(dgram).await;
        assert_eq!(res.unwrap(), 8);
        let (res, got) = u2.read_fixed(pool.try_get().unwrap()).await;
        assert_eq!(&got[..res.unwrap()], b"datagram");
        drop(got);
        assert_eq!(pool.available(), 4);
    });
}

const SIGPIPE_CHILD_ENV: &str = "IOMGR_TEST_FIXED_SIGPIPE_CHILD";

/// `WRITE_FIXED` on a socket goes through `sock_write_iter`, which raises SIGPIPE on a closed
/// peer; `write_fixed` sends with MSG_NOSIGNAL instead, so a process with SIGPIPE at its
/// default survives.
#[test]
fn write_fixed_to_a_closed_peer_is_epipe_even_with_sigpipe_at_its_default() {
    if in_child(SIGPIPE_CHILD_ENV) {
        restore_default_sigpipe();
        Runtime::new().unwrap().block_on(async {
            let pool = FixedBufPool::new(1, 64).unwrap();
            let (a, b) = UnixStream::pair().unwrap();
            drop(b);
            let mut buf = pool.try_get().unwrap();
            buf.extend_from_slice(b"anyone?");
            let (res, buf) = a.write_fixed(buf).await;
            let err = res.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err:?}");
            assert_eq!(&buf[..], b"anyone?", "the buffer comes back");
            let registered = a.register().unwrap();
            let (res, _) = registered.write_fixed(buf).await;
            assert_eq!(res.unwrap_err().kind(), io::ErrorKind::BrokenPipe);
            println!("child survived: {err}");
        });
        return;
    }
    let stdout = rerun_in_child(
        "write_fixed_to_a_closed_peer_is_epipe_even_with_sigpipe_at_its_default",
        SIGPIPE_CHILD_ENV,
    );
    assert!(stdout.contains("child survived: "), "{stdout}");
}

#[test]
fn a_fixed_buffer_stays_checked_out_until_the_last_cqe_of_a_dropped_op() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let pool = FixedBufPool::new(2, 4096).unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        {
            let read = a.read_fixed(pool.try_get().unwrap());
            let mut read = std::pin::pin!(read);
            // Poll once (queued), then let a tick submit it: the kernel now holds the buffer.
            assert!(futures_poll_once(read.as_mut()).await.is_none());
            iomgr::yield_now().await;
            iomgr::yield_now().await;
            assert_eq!(pool.available(), 1);
        } // dropped in flight: the buffer moves to the driver, an AsyncCancel is queued
        assert_eq!(
            pool.available(),
            1,
            "still out while the kernel may write into it"
        );
        until(100, "the cancelled read completed", || {
            pool.available() == 2
        })
        .await;

        // The same with a read that is never submitted: the buffer comes back at once.
        {
            let read = a.read_fixed(pool.try_get().unwrap());
            let mut read = std::pin::pin!(read);
            assert!(futures_poll_once(read.as_mut()).await.is_none());
        }
        assert_eq!(
            pool.available(),
            2,
            "a withdrawn SQE returns the buffer immediately"
        );

        // Data written after all that still arrives in order.
        let (res, _) = b.write(b"after".as_slice()).await;
        res.unwrap();
        let (res, buf) = a.read_fixed(pool.try_get().unwrap()).await;
        assert_eq!(&buf[..res.unwrap()], b"after");
    });
    assert_eq!(rt.ops_in_flight(), 0);
}

/// Polls `fut` once inside the runtime; `Some` if it finished.
async fn futures_poll_once<F: std::future::Future>(
    fut: std::pin::Pin<&mut F>,
) -> Option<F::Output> {
    let mut fut = Some(fut);
    std::future::poll_fn(|cx| {
        let polled = fut.take().unwrap().poll(cx);
        std::task::Poll::Ready(match polled {
            std::task::Poll::Ready(out) => Some(out),
            std::task::Poll::Pending => None,
        })
    })
    .await
}

#[test]
fn a_fixed_buffer_of_another_runtime_is_an_error_not_a_wrong_buffer() {
    let dir = TempDir::new("fixed-foreign");
    let path = dir.join("f");
    std::fs::write(&path, b"contents").unwrap();
    let rt_a = Runtime::new().unwrap();
    let (pool, buf) = rt_a.block_on(async {
        let pool = FixedBufPool::new(1, 64).unwrap();
        let buf = pool.try_get().unwrap();
        (pool, buf)
    });
    let rt_b = Runtime::new().unwrap();
    rt_b.block_on(async {
        let file = File::open(&path).await.unwrap();
        let (res, buf) = file.read_fixed_at(buf, 0).await;
        let err = res.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(
            err.to_string().contains("but it was submitted on runtime"),
            "{err}"
        );
        assert!(buf.is_empty(), "nothing was read");
        // A pool on this runtime works, and its slots may be the same numbers.
        let local = FixedBufPool::new(1, 64).unwrap();
        let (res, b) = file.read_fixed_at(local.try_get().unwrap(), 0).await;
        assert_eq!(&b[..res.unwrap()], b"contents");
        drop(buf);
    });
    drop(pool);
}

#[test]
fn no_runtime_and_bad_sizes_are_errors() {
    let err = FixedBufPool::new(4, 4096).unwrap_err();
    assert!(err.to_string().contains("needs a running runtime"), "{err}");
    Runtime::new().unwrap().block_on(async {
        for (count, size) in [(0, 4096), (5000, 4096), (4, 0), (1, (1 << 30) + 1)] {
            let err = FixedBufPool::new(count, size).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        }
        // The table has 4096 slots: pools share it and give their slots back.
        let big = FixedBufPool::new(4000, 64).unwrap();
        let err = FixedBufPool::new(200, 64).unwrap_err();
        assert!(err.to_string().contains("registered-buffer table"), "{err}");
        drop(big);
        let again = FixedBufPool::new(4096, 64).unwrap();
        assert_eq!(again.slots(), 0..4096);
    });
}

#[test]
fn churn_leaves_every_buffer_in_the_pool() {
    let dir = TempDir::new("fixed-churn");
    let path = dir.join("f");
    std::fs::write(&path, pattern(64 * 1024, 3)).unwrap();
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let pool = FixedBufPool::new(8, 4096).unwrap();
        let file = Rc::new(File::open(&path).await.unwrap());
        let mut tasks = Vec::new();
        for t in 0..16u64 {
            let (pool, file) = (pool.clone(), file.clone());
            tasks.push(spawn(async move {
                for i in 0..50u64 {
                    let buf = pool.get().await;
                    let offset = ((t * 50 + i) % 16) * 4096;
                    if i % 7 == 3 {
                        // Some reads are abandoned right after being queued or submitted.
                        let read = file.read_fixed_at(buf, offset);
                        let _ = iomgr::time::timeout(Duration::from_micros(1), read).await;
                        continue;
                    }
                    let (res, buf) = file.read_fixed_at(buf, offset).await;
                    assert_eq!(res.unwrap(), 4096);
                    assert_eq!(&buf[..], &pattern(64 * 1024, 3)[offset as usize..][..4096]);
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        until(100, "abandoned reads completed", || pool.available() == 8).await;
        let stats = pool.stats();
        assert_eq!((stats.in_use, stats.waiting, stats.quarantined), (0, 0, 0));
        assert_eq!(stats.checkouts, 16 * 50);
    });
    assert_eq!(rt.ops_in_flight(), 0);
}

#[cfg(debug_assertions)]
#[test]
#[should_panic(expected = "was written past its end: guard byte 0 after its 100 usable bytes")]
fn a_write_past_the_end_of_a_fixed_buffer_panics_when_it_returns() {
    Runtime::new().unwrap().block_on(async {
        let pool = FixedBufPool::new(2, 100).unwrap();
        let mut buf = pool.try_get().unwrap();
        // SAFETY: byte 100 is the first guard byte: inside the pool's allocation (debug
        // builds put 16 guard bytes after the 100 usable ones, within the buffer's stride),
        // which stays allocated while `buf` holds the pool, and nothing else uses it. The
        // write is the bug the guard catches, not an out-of-bounds access.
        unsafe {
            iomgr::buf::IoBufMut::stable_mut_ptr(&mut buf)
                .add(100)
                .write(0x41)
        };
        drop(buf);
    });
}

#[test]
#[should_panic(expected = "was returned to its pool twice")]
fn a_fixed_buffer_returned_twice_panics() {
    Runtime::new().unwrap().block_on(async {
        let pool = FixedBufPool::new(1, 64).unwrap();
        let buf = pool.try_get().unwrap();
        std::mem::forget(pool.clone()); // the count the uncounted copy's drop will take
        // SAFETY: the duplicate owner is the bug being detected. It shares the pool's `Rc`
        // without counting it; the forgotten clone above pays for that, so the pool's memory
        // outlives both copies, and neither copy touches the buffer's bytes.
        let copy = unsafe { std::ptr::read(&buf) };
        drop(buf);
        let _reused = pool.try_get().unwrap();
        drop(copy);
    });
}

#[test]
fn checkout_fixed_io_waiting_and_return_allocate_nothing_after_warm_up() {
    let dir = TempDir::new("fixed-alloc");
    let path = dir.join("f");
    std::fs::write(&path, pattern(16 * 4096, 9)).unwrap();
    Runtime::new().unwrap().block_on(async {
        let pool = FixedBufPool::new(2, 4096).unwrap();
        let file = File::open(&path).await.unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        let expected = pattern(16 * 4096, 9);
        let rounds = |n: u64| {
            let (pool, file, a, b, expected) = (&pool, &file, &a, &b, &expected);
            async move {
                for i in 0..n {
                    let offset = (i % 16) * 4096;
                    let (res, buf) = file.read_fixed_at(pool.get().await, offset).await;
                    assert_eq!(res.unwrap(), 4096);
                    let (res, buf) = a.write_all_fixed(buf.slice(..64)).await;
                    res.unwrap();
                    let held = buf.into_inner();
                    // The pool has one buffer left: take it, then wait for `held`, which
                    // a second future returns (exercising the waiter queue).
                    let other = pool.get().await;
                    let waiting = pool.get();
                    let ((), got) = iomgr::future::join(async move { drop(held) }, waiting).await;
                    let (res, got) = b.read_exact_fixed(got.slice(..64)).await;
                    res.unwrap();
                    assert_eq!(&got[..], &expected[offset as usize..][..64]);
                    drop(other);
                }
            }
        };
        rounds(20).await;
        let ((), allocations) = allocations_during(rounds(500)).await;
        assert_eq!(
            allocations, 0,
            "allocations in 500 rounds of checkout, fixed I/O, wait, return"
        );
    });
}

const MEMLOCK_CHILD_ENV: &str = "IOMGR_TEST_FIXED_MEMLOCK_CHILD";

/// Drops `CAP_IPC_LOCK` from this thread's effective capabilities (root keeps the rest), so
/// that io_uring charges pinned memory to `RLIMIT_MEMLOCK`. False if it could not.
fn drop_ipc_lock() -> bool {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    const CAP_IPC_LOCK: u32 = 14;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget writes two `Data` for version 3 into a live array; the header is live.
    if unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) } != 0 {
        return false;
    }
    data[0].effective &= !(1 << CAP_IPC_LOCK);
    // SAFETY: capset reads the live header and two `Data`.
    unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) == 0 }
}

#[test]
fn a_locked_memory_limit_too_small_for_the_pool_is_an_error_that_says_so() {
    if in_child(MEMLOCK_CHILD_ENV) {
        let limit = libc::rlimit {
            rlim_cur: 64 * 1024,
            rlim_max: 64 * 1024,
        };
        // SAFETY: a valid resource and a live struct.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit) }, 0);
        if !drop_ipc_lock() {
            println!("child skipped: could not drop CAP_IPC_LOCK");
            return;
        }
        Runtime::new().unwrap().block_on(async {
            // 16 MiB to pin (how much the kernel charges for memory never touched varies:
            // it charged 192 KiB for a fresh 4 MiB pool on Linux 6.18).
            let err = FixedBufPool::new(16, 1 << 20).unwrap_err();
            println!("child error: {err}");
            assert!(err.to_string().contains("RLIMIT_MEMLOCK"), "{err}");
            assert!(err.to_string().contains("is 64 KiB"), "{err}");
            assert_eq!(err.kind(), io::ErrorKind::OutOfMemory);
            // A pool that fits works, and the failed one left its slots free.
            let small = FixedBufPool::new(4, 4096).unwrap();
            assert_eq!(small.slots(), 0..4);
        });
        return;
    }
    let stdout = rerun_in_child(
        "a_locked_memory_limit_too_small_for_the_pool_is_an_error_that_says_so",
        MEMLOCK_CHILD_ENV,
    );
    assert!(
        stdout.contains("child error: ") || stdout.contains("child skipped"),
        "{stdout}"
    );
    println!("{stdout}");
}
