//! The exit statuses of `cargo xtask run`, chosen so that `git bisect run` works: 0 good,
//! 1 bad, 125 "cannot test this revision" (the kernel did not build, the bench broke).

pub const OK: u8 = 0;
pub const CASE_FAILED: u8 = 1;
pub const CANNOT_TEST: u8 = 125;

use crate::result::{CaseResult, Verdict};

/// The status of a run: an ERROR outranks a FAIL, and a run where every case was skipped
/// tested nothing.
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
