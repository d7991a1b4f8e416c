//! The executor: spawning, joining, aborting, panics, wakes from other threads.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use iomgr::{JoinError, Runtime, spawn, yield_now};

#[test]
fn block_on_returns_the_output() {
    let rt = Runtime::new().unwrap();
    assert_eq!(rt.block_on(async { 1 + 1 }), 2);
    // A runtime can be reused.
    assert_eq!(rt.block_on(async { "again" }), "again");
}

#[test]
fn spawned_tasks_run_and_join() {
    let rt = Runtime::new().unwrap();
    let total = rt.block_on(async {
        let handles: Vec<_> = (0..100u64).map(|i| spawn(async move { i * 2 })).collect();
        let mut total = 0;
        for h in handles {
            total += h.await.unwrap();
        }
        total
    });
    assert_eq!(total, (0..100u64).map(|i| i * 2).sum());
}

#[test]
fn tasks_may_use_rc_and_cell() {
    let rt = Runtime::new().unwrap();
    let counter = Rc::new(Cell::new(0));
    rt.block_on(async {
        let mut handles = Vec::new();
        for _ in 0..10 {
            let counter = counter.clone();
            handles.push(spawn(async move {
                for _ in 0..10 {
                    counter.set(counter.get() + 1);
                    yield_now().await;
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
    });
    assert_eq!(counter.get(), 100);
}

#[test]
fn a_panicking_task_is_reported_and_the_others_keep_running() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let survivor = spawn(async {
            iomgr::time::sleep(Duration::from_millis(5)).await;
            "still here"
        });
        let err = spawn(async { panic!("boom") }).await.unwrap_err();
        assert!(err.is_panic());
        assert_eq!(err.to_string(), "task panicked: boom");
        assert_eq!(survivor.await.unwrap(), "still here");
    });
}

#[test]
fn abort_cancels_a_pending_task() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let dropped = Rc::new(Cell::new(false));
        struct SetOnDrop(Rc<Cell<bool>>);
        impl Drop for SetOnDrop {
            fn drop(&mut self) {
                self.0.set(true);
            }
        }
        let guard = SetOnDrop(dropped.clone());
        let handle = spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        });
        yield_now().await;
        assert!(!handle.is_finished());
        handle.abort();
        let err: JoinError = handle.await.unwrap_err();
        assert!(err.is_cancelled(), "{err}");
        assert!(dropped.get(), "the task's future must be dropped on abort");
    });
    assert_eq!(rt.tasks_alive(), 0);
}

#[test]
fn detached_tasks_keep_running_and_finish_on_a_later_block_on() {
    let rt = Runtime::new().unwrap();
    let done = Rc::new(Cell::new(false));
    let flag = done.clone();
    rt.block_on(async move {
        drop(spawn(async move {
            iomgr::time::sleep(Duration::from_millis(2)).await;
            flag.set(true);
        }));
    });
    assert!(!done.get());
    rt.block_on(iomgr::time::sleep(Duration::from_millis(20)));
    assert!(done.get());
}

#[test]
fn dropping_the_runtime_drops_unfinished_tasks() {
    let dropped = Rc::new(Cell::new(0));
    {
        let rt = Runtime::new().unwrap();
        let d = dropped.clone();
        rt.block_on(async move {
            for _ in 0..3 {
                let d = d.clone();
                spawn(async move {
                    struct Count(Rc<Cell<u32>>);
                    impl Drop for Count {
                        fn drop(&mut self) {
                            self.0.set(self.0.get() + 1);
                        }
                    }
                    let _c = Count(d);
                    iomgr::time::sleep(Duration::from_secs(3600)).await;
                });
            }
            yield_now().await;
        });
        assert_eq!(rt.tasks_alive(), 3);
    }
    assert_eq!(dropped.get(), 3);
}

/// A future completed by another thread through a plain `Waker`.
struct Remote {
    state: Arc<Mutex<(bool, Option<Waker>)>>,
}

