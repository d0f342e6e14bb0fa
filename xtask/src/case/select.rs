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

/// The plans a run takes: those `include` names (every one when it is empty) and
/// `exclude` does not. A pattern without `*`, `?` or `[` names one case exactly
/// (`raid1-file-bitmap-crash`, `crash-levels@raid6-n4-file`); with them it is a glob over
/// the names (`'crash-levels@raid6-*'`). A pattern that selects nothing is an error: a
/// typo must not run an empty (and so passing) suite.
pub fn select(plans: Vec<Plan>, include: &[String], exclude: &[String]) -> Result<Vec<Plan>> {
    let compile = |patterns: &[String]| -> Result<Vec<(String, glob::Pattern)>> {
        patterns
            .iter()
            .map(|p| {
                glob::Pattern::new(p)
                    .map(|g| (p.clone(), g))
                    .with_context(|| format!("case pattern {p:?}"))
            })
            .collect()
    };
    let (include, exclude) = (compile(include)?, compile(exclude)?);
    for (text, pattern) in include.iter().chain(&exclude) {
        if !plans.iter().any(|p| pattern.matches(&p.name)) {
            let names: Vec<&str> = plans.iter().map(|p| p.name.as_str()).collect();
            bail!(
                "no case is named {text:?} (a glob such as '{text}*' selects by prefix); the cases: {}",
                names.join(", ")
            );
        }
    }
    Ok(plans
        .into_iter()
        .filter(|p| include.is_empty() || include.iter().any(|(_, g)| g.matches(&p.name)))
        .filter(|p| !exclude.iter().any(|(_, g)| g.matches(&p.name)))
        .collect())
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
/// validated before anything else happens, kept as the filters say, each `repeat` times.
pub fn plans(
    project: &Path,
    names: &[String],
    filters: &Filters,
    seed: Option<u64>,
    repeat_n: u32,
) -> Result<Vec<Plan>> {
    let mut loaded = Vec::new();
    for f in case_files(project, names)? {
        loaded.extend(super::load(&f, seed)?);
    }
    let loaded = select(loaded, &filters.include, &filters.exclude)?;
    if loaded.is_empty() {
        bail!("--exclude left no case to run");
    }
    let selected = loaded.len();
    let loaded = match filters.partition {
        Some((i, n)) => {
            let share = partition(loaded, i, n);
            if share.is_empty() {
                bail!("--partition {i}/{n} holds none of the {selected} cases selected");
            }
            share
        }
        None => loaded,
    };
    Ok(repeat(&loaded, repeat_n, seed))
}

/// Share `i` (from 1) of `n` of the plans: each case lands in the share its name hashes
/// to, so a CI matrix of `n` jobs runs every case once, and a case stays in its share
/// whatever else is selected.
pub fn partition(plans: Vec<Plan>, i: u32, n: u32) -> Vec<Plan> {
    use sha2::{Digest, Sha256};
    plans
        .into_iter()
        .filter(|p| {
            let h = Sha256::digest(p.name.as_bytes());
            let v = u64::from_le_bytes(h[..8].try_into().expect("8 bytes"));
            v % u64::from(n) == u64::from(i - 1)
        })
        .collect()
}

/// `--case`, `--exclude` and `--partition`.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// `(i, n)`: share `i` of `n`, 1 <= i <= n.
    pub partition: Option<(u32, u32)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_disjoint_cover_everything_and_keep_a_case_in_its_share() {
        let all: Vec<String> = (0..40).map(|i| format!("case-{i}")).collect();
        let names: Vec<&str> = all.iter().map(|s| s.as_str()).collect();
        let mut seen = Vec::new();
        for i in 1..=3 {
            let share = partition(plans(&names), i, 3);
            assert!(
                !share.is_empty() && share.len() < 40,
                "share {i}: {}",
                share.len()
            );
            seen.extend(share.into_iter().map(|p| p.name));
        }
        seen.sort();
        let mut want = all.clone();
        want.sort();
        assert_eq!(seen, want, "every case in exactly one share");
        // The same case lands in the same share when fewer are selected.
        let alone = partition(plans(&["case-7"]), 1, 3).len()
            + partition(plans(&["case-7"]), 2, 3).len() * 2
            + partition(plans(&["case-7"]), 3, 3).len() * 3;
        let among = (1..=3)
            .find(|&i| {
                partition(plans(&names), i, 3)
                    .iter()
                    .any(|p| p.name == "case-7")
            })
            .unwrap() as usize;
        assert_eq!(alone, among);
    }

    fn plans(names: &[&str]) -> Vec<Plan> {
        names
            .iter()
            .map(|n| {
                let file =
                    Path::new("cases").join(format!("{}.yaml", n.split('@').next().unwrap()));
                let text = "description: d\ndisks: []\nsteps: [run: x]\n";
                let mut p =
                    super::super::plan(&file, super::super::parse(&file, text).unwrap(), Some(1))
                        .unwrap();
                p.name = n.to_string();
                p
            })
            .collect()
    }

    fn names(p: Vec<Plan>) -> Vec<String> {
        p.into_iter().map(|p| p.name).collect()
    }

    const ALL: [&str; 4] = [
        "raid1-file-bitmap-crash",
        "raid1-file-bitmap-crash-1m",
        "crash-levels@raid6-n4-file",
        "crash-levels@raid6-n4-internal",
    ];
    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn a_name_selects_that_case_only_and_a_glob_selects_many() {
        assert_eq!(
            names(select(plans(&ALL), &s(&["raid1-file-bitmap-crash"]), &[]).unwrap()),
            ["raid1-file-bitmap-crash"]
        );
        assert_eq!(
            names(
                select(
                    plans(&ALL),
                    &s(&["crash-levels@raid6-*"]),
                    &s(&["*-internal"])
                )
                .unwrap()
            ),
            ["crash-levels@raid6-n4-file"]
        );
        assert_eq!(names(select(plans(&ALL), &[], &[]).unwrap()).len(), 4);
    }

    #[test]
    fn a_pattern_that_selects_nothing_is_named() {
        let e = select(plans(&ALL), &s(&["raid1-file-bitmap"]), &[]).unwrap_err();
        assert!(
            format!("{e}").contains("no case is named \"raid1-file-bitmap\""),
            "{e}"
        );
        assert!(select(plans(&ALL), &[], &s(&["nope*"])).is_err());
    }
}
