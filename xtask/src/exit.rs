//! The exit statuses of `cargo xtask run`, chosen so that `git bisect run` works: 0 good,
//! 1 bad, 125 "cannot test this revision" (the kernel did not build, the bench broke).

pub const OK: u8 = 0;
pub const CASE_FAILED: u8 = 1;
pub const CANNOT_TEST: u8 = 125;
