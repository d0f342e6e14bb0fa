//! Runs joined into one: the shards of a CI matrix (`--partition I/N`, then `report merge
//! DIR...`), and the kernels of a run given several `--kernel`s. The joined run has what
//! one run of all the cases would have: `summary.json`, `results.ktap`, `junit.xml` and
//! `index.html`, with every case's directory under it.

use super::files::{counts, RunInfo, Summary};
use crate::result::json::write_json;
use crate::result::CaseResult;
use anyhow::{bail, ensure, Context, Result};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// One run that ended: its directory and what its `summary.json` says.
#[derive(Debug)]
pub struct Part {
    pub dir: PathBuf,
    pub run: RunInfo,
    pub ended: String,
    pub results: Vec<CaseResult>,
}

#[derive(Deserialize)]
struct SummaryFile {
    #[serde(flatten)]
    run: RunInfo,
    ended: String,
    cases: Vec<CaseResult>,
}

/// The run in `dir`, from its `summary.json`.
pub fn read(dir: &Path) -> Result<Part> {
    let path = dir.join("summary.json");
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "{}: no summary.json: that run did not end (killed, or still running), or it is not a run's directory",
            dir.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
    };
    let value: serde_json::Value =
        serde_json::from_slice(&text).with_context(|| format!("parse {}", path.display()))?;
    ensure!(
        value.is_object(),
        "{}: a summary from an older bench (a bare list of cases); rerun",
        path.display()
    );
    let s: SummaryFile = serde_json::from_value(value)
        .with_context(|| format!("{}: not a summary this bench wrote", path.display()))?;
    Ok(Part {
        dir: dir.to_path_buf(),
        run: s.run,
        ended: s.ended,
        results: s.cases,
    })
}

/// Where the parts' case directories are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Under the joined run's directory already (a run of several kernels).
    Inside,
    /// Elsewhere: linked (or copied) into the joined run's directory.
    Copy,
}

/// Joins `parts` into the run directory `out` and writes its reports; the joined results,
/// each naming its directory under `out`.
pub fn join(parts: &[Part], out: &Path, place: Place) -> Result<Vec<CaseResult>> {
    let Some(first) = parts.first() else {
        bail!("nothing to join: no runs given")
    };
    for p in &parts[1..] {
        ensure!(
            p.run.bench_version == first.run.bench_version,
            "{} was run by bench {} and {} by {}: join the shards of one bench version",
            first.dir.display(),
            first.run.bench_version,
            p.dir.display(),
            p.run.bench_version
        );
    }
    let mut kernels: Vec<crate::kernel::KernelInfo> = Vec::new();
    for k in parts.iter().flat_map(|p| &p.run.kernels) {
        if !kernels.contains(k) {
            kernels.push(k.clone());
        }
    }
    let several = kernels.len() > 1;
    std::fs::create_dir_all(out).with_context(|| format!("create {}", out.display()))?;
    let mut seen = BTreeSet::new();
    let mut results = Vec::new();
    for p in parts {
        for r in &p.results {
            let own = r.dir_name();
            let from = p.dir.join(own);
            let rel = match place {
                Place::Inside => from
                    .strip_prefix(out)
                    .with_context(|| format!("{} is not under {}", from.display(), out.display()))?
                    .to_path_buf(),
                Place::Copy if several => {
                    Path::new(&crate::run::kernel_dir_name(&r.kernel)).join(own)
                }
                Place::Copy => PathBuf::from(own),
            };
            ensure!(
                seen.insert((r.kernel.vmlinuz_sha256.clone(), rel.clone())),
                "case {} on kernel {} is in more than one of the runs (again in {}): the shards overlap",
                own,
                r.kernel.release,
                p.dir.display()
            );
            if place == Place::Copy && from.is_dir() {
                copy_tree(&from, &out.join(&rel))?;
            }
            let mut r = r.clone();
            r.dir = rel.to_string_lossy().into_owned();
            results.push(r);
        }
    }
    let started = parts.iter().map(|p| p.run.started.clone()).min().unwrap();
    let ended = parts.iter().map(|p| p.ended.clone()).max().unwrap();
    let seconds = match (
        humantime::parse_rfc3339(&started),
        humantime::parse_rfc3339(&ended),
    ) {
        (Ok(a), Ok(b)) => b.duration_since(a).map_or(0.0, |d| d.as_secs_f64()),
        _ => 0.0,
    };
    let run = RunInfo {
        kernels,
        started,
        parts: parts.iter().map(|p| p.dir.clone()).collect(),
        ..first.run.clone()
    };
    write_json(
        &out.join("summary.json"),
        &Summary {
            run: &run,
            ended,
            seconds,
            counts: counts(&results),
            cases: &results,
        },
    )?;
    write_reports(out, &run.kernels, &results)?;
    // The joined run is whole: it ends as a run does.
    let _ = std::fs::remove_file(out.join(crate::host::owner::OWNER_FILE));
    Ok(results)
}

