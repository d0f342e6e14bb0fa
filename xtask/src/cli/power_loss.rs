//! `cargo xtask power-loss`: a kept recording judged again (to try other bounds or models,
//! and to measure the judge), or one violating state written out as images.

use crate::case::{DiskModel, PowerLossSpec};
use crate::powercut::explore::{self, Bounds, Violation};
use crate::powercut::files::RecordingFiles;
use crate::powercut::materialize;
use crate::powercut::view::DiskViews;
use crate::result::exit;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

pub struct JudgeArgs {
    pub case_dir: PathBuf,
    pub model: Option<DiskModel>,
    pub exact_up_to: Option<u32>,
    pub samples: Option<u32>,
    pub seed: Option<u64>,
}

/// The case's power-loss spec and seed, from its `plan.json`.
fn plan(case_dir: &Path) -> Result<(PowerLossSpec, u64)> {
    let path = case_dir.join("plan.json");
    let text = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
    let plan: serde_json::Value =
        serde_json::from_slice(&text).with_context(|| format!("parse {}", path.display()))?;
    let spec = serde_json::from_value(plan["power_loss"].clone())
        .with_context(|| format!("{}: not a power-loss case", case_dir.display()))?;
    Ok((spec, plan["seed"].as_u64().unwrap_or(0)))
}

pub fn judge(a: &JudgeArgs) -> Result<u8> {
    let (spec, seed) = plan(&a.case_dir)?;
    let loaded = RecordingFiles::read(&a.case_dir)?.load(&a.case_dir)?;
    let bases: Vec<&Path> = loaded.bases.iter().map(|b| b.as_path()).collect();
    let views = DiskViews::open(&loaded.rec, &bases)?;
    let bounds = Bounds {
        exact_up_to: a.exact_up_to.unwrap_or(spec.exact_up_to).min(16),
        samples: a.samples.unwrap_or(spec.samples).max(1),
        seed: a.seed.unwrap_or(seed),
        remember: true,
    };
    let model = a.model.unwrap_or(spec.model);
    let report = explore::explore(&loaded.rec, &views, &loaded.layout, model, bounds)?;
    println!(
        "{}: {} crash points, {} states judged in {:.2} s ({:.0} states/s), {} unsafe at {} points{}",
        model.as_str(),
        report.crash_points,
        report.states_checked,
        report.seconds,
        report.states_per_second,
        report.unsafe_states,
        report.unsafe_points,
        if report.states_by_cause.is_empty() {
            String::new()
        } else {
            format!(" ({})", explore::causes_line(&report.states_by_cause))
        }
    );
    if let Some(v) = report.violations.first() {
        println!(
            "first: cut after event {} ({}), chunks {:?} uncovered",
            v.point, v.after, v.uncovered
        );
    }
    for e in report.evidence.values() {
        println!("{}: {}", e.cause.as_str(), e.evidence());
    }
    Ok(if report.unsafe_states == 0 {
        exit::OK
    } else {
        exit::CASE_FAILED
    })
}

pub fn write(case_dir: &Path, violation: usize, out: &Path) -> Result<u8> {
    let (spec, _) = plan(case_dir)?;
    let report_path = case_dir.join("power-loss.json");
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&report_path).with_context(|| format!("read {}", report_path.display()))?,
    )?;
    let model: DiskModel = serde_json::from_value(report["model"].clone()).unwrap_or(spec.model);
    let list = report["violations"].as_array().cloned().unwrap_or_default();
    let v: Violation =
        serde_json::from_value(list.get(violation).cloned().with_context(|| {
            format!("{} holds {} violations", report_path.display(), list.len())
        })?)?;
    let loaded = RecordingFiles::read(case_dir)?.load(case_dir)?;
    let bases: Vec<&Path> = loaded.bases.iter().map(|b| b.as_path()).collect();
    let images = materialize::write_state(&loaded.rec, &bases, model, v.point, &v.survivors, out)?;
    for i in images {
        println!("{}", i.display());
    }
    Ok(exit::OK)
}
