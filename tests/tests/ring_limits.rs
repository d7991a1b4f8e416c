//! The edges of the ring: io_uring refused by the kernel, a tiny SQ and CQ under load.

use std::time::Duration;

use iomgr::Runtime;
use iomgr::net::UnixStream;
use iomgr_tests::{in_child, rerun_in_child};

const CHILD_ENV: &str = "IOMGR_TEST_SECCOMP_CHILD";

/// Refuses `io_uring_setup` with `EPERM` for this process, as `kernel.io_uring_disabled`
/// (or a container's seccomp policy) does.
fn refuse_io_uring_setup() {
    let nr = libc::SYS_io_uring_setup as u32;
    let ld_nr = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let filter = [
        // A = seccomp_data.nr (offset 0)
        libc::sock_filter {
            code: ld_nr as u16,
            jt: 0,
            jf: 0,
            k: 0,
        },
        // if A == io_uring_setup, fall through to EPERM, else skip it
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: nr,
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ALLOW,
        },
    ];
    let program = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: plain prctl calls; `program` and `filter` outlive them (the kernel copies the
    // filter), and the filter only turns one syscall into an error.
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        assert_eq!(
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &program as *const libc::sock_fprog
            ),
            0
        );
    }
}

#[test]
fn runtime_new_explains_that_io_uring_is_disabled() {
    if in_child(CHILD_ENV) {
        // In the child: io_uring is refused for this process only.
        refuse_io_uring_setup();
        let err = Runtime::new().expect_err("io_uring_setup is refused");
        assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
        let msg = err.to_string();
        assert!(msg.contains("io_uring"), "{msg}");
        assert!(msg.contains("kernel.io_uring_disabled"), "{msg}");
        println!("child saw: {msg}");
        return;
    }
    let stdout = rerun_in_child("runtime_new_explains_that_io_uring_is_disabled", CHILD_ENV);
    assert!(stdout.contains("child saw: "), "{stdout}");
}

#[test]
fn a_tiny_ring_runs_hundreds_of_concurrent_ops() {
    // 4 SQ entries and 8 CQ entries for 600 ops in flight at once: the SQ fills (and is
    // flushed mid-tick) and the CQ overflows (and is drained by the next enter).
    let rt = Runtime::builder().entries(4).cq_entries(8).build().unwrap();
    let total = rt.block_on(async {
        let mut handles = Vec::new();
        for i in 0..200u32 {
            handles.push(iomgr::spawn(async move {
                let (a, b) = UnixStream::pair().unwrap();
                let read = iomgr::spawn(async move {
                    let (res, buf) = b.read_exact(Vec::with_capacity(4)).await;
                    res.unwrap();
                    u32::from_le_bytes(buf.try_into().unwrap())
                });
                iomgr::time::sleep(Duration::from_millis(1)).await;
                let (res, _) = a.write_all(i.to_le_bytes().to_vec()).await;
                res.unwrap();
                read.await.unwrap()
            }));
        }
        let mut total = 0u64;
        for h in handles {
            total += u64::from(h.await.unwrap());
        }
        total
    });
    assert_eq!(total, (0..200u64).sum());
    assert_eq!(rt.ops_in_flight(), 0);
}

#[test]
fn bad_ring_sizes_are_named_not_blamed_on_the_kernel() {
    let build = |entries: u32, cq: Option<u32>| {
        let mut builder = Runtime::builder();
        builder.entries(entries);
        if let Some(cq) = cq {
            builder.cq_entries(cq);
        }
        let err = builder.build().expect_err("a bad ring size is refused");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
        let msg = err.to_string();
        for wrong in ["too old", "RLIMIT_MEMLOCK", "kernel"] {
            assert!(!msg.contains(wrong), "blames {wrong:?}: {msg}");
        }
        msg
    };
    let msg = build(0, None);
    assert!(
        msg.contains("entries(0)") && msg.contains("at least 1"),
        "{msg}"
    );
    let msg = build(1 << 16, None);
    assert!(
        msg.contains("entries(65536)") && msg.contains("32768"),
        "{msg}"
    );
    let msg = build(256, Some(0));
    assert!(
        msg.contains("cq_entries(0)") && msg.contains("at least 1"),
        "{msg}"
    );
    let msg = build(256, Some(100));
    assert!(
        msg.contains("cq_entries(100)") && msg.contains("entries (256)"),
        "{msg}"
    );
    let msg = build(64, Some(1 << 17));
    assert!(
        msg.contains("cq_entries(131072)") && msg.contains("65536"),
        "{msg}"
    );
    // Once sized from `entries` before the ring refused it: an allocation abort.
    let msg = build(u32::MAX, None);
    assert!(msg.contains("entries(4294967295)"), "{msg}");

    // The edges that are valid still build (sizes are rounded up to powers of two).
    Runtime::builder().entries(1).build().unwrap();
    Runtime::builder()
        .entries(200)
        .cq_entries(129)
        .build()
        .unwrap();
}
