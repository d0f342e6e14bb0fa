//! Which plans a run takes. A positional argument of `run` and `--case` name cases the same
//! way: a case's name (the stem of its file under `cases/`, `smoke`; for a matrix case, every
//! combination: `crash-levels`), one combination (`crash-levels@raid6-n4-file`), or a glob
//! over those (`'*crash*'`). A positional argument may also be the path of a case file.
//! `--case` and `--exclude` then narrow what the positional arguments chose, and each plan is
//! repeated with fresh seeds.

use super::Plan;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// What one positional argument of `run` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Named {
    /// A case file: every plan of it.
    File(PathBuf),
    /// Cases by name or glob, as `--case` takes them.
    Cases(String),
}

impl Named {
    /// A file that exists is that file; an argument that looks like a path (a `/`, a
    /// `.yaml`) and is none is an error rather than a name no case can have; anything else
    /// is a name or a glob.
    pub fn parse(arg: &str) -> Result<Self> {
        let path = Path::new(arg);
        if path.is_file() {
            return Ok(Named::File(path.to_path_buf()));
        }
        if arg.contains('/') || arg.ends_with(".yaml") {
            bail!("case file {arg}: no such file");
        }
        Ok(Named::Cases(arg.to_string()))
    }
}

/// A name or glob as the positional arguments and `--case` take it. It selects a plan when
/// it matches the plan's name or the name of the plan's case (before the `@`), so that the
/// name of a matrix case is every combination of it.
struct Pattern {
    text: String,
    glob: glob::Pattern,
}

impl Pattern {
    fn new(text: &str) -> Result<Self> {
        let glob = glob::Pattern::new(text).with_context(|| format!("case pattern {text:?}"))?;
        Ok(Pattern {
            text: text.to_string(),
            glob,
        })
    }

    fn is_glob(text: &str) -> bool {
        text.contains(['*', '?', '['])
    }

    fn selects(&self, plan: &Plan) -> bool {
        self.glob.matches(&plan.name) || self.glob.matches(case_name(&plan.name))
    }
}

/// The case a plan's name belongs to: `crash-levels` of `crash-levels@raid6-n4-file`.
fn case_name(plan: &str) -> &str {
    plan.split_once('@').map_or(plan, |(case, _)| case)
}

/// The case files a run loads, and where its names were looked for (for errors).
#[derive(Debug)]
pub struct CaseFiles {
    pub files: Vec<PathBuf>,
    /// `cases/` when every file of it is loaded, else the files.
    pub place: String,
}

/// The case files a run loads: each file named, the file of each exact name
/// (`cases/STEM.yaml` for `STEM` and `STEM@combo`), and every `cases/*.yaml` when nothing
/// is named or a glob or a name without such a file needs them all. A bad file among them
/// stops the run, filtered out or not.
pub fn case_files(cases: &Path, named: &[Named]) -> Result<CaseFiles> {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut all = named.is_empty();
    for n in named {
        let file = match n {
            Named::File(f) => f.clone(),
            Named::Cases(text) if !Pattern::is_glob(text) => {
                let f = cases.join(format!("{}.yaml", case_name(text)));
                if !f.is_file() {
                    all = true;
                    continue;
                }
                f
            }
            Named::Cases(_) => {
                all = true;
                continue;
            }
        };
        if !files.contains(&file) {
            files.push(file);
        }
    }
    if all {
        let mut every = Vec::new();
        for e in std::fs::read_dir(cases).with_context(|| format!("read {}", cases.display()))? {
            let p = e?.path();
            if p.extension().is_some_and(|x| x == "yaml") && !files.contains(&p) {
                every.push(p);
            }
        }
        every.sort();
        files.extend(every);
    }
    let place = if all {
        cases.display().to_string()
    } else {
        let shown: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        shown.join(", ")
    };
    Ok(CaseFiles { files, place })
}

/// The plans the positional arguments name: every plan of a named file, and the plans a
/// name or glob selects; all of them when only files, or nothing, are named. A name that
/// selects nothing is an error, as after `--case`.
pub fn take_named(plans: Vec<Plan>, named: &[Named], place: &str) -> Result<Vec<Plan>> {
    let patterns = named
        .iter()
        .filter_map(|n| match n {
            Named::Cases(text) => Some(Pattern::new(text)),
            Named::File(_) => None,
        })
        .collect::<Result<Vec<_>>>()?;
    if patterns.is_empty() {
        return Ok(plans);
    }
    check_each_selects(&plans, &patterns, place)?;
    let files: Vec<&PathBuf> = named
        .iter()
        .filter_map(|n| match n {
            Named::File(f) => Some(f),
            Named::Cases(_) => None,
        })
        .collect();
    Ok(plans
        .into_iter()
        .filter(|p| files.contains(&&p.file) || patterns.iter().any(|g| g.selects(p)))
        .collect())
}

