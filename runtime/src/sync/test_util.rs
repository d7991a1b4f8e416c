//! A tiny test executor: `block_on` with a thread-parker waker, and a multi-task local
//! executor whose wakers are thread-safe (like the runtime's).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

pub(crate) use super::async_chan::block_on;

type Task = Pin<Box<dyn Future<Output = ()>>>;

struct TaskWaker {
    id: usize,
    ready: Arc<Mutex<VecDeque<usize>>>,
    thread: Thread,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.ready.lock().unwrap().push_back(self.id);
        self.thread.unpark();
    }
}

/// Runs many `!Send` tasks on the current thread.
pub(crate) struct LocalExecutor {
    tasks: RefCell<Vec<Option<Task>>>,
    ready: Arc<Mutex<VecDeque<usize>>>,
}

/// A spawned task's output, once it has finished.
pub(crate) type Output<T> = Rc<RefCell<Option<T>>>;

impl LocalExecutor {
    pub(crate) fn new() -> Self {
        LocalExecutor {
            tasks: RefCell::new(Vec::new()),
            ready: Arc::new(Mutex::new(VecDeque::new())),
        }
    }

    /// Adds a task (polled first in spawn order); its output lands in the returned cell.
    pub(crate) fn spawn<T: 'static>(&self, fut: impl Future<Output = T> + 'static) -> Output<T> {
        let out: Output<T> = Rc::new(RefCell::new(None));
        let slot = out.clone();
        let mut tasks = self.tasks.borrow_mut();
        let id = tasks.len();
        tasks.push(Some(Box::pin(async move {
            *slot.borrow_mut() = Some(fut.await);
        })));
        self.ready.lock().unwrap().push_back(id);
        out
    }

    /// Polls woken tasks until none is ready; returns how many tasks are still unfinished.
    pub(crate) fn run_until_stalled(&self) -> usize {
        loop {
            let next = self.ready.lock().unwrap().pop_front();
            let Some(id) = next else { break };
            let task = self.tasks.borrow_mut()[id].take();
            let Some(mut task) = task else { continue };
            let waker = Waker::from(Arc::new(TaskWaker {
                id,
                ready: self.ready.clone(),
                thread: thread::current(),
            }));
            if task
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
            {
                self.tasks.borrow_mut()[id] = Some(task);
            }
        }
        self.pending()
    }

    /// Runs until every task finished, parking for wakes from other threads.
    ///
    /// # Panics
    /// If nothing wakes any task for 10 seconds (a lost wake-up).
    pub(crate) fn run(&self) {
        while self.run_until_stalled() > 0 {
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.ready.lock().unwrap().is_empty() {
                let now = Instant::now();
                assert!(
                    now < deadline,
                    "stalled: {} task(s) pending and nothing woke them",
                    self.pending()
                );
                // Parking may return early (a stale unpark): the loop re-checks.
                thread::park_timeout(deadline - now);
            }
        }
    }

    fn pending(&self) -> usize {
        self.tasks.borrow().iter().filter(|t| t.is_some()).count()
    }
}

/// A waker that counts its wakes.
pub(crate) struct CountingWaker(pub(crate) std::sync::atomic::AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A waker that counts wakes, and the counter.
pub(crate) fn counting_waker() -> (Waker, Arc<CountingWaker>) {
    let c = Arc::new(CountingWaker(Default::default()));
    (Waker::from(c.clone()), c)
}

/// Polls `fut` once with `waker`.
pub(crate) fn poll_once<F: Future + Unpin>(fut: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(fut).poll(&mut Context::from_waker(waker))
}
