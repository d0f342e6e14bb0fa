//! The comparison behind `cargo xtask compare`: the same cases with the same seeds on a base kernel and a
//! patched one, side by side, for a patch reviewer. The exit status says whether the
//! patched kernel regressed: a case that passed on the base and not on the patched kernel,
//! or a kernel splat only the patched kernel printed.

use crate::result::exit;
use crate::result::{CaseResult, Verdict};
use serde::Serialize;
use std::collections::BTreeSet;

/// One case (one repeat of it) on both kernels.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub case: String,
    pub seed: u64,
    pub base: Side,
    pub patched: Side,
    /// What got worse on the patched kernel; non-empty is a regression.
    pub regressions: Vec<String>,
    /// Worth a look, not a regression (slower, resynced more).
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Side {
    pub verdict: Verdict,
    pub reason: Option<String>,
    pub splats: Vec<String>,
    pub resynced_chunks: Option<u64>,
    pub divergent_chunks: Option<u64>,
    pub total_ms: u64,
}

impl Side {
    fn of(r: &CaseResult) -> Self {
        Self {
            verdict: r.verdict,
            reason: r.reason.clone(),
            splats: r
                .splats
                .iter()
                .filter(|s| !s.expected)
                .map(|s| s.title.clone())
                .collect(),
            resynced_chunks: r.check_figure("resync_bounds", "resynced_chunks"),
            divergent_chunks: r.check_figure("safety", "divergent_chunks"),
            total_ms: r.times.total_ms,
        }
    }
}

/// Pairs results by case and seed (the runs share their plans) and judges each pair.
pub fn judge(base: &[CaseResult], patched: &[CaseResult]) -> Vec<Row> {
    // How much the base shows each finding over the whole run: a finding's states depend
    // on timing, so one case's 0 against the patched kernel's N is a regression only when
    // the base showed that finding nowhere.
    let mut base_total: std::collections::BTreeMap<String, u64> = Default::default();
    for r in base {
        for f in &r.findings {
            *base_total.entry(f.name()).or_default() += f.states;
        }
    }
    base.iter()
        .filter_map(|b| {
            let p = patched
                .iter()
                .find(|p| p.case == b.case && p.seed == b.seed)?;
            let (bs, ps) = (Side::of(b), Side::of(p));
            let mut regressions = Vec::new();
            let mut notes = Vec::new();
            if b.verdict == Verdict::Pass && p.verdict == Verdict::Fail {
                regressions.push(format!("passes on base, fails on patched: {}", p.why()));
            }
            let known: BTreeSet<&String> = bs.splats.iter().collect();
            for s in ps.splats.iter().filter(|s| !known.contains(s)) {
                regressions.push(format!("new splat: {s}"));
            }
            if b.verdict == Verdict::Fail && p.verdict == Verdict::Pass {
                notes.push("fails on base, passes on patched".into());
            }
            if b.verdict == Verdict::Xfail && p.verdict == Verdict::Xpass {
                notes.push("the known failure of base is gone on patched (XFAIL -> XPASS)".into());
            }
            if b.verdict == Verdict::Xpass && p.verdict == Verdict::Xfail {
                let line = format!(
                    "passes on base, fails on patched as the case knows the stock kernel to: {}",
                    p.why()
                );
                let elsewhere = p
                    .findings
                    .iter()
                    .filter(|f| f.states > 0)
                    .all(|f| base_total.get(&f.name()).is_some_and(|&n| n > 0));
                if elsewhere {
                    notes.push(format!(
                        "{line} (the base shows these findings in other cases)"
                    ));
                } else {
                    regressions.push(line);
                }
            }
            if p.verdict == Verdict::Error || b.verdict == Verdict::Error {
                notes.push("could not be tested on one kernel".into());
            }
            let (worse, changed) = finding_changes(b, p, &base_total);
            regressions.extend(worse);
            notes.extend(changed);
            if ps.total_ms > bs.total_ms.saturating_mul(3) / 2 && bs.total_ms > 0 {
                notes.push(format!(
                    "{:.0}% slower",
                    (ps.total_ms as f64 / bs.total_ms as f64 - 1.0) * 100.0
                ));
            }
            Some(Row {
                case: b.case.clone(),
                seed: b.seed,
                base: bs,
                patched: ps,
                regressions,
                notes,
            })
        })
        .collect()
}

