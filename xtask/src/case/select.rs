//! Which plans a run takes: the case files named (or all of `cases/`), the plans whose
//! names match, each repeated with fresh seeds.

use super::Plan;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Case files named on the command line (a path, or a name under `cases/`), else every
/// `cases/*.yaml`. A bad file among them stops the run, filtered out or not.
pub fn case_files(project: &Path, names: &[String]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    if names.is_empty() {
        let dir = project.join("cases");
        for e in std::fs::read_dir(&dir).with_context(|| format!("read {}", dir.display()))? {
            let p = e?.path();
            if p.extension().is_some_and(|x| x == "yaml") {
                files.push(p);
            }
        }
        files.sort();
    } else {
        for n in names {
            let as_path = PathBuf::from(n);
            let p = if as_path.is_file() {
                as_path
            } else {
                project.join("cases").join(format!("{n}.yaml"))
            };
            if !p.is_file() {
                bail!(
                    "case {n}: no such file (looked for {n} and {})",
                    p.display()
                );
            }
            files.push(p);
        }
    }
    Ok(files)
}

/// The plans whose name (a matrix case's `name@combination` included) contains a filter.
pub fn select(plans: Vec<Plan>, filters: &[String]) -> Result<Vec<Plan>> {
    let kept: Vec<Plan> = plans
        .into_iter()
        .filter(|p| filters.is_empty() || filters.iter().any(|f| p.name.contains(f.as_str())))
        .collect();
    if kept.is_empty() {
        bail!("no case matches {filters:?}");
    }
    Ok(kept)
}

/// Each plan `n` times; a repeat gets a fresh seed unless one was given, and a directory
/// of its own (`name.2`, `name.3`...).
pub fn repeat(plans: &[Plan], n: u32, seed: Option<u64>) -> Vec<Plan> {
    let mut out = Vec::new();
    for p in plans {
        out.push(p.clone());
        for i in 2..=n {
            let mut again = p.clone();
            again.run_name = format!("{}.{i}", p.name);
            again.seed = seed.unwrap_or_else(|| {
                p.seed
                    .wrapping_add(u64::from(i - 1).wrapping_mul(0x9e37_79b9_7f4a_7c15))
                    >> 1
            });
            out.push(again);
        }
    }
    out
}

/// The plans of a run: every case in `names` (all of `cases/` when empty) loaded and
/// validated before anything else happens, kept where a filter matches, each `repeat`
/// times.
pub fn plans(
    project: &Path,
    names: &[String],
    filters: &[String],
    seed: Option<u64>,
    repeat_n: u32,
) -> Result<Vec<Plan>> {
    let mut loaded = Vec::new();
    for f in case_files(project, names)? {
        loaded.extend(super::load(&f, seed)?);
    }
    let loaded = select(loaded, filters)?;
    Ok(repeat(&loaded, repeat_n, seed))
}
