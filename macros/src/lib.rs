//! Procedural macros for [`iomgr`](https://docs.rs/iomgr). Use them through the `iomgr`
//! crate, which re-exports them; this crate is an implementation detail.
//!
//! The language `#[iomgr::task]` accepts, its rules and an example expansion are documented
//! on the `iomgr::task` module.

use proc_macro::TokenStream;

mod entry;
mod pipeline;
mod task;

/// Lowers an `async fn` into a named, fixed-size state machine (see the `iomgr::task`
/// module docs for the accepted language and the rules).
#[proc_macro_attribute]
pub fn task(attr: TokenStream, item: TokenStream) -> TokenStream {
    task::task(attr.into(), item.into()).into()
}

/// Runs `async fn main` on a new iomgr runtime (see `iomgr::main`'s docs).
#[proc_macro_attribute]
pub fn main(attr: TokenStream, item: TokenStream) -> TokenStream {
    entry::entry(entry::Kind::Main, attr.into(), item.into()).into()
}

/// Runs an `async fn` test on a new iomgr runtime (see `iomgr::test`'s docs).
#[proc_macro_attribute]
pub fn test(attr: TokenStream, item: TokenStream) -> TokenStream {
    entry::entry(entry::Kind::Test, attr.into(), item.into()).into()
}

/// Turns a chain of stages into one state machine (see the `iomgr::pipeline` module docs).
#[proc_macro]
pub fn pipeline(input: TokenStream) -> TokenStream {
    pipeline::pipeline(input.into()).into()
}
