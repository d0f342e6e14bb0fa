//! Ctrl-C in the middle of `cargo xtask run`: exit status 130, the running case's disk
//! images gone, its plan and results kept, and its QEMU gone with the bench. A SIGKILL
//! cannot clean up: the next run sweeps what it left.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
mod common;

use common::poll;
use std::time::Duration;

fn qemu_children(parent: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let status = std::fs::read_to_string(e.path().join("status")).ok()?;
            let ppid = status
                .lines()
                .find_map(|l| l.strip_prefix("PPid:"))?
                .trim()
                .parse::<u32>()
                .ok()?;
            (ppid == parent && status.contains("qemu-system")).then_some(pid)
        })
        .collect()
}

fn find(dir: &Path, depth: usize, pred: &dyn Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if pred(&p) {
            out.push(p.clone());
        }
        if depth > 0 && p.is_dir() {
            out.extend(find(&p, depth - 1, pred));
        }
    }
    out
}

#[test]
fn ctrl_c_removes_the_running_cases_disks_and_keeps_its_results() {
    interrupted_by(libc::SIGINT, 130);
}

/// What CI sends on cancel and timeout gets what Ctrl-C gets.
#[test]
fn sigterm_removes_the_running_cases_disks_and_keeps_its_results() {
    interrupted_by(libc::SIGTERM, 143);
}

fn interrupted_by(signal: i32, code: i32) {
    let dir = tempfile::tempdir().unwrap();
    let (case, results, tmp) = waiting_case(dir.path());
    let mut child = start_waiting_run(&case, &results, &tmp, Stdio::piped());
    let is_disks = |p: &Path| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("disks-"))
    };
    assert!(
        !find(&results, 2, &is_disks).is_empty(),
        "no disks while running"
    );
    let qemu = qemu_children(child.id());
    unsafe { libc::kill(child.id() as i32, signal) };
    let status = poll(
        Duration::from_secs(30),
        || "the bench did not exit".into(),
        || child.try_wait().unwrap(),
    );
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(code), "{stderr}");
    assert!(
        stderr.contains("interrupted: removed the disk images of 1"),
        "{stderr}"
    );
    assert!(
        find(&results, 2, &is_disks).is_empty(),
        "disk images left behind"
    );
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(
        left.is_empty(),
        "temporary directories left behind: {left:?}"
    );
    assert_eq!(find(&results, 2, &|p| p.ends_with("plan.json")).len(), 1);
    let results_json = find(&results, 2, &|p| p.ends_with("result.json"));
    assert_eq!(results_json.len(), 1);
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&results_json[0]).unwrap()).unwrap();
    assert_eq!(r["verdict"], "interrupted", "{r}");
    wait_gone(&qemu);
}

/// Polls until every one of `qemu` is gone, or a zombie waiting for a reaper not ours.
fn wait_gone(qemu: &[u32]) {
    poll(
        Duration::from_secs(30),
        || format!("QEMU {qemu:?} outlived the bench"),
        || {
            qemu.iter()
                .all(|p| {
                    std::fs::read_to_string(format!("/proc/{p}/stat")).map_or(true, |s| {
                        s.rsplit(") ").next().is_some_and(|r| r.starts_with('Z'))
                    })
                })
                .then_some(())
        },
    );
}

/// A case whose guest waits, its results directory, and a temporary directory for the
/// bench's (to be counted).
fn waiting_case(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let case = dir.join("long.yaml");
    std::fs::write(
        &case,
        "description: a guest that waits\ndisks: [{name: d, size: 64MiB}]\nsteps:\n  - run: {cmd: 'sleep 600', timeout: 15m}\n",
    )
    .unwrap();
    let tmp = dir.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    (case, dir.join("results"), tmp)
}

/// Starts the bench on `case` until its guest is up (the first boot recorded); returns
/// the child.
fn start_waiting_run(
    case: &Path,
    results: &Path,
    tmp: &Path,
    stderr: Stdio,
) -> std::process::Child {
    let child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .env("TMPDIR", tmp)
        .args(["run", case.to_str().unwrap(), "--no-install", "--results"])
        .arg(results)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    poll(
        Duration::from_secs(600),
        || "no booted guest".into(),
        || {
            let booted = find(results, 2, &|p| p.ends_with("result.json"))
                .iter()
                .any(|r| {
                    std::fs::read_to_string(r)
                        .is_ok_and(|t| t.contains("\"boot_ms\"") && !t.contains("\"boot_ms\": []"))
                });
            (booted && !qemu_children(child.id()).is_empty()).then_some(())
        },
    );
    child
}

#[test]
fn what_a_sigkill_leaves_the_next_run_sweeps() {
    let dir = tempfile::tempdir().unwrap();
    let (case, results, tmp) = waiting_case(dir.path());
    let quick = dir.path().join("quick.yaml");
    std::fs::write(
        &quick,
        "description: d\ndisks: []\nsteps:\n  - run: 'true'\n",
    )
    .unwrap();
    let mut child = start_waiting_run(&case, &results, &tmp, Stdio::null());
    let qemu = qemu_children(child.id());
    let pid = child.id();
    child.kill().unwrap(); // SIGKILL: no handler runs
    child.wait().unwrap();
    wait_gone(&qemu);
    let is_disks = |p: &Path| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("disks-"))
    };
    let mine = |p: &Path| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(&format!("mdbb-{pid}-")))
    };
    // What the kill left: the disks and a case still running. The VM's sockets are socket
    // pairs (no directory); a temporary directory of the run's own (an ext4 image's copy,
    // an `exec`'s files) is what a kill at another moment leaves, so one is planted under
    // the dead run's name for the sweep to find.
    assert_eq!(find(&results, 2, &is_disks).len(), 1);
    assert!(
        find(&tmp, 0, &mine).is_empty(),
        "a VM made a temporary directory"
    );
    std::fs::create_dir_all(tmp.join(format!("mdbb-{pid}-ext4-planted/sub"))).unwrap();
    assert_eq!(find(&tmp, 0, &mine).len(), 1);
    let result = find(&results, 2, &|p| p.ends_with("result.json"))[0].clone();
    let verdict = |p: &Path| -> serde_json::Value {
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(p).unwrap()).unwrap()["verdict"]
            .clone()
    };
    assert_eq!(verdict(&result), "running");

    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .env("TMPDIR", &tmp)
        .args(["run", quick.to_str().unwrap(), "--no-install", "--results"])
        .arg(&results)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("swept what killed runs left: 1 running cases marked interrupted")
            && stderr.contains(", 1 temporary directories"),
        "{stderr}"
    );
    assert!(
        find(&results, 2, &is_disks).is_empty(),
        "the killed case's disks stay"
    );
    assert!(
        find(&tmp, 0, &mine).is_empty(),
        "the killed run's temporary directory stays"
    );
    assert_eq!(verdict(&result), "interrupted");
    assert!(
        find(&results, 1, &|p| p.ends_with("owner")).is_empty(),
        "an owner file outlived its run"
    );
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "temporary directories left: {left:?}");
}
