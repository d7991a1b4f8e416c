//! Command-line flags of the form `--name value`.
//!
//! The benchmarks take a handful of flags each and need no more than this: a flag is looked
//! up by its exact name and its value is the argument after it.

use std::io;
use std::str::FromStr;

/// The value after `name` in `args` (the arguments without the program name), parsed; `None`
/// when `name` is absent. A flag with no value, or one that does not parse as a `T`, is an
/// [`io::ErrorKind::InvalidInput`] error saying "`name` needs a value".
pub fn parse_flag<T: FromStr>(args: &[String], name: &str) -> io::Result<Option<T>> {
    let Some(i) = args.iter().position(|a| a == name) else {
        return Ok(None);
    };
    let bad = || io::Error::new(io::ErrorKind::InvalidInput, format!("{name} needs a value"));
    let value = args.get(i + 1).ok_or_else(bad)?;
    value.parse().map(Some).map_err(|_| bad())
}
