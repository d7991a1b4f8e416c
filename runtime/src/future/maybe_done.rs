//! A future slot that runs a future, then keeps its output, then is emptied: the building
//! block of the combinators, and the one place where they pin-project.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

pub(crate) enum MaybeDone<F: Future> {
    Running(F),
    Done(F::Output),
    Gone,
}

impl<F: Future> MaybeDone<F> {
    /// Polls the future if it is still running. Returns whether an output is (or was) here.
    pub(crate) fn poll_done(self: Pin<&mut Self>, cx: &mut Context<'_>) -> bool {
        // SAFETY: the future inside `Running` is never moved: it is polled through a pin made
        // from its place here, and only ever dropped in place (the assignment below). The
        // output in `Done` is not pinned: `take` moves it out, which is allowed.
        let this = unsafe { self.get_unchecked_mut() };
        if let MaybeDone::Running(f) = this {
            // SAFETY: `f` lives inside `*this`, which is pinned, and is not moved (see above).
            match unsafe { Pin::new_unchecked(f) }.poll(cx) {
                Poll::Ready(v) => *this = MaybeDone::Done(v),
                Poll::Pending => return false,
            }
        }
        true
    }

    /// Moves the output out, if it is here (and leaves the slot empty).
    pub(crate) fn take(self: Pin<&mut Self>) -> Option<F::Output> {
        // SAFETY: we only move out of `Done` (the output is never pinned) and otherwise leave
        // `Running` untouched; `Gone` holds nothing.
        let this = unsafe { self.get_unchecked_mut() };
        match this {
            MaybeDone::Done(_) => match std::mem::replace(this, MaybeDone::Gone) {
                MaybeDone::Done(v) => Some(v),
                _ => unreachable!(),
            },
            _ => None,
        }
    }

    /// Drops whatever is here in place (a running future is cancelled).
    pub(crate) fn clear(self: Pin<&mut Self>) {
        // SAFETY: assigning drops the old value in place, which is allowed for pinned data;
        // nothing is moved.
        let this = unsafe { self.get_unchecked_mut() };
        *this = MaybeDone::Gone;
    }

    /// Whether the future is still running.
    pub(crate) fn is_running(&self) -> bool {
        matches!(self, MaybeDone::Running(_))
    }
}

/// Pins each element of a pinned slice.
pub(crate) fn pin_elems<T>(slice: Pin<&mut [T]>) -> impl Iterator<Item = Pin<&mut T>> {
    // SAFETY: the elements of a pinned slice are pinned too (structural pinning); we hand out
    // pinned references only and never move an element.
    unsafe { slice.get_unchecked_mut() }
        .iter_mut()
        // SAFETY: each element lives in the pinned slice and is not moved.
        .map(|e| unsafe { Pin::new_unchecked(e) })
}
