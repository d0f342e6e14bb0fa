//! The bench's cache outside the checkout (`$MDBB_CACHE`, else `$XDG_CACHE_HOME/md-bitmap-bench`,
//! else `~/.cache/md-bitmap-bench`), shared by runs, tests and CI jobs on one machine.
//!
//! An entry is built in a temporary directory beside its final place and renamed into place
//! only when whole, under a lock, so that a failed or interrupted build never leaves
//! something that looks complete and two processes never build the same entry at once.

use anyhow::{Context, Result};
use std::fs::{self, File};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The cache the environment names, as described in the module docs.
    pub fn from_env() -> Result<Self> {
        if let Some(dir) = std::env::var_os("MDBB_CACHE") {
            return Ok(Self::new(dir));
        }
        let base = match std::env::var_os("XDG_CACHE_HOME") {
            Some(dir) => PathBuf::from(dir),
            None => PathBuf::from(
                std::env::var_os("HOME")
                    .context("neither MDBB_CACHE, XDG_CACHE_HOME nor HOME is set")?,
            )
            .join(".cache"),
        };
        Ok(Self::new(base.join("md-bitmap-bench")))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The complete entry `kind/key`, built by `build` into an empty directory if it is not
    /// there yet.
    pub fn entry(
        &self,
        kind: &str,
        key: &str,
        build: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<PathBuf> {
        let dir = self.root.join(kind);
        let done = dir.join(key);
        if done.exists() {
            return Ok(done);
        }
        fs::create_dir_all(&dir)
            .with_context(|| format!("create cache directory {}", dir.display()))?;
        let lock_path = dir.join(format!(".{key}.lock"));
        let lock =
            File::create(&lock_path).with_context(|| format!("create {}", lock_path.display()))?;
        lock.lock()
            .with_context(|| format!("lock {}", lock_path.display()))?;
        // Another process may have finished it while we waited for the lock.
        if done.exists() {
            return Ok(done);
        }
        // Partial entries of builders that were killed: theirs is the pid in the name.
        let partial = format!(".{key}.partial-");
        for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name
                .strip_prefix(&partial)
                .and_then(|r| r.split('-').next())
            {
                if !super::owner::alive(pid) {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
        let tmp = tempfile::Builder::new()
            .prefix(&format!("{partial}{}-", std::process::id()))
            .tempdir_in(&dir)
            .with_context(|| format!("create a temporary directory in {}", dir.display()))?;
        // A signal mid-build removes the partial entry too.
        let _registered = super::scratch::register(tmp.path());
        build(tmp.path()).with_context(|| format!("build cache entry {kind}/{key}"))?;
        fs::rename(tmp.path(), &done)
            .with_context(|| format!("move {} into place", done.display()))?;
        // The rename consumed the directory; keep TempDir from deleting the new name's source.
        let _ = tmp.keep();
        Ok(done)
    }

    /// Complete entries of a kind, newest first.
    pub fn entries(&self, kind: &str) -> Vec<PathBuf> {
        let mut found: Vec<(std::time::SystemTime, PathBuf)> = fs::read_dir(self.root.join(kind))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        found.sort_by_key(|e| std::cmp::Reverse(e.0));
        found.into_iter().map(|(_, p)| p).collect()
    }
}

/// Hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

/// Hex sha256 of a file's content.
pub fn sha256_file(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut file = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = std::io::Read::read(&mut file, &mut buf)
            .with_context(|| format!("read {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_build_leaves_no_entry_and_a_later_build_completes_it() {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::new(root.path());
        let err = cache
            .entry("k", "key", |dir| {
                fs::write(dir.join("half"), b"x")?;
                anyhow::bail!("boom")
            })
            .unwrap_err();
        assert!(format!("{err:#}").contains("boom"));
        assert!(!root.path().join("k/key").exists());
        assert!(
            cache.entries("k").is_empty(),
            "a partial build must not be listed"
        );

        let mut calls = 0;
        for _ in 0..2 {
            let p = cache
                .entry("k", "key", |dir| {
                    calls += 1;
                    Ok(fs::write(dir.join("whole"), b"y")?)
                })
                .unwrap();
            assert_eq!(fs::read(p.join("whole")).unwrap(), b"y");
        }
        assert_eq!(calls, 1, "the second lookup must reuse the entry");
    }
}
