//! The exit statuses of `cargo xtask run`, chosen so that `git bisect run` works: 0 good,
//! 1 bad, 125 "cannot test this revision" (the kernel did not build, the bench broke).

pub const OK: u8 = 0;
pub const CASE_FAILED: u8 = 1;
pub const CANNOT_TEST: u8 = 125;

use crate::result::{CaseResult, Verdict};

/// The status of a run: an ERROR outranks a FAIL, and a run where every case was skipped
/// tested nothing. An expected failure (XFAIL) and an unexpected pass (XPASS) are not
/// failures: the known finding is on record, and a fix of it is no regression.
pub fn exit_code(results: &[CaseResult]) -> u8 {
    if results.iter().any(|r| r.verdict == Verdict::Error) {
        CANNOT_TEST
    } else if results.iter().any(|r| r.verdict == Verdict::Fail) {
        CASE_FAILED
    } else if results.iter().all(|r| r.verdict == Verdict::Skip) {
        // Nothing was tested: `git bisect run` must not take that for a good kernel.
        CANNOT_TEST
    } else {
        OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::tests::result;

    #[test]
    fn known_failures_do_not_fail_a_run_but_a_failure_or_an_error_does() {
        let r = |v| result("a", v, 1);
        assert_eq!(exit_code(&[r(Verdict::Pass), r(Verdict::Xfail)]), OK);
        assert_eq!(exit_code(&[r(Verdict::Xpass)]), OK);
        assert_eq!(
            exit_code(&[r(Verdict::Xfail), r(Verdict::Fail)]),
            CASE_FAILED
        );
        assert_eq!(
            exit_code(&[r(Verdict::Fail), r(Verdict::Error)]),
            CANNOT_TEST
        );
        assert_eq!(exit_code(&[r(Verdict::Skip)]), CANNOT_TEST);
    }
}
