//! Building and running batches: from programs to per-program [`Outcome`]s.
//!
//! [`Runner::run_batch`] writes the batch crate ([`crate::emit`]), builds it with
//! `cargo build`, and traces every error to a program through the
//! line layout (its primary span, or a note such as "encountered while instantiating"): an
//! error in a plain version marks the program *generator invalid*; an error
//! in a task version (or its driver) marks it *rejected*, and the program is rebuilt with
//! only its plain version to make sure that one compiles (rustc may stop before reporting
//! errors of a later phase, so a program whose task failed early might still be invalid).
//! Errors that point nowhere in `src/main.rs` are found by bisection: the smallest prefix
//! of the batch that still fails ends with the culprit. Then the binary runs the programs
//! that compiled and prints a `RES` line per program ([`crate::emit`]'s prelude); a crash
//! or hang is traced through the `STAGE` lines and the run resumes after that program.
//!
//! A rejection is *ours* when its message is one `iomgr` wrote on purpose: it mentions
//! `iomgr` (not counting generated names like `__iomgr_x` or `__private` paths), or it
//! contains a sentence from a string literal of the macro crate (`macros/src/**.rs`), or
//! its primary span is inside iomgr's own sources (a compile-time check there, such as the
//! slot size assertion). Any other rejection is a *bad rejection*.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::emit::{self, Layout, Mode, Part};
use crate::generate::Program;

/// What happened to one program.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Both versions compiled and behaved the same.
    Same(Sizes),
    /// Both compiled and behaved differently (or the task crashed or hung).
    Differs(Difference),
    /// The plain version does not compile (or crashed): the generator's fault.
    Invalid(Vec<String>),
    /// The plain version compiles, the task does not.
    Rejected {
        /// The task's error messages.
        errors: Vec<String>,
        /// Whether all of them are ours.
        ours: bool,
    },
}

/// `size_of` the task future and of the plain `async fn` future, and the number of times
/// the plain version was pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// `size_of` the task.
    pub task: usize,
    /// `size_of` the plain future.
    pub plain: usize,
    /// Pending polls of a full run.
    pub pending: usize,
}

/// A behavioural difference.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    /// `full` (a full run) or `drop-after-K-polls`, or `crash`.
    pub what: String,
    /// Sizes, if known.
    pub sizes: Option<Sizes>,
    /// The task's log.
    pub task_log: Vec<String>,
    /// The plain version's log.
    pub plain_log: Vec<String>,
}

/// How severe a difference is, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// The task crashed or hung.
    Crash,
    /// The returned value differs.
    Value,
    /// Side effects other than drops differ (calls, their order or arguments, polls).
    Effects,
    /// The number of pending points differs.
    Pending,
    /// Only drops differ (which values are dropped, or when).
    Drops,
}

impl Class {
    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            Class::Crash => "crash",
            Class::Value => "value",
            Class::Effects => "effects",
            Class::Pending => "pending",
            Class::Drops => "drops",
        }
    }
}

impl Difference {
    /// The class of the difference.
    pub fn class(&self) -> Class {
        if self.what == "crash" || self.what == "hang" {
            return Class::Crash;
        }
        let pick = |log: &[String], f: &dyn Fn(&str) -> bool| -> Vec<String> {
            log.iter().filter(|e| f(e)).cloned().collect()
        };
        let ready = |e: &str| e.starts_with("ready ");
        if pick(&self.task_log, &ready) != pick(&self.plain_log, &ready) {
            return Class::Value;
        }
        let pending = |e: &str| e == "pending";
        let effect = |e: &str| !e.starts_with("drop ") && e != "pending";
        if pick(&self.task_log, &effect) != pick(&self.plain_log, &effect) {
            return Class::Effects;
        }
        if pick(&self.task_log, &pending).len() != pick(&self.plain_log, &pending).len() {
            return Class::Pending;
        }
        Class::Drops
    }

    /// The first event where the logs part, as `(index, task event, plain event)`.
    pub fn first_divergence(&self) -> (usize, String, String) {
        let n = self.task_log.len().max(self.plain_log.len());
        for i in 0..n {
            let a = self
                .task_log
                .get(i)
                .cloned()
                .unwrap_or_else(|| "<end>".into());
            let b = self
                .plain_log
                .get(i)
                .cloned()
                .unwrap_or_else(|| "<end>".into());
            if a != b {
                return (i, a, b);
            }
        }
        (n, "<end>".into(), "<end>".into())
    }
}