impl Future for Remote {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.state.lock().unwrap();
        if state.0 {
            Poll::Ready(())
        } else {
            state.1 = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

#[test]
fn a_waker_woken_from_another_thread_wakes_the_runtime() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        // Both the main future and a spawned task are woken from other threads while the
        // runtime is blocked in its ring wait.
        for _ in 0..20 {
            let state = Arc::new(Mutex::new((false, None::<Waker>)));
            let remote = state.clone();
            let task = spawn(Remote {
                state: state.clone(),
            });
            let thread = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(2));
                let mut s = remote.lock().unwrap();
                s.0 = true;
                s.1.take().expect("the task registered its waker").wake();
            });
            task.await.unwrap();
            thread.join().unwrap();
            Remote { state }.await;
        }
    });
}

#[test]
fn block_on_inside_block_on_is_refused_with_a_clear_message() {
    let rt = Runtime::new().unwrap();
    let inner = Runtime::new().unwrap();
    rt.block_on(async {
        let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            inner.block_on(async {});
        }))
        .unwrap_err();
        let msg = err.downcast_ref::<&str>().copied().unwrap_or_default();
        assert!(msg.contains("already running"), "{msg}");
    });
}

#[test]
fn ops_outside_a_runtime_fail_with_an_error() {
    let socket = iomgr::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let fut = socket.recv(vec![0u8; 16]);
    // Poll it once with a no-op waker, outside any runtime.
    let mut fut = std::pin::pin!(fut);
    let waker = Waker::noop();
    let mut cx = Context::from_waker(waker);
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready((Err(e), buf)) => {
            assert!(e.to_string().contains("no iomgr runtime"), "{e}");
            assert_eq!(buf.capacity(), 16, "the buffer comes back");
        }
        other => panic!("expected an error, got {:?}", other.is_ready()),
    }
}

#[test]
fn ring_flags_report_what_the_kernel_accepted() {
    let plain = Runtime::builder()
        .single_issuer(false)
        .defer_taskrun(false)
        .coop_taskrun(false)
        .build()
        .unwrap();
    assert_eq!(plain.ring_flags(), iomgr::runtime::RingFlags::default());
    // The fallback path still runs I/O.
    plain.block_on(iomgr::time::sleep(Duration::from_millis(1)));
}

#[test]
fn a_handle_spawns_from_other_threads_and_runtimes() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    let rt = Runtime::new().unwrap();
    let handle = rt.handle();
    let finished = Arc::new(AtomicUsize::new(0));
    let thread =
        |body: Box<dyn FnOnce(iomgr::runtime::Handle) -> Result<i32, JoinError> + Send>| {
            let handle = handle.clone();
            let finished = finished.clone();
            std::thread::spawn(move || {
                let result = body(handle);
                finished.fetch_add(1, Ordering::SeqCst);
                result
            })
        };
    // From a plain thread, waiting synchronously; the task is !Send, built on the runtime.
    let plain = thread(Box::new(|handle| {
        handle
            .spawn(|| async {
                let local = Rc::new(Cell::new(20));
                iomgr::time::sleep(Duration::from_millis(1)).await;
                local.get() + 1
            })
            .wait()
    }));
    // From another runtime, awaiting.
    let other = thread(Box::new(|handle| {
        let rt2 = Runtime::new().unwrap();
        rt2.block_on(async move { handle.spawn(|| async { 2 }).await })
    }));
    // A panic is reported as such.
    let panicking = thread(Box::new(|handle| {
        handle.spawn(|| async { panic!("remote boom") }).wait()
    }));
    // Drive the runtime until all three have their answer.
    rt.block_on(async {
        while finished.load(Ordering::SeqCst) < 3 {
            iomgr::time::sleep(Duration::from_millis(1)).await;
        }
    });
    assert_eq!(plain.join().unwrap().unwrap(), 21);
    assert_eq!(other.join().unwrap().unwrap(), 2);
    let err = panicking.join().unwrap().unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.to_string(), "task panicked: remote boom");
}

#[test]
fn a_handle_to_a_dropped_runtime_reports_cancellation() {
    let rt = Runtime::new().unwrap();
    let handle = rt.handle();
    // Queued but never run: the runtime is dropped first.
    let queued = handle.spawn(|| async { 1 });
    drop(rt);
    assert!(queued.wait().unwrap_err().is_cancelled());
    // Sent after the runtime is gone.
    let late = handle.spawn(|| async { 2 });
    assert!(late.wait().unwrap_err().is_cancelled());
}

