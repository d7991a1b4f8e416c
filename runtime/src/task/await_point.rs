//! Where a task is waiting: every `.await` written in a task's body is numbered, and the
//! task records which one it is suspended at.
//!
//! The macro rewrites `expr.await` into `track::<ID, _>(expr).await`. [`Tracked`] forwards
//! every poll unchanged; when the inner future is pending it writes `ID` into a thread-local
//! cell. The task's own poll then turns that number into the task's [`AwaitPoint`] (its table
//! of `.await`s is a constant of the task type) and clears the number again, so an outer task
//! sees only its own `.await`s. Nothing is stored in the task: the cost is one thread-local
//! write per pending `.await` and one read per pending task poll.

use core::cell::Cell;
use core::fmt;
use core::future::{Future, IntoFuture};
use core::pin::Pin;
use core::task::{Context, Poll};

/// One `.await` in a task's body: where it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwaitPoint {
    /// The task's function name.
    pub task: &'static str,
    /// The source file, as `file!()` gives it.
    pub file: &'static str,
    /// Line of the `.await` (1-based).
    pub line: u32,
    /// Column of the `.await` (1-based).
    pub column: u32,
    /// The awaited expression as written (shortened when long).
    pub expr: &'static str,
}

impl fmt::Display for AwaitPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` at {}:{}:{} (`{}.await`)",
            self.task, self.file, self.line, self.column, self.expr
        )
    }
}

const NONE: u32 = u32::MAX;

thread_local! {
    /// The number of the innermost tracked `.await` that just returned pending.
    static PENDING_AWAIT: Cell<u32> = const { Cell::new(NONE) };
    /// The `.await` the outermost task polled last on this thread is suspended at.
    static LAST_POINT: Cell<Option<&'static AwaitPoint>> = const { Cell::new(None) };
}

/// Wraps the future of one numbered `.await`; see the [module docs](self).
#[doc(hidden)]
#[inline(always)]
pub fn track<const ID: u32, F: IntoFuture>(future: F) -> Tracked<F::IntoFuture, ID> {
    Tracked(future.into_future())
}

/// The future of one numbered `.await`: polls `F`, and records `ID` when it is pending.
#[doc(hidden)]
#[derive(Debug)]
pub struct Tracked<F, const ID: u32>(F);

impl<F: Future, const ID: u32> Future for Tracked<F, ID> {
    type Output = F::Output;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: a plain pin projection: the field is never moved out of the pinned wrapper,
        // and the wrapper has no `Drop` or `Unpin` impl of its own that could move it.
        let inner = unsafe { self.map_unchecked_mut(|t| &mut t.0) };
        let poll = inner.poll(cx);
        if poll.is_pending() {
            PENDING_AWAIT.set(ID);
        }
        poll
    }
}

/// Called by a task's poll when its body is pending: resolves the recorded number against
/// the task's table of `.await`s.
#[inline]
pub(crate) fn resolve_pending(awaits: &'static [AwaitPoint]) {
    let id = PENDING_AWAIT.replace(NONE);
    // Suspended inside another macro's arguments: keep what an inner task recorded.
    if let Some(point) = awaits.get(id as usize) {
        LAST_POINT.set(Some(point));
    }
}

/// The `.await` that the last task polled on this thread and found pending is suspended at,
/// and forgets it. `None` when no task was pending since the last call, or when it was
/// suspended inside another macro's arguments (where `.await`s cannot be numbered) with no
/// task inside.
pub fn take_last_await() -> Option<&'static AwaitPoint> {
    LAST_POINT.take()
}