/// Builds and runs batch crates.
#[derive(Debug, Clone)]
pub struct Runner {
    /// The attribute text, without `#[` `]`.
    pub attr: String,
    /// The repository root (it has `runtime/` and `macros/`).
    pub repo: PathBuf,
    /// The batch crate's package (and binary) name.
    pub name: String,
    /// Where the batch crate is written.
    pub crate_dir: PathBuf,
    /// The target directory of batch builds.
    pub target_dir: PathBuf,
    /// If set, each batch's `main.rs` is also copied here.
    pub keep: Option<PathBuf>,
    /// Message fragments of the macro crate.
    pub ours: Ours,
    /// Print progress to stderr.
    pub verbose: bool,
    /// Counts builds (for the keep directory's file names).
    builds: std::cell::Cell<usize>,
}

/// A compiler error: where (the primary span, then the other locations its labels and
/// notes name), and what.
#[derive(Debug, Clone)]
struct CompileError {
    file: String,
    line: usize,
    others: Vec<(String, usize)>,
    message: String,
}

impl CompileError {
    /// The first line of the batch's `src/main.rs` the error names: its primary span, or
    /// else a note's (a post-monomorphization error in iomgr's code has a note "the above
    /// error was encountered while instantiating ..." that points at the program).
    fn main_line(&self) -> Option<usize> {
        std::iter::once((self.file.as_str(), self.line))
            .chain(self.others.iter().map(|(f, l)| (f.as_str(), *l)))
            .find(|(f, _)| *f == "src/main.rs")
            .map(|(_, l)| l)
    }
}

impl Runner {
    /// A runner for the repository at `repo` that writes its crate `name` in `work_dir`
    /// and builds it in `work_dir/target` (runners with different names may share it).
    pub fn new(repo: &Path, work_dir: &Path, attr: &str, name: &str) -> Runner {
        Runner {
            attr: attr.to_string(),
            repo: repo.to_path_buf(),
            name: name.to_string(),
            crate_dir: work_dir.join(name),
            target_dir: work_dir.join("target"),
            keep: None,
            ours: Ours::load(&repo.join("macros/src")),
            verbose: false,
            builds: std::cell::Cell::new(0),
        }
    }

    fn note(&self, msg: &str) {
        if self.verbose {
            eprintln!("  [runner] {msg}");
        }
    }

