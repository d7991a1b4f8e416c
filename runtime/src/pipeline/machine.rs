//! The state machine: a chain of hops ending in a sink, one segment per hop.
//!
//! `pipeline! { s => a => b => k }` builds
//!
//! ```text
//! Pipeline<Hop<Hop<Head<S>, A>, B>, K>
//!          ^^^^^^^^^^^^^^^^^^^^^^^^    the chain: the source, then one hop per adapter
//!                                  ^   the sink
//! ```
//!
//! Every stage is a field, stored inline, and every hop holds the segment in front of its
//! stage: `Hop<C, A>` is `{ up: C, adapter: A, segment: Segment<A::In> }`, and the pipeline
//! holds the sink's segment. Polling the pipeline asks the sink to consume its segment; an
//! empty segment asks the stage before it for an item, which asks its own segment, and so on
//! up to the source. So every stage moves as soon as both of its ends are ready, a full
//! segment stops the stages before it (back-pressure), and nothing is allocated per item.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::error::{PipelineError, Role};
use super::pin::Pinned;
use super::stage::{Adapter, Segment, SegmentState, Sink, Source, StageError};
use crate::runtime::JoinHandle;

/// How many items a pipeline moves in one poll before it lets other tasks run.
const BUDGET: u32 = 128;

/// The part of a poll's work still allowed before the pipeline yields.
#[doc(hidden)]
#[derive(Debug)]
pub struct Budget(u32);

impl Budget {
    fn new() -> Self {
        Budget(BUDGET)
    }

    /// Spends one unit; `false` (after waking the task) once the budget is gone.
    #[inline]
    fn spend(&mut self, cx: &Context<'_>) -> bool {
        if self.0 == 0 {
            cx.waker().wake_by_ref();
            return false;
        }
        self.0 -= 1;
        true
    }
}

/// A stage's failure and its position.
#[doc(hidden)]
#[derive(Debug)]
pub struct Failure {
    stage: usize,
    error: StageError,
}

/// The stages of a pipeline before its sink: a source followed by any number of hops.
///
/// Implemented by [`Head`] and [`Hop`] only.
pub trait Chain {
    /// What the last stage of the chain gives.
    type Out;
    /// How many stages the chain has.
    const STAGES: usize;

    #[doc(hidden)]
    fn poll_chain(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        budget: &mut Budget,
    ) -> Poll<Result<Option<Self::Out>, Failure>>;

    /// Moves items into the chain's own segments while they have room, without giving an
    /// output (the stage after the chain is busy): every segment fills as soon as the stage
    /// before it has an item, whatever the segments after it do.
    #[doc(hidden)]
    fn advance(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        budget: &mut Budget,
    ) -> Result<(), Failure>;

    #[doc(hidden)]
    fn segments(&self, each: &mut dyn FnMut(SegmentState));
}

/// The first stage of a chain: the source.
pub struct Head<S> {
    inner: Pinned<S, (), ()>,
}

impl<S: Source> Chain for Head<S> {
    type Out = S::Item;
    const STAGES: usize = 1;

    #[inline]
    fn poll_chain(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        _budget: &mut Budget,
    ) -> Poll<Result<Option<S::Item>, Failure>> {
        let (source, _, _) = pin_inner(self).project();
        source
            .poll_next(cx)
            .map_err(|error| Failure { stage: 0, error })
    }

    #[inline]
    fn advance(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        _budget: &mut Budget,
    ) -> Result<(), Failure> {
        // A source has no segment of its own: its next read starts when the segment after it
        // has room for what it reads.
        Ok(())
    }

    fn segments(&self, _each: &mut dyn FnMut(SegmentState)) {}
}

/// A chain followed by one more stage, an adapter, and the segment between them.
pub struct Hop<C, A: Adapter> {
    inner: Pinned<C, A, Segment<A::In>>,
}