/// The KTAP, JUnit and HTML documents of a joined run.
fn write_reports(
    out: &Path,
    kernels: &[crate::kernel::KernelInfo],
    results: &[CaseResult],
) -> Result<()> {
    let consoles = super::consoles::console_tails(out, results);
    let header = kernels
        .iter()
        .map(|k| format!("md-bitmap-bench: kernel {}", super::text::kernel_label(k)))
        .collect::<Vec<_>>()
        .join("\n");
    let title = format!(
        "md-bitmap-bench: {}",
        out.file_name().unwrap_or_default().to_string_lossy()
    );
    for (name, text) in [
        ("results.ktap", super::ktap::render(&header, results)),
        ("junit.xml", super::junit::render(results, &consoles)?),
        (
            "index.html",
            super::html::render(
                &title,
                results,
                &consoles,
                &super::timeline::timelines(out, results),
            ),
        ),
    ] {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    }
    Ok(())
}

/// `from`'s files under `to`, hard-linked where the filesystem allows (a kept case's disk
/// images are large), else copied.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    ensure!(
        !to.exists(),
        "{} exists already: the shards overlap",
        to.display()
    );
    std::fs::create_dir_all(to).with_context(|| format!("create {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("read {}", from.display()))? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&src, &dst)?;
        } else if kind.is_file() && std::fs::hard_link(&src, &dst).is_err() {
            std::fs::copy(&src, &dst)
                .with_context(|| format!("copy {} to {}", src.display(), dst.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::files::tests::run_info;
    use crate::report::ktap::tests::four_cases;
    use crate::result::Verdict;

    /// A shard on disk as a run leaves it: each case's directory with its console, then
    /// `summary.json`.
    fn shard(root: &Path, name: &str, started: &str, results: &[CaseResult]) -> PathBuf {
        let dir = root.join(name);
        for r in results {
            let case = dir.join(&r.dir);
            std::fs::create_dir_all(&case).unwrap();
            std::fs::write(
                case.join("console-boot1.log"),
                format!("{} booted\n", r.case),
            )
            .unwrap();
            write_json(&case.join("result.json"), r).unwrap();
        }
        let run = RunInfo {
            started: started.into(),
            ..run_info(vec![results[0].kernel.clone()])
        };
        let mut summary = serde_json::to_value(run.summary(results)).unwrap();
        // Each shard ran ten seconds.
        summary["ended"] = format!("{}10Z", &started[..started.len() - 3]).into();
        write_json(&dir.join("summary.json"), &summary).unwrap();
        dir
    }

    fn with_dirs(mut results: Vec<CaseResult>) -> Vec<CaseResult> {
        for r in &mut results {
            r.dir = r.case.clone();
        }
        results
    }

    #[test]
    fn two_shards_join_into_one_run_with_every_case_and_its_console() {
        let root = tempfile::tempdir().unwrap();
        let cases = with_dirs(four_cases());
        let a = shard(root.path(), "a", "2026-12-02T01:00:00Z", &cases[..2]);
        let b = shard(root.path(), "b", "2026-12-02T01:05:00Z", &cases[2..]);
        let out = root.path().join("merged");
        let parts = [read(&a).unwrap(), read(&b).unwrap()];
        let joined = join(&parts, &out, Place::Copy).unwrap();
        assert_eq!(joined.len(), 4);
        let s: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
        assert_eq!(s["cases"].as_array().unwrap().len(), 4);
        assert_eq!(s["started"], "2026-12-02T01:00:00Z");
        assert_eq!(s["ended"], "2026-12-02T01:05:10Z");
        assert_eq!(s["seconds"], 310.0);
        assert_eq!(s["parts"].as_array().unwrap().len(), 2);
        assert_eq!(s["kernels"].as_array().unwrap().len(), 1);
        let counted: usize = s["counts"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap() as usize)
            .sum();
        assert_eq!(counted, 4);
        // Every case's directory came along, and the reports show its console.
        for r in &joined {
            assert!(
                out.join(&r.dir).join("console-boot1.log").is_file(),
                "{}",
                r.dir
            );
        }
        let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
        assert!(junit.contains("smoke booted"), "{junit}");
        let ktap = std::fs::read_to_string(out.join("results.ktap")).unwrap();
        assert!(ktap.contains("1..4"), "{ktap}");
        assert!(out.join("index.html").is_file());
        // The joined run is itself a run: it can be read and joined again.
        assert_eq!(read(&out).unwrap().results.len(), 4);
    }

    #[test]
    fn overlapping_shards_unfinished_runs_and_other_bench_versions_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let cases = with_dirs(four_cases());
        let a = shard(root.path(), "a", "2026-12-02T01:00:00Z", &cases[..3]);
        let b = shard(root.path(), "b", "2026-12-02T01:00:00Z", &cases[2..]);
        let parts = [read(&a).unwrap(), read(&b).unwrap()];
        let err = join(&parts, &root.path().join("m1"), Place::Copy).unwrap_err();
        assert!(err.to_string().contains("the shards overlap"), "{err}");

        let unfinished = root.path().join("killed");
        std::fs::create_dir_all(&unfinished).unwrap();
        let err = read(&unfinished).unwrap_err().to_string();
        assert!(
            err.contains("no summary.json") && err.contains("killed"),
            "{err}"
        );

        let mut other = read(&b).unwrap();
        other.run.bench_version = "v2".into();
        let err = join(
            &[read(&a).unwrap(), other],
            &root.path().join("m2"),
            Place::Copy,
        )
        .unwrap_err();
        assert!(err.to_string().contains("one bench version"), "{err}");
    }

    #[test]
    fn cases_of_two_kernels_go_under_a_directory_per_kernel() {
        let root = tempfile::tempdir().unwrap();
        let old = with_dirs(four_cases());
        let mut new = with_dirs(four_cases());
        for r in &mut new {
            r.kernel.release = "6.1.0-57-cloud-amd64".into();
            r.kernel.vmlinuz_sha256 = "abcdef0123".into();
            r.verdict = Verdict::Pass;
        }
        let a = shard(root.path(), "a", "2026-12-02T01:00:00Z", &old);
        let b = shard(root.path(), "b", "2026-12-02T01:00:00Z", &new);
        let out = root.path().join("m");
        let joined = join(&[read(&a).unwrap(), read(&b).unwrap()], &out, Place::Copy).unwrap();
        assert_eq!(joined.len(), 8);
        assert!(joined
            .iter()
            .any(|r| r.dir == "6.1.0-57-cloud-amd64-abcdef01/smoke"));
        assert!(joined.iter().all(|r| out.join(&r.dir).is_dir()));
        let s: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
        assert_eq!(s["kernels"].as_array().unwrap().len(), 2);
    }
}
