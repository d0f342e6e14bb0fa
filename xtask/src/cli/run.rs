//! `cargo xtask run`: load every case first (a bad case file stops the run before any VM
//! boots), prepare the bench of every kernel (a bad kernel stops it too), run the cases on
//! each kernel in turn, report. With several kernels each has its own directory and
//! reports in the run's, and the run's own reports join them (`report::merge`).

use crate::bench::{Bench, Options};
use crate::report::files::new_run_dir;
use crate::report::terminal::Terminal;
use crate::result::events::Reporter;
use crate::result::exit;
use anyhow::{Context, Result};
use std::path::PathBuf;

pub struct RunArgs {
    pub cases: Vec<String>,
    pub filters: crate::case::select::Filters,
    /// Print the selected cases and what they need, run nothing.
    pub list: bool,
    /// The kernels, in the order they run (at least one).
    pub kernels: Vec<Options>,
    pub seed: Option<u64>,
    pub jobs: Option<usize>,
    pub results: Option<PathBuf>,
    /// Run each case this many times, each with a fresh seed (or `seed` every time).
    pub repeat: u32,
    /// What stdout shows.
    pub format: Format,
}

/// What a run prints on stdout.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A line per case, then the table and the summary.
    #[default]
    Human,
    /// The KTAP document of the run, when it ends (also written as `results.ktap`).
    Ktap,
}

pub fn run(args: RunArgs) -> Result<u8> {
    let project = crate::host::project_root();
    let plans =
        crate::case::select::plans(&project, &args.cases, &args.filters, args.seed, args.repeat)?;
    if args.list {
        print!("{}", list(&plans));
        return Ok(exit::OK);
    }
    super::on_interrupt()?;
    let benches = args
        .kernels
        .iter()
        .map(Bench::prepare)
        .collect::<Result<Vec<_>>>()?;
    let results_root = args.results.unwrap_or_else(|| project.join("results"));
    let killed = crate::run::interrupt::sweep_killed_runs(&results_root);
    let temp = crate::host::owner::sweep_temp(&std::env::temp_dir());
    if killed + temp.len() > 0 {
        eprintln!(
            "note: swept what killed runs left: {killed} running cases marked interrupted (their disks removed), {} temporary directories",
            temp.len()
        );
    }
    let run_dir = new_run_dir(&results_root)?;
    super::results_in(&run_dir);
    let jobs = args
        .jobs
        .unwrap_or_else(|| crate::run::default_jobs(&plans, benches[0].accel))
        .max(1);
    let several = benches.len() > 1;
    let screen: Box<dyn Reporter> = match (args.format, several) {
        (Format::Human, _) => Box::new(Terminal::run()),
        (Format::Ktap, false) => Box::new(crate::report::ktap::Ktap::stdout()),
        // One document for the whole run, printed once the kernels are joined.
        (Format::Ktap, true) => Box::new(Quiet),
    };
    let events = super::reporters(screen);
    if let [bench] = benches.as_slice() {
        let results = crate::run::run_plans(bench, &plans, &run_dir, jobs, &events)?;
        return Ok(exit::exit_code(&results));
    }
    let mut parts = Vec::new();
    for bench in &benches {
        let dir = run_dir.join(crate::run::kernel_dir_name(&bench.kernel.info));
        std::fs::create_dir(&dir).with_context(|| format!("create {}", dir.display()))?;
        crate::run::run_plans(bench, &plans, &dir, jobs, &events)?;
        if crate::run::interrupt::stopping() {
            break;
        }
        parts.push(crate::report::merge::read(&dir)?);
    }
    let results =
        crate::report::merge::join(&parts, &run_dir, crate::report::merge::Place::Inside)?;
    match args.format {
        Format::Human => println!(
            "{} kernels: {}\nresults: {}",
            parts.len(),
            crate::report::text::summary(&results),
            run_dir.display()
        ),
        Format::Ktap => {
            let path = run_dir.join("results.ktap");
            print!(
                "{}",
                std::fs::read_to_string(&path)
                    .with_context(|| format!("read {}", path.display()))?
            );
        }
    }
    Ok(exit::exit_code(&results))
}

/// The screen of a run whose stdout shows only what is printed at its end.
struct Quiet;

impl Reporter for Quiet {
    fn report(&mut self, _: &crate::result::events::Event) -> Result<()> {
        Ok(())
    }
}

/// A line per case: its name, the first line of its description, what it needs.
pub fn list(plans: &[crate::case::Plan]) -> String {
    let mut out = String::new();
    for p in plans {
        out.push_str(&format!(
            "{:<44} {}",
            p.name,
            first_sentence(&p.description)
        ));
        if !p.requires.is_empty() {
            out.push_str(&format!(" [needs {}]", p.requires.join(", ")));
        }
        out.push('\n');
    }
    out
}

/// The description up to its first full stop (YAML folds a paragraph into one line).
fn first_sentence(text: &str) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.find(". ") {
        Some(i) => text[..=i].to_string(),
        None => text,
    }
}