/// The plans a run takes: those `include` names (every one when it is empty) and
/// `exclude` does not, each pattern as [`Pattern`] reads it. A pattern that selects nothing
/// is an error naming `place`, where the names were looked for: a typo must not run an
/// empty (and so passing) suite.
pub fn select(
    plans: Vec<Plan>,
    include: &[String],
    exclude: &[String],
    place: &str,
) -> Result<Vec<Plan>> {
    let compile = |patterns: &[String]| -> Result<Vec<Pattern>> {
        patterns.iter().map(|p| Pattern::new(p)).collect()
    };
    let (include, exclude) = (compile(include)?, compile(exclude)?);
    check_each_selects(&plans, &include, place)?;
    check_each_selects(&plans, &exclude, place)?;
    Ok(plans
        .into_iter()
        .filter(|p| include.is_empty() || include.iter().any(|g| g.selects(p)))
        .filter(|p| !exclude.iter().any(|g| g.selects(p)))
        .collect())
}

/// One line for the first pattern that selects none of `plans`: what, where, and the
/// names close to it (a typo's likely meaning).
fn check_each_selects(plans: &[Plan], patterns: &[Pattern], place: &str) -> Result<()> {
    let Some(bad) = patterns
        .iter()
        .find(|g| !plans.iter().any(|p| g.selects(p)))
    else {
        return Ok(());
    };
    let mut names: Vec<&str> = Vec::new();
    for p in plans {
        for n in [case_name(&p.name), p.name.as_str()] {
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    let close = close_names(&bad.text, &names);
    let text = &bad.text;
    let hint = if close.is_empty() {
        format!("a glob such as '{text}*' selects by prefix")
    } else {
        format!("close: {}", close.join(", "))
    };
    bail!("no case is named {text:?} in {place} ({hint}; `cargo xtask run --list` lists them)")
}

/// The names within a few edits of `text`, or holding it, nearest first; five at most.
fn close_names<'a>(text: &str, names: &[&'a str]) -> Vec<&'a str> {
    let limit = (text.chars().count() / 5).max(2);
    let mut close: Vec<(usize, &str)> = names
        .iter()
        .map(|n| (edit_distance(text, n), *n))
        .filter(|(d, n)| *d <= limit || n.contains(text))
        .collect();
    close.sort();
    close.into_iter().take(5).map(|(_, n)| n).collect()
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substituted = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substituted.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
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

