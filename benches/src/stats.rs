//! From repeated runs to the figures a benchmark prints.
//!
//! On a shared machine one run says little: each benchmark repeats its runs, interleaving the
//! contestants in a [`rotated`] order so that background load hits them alike, and prints the
//! [`median`] of each column with its [`spread`]. [`micros`] and [`format_size`] are the units
//! the tables use.

use std::time::Duration;

/// Indices `0..n` starting at `rep % n`, so that no contestant always runs first.
pub fn rotated(n: usize, rep: usize) -> impl Iterator<Item = usize> {
    (0..n).map(move |i| (i + rep) % n)
}

/// The middle value; of an even count, the upper of the two middle ones.
///
/// # Panics
/// If there are no values, or one of them is not comparable with the others (a NaN).
pub fn median<T: PartialOrd + Copy>(values: impl IntoIterator<Item = T>) -> T {
    let mut v: Vec<T> = values.into_iter().collect();
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN in samples"));
    *v.get(v.len() / 2).expect("a median of no values")
}

/// (max - min) / median: how far apart the runs were.
pub fn spread(values: impl IntoIterator<Item = f64>) -> f64 {
    let v: Vec<f64> = values.into_iter().collect();
    let max = v.iter().copied().fold(f64::MIN, f64::max);
    let min = v.iter().copied().fold(f64::MAX, f64::min);
    (max - min) / median(v)
}

/// `d` in microseconds.
pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// A byte count as the tables print it: `4 KiB` when it is a whole number of KiB, else `64 B`.
pub fn format_size(size: usize) -> String {
    if size.is_multiple_of(1024) {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}
