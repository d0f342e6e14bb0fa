//! What nightly CI runs: several kernels in one run (Debian's 6.12 and 6.1 cloud kernels),
//! and the shards of a `--partition` matrix joined by `report merge`, on real runs of the
//! built binary. The report formats' own consumers are in the unit tests of `report/`;
//! here the joined files must hold every case of every part.

mod common;

use common::{only_run, xtask_cli};
use std::path::Path;

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap()
}

#[test]
fn two_debian_kernels_in_one_run_are_grouped_per_kernel_and_joined() {
    let results = tempfile::tempdir().unwrap();
    let (code, out) = xtask_cli(&[
        "run",
        "smoke",
        "--kernel",
        "debian",
        "--kernel",
        "debian:6.1",
        "--no-install",
        "--results",
        results.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    let run = only_run(results.path());
    let top = json(&run.join("summary.json"));
    let kernels: Vec<&str> = top["kernels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["release"].as_str().unwrap())
        .collect();
    assert_eq!(kernels.len(), 2, "{kernels:?}");
    assert!(kernels[0].starts_with("6.12."), "{kernels:?}");
    assert!(kernels[1].starts_with("6.1.0-"), "{kernels:?}");
    let cases = top["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    assert_eq!(top["counts"]["PASS"], 2, "{top:#}");
    assert!(!run.join("owner").exists(), "the run ended");
    for case in cases {
        // Each kernel's directory holds what a run of that kernel alone writes.
        let dir = run.join(case["dir"].as_str().unwrap());
        assert!(dir.join("result.json").is_file(), "{}", dir.display());
        assert!(dir.parent().unwrap().join("summary.json").is_file());
        assert_eq!(case["kernel"]["source"], "debian");
    }
    assert_ne!(
        cases[0]["kernel"]["vmlinuz_sha256"],
        cases[1]["kernel"]["vmlinuz_sha256"]
    );
    // The 6.1 case replays on 6.1.
    assert!(
        cases[1]["replay"]
            .as_str()
            .unwrap()
            .contains("--kernel debian:6.1"),
        "{}",
        cases[1]["replay"]
    );
    let junit = std::fs::read_to_string(run.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testsuite ").count(), 2, "{junit}");
    let ktap = std::fs::read_to_string(run.join("results.ktap")).unwrap();
    assert!(ktap.contains("\n1..2\n"), "a test per kernel:\n{ktap}");
    assert!(ktap.contains("    # Subtest: 6.1.0-"), "{ktap}");
    let html = std::fs::read_to_string(run.join("index.html")).unwrap();
    assert!(html.contains("<th>kernel</th>"));
}

#[test]
fn the_shards_of_a_partition_merge_into_the_run_of_all_cases() {
    let select = [
        "--case",
        "smoke",
        "--case",
        "raid1-file-bitmap-examine",
        "--case",
        "raid1-file-bitmap-lie@bad-magic",
    ];
    let root = tempfile::tempdir().unwrap();
    let mut shards = Vec::new();
    let mut ran = 0;
    for share in ["1/2", "2/2"] {
        let results = root.path().join(share.replace('/', "-of-"));
        let mut args = vec!["run", "--no-install", "--partition", share];
        args.extend(select);
        let (list_code, list) = xtask_cli(&[args.clone(), vec!["--list"]].concat());
        assert_eq!(list_code, 0, "{list}");
        let n = list.lines().count();
        if n == 0 {
            continue;
        }
        ran += n;
        args.extend(["--results", results.to_str().unwrap()]);
        let (code, out) = xtask_cli(&args);
        assert_eq!(code, 0, "{out}");
        shards.push(only_run(&results));
    }
    assert_eq!(ran, 3, "the shares hold every case once");
    let merged = root.path().join("merged");
    let mut args = vec!["report".to_string(), "merge".to_string()];
    args.extend(shards.iter().map(|s| s.display().to_string()));
    args.extend(["--out".to_string(), merged.display().to_string()]);
    let (code, out) = xtask_cli(&args);
    assert_eq!(code, 0, "{out}");
    let s = json(&merged.join("summary.json"));
    let mut names: Vec<&str> = s["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["case"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "raid1-file-bitmap-examine",
            "raid1-file-bitmap-lie@bad-magic",
            "smoke"
        ]
    );
    assert_eq!(s["parts"].as_array().unwrap().len(), shards.len());
    for c in s["cases"].as_array().unwrap() {
        let dir = merged.join(c["dir"].as_str().unwrap());
        assert!(
            !xtask::run::console_logs(&dir).is_empty(),
            "{}",
            dir.display()
        );
    }
    let junit = std::fs::read_to_string(merged.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase ").count(), 3, "{junit}");
    assert!(merged.join("index.html").is_file() && merged.join("results.ktap").is_file());

    // The same shard twice overlaps; the refused merge leaves no directory.
    let again = root.path().join("again");
    let (code, out) = xtask_cli(&[
        "report",
        "merge",
        shards[0].to_str().unwrap(),
        shards[0].to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
    ]);
    assert_eq!(code, 125, "{out}");
    assert!(out.contains("the shards overlap"), "{out}");
    assert!(!again.exists());
}

/// The kernels md's developers run: Debian's 7.3 from trixie-backports (its split
/// binary/modules/base packages, through the bench's private apt configuration), with
/// sid's mdadm 4.6 in the guest. A file-bitmap case is a SKIP naming why md refuses the
/// file there, told by the probe's evidence; an internal-bitmap crash runs with 4.6.
#[test]
fn debian_7_3_runs_internal_bitmaps_with_mdadm_4_6_and_names_why_it_refuses_a_bitmap_file() {
    let results = tempfile::tempdir().unwrap();
    let (code, out) = xtask_cli(&[
        "run",
        "smoke",
        "raid1-internal-bitmap-crash",
        "--kernel",
        "debian:7.3",
        "--no-install",
        "--results",
        results.path().to_str().unwrap(),
    ]);
    let run = only_run(results.path());
    let result = |case: &str| json(&run.join(case).join("result.json"));
    let smoke = result("smoke");
    assert_eq!(smoke["verdict"], "skip", "{out}");
    let why = smoke["reason"].as_str().unwrap();
    assert!(
        why.contains("set-bitmap-file-refused") && why.contains("EINVAL"),
        "{why}"
    );
    assert_eq!(
        smoke["mdadm"].as_str().unwrap().split(' ').nth(1),
        Some("(host)")
    );
    let crash = result("raid1-internal-bitmap-crash");
    let kernel = &crash["kernel"];
    assert!(
        kernel["release"].as_str().unwrap().starts_with("7.3."),
        "{kernel}"
    );
    let suites: Vec<&str> = kernel["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["suite"].as_str().unwrap())
        .collect();
    assert_eq!(
        suites, ["trixie-backports"; 3],
        "binary, modules, base: {kernel}"
    );
    assert!(
        crash["mdadm"].as_str().unwrap().starts_with("4.6"),
        "{}",
        crash["mdadm"]
    );
    // Whether the kill catches the ordering race is md's timing: the verdict must follow
    // the causes either way.
    let r: xtask::result::CaseResult = serde_json::from_value(crash).unwrap();
    common::passed_or_judged_by_cause(&r);
    assert!(code == 0 || code == 1, "{out}");
}
