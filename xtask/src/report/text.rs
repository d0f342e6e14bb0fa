//! The text a person reads: a line per case, the summary, the table of figures, the
//! flaky cases of a repeated run.

use crate::bench::Bench;
use crate::result::{CaseResult, Verdict};

/// A kernel as a person names it: its release and where it came from.
pub fn kernel_label(k: &crate::kernel::KernelInfo) -> String {
    format!(
        "{} ({})",
        k.release,
        k.package_version.as_deref().unwrap_or(&k.source)
    )
}

/// The kernel, QEMU and accelerator a run uses.
pub fn kernel_line(bench: &Bench) -> String {
    format!(
        "kernel {}, QEMU {}, {}",
        kernel_label(&bench.kernel.info),
        bench
            .qemu_version
            .trim_start_matches("QEMU emulator version "),
        bench.accel.as_str()
    )
}

/// The line a log (not a terminal) gets when a case starts: `[3/35] START name`.
pub fn start_line(done: usize, total: usize, case: &str) -> String {
    format!("[{done}/{total}] START {case}")
}

/// The line a log gets when one of a case's phases ends.
pub fn phase_line(case: &str, phase: &str, ms: u64, elapsed_ms: u64) -> String {
    format!(
        "      {case}: {phase} {:.1}s (at {:.1}s)",
        ms as f64 / 1000.0,
        elapsed_ms as f64 / 1000.0
    )
}

/// A running case's live row: its name, what it did last, how long it has run.
pub fn live_row(case: &str, last: &str) -> String {
    format!("{case:<40} {last}")
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
    let mut known = String::new();
    for (v, what) in [
        (Verdict::Xfail, "expected failures"),
        (Verdict::Xpass, "unexpected passes"),
    ] {
        if count(v) > 0 {
            known.push_str(&format!(", {} {what}", count(v)));
        }
    }
    format!(
        "{} cases: {} passed, {} failed, {} errors, {} skipped{known} ({:.1}s of VM time)",
        results.len(),
        count(Verdict::Pass),
        count(Verdict::Fail),
        count(Verdict::Error),
        count(Verdict::Skip),
        total as f64 / 1000.0
    )
}

/// The findings the run saw, each with its cases and states:
/// `findings: unplug-ordering 697 states in 2 cases; unexplained unwritten 69 states in 1 case`.
pub fn findings(results: &[CaseResult]) -> Option<String> {
    // (name, unit, states, cases)
    let mut seen: Vec<(String, &str, u64, usize)> = Vec::new();
    for f in results
        .iter()
        .flat_map(|r| &r.findings)
        .filter(|f| f.states > 0)
    {
        let name = f.name();
        match seen
            .iter_mut()
            .find(|(n, u, _, _)| *n == name && *u == f.unit)
        {
            Some(s) => {
                s.2 += f.states;
                s.3 += 1;
            }
            None => seen.push((name, &f.unit, f.states, 1)),
        }
    }
    (!seen.is_empty()).then(|| {
        let parts: Vec<String> = seen
            .iter()
            .map(|(name, unit, states, cases)| {
                format!(
                    "{name} {states} {unit} in {cases} case{}",
                    if *cases == 1 { "" } else { "s" }
                )
            })
            .collect();
        format!("findings: {}", parts.join("; "))
    })
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
mod tests {
    #[test]
    fn log_lines_say_which_case_started_and_which_phase_ended_when() {
        assert_eq!(start_line(2, 35, "smoke"), "[2/35] START smoke");
        assert_eq!(
            phase_line("smoke", "boot 1", 1234, 5678),
            "      smoke: boot 1 1.2s (at 5.7s)"
        );
        assert!(live_row("smoke", "boot 1").starts_with("smoke "));
    }

    use super::*;
    use crate::result::tests::result;

    #[test]
    fn the_findings_line_adds_up_states_and_cases_per_finding() {
        let seen = |id: Option<&str>, cause: &str, states| crate::findings::Seen {
            id: id.map(String::from),
            cause: cause.into(),
            states,
            unit: "states".into(),
            declared: id.is_some(),
            evidence: None,
        };
        let mut a = result("a", Verdict::Xfail, 1);
        a.findings = vec![seen(Some("unplug-ordering"), "ordering", 150)];
        let mut b = result("b", Verdict::Fail, 1);
        b.findings = vec![
            seen(Some("unplug-ordering"), "ordering", 50),
            seen(Some("file-bitmap-no-fua"), "durability", 0),
            seen(None, "unwritten", 3),
        ];
        assert_eq!(
            findings(&[a, b]).unwrap(),
            "findings: unplug-ordering 200 states in 2 cases; unexplained unwritten 3 states in 1 case"
        );
        assert_eq!(findings(&[result("c", Verdict::Pass, 1)]), None);
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
