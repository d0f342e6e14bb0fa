//! The consumers of the runner's events: what a person reads on the terminal, the result
//! files, and the comparison of two kernels.

pub mod columns;
pub mod compare;
pub mod consoles;
pub mod files;
pub mod finding;
pub mod html;
pub mod junit;
pub mod kcidb;
pub mod ktap;
pub mod merge;
pub mod terminal;
pub mod text;
pub mod timeline;

/// Runs a Python `script` of a real consumer of a report (kunit_parser, junitparser,
/// kcidb-io) on `args`; its stdout, or the test fails saying what `consumer` is missing.
#[cfg(test)]
pub(crate) fn python(script: &str, args: &[&std::ffi::OsStr], consumer: &str) -> String {
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .args(args)
        .output()
        .expect("python3");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{consumer} refused or is missing:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}
