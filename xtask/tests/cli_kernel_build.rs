//! Bad input to the kernel build at the command line: one clear line naming what is wrong,
//! exit status 125 (cannot test), and no cache entry that looks complete.

mod common;

use common::processes_naming;
use std::process::Command;

fn xtask(args: &[&str], cache: Option<&std::path::Path>) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.args(args);
    if let Some(c) = cache {
        cmd.env("MDBB_CACHE", c);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The error line (clap and the bench both start theirs with `error:`).
fn error_line(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or(stderr)
}

#[test]
fn a_directory_that_is_not_a_kernel_tree_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let (code, err) = xtask(
        &[
            "kernel",
            "build",
            "--tree",
            dir.path().to_str().unwrap(),
            "--no-install",
        ],
        Some(&cache),
    );
    assert_eq!(code, 125, "{err}");
    assert_eq!(
        error_line(&err),
        format!(
            "error: --tree {}: not a kernel source tree (no Makefile, Kconfig, scripts/kconfig/merge_config.sh)",
            dir.path().display()
        )
    );
    assert!(!cache.join("builds").exists(), "nothing cached");
    // `run --tree` refuses it the same way, before anything boots.
    let (code, err) = xtask(
        &[
            "run",
            "smoke",
            "--tree",
            dir.path().to_str().unwrap(),
            "--no-install",
            "--results",
            dir.path().join("r").to_str().unwrap(),
        ],
        Some(&cache),
    );
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("not a kernel source tree"), "{err}");
}

#[test]
fn a_missing_fragment_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = xtask(
        &[
            "kernel",
            "build",
            "--debian-source",
            "6.12",
            "--config",
            "no-such.config",
            "--no-install",
        ],
        Some(&dir.path().join("cache")),
    );
    assert_eq!(code, 125, "{err}");
    assert_eq!(
        error_line(&err),
        "error: --config no-such.config: no such file (nor kernel-configs/no-such.config)"
    );
}

#[test]
fn a_malformed_fragment_line_is_named_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let frag = dir.path().join("bad.config");
    std::fs::write(&frag, "CONFIG_MD=y\nMD_RAID1=y\n").unwrap();
    let (code, err) = xtask(
        &[
            "kernel",
            "build",
            "--debian-source",
            "6.12",
            "--config",
            frag.to_str().unwrap(),
            "--no-install",
        ],
        Some(&dir.path().join("cache")),
    );
    assert_eq!(code, 125, "{err}");
    assert!(
        error_line(&err).contains(&format!(
            "{}:2: `MD_RAID1=y` is neither CONFIG_NAME=VALUE",
            frag.display()
        )),
        "{err}"
    );
}

/// A real merge in Debian's 6.12 source (unpacked into the bench's cache once, shared with
/// the VM test): the typo'd option is named as such, the unmet one as a dependency, and
/// the failed configuration leaves neither a build entry nor an object directory.
#[test]
fn a_fragment_with_a_typo_names_the_option() {
    if !std::path::Path::new("/usr/src/linux-source-6.12.tar.xz").exists() {
        eprintln!("skipped: linux-source-6.12 is not installed (.ci/run installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let frag = dir.path().join("typo.config");
    std::fs::write(
        &frag,
        "CONFIG_MD=y\nCONFIG_BLK_DEV_MD=y\nCONFIG_MD_RAID5=y\nCONFIG_PVH=y\n",
    )
    .unwrap();
    let cache = xtask::host::cache::Cache::from_env().unwrap();
    let builds_before = cache.entries("builds");
    let kbuild_before = std::fs::read_dir(cache.root().join("kbuild"))
        .map(|d| d.count())
        .unwrap_or(0);
    let (code, err) = xtask(
        &[
            "kernel",
            "build",
            "--debian-source",
            "6.12",
            "--base",
            "tinyconfig",
            "--config",
            frag.to_str().unwrap(),
            "--no-install",
        ],
        None,
    );
    assert_eq!(code, 125, "{err}");
    let line = error_line(&err);
    assert!(
        line.contains("2 of the requested options did not take effect")
            && line.contains(&format!(
                "CONFIG_MD_RAID5 ({}:3) is not an option of this tree's Kconfig (a typo?)",
                frag.display()
            ))
            && line.contains("CONFIG_PVH=y (")
            && line.contains("(a dependency is off?)"),
        "{err}"
    );
    assert_eq!(
        cache.entries("builds"),
        builds_before,
        "no entry for a failed configuration"
    );
    let kbuild_after = std::fs::read_dir(cache.root().join("kbuild"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(
        kbuild_after, kbuild_before,
        "no object directory left behind"
    );
}

#[test]
fn sigterm_during_a_kernel_build_exits_143_and_leaves_no_partial_entry_or_child() {
    let tarball = std::path::Path::new("/usr/src/linux-source-6.12.tar.xz");
    assert!(
        tarball.is_file(),
        "{} is missing: apt-get install linux-source-6.12 (CI installs it)",
        tarball.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args([
            "run",
            "smoke",
            "--debian-source",
            "6.12",
            "--base",
            "tinyconfig",
        ])
        .args(["--no-install", "--results"])
        .arg(dir.path().join("results"))
        .env("MDBB_CACHE", &cache)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let partials = |kind: &str| -> Vec<String> {
        std::fs::read_dir(cache.join(kind))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".partial-"))
            .collect()
    };
    // Signalled while it unpacks the source, the first thing a build from it does.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while partials("sources").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no partial source entry within 120 s"
        );
        assert!(child.try_wait().unwrap().is_none(), "the run ended first");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert_eq!(partials("sources"), Vec::<String>::new());
    assert_eq!(partials("builds"), Vec::<String>::new());
    // tar dies with the bench (PR_SET_PDEATHSIG), shortly after it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let left = processes_naming(&cache);
        if left.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running 20 s after the bench exited: {left:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
