//! The three kinds of stage ([`Source`], [`Adapter`], [`Sink`]), what a stage sees of the
//! segment before it ([`Input`]), and how a stage fails ([`StageError`]).

use std::any::Any;
use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

/// Where the item between two stages is: the state of one segment.
///
/// ioManager's four states, plus the end. The pipeline moves a segment through them:
///
/// ```text
/// Idle --poll the stage before--> Pulling --it gave an item--> Holding
///   ^                                                             |
///   +---- the stage after is done with it <---- Pushing <--taken--+
/// ```
///
/// At most one item is held per segment; a segment that is `Holding` stops the stage before it
/// (that is back-pressure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentState {
    /// Empty, and the stage before it is not working on an item for it.
    Idle,
    /// Empty; the stage before it is working on the next item (a read in flight, say).
    Pulling,
    /// Holds an item the stage after it has not taken yet.
    Holding,
    /// The stage after it took the item and is still working on it (a write in flight).
    Pushing,
    /// The stage before it finished: no more items will come.
    Ended,
}

/// The segment between two stages: at most one item, and its state.
#[derive(Debug)]
pub(crate) struct Segment<T> {
    item: Option<T>,
    state: SegmentState,
    /// Set when the stage after took the item; cleared by the pipeline once it has noticed.
    taken: bool,
}

impl<T> Segment<T> {
    pub(crate) const fn new() -> Self {
        Segment {
            item: None,
            state: SegmentState::Idle,
            taken: false,
        }
    }

    pub(crate) fn state(&self) -> SegmentState {
        self.state
    }

    /// Whether the stage before should be asked for an item.
    #[inline]
    pub(crate) fn wants_item(&self) -> bool {
        self.item.is_none() && self.state != SegmentState::Ended
    }

    #[inline]
    pub(crate) fn hold(&mut self, item: T) {
        debug_assert!(self.item.is_none());
        self.item = Some(item);
        self.state = SegmentState::Holding;
    }

    #[inline]
    pub(crate) fn end(&mut self) {
        self.state = SegmentState::Ended;
    }

    #[inline]
    pub(crate) fn pulling(&mut self) {
        if self.state != SegmentState::Pushing {
            self.state = SegmentState::Pulling;
        }
    }

    /// Whether the stage after took the item since the last call (and forgets it).
    #[inline]
    pub(crate) fn take_taken(&mut self) -> bool {
        std::mem::take(&mut self.taken)
    }

    /// The stage after gave an output (or asked for more): it is done with what it took.
    #[inline]
    pub(crate) fn settle(&mut self) {
        if self.state == SegmentState::Pushing {
            self.state = SegmentState::Idle;
        }
    }

    #[inline]
    pub(crate) fn input(&mut self) -> Input<'_, T> {
        Input { seg: self }
    }
}

/// What an [`Adapter`] or a [`Sink`] sees of the segment before it: at most one item.
///
/// Take the item when you can use it; leave it there to make the stages before you wait.
pub struct Input<'a, T> {
    seg: &'a mut Segment<T>,
}

impl<T> Input<'_, T> {
    /// Takes the item, if one is there.
    #[inline]
    pub fn take(&mut self) -> Option<T> {
        let item = self.seg.item.take()?;
        self.seg.state = SegmentState::Pushing;
        self.seg.taken = true;
        Some(item)
    }

    /// The item, if one is there, without taking it.
    pub fn peek(&self) -> Option<&T> {
        self.seg.item.as_ref()
    }

    /// Whether the stages before have finished and nothing is left: no item will come.
    #[inline]
    pub fn is_ended(&self) -> bool {
        self.seg.item.is_none() && self.seg.state == SegmentState::Ended
    }
}

impl<T> fmt::Debug for Input<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Input")
            .field("state", &self.seg.state)
            .finish()
    }
}

/// How a stage fails: an I/O error, and the item the stage had in hand, if it still has it.
///
/// The pipeline turns it into a [`PipelineError`](super::PipelineError) that also names the
/// stage. A sink whose write failed hands back the buffer it was writing; a framing adapter
/// that met an over-long frame hands back the input it was reading.
pub struct StageError {
    pub(crate) error: io::Error,
    pub(crate) item: Option<Box<dyn Any>>,
}

impl StageError {
    /// A failure with nothing to hand back.
    pub fn new(error: io::Error) -> Self {
        StageError { error, item: None }
    }

    /// A failure that hands back `item` (boxed, only now: failing is the slow path).
    pub fn with_item<T: 'static>(error: io::Error, item: T) -> Self {
        StageError {
            error,
            item: Some(Box::new(item)),
        }
    }

    /// The error.
    pub fn error(&self) -> &io::Error {
        &self.error
    }
}

impl From<io::Error> for StageError {
    fn from(error: io::Error) -> Self {
        StageError::new(error)
    }
}

impl fmt::Debug for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StageError")
            .field("error", &self.error)
            .field("has_item", &self.item.is_some())
            .finish()
    }
}

