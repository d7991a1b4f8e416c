//! Racing futures: the first to finish wins, the others are dropped.
//!
//! Dropping a losing future is how it is cancelled: an I/O op that loses a race hands its
//! buffers to the driver and is cancelled in the kernel, safely. The losers are dropped as
//! soon as the winner is known, before its output is returned.
//!
//! Polling is *ordered*: each poll tries the futures in argument order, so when several are
//! ready at once the first one wins. Put the branch that must not starve (a shutdown signal,
//! a timeout) first, or the busy one last.
//!
//! - [`select`] races two futures of any output types and says which won ([`Either`]).
//! - [`race`] races two futures of the same output type.
//! - [`race_all`] races any number of futures of one type and gives the winner's index.
//! - [`select!`](crate::select!) races any number of futures and runs the winner's branch.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::maybe_done::{MaybeDone, pin_elems};

/// One of two values: which side of a [`select`] finished first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Either<L, R> {
    /// The first future won.
    Left(L),
    /// The second future won.
    Right(R),
}

/// Races `a` against `b`: resolves with the output of whichever finishes first and drops the
/// other. If both are ready at the same poll, `a` wins.
///
/// ```
/// # iomgr::sync::doc_block_on(async {
/// use iomgr::future::{select, Either};
/// let out = select(std::future::pending::<u8>(), async { "ready" }).await;
/// assert_eq!(out, Either::Right("ready"));
/// # });
/// ```
pub fn select<A: Future, B: Future>(a: A, b: B) -> Select<A, B> {
    Select {
        a: MaybeDone::Running(a),
        b: MaybeDone::Running(b),
    }
}

/// The future of [`select`].
#[must_use = "futures do nothing unless awaited"]
pub struct Select<A: Future, B: Future> {
    a: MaybeDone<A>,
    b: MaybeDone<B>,
}

impl<A: Future, B: Future> Future for Select<A, B> {
    type Output = Either<A::Output, B::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: structural pinning of both fields: `Select` never moves them, has no `Drop`
        // impl, and is `Unpin` only if both are.
        let (mut a, mut b) = unsafe {
            let this = self.get_unchecked_mut();
            (
                Pin::new_unchecked(&mut this.a),
                Pin::new_unchecked(&mut this.b),
            )
        };
        assert!(
            a.is_running() && b.is_running(),
            "select polled after it completed"
        );
        if a.as_mut().poll_done(cx) {
            b.clear();
            return Poll::Ready(Either::Left(a.take().expect("just finished")));
        }
        if b.as_mut().poll_done(cx) {
            a.clear();
            return Poll::Ready(Either::Right(b.take().expect("just finished")));
        }
        Poll::Pending
    }
}

impl<A: Future, B: Future> fmt::Debug for Select<A, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Select { .. }")
    }
}

/// Races two futures with the same output type: the first output wins, the other future is
/// dropped. If both are ready at the same poll, `a` wins.
///
/// ```
/// # iomgr::sync::doc_block_on(async {
/// let first = iomgr::future::race(std::future::pending(), async { 2 }).await;
/// assert_eq!(first, 2);
/// # });
/// ```
pub fn race<T, A, B>(a: A, b: B) -> Race<A, B>
where
    A: Future<Output = T>,
    B: Future<Output = T>,
{
    Race {
        inner: select(a, b),
    }
}

/// The future of [`race`].
#[must_use = "futures do nothing unless awaited"]
pub struct Race<A: Future, B: Future> {
    inner: Select<A, B>,
}

impl<T, A, B> Future for Race<A, B>
where
    A: Future<Output = T>,
    B: Future<Output = T>,
{
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        // SAFETY: structural pinning of the only field, which is never moved.
        let inner = unsafe { self.map_unchecked_mut(|r| &mut r.inner) };
        inner.poll(cx).map(|e| match e {
            Either::Left(v) | Either::Right(v) => v,
        })
    }
}

impl<A: Future, B: Future> fmt::Debug for Race<A, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Race { .. }")
    }
}

/// Races every future of `futures`: resolves to `(index, output)` of the first to finish and
/// drops the rest. Lower indexes win ties. Allocates once, for the futures.
///
/// # Panics
/// When polled, if `futures` was empty (nothing could ever win).
///
/// ```
/// # iomgr::sync::doc_block_on(async {
/// use std::future::{pending, ready};
/// use std::pin::Pin;
/// type Fut = Pin<Box<dyn std::future::Future<Output = &'static str>>>;
/// let racers: Vec<Fut> = vec![Box::pin(pending()), Box::pin(ready("b")), Box::pin(ready("c"))];
/// assert_eq!(iomgr::future::race_all(racers).await, (1, "b"));
/// # });
/// ```
pub fn race_all<I>(futures: I) -> RaceAll<I::Item>
where
    I: IntoIterator,
    I::Item: Future,
{
    let slots: Box<[_]> = futures.into_iter().map(MaybeDone::Running).collect();
    RaceAll {
        slots: Box::into_pin(slots),
    }
}

/// The future of [`race_all`].
#[must_use = "futures do nothing unless awaited"]
pub struct RaceAll<F: Future> {
    slots: Pin<Box<[MaybeDone<F>]>>,
}

