//! Building a kernel from source: a checkout (`--tree`), one commit of it (`tree@rev`), or
//! Debian's `linux-source-<series>` package (`--debian-source`) unpacked into the cache.
//!
//! A base configuration (`defconfig` + the tree's `kvm_guest.config`, or `tinyconfig` +
//! `kernel-configs/tiny.config`) gets the fragments merged in with the tree's own
//! `scripts/kconfig/merge_config.sh`, then `make olddefconfig`; every option a fragment
//! asked for must then be in the final `.config` (see `kconfig`), or the build stops naming
//! the ones that are not. The build runs out of tree (`O=`) in an object directory kept per
//! source directory and configuration: the next state of a `--tree` checkout builds
//! incrementally, while each `tree@rev` export and each Debian source version is a directory
//! of its own and builds from scratch. The
//! result (bzImage, modules, `.config`, the whole build log) is a cache entry keyed by the
//! source (commit, content hash, or package tarball checksum), the fragments and the
//! toolchain, so an unchanged request never builds twice and a failed build leaves no entry.

use crate::host::archive::Archive;
use crate::host::cache::{sha256_file, Cache};
use crate::host::{self, Tool};
use crate::kernel::config as kconfig;
use crate::kernel::patch::{self, Patch, PatchInfo};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where the kernel source comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A kernel tree as it is on disk, uncommitted changes included.
    Tree(PathBuf),
    /// One revision of a git tree, exported (`git archive`) into the cache.
    TreeRev { tree: PathBuf, rev: String },
    /// Debian's `linux-source-<series>` package (`/usr/src/linux-source-<series>.tar.xz`).
    Debian { series: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Base {
    /// `make defconfig` + the tree's `kvm_guest.config`.
    Defconfig,
    /// `make tinyconfig` + `kernel-configs/tiny.config`: the smallest kernel that boots the
    /// bench's guest.
    Tinyconfig,
}

impl Base {
    pub fn as_str(self) -> &'static str {
        match self {
            Base::Defconfig => "defconfig",
            Base::Tinyconfig => "tinyconfig",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSpec {
    pub source: Source,
    pub base: Base,
    /// Fragments merged in order after the base; `kernel-configs/md.config` when empty.
    pub fragments: Vec<PathBuf>,
    /// Patches applied in order to the source before the build (`--patch`).
    pub patches: Vec<PathBuf>,
}

/// What a build records of itself, in the entry (`build.json`) and in every result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildInfo {
    /// The tree as given (for `--debian-source`, the unpacked tree in the cache).
    pub tree: PathBuf,
    /// `git-<commit>`, `git-<commit>-dirty-<hash>`, `files-<hash>` or
    /// `debian-<version>-<sha256>`: what the cache key says of the source.
    pub source_key: String,
    pub base: Base,
    /// The fragments as merged, in order (`tiny.config` included for a tinyconfig base).
    pub fragments: Vec<PathBuf>,
    pub config_sha256: String,
    /// The patches applied to the source, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patches: Vec<PatchInfo>,
    /// First line of `gcc --version`, with `(ccache)` when ccache wrapped it.
    pub compiler: String,
    pub build_seconds: u64,
}

/// A finished build in the cache.
#[derive(Debug, Clone)]
pub struct Built {
    pub bzimage: PathBuf,
    /// `lib/modules/<release>` when the configuration has modules.
    pub modules: Option<PathBuf>,
    pub config: PathBuf,
    pub log: PathBuf,
    pub release: String,
    pub info: BuildInfo,
    /// The Debian package the source came from: name, version, tarball sha256.
    pub package: Option<(String, String, String)>,
}

/// What a kernel build needs on the host.
const BUILD_NEEDS: &[Tool] = &[
    Tool {
        command: "make",
        package: "make",
    },
    Tool {
        command: "gcc",
        package: "gcc",
    },
    Tool {
        command: "flex",
        package: "flex",
    },
    Tool {
        command: "bison",
        package: "bison",
    },
    Tool {
        command: "bc",
        package: "bc",
    },
    Tool {
        command: "/usr/include/libelf.h",
        package: "libelf-dev",
    },
    Tool {
        command: "/usr/include/openssl/ssl.h",
        package: "libssl-dev",
    },
];

/// Unpacks Debian's source tarball.
const XZ: Tool = Tool {
    command: "xz",
    package: "xz-utils",
};

fn ensure_build_tools(install: bool, xz: bool) -> Result<()> {
    let mut needs = BUILD_NEEDS.to_vec();
    if xz {
        needs.push(XZ);
    }
    host::ensure_tools("kernel build tools", &needs, install)
}

/// Checks that `dir` is a kernel source tree, naming what is missing.
pub fn check_tree(dir: &Path) -> Result<PathBuf> {
    if !dir.is_dir() {
        bail!("--tree {}: no such directory", dir.display());
    }
    let missing: Vec<&str> = ["Makefile", "Kconfig", "scripts/kconfig/merge_config.sh"]
        .into_iter()
        .filter(|f| !dir.join(f).is_file())
        .collect();
    if !missing.is_empty() {
        bail!(
            "--tree {}: not a kernel source tree (no {})",
            dir.display(),
            missing.join(", ")
        );
    }
    dir.canonicalize()
        .with_context(|| format!("--tree {}", dir.display()))
}

fn git(tree: &Path, args: &[&str]) -> Result<Vec<u8>> {
    let out = Command::new("git")
        .arg("-C")
        .arg(tree)
        .args(args)
        .output()
        .context("run git")?;
    if !out.status.success() {
        bail!(
            "git {} in {}: {}",
            args.join(" "),
            tree.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

fn hex16(h: Sha256) -> String {
    hex::encode(h.finalize())[..16].to_string()
}

/// What identifies a tree's content: its commit when clean; the commit plus a hash of the
/// diff and the untracked files when dirty; a hash of every file's path, size and mtime
/// when it is not a git checkout (cheap on a 70k-file tree; a copy only costs a rebuild).
pub fn tree_key(tree: &Path) -> Result<String> {
    let is_git = git(tree, &["rev-parse", "--is-inside-work-tree"])
        .is_ok_and(|out| out.starts_with(b"true"));
    if is_git {
        let head = String::from_utf8(git(tree, &["rev-parse", "HEAD"])?)?
            .trim()
            .to_string();
        let status = git(tree, &["status", "--porcelain"])?;
        if status.is_empty() {
            return Ok(format!("git-{head}"));
        }
        let mut h = Sha256::new();
        h.update(git(tree, &["diff", "HEAD", "--binary"])?);
        let untracked = git(tree, &["ls-files", "-z", "--others", "--exclude-standard"])?;
        for name in untracked.split(|&b| b == 0).filter(|n| !n.is_empty()) {
            h.update(name);
            h.update(
                fs::read(tree.join(String::from_utf8_lossy(name).as_ref())).unwrap_or_default(),
            );
        }
        return Ok(format!("git-{head}-dirty-{}", hex16(h)));
    }
    let mut h = Sha256::new();
    let mut stack = vec![tree.to_path_buf()];
    let mut files = Vec::new();
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).with_context(|| format!("read {}", dir.display()))? {
            let e = e?;
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let t = e.file_type()?;
            if t.is_dir() {
                stack.push(e.path());
            } else {
                let m = e.metadata()?;
                let mtime = m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .unwrap_or_default();
                files.push((e.path(), m.len(), mtime.as_nanos()));
            }
        }
    }
    files.sort();
    for (p, len, mtime) in files {
        h.update(
            p.strip_prefix(tree)
                .unwrap_or(&p)
                .to_string_lossy()
                .as_bytes(),
        );
        h.update(len.to_le_bytes());
        h.update(mtime.to_le_bytes());
    }
    Ok(format!("files-{}", hex16(h)))
}

/// A fragment argument: a file, or a name in `kernel-configs/` (`debug`, `debug.config`).
pub fn resolve_fragment(project: &Path, arg: &Path) -> Result<PathBuf> {
    if arg.is_file() {
        return Ok(arg.canonicalize()?);
    }
    let name = arg.to_string_lossy();
    if !name.contains('/') {
        for candidate in [name.to_string(), format!("{name}.config")] {
            let p = project.join("kernel-configs").join(candidate);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    bail!(
        "--config {}: no such file (nor kernel-configs/{}.config)",
        arg.display(),
        name.trim_end_matches(".config")
    )
}

/// The fragments a spec merges, in order: tiny.config first for a tinyconfig base, then
/// the ones given, or md.config when none was.
pub fn fragment_list(project: &Path, spec: &BuildSpec) -> Result<Vec<PathBuf>> {
    let configs = project.join("kernel-configs");
    let mut out = Vec::new();
    if spec.base == Base::Tinyconfig {
        out.push(configs.join("tiny.config"));
    }
    if spec.fragments.is_empty() {
        out.push(configs.join("md.config"));
    }
    for f in &spec.fragments {
        out.push(resolve_fragment(project, f)?);
    }
    Ok(out)
}

/// A source ready to build: the tree, its key, and the package it came from if any.
#[derive(Debug)]
struct Prepared {
    tree: PathBuf,
    key: String,
    label: String,
    package: Option<(String, String, String)>,
    /// The stock tree of a patched one, when the bench owns it: the patched build starts
    /// from a copy of the object directory the stock tree keeps inside.
    stock: Option<PathBuf>,
    /// Whether the bench owns the tree (a cache entry): its object directory lives inside
    /// it, so the build's command lines name the source as `..` and read the same in a
    /// patched copy.
    owned: bool,
}

fn prepare_source(cache: &Cache, source: &Source, install: bool) -> Result<Prepared> {
    match source {
        Source::Tree(dir) => {
            let tree = check_tree(dir)?;
            let key = tree_key(&tree)?;
            Ok(Prepared {
                label: tree
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "tree".into()),
                tree,
                key,
                package: None,
                stock: None,
                owned: false,
            })
        }
        Source::TreeRev { tree, rev } => {
            let tree = check_tree(tree)?;
            let commit = String::from_utf8(
                git(
                    &tree,
                    &["rev-parse", "--verify", &format!("{rev}^{{commit}}")],
                )
                .with_context(|| format!("{}@{rev}: no such revision", tree.display()))?,
            )?
            .trim()
            .to_string();
            let entry = cache.entry("sources", &format!("git-{commit}"), |dir| {
                let mut progress = Progress::start("export");
                let export = format!(
                    "git -C '{}' archive --format=tar {commit} | tar -x -C '{}'",
                    tree.display(),
                    dir.display()
                );
                run_logged(
                    Command::new("sh").args(["-c", &export]),
                    &dir.join(".export.log"),
                    &mut progress,
                    "git archive",
                )?;
                fs::remove_file(dir.join(".export.log"))?;
                progress.finish();
                Ok(())
            })?;
            Ok(Prepared {
                tree: entry,
                key: format!("git-{commit}"),
                label: format!("{}-{}", rev.replace('/', "_"), &commit[..12]),
                package: None,
                stock: None,
                owned: true,
            })
        }
        Source::Debian { series } => debian_source(cache, series, install),
    }
}

fn debian_source(cache: &Cache, series: &str, install: bool) -> Result<Prepared> {
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !series
        .split_once('.')
        .is_some_and(|(major, minor)| number(major) && number(minor))
    {
        bail!("--debian-source {series}: expected a kernel series such as 6.12 or 7.3");
    }
    let package = format!("linux-source-{series}");
    // bookworm's sources come through the host's apt; the newer ones from
    // trixie-backports or sid.
    let host_has = Command::new("apt-cache")
        .args(["show", "--no-all-versions", &package])
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
    let (tarball, version, sha) = if host_has {
        host_source(&package, install)?
    } else {
        archive_source(cache, &package)?
    };
    let key = format!("debian-{version}-{}", &sha[..16]);
    // The tarball's hash in the key: a rebuilt package of the same version unpacks anew.
    let entry = cache.entry(
        "sources",
        &format!("{package}-{version}-{}", &sha[..16]),
        |dir| {
            let mut progress = Progress::start("extract");
            let log = dir.join(".extract.log");
            run_logged(
                Command::new("tar")
                    .args(["-x", "-I", "xz -T0", "-f"])
                    .arg(&tarball)
                    .arg("-C")
                    .arg(dir),
                &log,
                &mut progress,
                "tar",
            )
            .with_context(|| format!("extract {}", tarball.display()))?;
            fs::remove_file(log)?;
            progress.finish();
            Ok(())
        },
    )?;
    Ok(Prepared {
        tree: entry.join(&package),
        key,
        label: format!("debian-{version}"),
        package: Some((package, version, sha)),
        stock: None,
        owned: true,
    })
}

/// Applies the patches.
const PATCH: Tool = Tool {
    command: "patch",
    package: "patch",
};

/// The stock tree hard-linked into a cache entry of its own, with the patches applied.
fn patched_source(cache: &Cache, stock: Prepared, patches: &[Patch]) -> Result<Prepared> {
    let pkey = patch::key(patches);
    let name = stock
        .tree
        .file_name()
        .context("a source tree has a name")?
        .to_owned();
    let entry = cache.entry(
        "sources",
        &format!("{}+patches-{pkey}", stock.label),
        |dir| {
            let tree = dir.join(&name);
            fs::create_dir(&tree)?;
            for e in fs::read_dir(&stock.tree)? {
                let e = e?;
                let n = e.file_name();
                let n = n.to_string_lossy();
                // History and object directories are not the source.
                if n == ".git" || n.starts_with(OBJ_PREFIX) {
                    continue;
                }
                let mut cp = Command::new("cp");
                cp.arg("-al").arg(e.path()).arg(&tree);
                host::echo::command(&cp);
                let out = cp.output().context("run cp")?;
                if !out.status.success() {
                    bail!(
                        "hard-link {} into {}: {}",
                        e.path().display(),
                        tree.display(),
                        String::from_utf8_lossy(&out.stderr).trim()
                    );
                }
            }
            for p in patches {
                patch::apply(&tree, p)?;
            }
            Ok(())
        },
    )?;
    Ok(Prepared {
        tree: entry.join(&name),
        key: format!("{}+patches-{pkey}", stock.key),
        label: format!("{}+p{}", stock.label, &pkey[..8]),
        package: stock.package,
        stock: stock.owned.then_some(stock.tree),
        owned: true,
    })
}

/// Names the object directories kept inside trees the bench owns.
const OBJ_PREFIX: &str = ".mdbb-obj-";

/// Where a source builds. It outlives builds: one per source directory and configuration,
/// so a `--tree` checkout rebuilds only what changed. A tree the bench owns keeps it inside
/// (see `Prepared::owned`); a user's checkout keeps it in the cache.
fn object_dir(cache: &Cache, src: &Prepared, spec: &BuildSpec, fragments: &[PathBuf]) -> PathBuf {
    let mut oh = Sha256::new();
    if !src.owned {
        oh.update(src.tree.as_os_str().as_encoded_bytes());
    }
    oh.update(spec.base.as_str());
    for f in fragments {
        oh.update(f.as_os_str().as_encoded_bytes());
    }
    let id = hex16(oh);
    if src.owned {
        src.tree.join(format!("{OBJ_PREFIX}{id}"))
    } else {
        cache
            .root()
            .join("kbuild")
            .join(format!("{}-{id}", src.label))
    }
}

impl Job<'_> {
    /// Starts a patched tree's object directory as a copy of its stock tree's (built first
    /// when missing), so that only what the patches touch is compiled again: the copy
    /// keeps the objects' times, and the files the patches changed are then given a newer
    /// one (the stock objects may have been built after the patches were applied).
    fn seed(
        &self,
        stock: &Path,
        changed: &[PathBuf],
        base: Base,
        fragments: &[PathBuf],
        requests: &[kconfig::Request],
    ) -> Result<()> {
        let (obj, tree) = (self.obj, self.tree);
        if obj.exists() {
            return Ok(());
        }
        let name = obj.file_name().context("an object directory has a name")?;
        let stock_obj = stock.join(name);
        if !stock_obj.join("vmlinux").exists() {
            eprintln!(
            "kernel: building the stock tree first, so that patched builds of it are incremental"
        );
            let scratch = tempfile::tempdir()?;
            Job {
                tree: stock,
                obj: &stock_obj,
                ccache: self.ccache,
            }
            .run(base, fragments, requests, scratch.path())?;
        }
        let lock = File::create(stock_obj.join(".lock"))?;
        lock.lock()?;
        let partial = obj.with_extension("partial");
        let _ = fs::remove_dir_all(&partial);
        let mut cp = Command::new("cp");
        cp.arg("-a").arg(&stock_obj).arg(&partial);
        host::echo::command(&cp);
        let out = cp.output().context("run cp")?;
        if !out.status.success() {
            bail!(
                "copy {}: {}",
                stock_obj.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let now = std::time::SystemTime::now();
        for f in changed {
            let path = tree.join(f);
            if path.exists() {
                File::options()
                    .write(true)
                    .open(&path)
                    .and_then(|file| file.set_modified(now))
                    .with_context(|| format!("touch {}", path.display()))?;
            }
        }
        fs::rename(&partial, obj)?;
        Ok(())
    }
}

/// The source tarball of the host's `package` (installed when missing and allowed):
/// its path, version and sha256.
fn host_source(package: &str, install: bool) -> Result<(PathBuf, String, String)> {
    let tarball = PathBuf::from(format!("/usr/src/{package}.tar.xz"));
    let version = || {
        Command::new("dpkg-query")
            .args(["-W", "-f", "${Status}|${Version}", package])
            .output()
            .ok()
            .and_then(|o| {
                let text = String::from_utf8_lossy(&o.stdout).into_owned();
                let (status, version) = text.split_once('|')?;
                (status.ends_with(" installed") && !version.is_empty()).then(|| version.to_string())
            })
    };
    if version().is_none() || !tarball.is_file() {
        host::ensure_packages(&format!("Debian's {package}"), &[package], install)?;
    }
    let version = version().with_context(|| format!("{package} is not installed"))?;
    let sha = sha256_file(&tarball)?;
    Ok((tarball, version, sha))
}

/// The source tarball of `package` from the private archive (trixie-backports, sid),
/// kept in the cache: its path, version and sha256.
fn archive_source(cache: &Cache, package: &str) -> Result<(PathBuf, String, String)> {
    let archive = Archive::private(cache)?;
    let p = archive.show(package)?;
    let entry = cache.entry(
        "source-packages",
        &format!("{package}-{}", p.version),
        |dir| {
            eprintln!("fetching {package} {} from Debian's {}", p.version, p.suite);
            let unpacked = dir.join("unpacked");
            archive.unpack(&p, dir, &unpacked)?;
            fs::rename(
                unpacked.join(format!("usr/src/{package}.tar.xz")),
                dir.join(format!("{package}.tar.xz")),
            )
            .with_context(|| format!("{package}: no usr/src/{package}.tar.xz"))?;
            fs::remove_dir_all(unpacked)?;
            Ok(())
        },
    )?;
    let tarball = entry.join(format!("{package}.tar.xz"));
    let sha = sha256_file(&tarball)?;
    Ok((tarball, p.version, sha))
}

/// Builds (or finds in the cache) the kernel `spec` describes.
pub fn build(cache: &Cache, project: &Path, spec: &BuildSpec, install: bool) -> Result<Built> {
    // Fragments first: a typo in a path is the cheapest thing to report.
    let fragments = fragment_list(project, spec)?;
    // Read once: parsed here, hashed into the key below.
    let texts = fragments
        .iter()
        .map(|f| fs::read_to_string(f).with_context(|| format!("config fragment {}", f.display())))
        .collect::<Result<Vec<_>>>()?;
    let requests = fragments
        .iter()
        .zip(&texts)
        .map(|(f, text)| kconfig::parse_fragment(&f.display().to_string(), text))
        .collect::<Result<Vec<_>>>()?;
    let requests = kconfig::merge_requests(&requests);
    let patches = spec
        .patches
        .iter()
        .map(|p| patch::read(project, p))
        .collect::<Result<Vec<_>>>()?;
    ensure_build_tools(install, matches!(spec.source, Source::Debian { .. }))?;
    if !patches.is_empty() {
        host::ensure_tools("kernel patches", &[PATCH], install)?;
    }
    let stock = prepare_source(cache, &spec.source, install)?;
    let src = if patches.is_empty() {
        stock
    } else {
        patched_source(cache, stock, &patches)?
    };

    let ccache = host::find_command("ccache").is_some();
    let compiler = format!(
        "{}{}",
        host::first_line("gcc", &["--version"])?,
        if ccache { " (ccache)" } else { "" }
    );
    let linker = host::first_line("ld", &["--version"])?;
    // Kconfig reads the toolchain (CC_VERSION_TEXT, LD_VERSION, ...), so it is part of the
    // key as much as the fragments are.
    let mut h = Sha256::new();
    for part in [&src.key, spec.base.as_str(), &compiler, &linker] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    for (f, text) in fragments.iter().zip(&texts) {
        h.update(f.file_name().unwrap_or_default().as_encoded_bytes());
        h.update([0]);
        h.update(text.as_bytes());
        h.update([0]);
    }
    let key = format!("{}-{}-{}", src.label, spec.base.as_str(), hex16(h));

    let obj = object_dir(cache, &src, spec, &fragments);
    let dir = cache.entry("builds", &key, |dir| {
        let started = Instant::now();
        let job = Job {
            tree: &src.tree,
            obj: &obj,
            ccache,
        };
        if let Some(stock) = &src.stock {
            let changed: Vec<PathBuf> = patches.iter().flat_map(patch::files).collect();
            job.seed(stock, &changed, spec.base, &fragments, &requests)?;
        }
        let (release, config_sha256, modular) = job.run(spec.base, &fragments, &requests, dir)?;
        let info = BuildInfo {
            tree: src.tree.clone(),
            source_key: src.key.clone(),
            base: spec.base,
            // Relative to the checkout when they are its own, so the record reads the same
            // from any clone.
            fragments: fragments
                .iter()
                .map(|f| f.strip_prefix(project).unwrap_or(f).to_path_buf())
                .collect(),
            config_sha256,
            patches: patches.iter().map(|p| p.info.clone()).collect(),
            compiler: compiler.clone(),
            build_seconds: started.elapsed().as_secs(),
        };
        let entry = Entry {
            release,
            modular,
            info,
            package: src.package.clone(),
        };
        fs::write(dir.join("build.json"), serde_json::to_vec_pretty(&entry)?)?;
        Ok(())
    })?;
    load(&dir)
}

#[derive(Serialize, Deserialize)]
struct Entry {
    release: String,
    modular: bool,
    info: BuildInfo,
    package: Option<(String, String, String)>,
}

fn load(dir: &Path) -> Result<Built> {
    let e: Entry = serde_json::from_slice(&fs::read(dir.join("build.json"))?)
        .with_context(|| format!("read {}/build.json", dir.display()))?;
    Ok(Built {
        bzimage: dir.join("bzImage"),
        modules: e
            .modular
            .then(|| dir.join("modules/lib/modules").join(&e.release)),
        config: dir.join("config"),
        log: dir.join("build.log"),
        release: e.release,
        info: e.info,
        package: e.package,
    })
}

struct Job<'a> {
    tree: &'a Path,
    obj: &'a Path,
    ccache: bool,
}

impl Job<'_> {
    /// `make -C tree O=obj ...`, at a lower priority: a build must not starve the VMs a
    /// test run has going beside it (their deadlines are wall-clock).
    fn make(&self, args: &[&str]) -> Command {
        let mut c = Command::new("nice");
        c.args(["-n", "10", "make", "-C"])
            .arg(self.tree)
            .arg(format!("O={}", self.obj.display()));
        if self.ccache {
            c.arg("CC=ccache gcc");
        }
        c.args(args);
        c
    }

    /// Configures, checks the fragments took effect, builds, and fills `out`. Returns the
    /// release, the `.config`'s sha256 and whether it has modules.
    fn run(
        &self,
        base: Base,
        fragments: &[PathBuf],
        requests: &[kconfig::Request],
        out: &Path,
    ) -> Result<(String, String, bool)> {
        let fresh = !self.obj.exists();
        fs::create_dir_all(self.obj).with_context(|| format!("create {}", self.obj.display()))?;
        // Two builds of one tree and configuration (different commits) share the directory.
        let lock = File::create(self.obj.join(".lock"))?;
        lock.lock()?;
        let log = self.obj.join("build.log");
        File::create(&log).with_context(|| format!("create {}", log.display()))?;

        let mut progress = Progress::start("config");
        run_logged(
            &mut self.make(&[base.as_str()]),
            &log,
            &mut progress,
            "make",
        )?;
        let config = self.obj.join(".config");
        let mut merge = Command::new(self.tree.join("scripts/kconfig/merge_config.sh"));
        merge
            .current_dir(self.tree)
            .arg("-m")
            .arg("-O")
            .arg(self.obj)
            .arg(&config);
        if base == Base::Defconfig {
            merge.arg(self.tree.join("kernel/configs/kvm_guest.config"));
        }
        merge.args(fragments);
        run_logged(&mut merge, &log, &mut progress, "merge_config.sh")?;
        run_logged(
            &mut self.make(&["olddefconfig"]),
            &log,
            &mut progress,
            "make",
        )?;
        let text = fs::read_to_string(&config)?;
        let mut missing = kconfig::unapplied(requests, &kconfig::parse_config(&text));
        if !missing.is_empty() {
            let declared = kconfig::declared_symbols(self.tree)?;
            missing = kconfig::counted(missing, &declared);
        }
        if !missing.is_empty() {
            let declared = kconfig::declared_symbols(self.tree)?;
            // A fragment that does not apply is the whole story; an object directory made
            // only to find that out would be litter.
            if fresh {
                drop(lock);
                let _ = fs::remove_dir_all(self.obj);
            }
            bail!(
                "{} of the requested options did not take effect: {}",
                missing.len(),
                kconfig::describe(&missing, &declared)
            );
        }
        let config_sha256 = sha256_file(&config)?;

        progress.phase("build");
        let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
        run_logged(
            &mut self.make(&[&format!("-j{jobs}")]),
            &log,
            &mut progress,
            "make",
        )?;
        let release = fs::read_to_string(self.obj.join("include/config/kernel.release"))
            .context("the build wrote no include/config/kernel.release")?
            .trim()
            .to_string();
        let modular = text.lines().any(|l| l == "CONFIG_MODULES=y");
        if modular {
            progress.phase("modules");
            let dest = out.join("modules");
            run_logged(
                &mut self.make(&[
                    &format!("INSTALL_MOD_PATH={}", dest.display()),
                    "INSTALL_MOD_STRIP=1",
                    "modules_install",
                ]),
                &log,
                &mut progress,
                "make modules_install",
            )?;
            // Links back into the object directory; the entry must stand alone.
            for link in ["build", "source"] {
                let _ = fs::remove_file(dest.join("lib/modules").join(&release).join(link));
            }
        }
        fs::copy(self.obj.join("arch/x86/boot/bzImage"), out.join("bzImage"))
            .context("copy arch/x86/boot/bzImage")?;
        fs::copy(&config, out.join("config"))?;
        fs::copy(&log, out.join("build.log"))?;
        progress.finish();
        Ok((release, config_sha256, modular))
    }
}

/// The build's progress on stderr: one updating line on a terminal (phase, elapsed, the
/// last line of make), plain lines otherwise, one a minute while a phase runs.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    phase: String,
    phase_started: Instant,
    started: Instant,
    last_plain: Instant,
}

impl Progress {
    pub fn start(phase: &str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} kernel {prefix} {elapsed:>4} {wide_msg}",
                )
                .expect("a valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let mut p = Self {
            bar,
            phase: String::new(),
            phase_started: Instant::now(),
            started: Instant::now(),
            last_plain: Instant::now(),
        };
        p.phase(phase);
        p
    }

    pub fn phase(&mut self, phase: &str) {
        if !self.phase.is_empty() {
            self.say(&format!(
                "kernel {}: done in {}s",
                self.phase,
                self.phase_started.elapsed().as_secs()
            ));
        }
        self.phase = phase.to_string();
        self.phase_started = Instant::now();
        match &self.bar {
            Some(bar) => bar.set_prefix(phase.to_string()),
            None => eprintln!("kernel {phase}: started"),
        }
        self.last_plain = Instant::now();
    }

    fn line(&mut self, line: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(line.trim().to_string()),
            None if self.last_plain.elapsed() >= Duration::from_secs(60) => {
                self.last_plain = Instant::now();
                eprintln!(
                    "kernel {}: {}s: {}",
                    self.phase,
                    self.phase_started.elapsed().as_secs(),
                    line.trim()
                );
            }
            None => {}
        }
    }

    fn say(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    pub fn finish(mut self) {
        self.say(&format!(
            "kernel {}: done in {}s ({}s in all)",
            self.phase,
            self.phase_started.elapsed().as_secs(),
            self.started.elapsed().as_secs()
        ));
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// Runs `cmd` with its stdout and stderr appended to `log`, each line shown as progress.
/// On failure the error holds the last lines and names the log.
fn run_logged(cmd: &mut Command, log: &Path, progress: &mut Progress, what: &str) -> Result<()> {
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("open {}", log.display()))?;
    host::echo::command(cmd);
    writeln!(file, "$ {cmd:?}")?;
    // make stops (and removes its half-made targets) when the bench dies, SIGKILLed or
    // exiting on a signal, instead of building on into a removed directory.
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (reader, writer) = std::io::pipe().context("create a pipe")?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(writer.try_clone()?)
        .stderr(writer)
        .spawn()
        .with_context(|| format!("run {what}"))?;
    let _registered = crate::host::scratch::register_child(child.id());
    // The Command still holds the pipe's write ends; replace them so that the pipe reads
    // end-of-file when the child (and its children) exit.
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut tail: VecDeque<String> = VecDeque::new();
    for line in BufReader::new(reader).lines() {
        let line = line.unwrap_or_default();
        writeln!(file, "{line}")?;
        progress.line(&line);
        if tail.len() == 15 {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    let status = child.wait()?;
    if !status.success() {
        let lines: Vec<String> = tail.iter().map(|l| format!("  | {l}")).collect();
        bail!(
            "{what} failed ({status}) in the {} phase; full log: {}\n{}",
            progress.phase,
            log.display(),
            lines.join("\n")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress() -> Progress {
        Progress::start("test")
    }

    #[test]
    fn a_failing_command_reports_its_last_lines_and_keeps_the_whole_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("build.log");
        let script =
            "for i in $(seq 1 40); do echo line $i; done; echo 'fs/x.c:1: error: boom' >&2; exit 2";
        let err = run_logged(
            Command::new("sh").args(["-c", script]),
            &log,
            &mut progress(),
            "make",
        )
        .unwrap_err()
        .to_string();
        let first = err.lines().next().unwrap();
        assert!(
            first.starts_with("make failed (exit status: 2) in the test phase; full log: ")
                && first.ends_with("build.log"),
            "{err}"
        );
        assert!(err.contains("  | fs/x.c:1: error: boom"), "{err}");
        assert!(
            err.contains("  | line 40") && !err.contains("line 20\n"),
            "{err}"
        );
        let kept = fs::read_to_string(&log).unwrap();
        assert!(kept.contains("line 1\n") && kept.contains("boom"));
    }

    /// The Command keeps copies of the pipe's write ends: unless `run_logged` drops
    /// them, the reader never sees end of file. A watchdog turns that hang into a failure.
    #[test]
    fn the_reader_sees_end_of_file_when_the_command_exits() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let r = run_logged(
                Command::new("sh").args(["-c", "echo hi"]),
                &log,
                &mut progress(),
                "sh",
            );
            let _ = done.send(r.map_err(|e| e.to_string()));
        });
        match finished.recv_timeout(Duration::from_secs(30)) {
            Ok(r) => r.unwrap(),
            Err(_) => panic!("run_logged still reading 30 s after `echo hi` exited"),
        }
    }

    #[test]
    fn a_directory_that_is_not_a_kernel_tree_is_named_with_what_it_lacks() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("Makefile"), "").unwrap();
        let err = check_tree(dir.path()).unwrap_err().to_string();
        assert!(
            err.ends_with("not a kernel source tree (no Kconfig, scripts/kconfig/merge_config.sh)"),
            "{err}"
        );
    }

    fn sh(dir: &Path, script: &str) {
        let ok = Command::new("sh")
            .args(["-c", script])
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .status()
            .unwrap()
            .success();
        assert!(ok, "{script}");
    }

    #[test]
    fn tree_keys_follow_commits_and_uncommitted_changes() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path();
        sh(
            t,
            "git init -q && echo a > Makefile && git add Makefile && git commit -qm one",
        );
        let clean = tree_key(t).unwrap();
        let head = String::from_utf8(git(t, &["rev-parse", "HEAD"]).unwrap()).unwrap();
        assert_eq!(clean, format!("git-{}", head.trim()));
        sh(t, "echo b > Makefile");
        let dirty = tree_key(t).unwrap();
        assert!(dirty.starts_with(&format!("{clean}-dirty-")), "{dirty}");
        sh(t, "echo c > new.c");
        let untracked = tree_key(t).unwrap();
        assert_ne!(untracked, dirty, "an untracked file is part of the source");
        assert_eq!(
            tree_key(t).unwrap(),
            untracked,
            "stable while nothing changes"
        );

        let plain = tempfile::tempdir().unwrap();
        fs::write(plain.path().join("Makefile"), "a").unwrap();
        let k1 = tree_key(plain.path()).unwrap();
        assert!(k1.starts_with("files-"), "{k1}");
        fs::write(plain.path().join("Kconfig"), "b").unwrap();
        assert_ne!(tree_key(plain.path()).unwrap(), k1);
    }

    #[test]
    fn a_revision_of_a_tree_is_exported_into_the_cache_once() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("linux");
        fs::create_dir_all(t.join("scripts/kconfig")).unwrap();
        sh(
            &t,
            "git init -q && echo one > Makefile && touch Kconfig scripts/kconfig/merge_config.sh \
             && git add -A && git commit -qm one && echo two > Makefile && git commit -qam two",
        );
        let cache = Cache::new(dir.path().join("cache"));
        let source = Source::TreeRev {
            tree: t.clone(),
            rev: "HEAD~1".into(),
        };
        let p = prepare_source(&cache, &source, false).unwrap();
        let commit = String::from_utf8(git(&t, &["rev-parse", "HEAD~1"]).unwrap()).unwrap();
        assert_eq!(p.key, format!("git-{}", commit.trim()));
        assert_eq!(
            fs::read_to_string(p.tree.join("Makefile")).unwrap(),
            "one\n"
        );
        assert_eq!(prepare_source(&cache, &source, false).unwrap().tree, p.tree);
        let bad = Source::TreeRev {
            tree: t,
            rev: "no-such-rev".into(),
        };
        let err = format!("{:#}", prepare_source(&cache, &bad, false).unwrap_err());
        assert!(err.contains("@no-such-rev: no such revision"), "{err}");
    }

    #[test]
    fn fragments_default_to_md_config_and_tinyconfig_brings_tiny_config() {
        let project = crate::host::project_root();
        let spec = |base, fragments: Vec<PathBuf>| BuildSpec {
            source: Source::Tree("/x".into()),
            base,
            fragments,
            patches: vec![],
        };
        let names = |v: Vec<PathBuf>| -> Vec<String> {
            v.iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        let list = fragment_list(&project, &spec(Base::Defconfig, vec![])).unwrap();
        assert_eq!(names(list), ["md.config"]);
        let list = fragment_list(
            &project,
            &spec(Base::Tinyconfig, vec!["md".into(), "tiny.config".into()]),
        )
        .unwrap();
        assert_eq!(names(list), ["tiny.config", "md.config", "tiny.config"]);
        let err = fragment_list(&project, &spec(Base::Defconfig, vec!["nope".into()]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "--config nope: no such file (nor kernel-configs/nope.config)"
        );
    }

    #[test]
    fn the_bench_fragments_parse() {
        for name in ["md.config", "tiny.config", "debug.config"] {
            let path = crate::host::project_root()
                .join("kernel-configs")
                .join(name);
            let r = kconfig::read_fragment(&path).unwrap();
            assert!(!r.is_empty(), "{name}");
        }
    }
}