impl<C, A> Chain for Hop<C, A>
where
    C: Chain,
    A: Adapter<In = C::Out>,
{
    type Out = A::Out;
    const STAGES: usize = C::STAGES + 1;

    #[inline]
    fn poll_chain(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        budget: &mut Budget,
    ) -> Poll<Result<Option<A::Out>, Failure>> {
        let (mut up, mut adapter, segment) = pin_hop(self).project();
        loop {
            if segment.wants_item() {
                match up.as_mut().poll_chain(cx, budget) {
                    Poll::Ready(Ok(Some(item))) => segment.hold(item),
                    Poll::Ready(Ok(None)) => segment.end(),
                    Poll::Ready(Err(failure)) => return Poll::Ready(Err(failure)),
                    Poll::Pending => segment.pulling(),
                }
            }
            match adapter.as_mut().poll_next(cx, &mut segment.input()) {
                Poll::Ready(Ok(Some(out))) => {
                    segment.take_taken();
                    segment.settle();
                    return Poll::Ready(Ok(Some(out)));
                }
                Poll::Ready(Ok(None)) => return Poll::Ready(Ok(None)),
                Poll::Ready(Err(error)) => {
                    return Poll::Ready(Err(Failure {
                        stage: C::STAGES,
                        error,
                    }));
                }
                Poll::Pending => {
                    // The adapter used its input without giving anything (a filter dropped
                    // it, a framer needs more bytes): fetch the next one now.
                    if segment.take_taken() && segment.wants_item() && budget.spend(cx) {
                        continue;
                    }
                    // The adapter is busy with an item and the next one waits in front of
                    // it: the segments before can still fill.
                    if segment.state() == SegmentState::Holding {
                        up.as_mut().advance(cx, budget)?;
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    fn advance(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        budget: &mut Budget,
    ) -> Result<(), Failure> {
        let (mut up, _, segment) = pin_hop(self).project();
        if segment.wants_item() {
            match up.as_mut().poll_chain(cx, budget) {
                Poll::Ready(Ok(Some(item))) => segment.hold(item),
                Poll::Ready(Ok(None)) => segment.end(),
                Poll::Ready(Err(failure)) => return Err(failure),
                Poll::Pending => {
                    segment.pulling();
                    return Ok(());
                }
            }
        }
        if segment.state() == SegmentState::Holding {
            up.advance(cx, budget)?;
        }
        Ok(())
    }

    fn segments(&self, each: &mut dyn FnMut(SegmentState)) {
        let (up, _, segment) = self.inner.parts();
        up.segments(each);
        each(segment.state());
    }
}

fn pin_inner<S>(head: Pin<&mut Head<S>>) -> Pin<&mut Pinned<S, (), ()>> {
    // SAFETY: `Head` is a plain wrapper (no `Drop`, not packed, auto `Unpin`) whose only field
    // is never moved out of a pinned `Head`.
    unsafe { head.map_unchecked_mut(|h| &mut h.inner) }
}

fn pin_hop<C, A: Adapter>(hop: Pin<&mut Hop<C, A>>) -> Pin<&mut Pinned<C, A, Segment<A::In>>> {
    // SAFETY: as for `pin_inner`: `Hop` wraps one field and never moves it.
    unsafe { hop.map_unchecked_mut(|h| &mut h.inner) }
}

/// What a pipeline keeps beside its stages.
struct State<T> {
    /// The segment in front of the sink.
    segment: Segment<T>,
    /// Each stage's expression as written, for errors.
    names: &'static [&'static str],
    finished: bool,
}

/// A pipeline: its stages, stored inline, one segment per hop. A future that runs it to the
/// end: `Ok(())` once the source ended, every segment drained, and the sink flushed and
/// closed; or the first stage's failure.
///
/// Made by [`pipeline!`](crate::pipeline!); see the [module docs](super) for what it does.
/// Its type names its stages (`Pipeline<Hop<Head<S>, A>, K>`); `pipeline!`'s item form
/// gives a pipeline a short name. Dropping it cancels its stages' ops safely.
///
/// ```
/// use iomgr::pipeline::{SegmentState, iter};
///
/// # iomgr::Runtime::new()?.block_on(async {
/// let mut out = Vec::new();
/// let p = iomgr::pipeline! { iter(1..=3) => |x| x * 10 => &mut out };
/// assert_eq!(p.stages(), ["iter(1..=3)", "|x| x * 10", "&mut out"]);
/// assert_eq!(p.segments(), [SegmentState::Idle, SegmentState::Idle]);
/// p.run().await?; // or `.spawn()` for a pipeline that owns its stages
/// assert_eq!(out, [10, 20, 30]);
/// # std::io::Result::Ok(()) })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[must_use = "a pipeline does nothing unless awaited (`.run().await`) or spawned (`.spawn()`)"]
pub struct Pipeline<C: Chain, K: Sink<Item = C::Out>> {
    inner: Pinned<C, K, State<C::Out>>,
}

impl<C: Chain, K: Sink<Item = C::Out>> Pipeline<C, K> {
    /// The pipeline, to await in the current task: `pipeline.run().await?`.
    ///
    /// (A pipeline is itself a future; `run` says so where it is used.)
    pub fn run(self) -> Self {
        self
    }

    /// Runs the pipeline as a task of its own on the current runtime; awaiting the handle
    /// gives the pipeline's result.
    ///
    /// # Panics
    /// If no runtime is running on this thread (like [`spawn`](crate::spawn)).
    pub fn spawn(self) -> JoinHandle<Result<(), PipelineError>>
    where
        Self: 'static,
    {
        crate::spawn(self)
    }

    /// Each stage's expression, as written in `pipeline!`.
    pub fn stages(&self) -> &'static [&'static str] {
        self.inner.parts().2.names
    }

    /// The state of each segment, from the source's to the sink's (for diagnostics; it
    /// allocates the vector it returns).
    pub fn segments(&self) -> Vec<SegmentState> {
        let (chain, _, state) = self.inner.parts();
        let mut out = Vec::with_capacity(C::STAGES);
        chain.segments(&mut |s| out.push(s));
        out.push(state.segment.state());
        out
    }

    fn fail(state: &mut State<C::Out>, failure: Failure) -> Poll<Result<(), PipelineError>> {
        state.finished = true;
        let last = C::STAGES;
        let role = match failure.stage {
            0 => Role::Source,
            s if s == last => Role::Sink,
            _ => Role::Adapter,
        };
        let expr = state.names.get(failure.stage).copied().unwrap_or("?");
        Poll::Ready(Err(PipelineError::new(
            failure.stage,
            expr,
            role,
            failure.error,
        )))
    }
}

impl<C: Chain, K: Sink<Item = C::Out>> Future for Pipeline<C, K> {
    type Output = Result<(), PipelineError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: as for `pin_inner`: `Pipeline` wraps one field and never moves it.
        let inner = unsafe { self.map_unchecked_mut(|p| &mut p.inner) };
        let (mut chain, mut sink, state) = inner.project();
        assert!(!state.finished, "pipeline polled after it finished");
        let mut budget = Budget::new();
        loop {
            if state.segment.wants_item() {
                match chain.as_mut().poll_chain(cx, &mut budget) {
                    Poll::Ready(Ok(Some(item))) => state.segment.hold(item),
                    Poll::Ready(Ok(None)) => state.segment.end(),
                    Poll::Ready(Err(failure)) => return Self::fail(state, failure),
                    Poll::Pending => state.segment.pulling(),
                }
            }
            match sink.as_mut().poll_sink(cx, &mut state.segment.input()) {
                Poll::Ready(Ok(())) => {
                    state.finished = true;
                    return Poll::Ready(Ok(()));
                }
                Poll::Ready(Err(error)) => {
                    let failure = Failure {
                        stage: C::STAGES,
                        error,
                    };
                    return Self::fail(state, failure);
                }
                Poll::Pending => {
                    if state.segment.take_taken() && state.segment.wants_item() && budget.spend(cx)
                    {
                        continue;
                    }
                    // The sink is busy and its next item waits: the segments before it can
                    // still fill (a read while a write is in flight).
                    if state.segment.state() == SegmentState::Holding
                        && let Err(failure) = chain.as_mut().advance(cx, &mut budget)
                    {
                        return Self::fail(state, failure);
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

impl<C: Chain, K: Sink<Item = C::Out>> fmt::Debug for Pipeline<C, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.parts().2;
        f.debug_struct("Pipeline")
            .field("stages", &state.names)
            .field("segments", &self.segments())
            .field("finished", &state.finished)
            .finish()
    }
}

impl<S> fmt::Debug for Head<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Head { .. }")
    }
}

impl<C, A: Adapter> fmt::Debug for Hop<C, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hop")
            .field("segment", &self.inner.parts().2.state())
            .finish_non_exhaustive()
    }
}

/// Assembles a pipeline stage by stage (what `pipeline!` expands to, after it has checked
/// every hop's types).
#[doc(hidden)]
#[derive(Debug)]
pub struct Builder<C> {
    chain: C,
    names: &'static [&'static str],
}

/// Starts a pipeline at `source`; `names` are the stages' expressions, for errors.
#[doc(hidden)]
pub fn start<S: Source>(names: &'static [&'static str], source: S) -> Builder<Head<S>> {
    Builder {
        chain: Head {
            inner: Pinned::new(source, (), ()),
        },
        names,
    }
}

// The bounds are on the methods, not the impl: a stage that does not fit is then one
// "trait bound not satisfied" error at that stage (and not "method not found").
impl<C> Builder<C> {
    /// Adds an adapter.
    #[inline]
    pub fn then<A>(self, adapter: A) -> Builder<Hop<C, A>>
    where
        C: Chain,
        A: Adapter<In = C::Out>,
    {
        Builder {
            chain: Hop {
                inner: Pinned::new(self.chain, adapter, Segment::new()),
            },
            names: self.names,
        }
    }

    /// Ends the pipeline with a sink.
    #[inline]
    pub fn sink<K>(self, sink: K) -> Pipeline<C, K>
    where
        C: Chain,
        K: Sink<Item = C::Out>,
    {
        Pipeline {
            inner: Pinned::new(
                self.chain,
                sink,
                State {
                    segment: Segment::new(),
                    names: self.names,
                    finished: false,
                },
            ),
        }
    }
}