/// Each finding's states on both kernels, `unplug-ordering: 150 states -> 0`: one that
/// the base judged absent in every case and the patched kernel shows is a regression, the
/// rest notes.
fn finding_changes(
    base: &CaseResult,
    patched: &CaseResult,
    base_total: &std::collections::BTreeMap<String, u64>,
) -> (Vec<String>, Vec<String>) {
    let mut names: Vec<String> = base.findings.iter().map(|f| f.name()).collect();
    for f in &patched.findings {
        if !names.contains(&f.name()) {
            names.push(f.name());
        }
    }
    let states =
        |r: &CaseResult, n: &str| r.findings.iter().find(|f| f.name() == n).map(|f| f.states);
    let (mut worse, mut changed) = (Vec::new(), Vec::new());
    for n in names {
        let (b, p) = (states(base, &n), states(patched, &n));
        let line = format!(
            "{n}: {} states -> {}",
            b.map_or("-".into(), |v| v.to_string()),
            p.map_or("-".into(), |v| v.to_string())
        );
        if b == Some(0) && p.is_some_and(|p| p > 0) {
            if base_total.get(&n).copied().unwrap_or(0) == 0 {
                worse.push(line);
            } else {
                changed.push(format!("{line} (the base shows it in other cases)"));
            }
        } else if b != p {
            changed.push(line);
        }
    }
    (worse, changed)
}

/// 1 when anything regressed; 125 when a case could not be tested on either kernel or a
/// case has no pair; else 0.
pub fn exit_code(rows: &[Row], cases: usize) -> u8 {
    if rows.iter().any(|r| !r.regressions.is_empty()) {
        exit::CASE_FAILED
    } else if rows.len() < cases
        || rows
            .iter()
            .any(|r| r.base.verdict == Verdict::Error || r.patched.verdict == Verdict::Error)
    {
        exit::CANNOT_TEST
    } else {
        exit::OK
    }
}

