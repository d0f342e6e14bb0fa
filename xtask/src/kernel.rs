//! Acquiring the kernel a run boots: Debian's newest 6.12 cloud kernel from the package
//! archive (cached), a bzImage the user names, with or without a modules tree, or one built
//! from source (`kbuild`).

use crate::cache::{sha256_file, Cache};
use crate::kbuild::{self, Base, BuildInfo, BuildSpec, Source};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Debian package family the default kernel comes from; newer versions replace older
/// ones in the archive, so the newest match is taken and its exact version recorded.
pub const DEBIAN_PACKAGE_PATTERN: &str = r"^linux-image-6\.12\.[0-9]+\+deb12-cloud-amd64-unsigned$";

#[derive(Debug, Clone)]
pub enum KernelSpec {
    Debian,
    BzImage {
        path: PathBuf,
        modules: Option<PathBuf>,
    },
    /// Built from a tree or from Debian's kernel source package, then cached.
    Build(BuildSpec),
}

impl KernelSpec {
    /// A KERNEL argument as `compare` and friends take it: `debian` (the default kernel),
    /// a bzImage file, a kernel tree (built as it is on disk), or `TREE@REV` (that commit
    /// of a git tree). `base` and `fragments` apply to the trees.
    pub fn from_arg(arg: &str, base: Base, fragments: &[PathBuf]) -> Result<Self> {
        if arg == "debian" {
            return Ok(KernelSpec::Debian);
        }
        let build = |source| {
            KernelSpec::Build(BuildSpec {
                source,
                base,
                fragments: fragments.to_vec(),
            })
        };
        let path = Path::new(arg);
        if path.is_file() {
            return Ok(KernelSpec::BzImage {
                path: path.to_path_buf(),
                modules: None,
            });
        }
        if path.is_dir() {
            return Ok(build(Source::Tree(path.to_path_buf())));
        }
        if let Some((tree, rev)) = arg.rsplit_once('@') {
            if Path::new(tree).is_dir() && !rev.is_empty() {
                return Ok(build(Source::TreeRev {
                    tree: tree.into(),
                    rev: rev.into(),
                }));
            }
        }
        bail!("kernel {arg}: neither debian, a bzImage, a kernel tree, nor TREE@REV")
    }
}

#[derive(Debug, Clone)]
pub struct Kernel {
    pub vmlinuz: PathBuf,
    /// `lib/modules/<release>`; `None` when everything the bench needs is built in.
    pub modules: Option<PathBuf>,
    /// The kernel's `.config`, where it is known: kept from the Debian package or the
    /// build, or found beside a given bzImage (or in its build tree).
    pub config: Option<PathBuf>,
    /// The whole build log of a kernel the bench built.
    pub build_log: Option<PathBuf>,
    pub info: KernelInfo,
}

/// What a result records of the kernel it ran on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelInfo {
    pub source: String,
    pub release: String,
    pub vmlinuz_sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package_sha256: Option<String>,
    /// How a kernel built from source was built (source key, fragments, config hash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildInfo>,
}

/// The kernel `spec` names; `install` lets a build apt-get what it lacks (when root).
pub fn acquire(cache: &Cache, spec: &KernelSpec, install: bool) -> Result<Kernel> {
    match spec {
        KernelSpec::Debian => debian(cache),
        KernelSpec::BzImage { path, modules } => given(path, modules.as_deref()),
        KernelSpec::Build(b) => built(cache, b, install),
    }
}

fn built(cache: &Cache, spec: &BuildSpec, install: bool) -> Result<Kernel> {
    let b = kbuild::build(cache, &crate::bench::project_root(), spec, install)?;
    let (package, package_version, package_sha256) = match b.package {
        Some((p, v, s)) => (Some(p), Some(v), Some(s)),
        None => (None, None, None),
    };
    Ok(Kernel {
        config: Some(b.config),
        build_log: Some(b.log),
        info: KernelInfo {
            source: match spec.source {
                Source::Debian { .. } => "debian-source".into(),
                Source::Tree(_) | Source::TreeRev { .. } => "tree".into(),
            },
            release: b.release,
            vmlinuz_sha256: sha256_file(&b.bzimage)?,
            package,
            package_version,
            package_sha256,
            build: Some(b.info),
        },
        vmlinuz: b.bzimage,
        modules: b.modules,
    })
}

fn given(path: &Path, modules: Option<&Path>) -> Result<Kernel> {
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

#[derive(Debug, Clone, PartialEq, Eq)]
struct Candidate {
    package: String,
    version: String,
    sha256: String,
}

fn debian(cache: &Cache) -> Result<Kernel> {
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

    #[test]
    fn a_kernel_argument_is_a_bzimage_a_tree_or_a_tree_at_a_revision() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("bzImage");
        fs::write(&image, b"x").unwrap();
        let arg = |s: &str| KernelSpec::from_arg(s, Base::Tinyconfig, &[]);
        assert!(matches!(
            arg(image.to_str().unwrap()).unwrap(),
            KernelSpec::BzImage { modules: None, .. }
        ));
        let tree = dir.path().to_str().unwrap();
        let KernelSpec::Build(b) = arg(tree).unwrap() else {
            panic!()
        };
        assert_eq!(b.source, Source::Tree(dir.path().into()));
        assert_eq!(b.base, Base::Tinyconfig);
        let KernelSpec::Build(b) = arg(&format!("{tree}@v6.12")).unwrap() else {
            panic!()
        };
        assert_eq!(
            b.source,
            Source::TreeRev {
                tree: dir.path().into(),
                rev: "v6.12".into()
            }
        );
        let err = arg("/no/such").unwrap_err().to_string();
        assert_eq!(
            err,
            "kernel /no/such: neither debian, a bzImage, a kernel tree, nor TREE@REV"
        );
        assert!(matches!(arg("debian"), Ok(KernelSpec::Debian)));
    }

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
