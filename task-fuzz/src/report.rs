//! The tally of a run and its printed summary.
//!
//! Shares are of the programs generated: *generator invalid* (the plain `async fn` does not
//! compile, the generator's fault), *rejected* (ours, an accepted outcome; bad ones are
//! failures), *differences* (failures). The size figures are `size_of` the task divided by
//! `size_of` the plain `async fn` future, over every program that compiled both ways.

use std::fmt::Write as _;

use crate::generate::Program;
use crate::runner::{Difference, Outcome};

/// One failure, with what is needed to reproduce it.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The program's index in the run (`--only INDEX` regenerates it).
    pub index: u64,
    /// The program.
    pub program: Program,
    /// The difference, for a behavioural one.
    pub difference: Option<Difference>,
    /// The messages, for a bad rejection.
    pub errors: Vec<String>,
}

/// Counts of a run.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// The run's seed.
    pub seed: u64,
    /// Programs generated.
    pub programs: usize,
    /// Programs that compiled both ways and behaved the same.
    pub same: usize,
    /// Behavioural differences.
    pub differences: Vec<Finding>,
    /// Rejections with a message of ours.
    pub rejected_ours: usize,
    /// Rejections with any other message.
    pub bad_rejections: Vec<Finding>,
    /// Programs whose plain version does not compile.
    pub invalid: usize,
    /// The first few of them (to improve the generator).
    pub invalid_examples: Vec<Finding>,
    /// Some messages of ours seen, with counts.
    pub our_messages: Vec<(String, usize)>,
    /// Some generator-invalid messages, with counts (to improve the generator).
    pub invalid_messages: Vec<(String, usize)>,
    /// `size_of` task / `size_of` plain, per program that compiled both ways.
    pub ratios: Vec<f64>,
    /// Seconds spent.
    pub seconds: f64,
}

fn bump(list: &mut Vec<(String, usize)>, msg: &str) {
    let key: String = msg.chars().take(110).collect();
    match list.iter_mut().find(|(m, _)| *m == key) {
        Some(e) => e.1 += 1,
        None => list.push((key, 1)),
    }
}

impl Summary {
    /// Adds one program's outcome.
    pub fn add(&mut self, index: u64, program: &Program, outcome: &Outcome) {
        self.programs += 1;
        let finding = |difference, errors| Finding {
            index,
            program: program.clone(),
            difference,
            errors,
        };
        match outcome {
            Outcome::Same(s) => {
                self.same += 1;
                self.ratios.push(s.task as f64 / s.plain.max(1) as f64);
            }
            Outcome::Differs(d) => {
                if let Some(s) = d.sizes {
                    self.ratios.push(s.task as f64 / s.plain.max(1) as f64);
                }
                self.differences.push(finding(Some(d.clone()), Vec::new()));
            }
            Outcome::Invalid(msgs) => {
                self.invalid += 1;
                if self.invalid_examples.len() < 5 {
                    self.invalid_examples.push(finding(None, msgs.clone()));
                }
                if let Some(m) = msgs.first() {
                    bump(&mut self.invalid_messages, m);
                }
            }
            Outcome::Rejected { errors, ours } => {
                if *ours {
                    self.rejected_ours += 1;
                    if let Some(m) = errors.first() {
                        bump(&mut self.our_messages, m);
                    }
                } else {
                    self.bad_rejections.push(finding(None, errors.clone()));
                }
            }
        }
    }

    /// Whether the run found nothing wrong.
    pub fn passed(&self) -> bool {
        self.differences.is_empty() && self.bad_rejections.is_empty()
    }

    /// Programs whose plain version compiled.
    pub fn valid(&self) -> usize {
        self.programs - self.invalid
    }

