//! The result files of a run, written from the runner's events: per case `plan.json` when
//! it starts and `result.json` after everything it does (so a case that dies later loses
//! nothing), per run the kernel's config and build log and `summary.json` (the bench's
//! version, the arguments, the host, the accelerator, the kernels, the times, the counts
//! by verdict, the cases).

use crate::bench::Bench;
use crate::result::events::{Event, Reporter};
use crate::result::json::write_json;
use crate::result::CaseResult;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Writes the result files where the events say.
#[derive(Default)]
pub struct ResultFiles {
    run: Option<RunInfo>,
}

/// What `summary.json` says of the run besides its cases.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    /// `git describe --always --dirty` of the bench's checkout.
    pub bench_version: String,
    pub arguments: Vec<String>,
    pub host: Host,
    pub accelerator: String,
    pub qemu: String,
    pub kernels: Vec<crate::kernel::KernelInfo>,
    pub jobs: usize,
    /// RFC 3339, UTC.
    pub started: String,
    #[serde(skip, default = "std::time::Instant::now")]
    pub started_at: std::time::Instant,
    /// The runs this one joins (`report merge`, or each kernel of a run of several),
    /// as directories; the host and the arguments above are the first one's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Host {
    pub hostname: String,
    pub os: String,
    pub cpus: usize,
    pub memory_bytes: u64,
}

/// `summary.json`: the run, then counts by verdict, then every case's result.
#[derive(Debug, Serialize)]
pub struct Summary<'a> {
    #[serde(flatten)]
    pub run: &'a RunInfo,
    pub ended: String,
    pub seconds: f64,
    pub counts: std::collections::BTreeMap<&'static str, usize>,
    pub cases: &'a [CaseResult],
}

impl RunInfo {
    pub fn of(bench: &Bench, jobs: usize) -> Self {
        let git = std::process::Command::new("git")
            .args(["describe", "--always", "--dirty", "--tags"])
            .current_dir(&bench.project)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let os = read("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_default();
        let memory_bytes = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024);
        RunInfo {
            bench_version: git.unwrap_or_else(|| "unknown (no git)".into()),
            arguments: std::env::args().collect(),
            host: Host {
                hostname: read("/proc/sys/kernel/hostname").trim().to_string(),
                os,
                cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
                memory_bytes,
            },
            accelerator: bench.accel.as_str().into(),
            qemu: bench.qemu_version.clone(),
            kernels: vec![bench.kernel.info.clone()],
            jobs,
            started: now(),
            started_at: std::time::Instant::now(),
            parts: vec![],
        }
    }

    pub fn summary<'a>(&'a self, results: &'a [CaseResult]) -> Summary<'a> {
        Summary {
            run: self,
            ended: now(),
            seconds: self.started_at.elapsed().as_secs_f64(),
            counts: counts(results),
            cases: results,
        }
    }
}

/// How many results have each verdict, by its label.
pub fn counts(results: &[CaseResult]) -> std::collections::BTreeMap<&'static str, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for r in results {
        *counts.entry(r.verdict.label()).or_insert(0) += 1;
    }
    counts
}

pub fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

impl Reporter for ResultFiles {
    fn report(&mut self, event: &Event) -> Result<()> {
        if crate::run::interrupt::stopping() {
            return Ok(());
        }
        match event {
            Event::RunStarted {
                bench,
                run_dir,
                jobs,
                ..
            } => {
                self.run = Some(RunInfo::of(bench, *jobs));
                keep_kernel_files(bench, run_dir)
            }
            Event::CaseStarted { plan, dir } => write_json(&dir.join("plan.json"), plan),
            // Changes nothing in the result.
            Event::CaseProgress {
                progress: crate::result::events::Progress::Status(_),
                ..
            } => Ok(()),
            Event::CaseProgress { dir, result, .. } | Event::CaseEnded { dir, result, .. } => {
                write_json(&dir.join("result.json"), result)
            }
            Event::RunEnded { run_dir, results } => {
                let _ = std::fs::remove_file(run_dir.join(crate::host::owner::OWNER_FILE));
                match &self.run {
                    Some(run) => write_json(&run_dir.join("summary.json"), &run.summary(results)),
                    None => Ok(()),
                }
            }
        }
    }
}

/// The kernel's config and, for a kernel the bench built, its whole build log, beside the
/// results they explain (`kernel.config`, `kernel-build.log`).
fn keep_kernel_files(bench: &Bench, run_dir: &Path) -> Result<()> {
    for (from, to) in [
        (&bench.kernel.config, "kernel.config"),
        (&bench.kernel.build_log, "kernel-build.log"),
    ] {
        if let Some(from) = from {
            std::fs::copy(from, run_dir.join(to))
                .with_context(|| format!("copy {}", from.display()))?;
        }
    }
    Ok(())
}

/// A new directory under `root` named for the time the run started, with its owner.
pub fn new_run_dir(root: &Path) -> Result<PathBuf> {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(':', "-");
    for n in 0.. {
        let dir = root.join(if n == 0 {
            stamp.clone()
        } else {
            format!("{stamp}.{n}")
        });
        match std::fs::create_dir_all(root).and_then(|_| std::fs::create_dir(&dir)) {
            Ok(()) => {
                // Who runs it, for the sweep of a run that was SIGKILLed.
                std::fs::write(
                    dir.join(crate::host::owner::OWNER_FILE),
                    crate::host::owner::me(),
                )
                .with_context(|| {
                    format!(
                        "write {}",
                        dir.join(crate::host::owner::OWNER_FILE).display()
                    )
                })?;
                return Ok(dir);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("create {}", dir.display())),
        }
    }
    unreachable!()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::result::tests::result;
    use crate::result::Verdict;

    /// A run on `kernels` as `RunInfo::of` would record it, started at midnight.
    pub(crate) fn run_info(kernels: Vec<crate::kernel::KernelInfo>) -> RunInfo {
        RunInfo {
            bench_version: "v1-3-gabc".into(),
            arguments: vec!["xtask".into(), "run".into()],
            host: Host {
                hostname: "h".into(),
                os: "Debian GNU/Linux 12 (bookworm)".into(),
                cpus: 2,
                memory_bytes: 1 << 30,
            },
            accelerator: "tcg".into(),
            qemu: "7.2.22".into(),
            kernels,
            jobs: 2,
            started: "2026-12-02T00:00:00Z".into(),
            started_at: std::time::Instant::now(),
            parts: vec![],
        }
    }

    #[test]
    fn the_summary_says_what_ran_where_and_counts_the_verdicts() {
        let run = run_info(vec![result("a", Verdict::Pass, 1).kernel]);
        let results = [
            result("a", Verdict::Pass, 1),
            result("b", Verdict::Xfail, 2),
            result("c", Verdict::Pass, 3),
        ];
        let v = serde_json::to_value(run.summary(&results)).unwrap();
        assert_eq!(v["bench_version"], "v1-3-gabc");
        assert_eq!(v["arguments"][1], "run");
        assert_eq!(v["host"]["cpus"], 2);
        assert_eq!(v["accelerator"], "tcg");
        assert_eq!(v["kernels"].as_array().unwrap().len(), 1);
        assert_eq!(v["counts"], serde_json::json!({"PASS": 2, "XFAIL": 1}));
        assert_eq!(v["cases"].as_array().unwrap().len(), 3);
        assert!(v["ended"].as_str().unwrap().ends_with('Z'));
        assert!(v["seconds"].as_f64().unwrap() >= 0.0);
        assert!(v.get("started_at").is_none());
    }
}
