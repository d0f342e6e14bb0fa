//! A bzImage the user names, with or without a modules tree: its release read from the
//! image's setup header, its config looked for beside it.

use super::{Kernel, KernelInfo};
use crate::host::cache::sha256_file;
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};

pub(super) fn given(path: &Path, modules: Option<&Path>) -> Result<Kernel> {
    // The version string lives in the setup code, which can run to (setup_sects + 1) * 512
    // bytes: 64 KiB covers the largest.
    let head = read_head(path, 0x10000)?;
    let release = bzimage_release(&head)
        .with_context(|| format!("--kernel {}: not a bzImage", path.display()))?;
    let modules = modules.map(modules_tree).transpose()?;
    let vmlinuz = path.canonicalize()?;
    Ok(Kernel {
        config: config_beside(&vmlinuz),
        build_log: None,
        vmlinuz,
        modules,
        info: KernelInfo {
            source: "bzimage".into(),
            release,
            vmlinuz_sha256: sha256_file(path)?,
            package: None,
            package_version: None,
            package_sha256: None,
            packages: vec![],
            build: None,
        },
    })
}

/// A given bzImage's config: `config` or `.config` beside it, or, for the
/// `arch/x86/boot/bzImage` of a build tree, the tree's `.config`.
fn config_beside(vmlinuz: &Path) -> Option<PathBuf> {
    let dir = vmlinuz.parent()?;
    let mut candidates = vec![dir.join("config"), dir.join(".config")];
    if dir.ends_with("arch/x86/boot") {
        candidates.push(dir.parent()?.parent()?.parent()?.join(".config"));
    }
    candidates.into_iter().find(|p| p.is_file())
}

fn read_head(path: &Path, len: usize) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::with_capacity(len);
    fs::File::open(path)
        .with_context(|| format!("--kernel {}", path.display()))?
        .take(len as u64)
        .read_to_end(&mut buf)?;
    Ok(buf)
}

/// The kernel release from an x86 boot header: checks the boot signature and `HdrS`, then
/// follows `kernel_version` (offset 0x20e, relative to 0x200) to the version string.
pub fn bzimage_release(head: &[u8]) -> Result<String> {
    if head.len() < 0x210 {
        bail!(
            "file is {} bytes, shorter than an x86 boot header",
            head.len()
        );
    }
    if head[0x1fe..0x200] != [0x55, 0xaa] {
        bail!("no boot signature 55 aa at offset 0x1fe");
    }
    if &head[0x202..0x206] != b"HdrS" {
        bail!("no \"HdrS\" setup header magic at offset 0x202");
    }
    let ptr = u16::from_le_bytes([head[0x20e], head[0x20f]]) as usize + 0x200;
    let text = head
        .get(ptr..)
        .and_then(|t| t.split(|&b| b == 0).next())
        .filter(|t| !t.is_empty())
        .context("kernel_version string lies outside the setup code read")?;
    let text = String::from_utf8_lossy(text);
    Ok(text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string())
}

/// Accepts `lib/modules/<release>` itself or a directory holding exactly one such tree.
pub fn modules_tree(dir: &Path) -> Result<PathBuf> {
    let is_tree = |d: &Path| d.join("kernel").is_dir() || d.join("modules.order").is_file();
    if is_tree(dir) {
        return Ok(dir.canonicalize()?);
    }
    let nested = dir.join("lib/modules");
    let found: Vec<PathBuf> = fs::read_dir(&nested)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| is_tree(p))
        .collect();
    match found.as_slice() {
        [one] => Ok(one.canonicalize()?),
        [] => bail!("--modules {}: not a modules tree (no kernel/ or modules.order, nor lib/modules/<release>/ under it)", dir.display()),
        _ => bail!("--modules {}: holds several releases under lib/modules; name one", dir.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(version: &str) -> Vec<u8> {
        let mut h = vec![0u8; 0x1000];
        h[0x1fe] = 0x55;
        h[0x1ff] = 0xaa;
        h[0x202..0x206].copy_from_slice(b"HdrS");
        let at = 0x400;
        h[0x20e..0x210].copy_from_slice(&((at - 0x200) as u16).to_le_bytes());
        h[at..at + version.len()].copy_from_slice(version.as_bytes());
        h
    }

    #[test]
    fn bzimage_release_reads_the_version_string() {
        let h = header("6.12.117+deb12-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP");
        assert_eq!(bzimage_release(&h).unwrap(), "6.12.117+deb12-cloud-amd64");
    }

    #[test]
    fn bzimage_release_rejects_what_is_not_a_bzimage() {
        let mut h = header("6.12.0");
        h[0x202] = b'X';
        assert!(bzimage_release(&h)
            .unwrap_err()
            .to_string()
            .contains("HdrS"));
        let mut h = header("6.12.0");
        h[0x1fe] = 0;
        assert!(bzimage_release(&h)
            .unwrap_err()
            .to_string()
            .contains("boot signature"));
        assert!(bzimage_release(b"#!/bin/sh\n")
            .unwrap_err()
            .to_string()
            .contains("shorter"));
    }
}
