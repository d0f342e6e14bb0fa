//! Acquiring the kernel a run boots: Debian's newest 6.12 cloud kernel from the package
//! archive (cached), a bzImage the user names, with or without a modules tree, or one built
//! from source (`kbuild`).

pub mod build;
mod bzimage;
pub mod config;
mod debian;
pub mod patch;

pub use bzimage::{bzimage_release, modules_tree};
pub use debian::{Series, DEBIAN_PACKAGE_PATTERN};

use crate::host::cache::{sha256_file, Cache};
use crate::kernel::build::{self as kbuild, Base, BuildInfo, BuildSpec, Source};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub enum KernelSpec {
    /// Debian's newest cloud kernel of a series.
    Debian(Series),
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
    pub fn from_arg(
        arg: &str,
        base: Base,
        fragments: &[PathBuf],
        patches: &[PathBuf],
    ) -> Result<Self> {
        let build = |source| {
            KernelSpec::Build(BuildSpec {
                source,
                base,
                fragments: fragments.to_vec(),
                patches: patches.to_vec(),
            })
        };
        if let Some(series) = arg.strip_prefix("debian-source:") {
            return Ok(build(Source::Debian {
                series: series.into(),
            }));
        }
        if !patches.is_empty() {
            // Only a source can be patched; say so before fetching anything.
            let path = Path::new(arg);
            if arg == "debian" || arg.starts_with("debian:") || path.is_file() {
                bail!("kernel {arg}: --patch needs a source to patch (a tree, TREE@REV or debian-source:SERIES), not a built kernel");
            }
        }
        if arg == "debian" {
            return Ok(KernelSpec::Debian(Series::default()));
        }
        if let Some(name) = arg.strip_prefix("debian:") {
            return Series::from_name(name)
                .map(KernelSpec::Debian)
                .with_context(|| {
                    format!(
                        "kernel {arg}: expected debian:SERIES, such as debian:6.1 or debian:7.3"
                    )
                });
        }
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
        bail!("kernel {arg}: neither debian[:SERIES], debian-source:SERIES, a bzImage, a kernel tree, nor TREE@REV")
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
    /// Every package the kernel came from, with its suite (from 7.x: binary, modules,
    /// base).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<crate::host::archive::Package>,
    /// How a kernel built from source was built (source key, fragments, config hash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildInfo>,
}

/// The kernel `spec` names; `install` lets a build apt-get what it lacks (when root).
pub fn acquire(cache: &Cache, spec: &KernelSpec, install: bool) -> Result<Kernel> {
    match spec {
        KernelSpec::Debian(series) => debian::debian(cache, *series),
        KernelSpec::BzImage { path, modules } => bzimage::given(path, modules.as_deref()),
        KernelSpec::Build(b) => built(cache, b, install),
    }
}

fn built(cache: &Cache, spec: &BuildSpec, install: bool) -> Result<Kernel> {
    let b = kbuild::build(cache, &crate::host::project_root(), spec, install)?;
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
            packages: vec![],
            build: Some(b.info),
        },
        vmlinuz: b.bzimage,
        modules: b.modules,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn a_kernel_argument_is_a_bzimage_a_tree_or_a_tree_at_a_revision() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("bzImage");
        fs::write(&image, b"x").unwrap();
        let arg = |s: &str| KernelSpec::from_arg(s, Base::Tinyconfig, &[], &[]);
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
            "kernel /no/such: neither debian[:SERIES], debian-source:SERIES, a bzImage, a kernel tree, nor TREE@REV"
        );
        let KernelSpec::Build(b) = arg("debian-source:7.3").unwrap() else {
            panic!()
        };
        assert_eq!(
            b.source,
            Source::Debian {
                series: "7.3".into()
            }
        );
        let patched =
            |s: &str| KernelSpec::from_arg(s, Base::Tinyconfig, &[], &["fix.patch".into()]);
        assert!(patched("debian:6.12")
            .unwrap_err()
            .to_string()
            .contains("needs a source"));
        let KernelSpec::Build(b) = patched(tree).unwrap() else {
            panic!()
        };
        assert_eq!(b.patches, vec![PathBuf::from("fix.patch")]);
        assert!(matches!(
            arg("debian"),
            Ok(KernelSpec::Debian(s)) if s == Series::default()
        ));
        assert!(matches!(
            arg("debian:7.3"),
            Ok(KernelSpec::Debian(Series { major: 7, minor: 3 }))
        ));
        assert!(arg("debian:7.x")
            .unwrap_err()
            .to_string()
            .contains("debian:7.3"));
    }
}
