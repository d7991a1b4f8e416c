//! Storage for `pipeline!`'s item form: a pipeline with a name and a constant size.
//!
//! `pipeline! { pub LineEcho(stream: TcpStream) = &stream => ... => &stream; }` declares a
//! marker type implementing [`Body`], whose `call` is an `async` block that builds the
//! pipeline from the arguments and awaits it (so stages may borrow the arguments, as
//! `&stream` does). [`Named`] keeps that block's future in bytes of its exact size and
//! alignment: the future's type is written by rustc, never by the macro, and its size is a
//! constant computed from `Body::call`'s signature.

use core::fmt;
use core::future::Future;
use core::marker::{PhantomData, PhantomPinned};
use core::mem::{MaybeUninit, align_of, size_of};
use core::pin::Pin;
use core::task::{Context, Poll};

use super::error::PipelineError;
use crate::runtime::JoinHandle;

/// What the item form declares for each named pipeline: how to start it.
///
/// Implemented by the macro only; the trait may change without notice.
pub trait Body: Sized + 'static {
    /// The constructor's arguments, as a tuple.
    type Args;
    /// The pipeline's name.
    const NAME: &'static str;
    /// Builds the pipeline and runs it (runs nothing until first polled).
    fn call(args: Self::Args) -> impl Future<Output = Result<(), PipelineError>>;
}

/// The size of what `f` returns, without calling it.
pub const fn size_of_return<A, R, F: FnOnce(A) -> R>(_: &F) -> usize {
    size_of::<R>()
}

/// The alignment of what `f` returns, without calling it.
pub const fn align_of_return<A, R, F: FnOnce(A) -> R>(_: &F) -> usize {
    align_of::<R>()
}

/// The size of `B`'s future.
pub const fn size_of_body<B: Body>() -> usize {
    size_of_return(&B::call)
}

/// The alignment of `B`'s future.
pub const fn align_of_body<B: Body>() -> usize {
    align_of_return(&B::call)
}

/// A pointer to `f`'s return type, so that one expression names the future's type.
fn as_return_ptr<A, R, F: FnOnce(A) -> R>(_: &F, bytes: *mut u8) -> *mut R {
    bytes.cast()
}

/// `N` as a type; implements [`Alignment`] for every power of two from 1 to 4096.
#[derive(Debug)]
pub struct Align<const N: usize>;

/// Maps [`Align<N>`] to a zero-sized type whose alignment is `N`.
pub trait Alignment {
    /// Zero-sized, aligned to `N`.
    type Unit;
}

macro_rules! alignments {
    ($($n:literal => $unit:ident),* $(,)?) => {$(
        #[doc = concat!("Zero-sized, aligned to ", stringify!($n), " bytes.")]
        #[derive(Debug, Clone, Copy)]
        #[repr(align($n))]
        pub struct $unit;
        impl Alignment for Align<$n> {
            type Unit = $unit;
        }
    )*};
}

alignments! {
    1 => Align1, 2 => Align2, 4 => Align4, 8 => Align8, 16 => Align16, 32 => Align32,
    64 => Align64, 128 => Align128, 256 => Align256, 512 => Align512, 1024 => Align1024,
    2048 => Align2048, 4096 => Align4096,
}

/// Bytes for one future: `SIZE` long, aligned to `ALIGN`.
#[repr(C)]
struct Storage<const SIZE: usize, const ALIGN: usize>
where
    Align<ALIGN>: Alignment,
{
    _align: [<Align<ALIGN> as Alignment>::Unit; 0],
    bytes: MaybeUninit<[u8; SIZE]>,
}

/// A named pipeline's future, stored inline: `SIZE` bytes aligned to `ALIGN`, exactly the
/// future of `B::call`. Awaiting it runs the pipeline; dropping it drops the pipeline (and
/// cancels its ops safely).
pub struct Named<B: Body, const SIZE: usize, const ALIGN: usize>
where
    Align<ALIGN>: Alignment,
{
    /// Always holds `B`'s future: written in `new`, dropped in `drop`.
    storage: Storage<SIZE, ALIGN>,
    _marker: PhantomData<(B, *mut (), PhantomPinned)>,
}

/// The build-time check that a future fits its storage (it always does: `SIZE` and `ALIGN`
/// are computed from it).
struct Fits<F, const SIZE: usize, const ALIGN: usize>(PhantomData<F>);

impl<F, const SIZE: usize, const ALIGN: usize> Fits<F, SIZE, ALIGN> {
    const OK: () = assert!(
        size_of::<F>() <= SIZE && align_of::<F>() <= ALIGN,
        "a named pipeline's future does not fit its storage"
    );
}

impl<B: Body, const SIZE: usize, const ALIGN: usize> Named<B, SIZE, ALIGN>
where
    Align<ALIGN>: Alignment,
{
    /// Stores `B`'s future for `args` (runs nothing).
    #[inline]
    pub fn new(args: B::Args) -> Self {
        let future = B::call(args);
        check_fits::<_, SIZE, ALIGN>(&future);
        let mut named = Named {
            storage: Storage {
                _align: [],
                bytes: MaybeUninit::uninit(),
            },
            _marker: PhantomData,
        };
        let at = as_return_ptr(&B::call, named.future_ptr());
        // SAFETY: `at` points to `SIZE` bytes aligned to `ALIGN`, which `check_fits` proved
        // large and aligned enough for the future, at build time. Nothing was there.
        unsafe { at.write(future) };
        named
    }

    /// Runs the pipeline as a task of its own; awaiting the handle gives its result.
    ///
    /// # Panics
    /// If no runtime is running on this thread.
    pub fn spawn(self) -> JoinHandle<Result<(), PipelineError>> {
        crate::spawn(self)
    }

    fn future_ptr(&mut self) -> *mut u8 {
        self.storage.bytes.as_mut_ptr().cast()
    }
}

#[inline(always)]
fn check_fits<F, const SIZE: usize, const ALIGN: usize>(_: &F) {
    const { Fits::<F, SIZE, ALIGN>::OK }
}

impl<B: Body, const SIZE: usize, const ALIGN: usize> Future for Named<B, SIZE, ALIGN>
where
    Align<ALIGN>: Alignment,
{
    type Output = Result<(), PipelineError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: the future is never moved out of the pinned storage (it is polled and
        // dropped in place).
        let this = unsafe { self.get_unchecked_mut() };
        let at = as_return_ptr(&B::call, this.future_ptr());
        // SAFETY: the storage holds `B`'s future from `new` until `drop` (its type is the one
        // `as_return_ptr` names), and it stays at this address: `self` is pinned.
        let future = unsafe { Pin::new_unchecked(&mut *at) };
        future.poll(cx)
    }
}

impl<B: Body, const SIZE: usize, const ALIGN: usize> Drop for Named<B, SIZE, ALIGN>
where
    Align<ALIGN>: Alignment,
{
    fn drop(&mut self) {
        let at = as_return_ptr(&B::call, self.future_ptr());
        // SAFETY: the storage holds `B`'s future (written in `new`, never taken out), and it
        // is dropped once, here.
        unsafe { at.drop_in_place() };
    }
}

impl<B: Body, const SIZE: usize, const ALIGN: usize> fmt::Debug for Named<B, SIZE, ALIGN>
where
    Align<ALIGN>: Alignment,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Named")
            .field("name", &B::NAME)
            .field("size", &SIZE)
            .finish()
    }
}
