//! Debian's newest 6.12 cloud kernel, fetched from the package archive with `apt-get
//! download`, checked against the archive's sha256 and unpacked into the cache once.

use super::{Kernel, KernelInfo};
use crate::host::cache::{sha256_file, Cache};
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::Path;
use std::process::Command;

/// The Debian package family the default kernel comes from; newer versions replace older
/// ones in the archive, so the newest match is taken and its exact version recorded.
pub const DEBIAN_PACKAGE_PATTERN: &str = r"^linux-image-6\.12\.[0-9]+\+deb12-cloud-amd64-unsigned$";

#[derive(Debug, Clone, PartialEq, Eq)]
struct Candidate {
    package: String,
    version: String,
    sha256: String,
}

pub(super) fn debian(cache: &Cache) -> Result<Kernel> {
    let candidate = match debian_candidate() {
        Ok(c) => c,
        Err(e) => {
            // Offline with an old cache: the newest kernel already fetched still serves.
            if let Some(dir) = cache.entries("kernels").into_iter().find(|d| {
                d.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("debian-"))
            }) {
                eprintln!("note: {e:#}; using the cached {}", dir.display());
                return load_entry(&dir);
            }
            return Err(e);
        }
    };
    // `-cfg`: entries that keep the package's config (older ones did not).
    let key = format!("debian-{}-{}-cfg", candidate.package, candidate.version);
    let dir = cache.entry("kernels", &key, |dir| fetch_debian(&candidate, dir))?;
    load_entry(&dir)
}

fn load_entry(dir: &Path) -> Result<Kernel> {
    let info: KernelInfo = serde_json::from_slice(&fs::read(dir.join("kernel.json"))?)
        .with_context(|| format!("read {}/kernel.json", dir.display()))?;
    let config = dir.join("config");
    Ok(Kernel {
        vmlinuz: dir.join("vmlinuz"),
        modules: Some(dir.join("modules").join(&info.release)),
        // Entries from before the config was kept have none.
        config: config.is_file().then_some(config),
        build_log: None,
        info,
    })
}

fn debian_candidate() -> Result<Candidate> {
    let out = Command::new("apt-cache")
        .args(["search", "--names-only", DEBIAN_PACKAGE_PATTERN])
        .output()
        .context("run apt-cache (is this Debian?)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let package = newest_package(text.lines().filter_map(|l| l.split_whitespace().next()))
        .with_context(|| format!("no Debian package matches {DEBIAN_PACKAGE_PATTERN} in the apt lists (run `apt-get update`, or pass --kernel)"))?;
    let out = Command::new("apt-cache")
        .args(["show", "--no-all-versions", &package])
        .output()
        .context("run apt-cache show")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": ")))
            .map(|v| v.trim().to_string())
            .with_context(|| format!("apt-cache show {package}: no {name} field"))
    };
    Ok(Candidate {
        version: field("Version")?,
        sha256: field("SHA256")?,
        package,
    })
}

/// The package with the highest 6.12.N among `names`.
fn newest_package<'a>(names: impl Iterator<Item = &'a str>) -> Option<String> {
    let patch = |n: &str| -> Option<u32> {
        n.strip_prefix("linux-image-6.12.")?
            .split('+')
            .next()?
            .parse()
            .ok()
    };
    names
        .filter_map(|n| Some((patch(n)?, n)))
        .max()
        .map(|(_, n)| n.to_string())
}

fn fetch_debian(c: &Candidate, dir: &Path) -> Result<()> {
    eprintln!(
        "fetching kernel {} {} from the Debian archive",
        c.package, c.version
    );
    let status = Command::new("apt-get")
        .args(["download", "-q", &format!("{}={}", c.package, c.version)])
        .current_dir(dir)
        .status()
        .context("run apt-get download")?;
    if !status.success() {
        bail!(
            "apt-get download {}={} failed ({status}): no Debian archive reachable?",
            c.package,
            c.version
        );
    }
    let deb = fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .context("apt-get download wrote no .deb")?;
    let sha = sha256_file(&deb)?;
    if sha != c.sha256 {
        bail!(
            "{}: sha256 {sha} differs from the archive's {}",
            deb.display(),
            c.sha256
        );
    }
    let unpacked = dir.join("unpacked");
    let status = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&unpacked)
        .status()
        .context("run dpkg-deb")?;
    if !status.success() {
        bail!("dpkg-deb -x {} failed ({status})", deb.display());
    }
    let boot = unpacked.join("boot");
    let vmlinuz = fs::read_dir(&boot)?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .with_context(|| format!("{} has no boot/vmlinuz-*", deb.display()))?;
    let release = vmlinuz.file_name().unwrap().to_string_lossy()["vmlinuz-".len()..].to_string();
    fs::rename(&vmlinuz, dir.join("vmlinuz"))?;
    // The config tells cases that need a debug kernel whether this is one.
    let config = boot.join(format!("config-{release}"));
    if config.is_file() {
        fs::rename(&config, dir.join("config"))?;
    }
    fs::create_dir(dir.join("modules"))?;
    fs::rename(
        unpacked.join("lib/modules").join(&release),
        dir.join("modules").join(&release),
    )?;
    let info = KernelInfo {
        source: "debian".into(),
        vmlinuz_sha256: sha256_file(&dir.join("vmlinuz"))?,
        release,
        package: Some(c.package.clone()),
        package_version: Some(c.version.clone()),
        package_sha256: Some(sha),
        build: None,
    };
    fs::write(dir.join("kernel.json"), serde_json::to_vec_pretty(&info)?)?;
    fs::remove_dir_all(&unpacked)?;
    fs::remove_file(&deb)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_package_compares_patch_levels_as_numbers() {
        let names = [
            "linux-image-6.12.99+deb12-cloud-amd64-unsigned",
            "linux-image-6.12.117+deb12-cloud-amd64-unsigned",
            "linux-image-6.12.107+deb12-cloud-amd64-unsigned",
        ];
        assert_eq!(newest_package(names.into_iter()).unwrap(), names[1]);
        assert_eq!(newest_package(std::iter::empty()), None);
    }
}
