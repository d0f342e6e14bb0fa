//! KTAP v1 (Documentation/dev-tools/ktap.rst), what kunit.py and KernelCI read: a case is a
//! test, each check a subtest; a skipped case says why (`# SKIP`), a case the bench could
//! not judge is `not ok` with `# ERROR`, and a failing check's summary and figures follow
//! it as diagnostic lines. Written as `results.ktap` when the run ends, and printed instead
//! of the terminal's lines with `--format ktap`.

use super::text::kernel_line;
use crate::result::events::{Event, Reporter};
use crate::result::{CaseResult, Verdict};
use anyhow::{Context, Result};
use std::fmt::Write;

/// The KTAP document of a run's results; `header` becomes a diagnostic line after the
/// version line. Results of several kernels nest one level deeper: a test per kernel,
/// its cases as subtests.
pub fn render(header: &str, results: &[CaseResult]) -> String {
    let mut out = String::from("KTAP version 1\n");
    for line in header.lines() {
        let _ = writeln!(out, "# {line}");
    }
    let mut kernels: Vec<(&crate::kernel::KernelInfo, Vec<&CaseResult>)> = Vec::new();
    for r in results {
        match kernels.iter_mut().find(|(k, _)| **k == r.kernel) {
            Some((_, rs)) => rs.push(r),
            None => kernels.push((&r.kernel, vec![r])),
        }
    }
    if kernels.len() <= 1 {
        let _ = writeln!(out, "1..{}", results.len());
        for (i, r) in results.iter().enumerate() {
            case(&mut out, "", i + 1, r);
        }
        return out;
    }
    let _ = writeln!(out, "1..{}", kernels.len());
    for (i, (kernel, rs)) in kernels.iter().enumerate() {
        let name = test_name(&crate::run::kernel_dir_name(kernel));
        let _ = writeln!(out, "    KTAP version 1");
        let _ = writeln!(out, "    # Subtest: {name}");
        let _ = writeln!(out, "    1..{}", rs.len());
        for (j, r) in rs.iter().enumerate() {
            case(&mut out, "    ", j + 1, r);
        }
        let broken = rs
            .iter()
            .any(|r| matches!(r.verdict, Verdict::Fail | Verdict::Error | Verdict::Running));
        let _ = writeln!(out, "{} {} {name}", ok(!broken), i + 1);
    }
    out
}

/// Case `n` as a test at `indent`, its checks as subtests one level deeper.
fn case(out: &mut String, indent: &str, n: usize, r: &CaseResult) {
    let name = test_name(&r.case);
    let sub = format!("{indent}    ");
    if !r.checks.is_empty() {
        let _ = writeln!(out, "{sub}KTAP version 1");
        let _ = writeln!(out, "{sub}# Subtest: {name}");
        let _ = writeln!(out, "{sub}1..{}", r.checks.len());
        for (j, c) in r.checks.iter().enumerate() {
            let _ = writeln!(out, "{sub}{} {} {}", ok(c.ok), j + 1, test_name(&c.name));
            if !c.ok {
                diagnostic(out, &sub, &c.summary);
                diagnostic(out, &sub, &format!("figures: {}", c.figures));
            }
        }
    }
    let (result, directive) = match r.verdict {
        Verdict::Pass => ("ok", String::new()),
        Verdict::Fail => ("not ok", String::new()),
        Verdict::Skip => ("ok", format!(" # SKIP {}", one_line(r.reason.as_deref()))),
        // TAP's TODO: a test known not to pass yet; "ok" with it is a surprise pass.
        Verdict::Xfail => (
            "not ok",
            format!(" # TODO {}", one_line(r.reason.as_deref())),
        ),
        Verdict::Xpass => ("ok", format!(" # TODO {}", one_line(r.reason.as_deref()))),
        Verdict::Error | Verdict::Running => (
            "not ok",
            format!(" # ERROR {}", one_line(r.reason.as_deref())),
        ),
    };
    if r.verdict == Verdict::Fail {
        if let Some(reason) = &r.reason {
            diagnostic(out, indent, reason);
        }
        diagnostic(out, indent, &format!("replay: {}", r.replay));
    }
    let _ = writeln!(out, "{indent}{result} {n} {name}{directive}");
}

fn ok(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "not ok"
    }
}