pub fn table(rows: &[Row]) -> String {
    use super::columns::{Align::*, Columns};
    let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    let mut t = Columns::new(&[
        ("case", Left),
        ("seed", Right),
        ("verdict", Right),
        ("resynced", Right),
        ("divergent", Right),
        ("time", Right),
        ("what changed", Left),
    ]);
    for r in rows {
        let mut changed: Vec<String> = r
            .regressions
            .iter()
            .map(|x| format!("WORSE: {x}"))
            .collect();
        changed.extend(r.notes.iter().cloned());
        t.row([
            r.case.clone(),
            r.seed.to_string(),
            format!(
                "{} -> {}",
                r.base.verdict.label(),
                r.patched.verdict.label()
            ),
            format!(
                "{} -> {}",
                opt(r.base.resynced_chunks),
                opt(r.patched.resynced_chunks)
            ),
            format!(
                "{} -> {}",
                opt(r.base.divergent_chunks),
                opt(r.patched.divergent_chunks)
            ),
            format!(
                "{:.0}s -> {:.0}s",
                r.base.total_ms as f64 / 1000.0,
                r.patched.total_ms as f64 / 1000.0
            ),
            if changed.is_empty() {
                "-".into()
            } else {
                changed.join("; ")
            },
        ]);
    }
    t.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(case: &str, verdict: Verdict, splats: &[&str], ms: u64) -> CaseResult {
        let mut r = crate::result::tests::result(case, verdict, 5);
        r.reason =
            (verdict != Verdict::Pass).then(|| "safety: 1 divergent chunk has a clear bit".into());
        r.times.total_ms = ms;
        r.splats = splats
            .iter()
            .map(|t| crate::logs::splat::Splat {
                kind: "warning".into(),
                title: t.to_string(),
                log: "console.log".into(),
                expected: false,
                line: 1,
                excerpt: String::new(),
                folded: vec![],
            })
            .collect();
        r.checks = vec![crate::check::Check {
            name: "resync_bounds".into(),
            ok: true,
            summary: String::new(),
            figures: serde_json::json!({ "resynced_chunks": 10 }),
        }];
        r
    }

    #[test]
    fn the_same_outcome_is_no_regression() {
        let rows = judge(
            &[result("a", Verdict::Pass, &[], 1000)],
            &[result("a", Verdict::Pass, &[], 1100)],
        );
        assert!(rows[0].regressions.is_empty() && rows[0].notes.is_empty());
        assert_eq!(rows[0].patched.resynced_chunks, Some(10));
        assert_eq!(exit_code(&rows, 1), exit::OK);
    }

    #[test]
    fn a_new_failure_or_a_new_splat_is_a_regression() {
        let rows = judge(
            &[
                result("a", Verdict::Pass, &[], 1000),
                result(
                    "b",
                    Verdict::Pass,
                    &["WARNING in md_bitmap_startwrite"],
                    1000,
                ),
            ],
            &[
                result("a", Verdict::Fail, &[], 1000),
                result(
                    "b",
                    Verdict::Pass,
                    &[
                        "WARNING in md_bitmap_startwrite",
                        "BUG: KASAN in bitmap_daemon_work",
                    ],
                    1000,
                ),
            ],
        );
        assert_eq!(
            rows[0].regressions,
            ["passes on base, fails on patched: safety: 1 divergent chunk has a clear bit"]
        );
        assert_eq!(
            rows[1].regressions,
            ["new splat: BUG: KASAN in bitmap_daemon_work"]
        );
        assert_eq!(exit_code(&rows, 2), exit::CASE_FAILED);
        assert!(table(&rows).contains("WORSE: new splat"));
    }

    fn with_findings(verdict: Verdict, seen: &[(&str, u64)]) -> CaseResult {
        let mut r = result("p", verdict, &[], 1000);
        r.findings = seen
            .iter()
            .map(|(id, n)| crate::findings::Seen {
                id: Some(id.to_string()),
                cause: "ordering".into(),
                states: *n,
                unit: "states".into(),
                declared: true,
                evidence: None,
            })
            .collect();
        r
    }

    #[test]
    fn findings_are_compared_per_kernel_and_one_that_appears_is_a_regression() {
        let rows = judge(
            &[with_findings(Verdict::Xfail, &[("unplug-ordering", 150)])],
            &[with_findings(Verdict::Xpass, &[("unplug-ordering", 0)])],
        );
        assert!(rows[0].regressions.is_empty());
        assert!(rows[0]
            .notes
            .contains(&"unplug-ordering: 150 states -> 0".to_string()));
        assert!(table(&rows).contains("unplug-ordering: 150 states -> 0"));
        let rows = judge(
            &[with_findings(Verdict::Xpass, &[("unplug-ordering", 0)])],
            &[with_findings(Verdict::Xfail, &[("unplug-ordering", 7)])],
        );
        assert!(rows[0]
            .regressions
            .contains(&"unplug-ordering: 0 states -> 7".to_string()));
        // A finding the base shows in another case is timing, not the patch.
        let mut other = with_findings(Verdict::Xfail, &[("unplug-ordering", 40)]);
        other.case = "q".into();
        let rows = judge(
            &[
                with_findings(Verdict::Xpass, &[("unplug-ordering", 0)]),
                other.clone(),
            ],
            &[
                with_findings(Verdict::Xfail, &[("unplug-ordering", 7)]),
                other,
            ],
        );
        assert!(rows[0].regressions.is_empty(), "{:?}", rows[0].regressions);
        assert!(rows[0].notes.contains(
            &"unplug-ordering: 0 states -> 7 (the base shows it in other cases)".to_string()
        ));
    }

    #[test]
    fn fixes_slowdowns_and_untestable_cases_are_noted_not_failed() {
        let rows = judge(
            &[
                result("a", Verdict::Fail, &[], 1000),
                result("b", Verdict::Pass, &[], 1000),
                result("c", Verdict::Pass, &[], 1000),
            ],
            &[
                result("a", Verdict::Pass, &[], 1000),
                result("b", Verdict::Pass, &[], 2000),
                result("c", Verdict::Error, &[], 1000),
            ],
        );
        assert!(rows.iter().all(|r| r.regressions.is_empty()));
        assert_eq!(rows[0].notes, ["fails on base, passes on patched"]);
        assert_eq!(rows[1].notes, ["100% slower"]);
        assert_eq!(exit_code(&rows, 3), exit::CANNOT_TEST);
        assert_eq!(
            exit_code(&rows[..2], 3),
            exit::CANNOT_TEST,
            "a case without a pair"
        );
    }
}
