//! What the benchmark binaries in `src/bin` share, kept here once so that every one of them
//! parses its flags, pins its threads, reads its clocks and takes its medians the same way.
//!
//! - [`args`]: `--flag value` parsing.
//! - [`machine`]: the machine under the benchmark: pinning a thread to a core, the load
//!   average, the CPU-time clocks of this thread and of another one.
//! - [`stats`]: from repeated runs to printed figures: the run order, medians, spreads, units.
//! - [`test_file`]: the file in the page cache that `file_read` and `fixed_read` read.
//! - [`tcp_load`]: the frame of the loopback server benchmarks `echo` and `http`: a server
//!   thread under a closed-loop load from a bare io_uring, its samples and their table.
//!
//! Everything else, above all the contestants themselves, stays in the binary that measures it.

pub mod args;
pub mod machine;
pub mod stats;
pub mod tcp_load;
pub mod test_file;
