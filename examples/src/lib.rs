//! Examples are in this folder; run one with `cargo run --release --example NAME`.
