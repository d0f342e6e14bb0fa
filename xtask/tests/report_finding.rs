//! `cargo xtask report finding`, the built binary on a compare run written here as the
//! bench writes one (base/ and patched/, each a run with its summary and case
//! directories): the report it prints, the file `--out` writes, and the one-line errors
//! with exit status 125.

mod common;

use common::xtask;

use serde_json::{json, Value};
use std::path::Path;

fn write(path: &Path, value: &Value) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
}

fn kernel(patched: bool) -> Value {
    if patched {
        json!({
            "source": "debian-source",
            "release": "6.12.118",
            "vmlinuz_sha256": "bbbbbbbbbbbbbbbb",
            "package_version": "6.12.118-1~deb12u1",
            "build": {
                "tree": "/cache/sources/linux",
                "source_key": "debian-6.12.118-1~deb12u1-abc",
                "base": "defconfig",
                "fragments": [],
                "config_sha256": "c0",
                "patches": [{
                    "file": "xtask/src/findings/patches/unplug-ordering-6.12.patch",
                    "sha256": "5e",
                    "subject": "md/md-bitmap: wait for the unplug that writes a caller's bits"
                }],
                "compiler": "gcc",
                "build_seconds": 1
            }
        })
    } else {
        json!({
            "source": "debian",
            "release": "6.12.118+deb12-cloud-amd64",
            "vmlinuz_sha256": "aaaaaaaaaaaaaaaa",
            "package_version": "6.12.118-1~deb12u1"
        })
    }
}

/// The guest's request trace: the data write to chunk 152 goes out before the bitmap
/// write that sets its bit, which an unplug begun earlier sends.
const TRACE: &str = "\
# tracer: nop
              sh-178     [001] .....     5.983483: tracing_mark_write: md-bitmap-bench: load
    kworker/u8:4-110     [001] .N...     6.239265: mdbb_bitmap_unplug: (__bitmap_unplug+0x0/0x1c0 [md_mod])
           agent-187     [001] .....     6.240129: block_rq_issue: 254,0 WS 225280 () 21536 + 440 be,0,4 [agent]
           agent-187     [001] .....     6.240675: block_rq_issue: 254,16 WS 225280 () 21536 + 440 be,0,4 [agent]
    kworker/u8:4-110     [001] .....     6.249067: mdbb_bitmap_write: (filemap_write_page+0x0/0x50 [md_mod])
    kworker/u8:4-110     [001] .....     6.249179: block_rq_issue: 254,0 WSM 512 () 16 + 1 be,0,4 [kworker/u8:4]
    kworker/u8:4-110     [001] .....     6.249231: block_rq_issue: 254,16 WSM 512 () 16 + 1 be,0,4 [kworker/u8:4]
          <idle>-0       [000] d.h2.     6.266226: block_rq_complete: 254,16 WSM () 16 + 1 be,0,4 [0]
          <idle>-0       [001] d.h2.     6.266438: block_rq_complete: 254,16 WS () 21536 + 440 be,0,4 [0]
          <idle>-0       [000] dNH2.     6.269655: block_rq_complete: 254,0 WSM () 16 + 1 be,0,4 [0]
          <idle>-0       [001] dNh2.     6.270160: block_rq_complete: 254,0 WS () 21536 + 440 be,0,4 [0]
";

