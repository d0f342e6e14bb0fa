//! The README's bisect recipe, run as written from another git tree: `git bisect run`
//! with `cargo run --manifest-path <bench>/Cargo.toml -p xtask -- run ...` over a
//! throwaway repository whose commits differ in the case file the bench runs from it;
//! `git bisect` must name the first commit whose case fails in the guest.

mod common;

use std::path::Path;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=bench", "-c", "user.email=bench@localhost"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "git {args:?}: {text}");
    text
}

const CASE: &str = "description: the guest runs a command\nvm: {memory: 512MiB, cpus: 2, timeout: 2m}\ndisks: []\nsteps:\n  - run: ";

#[test]
fn git_bisect_run_with_the_readmes_recipe_names_the_first_bad_commit() {
    common::bench(); // the kernel and the image in the cache before git bisect starts
    let repo = tempfile::tempdir().unwrap();
    let results = tempfile::tempdir().unwrap();
    let dir = repo.path();
    git(dir, &["init", "-q"]);
    // Commits 0..=7; from commit 5 on, the case's command fails in the guest.
    for i in 0..8 {
        let cmd = if i < 5 { "'true'" } else { "'exit 3'" };
        std::fs::write(dir.join("check.yaml"), format!("{CASE}{cmd}\n")).unwrap();
        std::fs::write(dir.join("n"), i.to_string()).unwrap();
        git(dir, &["add", "."]);
        git(dir, &["commit", "-q", "-m", &format!("commit {i}")]);
    }
    let log = git(dir, &["log", "--format=%H %s"]);
    let first_bad = log
        .lines()
        .find(|l| l.ends_with("commit 5"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    let manifest = common::bench().project.join("Cargo.toml");
    git(dir, &["bisect", "start", "HEAD", "HEAD~7"]);
    let out = Command::new("git")
        .args([
            "bisect",
            "run",
            env!("CARGO"),
            "run",
            "--quiet",
            "--manifest-path",
        ])
        .arg(&manifest)
        .args(["-p", "xtask", "--", "run", "check.yaml", "--results"])
        .arg(results.path())
        .current_dir(dir)
        .output()
        .expect("git bisect run");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("{first_bad} is the first bad commit")),
        "git bisect did not name commit 5 ({first_bad}):\n{text}"
    );
}
