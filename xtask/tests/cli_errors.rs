//! Bad input at the command line: one clear message naming what and where, exit status
//! 125 (cannot test), and nothing left behind.

mod common;

use common::xtask;
use std::process::Command;

fn qemu_count() -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path().join("comm"))
                .is_ok_and(|c| c.trim() == "qemu-system-x86")
        })
        .count()
}

#[test]
fn a_case_file_with_an_unknown_key_names_file_line_column_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let case = dir.path().join("typo.yaml");
    std::fs::write(
        &case,
        "description: d\ndisks: []\nsteps:\n  - run: {cmd: 'true', timout: 5s}\n",
    )
    .unwrap();
    let results = dir.path().join("results");
    let (code, _, err) = xtask(&[
        "run",
        case.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        "--no-install",
    ]);
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains("typo.yaml:4:") && err.contains("steps[0].run: unknown field `timout`"),
        "{err}"
    );
    assert!(!results.exists(), "a case that does not load starts no run");
}

#[test]
fn a_kernel_that_is_not_a_bzimage_is_refused_before_anything_boots() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bzImage");
    std::fs::write(&bogus, b"#!/bin/sh\necho not a kernel\n").unwrap();
    let before = qemu_count();
    let (code, _, err) = xtask(&[
        "run",
        "smoke",
        "--kernel",
        bogus.to_str().unwrap(),
        "--no-install",
        "--results",
        dir.path().join("r").to_str().unwrap(),
    ]);
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains("not a bzImage") && err.contains(bogus.to_str().unwrap()),
        "{err}"
    );
    assert!(qemu_count() <= before, "no QEMU left behind");
}

#[test]
fn a_modules_dir_without_md_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let modules = dir.path().join("lib/modules/6.12.0");
    std::fs::create_dir_all(modules.join("kernel")).unwrap();
    std::fs::write(modules.join("modules.order"), "").unwrap();
    let cache = xtask::host::cache::Cache::from_env().unwrap();
    // Any real bzImage will do for the header check: the one the bench already cached.
    let Some(vmlinuz) = cache
        .entries("kernels")
        .into_iter()
        .map(|d| d.join("vmlinuz"))
        .find(|p| p.exists())
    else {
        return;
    };
    let (code, _, err) = xtask(&[
        "setup",
        "--kernel",
        vmlinuz.to_str().unwrap(),
        "--modules",
        dir.path().to_str().unwrap(),
        "--no-install",
    ]);
    assert_eq!(code, 125, "{err}");
    assert!(
        ["virtio_pci", "virtio_blk", "md_mod"]
            .iter()
            .any(|m| err.contains(&format!("module {m} is neither in"))),
        "{err}"
    );
}

#[test]
fn an_unknown_case_name_or_file_is_one_line_naming_it_and_where() {
    let (code, _, err) = xtask(&["run", "no-such-case", "--no-install"]);
    assert_eq!(code, 125);
    assert!(
        err.contains("no case is named \"no-such-case\" in "),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let (code, _, err) = xtask(&["run", "raid1-file-bitmap-lie@stal", "--list"]);
    assert_eq!(code, 125);
    assert!(err.contains("(close: raid1-file-bitmap-lie@stale"), "{err}");
    let (code, _, err) = xtask(&["run", "cases/no-such-case.yaml", "--no-install"]);
    assert_eq!(code, 125);
    assert!(
        err.contains("case file cases/no-such-case.yaml: no such file"),
        "{err}"
    );
}

/// `run NAME` and `run --case NAME` select alike: a matrix combination, a glob, a whole
/// matrix by its case's name.
#[test]
fn a_positional_case_name_selects_what_case_selects() {
    let listed = |args: &[&str]| -> Vec<String> {
        let (code, out, err) = xtask(args);
        assert_eq!(code, 0, "{args:?}: {err}");
        out.lines()
            .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(
        listed(&["run", "raid1-file-bitmap-lie@stale", "--list"]),
        ["raid1-file-bitmap-lie@stale"]
    );
    for name in [
        "raid1-file-bitmap-lie@stale",
        "raid1-file-bitmap-lie",
        "*crash-1m*",
        "crash-levels@raid6-*",
    ] {
        let positional = listed(&["run", name, "--list"]);
        assert!(!positional.is_empty(), "{name}");
        assert_eq!(
            positional,
            listed(&["run", "--list", "--case", name]),
            "{name}"
        );
    }
}

#[test]
fn a_usage_error_exits_125_so_bisect_does_not_call_the_commit_bad() {
    let (code, _, err) = xtask(&["run", "--no-such-flag"]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("--no-such-flag"), "{err}");
}

#[test]
fn a_case_filter_is_an_exact_name_or_a_glob_and_one_that_selects_nothing_is_named() {
    let (code, _, err) = xtask(&["run", "--list", "--case", "raid1-file-bitmap"]);
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains("no case is named \"raid1-file-bitmap\""),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["run", "--list", "--case", "raid1-file-bitmap-crash"])
        .args(["--case", "crash-levels@raid6-*", "--exclude", "*-internal"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let listed: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        listed,
        [
            "crash-levels@raid6-n4-file",
            "crash-levels@raid6-n4-lockless",
            "raid1-file-bitmap-crash"
        ]
    );
}

#[test]
fn a_partition_outside_its_count_is_a_usage_error_and_the_shares_list_every_case_once() {
    let (code, _, err) = xtask(&["run", "--list", "--partition", "4/3"]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("give I/N with 1 <= I <= N"), "{err}");
    let list = |args: &[&str]| -> Vec<String> {
        let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(String::from))
            .collect()
    };
    let all = list(&["run", "--list"]);
    let mut shares: Vec<String> = ["1/2", "2/2"]
        .iter()
        .flat_map(|p| list(&["run", "--list", "--partition", p]))
        .collect();
    shares.sort();
    let mut want = all.clone();
    want.sort();
    assert_eq!(shares, want);
}

#[test]
fn a_patch_without_a_source_to_patch_is_one_line_before_anything_is_fetched() {
    let dir = tempfile::tempdir().unwrap();
    let patch = dir.path().join("fix.patch");
    std::fs::write(&patch, "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n").unwrap();
    let p = patch.to_str().unwrap();
    let (code, _, err) = xtask(&["run", "smoke", "--patch", p, "--no-install"]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("--patch needs a source to patch"), "{err}");
    let (code, _, err) = xtask(&[
        "run",
        "smoke",
        "--kernel",
        "debian:6.12",
        "--patch",
        p,
        "--no-install",
    ]);
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains("kernel debian:6.12: --patch needs a source to patch"),
        "{err}"
    );
    let (code, _, err) = xtask(&["compare", "--base", "debian", "--no-install"]);
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains("give --patched KERNEL, or --patch FILE"),
        "{err}"
    );
    let missing = dir.path().join("nope.patch");
    let (code, _, err) = xtask(&[
        "kernel",
        "build",
        "--debian-source",
        "6.12",
        "--patch",
        missing.to_str().unwrap(),
        "--no-install",
    ]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("nope.patch: no such file"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
