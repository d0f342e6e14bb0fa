//! One case from start to verdict: its directory, its requirements, its disks, its
//! scenario, the splats on its consoles, the disks kept when it failed.

use crate::bench::Bench;
use crate::case::Plan;
use crate::findings;
use crate::powercut::explore::Explanation;
use crate::result::events::{Event, Events};
use crate::result::record::Record;
use crate::result::{CaseResult, Failure, Times, Verdict};
use crate::run::{disks, interrupt};
use crate::scenario;
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One case from start to verdict; never panics on the guest's account, always writes
/// its result.
pub fn run_case(bench: &Bench, plan: &Plan, case_dir: &Path, events: &Events) -> CaseResult {
    let started = Instant::now();
    let mut rec = Record::new(blank_result(bench, plan), plan, case_dir, events);
    let made = std::fs::create_dir_all(case_dir)
        .with_context(|| format!("create {}", case_dir.display()))
        .and_then(|_| {
            events.emit(&Event::CaseStarted {
                plan,
                dir: case_dir,
            })
        });
    if let Err(e) = made {
        rec.result.verdict = Verdict::Error;
        rec.result.reason = Some(format!("{e:#}"));
        return rec.end();
    }
    if let Some(why) = missing_requirements(bench, plan) {
        // Decided before anything is made: no disks, no boot.
        rec.result.verdict = Verdict::Skip;
        rec.result.reason = Some(why);
        return rec.end();
    }
    if let Some(why) = missing_lockless_mdadm(bench, plan) {
        rec.result.verdict = Verdict::Skip;
        rec.result.reason = Some(why);
        return rec.end();
    }
    if bench.mdadm_for(plan).file_bitmap {
        match bench.file_bitmap_refusal() {
            Ok(None) => {}
            Ok(Some(why)) => {
                rec.result.verdict = Verdict::Skip;
                rec.result.reason = Some(why);
                return rec.end();
            }
            Err(e) => {
                rec.result.verdict = Verdict::Error;
                rec.result.reason = Some(format!("{e:#}"));
                return rec.end();
            }
        }
    }
    let outcome = tempfile::Builder::new()
        .prefix("disks-")
        .tempdir_in(case_dir)
        .map_err(anyhow::Error::from)
        .and_then(|disks| {
            let _tracked = interrupt::track(case_dir, disks.path());
            let made = disks::create(plan, disks.path())?;
            let outcome = scenario::run(bench, plan, case_dir, made, &mut rec);
            Ok((outcome, disks))
        });
    let result = &mut rec.result;
    result.splats = console_logs(case_dir)
        .iter()
        .flat_map(|log| {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let name = log
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            crate::logs::splat::scan(&text)
                .into_iter()
                .map(move |mut s| {
                    s.log = name.clone();
                    s
                })
        })
        .collect();
    let (verdict, reason, disks) = match outcome {
        Err(e) => (Verdict::Error, Some(format!("{e:#}")), None),
        Ok((Err(Failure::Bench(e)), d)) => (Verdict::Error, Some(format!("{e:#}")), Some(d)),
        Ok((Err(Failure::Case(why)), d)) => (Verdict::Fail, Some(why), Some(d)),
        Ok((Ok(()), d)) => (Verdict::Pass, None, Some(d)),
    };
    result.verdict = verdict;
    result.reason = reason;
    let expected: Vec<regex::Regex> = plan
        .expect_splats
        .iter()
        .filter_map(|re| regex::Regex::new(re).ok())
        .collect();
    for s in result.splats.iter_mut() {
        s.expected = expected.iter().any(|re| re.is_match(&s.title));
    }
    if let Some(s) = result.splats.iter().find(|s| !s.expected) {
        if result.verdict == Verdict::Pass {
            result.verdict = Verdict::Fail;
            result.reason = Some(format!(
                "kernel splat: {} ({} line {})\n{}",
                s.title,
                s.log,
                s.line,
                crate::scenario::steps::excerpt(&s.excerpt)
            ));
        }
    }
    judge_findings(result, plan);
    if let Some(d) = disks {
        if result.verdict != Verdict::Pass || plan.keep_disks {
            result.kept_disks = Some(d.keep());
        }
    }
    result.times.total_ms = started.elapsed().as_millis() as u64;
    rec.end()
}

