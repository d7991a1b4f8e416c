//! Pipelines: a source, adapters, a sink, moved as one state machine with back-pressure.
//!
//! After ioManager's pipelines. A **source** produces items, **adapters** transform or filter
//! them, a **sink** consumes them; [`pipeline!`](crate::pipeline!) writes the chain and turns
//! it into one value, a [`Pipeline`], that moves every stage as soon as it can:
//!
//! ```no_run
//! use iomgr::net::{TcpListener, TcpStream};
//! use iomgr::pipeline::Lines;
//!
//! async fn upper_case_lines(stream: TcpStream) -> Result<(), iomgr::pipeline::PipelineError> {
//!     iomgr::pipeline! {
//!         &stream                             // source: reads the stream
//!         => Lines::new(8 * 1024)             // decoder: bytes in, lines out (at most 8 KiB)
//!         => |line| line.to_uppercase()       // function: String -> String
//!         => Lines::encoder()                 // encoder: each line and a '\n'
//!         => &stream                          // sink: writes to the stream
//!     }
//!     .run()
//!     .await
//! }
//!
//! # fn main() -> std::io::Result<()> {
//! iomgr::Runtime::new()?.block_on(async {
//!     let listener = TcpListener::bind("127.0.0.1:7000")?;
//!     loop {
//!         let (stream, _) = listener.accept().await?;
//!         iomgr::spawn(upper_case_lines(stream));
//!     }
//! })
//! # }
//! ```
//!
//! # Stages
//!
//! | position | what can be there |
//! |---|---|
//! | first: a [`Source`] | `&TcpStream`, `&UnixStream` or a [`ReadHalf`](crate::net::ReadHalf) (byte [`Chunk`]s); `&File` or a `File` (its bytes, from the start); `&UdpSocket` (`(Chunk, SocketAddr)` datagrams); a [`Receiver`](crate::sync::Receiver) or [`AsyncReceiver`](crate::sync::AsyncReceiver); any [`futures_core::Stream`]; [`iter`]; your own [`Source`] |
//! | middle: an [`Adapter`] | a function or closure: `T -> U` maps, `T -> Option<U>` filters (`None` drops the item), `T -> Result<U, E>` may fail, and one returning a future (`async \|x\| ...`) is asynchronous; a [`Decoder`] ([`Lines`], [`LengthDelimited`], [`FixedSize`], yours) turns byte buffers into frames; an [`Encoder`] (`Lines::encoder()`, ...) turns items into bytes; your own [`Adapter`] |
//! | last: a [`Sink`] | `&TcpStream`, `&UnixStream` or a [`WriteHalf`](crate::net::WriteHalf) (any owned buffer: `Vec<u8>`, `String`, `Chunk`, ...); `&File` or a `File`; `&UdpSocket` (`(buffer, SocketAddr)`); a [`Sender`](crate::sync::Sender) or [`AsyncSender`](crate::sync::AsyncSender); `&mut Vec<T>`; [`for_each`]; your own [`Sink`] |
//!
//! A stage is an owned value or a borrow: `&stream` reads a stream the caller keeps,
//! `&mut decoder` lends a decoder whose state outlives the pipeline. Stages are evaluated in
//! order, once, when the pipeline is made.
//!
//! # Segments and back-pressure
//!
//! Between two stages is a **segment**, which holds at most one item. Each segment is in one
//! of ioManager's four states ([`SegmentState`]): *idle*, *pulling* (the stage before it is
//! working on an item: a read in flight), *holding* (an item waits for the stage after it),
//! *pushing* (the stage after it took the item and is working on it: a write in flight).
//!
//! Polling the pipeline asks the sink to take from its segment; an empty segment asks the
//! stage before it for an item, which takes from its own segment, and so on back to the
//! source. So every stage moves as soon as both of its ends are ready: a socket is read while
//! the previous chunk is still being written. And a segment that holds an item stops the
//! stages before it: **a slow sink stops the source's reads**, and at most one item per
//! segment (plus what each stage holds inside itself, one op's buffer for an I/O stage) is in
//! flight however fast the source is. Running a pipeline allocates nothing per item beyond
//! what its stages allocate: byte sources recycle their [`Chunk`]s through a [`ChunkPool`].
//!
//! # The end, and errors
//!
//! When the source ends, every segment drains in order, each decoder checks that no partial
//! frame is left, and the sink writes what it has, then closes (a socket writer shuts the
//! write direction down, an owned sender is dropped). The pipeline's output is then `Ok(())`.
//!
//! The first stage that fails stops the pipeline at once, and its output is a
//! [`PipelineError`] that names the stage (its position, 0 being the source, and its
//! expression as written) and hands back the item that stage had in hand (a failed write's
//! buffer, a decoder's unfinished frame). Items still between stages are dropped with the
//! pipeline. A function stage fails by returning `Err(e)` for any `e` that converts into
//! `Box<dyn Error + Send + Sync>` (an `io::Error` keeps its kind). Dropping a pipeline before
//! it finished drops its stages: their in-flight ops are cancelled safely (their buffers stay
//! with the runtime until the kernel is done with them).
//!
//! # Running it
//!
//! A [`Pipeline`] is a future: `pipeline.run().await` (or just `.await`) runs it in the
//! current task, `pipeline.spawn()` runs it as a task of its own and returns a
//! [`JoinHandle`](crate::JoinHandle) whose output is the pipeline's result.
//!
//! The item form gives a pipeline a name, like a `#[iomgr::task]`:
//!
//! ```no_run
//! use iomgr::net::TcpStream;
//! use iomgr::pipeline::Lines;
//!
//! fn shout(line: String) -> String {
//!     line.to_uppercase()
//! }
//!
//! iomgr::pipeline! {
//!     /// Echoes lines, upper-cased.
//!     pub LineEcho(stream: TcpStream) =
//!         stream.reader() => Lines::new(8192) => shout => Lines::encoder() => stream.writer();
//! }
//!
//! struct Connection {
//!     echo: LineEcho, // a type with a name and a constant size
//! }
//! const SIZE: usize = std::mem::size_of::<LineEcho>();
//!
//! # async fn serve(stream: TcpStream) {
//! let handle = LineEcho::new(stream).spawn(); // or `LineEcho::new(stream).await`
//! # let _ = handle;
//! # }
//! ```
//!
//! # Types are checked hop by hop
//!
//! Each stage must take what the stage before it gives. A mismatch is a compile error at the
//! stage, naming both stages and both types:
//!
//! ```text
//! error[E0277]: stage 2 `|n: u32| n + 1` takes `u32`, but stage 1 `Lines::new(64)` gives `String`
//!  --> src/main.rs:8:12
//!   |
//! 8 |         => |n: u32| n + 1
//!   |            ^^^^^^^^^^^^^^ takes `u32`
//!   |
//!   = note: stage 1 `Lines::new(64)` gives `String`: each stage takes what the stage before
//!           it gives; convert between them with a function stage, `=> |item| ...`
//! ```
//!
//! A closure whose argument has no type written takes the previous stage's items (rustc
//! infers it). A stage that is generic over its input (a decoder, an encoder, a socket
//! writer) takes the previous stage's item type, and says so when it cannot (`u32` is not a
//! byte buffer: this sink writes byte buffers). An empty pipeline, a pipeline without a sink
//! (or without a source), a sink or a source in the middle, and `.await` where a stage should
//! be are errors that say what to write instead; `ui-tests/ui/pipeline/` has each one.
//!
//! # The expansion
//!
//! ```ignore
//! iomgr::pipeline! { &stream => Lines::new(64) => |l| l.len() => &mut lengths }
//! ```
//!
//! becomes (abridged; `p::` is `::iomgr::pipeline::__private::`, and every call is spanned
//! over the stage it checks, so that errors point at the stage as written):
//!
//! ```ignore
//! {
//!     // Stage 0. What is it? Probe its type, most specific layer first: a source.
//!     let s0 = p::SourceProbe::new(&stream);
//!     let s0 = (&&&&&s0).__iomgr_source().stage(s0);     // SocketReader<&TcpStream>
//!     let t0 = p::out_of_source(&s0);                     // its item type, as a value
//!
//!     // Stage 1: a decoder, so a Decode<Lines, _> adapter; then the hop check.
//!     let s1 = p::StageProbe::new(Lines::new(64));
//!     let in1 = p::stage_input(&s1);                      // what it takes, once known
//!     let s1 = (&&&&&&&&&&&&s1).__iomgr_stage().stage(s1);
//!     #[diagnostic::on_unimplemented(
//!         message = "stage 1 `Lines::new(64)` takes `{In}`, but stage 0 `&stream` gives `{Self}`")]
//!     trait Hop1<In, S> { type Stage; fn pass(i: ItemType<In>, o: ItemType<Self>, s: S) -> S; }
//!     impl<T, S> Hop1<T, S> for T { /* holds only when the two types are one */ }
//!     let s1 = Hop1::pass(in1, t0, s1);                   // also infers Decode's `_`
//!     let t1 = p::out_of_adapter(&s1);
//!
//!     // Stage 2: a closure without a type written takes t1's type; it returns a `usize`,
//!     // so it maps (an `Option` would filter, a `Result` could fail, a future would await).
//!     let s2 = p::same(t1).deduce(|l| l.len());
//!     let s2 = (&&&&&&&&&&&&s2).__iomgr_stage().stage(s2);     // FnStage<_, String, Mapped>
//!     /* Hop2, as above */
//!
//!     // Stage 3: the sink, made for the items it will take.
//!     let s3 = p::SinkProbe::new(&mut lengths);
//!     let s3 = (&&&&&&s3).__iomgr_sink().stage(s3);           // VecSink<usize>
//!     /* Hop3, as above */
//!
//!     p::start(&["&stream", "Lines::new(64)", "|l| l.len()", "&mut lengths"], s0)
//!         .then(s1)
//!         .then(s2)
//!         .sink(s3)        // Pipeline<Hop<Hop<Head<SocketReader<..>>, Decode<..>>, FnStage<..>>, VecSink<..>>
//! }
//! ```
//!
//! The probes are "autoref specialization": method lookup tries `(&&..&probe).method()` from
//! the most `&`s down and takes the first impl whose bounds hold, so each stage is identified
//! by its type (an adapter, a decoder, an encoder, a function by what it returns; at either
//! end a source or a sink; and the layers that exist only to say "a sink cannot be here").
//! The state machine itself is the [`Pipeline`] type, hand-written once and generic over its
//! stages; the generated code contains no `unsafe`, so crates with `#![forbid(unsafe_code)]`
//! can use the macro. `IOMGR_DEBUG_PIPELINE=1 cargo build` prints every expansion.
//!
//! # Cost
//!
//! A pipeline is its stages, stored inline, plus one slot per hop: `size_of` a pipeline is a
//! constant, and the item form names it. Moving an item costs a few branches per hop and no
//! allocation. `benches/src/bin/pipeline.rs` runs each workload as a pipeline and as the loop
//! one would write by hand (same buffers, same syscalls): server CPU time per item came out
//! lower for the pipeline (a chunk echo and a line upper-caser over loopback TCP, and the
//! machinery alone between two channels), mostly because its reads overlap its writes.

mod chan;
mod chunk;
mod error;
mod framing;
mod func;
mod io;
mod machine;
mod pin;
mod stage;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use chan::ChanSink;
pub use chunk::{Chunk, ChunkPool};
pub use error::{PipelineError, Role};
pub use framing::{
    AsBytes, Decode, Decoder, Encode, Encoder, FixedEncoder, FixedSize, IntoBytes, LengthDelimited,
    LengthEncoder, Lines, LinesEncoder,
};
pub use func::{
    AsyncStage, Consumed, Emit, Fallible, Filtered, FnStage, ForEach, Iter, Mapped, VecSink,
    for_each, iter,
};
pub use io::{
    Buffers, DATAGRAM_CHUNK, DatagramReader, DatagramWriter, FILE_CHUNK, FileIo, FileReader,
    FileWriter, Handle, Reader, SOCKET_CHUNK, SocketIo, SocketReader, SocketWriter, Target, Writer,
};
pub use machine::{Chain, Head, Hop, Pipeline};
pub use stage::{Adapter, Input, IntoSink, IntoSource, SegmentState, Sink, Source, StageError};
