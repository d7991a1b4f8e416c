//! Procedural macros for [`iomgr`](https://docs.rs/iomgr). Use them through the `iomgr`
//! crate, which re-exports them; this crate is an implementation detail.