    /// Builds and runs `programs`; one outcome each.
    pub fn run_batch(&self, programs: &[Program]) -> io::Result<Vec<Outcome>> {
        let n = programs.len();
        let mut modes = vec![Mode::Both; n];
        let mut out: Vec<Option<Outcome>> = vec![None; n];
        let mut task_errors: Vec<Vec<(String, bool)>> = vec![Vec::new(); n];
        let mut rounds = 0;
        loop {
            rounds += 1;
            let (layout, errors) = self.build(programs, &modes)?;
            if errors.is_empty() {
                break;
            }
            let mut progress = false;
            let mut stray = Vec::new();
            for e in errors {
                let owner = e.main_line().and_then(|l| layout.find(l));
                match owner {
                    Some((i, Part::Plain)) => {
                        if modes[i] != Mode::Skip {
                            modes[i] = Mode::Skip;
                            out[i] = Some(Outcome::Invalid(vec![e.message.clone()]));
                            progress = true;
                        }
                    }
                    Some((i, Part::Task)) => {
                        let ours = self.ours.is_ours(&e.message, self.in_iomgr(&e.file));
                        task_errors[i].push((e.message.clone(), ours));
                        if modes[i] == Mode::Both {
                            modes[i] = Mode::PlainOnly;
                            progress = true;
                        }
                    }
                    None => stray.push(e),
                }
            }
            if !progress {
                if stray.is_empty() || rounds > 12 {
                    return Err(io::Error::other("build fails and no program can be blamed"));
                }
                // Nothing in main.rs to blame: bisect for the program behind the error.
                let culprit = self.bisect(programs, &modes)?;
                let Some(i) = culprit else {
                    let msgs: Vec<String> = stray.iter().map(|e| e.message.clone()).collect();
                    return Err(io::Error::other(format!(
                        "the batch fails without any program: {msgs:?}"
                    )));
                };
                self.note(&format!("bisected error to program {i}"));
                match modes[i] {
                    Mode::Both => {
                        for e in &stray {
                            let in_iomgr = self.in_iomgr(&e.file);
                            let ours = self.ours.is_ours(&e.message, in_iomgr);
                            task_errors[i].push((e.message.clone(), ours));
                        }
                        modes[i] = Mode::PlainOnly;
                    }
                    _ => {
                        modes[i] = Mode::Skip;
                        out[i] = Some(Outcome::Invalid(
                            stray.iter().map(|e| e.message.clone()).collect(),
                        ));
                    }
                }
            }
        }
        for i in 0..n {
            if modes[i] == Mode::PlainOnly {
                let errors: Vec<String> = task_errors[i].iter().map(|e| e.0.clone()).collect();
                let ours = task_errors[i].iter().all(|e| e.1);
                out[i] = Some(Outcome::Rejected { errors, ours });
            }
        }
        let ran = self.run_binary(&modes)?;
        for (i, o) in ran {
            out[i] = Some(o);
        }
        Ok(out
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Outcome::Invalid(vec!["never ran".into()])))
            .collect())
    }

    fn in_iomgr(&self, file: &str) -> bool {
        let p = Path::new(file);
        let abs = if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.crate_dir.join(p)
        };
        abs.starts_with(self.repo.join("runtime")) || abs.starts_with(self.repo.join("macros"))
    }

    /// The smallest prefix of the active programs whose build fails ends with the culprit.
    fn bisect(&self, programs: &[Program], modes: &[Mode]) -> io::Result<Option<usize>> {
        let active: Vec<usize> = (0..programs.len())
            .filter(|&i| modes[i] != Mode::Skip)
            .collect();
        let fails = |k: usize| -> io::Result<bool> {
            let mut m = vec![Mode::Skip; programs.len()];
            for &i in &active[..k] {
                m[i] = modes[i];
            }
            Ok(!self.build(programs, &m)?.1.is_empty())
        };
        if active.is_empty() || !fails(active.len())? {
            return Ok(None);
        }
        if fails(0)? {
            return Ok(None);
        }
        let (mut lo, mut hi) = (0, active.len()); // fails(lo) is false, fails(hi) is true
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if fails(mid)? {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Ok(Some(active[hi - 1]))
    }

    /// Writes and builds the crate; returns its layout and its errors.
    fn build(
        &self,
        programs: &[Program],
        modes: &[Mode],
    ) -> io::Result<(Layout, Vec<CompileError>)> {
        let (main, layout) = emit::main_rs(programs, modes, &self.attr);
        let lock = self.repo.join("Cargo.lock");
        emit::write_crate(
            &self.crate_dir,
            &self.name,
            &self.repo.join("runtime"),
            lock.exists().then_some(lock.as_path()),
            &main,
        )?;
        let k = self.builds.get();
        self.builds.set(k + 1);
        if let Some(dir) = &self.keep {
            fs::create_dir_all(dir)?;
            fs::write(dir.join(format!("build-{k:05}.rs")), &main)?;
        }
        let started = Instant::now();
        let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--offline", "--quiet"])
            .arg("--manifest-path")
            .arg(self.crate_dir.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&self.target_dir)
            .env("CARGO_TERM_COLOR", "never")
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET_DIR")
            .stdin(Stdio::null())
            .output()?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        let errors = parse_errors(&stderr);
        self.note(&format!(
            "build {k}: {} programs, {} errors, {:.1}s",
            modes.iter().filter(|m| **m != Mode::Skip).count(),
            errors.len(),
            started.elapsed().as_secs_f64()
        ));
        if !output.status.success() && errors.is_empty() {
            return Err(io::Error::other(format!("cargo build failed:\n{stderr}")));
        }
        Ok((layout, errors))
    }

    /// Runs the built binary over the programs in `Mode::Both`.
    fn run_binary(&self, modes: &[Mode]) -> io::Result<BTreeMap<usize, Outcome>> {
        let bin = self.target_dir.join("debug").join(&self.name);
        let mut results = BTreeMap::new();
        let expected: Vec<usize> = (0..modes.len())
            .filter(|&i| modes[i] == Mode::Both)
            .collect();
        let mut from = 0;
        while expected.iter().any(|&i| i >= from) {
            let (stdout, status) = run_with_timeout(&bin, from, Duration::from_secs(120))?;
            let mut last_stage: Option<(usize, String)> = None;
            let mut lines = stdout.lines().peekable();
            while let Some(l) = lines.next() {
                let w: Vec<&str> = l.split(' ').collect();
                match w.first().copied() {
                    Some("STAGE") if w.len() == 3 => {
                        last_stage = Some((w[1].parse().unwrap_or(0), w[2].to_string()));
                    }
                    Some("RES") if w.len() == 6 => {
                        let i: usize = w[1].parse().unwrap_or(usize::MAX);
                        let num = |s: &str| s.parse().unwrap_or(0);
                        let sizes = Sizes {
                            task: num(w[3]),
                            plain: num(w[4]),
                            pending: num(w[5]),
                        };
                        let o = if w[2] == "ok" {
                            Outcome::Same(sizes)
                        } else {
                            let mut take = |prefix: &str| -> Vec<String> {
                                match lines.next_if(|l| l.starts_with(prefix)) {
                                    Some(l) => l.split('\t').skip(1).map(str::to_string).collect(),
                                    None => Vec::new(),
                                }
                            };
                            let task_log = take("TASK");
                            let plain_log = take("PLAIN");
                            Outcome::Differs(Difference {
                                what: w[2].to_string(),
                                sizes: Some(sizes),
                                task_log,
                                plain_log,
                            })
                        };
                        results.insert(i, o);
                        last_stage = None;
                    }
                    _ => {}
                }
            }
            match status {
                Some(true) => break,
                _ => {
                    // A crash or a hang, in the program of the last STAGE line.
                    let Some((i, which)) = last_stage else {
                        return Err(io::Error::other(
                            "the batch binary failed before any program",
                        ));
                    };
                    let what = if status.is_none() { "hang" } else { "crash" };
                    self.note(&format!("program {i} ({which}) {what}ed"));
                    let o = if which == "plain" {
                        Outcome::Invalid(vec![format!("the plain version {what}ed")])
                    } else {
                        Outcome::Differs(Difference {
                            what: what.into(),
                            sizes: None,
                            task_log: vec![format!("<{what}>")],
                            plain_log: Vec::new(),
                        })
                    };
                    results.insert(i, o);
                    from = i + 1;
                }
            }
        }
        Ok(results)
    }
}

