//! trybuild cases live in `ui/<topic>/`; the driver is `tests/ui.rs`.