/// The first stage of a pipeline: produces items.
///
/// Every [`Stream`] is a source (it never fails). Sockets' read halves, files, UDP sockets
/// and channel receivers are sources through [`IntoSource`].
///
/// A source that does I/O keeps its in-flight op (and the op's buffer) inside itself: a
/// pipeline dropped mid-read drops the op, which hands its buffer to the runtime until the
/// kernel is done with it.
///
/// ```
/// use std::io;
/// use std::pin::Pin;
/// use std::task::{Context, Poll};
/// use iomgr::pipeline::{Source, StageError};
///
/// /// Counts down to 1, and fails if asked to start from 0.
/// struct Countdown(u32);
///
/// impl Source for Countdown {
///     type Item = u32;
///     fn poll_next(
///         mut self: Pin<&mut Self>,
///         _cx: &mut Context<'_>,
///     ) -> Poll<Result<Option<u32>, StageError>> {
///         match self.0 {
///             0 => Poll::Ready(Ok(None)),
///             n => {
///                 self.0 = n - 1;
///                 Poll::Ready(Ok(Some(n)))
///             }
///         }
///     }
/// }
///
/// # iomgr::Runtime::new()?.block_on(async {
/// let mut got = Vec::new();
/// iomgr::pipeline! { Countdown(3) => &mut got }.await?;
/// assert_eq!(got, [3, 2, 1]);
/// # std::io::Result::Ok(()) })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a pipeline source",
    label = "a pipeline starts with a source",
    note = "sources: `&TcpStream`, `&UnixStream`, `&UdpSocket`, `&File`, a `Receiver`, any `futures_core::Stream`, or a type that implements `iomgr::pipeline::Source`"
)]
pub trait Source {
    /// What it produces.
    type Item;

    /// The next item: `Ok(Some(item))`, `Ok(None)` at the end, or an error that stops the
    /// pipeline. `Pending` as for a stream: the task is woken when it can make progress.
    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<Self::Item>, StageError>>;
}

impl<S: Stream + ?Sized> Source for S {
    type Item = S::Item;

    #[inline]
    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<S::Item>, StageError>> {
        Stream::poll_next(self, cx).map(Ok)
    }
}

/// A middle stage: takes items of one type and gives items of another, any number for each.
///
/// Functions and closures are adapters (`T -> U` maps, `T -> Option<U>` filters,
/// `T -> Result<U, E>` may fail, `T -> impl Future` is asynchronous); so are the framing
/// adapters ([`Lines`](super::Lines), [`LengthDelimited`](super::LengthDelimited),
/// [`FixedSize`](super::FixedSize)) and their encoders.
///
/// # Writing one
///
/// `poll_next` is asked for the next output. Take inputs from `input` as you need them:
///
/// - return `Ready(Ok(Some(out)))` to give an output (you may keep state for more);
/// - return `Pending` when you need another input and `input` has none: the pipeline polls
///   you again as soon as an item arrives (no waker needed for that), or
///   when you are waiting for something else (then arrange a wake-up, as a future does);
/// - return `Ready(Ok(None))` once `input.is_ended()` and you have nothing left: you are done;
/// - return `Ready(Err(..))` to stop the pipeline.
///
/// Take at most what you can hold: whatever you leave in `input` makes the stages before you
/// wait, which is how back-pressure reaches the source.
///
/// ```
/// use std::pin::Pin;
/// use std::task::{Context, Poll};
/// use iomgr::pipeline::{Adapter, Input, StageError};
///
/// /// Gives every item twice.
/// struct Twice<T>(Option<T>);
///
/// impl<T: Clone + Unpin> Adapter for Twice<T> {
///     type In = T;
///     type Out = T;
///     fn poll_next(
///         mut self: Pin<&mut Self>,
///         _cx: &mut Context<'_>,
///         input: &mut Input<'_, T>,
///     ) -> Poll<Result<Option<T>, StageError>> {
///         if let Some(again) = self.0.take() {
///             return Poll::Ready(Ok(Some(again)));
///         }
///         match input.take() {
///             Some(item) => {
///                 self.0 = Some(item.clone());
///                 Poll::Ready(Ok(Some(item)))
///             }
///             None if input.is_ended() => Poll::Ready(Ok(None)),
///             None => Poll::Pending,
///         }
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a pipeline adapter",
    label = "a middle stage must be an adapter, a function or a closure",
    note = "adapters: a function or closure (`|x| ...`, `async |x| ...`), `Lines::new(max)`, `LengthDelimited::new(max)`, `FixedSize::new(n)`, their encoders, or a type that implements `iomgr::pipeline::Adapter`"
)]
pub trait Adapter {
    /// What it takes.
    type In;
    /// What it gives.
    type Out;

    /// The next output; see the [trait docs](Adapter).
    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        input: &mut Input<'_, Self::In>,
    ) -> Poll<Result<Option<Self::Out>, StageError>>;
}

impl<A: Adapter + Unpin + ?Sized> Adapter for &mut A {
    type In = A::In;
    type Out = A::Out;

    #[inline]
    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        input: &mut Input<'_, A::In>,
    ) -> Poll<Result<Option<A::Out>, StageError>> {
        Pin::new(&mut **self.get_mut()).poll_next(cx, input)
    }
}

