//! `task-fuzz`: a differential fuzzer for `#[iomgr::task]`.
//!
//! The project's rule for tasks: a task behaves exactly like the same `async fn` (return
//! value, side effects, drop order, pending points), or it does not compile, with a message
//! of ours. This crate checks the rule on random programs:
//!
//! 1. [`generate`] writes a random `async fn` body from a seed (shadowing in every binding
//!    position, nested blocks and items, `if`/`if let`/let chains/`match`, loops with labels
//!    and `break` values, `?` and `return`, moves of drop-logging values, closures, `async`
//!    blocks, temporaries, and `.await` in every operand position), keeping a model of types,
//!    moves and borrows ([`model`]) so that the plain `async fn` compiles.
//! 2. [`emit`] writes many programs into one crate, each twice from the same text: as
//!    `#[<attr>] async fn pN_task` and as `async fn pN_plain`, plus a driver.
//! 3. [`runner`] builds the crate, traces compile errors to programs and classifies them
//!    (generator invalid, rejected with a message of ours, bad rejection), rebuilds without
//!    the failures, runs the binary and collects per-program outcomes: the return value and
//!    the full event log must match, for a full run and for a drop after each number of
//!    polls.
//! 4. [`minimize`] shrinks a differing program while the difference persists.
//! 5. [`report`] tallies a run.
//!
//! The binary (`cargo run --release -p task-fuzz -- --help`) drives all of this; see the
//! crate's README for the commands and timings.

pub mod ast;
pub mod emit;
pub mod generate;
pub mod minimize;
pub mod model;
pub mod report;
pub mod rng;
pub mod runner;

use std::io;
use std::path::PathBuf;
use std::time::Instant;

use report::Summary;
use runner::Runner;

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The run's seed; program `i` is generated from `rng::derive(seed, i)`.
    pub seed: u64,
    /// How many programs.
    pub programs: u64,
    /// Programs per batch crate.
    pub batch: usize,
    /// Generator knobs.
    pub options: generate::Options,
    /// Index of the first program (to run one program: `first = i`, `programs = 1`).
    pub first: u64,
    /// The attribute, without `#[` `]`.
    pub attr: String,
    /// The repository root.
    pub repo: PathBuf,
    /// Where batch crates are written and built.
    pub work_dir: PathBuf,
    /// The batch crate's name (runs with different names can share `work_dir`).
    pub crate_name: String,
    /// If set, every generated `main.rs` is kept here.
    pub keep: Option<PathBuf>,
    /// How many differences to minimize (taken round-robin over the classes, most severe
    /// class first).
    pub minimize: usize,
    /// Minimize only differences of this class (`value`, `effects`, `drops`, ...).
    pub minimize_class: Option<String>,
    /// Progress on stderr.
    pub verbose: bool,
}

impl Config {
    /// Defaults: seed 1, 200 programs in batches of 100, `#[iomgr::task]`, this repository,
    /// work directory `$CARGO_TARGET_DIR/task-fuzz` (or `<repo>/target/task-fuzz`).
    pub fn new() -> Config {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("repo root")
            .to_path_buf();
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo.join("target"));
        Config {
            seed: 1,
            programs: 200,
            batch: 100,
            first: 0,
            options: generate::Options::default(),
            attr: "iomgr::task".into(),
            work_dir: target.join("task-fuzz"),
            crate_name: "batch".into(),
            repo,
            keep: None,
            minimize: 0,
            minimize_class: None,
            verbose: false,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}

/// Runs the fuzzer; prints a line per difference or bad rejection on stdout as they are
/// found, minimized programs at the end. Returns the tally and the minimized findings.
pub fn fuzz(cfg: &Config) -> io::Result<(Summary, Vec<report::Finding>)> {
    let started = Instant::now();
    let mut runner = Runner::new(&cfg.repo, &cfg.work_dir, &cfg.attr, &cfg.crate_name);
    runner.keep = cfg.keep.clone();
    runner.verbose = cfg.verbose;
    let mut summary = Summary {
        seed: cfg.seed,
        ..Summary::default()
    };
    let end = cfg.first + cfg.programs;
    let mut start = cfg.first;
    while start < end {
        let stop = (start + cfg.batch as u64).min(end);
        let programs: Vec<generate::Program> = (start..stop)
            .map(|i| generate::generate_with(rng::derive(cfg.seed, i), cfg.options))
            .collect();
        let outcomes = runner.run_batch(&programs)?;
        let (d0, b0) = (summary.differences.len(), summary.bad_rejections.len());
        for (k, (p, o)) in programs.iter().zip(&outcomes).enumerate() {
            summary.add(start + k as u64, p, o);
        }
        for f in summary.differences[d0..]
            .iter()
            .chain(&summary.bad_rejections[b0..])
        {
            println!("{}", report::difference_line(cfg.seed, f));
        }
        if cfg.verbose {
            eprintln!(
                "[task-fuzz] {stop}/{end} programs, {} differences, {} bad rejections, {:.0}s",
                summary.differences.len(),
                summary.bad_rejections.len(),
                started.elapsed().as_secs_f64()
            );
        }
        start = stop;
    }
    let mut minimized = Vec::new();
    for f in pick_for_minimizing(&summary.differences, cfg) {
        if cfg.verbose {
            eprintln!("[task-fuzz] minimizing program {}", f.index);
        }
        let mut m = f.clone();
        if let Some((program, difference)) = minimize::minimize(&runner, &f.program)? {
            m.program = program;
            m.difference = Some(difference);
        }
        minimized.push(m);
    }
    summary.seconds = started.elapsed().as_secs_f64();
    Ok((summary, minimized))
}

/// Up to `cfg.minimize` differences: one of each class in turn, most severe class first.
fn pick_for_minimizing<'a>(all: &'a [report::Finding], cfg: &Config) -> Vec<&'a report::Finding> {
    let mut by_class: std::collections::BTreeMap<runner::Class, Vec<&report::Finding>> =
        Default::default();
    for f in all {
        if let Some(d) = &f.difference
            && cfg
                .minimize_class
                .as_deref()
                .is_none_or(|c| c == d.class().name())
        {
            by_class.entry(d.class()).or_default().push(f);
        }
    }
    let mut out = Vec::new();
    let mut round = 0;
    while out.len() < cfg.minimize && by_class.values().any(|v| v.len() > round) {
        for v in by_class.values() {
            if let Some(f) = v.get(round)
                && out.len() < cfg.minimize
            {
                out.push(*f);
            }
        }
        round += 1;
    }
    out
}
