//! The README's cheap commands run for real, as the README prints them: one case with a
//! fixed seed, and one command in a guest. (`tests/docs.rs` checks every other command it
//! shows by `--help` and `--list`, without booting.)

mod common;

use std::path::Path;

/// The README's shown command that starts with `prefix`, split as a shell would, its
/// comment dropped.
fn shown(prefix: &str) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("README.md shows no `{prefix}...`"));
    let mut words = common::shell_words(line);
    assert_eq!(&words[..2], ["cargo", "xtask"], "{line}");
    words.split_off(2)
}

fn run(mut args: Vec<String>, results: &Path) -> (i32, String) {
    args.extend(["--no-install".into()]);
    if args[0] == "run" {
        args.extend(["--results".into(), results.display().to_string()]);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = common::xtask_in(root, &args);
    (code, format!("{out}{err}"))
}

#[test]
fn the_readmes_one_case_run_passes() {
    let results = tempfile::tempdir().unwrap();
    let args = shown("cargo xtask run smoke");
    let (code, out) = run(args, results.path());
    assert_eq!(code, 0, "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("smoke ") && l.contains(" 7 ") && l.contains("PASS")),
        "a closing row for smoke, seed 7, PASS:\n{out}"
    );
}

#[test]
fn the_readmes_guest_command_shows_md() {
    let results = tempfile::tempdir().unwrap();
    let (code, out) = run(shown("cargo xtask exec"), results.path());
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Personalities"),
        "/proc/mdstat's first line:\n{out}"
    );
}