/// The plans of a run: the cases the positional arguments `args` name (all of `cases/`
/// when none), every file they need loaded and validated before anything else happens,
/// kept as the filters say, each `repeat` times.
pub fn plans(
    project: &Path,
    args: &[String],
    filters: &Filters,
    seed: Option<u64>,
    repeat_n: u32,
) -> Result<Vec<Plan>> {
    let named = args
        .iter()
        .map(|a| Named::parse(a))
        .collect::<Result<Vec<_>>>()?;
    let files = case_files(&project.join("cases"), &named)?;
    let mut loaded = Vec::new();
    for f in &files.files {
        loaded.extend(super::load(f, seed)?);
    }
    let loaded = take_named(loaded, &named, &files.place)?;
    let loaded = select(loaded, &filters.include, &filters.exclude, &files.place)?;
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
        let pick = |include: &[&str], exclude: &[&str]| {
            names(select(plans(&ALL), &s(include), &s(exclude), "cases").unwrap())
        };
        assert_eq!(
            pick(&["raid1-file-bitmap-crash"], &[]),
            ["raid1-file-bitmap-crash"]
        );
        assert_eq!(
            pick(&["crash-levels@raid6-*"], &["*-internal"]),
            ["crash-levels@raid6-n4-file"]
        );
        assert_eq!(pick(&[], &[]).len(), 4);
        // A matrix case's own name is every combination of it, as a positional name is.
        assert_eq!(
            pick(&["crash-levels"], &[]),
            [
                "crash-levels@raid6-n4-file",
                "crash-levels@raid6-n4-internal"
            ]
        );
    }

    #[test]
    fn a_pattern_that_selects_nothing_is_one_line_naming_it_where_and_the_names_close_to_it() {
        let e = select(plans(&ALL), &s(&["raid1-file-bitmap"]), &[], "cases/").unwrap_err();
        let e = format!("{e}");
        assert!(
            e.starts_with("no case is named \"raid1-file-bitmap\" in cases/ (close: "),
            "{e}"
        );
        assert!(
            e.contains("raid1-file-bitmap-crash, raid1-file-bitmap-crash-1m"),
            "{e}"
        );
        assert_eq!(e.lines().count(), 1, "{e}");
        let e = select(
            plans(&ALL),
            &s(&["crash-levels@raid6-n4-fil"]),
            &[],
            "cases/",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("(close: crash-levels@raid6-n4-file"), "{e}");
        let e = select(plans(&ALL), &[], &s(&["nope*"]), "cases/")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("a glob such as 'nope**' selects by prefix"),
            "{e}"
        );
    }

    #[test]
    fn a_positional_argument_is_a_file_that_exists_else_a_name() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mine.yaml");
        std::fs::write(&file, "").unwrap();
        let f = file.to_str().unwrap();
        assert_eq!(Named::parse(f).unwrap(), Named::File(file.clone()));
        for name in [
            "raid1-file-bitmap-lie@stale",
            "smoke",
            "*crash*",
            "crash-levels@*",
        ] {
            assert_eq!(Named::parse(name).unwrap(), Named::Cases(name.into()));
        }
        for path in ["cases/nope.yaml", "nope.yaml", "./nope"] {
            let e = Named::parse(path).unwrap_err().to_string();
            assert_eq!(e, format!("case file {path}: no such file"));
        }
    }

    #[test]
    fn a_positional_name_selects_what_the_same_case_filter_selects() {
        for text in [
            "raid1-file-bitmap-crash",
            "crash-levels@raid6-n4-file",
            "crash-levels",
            "*crash-1m",
            "crash-levels@*-file",
            "*crash*",
        ] {
            let positional = take_named(plans(&ALL), &[Named::Cases(text.into())], "cases/");
            let filter = select(plans(&ALL), &s(&[text]), &[], "cases/");
            assert_eq!(names(positional.unwrap()), names(filter.unwrap()), "{text}");
        }
        let e = take_named(
            plans(&ALL),
            &[Named::Cases("crash-levels@raid6".into())],
            "x",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("no case is named \"crash-levels@raid6\" in x"),
            "{e}"
        );
        // A file keeps all its plans beside a name's.
        let file = Named::File(PathBuf::from("cases/raid1-file-bitmap-crash-1m.yaml"));
        let both = take_named(
            plans(&ALL),
            &[file, Named::Cases("crash-levels@raid6-n4-file".into())],
            "x",
        );
        assert_eq!(
            names(both.unwrap()),
            ["raid1-file-bitmap-crash-1m", "crash-levels@raid6-n4-file"]
        );
    }

    #[test]
    fn an_exact_name_loads_its_own_file_and_a_glob_or_an_unknown_name_loads_them_all() {
        let dir = tempfile::tempdir().unwrap();
        let cases = dir.path();
        for f in ["a.yaml", "m.yaml", "notes.txt"] {
            std::fs::write(cases.join(f), "").unwrap();
        }
        let load = |named: &[Named]| {
            let c = case_files(cases, named).unwrap();
            let files: Vec<String> = c
                .files
                .iter()
                .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
                .collect();
            (files, c.place)
        };
        let name = |n: &str| Named::Cases(n.into());
        let every = (s(&["a.yaml", "m.yaml"]), cases.display().to_string());
        assert_eq!(
            load(&[name("m@x")]),
            (s(&["m.yaml"]), cases.join("m.yaml").display().to_string())
        );
        assert_eq!(load(&[]), every);
        assert_eq!(load(&[name("m*")]), every);
        assert_eq!(load(&[name("nope")]), every);
        let other = dir.path().join("sub/o.yaml");
        assert_eq!(
            load(&[Named::File(other), name("a"), name("a@y")]).0,
            ["o.yaml", "a.yaml"]
        );
    }

    /// The real `cases/`: `run raid1-file-bitmap-lie@stale` and `run --case
    /// raid1-file-bitmap-lie@stale` plan the same single case.
    #[test]
    fn the_positional_and_the_case_flag_plan_a_matrix_combination_alike() {
        let project = crate::host::project_root();
        let one = s(&["raid1-file-bitmap-lie@stale"]);
        let positional = super::plans(&project, &one, &Filters::default(), Some(1), 1).unwrap();
        let filters = Filters {
            include: one.clone(),
            ..Default::default()
        };
        let flag = super::plans(&project, &[], &filters, Some(1), 1).unwrap();
        assert_eq!(names(positional), one);
        assert_eq!(names(flag), one);
    }
}