#[test]
fn a_join_handle_polled_after_completion_panics_instead_of_hanging() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let mut handle = spawn(async { 1 });
        assert_eq!((&mut handle).await.unwrap(), 1);
        let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut cx = Context::from_waker(Waker::noop());
            let _ = Pin::new(&mut handle).poll(&mut cx);
        }));
        assert!(again.is_err());
    });
}

#[test]
fn a_panicking_handle_spawn_recipe_is_a_panicked_join_error() {
    let rt = Runtime::new().unwrap();
    let handle = rt.handle();
    // The recipe (not the task) panics, on the runtime's thread, inside `block_on`.
    let bad = handle.spawn(|| -> std::future::Ready<i32> { panic!("recipe boom") });
    let good = handle.spawn(|| async { 5 });
    let (bad, good, sibling) = rt.block_on(async {
        let sibling = spawn(async {
            iomgr::time::sleep(Duration::from_millis(5)).await;
            1
        });
        (bad.await, good.await, sibling.await)
    });
    let err = bad.unwrap_err();
    assert!(err.is_panic(), "{err:?}");
    assert_eq!(err.to_string(), "task panicked: recipe boom");
    assert_eq!(good.unwrap(), 5, "the recipe queued after it still ran");
    assert_eq!(sibling.unwrap(), 1, "the runtime's other tasks went on");
    // The runtime is still usable.
    assert_eq!(rt.block_on(handle.spawn(|| async { 6 })).unwrap(), 6);
}

/// A group whose members share their join handles, so any member can cancel them all.
type Group = Rc<std::cell::RefCell<Vec<iomgr::JoinHandle<()>>>>;

#[test]
fn a_task_may_abort_its_whole_group_itself_included_while_it_runs() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let group = Group::default();
        let steps_after_abort = Rc::new(Cell::new(0));
        for member in 0..4 {
            let group2 = group.clone();
            let steps = steps_after_abort.clone();
            let handle = spawn(async move {
                if member != 2 {
                    return std::future::pending().await;
                }
                yield_now().await;
                for handle in group2.borrow().iter() {
                    assert!(!handle.is_finished());
                    handle.abort();
                }
                // Aborting is a request: this poll goes on, and the task still runs.
                assert!(!group2.borrow()[2].is_finished());
                steps.set(steps.get() + 1);
                yield_now().await;
                steps.set(steps.get() + 100); // never: the abort takes effect here
            });
            group.borrow_mut().push(handle);
        }
        while !group.borrow().iter().all(|h| h.is_finished()) {
            yield_now().await;
        }
        let handles: Vec<_> = group.borrow_mut().drain(..).collect();
        for handle in handles {
            assert!(handle.await.unwrap_err().is_cancelled());
        }
        assert_eq!(steps_after_abort.get(), 1);
    });
    assert_eq!(rt.tasks_alive(), 0);
}

/// A hand-written `Unpin` future that queries and aborts its own task on its first poll.
struct AbortsItself {
    own: Rc<std::cell::RefCell<Option<iomgr::JoinHandle<()>>>>,
    aborted: bool,
    polls: Rc<Cell<u32>>,
}

impl Future for AbortsItself {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        self.polls.set(self.polls.get() + 1);
        assert!(!self.aborted, "polled again after it aborted itself");
        let own = self.own.clone();
        let own = own.borrow();
        let own = own
            .as_ref()
            .expect("the handle is stored before the task runs");
        assert!(!own.is_finished(), "a running task is not finished");
        own.abort();
        assert!(
            !own.is_finished(),
            "aborting takes effect at the next turn, not now"
        );
        self.aborted = true;
        Poll::Pending
    }
}

#[test]
fn a_task_may_query_and_abort_itself_during_its_poll() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let own = Rc::new(std::cell::RefCell::new(None));
        let polls = Rc::new(Cell::new(0));
        let handle = spawn(AbortsItself {
            own: own.clone(),
            aborted: false,
            polls: polls.clone(),
        });
        *own.borrow_mut() = Some(handle);
        while !own.borrow().as_ref().unwrap().is_finished() {
            yield_now().await;
        }
        let handle = own.borrow_mut().take().unwrap();
        assert!(handle.await.unwrap_err().is_cancelled());
        assert_eq!(polls.get(), 1);
    });
    assert_eq!(rt.tasks_alive(), 0);
}
