//! Unit tests of the task cell, its join handle and the scheduler, without a ring.
//!
//! They drive a bare [`Scheduler`] by hand, so they run under Miri (`scripts/miri.sh`), which
//! checks the raw-pointer and aliasing rules the task storage relies on. Wakes from these
//! tasks find no runtime and are dropped; a test that needs a task polled again queues it
//! with [`Scheduler::schedule_all`].

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::join::JoinHandle;
use super::scheduler::Scheduler;
use super::waker::MAX_RUNTIME_ID;

#[track_caller]
fn spawn_on<F: Future + 'static>(sched: &Scheduler, future: F) -> JoinHandle<F::Output> {
    super::join::spawn_on(sched, future, std::panic::Location::caller())
}

/// An id no runtime of these tests registers, so stray wakes go nowhere.
const NO_RUNTIME: u32 = MAX_RUNTIME_ID;

fn scheduler() -> Scheduler {
    Scheduler::new(NO_RUNTIME, 4)
}

fn poll_handle<T>(handle: &mut JoinHandle<T>) -> Poll<Result<T, super::JoinError>> {
    Pin::new(handle).poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn a_finished_task_is_freed_and_its_output_handed_over() {
    let sched = scheduler();
    let mut handle = spawn_on(&sched, async { 6 * 7 });
    assert!(!handle.is_finished());
    assert_eq!(sched.run_ready(8), 1);
    assert_eq!(sched.task_count(), 0);
    assert!(handle.is_finished());
    assert!(matches!(poll_handle(&mut handle), Poll::Ready(Ok(42))));
}

#[test]
fn a_detached_task_is_freed_by_the_runtime_alone() {
    let sched = scheduler();
    let dropped = Rc::new(Cell::new(false));
    struct Flag(Rc<Cell<bool>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let flag = Flag(dropped.clone());
    drop(spawn_on(&sched, async move {
        let _flag = flag;
    }));
    // The runtime's reference is the last one: releasing the task frees the cell.
    assert_eq!(sched.run_ready(8), 1);
    assert!(dropped.get());
    assert_eq!(sched.task_count(), 0);
}

#[test]
fn shutdown_cancels_running_tasks_and_frees_them() {
    let sched = scheduler();
    let mut kept = spawn_on(&sched, std::future::pending::<()>());
    drop(spawn_on(&sched, std::future::pending::<()>()));
    assert_eq!(sched.run_ready(8), 2);
    assert_eq!(sched.task_count(), 2);
    sched.release_all();
    assert_eq!(sched.task_count(), 0);
    assert!(kept.is_finished());
    assert!(matches!(poll_handle(&mut kept), Poll::Ready(Err(e)) if e.is_cancelled()));
}

#[test]
fn a_panicking_task_becomes_a_join_error() {
    let sched = scheduler();
    let mut handle = spawn_on(&sched, async { panic!("boom") });
    sched.run_ready(8);
    let Poll::Ready(Err(e)) = poll_handle::<()>(&mut handle) else {
        panic!("the panic was not caught")
    };
    assert!(e.is_panic());
}

/// A hand-written `Unpin` future that queries and aborts its own task while it runs.
///
/// `Unpin` matters: the `Pin<&mut Self>` of an `Unpin` future is a plain `&mut` to Miri (a
/// unique borrow for the whole poll), so the join handle must not touch the future's storage
/// while it runs. The `bool` field gives `Option<Self>` a niche inside the future, so "is the
/// future still there?" would read bytes the poll holds uniquely.
struct AbortsItself {
    handle: Rc<RefCell<Option<JoinHandle<()>>>>,
    aborted: bool,
    polls: Rc<Cell<u32>>,
}

impl Future for AbortsItself {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        self.polls.set(self.polls.get() + 1);
        let handle = self.handle.clone();
        let handle = handle.borrow();
        let handle = handle.as_ref().expect("the test stores the handle first");
        assert!(!handle.is_finished(), "a running task is not finished");
        assert!(!self.aborted, "polled again after aborting itself");
        handle.abort();
        // Aborting is a request: this poll goes on, and the task is still running.
        assert!(!handle.is_finished());
        self.aborted = true;
        Poll::Pending
    }
}

#[test]
fn a_task_may_query_and_abort_itself_while_it_runs() {
    let sched = scheduler();
    let slot = Rc::new(RefCell::new(None));
    let polls = Rc::new(Cell::new(0));
    let handle = spawn_on(
        &sched,
        AbortsItself {
            handle: slot.clone(),
            aborted: false,
            polls: polls.clone(),
        },
    );
    *slot.borrow_mut() = Some(handle);
    assert_eq!(sched.run_ready(8), 1);
    assert_eq!(polls.get(), 1);
    assert_eq!(
        sched.task_count(),
        1,
        "the abort takes effect at the next turn"
    );
    // The abort's wake found no runtime here; queue the task as that wake would have.
    sched.schedule_all();
    assert_eq!(sched.run_ready(8), 1);
    assert_eq!(polls.get(), 1, "an aborted task is not polled again");
    assert_eq!(sched.task_count(), 0);
    let mut handle = slot.borrow_mut().take().unwrap();
    assert!(handle.is_finished());
    assert!(matches!(poll_handle(&mut handle), Poll::Ready(Err(e)) if e.is_cancelled()));
}

/// A future whose destructor asks its own handle whether the task is finished.
struct QueriesItselfOnDrop {
    handle: Rc<RefCell<Option<JoinHandle<()>>>>,
    seen: Rc<Cell<Option<bool>>>,
}

impl Future for QueriesItselfOnDrop {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Ready(())
    }
}

impl Drop for QueriesItselfOnDrop {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.borrow_mut().take() {
            self.seen.set(Some(handle.is_finished()));
            handle.abort();
        }
    }
}

#[test]
fn a_future_may_query_its_own_handle_while_it_is_dropped() {
    for finish in [true, false] {
        let sched = scheduler();
        let slot = Rc::new(RefCell::new(None));
        let seen = Rc::new(Cell::new(None));
        let handle = spawn_on(
            &sched,
            QueriesItselfOnDrop {
                handle: slot.clone(),
                seen: seen.clone(),
            },
        );
        *slot.borrow_mut() = Some(handle);
        if finish {
            sched.run_ready(8); // completes, then drops the future
        } else {
            sched.release_all(); // cancels: drops the future unpolled
        }
        assert_eq!(
            seen.get(),
            Some(false),
            "not finished while its future is dropped"
        );
        assert_eq!(sched.task_count(), 0);
    }
}

#[test]
#[cfg(miri)]
fn building_a_runtime_under_miri_is_an_error_not_an_abort() {
    let err = super::Runtime::new().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
    assert!(err.to_string().contains("cfg_attr(miri, ignore)"), "{err}");
}
