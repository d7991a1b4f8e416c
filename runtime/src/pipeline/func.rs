//! Functions and closures as stages, and the simplest sources and sinks.
//!
//! `pipeline!` turns a function or closure stage into a [`FnStage`] (or an [`AsyncStage`]
//! when it returns a future) and picks how its return value becomes items from the return
//! type: [`Mapped`] (`T -> U`), [`Filtered`] (`T -> Option<U>`: `None` drops the item) or
//! [`Fallible`] (`T -> Result<U, E>`: `Err` stops the pipeline).

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_core::Stream;

use super::pin::Pinned;
use super::stage::{Adapter, Input, IntoSink, Sink, StageError};

/// How a function's return value becomes the stage's output.
pub trait Emit<R> {
    /// The item it gives.
    type Item;
    /// `Ok(Some(item))`: give it; `Ok(None)`: give nothing for this input; `Err`: fail.
    fn emit(r: R) -> Result<Option<Self::Item>, StageError>;
}

/// `T -> U`: every return value is an item.
#[derive(Debug)]
pub struct Mapped;

/// `T -> Option<U>`: `Some(u)` is an item, `None` drops the input.
#[derive(Debug)]
pub struct Filtered;

/// `T -> Result<U, E>`: `Ok(u)` is an item, `Err(e)` stops the pipeline with `e`.
#[derive(Debug)]
pub struct Fallible;

impl<R> Emit<R> for Mapped {
    type Item = R;
    #[inline]
    fn emit(r: R) -> Result<Option<R>, StageError> {
        Ok(Some(r))
    }
}

impl<U> Emit<Option<U>> for Filtered {
    type Item = U;
    #[inline]
    fn emit(r: Option<U>) -> Result<Option<U>, StageError> {
        Ok(r)
    }
}

impl<U, E> Emit<Result<U, E>> for Fallible
where
    E: Into<Box<dyn Error + Send + Sync>>,
{
    type Item = U;
    #[inline]
    fn emit(r: Result<U, E>) -> Result<Option<U>, StageError> {
        match r {
            Ok(u) => Ok(Some(u)),
            Err(e) => Err(StageError::new(to_io_error(e))),
        }
    }
}

/// An error as an `io::Error`: an `io::Error` stays itself (its kind is kept), anything else
/// becomes `ErrorKind::Other` with it as the source.
pub(crate) fn to_io_error<E: Into<Box<dyn Error + Send + Sync>>>(e: E) -> io::Error {
    match e.into().downcast::<io::Error>() {
        Ok(e) => *e,
        Err(e) => io::Error::other(e),
    }
}

/// A function or closure as an adapter: calls it on each input, and [`Emit`]s the result.
pub struct FnStage<F, A, K> {
    f: F,
    _marker: PhantomData<(fn(A), K)>,
}

impl<F, A, K> FnStage<F, A, K> {
    /// Wraps `f`.
    pub fn new(f: F) -> Self {
        FnStage {
            f,
            _marker: PhantomData,
        }
    }
}

// The function is never pinned structurally: it is only called through `&mut`.
impl<F, A, K> Unpin for FnStage<F, A, K> {}

impl<F, A, R, K> Adapter for FnStage<F, A, K>
where
    F: FnMut(A) -> R,
    K: Emit<R>,
{
    type In = A;
    type Out = K::Item;

    #[inline]
    fn poll_next(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        input: &mut Input<'_, A>,
    ) -> Poll<Result<Option<K::Item>, StageError>> {
        let this = self.get_mut();
        match input.take() {
            Some(item) => match K::emit((this.f)(item)) {
                Ok(None) => Poll::Pending, // dropped: the pipeline brings the next input
                other => Poll::Ready(other),
            },
            None if input.is_ended() => Poll::Ready(Ok(None)),
            None => Poll::Pending,
        }
    }
}

impl<F, A, K> fmt::Debug for FnStage<F, A, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnStage")
            .field("f", &std::any::type_name::<F>())
            .finish()
    }
}

/// An asynchronous function or closure as an adapter: calls it on an input and keeps the
/// future it returns (inline) until it is ready, then [`Emit`]s its output. One call at a
/// time; the next input waits in the segment before it.
pub struct AsyncStage<F, A, Fut, K> {
    /// The call in progress (pinned), nothing, and the function.
    inner: Pinned<Option<Fut>, (), F>,
    _marker: PhantomData<(fn(A), K)>,
}

impl<F, A, Fut, K> AsyncStage<F, A, Fut, K> {
    /// Wraps `f`.
    pub fn new(f: F) -> Self {
        AsyncStage {
            inner: Pinned::new(None, (), f),
            _marker: PhantomData,
        }
    }
}

