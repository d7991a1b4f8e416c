//! A few hundred generated programs (fixed seeds) must behave the same compiled as
//! `#[iomgr::task]` and as plain `async fn`s, or be rejected with a message of ours.
//!
//! The batch crates build in `CARGO_TARGET_TMPDIR/task-fuzz`, so the first run compiles
//! `iomgr` there once (about half a minute here); later runs only compile the programs.

use std::path::PathBuf;

use task_fuzz::{Config, fuzz, report};

#[test]
fn tasks_behave_like_async_fns() {
    let mut failures = Vec::new();
    let mut details = Vec::new();
    for seed in [1, 2] {
        let mut cfg = Config::new();
        cfg.seed = seed;
        cfg.programs = 150;
        cfg.batch = 150;
        cfg.work_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("task-fuzz");
        cfg.verbose = false;
        let (summary, _) = fuzz(&cfg).expect("the fuzzer could not build or run a batch");
        eprintln!("{}", summary.render());
        for f in summary.differences.iter().chain(&summary.bad_rejections) {
            failures.push(report::difference_line(seed, f));
            if details.len() < 3 {
                details.push(report::explain(f, &cfg.attr));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} programs differ or are rejected by a message that is not ours \
         (reproduce one with `cargo run --release -p task-fuzz -- --seed S --only I`):\n{}\n\n{}",
        failures.len(),
        failures.join("\n"),
        details.join("\n")
    );
}

/// The harness itself: with an attribute that changes nothing (`#[allow(unused)]`), the
/// "task" is the same `async fn`, so any difference or rejection is a bug of the fuzzer
/// (a nondeterministic program, a log that depends on addresses, a misattributed error).
#[test]
fn identical_functions_never_differ() {
    let mut cfg = Config::new();
    cfg.seed = 7;
    cfg.programs = 60;
    cfg.batch = 60;
    cfg.attr = "allow(unused)".into();
    cfg.crate_name = "control".into();
    cfg.work_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("task-fuzz");
    cfg.verbose = false;
    let (summary, _) = fuzz(&cfg).expect("the fuzzer could not build or run a batch");
    assert!(
        summary.passed() && summary.rejected_ours == 0,
        "{}",
        summary.render()
    );
    assert_eq!(summary.same, summary.valid());
    assert!(summary.ratios.iter().all(|&r| r == 1.0));
}
