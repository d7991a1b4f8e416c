//! [`Task`]: the future of an `async fn`, stored inline in a type that has a name and a
//! constant size.
//!
//! `#[iomgr::task] async fn echo(..)` keeps the body as an ordinary `async fn` (rustc compiles
//! it, so it means exactly what it says) and declares a marker type that implements
//! [`Body`]: its `call` creates that `async fn`'s future. `Task<B, SIZE, ALIGN>` holds the
//! future as `SIZE` bytes aligned to `ALIGN`, and names its type only through `B`, so the
//! type is written once, by rustc, and never by the macro:
//!
//! - `SIZE` and `ALIGN` are computed from the future's layout by `const fn`s over
//!   `B::call` ([`size_of_body`], [`align_of_body`]) when the task is not generic: the task
//!   is exactly as large as the `async fn`'s future;
//! - for a generic task they are a budget (`#[iomgr::task(size = N)]`), checked when the
//!   task is instantiated.

use core::fmt;
use core::future::Future;
use core::marker::{PhantomData, PhantomPinned};
use core::mem::{MaybeUninit, align_of, size_of};
use core::pin::Pin;
use core::task::{Context, Poll};

use super::align::{Align, Alignment};
use super::await_point::{AwaitPoint, AwaitTable};
use super::pool::{PoolJoinHandle, Pooled, SpawnError};

/// What `#[iomgr::task]` declares for each task: how to create its body's future.
///
/// Implemented by the macro only; the trait may change without notice.
#[doc(hidden)]
pub trait Body: Sized {
    /// The function's arguments, as a tuple.
    type Args;
    /// The function's return type.
    type Output;
    /// The function's name.
    const NAME: &'static str;
    /// The body's table of `.await`s.
    type Awaits: AwaitTable;
    /// Creates the body's future (runs nothing).
    fn call(args: Self::Args) -> impl Future<Output = Self::Output>;
}

/// The size of what `f` returns (a function's future), without calling it.
#[doc(hidden)]
pub const fn size_of_return<A, R, F: FnOnce(A) -> R>(_: &F) -> usize {
    size_of::<R>()
}

/// The alignment of what `f` returns, without calling it.
#[doc(hidden)]
pub const fn align_of_return<A, R, F: FnOnce(A) -> R>(_: &F) -> usize {
    align_of::<R>()
}

/// The size of `B`'s future: the `SIZE` of a non-generic task.
#[doc(hidden)]
pub const fn size_of_body<B: Body>() -> usize {
    size_of_return(&B::call)
}

/// The alignment of `B`'s future: the `ALIGN` of a non-generic task.
#[doc(hidden)]
pub const fn align_of_body<B: Body>() -> usize {
    align_of_return(&B::call)
}

