//! Tasks: `#[iomgr::task]` lowers an `async fn` into a named, fixed-size state machine.
//!
//! ```no_run
//! use std::io;
//! use iomgr::buf::BufExt;
//! use iomgr::net::{TcpListener, TcpStream};
//!
//! #[iomgr::task(slot = 320, local = 8)]
//! async fn echo(stream: TcpStream) -> io::Result<u64> {
//!     let mut buf: Vec<u8> = vec![0; 4096];
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
//! // The task is a type: it can be named, stored, and its size is a constant.
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
//!         iomgr::spawn(echo(stream));
//!     }
//! })
//! # }
//! ```
//!
//! # What the macro generates
//!
//! For `async fn name(args) -> T`, the macro emits:
//!
//! - `struct NameTask` (the function's name in `UpperCamelCase` followed by `Task`; choose
//!   another with `#[iomgr::task(name = MyName)]`), with the function's generics and
//!   visibility. It implements `Future<Output = T>`, `Debug` and `Drop`; it is `!Send`
//!   (thread-per-core) and `!Unpin` (the awaited future may borrow the task's fields).
//! - `fn name(args) -> NameTask`, which only moves the arguments into the struct. Nothing
//!   runs until the task is polled. `impl Trait` arguments become type parameters; elided
//!   lifetimes in arguments become lifetime parameters.
//!
//! The struct holds:
//!
//! - the **awaiter slot**: the future being awaited, stored inline in `slot` bytes (default
//!   128). Only one `.await` is in progress at a time, so all awaits share it;
//! - the **state**: which `.await` the task is suspended at (`u16`);
//! - the locals that live across an `.await`: a local with a written type (`let x: T`, or
//!   an argument) is a field of type `Option<T>`; a local whose type nobody wrote is stored
//!   in a byte slot of `local` bytes (default 32). Locals that are never stored at the same
//!   time share a byte slot.
//!
//! Nothing is allocated on the heap, ever: the struct is the whole task.
//!
//! # The accepted language
//!
//! - `let` with patterns and optional types, `let`-`else` (awaiting in the `else` too),
//!   shadowing, nested blocks;
//! - `if`/`else if`/`else`, `if let` (and `let` chains), `match` with guards;
//! - `loop`, `while`, `while let`, `for` (the iterator is kept in the task), labelled
//!   `break`/`continue`, `break` with a value (from `loop` and labelled blocks);
//! - `return`, `?` on `Result` (the error converted with `From`) and on `Option`;
//! - `.await` in statement position, in a `let` initializer, on the right of `=`, as the tail
//!   expression, in a `return`/`break` value, as a `match` scrutinee or `if` condition, as a
//!   method-chain receiver (`f.await.len()`), on the right of `&&`/`||` (evaluated only
//!   when needed), and as an operand after other operands
//!   (`a + f.await`, `g(x(), f.await)`: the earlier operands are evaluated first and kept,
//!   as in an `async fn`). `if`/`match`/`loop`/blocks with an `.await` inside may be used as
//!   values (`let x = if c { a.await } else { 0 };`);
//! - awaiting any `IntoFuture`: runtime ops, other tasks, channels, `async` blocks, futures
//!   from other crates;
//! - generic functions, `impl Trait` arguments, borrowed arguments (`&str`, `&'a T`);
//! - items, closures and `async` blocks inside the body (their `.await`s are their own).
//!
//! Code without `.await` is kept as written, inside one block of the generated `poll`.
//!
//! # Rules (each is a compile error that says what to write instead)
//!
//! 1. **The awaited future must fit the awaiter slot.** `cargo build` (not `cargo check`)
//!    fails with ``attempt to compute `128_usize - 320_usize`, which would overflow``,
//!    naming the future's type: the second number is the size needed. Write
//!    `#[iomgr::task(slot = 320)]`. (To find every size at once, build with `slot = 1`.)
//! 2. **A local without a written type that lives across an `.await` must fit `local`
//!    bytes.** Same error from `LocalSlot::put`; annotate its type (`let v: Vec<u8> = ...`,
//!    stored exactly) or raise `#[iomgr::task(local = N)]`.
//! 3. **No borrow of a local across an `.await`.** Locals are moved into the task between
//!    blocks, so a reference to another local cannot be kept: `let r = &v; f.await; r.len()`
//!    is an error at `r` ("keep the owned value across the `.await` and borrow it again
//!    after it"); a `for` loop over `&v`/`v.iter()` whose body awaits is an error ("iterate
//!    over indices or an owned iterator"). Borrows of the task's *arguments'* referents and
//!    `'static` data are fine, and the awaited future itself may borrow the task's locals
//!    (`stream.read(buf)` borrows `stream`): they stay in place while it runs.
//! 4. **`.await` must be reachable by the lowering**: not inside a closure (use a loop, or an
//!    `async` block), not inside another macro's arguments (`let v = f.await;` first), not in
//!    a match guard or a `let` chain (await before the `match`/`if`), not in an `unsafe`
//!    block (keep `unsafe` around the unsafe call only).
//! 5. **Methods are not tasks**: no `self` receiver; take the value as an argument.
//! 6. **A method that consumes a local** is recognised by name (`into_*`, `unwrap*`,
//!    `expect`, `slice`, `ok`, `err`, `map`, `collect`, ...); any other method call is taken
//!    to borrow its receiver, which then stays alive to the end of its scope. If a method
//!    with another name consumes a local that is still in scope, the build fails with "use
//!    of moved value": call it as `Type::method(local)`.
//!
//! Locals are *moved* between the task's fields and `poll`'s stack at each `.await` (a
//! move, like passing a value to a function): safe code cannot tell, but `unsafe` code must
//! not rely on a local keeping its address across an `.await` (an `async fn` pins its
//! locals; a task pins only the future being awaited and the locals it borrows while it
//! runs).
//!
//! Drops happen where the `async fn` would do them (end of scope, or when moved), with one
//! difference: a local whose value may borrow another local (initialized by a method call
//! on a local, or a reference to one) and that is no longer used is dropped at the next
//! `.await` rather than at the end of its scope. Dropping a task drops the awaited future
//! first (so in-flight ops are cancelled safely), then each stored local exactly once,
//! latest declared first. Polling a task after it completed (or panicked) panics.
//!
//! # Known gaps
//!
//! These differ from the same `async fn` today (each is an `#[ignore]`d twin test in
//! `tests/tests/task_twins.rs`), so avoid them:
//!
//! - assigning to a local *inside* the expression being awaited (`{ v = w; fut(&v) }.await`)
//!   assigns a copy the task then discards: assign before the `.await` expression instead;
//! - temporaries made in a `match` scrutinee that contains an `.await` in an arm are dropped
//!   before the arm runs, not at the end of the `match`: bind the scrutinee to a local first;
//! - a `break` inside the expression being awaited drops the locals stored for that `.await`
//!   only when the task is dropped: compute the condition before the `.await`.
//!
//! `#![deny(unsafe_code)]` does not reach an `unsafe` block written inside a task body (the
//! generated poll function allows `unsafe_code` for its own glue).
//!
//! # Pools: `#[iomgr::task(pool = N)]`
//!
//! Reserves `N` instances of the task per thread in static storage and adds
//! `NameTask::spawn(self) -> Result<PoolJoinHandle<T>, SpawnError>`: spawning allocates
//! nothing. A slot is free again once its task finished (or was aborted, or its runtime shut
//! down) and its [`PoolJoinHandle`] was awaited or dropped. Spawning when all `N` slots are
//! taken returns [`SpawnError`], whose message names the task and `N`; it never panics or
//! queues. A pooled task must be `'static` and not generic (one concrete type per pool):
//! both are compile errors. Call `spawn` inside `Runtime::block_on` (it panics otherwise,
//! like [`crate::spawn`]).
//!
//! # The expansion of a small task
//!
//! ```ignore
//! #[iomgr::task(slot = 64)]
//! pub async fn greet(conn: Conn, name: String) -> io::Result<usize> {
//!     let msg = format!("hello {name}\n");
//!     let (res, _) = conn.send(msg.into_bytes()).await;
//!     res
//! }
//! ```
//!
//! becomes (abridged; `p::` is `::iomgr::task::__private::`):
//!
//! ```ignore
//! pub struct GreetTask {
//!     __iomgr_slot: p::AwaitSlot<64>,       // the awaited future
//!     __iomgr_state: u16,                    // 0: not started, 1: at the .await
//!     __iomgr_conn_0: Option<Conn>,          // locals stored across the .await
//!     __iomgr_name_1: Option<String>,
//!     __iomgr_marker: PhantomData<PhantomPinned>,
//! }
//!
//! impl Future for GreetTask {
//!     type Output = io::Result<usize>;
//!     fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
//!         let this = unsafe { self.get_unchecked_mut() };
//!         Self::__iomgr_poll(this, cx, p::Brand::new(), p::Brand::new())
//!     }
//! }
//!
//! impl GreetTask {
//!     fn __iomgr_poll<'f, 'l>(this: &'f mut Self, cx: &mut Context<'_>,
//!                             bf: p::Brand<'f>, bl: p::Brand<'l>) -> Poll<io::Result<usize>>
//!     where Self: 'l {
//!         let wa0 = p::Witness::new();       // names the awaited future's type
//!         let mut next = this.__iomgr_state;
//!         'dispatch: loop {
//!             match next {
//!                 0 => {
//!                     this.__iomgr_state = RUNNING;
//!                     let mut conn = unsafe { p::take_typed(&mut this.__iomgr_conn_0) };
//!                     let mut name = unsafe { p::take_typed(&mut this.__iomgr_name_1) };
//!                     let msg = format!("hello {name}\n");          // user code, as written
//!                     this.__iomgr_conn_0 = Some(conn);            // stored before the
//!                     this.__iomgr_name_1 = Some(name);            // future borrows them
//!                     this.__iomgr_state = 1;
//!                     let r = unsafe { p::field(bf, p::typed_ptr(&mut this.__iomgr_conn_0)) };
//!                     let fut = IntoFuture::into_future((*r).send(msg.into_bytes()));
//!                     this.__iomgr_slot.put(bf, &wa0, fut);        // size checked here
//!                     next = 1;
//!                     continue 'dispatch;                          // poll it right away
//!                 }
//!                 1 => {
//!                     let aw = match unsafe { this.__iomgr_slot.poll_as(&wa0, cx) } {
//!                         Poll::Ready(v) => v,                     // the future is dropped
//!                         Poll::Pending => return Poll::Pending,
//!                     };
//!                     this.__iomgr_state = RUNNING;
//!                     let mut conn = unsafe { p::take_typed(&mut this.__iomgr_conn_0) };
//!                     let mut name = unsafe { p::take_typed(&mut this.__iomgr_name_1) };
//!                     let (res, _) = aw;
//!                     return Poll::Ready({ let r: io::Result<usize> = res; r });
//!                 }
//!                 _ => p::polled_after_completion("greet"),
//!             }
//!         }
//!     }
//! }
//!
//! pub fn greet(conn: Conn, name: String) -> GreetTask {
//!     GreetTask { __iomgr_slot: p::AwaitSlot::new(), __iomgr_state: 0,
//!                 __iomgr_conn_0: Some(conn), __iomgr_name_1: Some(name), .. }
//! }
//! ```
//!
//! `Witness<F>` is a zero-sized local whose type parameter is inferred from the `put` in one
//! arm and used by `poll_as` in another: one function body, so one type, written by nobody.
//! `Brand<'f>` makes the future prove `F: 'f` (it may borrow the task's fields, never
//! `poll`'s stack); `Brand<'l>` makes a stored local prove `T: 'l` (it may borrow what the
//! arguments borrow, never another local or the task itself). `IOMGR_DEBUG_EXPAND=<fn name>
//! cargo build` prints a task's full expansion.
//!
//! # Sizes
//!
//! The handlers of `tests/tests/task_handlers.rs`, each with its exact `slot`/`local`,
//! beside rustc's future for the same `async fn` (bytes, x86_64, printed by the
//! `task_sizes` test):
//!
//! | handler | `#[iomgr::task]` | `async fn` |
//! |---|---:|---:|
//! | echo | 376 | 344 |
//! | lines | 368 | 432 |
//! | http | 376 | 360 |
//! | copy | 488 | 448 |
//! | frames | 440 | 320 |
//! | session | 184 | 192 |
//! | accept | 208 | 120 |
//! | deadline | 256 | 256 |
//!
//! A task is smaller when rustc keeps copies of a future's arguments next to the future or
//! does not overlap locals; it is larger when it has many locals without a written type
//! (each byte slot is `local` bytes plus an 8-byte drop function).

mod pool;

pub use pool::{PoolJoinHandle, SpawnError};

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
