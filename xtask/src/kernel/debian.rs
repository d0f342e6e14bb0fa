//! Debian's newest cloud kernel of a series, fetched from the package archive, checked
//! against the archive's sha256 and unpacked into the cache once: 6.12 (the default) and
//! 6.1 from the host's bookworm suites, 6.16 to 7.x from trixie-backports and sid through
//! the bench's private apt configuration ([`Archive::private`]).
//!
//! From 7.x on, the image package is a meta package: `vmlinuz` is in `linux-binary-R`,
//! the modules in `linux-modules-R`, the config in `linux-base-R`.

use super::{Kernel, KernelInfo};
use crate::host::archive::{Archive, Package};
use crate::host::cache::{sha256_file, Cache};
use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// A Debian kernel series, as `--kernel debian:SERIES` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Series {
    pub major: u32,
    pub minor: u32,
}

impl Default for Series {
    fn default() -> Self {
        Series {
            major: 6,
            minor: 12,
        }
    }
}

impl Series {
    /// `6.12`, `7.3`: any series; whether the archive has it is asked when it is fetched.
    pub fn from_name(name: &str) -> Option<Self> {
        let (major, minor) = name.split_once('.')?;
        let num = |s: &str| {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        Some(Series {
            major: num(major)?,
            minor: num(minor)?,
        })
    }

    /// The series a kernel package belongs to (`linux-image-7.3.4+deb13-cloud-amd64`,
    /// `linux-binary-7.3.4+...`, `linux-image-6.1.0-44-cloud-amd64-unsigned`).
    pub fn of_package(package: &str) -> Option<Self> {
        let rest = package
            .strip_prefix("linux-image-")
            .or_else(|| package.strip_prefix("linux-binary-"))?;
        let mut parts = rest.split(['.', '-', '+']);
        Self::from_name(&format!("{}.{}", parts.next()?, parts.next()?))
    }

    pub fn name(self) -> String {
        format!("{}.{}", self.major, self.minor)
    }

    /// bookworm's own series come from the host's apt; the rest from the private
    /// configuration.
    fn on_host(self) -> bool {
        self.major == 6 && matches!(self.minor, 1 | 12)
    }

    /// The image (or, from 7.x, binary) packages of the series' cloud kernels.
    fn package_pattern(self) -> String {
        if self == Series::default() {
            return DEBIAN_PACKAGE_PATTERN.into();
        }
        if (self.major, self.minor) == (6, 1) {
            return r"^linux-image-6\.1\.0-[0-9]+-cloud-amd64-unsigned$".into();
        }
        format!(
            r"^linux-(image|binary)-{}\.{}\.[0-9]+\+deb[0-9]+-cloud-amd64$",
            self.major, self.minor
        )
    }
}

/// The default kernel's family (what `cargo xtask run` boots without `--kernel`).
pub const DEBIAN_PACKAGE_PATTERN: &str = r"^linux-image-6\.12\.[0-9]+\+deb12-cloud-amd64-unsigned$";

pub(super) fn debian(cache: &Cache, series: Series) -> Result<Kernel> {
    let archive = if series.on_host() {
        Ok(Archive::host())
    } else {
        Archive::private(cache)
    };
    let found = archive.and_then(|a| candidates(&a, series).map(|c| (a, c)));
    let (archive, packages) = match found {
        Ok(c) => c,
        Err(e) => {
            // Offline with an old cache: the newest kernel of the series already fetched
            // still serves.
            let family = format!("debian-{}-", series.name());
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
    let key = format!(
        "debian-{}-{}-{}",
        series.name(),
        packages[0].name,
        packages[0].version
    );
    let dir = cache.entry("kernels", &key, |dir| fetch(&archive, &packages, dir))?;
    load_entry(&dir)
}

fn load_entry(dir: &Path) -> Result<Kernel> {
    let info: KernelInfo = serde_json::from_slice(&fs::read(dir.join("kernel.json"))?)
        .with_context(|| format!("read {}/kernel.json", dir.display()))?;
    let config = dir.join("config");
    Ok(Kernel {
        vmlinuz: dir.join("vmlinuz"),
        modules: Some(dir.join("modules").join(&info.release)),
        config: config.is_file().then_some(config),
        build_log: None,
        info,
    })
}

/// The packages that make the series' newest kernel: its image, or from 7.x its binary,
/// modules and base.
fn candidates(archive: &Archive, series: Series) -> Result<Vec<Package>> {
    let pattern = series.package_pattern();
    let names = archive.search(&pattern)?;
    let Some(newest) = newest_package(series, names.iter().map(String::as_str)) else {
        let have = series_in(&archive.search(r"^linux-(image|binary)-[0-9]+\.[0-9]+\.")?);
        bail!(
            "kernel debian:{}: Debian's archive has no cloud kernel of that series (it has {})",
            series.name(),
            have.iter().map(|s| s.name()).collect::<Vec<_>>().join(", ")
        );
    };
    let mut packages = vec![archive.show(&newest)?];
    if let Some(release) = newest.strip_prefix("linux-binary-") {
        for part in ["modules", "base"] {
            packages.push(archive.show(&format!("linux-{part}-{release}"))?);
        }
    }
    Ok(packages)
}

/// The series that kernel packages among `names` belong to, the host's included.
fn series_in(names: &[String]) -> BTreeSet<Series> {
    let mut have: BTreeSet<Series> = names
        .iter()
        .filter(|n| n.contains("-cloud-amd64") && !n.ends_with("-dbg"))
        .filter_map(|n| Series::of_package(n))
        .collect();
    have.extend([Series::default(), Series { major: 6, minor: 1 }]);
    have
}

/// The package of `series` with the highest patch level (the ABI number for 6.1), then
/// the newest Debian release (`+deb14` over `+deb13`) among `names`.
fn newest_package<'a>(series: Series, names: impl Iterator<Item = &'a str>) -> Option<String> {
    // From 7.x the image package of a release is a meta package beside its binary one.
    let order = |n: &str| -> Option<(u32, u32, bool)> {
        let rest = n
            .strip_prefix("linux-image-")
            .or_else(|| n.strip_prefix("linux-binary-"))?;
        let rest = rest.strip_prefix(&format!("{}.{}", series.major, series.minor))?;
        let rest = rest
            .strip_prefix(".0-")
            .or_else(|| rest.strip_prefix('.'))?;
        let digits = |s: &str| -> Option<u32> {
            let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            s[..end].parse().ok()
        };
        let deb = rest.split_once("+deb").and_then(|(_, d)| digits(d));
        Some((
            digits(rest)?,
            deb.unwrap_or(0),
            n.starts_with("linux-binary-"),
        ))
    };
    names
        .filter(|n| Series::of_package(n) == Some(series))
        .filter_map(|n| Some((order(n)?, n)))
        .max()
        .map(|(_, n)| n.to_string())
}

fn fetch(archive: &Archive, packages: &[Package], dir: &Path) -> Result<()> {
    let first = &packages[0];
    eprintln!(
        "fetching kernel {} {} from Debian's {}",
        first.name, first.version, first.suite
    );
    let unpacked = dir.join("unpacked");
    for p in packages {
        archive.unpack(p, dir, &unpacked)?;
    }
    let layout = Unpacked::find(&unpacked)
        .with_context(|| format!("{}: no vmlinuz in the packages", first.name))?;
    fs::rename(&layout.vmlinuz, dir.join("vmlinuz"))?;
    // The config tells cases that need a debug kernel (or a bitmap kind) whether this is one.
    if let Some(config) = &layout.config {
        fs::rename(config, dir.join("config"))?;
    }
    fs::create_dir(dir.join("modules"))?;
    fs::rename(&layout.modules, dir.join("modules").join(&layout.release))?;
    let info = KernelInfo {
        source: "debian".into(),
        vmlinuz_sha256: sha256_file(&dir.join("vmlinuz"))?,
        release: layout.release,
        package: Some(first.name.clone()),
        package_version: Some(first.version.clone()),
        package_sha256: Some(first.sha256.clone()),
        packages: packages.to_vec(),
        build: None,
    };
    fs::write(dir.join("kernel.json"), serde_json::to_vec_pretty(&info)?)?;
    fs::remove_dir_all(&unpacked)?;
    Ok(())
}

/// Where the packages put the kernel: `boot/vmlinuz-R` and `lib/modules/R` (bookworm),
/// or `usr/lib/modules/R/{vmlinuz,config}` (7.x's split packages).
#[derive(Debug)]
struct Unpacked {
    release: String,
    vmlinuz: PathBuf,
    config: Option<PathBuf>,
    modules: PathBuf,
}

impl Unpacked {
    fn find(root: &Path) -> Option<Self> {
        let modules_dir = ["lib/modules", "usr/lib/modules"]
            .iter()
            .map(|d| root.join(d))
            .find(|d| d.is_dir())?;
        let release = fs::read_dir(&modules_dir)
            .ok()?
            .flatten()
            .find(|e| e.path().join("kernel").is_dir())?
            .file_name()
            .to_string_lossy()
            .into_owned();
        let modules = modules_dir.join(&release);
        let boot = root.join("boot");
        let first = |candidates: [PathBuf; 2]| candidates.into_iter().find(|p| p.is_file());
        Some(Unpacked {
            vmlinuz: first([
                boot.join(format!("vmlinuz-{release}")),
                modules.join("vmlinuz"),
            ])?,
            config: first([
                boot.join(format!("config-{release}")),
                modules.join("config"),
            ]),
            modules,
            release,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(name: &str) -> Series {
        Series::from_name(name).unwrap()
    }

    #[test]
    fn newest_package_compares_patch_levels_then_debian_releases_as_numbers() {
        let names = [
            "linux-image-6.12.99+deb12-cloud-amd64-unsigned",
            "linux-image-6.12.117+deb12-cloud-amd64-unsigned",
            "linux-image-6.12.107+deb12-cloud-amd64-unsigned",
        ];
        assert_eq!(
            newest_package(s("6.12"), names.into_iter()).unwrap(),
            names[1]
        );
        assert_eq!(newest_package(s("6.12"), std::iter::empty()), None);
        let old = [
            "linux-image-6.1.0-9-cloud-amd64-unsigned",
            "linux-image-6.1.0-57-cloud-amd64-unsigned",
            "linux-image-6.12.117+deb12-cloud-amd64-unsigned",
        ];
        assert_eq!(newest_package(s("6.1"), old.into_iter()).unwrap(), old[1]);
        let split = [
            "linux-binary-7.2.12+deb13-cloud-amd64",
            "linux-binary-7.2.13+deb14-cloud-amd64",
            "linux-binary-7.2.9+deb13-cloud-amd64",
            "linux-binary-7.3.4+deb13-cloud-amd64",
        ];
        assert_eq!(
            newest_package(s("7.2"), split.into_iter()).unwrap(),
            split[1]
        );
        assert_eq!(
            newest_package(s("7.3"), split.into_iter()).unwrap(),
            split[3]
        );
    }

    #[test]
    fn series_are_named_and_read_from_packages() {
        assert_eq!(Series::default(), s("6.12"));
        assert_eq!(s("7.3").name(), "7.3");
        for bad in ["5", "6.", ".1", "7.x", "debian", "6.12.1"] {
            assert_eq!(Series::from_name(bad), None, "{bad}");
        }
        assert_eq!(
            Series::of_package("linux-image-6.1.0-44-cloud-amd64-unsigned"),
            Some(s("6.1"))
        );
        assert_eq!(
            Series::of_package("linux-binary-7.3.4+deb13-cloud-amd64"),
            Some(s("7.3"))
        );
        assert_eq!(
            Series::of_package("linux-image-6.18.15+deb13-cloud-amd64"),
            Some(s("6.18"))
        );
        assert_eq!(Series::of_package("linux-source-7.3"), None);
        let have = series_in(&[
            "linux-image-6.18.15+deb13-cloud-amd64".into(),
            "linux-binary-7.3.4+deb13-cloud-amd64".into(),
            "linux-image-7.3.4+deb13-cloud-amd64-dbg".into(),
            "linux-binary-7.0.4+deb13-amd64".into(),
        ]);
        let names: Vec<String> = have.iter().map(|s| s.name()).collect();
        assert_eq!(names, ["6.1", "6.12", "6.18", "7.3"]);
    }

    #[test]
    fn both_package_layouts_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old");
        let r = "6.18.15+deb13-cloud-amd64";
        fs::create_dir_all(old.join(format!("usr/lib/modules/{r}/kernel"))).unwrap();
        fs::create_dir_all(old.join("boot")).unwrap();
        fs::write(old.join(format!("boot/vmlinuz-{r}")), b"k").unwrap();
        fs::write(old.join(format!("boot/config-{r}")), b"c").unwrap();
        let u = Unpacked::find(&old).unwrap();
        assert_eq!(u.release, r);
        assert!(u.vmlinuz.ends_with(format!("boot/vmlinuz-{r}")));
        assert!(u.config.unwrap().ends_with(format!("boot/config-{r}")));
        let split = dir.path().join("split");
        let r = "7.3.4+deb13-cloud-amd64";
        let m = split.join(format!("usr/lib/modules/{r}"));
        fs::create_dir_all(m.join("kernel")).unwrap();
        fs::write(m.join("vmlinuz"), b"k").unwrap();
        let u = Unpacked::find(&split).unwrap();
        assert_eq!(u.vmlinuz, m.join("vmlinuz"));
        assert_eq!(u.config, None);
        assert_eq!(u.modules, m);
        assert!(Unpacked::find(dir.path()).is_none());
    }
}