/// One side of the compare: a power-loss case (showing the race with `states` unsafe
/// states, or XPASS with none) and smoke, which declares nothing.
fn side(dir: &Path, patched: bool, states: u64) {
    let k = kernel(patched);
    let seed = 7660387277089990888u64;
    let case = "raid1-power-loss@internal";
    let explained = json!({
        "chunk": 152, "cause": "ordering",
        "data": {"request": "m0 #0 write 21536+440", "issued_us": 6240129u64, "completed_us": 6270160u64},
        "bitmap": {"request": "m0 #2 write 16+1", "issued_us": 6249179u64, "completed_us": 6269655u64}
    });
    let first = json!({
        "point": 1, "after": "issue of m0 #0 write 21536+440", "uncovered": [152], "divergent": 1,
        "explained": [explained], "survived": {"m0": ["m0 #0 write 21536+440"]}, "lost": {},
        "survivors": [0]
    });
    let report = json!({
        "states_checked": 10591,
        "states_by_cause": if states > 0 { json!({"ordering": states}) } else { json!({}) },
        "first_by_cause": if states > 0 { json!({"ordering": first}) } else { json!({}) },
    });
    let result = |name: &str, verdict: &str, findings: Value| {
        json!({
            "case": name, "dir": name, "file": "cases/x.yaml", "verdict": verdict,
            "seed": seed, "kernel": k, "qemu": "7.2", "accel": "tcg", "image": "i",
            "times": {"boot_ms": [], "guest_ready_uptime_ms": [], "total_ms": 1000},
            "steps": [], "splats": [], "findings": findings,
            "replay": format!("cargo xtask run cases/raid1-power-loss.yaml --seed {seed} --case {name}"),
        })
    };
    let pl = result(
        case,
        if states > 0 { "xfail" } else { "xpass" },
        json!([{"id": "unplug-ordering", "cause": "ordering", "states": states,
                "unit": "states", "declared": true}]),
    );
    let smoke = result("smoke", "pass", json!([]));
    let case_dir = dir.join(case);
    write(&case_dir.join("result.json"), &pl);
    write(&case_dir.join("power-loss.json"), &report);
    write(
        &case_dir.join("plan.json"),
        &json!({"findings": ["unplug-ordering"], "array": {"level": 1, "bitmap": {"kind": "internal"}},
                "power_loss": {"model": "write_through"}}),
    );
    write(
        &case_dir.join("recording.json"),
        &json!({"disks": [
            {"name": "m0", "dev": [254, 0], "log": "disks/m0.wlog", "base": "disks/m0.base.img"},
            {"name": "m1", "dev": [254, 16], "log": "disks/m1.wlog", "base": "disks/m1.base.img"}],
            "members": ["m0", "m1"], "bitmap_file": null}),
    );
    std::fs::write(case_dir.join("rq-trace.txt"), TRACE).unwrap();
    write(&dir.join("smoke/plan.json"), &json!({"findings": []}));
    write(&dir.join("smoke/result.json"), &smoke);
    write(
        &dir.join("summary.json"),
        &json!({
            "bench_version": "v1", "arguments": ["xtask", "compare"],
            "host": {"hostname": "h", "os": "Debian", "cpus": 2, "memory_bytes": 1},
            "accelerator": "tcg", "qemu": "7.2", "kernels": [k], "jobs": 1,
            "started": "2026-12-08T00:00:00Z", "ended": "2026-12-08T00:10:00Z",
            "cases": [pl, smoke],
        }),
    );
}