/// The last stage of a pipeline: consumes items.
///
/// `poll_sink` takes items from `input` and consumes them. It returns `Ready(Ok(()))` when it
/// is finished: normally once `input.is_ended()` and everything it took has been written,
/// flushed and closed, in that order. A sink that finishes early ends the pipeline.
///
/// Return `Pending` when you need an item and `input` has none (the pipeline polls you again
/// when one arrives), or while you wait for something else (arrange a wake-up). A sink that
/// does I/O keeps its in-flight op and the op's buffer inside itself.
///
/// ```
/// use std::pin::Pin;
/// use std::task::{Context, Poll};
/// use iomgr::pipeline::{Input, Sink, StageError};
///
/// /// Adds up what it gets; stops the pipeline (with the item) past a limit.
/// struct Total {
///     sum: u64,
///     limit: u64,
/// }
///
/// impl Sink for Total {
///     type Item = u64;
///     fn poll_sink(
///         mut self: Pin<&mut Self>,
///         _cx: &mut Context<'_>,
///         input: &mut Input<'_, u64>,
///     ) -> Poll<Result<(), StageError>> {
///         loop {
///             match input.take() {
///                 Some(x) if self.sum + x > self.limit => {
///                     let e = std::io::Error::other("over the limit");
///                     return Poll::Ready(Err(StageError::with_item(e, x)));
///                 }
///                 Some(x) => self.sum += x,
///                 None if input.is_ended() => return Poll::Ready(Ok(())), // all in
///                 None => return Poll::Pending, // the pipeline brings the next item
///             }
///         }
///     }
/// }
///
/// # iomgr::Runtime::new()?.block_on(async {
/// let mut total = Total { sum: 0, limit: 10 };
/// iomgr::pipeline! { iomgr::pipeline::iter([1, 2, 3]) => &mut total }.await?;
/// assert_eq!(total.sum, 6);
/// let mut err = iomgr::pipeline! { iomgr::pipeline::iter([4, 5]) => &mut total }
///     .await
///     .unwrap_err();
/// assert_eq!(err.take_item::<u64>(), Some(5));
/// # std::io::Result::Ok(()) })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a pipeline sink",
    label = "a pipeline ends with a sink",
    note = "sinks: `&TcpStream`, `&UnixStream`, `&UdpSocket`, `&File`, a `Sender` or `AsyncSender`, `&mut Vec<T>`, `for_each(|item: T| ...)`, or a type that implements `iomgr::pipeline::Sink`"
)]
pub trait Sink {
    /// What it consumes.
    type Item;

    /// Consumes items from `input`; see the [trait docs](Sink).
    fn poll_sink(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        input: &mut Input<'_, Self::Item>,
    ) -> Poll<Result<(), StageError>>;
}

impl<K: Sink + Unpin + ?Sized> Sink for &mut K {
    type Item = K::Item;

    #[inline]
    fn poll_sink(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        input: &mut Input<'_, K::Item>,
    ) -> Poll<Result<(), StageError>> {
        Pin::new(&mut **self.get_mut()).poll_sink(cx, input)
    }
}

/// A value that can be a pipeline's first stage: a [`Source`], or a handle that makes one
/// (`&TcpStream` reads the stream, `&File` reads the file from its start).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a pipeline's source",
    label = "the first stage must be a source",
    note = "sources: `&TcpStream`, `&UnixStream`, a `ReadHalf`, `&UdpSocket`, `&File`, a `Receiver` or `AsyncReceiver`, any `futures_core::Stream`, or a type that implements `iomgr::pipeline::Source`"
)]
pub trait IntoSource {
    /// The source it becomes.
    type Source: Source;
    /// Makes the source.
    fn into_source(self) -> Self::Source;
}

impl<S: Source> IntoSource for S {
    type Source = S;
    #[inline]
    fn into_source(self) -> S {
        self
    }
}

/// A value that can be a pipeline's last stage, taking items of type `Item`: a [`Sink`],
/// or a handle that makes one (`&TcpStream` writes byte buffers to the stream, a `Sender<T>`
/// sends `T`s into its channel, `&mut Vec<T>` collects `T`s).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a pipeline's sink for items of type `{Item}`",
    label = "the last stage must be a sink that takes `{Item}`",
    note = "sinks: `&TcpStream`, `&UnixStream`, a `WriteHalf` or `&File` (byte buffers), `&UdpSocket` (`(buffer, SocketAddr)`), a `Sender<T>` or `AsyncSender<T>`, `&mut Vec<T>`, `for_each(|item: T| ...)`, or a type that implements `iomgr::pipeline::Sink`"
)]
pub trait IntoSink<Item> {
    /// The sink it becomes.
    type Sink: Sink<Item = Item>;
    /// Makes the sink.
    fn into_sink(self) -> Self::Sink;
}

impl<K: Sink> IntoSink<K::Item> for K {
    type Sink = K;
    #[inline]
    fn into_sink(self) -> K {
        self
    }
}
