//! JUnit XML (`junit.xml` in the run's directory), what Jenkins and GitLab read: a
//! testsuite per kernel, a testcase per case with its time; a FAIL is a failure, an ERROR
//! an error, a SKIP skipped, each with the reason and the replay command, and the tail of
//! the case's consoles as system-out.

use super::consoles::console_tails;
use crate::result::events::{Event, Reporter};
use crate::result::{CaseResult, Verdict};
use anyhow::{Context, Result};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::collections::BTreeMap;
use std::time::Duration;

/// The XML for `results`, each with the console tail its case left (`consoles`, in the
/// same order; empty where none).
pub fn render(results: &[CaseResult], consoles: &[String]) -> Result<String> {
    let mut suites: BTreeMap<String, TestSuite> = BTreeMap::new();
    for (r, console) in results
        .iter()
        .zip(consoles.iter().chain(std::iter::repeat(&String::new())))
    {
        let suite_name = format!("md-bitmap-bench {}", r.kernel.release);
        let suite = suites
            .entry(suite_name.clone())
            .or_insert_with(|| TestSuite::new(suite_name));
        let why = r.reason.clone().unwrap_or_default();
        let first = why.lines().next().unwrap_or_default().to_string();
        let status = match r.verdict {
            Verdict::Pass => TestCaseStatus::success(),
            Verdict::Skip => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(first);
                s
            }
            // What pytest and nextest readers know: an expected failure is reported as
            // skipped, saying why; an unexpected pass as a success with a note.
            Verdict::Xfail => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(format!("XFAIL: {first}"));
                s.set_description(format!("{why}\nreplay: {}", r.replay));
                s
            }
            Verdict::Xpass => TestCaseStatus::success(),
            Verdict::Fail | Verdict::Error | Verdict::Running => {
                let kind = if r.verdict == Verdict::Fail {
                    NonSuccessKind::Failure
                } else {
                    NonSuccessKind::Error
                };
                let mut s = TestCaseStatus::non_success(kind);
                s.set_message(first);
                s.set_description(format!("{why}\nreplay: {}", r.replay));
                s
            }
        };
        let mut case = TestCase::new(r.case.clone(), status);
        case.set_classname("md_bitmap");
        case.set_time(Duration::from_millis(r.times.total_ms));
        if !console.is_empty() {
            case.set_system_out(console.clone());
        }
        suite.add_test_case(case);
    }
    let mut report = Report::new("md-bitmap-bench");
    report.add_test_suites(suites.into_values());
    report.to_string().context("serialize the JUnit report")
}

/// Writes `junit.xml` into the run's directory when the run ends.
#[derive(Default)]
pub struct JunitFile;

impl Reporter for JunitFile {
    fn report(&mut self, event: &Event) -> Result<()> {
        match event {
            Event::RunEnded { run_dir, results } => {
                let consoles = console_tails(run_dir, results);
                let path = run_dir.join("junit.xml");
                std::fs::write(&path, render(results, &consoles)?)
                    .with_context(|| format!("write {}", path.display()))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ktap::tests::four_cases;

    #[test]
    fn a_suite_per_kernel_and_a_case_per_result() {
        let x = render(
            &four_cases(),
            &["==> console-boot1.log <==\nmd0: resync done\n".into()],
        )
        .unwrap();
        assert!(
            x.contains("<testsuite name=\"md-bitmap-bench 6.12\" tests=\"4\""),
            "{x}"
        );
        assert!(
            x.contains("<failure message=\"safety: 3 divergent chunks"),
            "{x}"
        );
        assert!(
            x.contains("replay: cargo xtask run cases/crash-levels.yaml --seed 2"),
            "{x}"
        );
        assert!(
            x.contains("<skipped message=\"needs CONFIG_FAILSLAB"),
            "{x}"
        );
        assert!(x.contains("<error message=\"boot 1: QEMU exited\""), "{x}");
        assert!(x.contains("<system-out>==&gt; console-boot1.log"), "{x}");
    }
}

/// A real JUnit reader, `junitparser` (PyPI; `.ci/run` installs it), reads what the bench
/// writes: the suites, the cases, their results and messages.
#[cfg(test)]
mod junitparser {
    use super::*;
    use crate::report::ktap::tests::{four_cases, known_failures};

    #[test]
    fn junitparser_reads_the_failures_errors_and_skips() {
        let dir = tempfile::tempdir().unwrap();
        let xml = dir.path().join("junit.xml");
        let mut all = four_cases();
        all.extend(known_failures());
        std::fs::write(&xml, render(&all, &[]).unwrap()).unwrap();
        let script = "import sys\n\
            from junitparser import JUnitXml, Failure, Error, Skipped\n\
            xml = JUnitXml.fromfile(sys.argv[1])\n\
            for suite in xml:\n\
            \x20   print('SUITE', suite.name, suite.tests, suite.failures, suite.errors, suite.skipped)\n\
            \x20   for case in suite:\n\
            \x20       kinds = [type(r).__name__ + ':' + (r.message or '') for r in case.result]\n\
            \x20       print('CASE', case.name, case.classname, case.time, kinds or ['passed'])\n";
        let text = crate::report::python(
            script,
            &[xml.as_os_str()],
            "junitparser (pip install junitparser; CI installs it)",
        );
        assert!(
            text.contains("SUITE md-bitmap-bench 6.12 6 1 1 2"),
            "{text}"
        );
        assert!(
            text.contains("CASE raid1-file-bitmap-crash md_bitmap 0.0 ['passed']"),
            "{text}"
        );
        assert!(
            text.contains("CASE crash-levels@raid6-n4-file md_bitmap 0.0 ['Failure:safety: 3 divergent chunks have a clear bit: 4-5, 17']"),
            "{text}"
        );
        assert!(
            text.contains("['Skipped:needs CONFIG_FAILSLAB (unset in config)']"),
            "{text}"
        );
        assert!(text.contains("['Error:boot 1: QEMU exited']"), "{text}");
        assert!(
            text.contains("CASE raid1-file-bitmap-power-loss-volatile md_bitmap 0.0 ['Skipped:XFAIL: known kernel finding: no PREFLUSH or FUA']"),
            "{text}"
        );
        assert!(
            text.contains("CASE raid1-power-loss@internal md_bitmap 0.0 ['passed']"),
            "{text}"
        );
    }
}
