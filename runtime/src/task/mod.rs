//! Tasks: `#[iomgr::task]` gives an `async fn`'s future a name and a constant size.
//!
//! ```no_run
//! use std::io;
//! use iomgr::buf::BufExt;
//! use iomgr::net::{TcpListener, TcpStream};
//!
//! #[iomgr::task(pool = 64)]
//! async fn echo(stream: TcpStream) -> io::Result<u64> {
//!     let mut buf = vec![0u8; 4096];
//!     let mut total = 0u64;
//!     loop {
//!         let (res, b) = stream.read(buf).await;
//!         let n = res?;
//!         if n == 0 {
//!             return Ok(total);
//!         }
//!         total += n as u64;
//!         let (res, b) = stream.write_all(b.slice(..n)).await;
//!         res?;
//!         buf = b.into_inner();
//!     }
//! }
//!
//! // The task is a type: it can be named, stored, and its size is a constant, exactly the
//! // size of the `async fn`'s future.
//! struct Connection {
//!     handler: EchoTask,
//! }
//! const ECHO_SIZE: usize = std::mem::size_of::<EchoTask>();
//!
//! # fn main() -> io::Result<()> {
//! iomgr::Runtime::new()?.block_on(async {
//!     let listener = TcpListener::bind("127.0.0.1:7000")?;
//!     loop {
//!         let (stream, _) = listener.accept().await?;
//!         // From a per-thread pool of 64: no allocation. Or `iomgr::spawn(echo(stream))`.
//!         if let Err(e) = echo(stream).spawn() {
//!             eprintln!("{e}");
//!         }
//!     }
//! })
//! # }
//! ```
//!
//! # What you get
//!
//! - **A named type**, `EchoTask` (the function's name in `UpperCamelCase` followed by `Task`;
//!   choose another with `#[iomgr::task(name = MyName)]`), an alias of [`Task`]. It is a
//!   `Future` with the function's output. Store it in a struct, put it in an array, return it
//!   from a trait method: no `Box<dyn Future>`, no `impl Future` that callers cannot name.
//! - **A constant size**: `size_of::<EchoTask>()` is exactly the size of the `async fn`'s own
//!   future (rustc's layout, to the byte), and is known when the crate compiles.
//! - **Spawning without allocation**: `#[iomgr::task(pool = N)]` reserves `N` tasks per
//!   thread in static storage and adds `EchoTask::spawn(self)`; see [Pools](#pools).
//! - **Named await points**: every `.await` written in the body is numbered with its source
//!   location ([`AwaitPoint`]), and the task records which one it is suspended at
//!   ([`take_last_await`]; runtime task dumps build on it).
//! - `fn echo(stream: TcpStream) -> EchoTask`: the function keeps its name and arguments.
//!   Calling it runs nothing; the body starts at the first poll.
//!
//! # A task means exactly what its `async fn` means
//!
//! This is the rule the macro is built on: **a task behaves exactly like the same `async fn`
//! (its value, its side effects, the order of its drops, where it is pending), or it does not
//! compile.** There is no third outcome. The argument:
//!
//! 1. **The body is not translated.** The macro emits the function, body and signature as
//!    written, as an ordinary `async fn` nested in the generated code in the same module and
//!    block as the original, so rustc compiles it, resolves its names and lays out its state
//!    machine exactly as it would without the attribute. Scopes, shadowing, temporaries, drop
//!    order, match ergonomics, closures' captures, borrows held across `.await`, `?`, labelled
//!    breaks, `select!`-style macros: all rustc's. Inside the body, the function's own name
//!    is that plain `async fn` (as it is without the attribute); `self::echo` is the task's
//!    constructor.
//! 2. **One rewrite: `expr.await` becomes `track::<Table, N, _>(expr).await`.** `track`
//!    calls `IntoFuture::into_future(expr)`, which `.await` calls first anyway, and wraps the
//!    future in [`Tracked`](__private::Tracked), whose `poll` calls the inner `poll` once and
//!    returns what it returned (recording the `N`th entry of the task's table of `.await`s
//!    when it is pending: one thread-local write). `expr` stays an operand of the same
//!    awaited expression, so it is evaluated at the same point and its temporaries are dropped
//!    at the same point; the output is the same value; the task is pending exactly when the
//!    future is. `.await`s in closures, `async` blocks, nested items and other macros'
//!    arguments are not rewritten at all.
//! 3. **The task stores the future and forwards to it.** [`Task`] keeps the future in bytes
//!    of its exact size and alignment, written once by the constructor and never moved out:
//!    its `poll` polls the future in place, its `drop` drops it in place (so a task dropped
//!    while suspended drops what the future holds, in rustc's order), and polling a finished
//!    task panics as a finished `async fn` does. Moving a task before its first poll moves an
//!    unresumed future, as moving the `async fn`'s future would.
//!
//! Where the macro cannot know something, the difference is a compile error, never a
//! different behaviour:
//!
//! - a task is `!Send` and `!Sync` even when the `async fn`'s future would be `Send`
//!   (tasks run on the thread that spawned them): sending one to another thread does not
//!   compile;
//! - a generic task's size depends on its type parameters, so it is a budget checked when
//!   the crate is built; see [Rules](#rules).
//!
//! The differential fuzzer in `task-fuzz/` checks this: it generates random bodies (shadowing
//! in every binding position, nested blocks and items, every control-flow form, `?` and
//! `return` inside awaited expressions, moves into closures and `async` blocks, temporaries in
//! scrutinees, `.await` in every operand position, ...), compiles each twice, as a task and
//! as a plain `async fn`, and compares their values and event logs, including drops of tasks
//! dropped at every pending point.
//!
//! # Rules
//!
//! Each is a compile error of ours that says what to write instead (and a UI test in
//! `ui-tests/ui/task/`):
//!
//! 1. `#[iomgr::task]` goes on a free `async fn`: not on a function that is not `async`,
//!    `const`, `unsafe` or `extern`, and not on a method (a type cannot be declared inside an
//!    `impl`): take the receiver as an ordinary argument.
//! 2. The return type is written (not `impl Trait`): it is the task type's `Output`.
//! 3. **A generic task has a size budget**: 1024 bytes unless
//!    `#[iomgr::task(size = N)]`. A task over its budget fails `cargo build` (not
//!    `cargo check`: the size is only known for a concrete type) with
//!    ``attempt to compute `64_usize - 1032_usize`, which would overflow``, on a line that
//!    says ``too small: `#[iomgr::task(size = <the 2nd number>)]` ``.
//! 4. **A task whose body names its own type** (`EchoTask` inside `echo`) needs
//!    `size = N`: a size computed from the body cannot depend on itself. (Through other
//!    tasks, such a cycle is reported by rustc as "cycle detected when computing type of
//!    ...": give one of the tasks `size = N`.)
//! 5. `pool = N` needs a task that is `'static` and not generic.
//!
//! # Known gaps
//!
//! None in behaviour: the fuzzer's long run (20,000 random bodies, seeds 42 and 43;
//! `task-fuzz/`) found no program whose task and `async fn` differ, and rejected none. What remains are rejections and type-level differences, each a compile error:
//!
//! - a task is `!Send`/`!Sync` even when its `async fn`'s future would be `Send`;
//! - a generic task has a size budget (rule 3); a task naming its own type needs
//!   `size = N` (rule 4);
//! - an `#[iomgr::task]` cannot be a method or an associated function (rule 1).
//!
//! And one note on observability, not behaviour: an `.await` written inside another macro's
//! arguments (`select!`, `println!("{}", f.await)`) is not numbered, so a task suspended there
//! reports no [`AwaitPoint`].
//!
//! Because the body is rustc's own `async fn`, a task also shares rustc's bugs: task-fuzz
//! found that rustc 1.95 miscompiles a `match` on an indexed place whose guard awaits
//! (`match [6, 7, 7][i] { 0..=6 if async { false }.await => 1, y => y }` segfaults in debug
//! builds); the task and the `async fn` fail alike (`task-fuzz/README.md` has the
//! reproducer).
//!
//! # Pools
//!
//! `#[iomgr::task(pool = N)]` reserves `N` instances of the task per thread in static
//! storage; `EchoTask::spawn(self) -> Result<PoolJoinHandle<T>, SpawnError>` spawns without
//! allocating. A slot is free again once its task finished (or was aborted, or its runtime
//! shut down) and its [`PoolJoinHandle`] was awaited or dropped. Spawning when all `N` slots
//! are taken returns [`SpawnError`], whose message names the task and `N`; it never panics or
//! queues. Call `spawn` inside `Runtime::block_on` (it panics otherwise, like
//! [`crate::spawn`]).
//!
//! # The expansion
//!
//! ```ignore
//! #[iomgr::task]
//! pub async fn greet(conn: Conn, name: &str) -> io::Result<usize> { /* body */ }
//! ```
//!
//! becomes (abridged; `p::` is `::iomgr::task::__private::`):
//!
//! ```ignore
//! #[doc(hidden)]
//! pub struct __GreetTaskBody<'name>(PhantomData<fn(&'name ()) -> &'name ()>);
//!
//! pub struct __GreetTaskAwaits;
//! impl p::AwaitTable for __GreetTaskAwaits {
//!     const AWAITS: &'static [AwaitPoint] = &[/* file, line, column, expression */];
//! }
//!
//! impl<'name> p::Body for __GreetTaskBody<'name> {
//!     type Args = (Conn, &'name str);
//!     type Output = io::Result<usize>;
//!     const NAME: &'static str = "greet";
//!     type Awaits = __GreetTaskAwaits;
//!     fn call(args: Self::Args) -> impl Future<Output = io::Result<usize>> {
//!         async fn greet(conn: Conn, name: &str) -> io::Result<usize> {
//!             /* body, each `x.await` written `p::track::<__GreetTaskAwaits, N, _>(x).await` */
//!         }
//!         let (conn, name) = args;
//!         greet(conn, name)
//!     }
//! }
//!
//! pub type GreetTask<'name> = Task<__GreetTaskBody<'name>,
//!     { p::size_of_body::<__GreetTaskBody<'static>>() },
//!     { p::align_of_body::<__GreetTaskBody<'static>>() }>;
//!
//! pub fn greet<'name>(conn: Conn, name: &'name str) -> GreetTask<'name> {
//!     Task::new((conn, name))
//! }
//! ```
//!
//! `size_of_body` is a `const fn` that takes the size of what `Body::call` returns without
//! calling it: the future's type is written by nobody, yet its size is a constant. A layout
//! does not depend on lifetimes, so the constant is computed with `'static` ones (a
//! type-level constant may not name the task's lifetimes). `IOMGR_DEBUG_EXPAND=<fn name>
//! cargo build` prints a task's full expansion.
//!
//! # Sizes
//!
//! The handlers of `tests/tests/task_handlers.rs` (bytes, x86_64; the `task_sizes` test checks
//! the equality):
//!
//! | handler | `#[iomgr::task]` | `async fn` |
//! |---|---:|---:|
//! | echo | 344 | 344 |
//! | lines | 432 | 432 |
//! | http | 360 | 360 |
//! | copy | 448 | 448 |
//! | frames | 320 | 320 |
//! | session | 192 | 192 |
//! | accept | 120 | 120 |
//! | deadline | 256 | 256 |

mod align;
mod await_point;
mod inline;
mod pool;

pub use await_point::{AwaitPoint, take_last_await};
pub use inline::Task;
pub use pool::{PoolJoinHandle, SpawnError};

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