/// What the judge read from the recording: unsafe states per cause, with the first
/// uncovered chunk of each cause explained.
fn observed_causes(result: &CaseResult) -> Vec<findings::Observed> {
    // A power-loss case counts states; a recorded SIGKILL, the chunks of its one state.
    let Some((check, key, unit)) = result.checks.iter().find_map(|c| {
        [("states_by_cause", "states"), ("chunks_by_cause", "chunks")]
            .into_iter()
            .find(|(key, _)| c.figures.get(key).is_some())
            .map(|(key, unit)| (c, key, unit))
    }) else {
        return Vec::new();
    };
    let by_cause = check.figures.get(key).and_then(|v| v.as_object());
    by_cause
        .into_iter()
        .flatten()
        .map(|(cause, n)| findings::Observed {
            cause: cause.clone(),
            states: n.as_u64().unwrap_or(0),
            unit,
            evidence: check
                .figures
                .get("evidence")
                .and_then(|e| e.get(cause))
                .and_then(|e| serde_json::from_value::<Explanation>(e.clone()).ok())
                .map(|e| e.evidence())
                .unwrap_or_default(),
        })
        .collect()
}

/// Whether every failed check is the safety rule or a consequence of the chunks it
/// found uncovered: a resync that skipped only those, members that still differ only
/// there (and the mismatches `check` counts in them).
fn only_uncovered_chunks_failed(result: &CaseResult) -> bool {
    let nums = |c: &crate::check::Check, key: &str| -> Vec<u64> {
        c.figures
            .get(key)
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|x| x.as_u64()).collect())
            .unwrap_or_default()
    };
    let uncovered: Vec<u64> = result
        .checks
        .iter()
        .find(|c| c.name == "safety")
        .map(|c| nums(c, "uncovered_chunks"))
        .unwrap_or_default();
    let within =
        |chunks: Vec<u64>| !chunks.is_empty() && chunks.iter().all(|c| uncovered.contains(c));
    let n = |c: &crate::check::Check, key: &str| c.figures.get(key).and_then(|v| v.as_u64());
    result
        .checks
        .iter()
        .filter(|c| !c.ok)
        .all(|c| match c.name.as_ref() {
            "power_loss_safety" | "safety" => true,
            "resync_bounds" => {
                n(c, "resynced_outside_bitmap") == Some(0)
                    && within(nums(c, "divergent_not_resynced"))
            }
            "converged" => {
                n(c, "dirty_chunks_after") == Some(0) && within(nums(c, "divergent_after"))
            }
            _ => false,
        })
}

/// Attributes the causes the judge read to the findings the case declares. A failure is
/// an XFAIL only when `power_loss_safety` is the one failed check, every cause is a
/// declared finding and no splat is unexpected; a cause no declared finding has keeps it
/// a FAIL and is named first in the reason. A power-loss case that judged every state
/// and saw none of its findings is an XPASS.
fn judge_findings(result: &mut CaseResult, plan: &Plan) {
    let observed = observed_causes(result);
    if plan.findings.is_empty() && observed.is_empty() {
        return;
    }
    let a = findings::attribute(&plan.findings, &observed);
    result.findings = a.seen.clone();
    let only_safety = only_uncovered_chunks_failed(result);
    let splats_expected = result.splats.iter().all(|s| s.expected);
    // Only a power-loss case judged every state; a SIGKILL that missed a race proves
    // nothing.
    let judged_all = result.checks.iter().any(|c| c.name == "power_loss_safety");
    let unexplained: Vec<String> = a
        .unexplained()
        .map(|s| {
            format!(
                "{} (no declared finding has this cause; first: {})",
                s.label(),
                s.evidence.as_deref().unwrap_or("")
            )
        })
        .collect();
    match result.verdict {
        Verdict::Fail
            if unexplained.is_empty()
                && only_safety
                && splats_expected
                && a.shown().count() > 0 =>
        {
            result.verdict = Verdict::Xfail;
            result.reason = Some(format!(
                "known kernel findings: {}\n{}",
                a.line(),
                result.reason.take().unwrap_or_default()
            ));
        }
        Verdict::Fail if !unexplained.is_empty() => {
            result.reason = Some(format!(
                "{}\n{}",
                unexplained.join("; "),
                result.reason.take().unwrap_or_default()
            ));
        }
        Verdict::Pass if judged_all && !plan.findings.is_empty() => {
            result.verdict = Verdict::Xpass;
            result.reason = Some(format!(
                "every crash state judged, none shows a declared finding: {}",
                a.line()
            ));
        }
        _ => {}
    }
}

