//! `--patch FILE`: patches applied to a kernel source before it is built.
//!
//! A patch is a plain unified diff or a `git format-patch` mail; GNU patch reads both (it
//! skips the mail's headers). Each is tried with `--dry-run` first, so a patch that does not
//! apply leaves no half-patched tree, and the failure is told as one line naming the file
//! and the hunk. The patched tree is a cache entry of its own: the stock tree hard-linked
//! (patch writes a new file for every one it changes, so the stock tree stays as it was)
//! with the patches applied, keyed by the stock source and the patches' contents.

use crate::host::cache::sha256_hex;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What a result records of a patch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchInfo {
    /// As given, relative to the checkout when it is the project's own.
    pub file: PathBuf,
    pub sha256: String,
    /// The mail's subject, `[PATCH]` tags dropped; none for a plain diff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// A patch read and hashed, ready to apply.
#[derive(Debug, Clone)]
pub struct Patch {
    pub path: PathBuf,
    pub text: Vec<u8>,
    pub info: PatchInfo,
}

/// Where the project keeps its candidate fixes: `--patch NAME` finds `NAME.patch` there.
pub fn project_patches(project: &Path) -> PathBuf {
    project.join("xtask/src/findings/patches")
}

/// Reads a `--patch` argument: a file, or the name of one of the project's patches.
pub fn read(project: &Path, arg: &Path) -> Result<Patch> {
    let path = if arg.is_file() {
        arg.canonicalize()?
    } else {
        let name = arg.to_string_lossy();
        let own =
            project_patches(project).join(format!("{}.patch", name.trim_end_matches(".patch")));
        if name.contains('/') || !own.is_file() {
            bail!(
                "--patch {}: no such file (nor {})",
                arg.display(),
                own.strip_prefix(project).unwrap_or(&own).display()
            );
        }
        own
    };
    let text = fs::read(&path).with_context(|| format!("--patch {}", arg.display()))?;
    if !text.windows(4).any(|w| w == b"\n+++") && !text.starts_with(b"+++") {
        bail!(
            "--patch {}: not a patch (no `+++` file header)",
            arg.display()
        );
    }
    let info = PatchInfo {
        file: path.strip_prefix(project).unwrap_or(&path).to_path_buf(),
        sha256: sha256_hex(&text),
        subject: subject(&String::from_utf8_lossy(&text)),
    };
    Ok(Patch { path, text, info })
}

/// The subject of a mail, without its `[PATCH ...]` tag.
fn subject(text: &str) -> Option<String> {
    let line = text
        .lines()
        .take_while(|l| !l.starts_with("diff ") && !l.starts_with("--- "))
        .find_map(|l| l.strip_prefix("Subject:"))?
        .trim();
    let line = match line.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map_or(line, |(_, s)| s.trim()),
        None => line,
    };
    Some(line.to_string())
}

/// Applies `patch` to `tree`, or says which hunk of which file does not apply.
pub fn apply(tree: &Path, patch: &Patch) -> Result<()> {
    let run = |dry: bool| -> Result<(bool, String)> {
        let mut c = Command::new("patch");
        c.current_dir(tree)
            // No fuzz, as `git apply`: a patch whose context moved is for another tree.
            .args([
                "-p1",
                "--batch",
                "--forward",
                "--no-backup-if-mismatch",
                "-F0",
                "-i",
            ])
            .arg(&patch.path);
        if dry {
            c.arg("--dry-run");
        }
        crate::host::echo::command(&c);
        let out = c.output().context("run patch (Debian package patch)")?;
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        Ok((out.status.success(), text))
    };
    for dry in [true, false] {
        let (ok, out) = run(dry)?;
        if !ok {
            bail!(
                "--patch {}: {}",
                patch.info.file.display(),
                failure(&out).unwrap_or_else(|| out.trim().replace('\n', "; "))
            );
        }
    }
    Ok(())
}

/// The first thing GNU patch could not do, as one line.
fn failure(out: &str) -> Option<String> {
    let mut file = "?".to_string();
    for line in out.lines() {
        if let Some(f) = line
            .strip_prefix("patching file ")
            .or_else(|| line.strip_prefix("checking file "))
        {
            file = f.trim_matches('\'').to_string();
        } else if let Some(rest) = line.strip_prefix("Hunk #") {
            if let Some((n, at)) = rest.split_once(" FAILED at ") {
                return Some(format!(
                    "hunk #{n} of {file} does not apply (at line {})",
                    at.trim_end_matches('.')
                ));
            }
        } else if line.contains("Reversed (or previously applied) patch detected") {
            return Some(format!(
                "{file} is already patched (the patch is applied, or reversed)"
            ));
        } else if line.starts_with("can't find file to patch") {
            return Some("a file it patches is not in the tree (wrong -p level or tree)".into());
        } else if line.contains("Only garbage was found") {
            return Some("not a patch".into());
        }
    }
    None
}

