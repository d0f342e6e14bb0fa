//! Two `cargo xtask run` at once on one machine, one cache and one results directory, as a
//! CI runner with two jobs has them: from an empty cache, both fetch the kernel, build the
//! image and save a guest under the cache's locks, both runs pass, and neither removes
//! the other's files.

use std::process::{Command, Stdio};

#[test]
fn two_runs_on_an_empty_cache_at_once_both_pass_and_keep_their_results() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let results = dir.path().join("results");
    let case = dir.path().join("quick.yaml");
    std::fs::write(
        &case,
        "description: d\ndisks: [{name: d, size: 64MiB}]\nsteps:\n  - run: 'test -b $DISK_d'\n",
    )
    .unwrap();
    let start = || {
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .env("MDBB_CACHE", &cache)
            .args(["run", case.to_str().unwrap(), "--no-install", "--results"])
            .arg(&results)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (start(), start());
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let runs: Vec<_> = std::fs::read_dir(&results)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(runs.len(), 2, "{runs:?}");
    for run in &runs {
        let summary: serde_json::Value =
            serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
        assert_eq!(
            summary["counts"],
            serde_json::json!({"PASS": 1}),
            "{summary}"
        );
        assert!(run.join("quick/result.json").is_file());
        assert!(!run.join("owner").exists());
    }
    // Every cache entry is whole: no partial directory is left beside one.
    for kind in std::fs::read_dir(&cache).unwrap().flatten() {
        for e in std::fs::read_dir(kind.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(!name.contains(".partial-"), "left: {}", e.path().display());
        }
    }
}
