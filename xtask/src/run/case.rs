//! One case from start to verdict: its directory, its requirements, its disks, its
//! scenario, the splats on its consoles, the disks kept when it failed.

use crate::bench::Bench;
use crate::case::Plan;
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
    if let Some(k) = &plan.known_failure {
        known_failure(result, k);
    }
    if let Some(d) = disks {
        if result.verdict != Verdict::Pass || plan.keep_disks {
            result.kept_disks = Some(d.keep());
        }
    }
    result.times.total_ms = started.elapsed().as_millis() as u64;
    rec.end()
}

/// A case that fails only the check it declares known to fail is an XFAIL; one that
/// passes is an XPASS. Any other failure stays a FAIL.
fn known_failure(result: &mut CaseResult, k: &crate::case::KnownFailure) {
    let failed: Vec<&str> = result
        .checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.name.as_ref())
        .collect();
    let only_known = !failed.is_empty() && failed.iter().all(|n| *n == k.check);
    match result.verdict {
        Verdict::Fail if only_known && result.splats.iter().all(|s| s.expected) => {
            result.verdict = Verdict::Xfail;
            result.reason = Some(format!(
                "known kernel finding: {}\n{}",
                k.reason,
                result.reason.take().unwrap_or_default()
            ));
        }
        Verdict::Pass => {
            result.verdict = Verdict::Xpass;
            result.reason = Some(format!(
                "{} held, though the case knows the kernel to fail it: {}",
                k.check, k.reason
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
            "needs {} (unset in {}): build a debug kernel with --config debug",
            missing.join(", "),
            path.display()
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
        times: Times::default(),
        steps: Vec::new(),
        splats: Vec::new(),
        checks: Vec::new(),
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

    fn with_checks(verdict: Verdict, failed: &[&'static str]) -> CaseResult {
        let mut r = result("c", verdict, 1);
        r.reason = Some("why".into());
        r.checks = ["writers_alive", "power_loss_safety"]
            .into_iter()
            .map(|name| Check {
                name: name.into(),
                ok: !failed.contains(&name),
                summary: String::new(),
                figures: serde_json::Value::Null,
            })
            .collect();
        r
    }

    #[test]
    fn only_the_declared_check_failing_is_an_xfail_and_it_holding_an_xpass() {
        let k = crate::case::KnownFailure {
            check: "power_loss_safety".into(),
            reason: "no FUA".into(),
        };
        let mut r = with_checks(Verdict::Fail, &["power_loss_safety"]);
        known_failure(&mut r, &k);
        assert_eq!(r.verdict, Verdict::Xfail);
        assert!(r
            .reason
            .as_deref()
            .unwrap()
            .starts_with("known kernel finding: no FUA\nwhy"));
        let mut other = with_checks(Verdict::Fail, &["power_loss_safety", "writers_alive"]);
        known_failure(&mut other, &k);
        assert_eq!(other.verdict, Verdict::Fail, "another check failed too");
        let mut passed = with_checks(Verdict::Pass, &[]);
        known_failure(&mut passed, &k);
        assert_eq!(passed.verdict, Verdict::Xpass);
        let mut error = with_checks(Verdict::Error, &["power_loss_safety"]);
        known_failure(&mut error, &k);
        assert_eq!(error.verdict, Verdict::Error);
    }
}