/// Runs `bin from`; returns its stdout and `Some(success)`, or `None` on timeout.
fn run_with_timeout(
    bin: &Path,
    from: usize,
    limit: Duration,
) -> io::Result<(String, Option<bool>)> {
    let mut child = Command::new(bin)
        .arg(from.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut pipe = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = pipe.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break Some(st.success());
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = reader.join().unwrap_or_default();
    Ok((out, status))
}

/// Errors in rustc's human-readable output: a line `error[CODE]: message` or
/// `error: message`, then the locations its spans, labels and notes name (`--> file:l:c`,
/// `::: file:l:c`); the first is the primary span.
fn parse_errors(stderr: &str) -> Vec<CompileError> {
    let mut out = Vec::new();
    let mut cur: Option<CompileError> = None;
    for l in stderr.lines() {
        if l.starts_with("error") || l.starts_with("warning") {
            out.extend(cur.take());
            if !l.starts_with("error") {
                continue;
            }
            let message = l.split_once(": ").map_or("", |(_, m)| m).trim().to_string();
            if message.starts_with("aborting due to") || message.starts_with("could not compile") {
                continue;
            }
            cur = Some(CompileError {
                file: String::new(),
                line: 0,
                others: Vec::new(),
                message,
            });
            continue;
        }
        let Some(e) = cur.as_mut() else { continue };
        let t = l.trim_start();
        let Some(loc) = t.strip_prefix("--> ").or_else(|| t.strip_prefix("::: ")) else {
            continue;
        };
        let mut parts = loc.trim().rsplitn(3, ':');
        let (_col, line, file) = (parts.next(), parts.next(), parts.next());
        if let (Some(f), Some(Ok(line))) = (file, line.map(str::parse::<usize>)) {
            if e.file.is_empty() {
                e.file = f.to_string();
                e.line = line;
            } else {
                e.others.push((f.to_string(), line));
            }
        }
    }
    out.extend(cur);
    out
}

/// The sentences the macro crate writes in its error messages.
#[derive(Debug, Clone, Default)]
pub struct Ours {
    fragments: Vec<String>,
}

impl Ours {
    /// Collects the string literals of every `.rs` file under `dir`, split at format
    /// placeholders; pieces of 16 characters or more are kept.
    pub fn load(dir: &Path) -> Ours {
        let mut fragments = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let Ok(entries) = fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "rs")
                    && let Ok(text) = fs::read_to_string(&p)
                {
                    for lit in string_literals(&text) {
                        for piece in split_placeholders(&lit) {
                            let piece = piece.trim();
                            if piece.chars().count() >= 16 {
                                fragments.push(piece.to_string());
                            }
                        }
                    }
                }
            }
        }
        fragments.sort();
        fragments.dedup();
        Ours { fragments }
    }

    /// Whether an error message is one of ours (see the module docs).
    pub fn is_ours(&self, message: &str, in_iomgr_source: bool) -> bool {
        if in_iomgr_source {
            return true;
        }
        if message.contains("__private") {
            return false;
        }
        let cleaned: String = message
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':' || c == '\''))
            .filter(|w| !w.contains("__iomgr") && !w.contains("__Iomgr"))
            .collect::<Vec<_>>()
            .join(" ");
        cleaned.contains("iomgr") || self.fragments.iter().any(|f| message.contains(f.as_str()))
    }
}

