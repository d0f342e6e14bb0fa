//! `cargo xtask compare`: loads the cases once (one seed per case and repeat, shared by
//! both kernels), prepares both kernels before any case runs, runs base then patched,
//! prints the comparison.

use crate::bench::{Bench, Options};
use crate::report::compare::{exit_code, judge, table};
use crate::report::files::new_run_dir;
use crate::report::terminal::Terminal;
use crate::result::json::write_json;
use anyhow::{Context, Result};
use std::path::PathBuf;

pub struct CompareArgs {
    pub base: Options,
    pub patched: Options,
    pub cases: Vec<String>,
    pub filters: crate::case::select::Filters,
    pub seed: Option<u64>,
    pub repeat: u32,
    pub jobs: Option<usize>,
    pub results: Option<PathBuf>,
}

pub fn run(args: CompareArgs) -> Result<u8> {
    let project = crate::host::project_root();
    let plans =
        crate::case::select::plans(&project, &args.cases, &args.filters, args.seed, args.repeat)?;
    super::on_interrupt()?;
    let base = Bench::prepare(&args.base).context("the base kernel")?;
    let patched = Bench::prepare(&args.patched).context("the patched kernel")?;
    let root = args.results.unwrap_or_else(|| project.join("results"));
    let run_dir = new_run_dir(&root)?;
    super::results_in(&run_dir);
    let mut sides = Vec::new();
    for (label, bench) in [("base", &base), ("patched", &patched)] {
        let dir = run_dir.join(label);
        std::fs::create_dir_all(&dir)?;
        let jobs = args
            .jobs
            .unwrap_or_else(|| crate::run::default_jobs(&plans, bench.accel))
            .max(1);
        let events = super::reporters(Box::new(Terminal::side(label)));
        sides.push(crate::run::run_plans(bench, &plans, &dir, jobs, &events)?);
    }
    let rows = judge(&sides[0], &sides[1]);
    println!("{}", table(&rows));
    let worse = rows.iter().filter(|r| !r.regressions.is_empty()).count();
    println!(
        "{} cases compared: {worse} regressed on the patched kernel",
        rows.len()
    );
    println!("results in {}", run_dir.display());
    write_json(&run_dir.join("compare.json"), &rows)?;
    Ok(exit_code(&rows, plans.len()))
}