    /// The printed summary.
    pub fn render(&self) -> String {
        let pct = |n: usize, of: usize| 100.0 * n as f64 / of.max(1) as f64;
        let mut s = String::new();
        let v = self.valid();
        let _ = writeln!(s, "task-fuzz summary (seed {})", self.seed);
        let _ = writeln!(s, "  programs generated     {}", self.programs);
        let _ = writeln!(
            s,
            "  generator invalid      {} ({:.1}% of generated)",
            self.invalid,
            pct(self.invalid, self.programs)
        );
        let _ = writeln!(s, "  valid programs         {v}");
        let _ = writeln!(
            s,
            "  same behaviour         {} ({:.1}% of valid)",
            self.same,
            pct(self.same, v)
        );
        let _ = writeln!(
            s,
            "  DIFFERENCES            {} ({:.1}% of valid)",
            self.differences.len(),
            pct(self.differences.len(), v)
        );
        if !self.differences.is_empty() {
            let mut classes: Vec<(&str, usize)> = Vec::new();
            for f in &self.differences {
                let c = f.difference.as_ref().map_or("?", |d| d.class().name());
                match classes.iter_mut().find(|e| e.0 == c) {
                    Some(e) => e.1 += 1,
                    None => classes.push((c, 1)),
                }
            }
            let list: Vec<String> = classes.iter().map(|(c, n)| format!("{c} {n}")).collect();
            let _ = writeln!(s, "    by class: {}", list.join(", "));
        }
        let _ = writeln!(
            s,
            "  rejected (ours)        {} ({:.1}% of valid)",
            self.rejected_ours,
            pct(self.rejected_ours, v)
        );
        let _ = writeln!(
            s,
            "  BAD REJECTIONS         {} ({:.1}% of valid)",
            self.bad_rejections.len(),
            pct(self.bad_rejections.len(), v)
        );
        if !self.ratios.is_empty() {
            let mut r = self.ratios.clone();
            r.sort_by(f64::total_cmp);
            let q = |f: f64| r[((r.len() - 1) as f64 * f) as usize];
            let _ = writeln!(
                s,
                "  size_of task / size_of async fn: min {:.2}  p10 {:.2}  median {:.2}  p90 {:.2}  max {:.2}  (n = {})",
                r[0],
                q(0.1),
                q(0.5),
                q(0.9),
                r[r.len() - 1],
                r.len()
            );
        }
        let _ = writeln!(
            s,
            "  time                   {:.0}s ({:.1}s per 1,000 programs)",
            self.seconds,
            1000.0 * self.seconds / self.programs.max(1) as f64
        );
        if !self.our_messages.is_empty() {
            let mut m = self.our_messages.clone();
            m.sort_by_key(|e| std::cmp::Reverse(e.1));
            let _ = writeln!(s, "  rejections (ours), most frequent first:");
            for (msg, n) in m.iter().take(8) {
                let _ = writeln!(s, "    {n:5}  {msg}");
            }
        }
        if !self.invalid_messages.is_empty() {
            let mut m = self.invalid_messages.clone();
            m.sort_by_key(|e| std::cmp::Reverse(e.1));
            let _ = writeln!(s, "  generator invalid, most frequent first:");
            for (msg, n) in m.iter().take(6) {
                let _ = writeln!(s, "    {n:5}  {msg}");
            }
        }
        s
    }
}

/// One line per difference: index, kind, first divergence.
pub fn difference_line(seed: u64, f: &Finding) -> String {
    match &f.difference {
        Some(d) => {
            let (k, a, b) = d.first_divergence();
            format!(
                "DIFF seed {seed} program {} [{}, {}]: event #{k}: task `{a}`, async fn `{b}`",
                f.index,
                d.class().name(),
                d.what
            )
        }
        None => format!(
            "BAD REJECTION seed {seed} program {}: {}",
            f.index,
            f.errors.first().map_or("", String::as_str)
        ),
    }
}

/// A program with both logs, for a person to read.
pub fn explain(f: &Finding, attr: &str) -> String {
    let mut s = f.program.source("p", Some(attr));
    if let Some(d) = &f.difference {
        let _ = writeln!(s, "// difference: {} ({} run)", d.class().name(), d.what);
        let _ = writeln!(s, "// task:     {}", d.task_log.join(" | "));
        let _ = writeln!(s, "// async fn: {}", d.plain_log.join(" | "));
        let (k, a, b) = d.first_divergence();
        let _ = writeln!(
            s,
            "// first difference at event #{k}: task `{a}`, async fn `{b}`"
        );
    }
    for e in &f.errors {
        let _ = writeln!(s, "// error: {e}");
    }
    s
}
