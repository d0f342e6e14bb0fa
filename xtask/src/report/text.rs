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

/// One row per case, a column per figure: the case, its seed, its verdict, checks passed,
/// the chunks a reader looks at first, its time. Columns as wide as their widest cell.
pub fn table(results: &[CaseResult]) -> String {
    use super::columns::{Align::*, Columns};
    let fig = |r: &CaseResult, check: &str, key: &str| {
        r.check_figure(check, key)
            .map_or_else(|| "-".into(), |v| v.to_string())
    };
    let mut t = Columns::new(&[
        ("case", Left),
        ("seed", Right),
        ("verdict", Left),
        ("checks", Right),
        ("divergent", Right),
        ("dirty", Right),
        ("resynced", Right),
        ("time", Right),
    ]);
    for r in results {
        let ok = r.checks.iter().filter(|c| c.ok).count();
        t.row([
            r.case.clone(),
            r.seed.to_string(),
            r.verdict.label().to_string(),
            format!("{ok}/{}", r.checks.len()),
            fig(r, "safety", "divergent_chunks"),
            fig(r, "safety", "dirty_chunks"),
            fig(r, "resync_bounds", "resynced_chunks"),
            format!("{:.1}s", r.times.total_ms as f64 / 1000.0),
        ]);
    }
    t.render()
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
        let first: Vec<&str> = t.lines().nth(1).unwrap().split_whitespace().collect();
        assert_eq!(first[..3], ["a", "1", "PASS"], "{t}");
        assert_eq!(t.lines().count(), 6);
    }

    /// Case names of 60 characters and of one: every column keeps one place in every
    /// line (words start there, figures end there), and no column runs into the next.
    #[test]
    fn the_table_has_a_column_per_figure_lined_up_whatever_the_names() {
        use crate::check::Check;
        let long = format!("crash-levels@{}", "r".repeat(47));
        assert_eq!(long.len(), 60);
        let mut rs = vec![
            result(&long, Verdict::Pass, 7660387277089990888),
            result("a", Verdict::Xfail, 3),
            result("raid1-file-bitmap-crash", Verdict::Fail, 12),
        ];
        rs[0].checks = vec![Check {
            name: "safety".into(),
            ok: true,
            summary: String::new(),
            figures: serde_json::json!({"divergent_chunks": 0, "dirty_chunks": 1234}),
        }];
        rs[0].times.total_ms = 123_456;
        rs[2].checks = vec![
            Check {
                name: "safety".into(),
                ok: false,
                summary: String::new(),
                figures: serde_json::json!({"divergent_chunks": 21, "dirty_chunks": 654}),
            },
            Check {
                name: "resync_bounds".into(),
                ok: true,
                summary: String::new(),
                figures: serde_json::json!({"resynced_chunks": 654}),
            },
        ];
        rs[2].times.total_ms = 9_300;
        let t = table(&rs);
        let head = [
            "case",
            "seed",
            "verdict",
            "checks",
            "divergent",
            "dirty",
            "resynced",
            "time",
        ];
        let rows: Vec<Vec<String>> = std::iter::once(head.map(String::from).to_vec())
            .chain(rs.iter().map(|r| {
                let ok = r.checks.iter().filter(|c| c.ok).count();
                let fig = |c, k| r.check_figure(c, k).map_or("-".into(), |v| v.to_string());
                vec![
                    r.case.clone(),
                    r.seed.to_string(),
                    r.verdict.label().into(),
                    format!("{ok}/{}", r.checks.len()),
                    fig("safety", "divergent_chunks"),
                    fig("safety", "dirty_chunks"),
                    fig("resync_bounds", "resynced_chunks"),
                    format!("{:.1}s", r.times.total_ms as f64 / 1000.0),
                ]
            }))
            .collect();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), rows.len(), "{t}");
        // Each cell's span in its line, found left to right.
        let spans: Vec<Vec<(usize, usize)>> = lines
            .iter()
            .zip(&rows)
            .map(|(line, cells)| {
                let mut at = 0;
                cells
                    .iter()
                    .map(|c| {
                        let start = at + line[at..].find(c.as_str()).expect(c);
                        assert!(line[at..start].trim().is_empty(), "{line:?}: {c:?}");
                        at = start + c.len();
                        (start, at)
                    })
                    .collect()
            })
            .collect();
        let left = [true, false, true, false, false, false, false, false];
        let mut column_ends = Vec::new();
        for (col, &is_left) in left.iter().enumerate() {
            let starts: Vec<usize> = spans.iter().map(|s| s[col].0).collect();
            let ends: Vec<usize> = spans.iter().map(|s| s[col].1).collect();
            let edge = if is_left { &starts } else { &ends };
            assert!(
                edge.iter().all(|e| *e == edge[0]),
                "{} not lined up:\n{t}",
                head[col]
            );
            let (first, last) = (*starts.iter().min().unwrap(), *ends.iter().max().unwrap());
            if let Some(&previous) = column_ends.last() {
                assert!(
                    first > previous,
                    "{} runs into the column before:\n{t}",
                    head[col]
                );
            }
            column_ends.push(last);
        }
        let first: Vec<&str> = lines[1].split_whitespace().take(3).collect();
        assert_eq!(first, [long.as_str(), "7660387277089990888", "PASS"], "{t}");
        assert!(lines[2].starts_with("a  "), "{t}");
        println!("{t}");
    }
}
