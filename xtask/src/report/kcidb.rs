//! KCIDB JSON (`cargo xtask report kcidb RUN`), what KernelCI's database takes: a checkout
//! and a build per kernel of the run, a test per case (`md_bitmap.<case>`) and one per
//! check (`md_bitmap.<case>.<check>`), with statuses, durations and the result files.
//! Read from the run's `summary.json`, so any finished run can be sent, shards included.

use serde_json::{json, Value};
use std::path::Path;

const ORIGIN: &str = "md_bitmap";

/// A path component KCIDB accepts (`[a-zA-Z0-9_-]+`): `crash-levels@raid5-n3-file.2`
/// becomes `crash-levels_raid5-n3-file_2`.
pub fn path_part(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The KCIDB status of a verdict. KCIDB has no expected failure: an XFAIL is a FAIL with
/// the known finding in `misc`, an XPASS a PASS.
fn status(verdict: &str) -> &'static str {
    match verdict {
        "pass" | "xpass" => "PASS",
        "fail" | "xfail" => "FAIL",
        "skip" => "SKIP",
        "running" => "MISS",
        _ => "ERROR",
    }
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// The KCIDB document of the run in `run_dir`, from its `summary.json` (`summary`).
pub fn render(summary: &Value, run_dir: &Path) -> Value {
    let run = run_dir
        .file_name()
        .map(|n| path_part(&n.to_string_lossy()))
        .unwrap_or_default();
    let mut checkouts = Vec::new();
    let mut builds = Vec::new();
    let empty = vec![];
    let kernels = summary["kernels"].as_array().unwrap_or(&empty);
    let build_id = |k: &Value| {
        format!(
            "{ORIGIN}:{}",
            k["vmlinuz_sha256"].as_str().unwrap_or("unknown")
        )
    };
    for k in kernels {
        let id = build_id(k);
        let mut checkout = json!({
            "id": id,
            "origin": ORIGIN,
            "tree_name": k["source"],
            "start_time": summary["started"],
            "misc": { "release": k["release"], "package": k["package"],
                "package_version": k["package_version"] },
        });
        if let Some(commit) = k["build"]["commit"].as_str() {
            checkout["git_commit_hash"] = json!(commit);
        }
        checkouts.push(checkout);
        let mut build = json!({
            "id": id,
            "checkout_id": id,
            "origin": ORIGIN,
            "architecture": "x86_64",
            "status": "PASS",
            "misc": { "release": k["release"], "vmlinuz_sha256": k["vmlinuz_sha256"],
                "build": k["build"] },
        });
        // A run of several kernels keeps each one's files in its own directory.
        let own = serde_json::from_value::<crate::kernel::KernelInfo>(k.clone())
            .map(|k| run_dir.join(crate::run::kernel_dir_name(&k)))
            .ok()
            .filter(|d| d.is_dir())
            .unwrap_or_else(|| run_dir.to_path_buf());
        if own.join("kernel.config").is_file() {
            build["config_url"] = json!(file_url(&own.join("kernel.config")));
        }
        if own.join("kernel-build.log").is_file() {
            build["log_url"] = json!(file_url(&own.join("kernel-build.log")));
        }
        builds.push(build);
    }
    let mut tests = Vec::new();
    for r in summary["cases"].as_array().unwrap_or(&empty) {
        let name = r["case"].as_str().unwrap_or("case");
        let case_dir = run_dir.join(r["dir"].as_str().unwrap_or(name));
        let case_path = format!("{ORIGIN}.{}", path_part(name));
        let build = build_id(&r["kernel"]);
        // The same case and seed on two kernels are two tests.
        let kernel = r["kernel"]["vmlinuz_sha256"]
            .as_str()
            .and_then(|s| s.get(..12))
            .unwrap_or("unknown");
        let case_id = format!("{ORIGIN}:{run}:{kernel}:{}:{}", path_part(name), r["seed"]);
        let verdict = r["verdict"].as_str().unwrap_or("error");
        let mut outputs =
            vec![json!({"name": "result.json", "url": file_url(&case_dir.join("result.json"))})];
        for log in crate::run::console_logs(&case_dir) {
            if let Some(n) = log.file_name() {
                outputs.push(json!({"name": n.to_string_lossy(), "url": file_url(&log)}));
            }
        }
        let mut test = json!({
            "id": case_id,
            "build_id": build,
            "origin": ORIGIN,
            "path": case_path,
            "status": status(verdict),
            "duration": r["times"]["total_ms"].as_f64().unwrap_or(0.0) / 1000.0,
            "output_files": outputs,
            "misc": { "verdict": verdict, "seed": r["seed"], "replay": r["replay"] },
        });
        // The findings the judge read from the recording, each with its states or chunks.
        if let Some(found) = r["findings"].as_array().filter(|f| !f.is_empty()) {
            test["misc"]["findings"] = json!(found
                .iter()
                .map(|f| json!({
                    "id": f["id"],
                    "cause": f["cause"],
                    "count": f["states"],
                    "unit": f["unit"],
                    "declared": f["declared"],
                }))
                .collect::<Vec<_>>());
        }
        if let Some(reason) = r["reason"].as_str() {
            test["comment"] = json!(reason.lines().next().unwrap_or(""));
            test["log_excerpt"] = json!(reason.chars().take(16 * 1024).collect::<String>());
        }
        if let Some(first) = outputs.get(1) {
            test["log_url"] = first["url"].clone();
        }
        tests.push(test);
        for c in r["checks"].as_array().unwrap_or(&empty) {
            let check = c["name"].as_str().unwrap_or("check");
            tests.push(json!({
                "id": format!("{case_id}:{}", path_part(check)),
                "build_id": build,
                "origin": ORIGIN,
                "path": format!("{case_path}.{}", path_part(check)),
                "status": if c["ok"].as_bool() == Some(true) { "PASS" } else { "FAIL" },
                "comment": c["summary"],
            }));
        }
    }
    json!({
        "version": { "major": 5, "minor": 3 },
        "checkouts": checkouts,
        "builds": builds,
        "tests": tests,
    })
}

/// The document for the run directory `run_dir`.
pub fn of_run(run_dir: &Path) -> anyhow::Result<Value> {
    use anyhow::Context;
    let path = run_dir.join("summary.json");
    let text = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
    let summary: Value =
        serde_json::from_slice(&text).with_context(|| format!("parse {}", path.display()))?;
    anyhow::ensure!(
        summary.is_object(),
        "{}: a summary from an older bench (a bare list of cases); rerun",
        path.display()
    );
    Ok(render(&summary, run_dir))
}

/// The document checked by `kcidb-io`'s own schema validator (PyPI, what KernelCI
/// submitters use).
#[cfg(test)]
mod kcidb_io {
    use super::*;
    use crate::report::files::tests::run_info;
    use crate::report::files::RunInfo;
    use crate::report::ktap::tests::{four_cases, known_failures};

    #[test]
    fn the_document_validates_against_kcidb_io() {
        let dir = tempfile::tempdir().unwrap();
        let run = run_info(vec![four_cases()[0].kernel.clone()]);
        let mut results = four_cases();
        results.extend(known_failures());
        // The same cases and seeds on a second kernel.
        let mut other = four_cases();
        for r in &mut other {
            r.kernel.release = "6.1.0-57-cloud-amd64".into();
            r.kernel.vmlinuz_sha256 = "fe69a84e207e2ff5e842".into();
        }
        let run = RunInfo {
            kernels: vec![results[0].kernel.clone(), other[0].kernel.clone()],
            ..run
        };
        results.extend(other);
        let summary = serde_json::to_value(run.summary(&results)).unwrap();
        let doc = render(&summary, dir.path());
        let tests = doc["tests"].as_array().unwrap();
        // A test per case and one per check.
        let checks: usize = results.iter().map(|r| r.checks.len()).sum();
        assert_eq!(tests.len(), results.len() + checks);
        let ids: std::collections::BTreeSet<&str> =
            tests.iter().map(|t| t["id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), tests.len(), "every test's id is its own");
        assert_eq!(doc["builds"].as_array().unwrap().len(), 2);
        let status = |path: &str| {
            tests
                .iter()
                .find(|t| t["path"] == path)
                .map(|t| t["status"].as_str().unwrap().to_string())
                .unwrap_or_else(|| panic!("no {path}"))
        };
        assert_eq!(status("md_bitmap.crash-levels_raid6-n4-file"), "FAIL");
        assert_eq!(
            status("md_bitmap.crash-levels_raid6-n4-file.safety"),
            "FAIL"
        );
        assert_eq!(status("md_bitmap.raid1-file-bitmap-crash-failslab"), "SKIP");
        assert_eq!(status("md_bitmap.smoke"), "ERROR");
        assert_eq!(status("md_bitmap.raid1-power-loss_internal"), "PASS");
        let file = dir.path().join("kcidb.json");
        std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();
        let script = "import json, sys, kcidb_io\n\
            data = json.load(open(sys.argv[1]))\n\
            kcidb_io.schema.LATEST.validate(data)\n\
            print('VALID', kcidb_io.schema.LATEST.major, kcidb_io.schema.LATEST.minor, len(data['tests']))\n";
        let text = crate::report::python(
            script,
            &[file.as_os_str()],
            "kcidb-io (pip install kcidb-io; CI installs it)",
        );
        assert!(
            text.contains(&format!("VALID 5 3 {}", tests.len())),
            "{text}"
        );
    }
}
