//! What one case leaves: its verdict, checks, figures, phases and times ([`CaseResult`]),
//! and why it did not pass ([`Failure`]). Every stage that judges or records a case writes
//! into these types; the reporters read them.

pub mod events;
pub mod exit;
mod failure;
pub mod json;
pub mod record;

pub use failure::Failure;

use crate::kernel::KernelInfo;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Failed only by known findings the case declares (`findings:`), each read from
    /// the recording by its cause: on record, not a regression.
    Xfail,
    /// A power-loss case judged every state and saw none of its declared findings: the
    /// kernel may have fixed them.
    Xpass,
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
            Verdict::Xfail => "XFAIL",
            Verdict::Xpass => "XPASS",
            Verdict::Running => "RUN",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseResult {
    pub case: String,
    /// The case's directory, relative to the run's: `NAME`, `NAME.2` with `--repeat`,
    /// `KERNEL/NAME` in a run of several kernels.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dir: String,
    pub file: PathBuf,
    pub verdict: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub seed: u64,
    pub kernel: KernelInfo,
    pub qemu: String,
    pub accel: String,
    pub image: String,
    /// The guest's mdadm: version and where it came from (`4.2-5 (host)`, `4.6-3 (sid)`).
    #[serde(default)]
    pub mdadm: String,
    /// The Debian packages the guest's userland came from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub userland: Vec<crate::image::UserlandPackage>,
    pub times: Times,
    pub steps: Vec<StepRecord>,
    pub splats: Vec<crate::logs::splat::Splat>,
    /// The verdicts a scenario judged from the disk images, with their figures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<crate::check::Check>,
    /// The declared findings (seen or not) and the causes no finding explains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<crate::findings::Seen>,
    /// Measurements a scenario records without judging them.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub figures: std::collections::BTreeMap<String, serde_json::Value>,
    /// Named phases of a scenario and how long each took, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<Phase>,
    /// The command that runs this case again with the same seed.
    pub replay: String,
    /// The disk images, kept when the case failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept_disks: Option<PathBuf>,
}

impl CaseResult {
    /// The first line of why the case did not pass ("" when it did).
    pub fn why(&self) -> &str {
        self.reason
            .as_deref()
            .unwrap_or("")
            .lines()
            .next()
            .unwrap_or("")
    }

    /// The case's directory under its run's (results from before `dir` was recorded
    /// are in one named after the case).
    pub fn dir_name(&self) -> &str {
        if self.dir.is_empty() {
            &self.case
        } else {
            &self.dir
        }
    }

    /// A number a check recorded (`safety`'s `divergent_chunks`).
    pub fn check_figure(&self, check: &str, key: &str) -> Option<u64> {
        self.checks
            .iter()
            .find(|c| c.name == check)
            .and_then(|c| c.figures.get(key))
            .and_then(|v| v.as_u64())
    }
}

impl CaseResult {
    /// A result no reporter sees, for work done outside a case (preparing a cache entry).
    pub fn scratch(case: &str, kernel: KernelInfo) -> Self {
        CaseResult {
            case: case.into(),
            dir: String::new(),
            file: PathBuf::new(),
            verdict: Verdict::Running,
            reason: None,
            seed: 0,
            kernel,
            qemu: String::new(),
            accel: String::new(),
            image: String::new(),
            mdadm: String::new(),
            userland: Vec::new(),
            times: Times::default(),
            steps: vec![],
            splats: vec![],
            checks: vec![],
            findings: vec![],
            figures: Default::default(),
            phases: vec![],
            replay: String::new(),
            kept_disks: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Phase {
    pub name: String,
    pub ms: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Times {
    /// Per VM: from starting QEMU to the agent's first answer.
    pub boot_ms: Vec<u64>,
    /// Per VM: the guest's uptime when its agent first answered.
    pub guest_ready_uptime_ms: Vec<u64>,
    pub total_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    pub index: usize,
    pub kind: Cow<'static, str>,
    pub cmd: String,
    pub ok: bool,
    pub elapsed_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<i32>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stdout: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stderr: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A result with nothing in it but its name, verdict and seed (other modules' tests
    /// fill in what they judge).
    pub(crate) fn result(case: &str, verdict: Verdict, seed: u64) -> CaseResult {
        let kernel = KernelInfo {
            source: "debian".into(),
            release: "6.12".into(),
            vmlinuz_sha256: String::new(),
            package: None,
            package_version: None,
            package_sha256: None,
            packages: vec![],
            build: None,
        };
        CaseResult {
            file: PathBuf::from("cases/x.yaml"),
            verdict,
            seed,
            accel: "tcg".into(),
            ..CaseResult::scratch(case, kernel)
        }
    }
}