impl<F, A, Fut, K> Adapter for AsyncStage<F, A, Fut, K>
where
    F: FnMut(A) -> Fut,
    Fut: Future,
    K: Emit<Fut::Output>,
{
    type In = A;
    type Out = K::Item;

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        input: &mut Input<'_, A>,
    ) -> Poll<Result<Option<K::Item>, StageError>> {
        // SAFETY: `AsyncStage` has no `Drop` impl, is not packed, and never moves `inner` out
        // of a pinned `AsyncStage`; `_marker` is zero-sized data.
        let inner = unsafe { self.map_unchecked_mut(|s| &mut s.inner) };
        let (mut call, _, f) = inner.project();
        loop {
            if call.is_none() {
                match input.take() {
                    Some(item) => call.set(Some(f(item))),
                    None if input.is_ended() => return Poll::Ready(Ok(None)),
                    None => return Poll::Pending,
                }
            }
            let fut = call.as_mut().as_pin_mut().expect("a call is in progress");
            let output = ready!(fut.poll(cx));
            call.set(None);
            match K::emit(output) {
                Ok(None) => continue,
                other => return Poll::Ready(other),
            }
        }
    }
}

impl<F, A, Fut, K> fmt::Debug for AsyncStage<F, A, Fut, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncStage")
            .field("f", &std::any::type_name::<F>())
            .field("busy", &self.inner.parts().0.is_some())
            .finish()
    }
}

/// A source over an iterator's items (all ready at once); see [`iter`].
#[derive(Debug)]
pub struct Iter<I> {
    iter: I,
}

/// A source that gives `items` one by one.
///
/// ```
/// # iomgr::Runtime::new()?.block_on(async {
/// let mut doubled = Vec::new();
/// iomgr::pipeline! { iomgr::pipeline::iter(1..=3) => |x: u32| x * 2 => &mut doubled }
///     .run()
///     .await?;
/// assert_eq!(doubled, [2, 4, 6]);
/// # std::io::Result::Ok(()) })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn iter<I: IntoIterator>(items: I) -> Iter<I::IntoIter> {
    Iter {
        iter: items.into_iter(),
    }
}

impl<I: Iterator> Unpin for Iter<I> {}

impl<I: Iterator> Stream for Iter<I> {
    type Item = I::Item;

    #[inline]
    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<I::Item>> {
        Poll::Ready(self.get_mut().iter.next())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.iter.size_hint()
    }
}

/// A sink that pushes every item onto a vector (`&mut Vec<T>` as the last stage).
#[derive(Debug)]
pub struct VecSink<'a, T> {
    vec: &'a mut Vec<T>,
}

impl<T> Sink for VecSink<'_, T> {
    type Item = T;

    #[inline]
    fn poll_sink(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        input: &mut Input<'_, T>,
    ) -> Poll<Result<(), StageError>> {
        let this = self.get_mut();
        match input.take() {
            Some(item) => {
                this.vec.push(item);
                Poll::Pending // the pipeline brings the next item
            }
            None if input.is_ended() => Poll::Ready(Ok(())),
            None => Poll::Pending,
        }
    }
}

impl<'a, T> IntoSink<T> for &'a mut Vec<T> {
    type Sink = VecSink<'a, T>;
    fn into_sink(self) -> VecSink<'a, T> {
        VecSink { vec: self }
    }
}

/// What a [`for_each`] function may return: `()`, or a `Result<(), E>` whose `Err` stops
/// the pipeline.
pub trait Consumed {
    /// `Err` stops the pipeline.
    fn into_result(self) -> Result<(), StageError>;
}

impl Consumed for () {
    #[inline]
    fn into_result(self) -> Result<(), StageError> {
        Ok(())
    }
}

impl<E: Into<Box<dyn Error + Send + Sync>>> Consumed for Result<(), E> {
    #[inline]
    fn into_result(self) -> Result<(), StageError> {
        self.map_err(|e| StageError::new(to_io_error(e)))
    }
}

/// A sink that calls a function on every item; see [`for_each`].
pub struct ForEach<F, T> {
    f: F,
    _marker: PhantomData<fn(T)>,
}

/// A sink that calls `f` on every item. `f` returns `()`, or `Result<(), E>` to be able to
/// stop the pipeline. Name the item's type in the closure (`|line: String| ...`): the sink is
/// made before it meets the stage before it.
///
/// ```
/// # iomgr::Runtime::new()?.block_on(async {
/// use iomgr::pipeline::{for_each, iter};
/// let mut sum = 0;
/// iomgr::pipeline! { iter([1, 2, 3]) => for_each(|x: i32| sum += x) }.await?;
/// assert_eq!(sum, 6);
/// # std::io::Result::Ok(()) })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn for_each<T, F, R>(f: F) -> ForEach<F, T>
where
    F: FnMut(T) -> R,
    R: Consumed,
{
    ForEach {
        f,
        _marker: PhantomData,
    }
}

impl<F, T> Unpin for ForEach<F, T> {}

impl<F, T, R> Sink for ForEach<F, T>
where
    F: FnMut(T) -> R,
    R: Consumed,
{
    type Item = T;

    #[inline]
    fn poll_sink(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        input: &mut Input<'_, T>,
    ) -> Poll<Result<(), StageError>> {
        let this = self.get_mut();
        match input.take() {
            Some(item) => match (this.f)(item).into_result() {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
            None if input.is_ended() => Poll::Ready(Ok(())),
            None => Poll::Pending,
        }
    }
}

impl<F, T> fmt::Debug for ForEach<F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForEach")
            .field("f", &std::any::type_name::<F>())
            .finish()
    }
}
