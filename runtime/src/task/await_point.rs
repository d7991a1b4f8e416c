//! Where a task is waiting: every `.await` written in a task's body is numbered, and the
//! task records which one it is suspended at.
//!
//! The macro declares a table of the body's `.await`s (a constant of a marker type) and
//! rewrites `expr.await` into `track::<Table, N, _>(expr).await`. [`Tracked`] forwards every
//! poll unchanged; when the inner future is pending it writes a pointer to its entry of the
//! table into a thread-local cell, which the runtime reads after polling a task. Nothing is
//! stored in the task or in the awaited future: the cost is one thread-local write per
//! pending `.await`.

use core::cell::Cell;
use core::fmt;
use core::future::{Future, IntoFuture};
use core::marker::PhantomData;
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

/// A task's table of `.await`s, a constant of a marker type the macro declares per task (not
/// generic, so an `.await` in a generic body can name it).
#[doc(hidden)]
pub trait AwaitTable {
    /// The `.await`s written in the body, numbered in source order.
    const AWAITS: &'static [AwaitPoint];
}

/// The table of a body with no numbered `.await`s (a named pipeline's).
#[doc(hidden)]
#[derive(Debug)]
pub struct NoAwaits;

impl AwaitTable for NoAwaits {
    const AWAITS: &'static [AwaitPoint] = &[];
}

thread_local! {
    /// The `.await` the last pending task polled on this thread is suspended at.
    static LAST_POINT: Cell<Option<&'static AwaitPoint>> = const { Cell::new(None) };
}

/// Wraps the future of the `.await` numbered `ID` in `T`'s table; see the
/// [module docs](self).
#[doc(hidden)]
#[inline(always)]
pub fn track<T: AwaitTable, const ID: usize, F: IntoFuture>(
    future: F,
) -> Tracked<F::IntoFuture, T, ID> {
    Tracked(future.into_future(), PhantomData)
}

/// The future of one numbered `.await`: polls `F`, and records where it is when pending.
#[doc(hidden)]
pub struct Tracked<F, T, const ID: usize>(F, PhantomData<fn() -> T>);

impl<F, T: AwaitTable, const ID: usize> Tracked<F, T, ID> {
    /// This `.await`'s entry, checked when the crate is built.
    const POINT: &'static AwaitPoint = &T::AWAITS[ID];
}

impl<F: Future, T: AwaitTable, const ID: usize> Future for Tracked<F, T, ID> {
    type Output = F::Output;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: a plain pin projection: the field is never moved out of the pinned wrapper,
        // and the wrapper has no `Drop` or `Unpin` impl of its own that could move it.
        let inner = unsafe { self.map_unchecked_mut(|t| &mut t.0) };
        let poll = inner.poll(cx);
        if poll.is_pending() {
            // An outer task's `.await` returns pending after an inner one, so it writes last:
            // the runtime sees the outermost task's own `.await`.
            LAST_POINT.set(Some(Self::POINT));
        }
        poll
    }
}

impl<F: fmt::Debug, T, const ID: usize> fmt::Debug for Tracked<F, T, ID> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Tracked").field(&self.0).finish()
    }
}

/// The `.await` that the last task polled on this thread and found pending is suspended at,
/// and forgets it. `None` when no task was pending since the last call, or when it was
/// suspended inside another macro's arguments (where `.await`s cannot be numbered) with no
/// task inside.
pub fn take_last_await() -> Option<&'static AwaitPoint> {
    LAST_POINT.take()
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::pin::pin;
    use core::task::Waker;

    struct Table;

    const fn point(line: u32) -> AwaitPoint {
        AwaitPoint {
            task: "t",
            file: "f.rs",
            line,
            column: 1,
            expr: "x",
        }
    }

    impl AwaitTable for Table {
        const AWAITS: &'static [AwaitPoint] = &[point(1), point(2)];
    }

    /// Pending once, then ready.
    struct PendingOnce(bool);

    impl Future for PendingOnce {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                Poll::Ready(())
            } else {
                self.0 = true;
                Poll::Pending
            }
        }
    }

    #[test]
    fn a_pending_await_is_recorded_and_the_outermost_wins() {
        let mut cx = Context::from_waker(Waker::noop());
        let _ = take_last_await();
        let line = || take_last_await().map(|p| p.line);

        let mut inner = pin!(track::<Table, 1, _>(PendingOnce(false)));
        assert!(inner.as_mut().poll(&mut cx).is_pending());
        assert_eq!(line(), Some(2));
        assert!(inner.as_mut().poll(&mut cx).is_ready());
        assert_eq!(line(), None, "a ready `.await` records nothing");

        // `.await` 0 awaits a future that itself awaits `.await` 1 (a task in a task).
        let mut outer = pin!(track::<Table, 0, _>(track::<Table, 1, _>(PendingOnce(
            false
        ))));
        assert!(outer.as_mut().poll(&mut cx).is_pending());
        assert_eq!(line(), Some(1), "the outer `.await` writes last");
        assert!(outer.as_mut().poll(&mut cx).is_ready());
        assert_eq!(line(), None);
    }
}
