//! The candidate fixes in xtask/src/findings/patches/ as a maintainer would receive them:
//! the kernel's own scripts/checkpatch.pl passes each, and the 6.12 ones apply to Debian's
//! linux-source-6.12 (the others apply to 7.3, which the patched VM builds show).
//!
//! checkpatch.pl and drivers/md come from the host's /usr/src/linux-source-6.12.tar.xz
//! (CI installs it for the kernel build test).

use std::path::{Path, PathBuf};
use std::process::Command;

fn patches() -> Vec<PathBuf> {
    let dir = xtask::kernel::patch::project_patches(&xtask::host::project_root());
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "patch"))
        .collect();
    v.sort();
    assert!(v.len() >= 4, "{v:?}");
    v
}

/// checkpatch.pl, its data files and drivers/md of Debian's 6.12 source, unpacked once.
fn source_612() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let tarball = Path::new("/usr/src/linux-source-6.12.tar.xz");
        assert!(
            tarball.is_file(),
            "{}: apt-get install linux-source-6.12",
            tarball.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("tar")
            .args(["-xJf"])
            .arg(tarball)
            .arg("-C")
            .arg(dir.path())
            .args(["--strip-components=1", "--wildcards"])
            .args([
                "*/scripts/checkpatch.pl",
                "*/scripts/spelling.txt",
                "*/scripts/const_structs.checkpatch",
                "*/drivers/md/*",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
    .path()
}

/// checkpatch.pl as the test runs it. Debian's source is no git tree: the commit ids a
/// message cites cannot be looked up, so that one check is left out.
fn checkpatch(src: &Path, patch: &Path) -> (bool, String) {
    let out = Command::new("perl")
        .arg(src.join("scripts/checkpatch.pl"))
        .args(["--no-tree", "--ignore", "UNKNOWN_COMMIT_ID"])
        .arg(patch)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success(), text)
}

/// One test, so the tarball is unpacked once for both halves (nextest runs each test in
/// a process of its own).
#[test]
fn every_candidate_patch_passes_checkpatch_and_a_bad_one_does_not() {
    let src = source_612();
    for p in patches() {
        let (ok, text) = checkpatch(src, &p);
        assert!(
            ok && text.contains("total: 0 errors, 0 warnings"),
            "{}:\n{text}",
            p.display()
        );
    }
    // The check above can fail: a patch with a trailing space and no sign-off does.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.patch");
    std::fs::write(
        &bad,
        "From: a <a@b.c>\nSubject: [PATCH] md: x\n\n---\n--- a/drivers/md/md.c\n+++ b/drivers/md/md.c\n@@ -1,1 +1,2 @@\n #include <linux/x.h>\n+int x; \n",
    )
    .unwrap();
    assert!(!checkpatch(src, &bad).0);
}

#[test]
fn the_6_12_patches_apply_to_debians_6_12_source() {
    let src = source_612();
    let six12: Vec<PathBuf> = patches()
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with("-6.12.patch"))
        .collect();
    assert!(six12.len() >= 3, "{six12:?}");
    for p in six12 {
        let out = Command::new("patch")
            .current_dir(src)
            .args(["-p1", "--dry-run", "--batch", "--forward", "-F0", "-i"])
            .arg(&p)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            p.display(),
            String::from_utf8_lossy(&out.stdout)
        );
    }
}
