//! The bench killed at seeded random moments of real runs of `smoke`, with SIGINT, SIGTERM
//! and SIGKILL in turn: after each, no QEMU of the run is left, and (for the two signals
//! it handles) no temporary directory of it, no disk image outside a failed case's kept
//! directory, no partial cache entry of it, and no `result.json` that does not parse or
//! still says `running`. What a SIGKILL leaves, the next run sweeps; a last whole run
//! checks that nothing of any killed run is left at all.
//!
//! `MDBB_KILLS` (default 30, what CI runs; xtask/docs/reliability.md reports 100 by hand) and
//! `MDBB_KILL_SEED` (default below; printed) choose the kills.

mod common;

use common::processes_naming;

use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DEFAULT_SEED: u64 = 20261202;

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        out.push(p.clone());
        if depth > 0 && p.is_dir() && !p.is_symlink() {
            walk(&p, depth - 1, out);
        }
    }
}

fn named(dir: &Path, depth: usize, pred: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut all = Vec::new();
    walk(dir, depth, &mut all);
    all.into_iter()
        .filter(|p| p.file_name().is_some_and(|n| pred(&n.to_string_lossy())))
        .collect()
}

/// The run directories under `results`.
fn runs(results: &Path) -> Vec<PathBuf> {
    named(results, 0, |_| true)
}

/// What must hold of the run directories `results`, `tmp` and the cache once a run
/// handled its signal (or, with `pid` None, once every killed run was swept): `what`
/// names the moment.
fn assert_clean(
    results: &[PathBuf],
    tmp: &Path,
    cache: &Path,
    pid: Option<u32>,
    killed: &[u32],
    what: &str,
) {
    let within = |depth, pred: &dyn Fn(&str) -> bool| -> Vec<PathBuf> {
        results.iter().flat_map(|r| named(r, depth, pred)).collect()
    };
    let mut kept = Vec::new();
    for r in within(2, &|n| n == "result.json") {
        let text = std::fs::read(&r).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&text)
            .unwrap_or_else(|e| panic!("{what}: {} does not parse: {e}", r.display()));
        assert_ne!(v["verdict"], "running", "{what}: {}", r.display());
        if let Some(k) = v["kept_disks"].as_str() {
            kept.push(PathBuf::from(k));
        }
    }
    let disks: Vec<_> = within(2, &|n| n.starts_with("disks-"))
        .into_iter()
        .filter(|d| !kept.contains(d))
        .collect();
    assert!(disks.is_empty(), "{what}: disk images left: {disks:?}");
    let prefix = pid.map(|p| format!("mdbb-{p}-"));
    let temp = named(tmp, 0, |n| {
        prefix.as_ref().is_none_or(|p| n.starts_with(p.as_str()))
    });
    assert!(
        temp.is_empty(),
        "{what}: temporary directories left: {temp:?}"
    );
    // The cache is shared with the tests running beside this one: only the killed
    // runs' own partial entries count.
    let partials = named(cache, 1, |n| {
        killed.iter().any(|p| n.contains(&format!(".partial-{p}-")))
    });
    assert!(
        partials.is_empty(),
        "{what}: partial cache entries: {partials:?}"
    );
    if pid.is_none() {
        let owners = within(0, &|n| n == "owner");
        assert!(
            owners.is_empty(),
            "{what}: owner files outlived their runs: {owners:?}"
        );
    }
}

fn start(results: &Path, tmp: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .env("TMPDIR", tmp)
        .args(["run", "smoke", "--no-install", "--results"])
        .arg(results)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn runs_killed_at_seeded_random_moments_leave_nothing_behind() {
    let kills: usize = std::env::var("MDBB_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let seed: u64 = std::env::var("MDBB_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    eprintln!("{kills} kills, seed {seed} (MDBB_KILLS, MDBB_KILL_SEED)");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let (results, tmp) = (dir.path().join("results"), dir.path().join("tmp"));
    std::fs::create_dir(&tmp).unwrap();
    let cache = xtask::host::cache::Cache::from_env()
        .unwrap()
        .root()
        .to_path_buf();
    // A whole run first: the saved guest and the image exist, so the kills land in what a
    // run does, not in building the cache (a cold cache is the concurrency test's).
    let warm = start(&results, &tmp).wait_with_output().unwrap();
    assert_eq!(
        warm.status.code(),
        Some(0),
        "the smoke case must pass first"
    );
    let mut landed = [0usize; 3];
    let mut ended_first = 0;
    let mut killed = Vec::new();
    for i in 0..kills {
        let (signal, code) = [
            (libc::SIGINT, 130),
            (libc::SIGTERM, 143),
            (libc::SIGKILL, -1),
        ][i % 3];
        // A smoke run takes 5-10 s here: the kills fall before its boot, in it, in its
        // steps, and in its ending.
        let at = Duration::from_millis(rng.random_range(0..9_000));
        let before = runs(&results);
        let mut child = start(&results, &tmp);
        let pid = child.id();
        let started = Instant::now();
        while started.elapsed() < at && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(5));
        }
        let what = format!("kill {i} (signal {signal} at {at:?}, seed {seed})");
        if child.try_wait().unwrap().is_some() {
            ended_first += 1;
            continue;
        }
        unsafe { libc::kill(pid as i32, signal) };
        let status = child.wait().unwrap();
        landed[i % 3] += 1;
        use std::os::unix::process::ExitStatusExt;
        match signal {
            libc::SIGKILL => assert_eq!(status.signal(), Some(libc::SIGKILL), "{what}"),
            // The handler is there from the run's first moment; a signal that lands before
            // the bench even parsed its arguments kills it as the default action would.
            _ => assert!(
                status.code() == Some(code) || status.signal() == Some(signal),
                "{what}: {status:?}"
            ),
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = processes_naming(&results);
            if left.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: still running after 20 s: {left:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        killed.push(pid);
        if signal != libc::SIGKILL {
            // Its own run only: what an earlier SIGKILL left waits for a run that gets as
            // far as its sweep.
            let mine: Vec<PathBuf> = runs(&results)
                .into_iter()
                .filter(|r| !before.contains(r))
                .collect();
            assert_clean(&mine, &tmp, &cache, Some(pid), &[pid], &what);
        }
    }
    eprintln!(
        "landed: {} SIGINT, {} SIGTERM, {} SIGKILL; {ended_first} runs ended before their kill",
        landed[0], landed[1], landed[2]
    );
    assert!(
        landed.iter().all(|&n| n * 3 >= kills / 2),
        "too few kills landed: {landed:?}"
    );
    // The next whole run sweeps what the SIGKILLs left.
    let last = start(&results, &tmp).wait_with_output().unwrap();
    assert_eq!(last.status.code(), Some(0));
    assert_clean(
        &runs(&results),
        &tmp,
        &cache,
        None,
        &killed,
        "after the sweeping run",
    );
}
