//! Pin projection for the pipeline's own types, in one audited place.
//!
//! A stage that does I/O keeps its op inside itself, and an op must not move once it has been
//! polled; a pipeline keeps its stages inside itself. Both are "a struct with some pinned fields
//! and some plain ones". [`Pinned`] is that struct, generic over the parts, so the one
//! `unsafe` projection below serves every stage, hop and pipeline, and the code the
//! `pipeline!` macro generates contains no `unsafe` at all.

use std::pin::Pin;

/// Two fields that are structurally pinned (`a` and `b`) and one that is not (`rest`).
///
/// Once a `Pinned` is pinned, `a` and `b` never move again: they are reached only as
/// `Pin<&mut _>` and dropped in place. `rest` is plain data reached as `&mut _`.
#[derive(Debug, Default)]
pub(crate) struct Pinned<A, B, R> {
    a: A,
    b: B,
    rest: R,
}

impl<A, B, R> Pinned<A, B, R> {
    pub(crate) const fn new(a: A, b: B, rest: R) -> Self {
        Pinned { a, b, rest }
    }

    /// The pinned fields as pins, the plain one as a mutable reference.
    #[inline(always)]
    pub(crate) fn project(self: Pin<&mut Self>) -> (Pin<&mut A>, Pin<&mut B>, &mut R) {
        // SAFETY: this is the usual structural pinning projection, and its conditions hold:
        // - `Pinned` has no `Drop` impl, so nothing moves `a` or `b` out while dropping;
        // - `Pinned` is `Unpin` only when `A`, `B` and `R` are (the auto impl, never a manual
        //   one), so a pinned `Pinned` with a `!Unpin` field cannot be moved by safe code;
        // - it is not `repr(packed)`;
        // - no method hands out `&mut A` or `&mut B` from a `Pin<&mut Self>` (only pins), and
        //   `rest` is never pinned, so giving out `&mut R` promises nothing about it.
        unsafe {
            let this = self.get_unchecked_mut();
            (
                Pin::new_unchecked(&mut this.a),
                Pin::new_unchecked(&mut this.b),
                &mut this.rest,
            )
        }
    }

    /// The plain field, through a `Pinned` that is not pinned.
    pub(crate) fn rest_mut(&mut self) -> &mut R {
        &mut self.rest
    }

    /// All three, by value (a `Pinned` that is moved is not pinned).
    pub(crate) fn into_parts(self) -> (A, B, R) {
        (self.a, self.b, self.rest)
    }

    /// The pinned fields, read-only (for `Debug`).
    pub(crate) fn parts(&self) -> (&A, &B, &R) {
        (&self.a, &self.b, &self.rest)
    }
}
