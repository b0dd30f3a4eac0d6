//! The check benchmark: how long `accord check` takes on a project at the
//! platform's guardrails, against the plain TOML parse of the same files.
//!
//! Run with `cargo bench --bench check`; `-- --iterations N` changes the
//! number of timed runs per stage, `-- --keep` keeps the generated project.
//!
//! It writes a generated spec project into a fresh temporary folder
//! (`tests/support/guardrails.rs`: 4,000 audiences, 100 destinations, 1,000
//! activations and 300 attributes, deterministic). The project must check
//! clean: a benchmark of a project full of errors would measure the error
//! path.
//!
//! Each stage in [`STAGES`] is timed over the same files; the table shows the
//! median of the iterations and the ratio to the first stage, the baseline.
//! Adding a stage (plan, render) is one line in [`STAGES`].

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use accord::compile::{self, Options};

#[path = "../tests/support/guardrails.rs"]
mod guardrails;
#[path = "../tests/support/rng.rs"]
mod rng;

use guardrails::{Generated, generate};

// The same allocator as the binary, so the figures are what users get.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Iterations per stage when `--iterations` is not given.
const DEFAULT_ITERATIONS: usize = 10;

/// A timed stage: a name and a function of the generated project. The result
/// is passed through `black_box` so the work cannot be optimised away.
struct Stage {
    name: &'static str,
    run: fn(&Generated) -> usize,
}

/// The stages, in pipeline order; the first is the baseline of the ratios.
const STAGES: &[Stage] = &[
    Stage {
        name: "read + TOML parse (baseline)",
        run: toml_parse,
    },
    Stage {
        name: "load + syntax",
        run: load_and_syntax,
    },
    Stage {
        name: "load + syntax + resolve (CEL types)",
        run: load_and_resolve,
    },
    Stage {
        name: "load + check (+ governance)",
        run: load_and_check,
    },
    Stage {
        name: "load + check + plan",
        run: load_check_and_plan,
    },
];

fn load_and_syntax(project: &Generated) -> usize {
    let sources = accord::load::load(&project.root).expect("the generated project loads");
    let (syntax, diags) = accord::syntax::parse(&sources);
    syntax.audiences.len() + diags.len()
}

fn load_and_resolve(project: &Generated) -> usize {
    let sources = accord::load::load(&project.root).expect("the generated project loads");
    let (syntax, _) = accord::syntax::parse(&sources);
    let (model, diags) = accord::resolve::resolve(syntax, &sources);
    model.exprs.len() + diags.len()
}

/// Baseline: read every generated file and parse it as TOML, nothing more.
fn toml_parse(project: &Generated) -> usize {
    let mut tables = 0;
    for path in &project.files {
        let text = std::fs::read_to_string(path).expect("the generated file is readable");
        let document = toml::de::DeTable::parse(&text).expect("the generated file is valid TOML");
        tables += document.get_ref().len();
    }
    tables
}

/// The full front end, as `accord check` runs it.
fn load_and_check(project: &Generated) -> usize {
    let compiled = check(&project.root);
    compiled.diagnostics.len()
}

/// What `accord plan` computes: the front end, then the fingerprinted plan
/// and its review text.
fn load_check_and_plan(project: &Generated) -> usize {
    let compiled = check(&project.root);
    let plan = compile::plan(&compiled).expect("the generated project has a plan");
    accord::plan::text::render(&plan).len() + accord::plan::to_json(&plan).len()
}

fn check(root: &Path) -> compile::Compiled {
    let sources = accord::load::load(root).expect("the generated project loads");
    compile::check_sources(sources, &Options::default())
}

fn main() {
    let iterations = iterations_from_args();
    let keep = std::env::args().any(|a| a == "--keep");
    let temp = tempfile::Builder::new()
        .prefix("accord-bench-check-")
        .tempdir()
        .expect("the temporary folder can be created");
    let generated = generate(temp.path());
    // The folder goes when `_cleanup` drops, however the measurement ends,
    // unless asked to keep it for a look (`-- --keep`).
    let _cleanup = if keep {
        println!("generated project kept in {}", temp.keep().display());
        None
    } else {
        Some(temp)
    };

    assert_checks_clean(&generated);

    let mut medians = Vec::new();
    for stage in STAGES {
        // One untimed run warms the page cache and the allocator.
        black_box((stage.run)(&generated));
        let mut times: Vec<Duration> = (0..iterations)
            .map(|_| {
                let start = Instant::now();
                black_box((stage.run)(black_box(&generated)));
                start.elapsed()
            })
            .collect();
        times.sort();
        medians.push(median(&times));
    }

    println!(
        "check benchmark: {} files, {} bytes, {} schema fields + {} computed, {} audiences, {} destinations, {} activations",
        generated.files.len(),
        generated.bytes,
        generated.counts.fields,
        generated.counts.computed,
        generated.counts.audiences,
        generated.counts.destinations,
        generated.counts.activations,
    );
    println!("median of {iterations} iterations per stage\n");
    println!("{:<32} {:>12} {:>10}", "stage", "median ms", "ratio");
    let baseline = medians[0].as_secs_f64();
    for (stage, median) in STAGES.iter().zip(&medians) {
        let ms = median.as_secs_f64() * 1e3;
        let ratio = if baseline > 0.0 {
            median.as_secs_f64() / baseline
        } else {
            f64::NAN
        };
        println!("{:<32} {:>12.2} {:>9.1}x", stage.name, ms, ratio);
    }
}

/// `cargo bench` passes `--bench` (and any filter) to the binary; only
/// `--iterations N` means something here.
fn iterations_from_args() -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--iterations")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(DEFAULT_ITERATIONS)
}

fn median(sorted: &[Duration]) -> Duration {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }
}

fn assert_checks_clean(project: &Generated) {
    let compiled = check(&project.root);
    let errors = compiled.diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = compiled.diagnostics.len() - errors;
    if errors > 0 || warnings > 0 {
        let style = accord::cli::HumanStyle {
            color: false,
            width: 100,
        };
        // Enough of the report to see what the generator got wrong.
        let shown: Vec<_> = compiled.diagnostics.iter().take(20).cloned().collect();
        eprintln!(
            "{}",
            accord::cli::output::human(&shown, &compiled.sources, style)
        );
        eprintln!("{}", accord::cli::output::summary(&compiled.diagnostics));
    }
    assert_eq!(errors, 0, "the generated project must check without errors");
}
