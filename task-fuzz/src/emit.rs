//! Writing a batch crate: many programs, each twice, plus a `main` that checks them.
//!
//! The crate lives in a directory of its own with its own `[workspace]` table (so it is not
//! part of the repository's workspace) and depends on `iomgr` by path. All batches are
//! written to the same directory and built into the same target directory, so `iomgr` is
//! compiled once and each batch recompiles only its own `main.rs`.
//!
//! `src/main.rs` has the crate-level items that block-level items shadow (`K`, `hf`, `W`),
//! then for each program, in this order:
//!
//! ```text
//! #[<attr>]
//! async fn p7_task(..) -> T { body }
//! async fn p7_plain(..) -> T { body }
//! fn d7() { rt::check(7, || p7_task(args), || p7_plain(args)); }
//! ```
//!
//! [`Layout`] records which lines belong to which program and version, so a compile error
//! can be traced to the program (and version) it came from.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::Path;

use crate::generate::Program;

/// The runtime of a batch crate (`src/rt.rs`).
pub const PRELUDE: &str = include_str!("../prelude/rt.rs");

/// What to emit of a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Task and plain versions, and the driver that compares them.
    Both,
    /// The plain version alone (to tell whether it compiles).
    PlainOnly,
    /// Nothing.
    Skip,
}

/// Which program version owns a line of `src/main.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The attribute and the task version, or the driver that calls it.
    Task,
    /// The plain version.
    Plain,
}

/// Line ranges (1-based, inclusive) of each emitted program part.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    ranges: Vec<(usize, usize, usize, Part)>,
}

impl Layout {
    /// The program (batch index) and part that own `line`.
    pub fn find(&self, line: usize) -> Option<(usize, Part)> {
        self.ranges
            .iter()
            .find(|r| r.0 <= line && line <= r.1)
            .map(|r| (r.2, r.3))
    }
}

/// The crate-level items that block-level items in programs shadow.
const ITEMS: &str = "const K: i64 = 7;
fn hf(x: i64) -> i64 { x + 1 }
struct W(i64);
impl W { fn get(&self) -> i64 { self.0 + 100 } }
";

/// The text of `src/main.rs` and its layout.
pub fn main_rs(programs: &[Program], modes: &[Mode], attr: &str) -> (String, Layout) {
    let mut s = String::from("#![allow(warnings)]\nmod rt;\nuse rt::*;\n\n");
    s.push_str(ITEMS);
    let mut layout = Layout::default();
    let mut line = s.lines().count() + 1;
    let mut push = |s: &mut String, text: &str, i: usize, part: Part, layout: &mut Layout| {
        let n = text.lines().count();
        layout.ranges.push((line, line + n - 1, i, part));
        line += n;
        s.push_str(text);
    };
    let mut drivers = Vec::new();
    for (i, (p, &m)) in programs.iter().zip(modes).enumerate() {
        if m == Mode::Skip {
            continue;
        }
        if m == Mode::Both {
            let task = p.source(&format!("p{i}_task"), Some(attr));
            push(&mut s, &task, i, Part::Task, &mut layout);
        }
        let plain = p.source(&format!("p{i}_plain"), None);
        push(&mut s, &plain, i, Part::Plain, &mut layout);
        if m == Mode::Both {
            let args = p.args();
            let d = format!(
                "fn d{i}() {{ check({i}, || p{i}_task({args}), || p{i}_plain({args})); }}\n"
            );
            push(&mut s, &d, i, Part::Task, &mut layout);
            drivers.push(i);
        }
    }
    s.push_str("\nfn main() {\n    std::panic::set_hook(Box::new(|_| {}));\n");
    s.push_str(
        "    let from: usize = std::env::args().nth(1).map_or(0, |a| a.parse().unwrap());\n",
    );
    s.push_str("    let drivers: &[(usize, fn())] = &[");
    for i in &drivers {
        let _ = write!(s, "({i}, d{i}), ");
    }
    s.push_str("];\n    for (i, d) in drivers {\n        if *i >= from {\n            d();\n        }\n    }\n}\n");
    (s, layout)
}

/// `Cargo.toml` of a batch crate `name` that depends on the `iomgr` at `runtime`.
pub fn cargo_toml(name: &str, runtime: &Path) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
iomgr = {{ path = "{}" }}

# Not part of any other workspace.
[workspace]

[profile.dev]
debug = false
incremental = false
"#,
        runtime.display()
    )
}

/// Writes the batch crate into `dir` (files whose content did not change are left alone,
/// so cargo's fingerprints stay valid). `lock` is a `Cargo.lock` to start from.
pub fn write_crate(
    dir: &Path,
    name: &str,
    runtime: &Path,
    lock: Option<&Path>,
    main: &str,
) -> io::Result<()> {
    fs::create_dir_all(dir.join("src"))?;
    write_if_changed(&dir.join("Cargo.toml"), &cargo_toml(name, runtime))?;
    write_if_changed(&dir.join("src/rt.rs"), PRELUDE)?;
    write_if_changed(&dir.join("src/main.rs"), main)?;
    if let Some(lock) = lock
        && !dir.join("Cargo.lock").exists()
    {
        fs::copy(lock, dir.join("Cargo.lock"))?;
    }
    Ok(())
}

fn write_if_changed(path: &Path, text: &str) -> io::Result<()> {
    if fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::generate;

    #[test]
    fn layout_maps_lines_to_programs() {
        let progs: Vec<Program> = (0..3).map(generate).collect();
        let modes = [Mode::Both, Mode::PlainOnly, Mode::Skip];
        let (text, layout) = main_rs(&progs, &modes, "iomgr::task");
        let lines: Vec<&str> = text.lines().collect();
        let find = |needle: &str| lines.iter().position(|l| l.contains(needle)).unwrap() + 1;
        assert_eq!(layout.find(find("#[iomgr::task]")), Some((0, Part::Task)));
        assert_eq!(
            layout.find(find("async fn p0_plain")),
            Some((0, Part::Plain))
        );
        assert_eq!(layout.find(find("fn d0()")), Some((0, Part::Task)));
        assert_eq!(
            layout.find(find("async fn p1_plain")),
            Some((1, Part::Plain))
        );
        assert!(!text.contains("p1_task") && !text.contains("p2_"));
        assert_eq!(layout.find(1), None);
    }
}