/// The files a patch changes, relative to the tree (`-p1`: the `+++ b/...` names).
pub fn files(patch: &Patch) -> Vec<PathBuf> {
    String::from_utf8_lossy(&patch.text)
        .lines()
        .filter_map(|l| l.strip_prefix("+++ "))
        .map(|name| name.split('\t').next().unwrap_or(name).trim())
        .filter(|name| *name != "/dev/null")
        .filter_map(|name| name.split_once('/').map(|(_, rest)| PathBuf::from(rest)))
        .collect()
}

/// The key a patched source adds to its stock one: every patch's content, in order.
pub fn key(patches: &[Patch]) -> String {
    let mut all = Vec::new();
    for p in patches {
        all.extend_from_slice(p.info.sha256.as_bytes());
        all.push(0);
    }
    sha256_hex(&all)[..16].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_hunk_is_named_with_its_file_and_line() {
        let out =
            "checking file drivers/md/md.c\nHunk #2 FAILED at 7819.\n1 out of 2 hunks FAILED\n";
        assert_eq!(
            failure(out).unwrap(),
            "hunk #2 of drivers/md/md.c does not apply (at line 7819)"
        );
        let out = "patching file drivers/md/md-bitmap.c\nReversed (or previously applied) patch detected!  Skipping patch.\n";
        assert!(failure(out)
            .unwrap()
            .starts_with("drivers/md/md-bitmap.c is already patched"));
        assert!(failure("can't find file to patch at input line 5\n")
            .unwrap()
            .contains("not in the tree"));
        assert_eq!(
            failure("patch: **** Only garbage was found in the patch input.\n").unwrap(),
            "not a patch"
        );
    }

    #[test]
    fn a_mail_subject_loses_its_tag_and_a_plain_diff_has_none() {
        let mail = "From 1234 Mon Sep 17 00:00:00 2001\nSubject: [PATCH v2 1/2] md: fix it\n\nbody\n---\ndiff --git a/x b/x\n";
        assert_eq!(subject(mail).as_deref(), Some("md: fix it"));
        assert_eq!(subject("--- a/x\n+++ b/x\nSubject: no\n"), None);
    }

    /// The real GNU patch on a tree made in the test: applied, refused whole when one
    /// hunk does not apply, and the stock file a hard link shared stays as it was.
    #[test]
    fn a_patch_applies_or_leaves_the_tree_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let stock = dir.path().join("stock");
        let tree = dir.path().join("tree");
        fs::create_dir_all(stock.join("d")).unwrap();
        fs::write(stock.join("d/a.c"), "one\ntwo\nthree\n").unwrap();
        fs::write(stock.join("d/b.c"), "x\ny\nz\n").unwrap();
        fs::create_dir_all(tree.join("d")).unwrap();
        for f in ["d/a.c", "d/b.c"] {
            fs::hard_link(stock.join(f), tree.join(f)).unwrap();
        }
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            fs::write(&p, text).unwrap();
            read(dir.path(), &p).unwrap()
        };
        let good = write(
            "good.patch",
            "Subject: [PATCH] d: two\n---\n--- a/d/a.c\n+++ b/d/a.c\n@@ -1,3 +1,3 @@\n one\n-two\n+TWO\n three\n",
        );
        assert_eq!(good.info.subject.as_deref(), Some("d: two"));
        apply(&tree, &good).unwrap();
        assert_eq!(
            fs::read_to_string(tree.join("d/a.c")).unwrap(),
            "one\nTWO\nthree\n"
        );
        assert_eq!(
            fs::read_to_string(stock.join("d/a.c")).unwrap(),
            "one\ntwo\nthree\n"
        );

        let half = write(
            "half.patch",
            "--- a/d/b.c\n+++ b/d/b.c\n@@ -1,3 +1,3 @@\n x\n-y\n+Y\n z\n--- a/d/a.c\n+++ b/d/a.c\n@@ -1,3 +1,3 @@\n one\n-nine\n+NINE\n three\n",
        );
        // One changed line of context: GNU patch's default fuzz would take it.
        let fuzzy = write(
            "fuzzy.patch",
            "--- a/d/b.c\n+++ b/d/b.c\n@@ -1,3 +1,3 @@\n X\n-y\n+Y\n z\n",
        );
        let err = apply(&tree, &fuzzy).unwrap_err().to_string();
        assert!(err.contains("hunk #1 of d/b.c does not apply"), "{err}");
        let err = apply(&tree, &half).unwrap_err().to_string();
        assert_eq!(
            err,
            "--patch half.patch: hunk #1 of d/a.c does not apply (at line 1)"
        );
        assert_eq!(fs::read_to_string(tree.join("d/b.c")).unwrap(), "x\ny\nz\n");
        assert!(apply(&tree, &good)
            .unwrap_err()
            .to_string()
            .contains("already patched"));
        assert_eq!(
            files(&half),
            [PathBuf::from("d/b.c"), PathBuf::from("d/a.c")]
        );
        assert_ne!(key(std::slice::from_ref(&good)), key(&[good, half]));
        assert!(read(dir.path(), Path::new("nope"))
            .unwrap_err()
            .to_string()
            .contains("no such file"));
    }
}