/// A pointer to `f`'s return type, so that one expression names the future's type.
fn as_return_ptr<A, R, F: FnOnce(A) -> R>(_: &F, bytes: *mut u8) -> *mut R {
    bytes.cast()
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

/// The future of a `#[iomgr::task]`, stored inline: a type with a name and a constant size.
///
/// Every task declares an alias for it (`EchoTask` for `async fn echo`); see the
/// [module docs](mod@crate::task). It behaves exactly like the `async fn`'s own future: polling
/// polls it, dropping drops it (and so everything it holds, in rustc's order), polling after
/// completion panics as an `async fn` does.
///
/// A task is `!Send` (tasks run on the thread that spawned them) and `!Unpin`.
pub struct Task<B: Body, const SIZE: usize, const ALIGN: usize>
where
    Align<ALIGN>: Alignment,
{
    /// Always holds `B`'s future: written in `new`, dropped in `drop`.
    storage: Storage<SIZE, ALIGN>,
    _marker: PhantomData<(B, *mut (), PhantomPinned)>,
}

/// The build-time check that a future fits a task's storage. Named so that the error
/// message says what failed.
struct FitsTaskSize<F, const SIZE: usize, const ALIGN: usize>(PhantomData<F>);

impl<F, const SIZE: usize, const ALIGN: usize> FitsTaskSize<F, SIZE, ALIGN> {
    /// Fails the build with ``attempt to compute `SIZE - needed` `` when the future is larger
    /// than `SIZE`: the second number is the size to write in `#[iomgr::task(size = N)]`.
    #[rustfmt::skip]
    const BYTES_LEFT: usize =
        SIZE - size_of::<F>(); // too small: `#[iomgr::task(size = <the 2nd number>)]`
    const ALIGNED: () = assert!(
        align_of::<F>() <= ALIGN,
        "the task's future needs a larger alignment than its storage has"
    );
}

impl<B: Body, const SIZE: usize, const ALIGN: usize> Task<B, SIZE, ALIGN>
where
    Align<ALIGN>: Alignment,
{
    /// Creates the task (runs nothing: the body starts at the first poll).
    #[doc(hidden)]
    #[inline]
    pub fn new(args: B::Args) -> Self {
        let future = B::call(args);
        check_fits::<_, SIZE, ALIGN>(&future);
        let mut task = Task {
            storage: Storage {
                _align: [],
                bytes: MaybeUninit::uninit(),
            },
            _marker: PhantomData,
        };
        let at = as_return_ptr(&B::call, task.future_ptr());
        // SAFETY: `at` points to `SIZE` bytes aligned to `ALIGN`, which `check_fits` proved
        // large and aligned enough for the future, at build time. Nothing was there.
        unsafe { at.write(future) };
        task
    }

    /// The task's function name.
    pub fn name(&self) -> &'static str {
        B::NAME
    }

    /// The `.await`s written in the task's body, in source order.
    pub fn await_points() -> &'static [AwaitPoint] {
        <B::Awaits as AwaitTable>::AWAITS
    }

    /// Spawns the task on the current runtime from its pool (`#[iomgr::task(pool = N)]`):
    /// no allocation. `Err(SpawnError)` when all `N` slots of this thread's pool hold tasks
    /// that are running or whose [`PoolJoinHandle`] is alive.
    ///
    /// # Panics
    /// If no runtime is running on this thread (like [`crate::spawn`]).
    #[track_caller]
    pub fn spawn(self) -> Result<PoolJoinHandle<B::Output>, SpawnError>
    where
        B: Pooled<Self>,
    {
        B::spawn(self)
    }

    /// The future's address. Taken without a reference to the bytes: the future may hold
    /// pointers into itself (a borrow of a local across an `.await`), which a `&mut` to its
    /// bytes would invalidate. A `&mut Task` is fine: `Task` is `!Unpin`, so such a reference
    /// does not claim its memory is unaliased.
    fn future_ptr(&mut self) -> *mut u8 {
        core::ptr::addr_of_mut!(self.storage.bytes).cast()
    }
}

#[inline(always)]
fn check_fits<F, const SIZE: usize, const ALIGN: usize>(_: &F) {
    const {
        let _ = FitsTaskSize::<F, SIZE, ALIGN>::BYTES_LEFT;
        FitsTaskSize::<F, SIZE, ALIGN>::ALIGNED
    }
}

impl<B: Body, const SIZE: usize, const ALIGN: usize> Future for Task<B, SIZE, ALIGN>
where
    Align<ALIGN>: Alignment,
{
    type Output = B::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<B::Output> {
        // SAFETY: the future is never moved out of the pinned task (it is polled and dropped
        // in place).
        let this = unsafe { self.get_unchecked_mut() };
        let at = as_return_ptr(&B::call, this.future_ptr());
        // SAFETY: the storage holds `B`'s future from `new` until `drop` (its type is the one
        // `as_return_ptr` names), and it stays at this address: the task is pinned.
        unsafe { Pin::new_unchecked(&mut *at) }.poll(cx)
    }
}

impl<B: Body, const SIZE: usize, const ALIGN: usize> Drop for Task<B, SIZE, ALIGN>
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

impl<B: Body, const SIZE: usize, const ALIGN: usize> fmt::Debug for Task<B, SIZE, ALIGN>
where
    Align<ALIGN>: Alignment,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("name", &B::NAME)
            .field("size", &SIZE)
            .finish()
    }
}
