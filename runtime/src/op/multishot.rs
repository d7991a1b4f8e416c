//! Multishot ops: one SQE, a stream of completions.
//!
//! A multishot opcode (accept or receive with `IORING_*_MULTISHOT`, a multishot timeout,
//! a multishot poll) stays armed after it completes: each event posts a CQE flagged
//! `IORING_CQE_F_MORE`, and the last CQE, without the flag, says the kernel is done (the
//! op was cancelled, hit an error, or ran out of shots). [`OpStream`] is its future: a
//! [`Stream`] with one item per CQE, which ends after the last one.
//!
//! The resources live as long as the kernel may use them: dropping the stream early cancels
//! the op, and its resources wait in the driver for the last CQE, exactly as for an [`Op`]
//! (see the [lifecycle](super#lifecycle)). A descriptor a dropped multishot accept produces
//! meanwhile is closed.
//!
//! [`Op`]: super::Op

use std::fmt;
use std::io;
use std::marker::{PhantomData, PhantomPinned};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, ready};

use futures_core::Stream;
use io_uring::squeue;

use super::{cqe_result, no_runtime, withdrawn};
use crate::driver::{Reclaim, poll_completion};
use crate::runtime::waker::is_own;
use crate::runtime::{Shared, current};
use crate::util::gen_slab::Key;

/// An io_uring operation that completes several times: how to build its SQE and how to
/// turn each completion into an item of its [`OpStream`].
///
/// # Safety
/// As for [`OpCode`](super::OpCode), with "until the last completion" for memory the
/// kernel uses: the kernel may write into the op's memory on every event until the CQE
/// without `IORING_CQE_F_MORE`.
pub unsafe trait Multishot: 'static {
    /// One completion's worth of output.
    type Item;

    /// Whether a successful result is a new file descriptor, closed by the driver if it
    /// arrives after the stream was dropped (multishot accept).
    const RETURNS_FD: bool = false;

    /// Builds the SQE; `user_data` is set by the driver. Called once, on the first poll.
    fn build(&mut self) -> squeue::Entry;

    /// Turns one completion into an item. `cqueue::more(flags)` is false on the last one,
    /// after which the stream ends.
    fn next(&mut self, result: io::Result<u32>, flags: u32) -> Self::Item;

    /// The SQE never reached the kernel (no runtime, or a saturated ring): the item the
    /// stream yields before it ends. The default is `next(Err(error), 0)`.
    fn not_submitted(&mut self, error: io::Error) -> Self::Item {
        self.next(Err(error), 0)
    }
}

enum State {
    Unsubmitted,
    InFlight { shared: Rc<Shared>, key: Key },
    Done,
}

/// The stream of a [`Multishot`] op: one item per completion, ending after the last one
/// (the completion without `IORING_CQE_F_MORE`).
///
/// Dropping the stream early cancels the op; its resources wait in the driver for the last
/// completion, as for an [`Op`](super::Op) (see the [lifecycle](super#lifecycle)), and a
/// descriptor a dropped multishot accept produces meanwhile is closed.
///
/// `'a` is the borrow of the object the op works on (a listener, a socket). The stream is
/// `!Unpin`: once polled, it stays put until dropped.
#[must_use = "streams do nothing unless polled"]
pub struct OpStream<'a, T: Multishot> {
    data: Option<T>,
    state: State,
    /// Runs on each completion that arrives after the stream was dropped.
    reclaim: Option<Reclaim>,
    _borrow: PhantomData<(&'a (), *const ())>,
    _pinned: PhantomPinned,
}

impl<T: Multishot> OpStream<'_, T> {
    /// A stream that submits `data` when first polled.
    pub fn new(data: T) -> Self {
        OpStream {
            data: Some(data),
            state: State::Unsubmitted,
            reclaim: None,
            _borrow: PhantomData,
            _pinned: PhantomPinned,
        }
    }

    /// A stream whose completions, once it is dropped, go to `reclaim` (which gives back
    /// what they carry, such as provided buffers) until the last one.
    pub(crate) fn with_reclaim(data: T, reclaim: Reclaim) -> Self {
        let mut stream = Self::new(data);
        stream.reclaim = Some(reclaim);
        stream
    }

    fn data(&mut self) -> &mut T {
        self.data
            .as_mut()
            .expect("OpStream polled after into_inner")
    }
}

impl<T: Multishot> Stream for OpStream<'_, T> {
    type Item = T::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T::Item>> {
        // SAFETY: nothing is moved out of the pinned stream while the kernel may use it.
        let this = unsafe { self.get_unchecked_mut() };
        // Loops once at most: after a submit with a foreign waker, to register it.
        loop {
            match &this.state {
                State::Unsubmitted => {
                    let Some(shared) = current() else {
                        this.state = State::Done;
                        return Poll::Ready(Some(this.data().not_submitted(no_runtime())));
                    };
                    let sqe = this.data().build();
                    // SAFETY: the Multishot contract keeps the SQE's memory valid: the stream is
                    // pinned from now on, and its drop withdraws the SQE or hands the resources
                    // to the driver until the last completion.
                    let submitted = unsafe { shared.driver.borrow_mut().submit(sqe, cx.waker()) };
                    match submitted {
                        Ok(key) => {
                            this.state = State::InFlight { shared, key };
                            if is_own(cx.waker()) {
                                return Poll::Pending;
                            }
                            // The driver did not clone a foreign waker (user code): the
                            // in-flight path registers it.
                        }
                        Err(e) => {
                            this.state = State::Done;
                            return Poll::Ready(Some(this.data().not_submitted(e)));
                        }
                    }
                }
                State::InFlight { shared, key } => {
                    let cqe = ready!(poll_completion(&shared.driver, *key, cx));
                    if !cqe.more() {
                        this.state = State::Done;
                    }
                    return Poll::Ready(Some(this.data().next(cqe_result(cqe.result), cqe.flags)));
                }
                State::Done => return Poll::Ready(None),
            }
        }
    }
}

impl<T: Multishot> Drop for OpStream<'_, T> {
    fn drop(&mut self) {
        let State::InFlight { shared, key } = std::mem::replace(&mut self.state, State::Done)
        else {
            return;
        };
        let Some(data) = self.data.take() else {
            return;
        };
        let Ok(mut driver) = shared.driver.try_borrow_mut() else {
            // As in `Op::drop`: never free memory the kernel may hold.
            std::mem::forget(data);
            return;
        };
        if driver.withdraw(key) {
            drop(driver);
            let mut data = data;
            drop(data.not_submitted(withdrawn()));
            return;
        }
        let resources = crate::driver::Resources::new(data);
        let mut wakers = Vec::new();
        let finished =
            driver.abandon_with(key, resources, T::RETURNS_FD, self.reclaim, &mut wakers);
        drop(driver);
        drop(finished);
        for waker in wakers {
            waker.wake();
        }
    }
}

impl<T: Multishot> fmt::Debug for OpStream<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Unsubmitted => "unsubmitted",
            State::InFlight { .. } => "in flight",
            State::Done => "done",
        };
        f.debug_struct("OpStream")
            .field("op", &std::any::type_name::<T>())
            .field("state", &state)
            .finish()
    }
}
