//! Debian's newest cloud kernel of a series (6.12 from bookworm-backports, the default;
//! 6.1, bookworm's own), fetched from the package archive with `apt-get download`,
//! checked against the archive's sha256 and unpacked into the cache once.

use super::{Kernel, KernelInfo};
use crate::host::cache::{sha256_file, Cache};
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::Path;
use std::process::Command;

/// A Debian kernel series, as `--kernel debian:SERIES` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Series {
    /// `linux-image-6.12.N+deb12-cloud-amd64-unsigned` (bookworm-backports).
    #[default]
    V6_12,
    /// `linux-image-6.1.0-N-cloud-amd64-unsigned` (bookworm).
    V6_1,
}

impl Series {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "6.12" => Some(Series::V6_12),
            "6.1" => Some(Series::V6_1),
            _ => None,
        }
    }

    /// The series a package of the archive belongs to.
    pub fn of_package(package: &str) -> Option<Self> {
        [Series::V6_12, Series::V6_1]
            .into_iter()
            .find(|s| package.starts_with(s.number_prefix()))
    }

    pub fn name(self) -> &'static str {
        match self {
            Series::V6_12 => "6.12",
            Series::V6_1 => "6.1",
        }
    }

    /// The package family: newer versions replace older ones in the archive, so the
    /// newest match is taken and its exact version recorded.
    pub fn package_pattern(self) -> &'static str {
        match self {
            Series::V6_12 => r"^linux-image-6\.12\.[0-9]+\+deb12-cloud-amd64-unsigned$",
            Series::V6_1 => r"^linux-image-6\.1\.0-[0-9]+-cloud-amd64-unsigned$",
        }
    }

    /// What precedes the number that orders the family's packages (6.12's patch level,
    /// 6.1's ABI number).
    fn number_prefix(self) -> &'static str {
        match self {
            Series::V6_12 => "linux-image-6.12.",
            Series::V6_1 => "linux-image-6.1.0-",
        }
    }
}

/// The default kernel's family (what `cargo xtask run` boots without `--kernel`).
pub const DEBIAN_PACKAGE_PATTERN: &str = r"^linux-image-6\.12\.[0-9]+\+deb12-cloud-amd64-unsigned$";

#[derive(Debug, Clone, PartialEq, Eq)]
struct Candidate {
    package: String,
    version: String,
    sha256: String,
}

pub(super) fn debian(cache: &Cache, series: Series) -> Result<Kernel> {
    let candidate = match debian_candidate(series) {
        Ok(c) => c,
        Err(e) => {
            // Offline with an old cache: the newest kernel of the series already fetched
            // still serves.
            let family = format!("debian-{}", series.number_prefix());
            if let Some(dir) = cache.entries("kernels").into_iter().find(|d| {
                d.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(&family))
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

fn debian_candidate(series: Series) -> Result<Candidate> {
    let pattern = series.package_pattern();
    let out = Command::new("apt-cache")
        .args(["search", "--names-only", pattern])
        .output()
        .context("run apt-cache (is this Debian?)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let package = newest_package(series, text.lines().filter_map(|l| l.split_whitespace().next()))
        .with_context(|| format!("no Debian package matches {pattern} in the apt lists (run `apt-get update`, or pass another --kernel)"))?;
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

/// The package of `series` with the highest number (6.12.N, 6.1.0-N) among `names`.
fn newest_package<'a>(series: Series, names: impl Iterator<Item = &'a str>) -> Option<String> {
    let patch = |n: &str| -> Option<u32> {
        let rest = n.strip_prefix(series.number_prefix())?;
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        rest[..digits].parse().ok()
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
        assert_eq!(
            newest_package(Series::V6_12, names.into_iter()).unwrap(),
            names[1]
        );
        assert_eq!(newest_package(Series::V6_12, std::iter::empty()), None);
        let old = [
            "linux-image-6.1.0-9-cloud-amd64-unsigned",
            "linux-image-6.1.0-57-cloud-amd64-unsigned",
            "linux-image-6.12.117+deb12-cloud-amd64-unsigned",
        ];
        assert_eq!(
            newest_package(Series::V6_1, old.into_iter()).unwrap(),
            old[1]
        );
        assert_eq!(Series::from_name("6.1"), Some(Series::V6_1));
        assert_eq!(Series::of_package(old[0]), Some(Series::V6_1));
        assert_eq!(Series::of_package(names[0]), Some(Series::V6_12));
        assert_eq!(Series::from_name("5.10"), None);
    }
}
