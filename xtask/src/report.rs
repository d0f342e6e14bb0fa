//! What a run leaves behind and prints: `result.json` per case (rewritten as the case goes,
//! so a later failure loses nothing), the per-case line, the summary table.

use crate::kernel::KernelInfo;
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every step and check held.
    Pass,
    /// A step or check failed: the kernel (or the bitmap) did not do what the case demands.
    Fail,
    /// The bench could not judge: it broke before the case could say anything.
    Error,
    /// Not run: the kernel lacks what the case needs (the reason says what).
    Skip,
    /// Still running; only ever seen in a result.json written mid-case.
    Running,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Error => "ERROR",
            Verdict::Skip => "SKIP",
            Verdict::Running => "RUN",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub case: String,
    pub file: PathBuf,
    pub verdict: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub seed: u64,
    pub kernel: KernelInfo,
    pub qemu: String,
    pub accel: String,
    pub image: String,
    pub times: Times,
    pub steps: Vec<StepRecord>,
    pub splats: Vec<crate::splat::Splat>,
    /// The verdicts a scenario judged from the disk images, with their figures.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<crate::check::Check>,
    /// Measurements a scenario records without judging them.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub figures: std::collections::BTreeMap<String, serde_json::Value>,
    /// Named phases of a scenario and how long each took, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<Phase>,
    /// The command that runs this case again with the same seed.
    pub replay: String,
    /// The disk images, kept when the case failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept_disks: Option<PathBuf>,
}

impl CaseResult {
    /// A number a check recorded (`safety`'s `divergent_chunks`).
    pub fn check_figure(&self, check: &str, key: &str) -> Option<u64> {
        self.checks
            .iter()
            .find(|c| c.name == check)
            .and_then(|c| c.figures.get(key))
            .and_then(|v| v.as_u64())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    pub name: String,
    pub ms: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Times {
    /// Per VM: from starting QEMU to the agent's first answer.
    pub boot_ms: Vec<u64>,
    /// Per VM: the guest's uptime when its agent first answered.
    pub guest_ready_uptime_ms: Vec<u64>,
    pub total_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    pub index: usize,
    pub kind: &'static str,
    pub cmd: String,
    pub ok: bool,
    pub elapsed_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<i32>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stdout: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stderr: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Writes `value` as JSON to `path` through a temporary file and a rename, so a reader
/// never sees half a file.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(value)?)
        .with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("write {}", path.display()))?;
    Ok(())
}

/// The line printed when a case ends.
pub fn case_line(r: &CaseResult) -> String {
    let boot = r
        .times
        .boot_ms
        .iter()
        .map(|b| format!("{:.1}s", *b as f64 / 1000.0))
        .collect::<Vec<_>>()
        .join("+");
    let mut line = format!(
        "{:<5} {:<36} {:>7.1}s  boot {}",
        r.verdict.label(),
        r.case,
        r.times.total_ms as f64 / 1000.0,
        if boot.is_empty() { "-".into() } else { boot }
    );
    if let Some(reason) = &r.reason {
        line.push_str(&format!("\n      {}", reason.replace('\n', "\n      ")));
    }
    if r.verdict != Verdict::Pass {
        line.push_str(&format!("\n      replay: {}", r.replay));
    }
    line
}

pub fn summary(results: &[CaseResult]) -> String {
    let count = |v| results.iter().filter(|r| r.verdict == v).count();
    let total: u64 = results.iter().map(|r| r.times.total_ms).sum();
    format!(
        "{} cases: {} passed, {} failed, {} errors, {} skipped ({:.1}s of VM time)",
        results.len(),
        count(Verdict::Pass),
        count(Verdict::Fail),
        count(Verdict::Error),
        count(Verdict::Skip),
        total as f64 / 1000.0
    )
}

/// One row per case: verdict, checks passed, the figures a reader looks at first, times.
pub fn table(results: &[CaseResult]) -> String {
    let fig = |r: &CaseResult, check: &str, key: &str| {
        r.check_figure(check, key)
            .map_or_else(|| "-".into(), |v| v.to_string())
    };
    let mut out = format!(
        "{:<40} {:<5} {:>6} {:>9} {:>6} {:>8} {:>8}\n",
        "case", "", "checks", "divergent", "dirty", "resynced", "time"
    );
    for r in results {
        let ok = r.checks.iter().filter(|c| c.ok).count();
        out.push_str(&format!(
            "{:<40} {:<5} {:>6} {:>9} {:>6} {:>8} {:>7.1}s\n",
            format!("{} (seed {})", r.case, r.seed),
            r.verdict.label(),
            format!("{ok}/{}", r.checks.len()),
            fig(r, "safety", "divergent_chunks"),
            fig(r, "safety", "dirty_chunks"),
            fig(r, "resync_bounds", "resynced_chunks"),
            r.times.total_ms as f64 / 1000.0
        ));
    }
    out.trim_end().to_string()
}

/// Cases that both passed and did not pass across repeats, with their seeds.
pub fn flaky(results: &[CaseResult]) -> Vec<String> {
    let mut names: Vec<&str> = results.iter().map(|r| r.case.as_str()).collect();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| {
            let runs: Vec<&CaseResult> = results.iter().filter(|r| r.case == name).collect();
            let passed = runs.iter().filter(|r| r.verdict == Verdict::Pass).count();
            (passed > 0 && passed < runs.len()).then(|| {
                let bad: Vec<String> = runs
                    .iter()
                    .filter(|r| r.verdict != Verdict::Pass)
                    .map(|r| r.seed.to_string())
                    .collect();
                format!(
                    "{name}: {passed} of {} passed; failing seeds {}",
                    runs.len(),
                    bad.join(", ")
                )
            })
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A result with nothing in it but its name, verdict and seed (other modules' tests
    /// fill in what they judge).
    pub(crate) fn result(case: &str, verdict: Verdict, seed: u64) -> CaseResult {
        CaseResult {
            case: case.into(),
            file: PathBuf::from("cases/x.yaml"),
            verdict,
            reason: None,
            seed,
            kernel: KernelInfo {
                source: "debian".into(),
                release: "6.12".into(),
                vmlinuz_sha256: String::new(),
                package: None,
                package_version: None,
                package_sha256: None,
                build: None,
            },
            qemu: String::new(),
            accel: "tcg".into(),
            image: String::new(),
            times: Times::default(),
            steps: vec![],
            splats: vec![],
            checks: vec![],
            figures: Default::default(),
            phases: vec![],
            replay: String::new(),
            kept_disks: None,
        }
    }

    #[test]
    fn flaky_names_cases_that_passed_and_failed_with_the_failing_seeds() {
        let rs = [
            result("a", Verdict::Pass, 1),
            result("a", Verdict::Fail, 2),
            result("b", Verdict::Pass, 3),
            result("b", Verdict::Pass, 4),
            result("c", Verdict::Fail, 5),
        ];
        assert_eq!(flaky(&rs), ["a: 1 of 2 passed; failing seeds 2"]);
        let t = table(&rs);
        assert!(t.lines().nth(1).unwrap().starts_with("a (seed 1)"), "{t}");
        assert_eq!(t.lines().count(), 6);
    }
}
