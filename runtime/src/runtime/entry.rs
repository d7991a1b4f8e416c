//! What `#[iomgr::main]` and `#[iomgr::test]` expand to call. Not a public API.

use std::future::Future;
use std::io;

/// Turns the runtime's start-up error into `main`'s error type.
#[diagnostic::on_unimplemented(
    message = "`#[iomgr::main]` returns a runtime that cannot start as `main`'s error, so `{Self}` needs `From<std::io::Error>`",
    label = "`main` returns this error type",
    note = "return `std::io::Result<()>` or `Result<(), Box<dyn std::error::Error>>`, or implement `From<std::io::Error>` for your error type"
)]
pub trait FromStartError {
    /// Converts.
    fn from_start_error(error: io::Error) -> Self;
}

impl<E: From<io::Error>> FromStartError for E {
    fn from_start_error(error: io::Error) -> Self {
        E::from(error)
    }
}

/// The error `main` returns when its runtime cannot start.
pub fn start_error<E: FromStartError>(error: io::Error) -> E {
    E::from_start_error(error)
}

/// For a `main` that returns no `Result`: says why the runtime cannot start, and exits with
/// status 1 (no panic, no backtrace: the message is the whole story).
#[cold]
pub fn start_failed(error: io::Error) -> ! {
    eprintln!("error: cannot start the iomgr runtime: {error}");
    std::process::exit(1)
}

/// `future`, unchanged: naming `T` lets rustc give an `async` block its output type before it
/// checks the block.
#[inline(always)]
pub fn with_output<T, F: Future<Output = T>>(future: F) -> F {
    future
}
