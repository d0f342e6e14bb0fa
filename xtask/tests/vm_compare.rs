//! `cargo xtask compare` end to end on the real binary: the same kernel on both sides runs
//! the same seeds and shows no regression; a KERNEL that is none of the accepted forms is
//! refused before anything boots.

mod common;

use common::xtask;

#[test]
fn the_same_kernel_on_both_sides_runs_the_same_seed_and_does_not_regress() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().to_str().unwrap();
    let (code, out, err) = xtask(&[
        "compare",
        "--base",
        "debian",
        "--patched",
        "debian",
        "smoke",
        "--seed",
        "9",
        "--no-install",
        "--results",
        results,
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    // The table's row: case, seed, then each verdict pair.
    let row: Vec<&str> = out
        .lines()
        .find(|l| l.starts_with("smoke "))
        .unwrap_or_else(|| panic!("no row for smoke:\n{out}"))
        .split_whitespace()
        .collect();
    assert_eq!(row[..5], ["smoke", "9", "PASS", "->", "PASS"], "{out}");
    assert!(out.contains("0 regressed"), "{out}");
    let run = std::fs::read_dir(dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let rows: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("compare.json")).unwrap()).unwrap();
    assert_eq!(rows[0]["seed"], 9);
    for side in ["base", "patched"] {
        assert!(run.join(side).join("smoke").join("result.json").is_file());
    }
}

/// Runs `compare` with `args` (and a results directory) and checks it is refused before
/// anything runs; returns its stderr.
fn refused(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("r");
    let mut all = vec!["compare"];
    all.extend(args);
    all.extend([
        "smoke",
        "--no-install",
        "--results",
        results.to_str().unwrap(),
    ]);
    let (code, _, err) = xtask(&all);
    assert_eq!(code, 125, "{err}");
    assert!(!results.exists(), "nothing ran");
    err
}

#[test]
fn a_kernel_argument_of_no_known_form_is_refused_with_its_name() {
    let err = refused(&["--base", "/no/such/kernel", "--patched", "debian"]);
    assert!(
        err.contains("/no/such/kernel") && err.contains("bzImage"),
        "{err}"
    );
}

#[test]
fn a_modules_tree_for_a_kernel_that_is_not_a_bzimage_is_refused() {
    let err = refused(&[
        "--base",
        "debian",
        "--base-modules",
        "/tmp",
        "--patched",
        "debian",
    ]);
    assert!(err.contains("--base-modules goes with a bzImage"), "{err}");
}