#[test]
fn the_report_of_a_compare_run_names_its_kernels_trace_and_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("2026-12-08T00-00-00Z");
    side(&run.join("base"), false, 678);
    side(&run.join("patched"), true, 0);
    let run_arg = run.to_str().unwrap();

    let (code, out, err) = xtask(&["report", "finding", "unplug-ordering", run_arg]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("Subject: [BUG] md/md-bitmap: md sends a write's data while"),
        "{out}"
    );
    let row = |tag: &str| -> Vec<String> {
        let line = out
            .lines()
            .find(|l| l.trim_end().ends_with(tag) && l.contains("  "))
            .unwrap_or_else(|| panic!("no row {tag}:\n{out}"));
        line.split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect()
    };
    // Kernel, patches, cases declaring it, showed, clean, other, states, run.
    assert_eq!(
        row("[1]"),
        [
            "6.12.118+deb12-cloud-amd64",
            "-",
            "1",
            "1",
            "0",
            "0",
            "678 / 10,591",
            "[1]"
        ]
    );
    assert_eq!(
        row("[2]"),
        [
            "6.12.118",
            "unplug-ordering-6.12.patch",
            "1",
            "0",
            "1",
            "0",
            "0 / 10,591",
            "[2]"
        ]
    );
    assert!(out.contains(&format!("[1] {run_arg}/base\n")), "{out}");
    assert!(out.contains(&format!("[2] {run_arg}/patched\n")), "{out}");
    // The command the case recorded, and the judge of its recording.
    assert!(out.contains("\n    cargo xtask run cases/raid1-power-loss.yaml --seed 7660387277089990888 --case raid1-power-loss@internal\n"), "{out}");
    // The trace: the data write, then the cut, then the bitmap write.
    let lines: Vec<&str> = out.lines().collect();
    let data = lines
        .iter()
        .position(|l| l.starts_with("  D ") && l.contains("block_rq_issue: 254,0 WS 225280"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        lines[data + 1].contains(
            ">> power cut here: crash point 1, after the issue of m0 #0 write 21536+440 <<"
        ),
        "{out}"
    );
    assert!(lines
        .iter()
        .any(|l| l.starts_with("  B ") && l.contains("block_rq_issue: 254,0 WSM 512 () 16 + 1")));
    // The fix: the patch by name and subject, the figures of both sides, the verdict.
    assert!(
        out.contains("  6.12  xtask/src/findings/patches/unplug-ordering-6.12.patch\n        \"md/md-bitmap: wait for the unplug that writes a caller's bits\""),
        "{out}"
    );
    assert!(
        out.contains("unplug-ordering states: 678 / 10,591 checked on stock [1] -> 0 / 10,591 on patched [2]"),
        "{out}"
    );
    assert!(
        out.contains("on patched [2]: gone 1 (XFAIL -> XPASS 1), still showing 0, not judged 0"),
        "{out}"
    );
    assert!(
        out.contains("other regressions, as compare judges them (2 cases paired): none"),
        "{out}"
    );
    assert!(
        out.contains("Verdict: gone on the patched kernel in these runs"),
        "{out}"
    );

    // --out writes the same text to a file and prints nothing.
    let file = tmp.path().join("report.txt");
    let (code, printed, err) = xtask(&[
        "report",
        "finding",
        "unplug-ordering",
        run_arg,
        "--out",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(printed.is_empty(), "{printed}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), out);
}

#[test]
fn a_patched_side_that_still_shows_it_is_reported_not_fixed() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    side(&run.join("base"), false, 678);
    side(&run.join("patched"), true, 12);
    let (code, out, err) = xtask(&[
        "report",
        "finding",
        "unplug-ordering",
        run.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let verdict = out.lines().find(|l| l.contains("Verdict:")).unwrap();
    assert!(verdict.contains("NOT FIXED"), "{out}");
    assert!(!out.contains("gone on the patched kernel"), "{out}");
}

#[test]
fn an_unknown_finding_or_a_directory_that_is_no_run_is_one_line_and_exit_125() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    side(&run, false, 678);
    let (code, out, err) = xtask(&["report", "finding", "unplug-odering", run.to_str().unwrap()]);
    assert_eq!(code, 125, "{err}");
    assert!(out.is_empty());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("unknown finding `unplug-odering`: the known ones are unplug-ordering, file-bitmap-no-fua"),
        "{err}"
    );

    let not_a_run = tmp.path().join("empty");
    std::fs::create_dir(&not_a_run).unwrap();
    let (code, out, err) = xtask(&[
        "report",
        "finding",
        "unplug-ordering",
        run.to_str().unwrap(),
        not_a_run.to_str().unwrap(),
    ]);
    assert_eq!(code, 125, "{err}");
    assert!(out.is_empty(), "no report when one RUN is not a run");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("{}: not a run directory", not_a_run.display())),
        "{err}"
    );

    // A compare still running (its patched side has no summary yet) says so.
    let running = tmp.path().join("compare");
    side(&running.join("base"), false, 678);
    std::fs::create_dir_all(running.join("patched/smoke")).unwrap();
    let (code, _, err) = xtask(&[
        "report",
        "finding",
        "unplug-ordering",
        running.to_str().unwrap(),
    ]);
    assert_eq!(code, 125, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("a compare run whose patched/ has no summary.json: it did not end"),
        "{err}"
    );
}