/// The contents of `"..."` literals (escapes `\"`, `\\` and `\n` undone).
fn string_literals(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = src.chars().peekable();
    let mut prev = ' ';
    while let Some(c) = chars.next() {
        if c == '/' && chars.peek() == Some(&'/') {
            // A comment: skip to the end of the line.
            for c in chars.by_ref() {
                if c == '\n' {
                    break;
                }
            }
            prev = '\n';
            continue;
        }
        if c == '\'' {
            // A char literal such as '"': skip it; a lifetime: nothing to skip.
            let rest: String = chars.clone().take(3).collect();
            if rest.starts_with("\"'") || rest.starts_with("\\\"'") {
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                }
            }
            prev = c;
            continue;
        }
        if c == '"' && prev != '\\' {
            let mut s = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some('n') => s.push('\n'),
                        Some('\n') => {
                            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                                chars.next();
                            }
                        }
                        Some(o) => s.push(o),
                        None => break,
                    },
                    '"' => break,
                    o => s.push(o),
                }
            }
            out.push(s);
            prev = '"';
            continue;
        }
        prev = c;
    }
    out
}

/// Splits a format string at `{...}` placeholders (`{{`/`}}` are literal braces).
fn split_placeholders(s: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.last_mut().expect("piece").push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.last_mut().expect("piece").push('}');
            }
            '{' => {
                for c in chars.by_ref() {
                    if c == '}' {
                        break;
                    }
                }
                out.push(String::new());
            }
            o => out.last_mut().expect("piece").push(o),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_errors_and_their_notes() {
        let e = parse_errors(
            "error[E0425]: cannot find value `x` in this scope\n  --> src/main.rs:12:5\n   |\n\n\
             error[E0080]: attempt to compute `128_usize - 216_usize`, which would overflow\n\
             \x20  --> /r/runtime/src/task/private.rs:190:28\n\
             note: the above error was encountered while instantiating `fn put`\n\
             \x20    --> src/main.rs:120:7\n\n\
             error: aborting due to 2 previous errors\n\
             error: custom attribute panicked\n  --> src/main.rs:9:1\n",
        );
        assert_eq!(e.len(), 3);
        assert_eq!((e[0].file.as_str(), e[0].line), ("src/main.rs", 12));
        assert_eq!(e[0].message, "cannot find value `x` in this scope");
        assert_eq!(e[1].file, "/r/runtime/src/task/private.rs");
        assert_eq!(e[1].main_line(), Some(120));
        assert_eq!(e[2].main_line(), Some(9));
    }

    #[test]
    fn tells_ours() {
        let src = r#"errors.at(x, format!("`.await` inside the arguments of `{}!` cannot be lowered: await first")); // "not this"
            let c = '"'; let s = "a short one";"#;
        let lits = string_literals(src);
        assert_eq!(lits.len(), 2, "{lits:?}");
        let ours = Ours {
            fragments: split_placeholders(&lits[0])
                .into_iter()
                .filter(|p| p.len() >= 16)
                .collect(),
        };
        assert!(ours.is_ours(
            "`.await` inside the arguments of `vec!` cannot be lowered: await first",
            false
        ));
        assert!(ours.is_ours("write `#[iomgr::task(slot = 256)]`", false));
        assert!(!ours.is_ours("cannot find value `__iomgr_x_2` in this scope", false));
        assert!(!ours.is_ours(
            "mismatched types: `iomgr::task::__private::Witness<T>`",
            false
        ));
        assert!(ours.is_ours("evaluation of constant value failed", true));
    }
}