/// Every console log of a case, one per boot, in boot order.
pub fn console_logs(case_dir: &Path) -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(case_dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            n.starts_with("console") && n.ends_with(".log")
        })
        .collect();
    logs.sort();
    logs
}

pub fn replay_command(bench: &Bench, plan: &Plan) -> String {
    let file = plan.file.strip_prefix(&bench.project).unwrap_or(&plan.file);
    let mut cmd = format!("cargo xtask run {} --seed {}", file.display(), plan.seed);
    if plan.name.contains('@') {
        cmd.push_str(&format!(" --case {}", plan.name));
    }
    let series = bench
        .kernel
        .info
        .package
        .as_deref()
        .and_then(crate::kernel::Series::of_package);
    if bench.kernel.info.source == "debian" {
        if let Some(s) = series.filter(|s| *s != crate::kernel::Series::default()) {
            cmd.push_str(&format!(" --kernel debian:{}", s.name()));
        }
    } else {
        cmd.push_str(&format!(" --kernel {}", bench.kernel.vmlinuz.display()));
        if let Some(m) = &bench.kernel.modules {
            cmd.push_str(&format!(" --modules {}", m.display()));
        }
    }
    cmd
}

/// Why the case cannot run on this kernel, if it cannot: options it requires that the
/// kernel's config lacks, or no config to tell.
fn missing_requirements(bench: &Bench, plan: &Plan) -> Option<String> {
    if plan.requires.is_empty() {
        return None;
    }
    let (Some(path), Some(options)) = (&bench.kernel.config, &bench.kernel_options) else {
        return Some(format!(
            "needs {}, and the kernel's config is unknown (no config beside {})",
            plan.requires.join(", "),
            bench.kernel.vmlinuz.display()
        ));
    };
    let missing = crate::kernel::config::unset(&plan.requires, options);
    (!missing.is_empty()).then(|| {
        format!(
            "needs {} (unset in {}): {}",
            missing.join(", "),
            path.display(),
            if missing.contains(&"CONFIG_MD_LLBITMAP") {
                "build one with --debian-source 7.3 --config md --config llbitmap"
            } else {
                "build a debug kernel with --config debug"
            }
        )
    })
}

/// Why a lockless-bitmap case cannot run with the guest's mdadm, if it cannot: only
/// mdadm 4.5 and later create one (`--bitmap=lockless`), and the image carries the
/// packaged 4.6 only for kernels from 6.18 on.
fn missing_lockless_mdadm(bench: &Bench, plan: &Plan) -> Option<String> {
    let lockless = plan
        .array
        .as_ref()
        .is_some_and(|a| a.bitmap.kind == crate::case::BitmapKind::Lockless);
    let mdadm = bench.mdadm_for(plan);
    (lockless && mdadm.guest_path.is_none()).then(|| {
        format!(
            "needs mdadm 4.5 or later for --bitmap=lockless; the guest has mdadm {}",
            mdadm.label
        )
    })
}

/// The result of a case whose run panicked: the bench's fault, so an error.
pub(super) fn panicked(
    bench: &Bench,
    plan: &Plan,
    panic: &Box<dyn std::any::Any + Send>,
) -> CaseResult {
    let what = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    let mut r = blank_result(bench, plan);
    r.verdict = Verdict::Error;
    r.reason = Some(format!("the bench panicked: {what}"));
    r
}

