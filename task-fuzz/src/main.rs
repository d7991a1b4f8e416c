//! The `task-fuzz` command line. See `task-fuzz/README.md`.

use std::path::PathBuf;
use std::process::ExitCode;

use task_fuzz::{Config, fuzz, report};

const USAGE: &str = "\
task-fuzz: compiles random async fn bodies as #[iomgr::task] and as plain async fns,
runs both on a deterministic executor and compares return values and event logs.

usage: cargo run --release -p task-fuzz -- [options]

  --seed S          seed of the run (default 1)
  --programs N      programs to generate (default 200)
  --batch B         programs per generated crate (default 100)
  --only I          run only program I of the seed (with --minimize 1 to shrink it)
  --attr TEXT       the attribute, without #[ ] (default iomgr::task); for the old macro:
                    --attr 'iomgr::task(slot = 1024, local = 256)'
  --max-depth D     expression nesting of generated programs (default 7); 2 to 4
                    give shallow, statement-heavy programs
  --keep DIR        keep every generated main.rs in DIR
  --work-dir DIR    where batch crates are written and built
                    (default <repo>/target/task-fuzz)
  --minimize K      shrink K differences, one of each class in turn, and print them
                    (default 3)
  --class C         shrink only differences of class C: value, effects, pending,
                    drops, crash
  --quiet           no progress on stderr
  --show-invalid    print the first programs whose plain version does not compile
  --print           print the programs (after --seed/--programs/--only/--max-depth)
                    instead of running them
";

fn main() -> ExitCode {
    let mut cfg = Config::new();
    cfg.verbose = true;
    cfg.minimize = 3;
    let mut show_invalid = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next().unwrap_or_else(|| {
                eprintln!("{name} needs a value\n\n{USAGE}");
                std::process::exit(2)
            })
        };
        let num = |name: &str, v: String| -> u64 {
            v.parse().unwrap_or_else(|_| {
                eprintln!("{name}: not a number: {v}");
                std::process::exit(2)
            })
        };
        match a.as_str() {
            "--seed" => cfg.seed = num("--seed", value("--seed")),
            "--programs" => cfg.programs = num("--programs", value("--programs")),
            "--batch" => cfg.batch = num("--batch", value("--batch")).max(1) as usize,
            "--only" => {
                cfg.first = num("--only", value("--only"));
                cfg.programs = 1;
            }
            "--attr" => cfg.attr = value("--attr"),
            "--max-depth" => {
                cfg.options.max_depth = num("--max-depth", value("--max-depth")) as u32
            }
            "--keep" => cfg.keep = Some(PathBuf::from(value("--keep"))),
            "--work-dir" => cfg.work_dir = PathBuf::from(value("--work-dir")),
            "--minimize" => cfg.minimize = num("--minimize", value("--minimize")) as usize,
            "--class" => cfg.minimize_class = Some(value("--class")),
            "--quiet" => cfg.verbose = false,
            "--show-invalid" => show_invalid = true,
            "--print" => {
                // Print the programs instead of running them.
                let (first, n) = (cfg.first, cfg.programs);
                for i in first..first + n {
                    let seed = task_fuzz::rng::derive(cfg.seed, i);
                    let p = task_fuzz::generate::generate_with(seed, cfg.options);
                    println!("// seed {} program {i}\n{}", cfg.seed, p.source("p", None));
                }
                return ExitCode::SUCCESS;
            }
            "-h" | "--help" => {
                print!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown argument {other}\n\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let (summary, minimized) = match fuzz(&cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("task-fuzz: {e}");
            return ExitCode::from(2);
        }
    };
    for f in &minimized {
        println!(
            "\n// ===== minimized: seed {} program {} (reproduce: --seed {} --only {} --minimize 1)",
            cfg.seed, f.index, cfg.seed, f.index
        );
        print!("{}", report::explain(f, &cfg.attr));
    }
    for f in summary.bad_rejections.iter().take(5) {
        println!(
            "\n// ===== bad rejection: seed {} program {}",
            cfg.seed, f.index
        );
        print!("{}", report::explain(f, &cfg.attr));
    }
    if show_invalid {
        for f in &summary.invalid_examples {
            println!(
                "\n// ===== generator invalid: seed {} program {}",
                cfg.seed, f.index
            );
            print!("{}", report::explain(f, "(plain)"));
        }
    }
    println!("\n{}", summary.render());
    if summary.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