/// A name KTAP can carry: no `#` (it starts a directive), one line.
fn test_name(name: &str) -> String {
    one_line(Some(name)).replace('#', "_")
}

fn one_line(text: Option<&str>) -> String {
    text.unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn diagnostic(out: &mut String, indent: &str, text: &str) {
    for line in text.lines().filter(|l| !l.trim().is_empty()).take(20) {
        let _ = writeln!(out, "{indent}# {}", line.trim_end());
    }
}

/// The KTAP document of a run when it ends: into the run's directory as `results.ktap`,
/// or on stdout (`--format ktap`).
pub struct Ktap {
    to_stdout: bool,
    header: String,
}

impl Ktap {
    pub fn file() -> Self {
        Self {
            to_stdout: false,
            header: String::new(),
        }
    }

    pub fn stdout() -> Self {
        Self {
            to_stdout: true,
            header: String::new(),
        }
    }
}

impl Reporter for Ktap {
    fn report(&mut self, event: &Event) -> Result<()> {
        match event {
            Event::RunStarted { bench, .. } => {
                self.header = format!("md-bitmap-bench: {}", kernel_line(bench));
                Ok(())
            }
            Event::RunEnded { run_dir, results } => {
                let doc = render(&self.header, results);
                if self.to_stdout {
                    print!("{doc}");
                    return Ok(());
                }
                let path = run_dir.join("results.ktap");
                std::fs::write(&path, doc).with_context(|| format!("write {}", path.display()))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::check::Check;
    use crate::result::tests::result;

    /// A run of four cases: one passed (two checks), one failed (a check failed), one
    /// skipped, one the bench could not judge.
    pub(crate) fn four_cases() -> Vec<CaseResult> {
        let check = |name: &'static str, ok| Check {
            name: name.into(),
            ok,
            summary: format!("{name} summary"),
            figures: serde_json::json!({ "divergent_chunks": 3 }),
        };
        let mut pass = result("raid1-file-bitmap-crash", Verdict::Pass, 1);
        pass.checks = vec![check("crash_left_divergence", true), check("safety", true)];
        let mut fail = result("crash-levels@raid6-n4-file", Verdict::Fail, 2);
        fail.checks = vec![check("crash_left_divergence", true), check("safety", false)];
        fail.reason = Some("safety: 3 divergent chunks have a clear bit: 4-5, 17".into());
        fail.replay = "cargo xtask run cases/crash-levels.yaml --seed 2".into();
        let mut skip = result("raid1-file-bitmap-crash-failslab", Verdict::Skip, 3);
        skip.reason = Some("needs CONFIG_FAILSLAB (unset in config)".into());
        let mut error = result("smoke", Verdict::Error, 4);
        error.reason = Some("boot 1: QEMU exited\nwith status 1".into());
        vec![pass, fail, skip, error]
    }

    /// A case failing as it knows the stock kernel to (XFAIL) and one that did not (XPASS).
    pub(crate) fn known_failures() -> Vec<CaseResult> {
        let check = |ok| Check {
            name: "power_loss_safety".into(),
            ok,
            summary: "power_loss_safety summary".into(),
            figures: serde_json::json!({}),
        };
        let mut xfail = result("raid1-file-bitmap-power-loss-volatile", Verdict::Xfail, 5);
        xfail.checks = vec![check(false)];
        xfail.reason =
            Some("known kernel finding: no PREFLUSH or FUA\npower_loss_safety: ...".into());
        let mut xpass = result("raid1-power-loss@internal", Verdict::Xpass, 6);
        xpass.checks = vec![check(true)];
        xpass.reason =
            Some("power_loss_safety held, though the case knows the kernel to fail it".into());
        vec![xfail, xpass]
    }

    #[test]
    fn a_known_failure_is_a_todo() {
        let k = render("kernel 6.12", &known_failures());
        assert!(
            k.contains("not ok 1 raid1-file-bitmap-power-loss-volatile # TODO known kernel finding: no PREFLUSH or FUA power_loss_safety: ...\n"),
            "{k}"
        );
        assert!(
            k.contains("ok 2 raid1-power-loss@internal # TODO power_loss_safety held"),
            "{k}"
        );
    }

    #[test]
    fn cases_are_tests_and_checks_their_subtests() {
        let k = render("kernel 6.12", &four_cases());
        assert!(
            k.starts_with("KTAP version 1\n# kernel 6.12\n1..4\n"),
            "{k}"
        );
        assert!(k.contains("    # Subtest: raid1-file-bitmap-crash\n    1..2\n    ok 1 crash_left_divergence\n    ok 2 safety\nok 1 raid1-file-bitmap-crash\n"), "{k}");
        assert!(
            k.contains("    not ok 2 safety\n    # safety summary\n"),
            "{k}"
        );
        assert!(k.contains("not ok 2 crash-levels@raid6-n4-file\n"), "{k}");
        assert!(
            k.contains("ok 3 raid1-file-bitmap-crash-failslab # SKIP needs CONFIG_FAILSLAB"),
            "{k}"
        );
        assert!(
            k.contains("not ok 4 smoke # ERROR boot 1: QEMU exited with status 1\n"),
            "{k}"
        );
    }
}

/// The kernel's own KTAP parser, `tools/testing/kunit/kunit_parser.py` from Debian's
/// `linux-source-6.12`, reads what the bench writes and counts what it should.
#[cfg(test)]
mod kunit_parser {
    use super::*;

    const TARBALL: &str = "/usr/src/linux-source-6.12.tar.xz";

    #[test]
    fn kunit_parser_counts_the_cases_and_checks() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            std::path::Path::new(TARBALL).is_file(),
            "{TARBALL} is missing: apt-get install linux-source-6.12 (CI installs it)"
        );
        let files = ["kunit_parser.py", "kunit_printer.py"]
            .map(|f| format!("linux-source-6.12/tools/testing/kunit/{f}"));
        let st = std::process::Command::new("tar")
            .args(["-xJf", TARBALL, "-C"])
            .arg(dir.path())
            .args(["--strip-components=4"])
            .args(&files)
            .status()
            .unwrap();
        assert!(
            st.success(),
            "tar could not extract {files:?} from {TARBALL}"
        );
        let counts = |results: &[CaseResult]| {
            let ktap = dir.path().join("results.ktap");
            std::fs::write(&ktap, render("kernel 6.12", results)).unwrap();
            parse(dir.path(), &ktap)
        };
        let text = counts(&tests::four_cases());
        // 2 + 1 checks passed; the failing check and the ERROR case failed; one skip.
        assert!(text.contains("COUNTS 3 2 0 1 0 FAILURE"), "{text}");
        assert!(
            text.contains("NAMES raid1-file-bitmap-crash,crash-levels@raid6-n4-file,raid1-file-bitmap-crash-failslab,smoke"),
            "{text}"
        );
        // kunit.py does not know TODO (Documentation/dev-tools/ktap.rst: "not
        // recognized"): it counts the XFAIL's failed check and the XPASS's passed one.
        let text = counts(&tests::known_failures());
        assert!(text.contains("COUNTS 1 1 0 0 0 FAILURE"), "{text}");
        // Two kernels: a test each, their cases nested below.
        let mut two = tests::four_cases();
        let mut other = tests::four_cases();
        for r in &mut other {
            r.kernel.release = "6.1.0-57-cloud-amd64".into();
            r.kernel.vmlinuz_sha256 = "abcdef0123".into();
        }
        two.extend(other);
        let text = counts(&two);
        assert!(text.contains("COUNTS 6 4 0 2 0 FAILURE"), "{text}");
        assert!(
            text.contains("NAMES 6.12-unknown,6.1.0-57-cloud-amd64-abcdef01"),
            "{text}"
        );
    }

    fn parse(dir: &std::path::Path, ktap: &std::path::Path) -> String {
        let script = "import sys\n\
            sys.path.insert(0, sys.argv[1])\n\
            import kunit_parser\n\
            t = kunit_parser.parse_run_tests(open(sys.argv[2]).readlines())\n\
            c = t.counts\n\
            print('COUNTS', c.passed, c.failed, c.crashed, c.skipped, c.errors, t.status.name)\n\
            print('NAMES', ','.join(s.name for s in t.subtests))\n";
        crate::report::python(
            script,
            &[dir.as_os_str(), ktap.as_os_str()],
            "the kernel's kunit_parser.py",
        )
    }
}