fn blank_result(bench: &Bench, plan: &Plan) -> CaseResult {
    CaseResult {
        case: plan.name.clone(),
        dir: plan.run_name.clone(),
        file: plan.file.clone(),
        verdict: Verdict::Running,
        reason: None,
        seed: plan.seed,
        kernel: bench.kernel.info.clone(),
        qemu: bench.qemu_version.clone(),
        accel: bench.accel.as_str().into(),
        image: bench.image.key.clone(),
        mdadm: bench.mdadm_for(plan).label,
        userland: bench.image.userland.clone(),
        times: Times::default(),
        steps: Vec::new(),
        splats: Vec::new(),
        checks: Vec::new(),
        findings: Vec::new(),
        figures: Default::default(),
        phases: Vec::new(),
        replay: replay_command(bench, plan),
        kept_disks: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Check;
    use crate::result::tests::result;

    /// A power-loss result whose safety check saw these causes.
    fn judged(
        verdict: Verdict,
        causes: &[(&str, u64)],
        also_failed: &[&'static str],
    ) -> CaseResult {
        let mut r = result("c", verdict, 1);
        r.reason = Some("why".into());
        let by_cause: serde_json::Map<String, serde_json::Value> = causes
            .iter()
            .map(|(c, n)| (c.to_string(), (*n).into()))
            .collect();
        r.checks = vec![Check {
            name: "power_loss_safety".into(),
            ok: causes.is_empty(),
            summary: String::new(),
            figures: serde_json::json!({ "states_by_cause": by_cause }),
        }];
        r.checks.extend(also_failed.iter().map(|&name| Check {
            name: name.into(),
            ok: false,
            summary: String::new(),
            figures: serde_json::Value::Null,
        }));
        r
    }

    fn plan_declaring(ids: &[&str]) -> Plan {
        let mut p = crate::case::tests::plan_of("power-loss");
        p.findings = ids.iter().map(|s| s.to_string()).collect();
        p
    }

    #[test]
    fn a_failure_is_an_xfail_only_when_every_cause_is_a_declared_finding() {
        let plan = plan_declaring(&["unplug-ordering"]);
        let mut r = judged(Verdict::Fail, &[("ordering", 150)], &[]);
        judge_findings(&mut r, &plan);
        assert_eq!(r.verdict, Verdict::Xfail);
        assert!(r
            .reason
            .as_deref()
            .unwrap()
            .starts_with("known kernel findings: unplug-ordering: 150 states\nwhy"));
        assert_eq!(r.findings[0].id.as_deref(), Some("unplug-ordering"));

        let mut r = judged(Verdict::Fail, &[("ordering", 150), ("unwritten", 1)], &[]);
        judge_findings(&mut r, &plan);
        assert_eq!(r.verdict, Verdict::Fail, "a bit never written is no race");
        assert!(
            r.why().starts_with("unexplained unwritten: 1 states"),
            "{:?}",
            r.reason
        );

        let mut r = judged(Verdict::Fail, &[("ordering", 150)], &["writers_alive"]);
        judge_findings(&mut r, &plan);
        assert_eq!(r.verdict, Verdict::Fail, "another check failed too");

        let mut r = judged(Verdict::Error, &[("ordering", 150)], &[]);
        judge_findings(&mut r, &plan);
        assert_eq!(r.verdict, Verdict::Error);

        let mut r = judged(Verdict::Fail, &[("ordering", 150)], &[]);
        judge_findings(&mut r, &plan_declaring(&[]));
        assert_eq!(r.verdict, Verdict::Fail, "undeclared: the race is a FAIL");
    }

    #[test]
    fn a_power_loss_case_that_judged_every_state_and_saw_no_finding_is_an_xpass() {
        let plan = plan_declaring(&["unplug-ordering", "file-bitmap-no-fua"]);
        let mut r = judged(Verdict::Pass, &[], &[]);
        judge_findings(&mut r, &plan);
        assert_eq!(r.verdict, Verdict::Xpass);
        assert_eq!(r.findings.len(), 2);
        assert!(r.findings.iter().all(|f| f.states == 0));

        // One fixed, one not: the case stays XFAIL and says which is gone.
        let mut r = judged(Verdict::Fail, &[("durability", 4949)], &[]);
        judge_findings(&mut r, &plan);
        assert_eq!(r.verdict, Verdict::Xfail);
        assert!(r
            .why()
            .contains("unplug-ordering: 0 states, file-bitmap-no-fua: 4949 states"));

        // A case that judged nothing proves nothing.
        let mut r = result("c", Verdict::Pass, 1);
        judge_findings(&mut r, &plan);
        assert_eq!(r.verdict, Verdict::Pass);
    }
}