impl<F: Future> Future for RaceAll<F> {
    type Output = (usize, F::Output);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        assert!(
            !self.slots.is_empty(),
            "race_all of no futures can never finish"
        );
        let mut winner = None;
        for (i, slot) in pin_elems(self.slots.as_mut()).enumerate() {
            assert!(slot.is_running(), "race_all polled after it completed");
            if slot.poll_done(cx) {
                winner = Some(i);
                break;
            }
        }
        let Some(w) = winner else {
            return Poll::Pending;
        };
        let mut out = None;
        for (i, slot) in pin_elems(self.slots.as_mut()).enumerate() {
            if i == w {
                out = slot.take();
            } else {
                slot.clear();
            }
        }
        Poll::Ready((w, out.expect("winner has an output")))
    }
}

impl<F: Future> fmt::Debug for RaceAll<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RaceAll")
            .field("len", &self.slots.len())
            .finish()
    }
}

/// Waits on several futures at once and runs the branch of the first to finish; the other
/// futures are dropped (cancelled) before that branch runs.
///
/// Each branch is `pattern = future => expression`. The pattern must be irrefutable (a
/// name, `_`, a tuple...): it binds the winning output. Branches are polled in order, so
/// when several are ready at once the first listed wins. The expression runs in the
/// enclosing function, so it may `.await`, `return`, `break` or use `?`.
///
/// It expands to an `.await`, so it works in `async` fns and blocks and in
/// `#[iomgr::task]` bodies (a task suspended inside it reports no
/// [`AwaitPoint`](crate::task::AwaitPoint): the macro cannot see into another macro).
///
/// ```
/// # iomgr::sync::doc_block_on(async {
/// use std::future::{pending, ready};
///
/// let (tx, rx) = iomgr::sync::chan::<u32>(1);
/// tx.try_send(5).unwrap();
/// let msg = iomgr::select! {
///     _ = pending::<()>() => "never",
///     v = rx.recv() => if v == Some(5) { "got five" } else { "other" },
///     _ = ready(()) => "also ready, but listed later",
/// };
/// assert_eq!(msg, "got five");
/// # });
/// ```
#[macro_export]
macro_rules! select {
    ($($pat:pat = $fut:expr => $body:expr),+ $(,)?) => {
        $crate::__select_internal!(@munch __cx [] [] [] [] $($pat = $fut => $body,)+)
    };
}

/// Implementation detail of [`select!`](crate::select!).
///
/// Munches one branch at a time, collecting `lets` (pin each future, each under its own
/// hygienic name), `polls` (poll it; a ready output is wrapped in nested `Either`s that say
/// which branch won: the k-th branch is k `Right`s around a `Left`, the last one has no
/// `Left`) and `arms` (the same nesting as a pattern around the user's pattern). The futures
/// live in a block that ends before the `match`, so the losers are dropped before a branch's
/// expression runs.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_internal {
    (@munch $cx:ident [$($depth:tt)*] [$($lets:tt)*] [$($polls:tt)*] [$($arms:tt)*]
        $pat:pat = $fut:expr => $body:expr, $($rest:tt)+) => {
        $crate::__select_internal!(@munch $cx [$($depth)* R]
            [$($lets)* let mut __fut = ::core::pin::pin!($fut);]
            [$($polls)* ([$($depth)*] L __fut)]
            [$($arms)* ([$($depth)*] L $pat => $body)]
            $($rest)+)
    };
    (@munch $cx:ident [$($depth:tt)*] [$($lets:tt)*] [$($polls:tt)*] [$($arms:tt)*]
        $pat:pat = $fut:expr => $body:expr,) => {
        $crate::__select_internal!(@done $cx
            [$($lets)* let mut __fut = ::core::pin::pin!($fut);]
            [$($polls)* ([$($depth)*] X __fut)]
            [$($arms)* ([$($depth)*] X $pat => $body)])
    };
    (@done $cx:ident [$($lets:tt)*]
        [$(([$($pd:tt)*] $pk:ident $f:ident))*]
        [$(([$($ad:tt)*] $ak:ident $p:pat => $b:expr))*]) => {
        match {
            $($lets)*
            ::core::future::poll_fn(|$cx: &mut ::core::task::Context<'_>| {
                $(
                    if let ::core::task::Poll::Ready(__v) =
                        ::core::future::Future::poll($f.as_mut(), $cx)
                    {
                        return ::core::task::Poll::Ready(
                            $crate::__select_internal!(@wrap [$($pd)*] $pk __v),
                        );
                    }
                )*
                ::core::task::Poll::Pending
            })
            .await
        } {
            $($crate::__select_internal!(@pat [$($ad)*] $ak $p) => $b,)*
        }
    };
    (@wrap [] L $e:expr) => { $crate::future::Either::Left($e) };
    (@wrap [] X $e:expr) => { $e };
    (@wrap [R $($d:tt)*] $k:ident $e:expr) => {
        $crate::future::Either::Right($crate::__select_internal!(@wrap [$($d)*] $k $e))
    };
    (@pat [] L $p:pat) => { $crate::future::Either::Left($p) };
    (@pat [] X $p:pat) => { $p };
    (@pat [R $($d:tt)*] $k:ident $p:pat) => {
        $crate::future::Either::Right($crate::__select_internal!(@pat [$($d)*] $k $p))
    };
}
