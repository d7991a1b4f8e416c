//! Thread-per-core launches: `Builder::threads(n).run(f)`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use iomgr::net::{TcpListener, TcpStream};
use iomgr::runtime::{StopReason, ThreadError};
use iomgr::time::{sleep, timeout};

#[test]
fn every_thread_runs_its_future_on_its_own_runtime() {
    let results = iomgr::Builder::new()
        .threads(3)
        .stop_on_signals(false)
        .run(|thread| async move {
            sleep(Duration::from_millis(1)).await;
            (
                thread.index(),
                thread.threads(),
                std::thread::current().name().map(String::from),
            )
        })
        .unwrap();
    let got: Vec<_> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        got,
        (0..3)
            .map(|i| (i, 3, Some(format!("iomgr-{i}"))))
            .collect::<Vec<_>>()
    );
}

#[test]
fn threads_share_a_port_with_reuseport() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    const CONNECTIONS: usize = 40;
    let served = Arc::new(AtomicUsize::new(0));
    let per_thread: Vec<AtomicUsize> = (0..2).map(|_| AtomicUsize::new(0)).collect();
    let bound = AtomicUsize::new(0);
    let client = {
        let served = served.clone();
        std::thread::spawn(move || {
            iomgr::Runtime::new().unwrap().block_on(async {
                // Wait until both threads listen, then connect and ping each connection.
                let addr = ("127.0.0.1", port);
                for _ in 0..CONNECTIONS {
                    let s = loop {
                        match TcpStream::connect(addr).await {
                            Ok(s) => break s,
                            Err(_) => sleep(Duration::from_millis(5)).await,
                        }
                    };
                    let (r, _) = s.write_all(b"x".to_vec()).await;
                    r.unwrap();
                    let (r, _) = s.read(vec![0u8; 1]).await;
                    assert_eq!(r.unwrap(), 1);
                }
                served.load(Ordering::SeqCst)
            })
        })
    };
    let results = iomgr::Builder::new()
        .threads(2)
        .pin_to_cores(true)
        .stop_on_signals(false)
        .run(|thread| {
            let (served, per_thread, bound) = (&served, &per_thread, &bound);
            async move {
                let listener = TcpListener::bind_reuseport(("127.0.0.1", port))?;
                bound.fetch_add(1, Ordering::SeqCst);
                while served.load(Ordering::SeqCst) < CONNECTIONS {
                    let Ok(accepted) = timeout(Duration::from_millis(20), listener.accept()).await
                    else {
                        continue;
                    };
                    let (s, _) = accepted?;
                    let (r, b) = s.read(vec![0u8; 1]).await;
                    r?;
                    let (r, _) = s.write_all(b).await;
                    r?;
                    per_thread[thread.index()].fetch_add(1, Ordering::SeqCst);
                    served.fetch_add(1, Ordering::SeqCst);
                }
                std::io::Result::Ok(())
            }
        })
        .unwrap();
    for r in results {
        r.unwrap().unwrap();
    }
    assert_eq!(bound.load(Ordering::SeqCst), 2);
    let counts: Vec<usize> = per_thread
        .iter()
        .map(|c| c.load(Ordering::SeqCst))
        .collect();
    assert_eq!(counts.iter().sum::<usize>(), CONNECTIONS, "{counts:?}");
    assert!(client.join().unwrap() >= CONNECTIONS - 1);
}

#[test]
fn a_panic_in_one_thread_is_reported_and_stops_the_others() {
    let results = iomgr::Builder::new()
        .threads(2)
        .stop_on_signals(false)
        .run(|thread| async move {
            if thread.index() == 1 {
                sleep(Duration::from_millis(5)).await;
                panic!("thread one gives up");
            }
            // Thread 0 would wait forever: it is stopped because thread 1 failed.
            std::future::pending::<()>().await;
        })
        .unwrap();
    match &results[1] {
        Err(ThreadError::Panicked(m)) => assert_eq!(m, "thread one gives up"),
        other => panic!("thread 1: {other:?}"),
    }
    match &results[0] {
        Err(ThreadError::Stopped(StopReason::ThreadFailed(1))) => {}
        other => panic!("thread 0: {other:?}"),
    }
    assert_eq!(
        results[0].as_ref().unwrap_err().to_string(),
        "it was stopped (thread 1 failed)"
    );
}

#[test]
fn a_thread_may_finish_cleanly_within_the_grace_period() {
    let results = iomgr::Builder::new()
        .threads(2)
        .stop_on_signals(false)
        .grace_period(Duration::from_secs(5))
        .run(|thread| async move {
            if thread.index() == 0 {
                sleep(Duration::from_millis(5)).await;
                panic!("boom");
            }
            let reason = thread.stopped().await;
            // Clean-up that takes a while, well within the grace period.
            sleep(Duration::from_millis(10)).await;
            format!("closed after {reason}")
        })
        .unwrap();
    assert!(matches!(results[0], Err(ThreadError::Panicked(_))));
    assert_eq!(results[1].as_ref().unwrap(), "closed after thread 0 failed");
}

#[test]
fn a_runtime_that_cannot_start_is_reported() {
    let results = iomgr::Builder::new()
        .entries(0)
        .threads(2)
        .stop_on_signals(false)
        .run(|_| async {})
        .unwrap();
    for r in results {
        match r {
            Err(ThreadError::Start(e)) => assert!(e.to_string().contains("entries"), "{e}"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn sigterm_stops_every_thread() {
    // The signal is sent to this thread only (tgkill): it blocks it while `run` runs and reads
    // it from the signalfd, so the test harness's other threads never see it.
    // SAFETY: gettid has no preconditions.
    let runner = unsafe { libc::gettid() };
    let started = Instant::now();
    let results = iomgr::Builder::new()
        .threads(2)
        .run(|thread| async move {
            if thread.index() == 0 {
                sleep(Duration::from_millis(20)).await;
                // SAFETY: sends SIGTERM to the runner thread of this process, which blocks it.
                unsafe {
                    libc::syscall(libc::SYS_tgkill, libc::getpid(), runner, libc::SIGTERM);
                }
            }
            std::future::pending::<()>().await;
        })
        .unwrap();
    for r in &results {
        match r {
            Err(ThreadError::Stopped(StopReason::Signal(libc::SIGTERM))) => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    // The mask is restored: SIGTERM is no longer blocked in this thread.
    // SAFETY: reads this thread's mask into a valid sigset_t.
    unsafe {
        let mut mask: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask);
        assert_eq!(libc::sigismember(&mask, libc::SIGTERM), 0);
    }
}
