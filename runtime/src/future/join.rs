//! Waiting for several futures at once: [`join`], [`join_all`], [`try_join`].
//!
//! The futures run concurrently within the awaiting task (no spawning): each poll of the
//! join polls every future that has not finished yet. Outputs come back in argument order.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::maybe_done::{MaybeDone, pin_elems};

/// Runs `a` and `b` concurrently; resolves to both outputs once both are done.
///
/// ```
/// # iomgr::sync::doc_block_on(async {
/// let (x, y) = iomgr::future::join(async { 1 }, async { "two" }).await;
/// assert_eq!((x, y), (1, "two"));
/// # });
/// ```
pub fn join<A: Future, B: Future>(a: A, b: B) -> Join<A, B> {
    Join {
        a: MaybeDone::Running(a),
        b: MaybeDone::Running(b),
    }
}

/// The future of [`join`].
#[must_use = "futures do nothing unless awaited"]
pub struct Join<A: Future, B: Future> {
    a: MaybeDone<A>,
    b: MaybeDone<B>,
}

impl<A: Future, B: Future> Join<A, B> {
    fn project(self: Pin<&mut Self>) -> (Pin<&mut MaybeDone<A>>, Pin<&mut MaybeDone<B>>) {
        // SAFETY: structural pinning of both fields: `Join` never moves them, has no `Drop`
        // of its own, and is `Unpin` only if both are (the auto-trait default).
        unsafe {
            let this = self.get_unchecked_mut();
            (
                Pin::new_unchecked(&mut this.a),
                Pin::new_unchecked(&mut this.b),
            )
        }
    }
}

impl<A: Future, B: Future> Future for Join<A, B> {
    type Output = (A::Output, B::Output);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (mut a, mut b) = self.project();
        let a_done = a.as_mut().poll_done(cx);
        let b_done = b.as_mut().poll_done(cx);
        if a_done && b_done {
            let a = a.take().expect("join polled after it completed");
            let b = b.take().expect("join polled after it completed");
            Poll::Ready((a, b))
        } else {
            Poll::Pending
        }
    }
}

impl<A: Future, B: Future> fmt::Debug for Join<A, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Join")
            .field("a_running", &self.a.is_running())
            .field("b_running", &self.b.is_running())
            .finish()
    }
}

/// Runs every future of `futures` concurrently; resolves to their outputs, in order.
///
/// Allocates once, for the futures (they are pinned in one boxed slice).
///
/// ```
/// # iomgr::sync::doc_block_on(async {
/// let outs = iomgr::future::join_all((1..=3).map(|i| async move { i * 10 })).await;
/// assert_eq!(outs, vec![10, 20, 30]);
/// # });
/// ```
pub fn join_all<I>(futures: I) -> JoinAll<I::Item>
where
    I: IntoIterator,
    I::Item: Future,
{
    let slots: Box<[_]> = futures.into_iter().map(MaybeDone::Running).collect();
    JoinAll {
        slots: Box::into_pin(slots),
    }
}

/// The future of [`join_all`].
#[must_use = "futures do nothing unless awaited"]
pub struct JoinAll<F: Future> {
    slots: Pin<Box<[MaybeDone<F>]>>,
}

impl<F: Future> Future for JoinAll<F> {
    type Output = Vec<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut all_done = true;
        for slot in pin_elems(self.slots.as_mut()) {
            all_done &= slot.poll_done(cx);
        }
        if !all_done {
            return Poll::Pending;
        }
        Poll::Ready(
            pin_elems(self.slots.as_mut())
                .map(|s| s.take().expect("join_all polled after it completed"))
                .collect(),
        )
    }
}

impl<F: Future> fmt::Debug for JoinAll<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let running = self.slots.iter().filter(|s| s.is_running()).count();
        f.debug_struct("JoinAll")
            .field("len", &self.slots.len())
            .field("running", &running)
            .finish()
    }
}

/// Runs two fallible futures concurrently; resolves to both values, or to the first error,
/// as soon as either fails (the other is then dropped, cancelling it).
///
/// ```
/// # iomgr::sync::doc_block_on(async {
/// let ok = iomgr::future::try_join(async { Ok::<_, String>(1) }, async { Ok(2) }).await;
/// assert_eq!(ok, Ok((1, 2)));
/// let err = iomgr::future::try_join(
///     async { Err::<u8, _>("no".to_string()) },
///     std::future::pending::<Result<u8, String>>(), // never finishes: dropped
/// )
/// .await;
/// assert_eq!(err, Err("no".to_string()));
/// # });
/// ```
pub fn try_join<A, B, T, U, E>(a: A, b: B) -> TryJoin<A, B>
where
    A: Future<Output = Result<T, E>>,
    B: Future<Output = Result<U, E>>,
{
    TryJoin {
        a: MaybeDone::Running(a),
        b: MaybeDone::Running(b),
    }
}

/// The future of [`try_join`].
#[must_use = "futures do nothing unless awaited"]
pub struct TryJoin<A: Future, B: Future> {
    a: MaybeDone<A>,
    b: MaybeDone<B>,
}

impl<A: Future, B: Future> TryJoin<A, B> {
    fn project(self: Pin<&mut Self>) -> (Pin<&mut MaybeDone<A>>, Pin<&mut MaybeDone<B>>) {
        // SAFETY: structural pinning of both fields, as for `Join`: never moved, no `Drop`
        // impl, `Unpin` only if both fields are.
        unsafe {
            let this = self.get_unchecked_mut();
            (
                Pin::new_unchecked(&mut this.a),
                Pin::new_unchecked(&mut this.b),
            )
        }
    }
}

impl<A, B, T, U, E> Future for TryJoin<A, B>
where
    A: Future<Output = Result<T, E>>,
    B: Future<Output = Result<U, E>>,
{
    type Output = Result<(T, U), E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (mut a, mut b) = self.project();
        let a_done = a.as_mut().poll_done(cx);
        if a_done && let MaybeDone::Done(Err(_)) = &*a {
            let Some(Err(e)) = a.take() else {
                unreachable!()
            };
            b.clear();
            return Poll::Ready(Err(e));
        }
        let b_done = b.as_mut().poll_done(cx);
        if b_done && let MaybeDone::Done(Err(_)) = &*b {
            let Some(Err(e)) = b.take() else {
                unreachable!()
            };
            a.clear();
            return Poll::Ready(Err(e));
        }
        if a_done && b_done {
            let Some(Ok(t)) = a.take() else {
                panic!("try_join polled after it completed")
            };
            let Some(Ok(u)) = b.take() else {
                panic!("try_join polled after it completed")
            };
            Poll::Ready(Ok((t, u)))
        } else {
            Poll::Pending
        }
    }
}

impl<A: Future, B: Future> fmt::Debug for TryJoin<A, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryJoin")
            .field("a_running", &self.a.is_running())
            .field("b_running", &self.b.is_running())
            .finish()
    }
}
