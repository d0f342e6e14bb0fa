//! The guest image: an initramfs (cpio newc) written by the bench from the recipe in
//! `images/guest.yaml`, the `/init` script, the agent and the kernel's modules. The cache
//! key is a hash of every input, so an unchanged image is never written twice.

pub mod cpio;
pub mod elf;
pub mod modules;
pub mod packaged;

use crate::host::cache::Cache;
use crate::kernel::Kernel;
use anyhow::{Context, Result};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

pub use self::cpio::{Node, NodeKind};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    pub programs: Vec<String>,
    pub modules: Vec<String>,
    pub boot_modules: Vec<String>,
    /// Programs from Debian packages of a newer suite, for the kernels that want them.
    #[serde(default)]
    pub packaged: Vec<packaged::Packaged>,
}

impl Recipe {
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        serde_norway::from_str(&text).with_context(|| format!("{}", path.display()))
    }
}

#[derive(Debug, Clone)]
pub struct Image {
    pub initramfs: PathBuf,
    pub key: String,
    /// The packaged programs the image carries, with their packages' versions.
    pub carried: Vec<packaged::Carried>,
    /// Every Debian package the image's programs and libraries came from, with its
    /// version and where from (`host`, or the suite of a packaged program).
    pub userland: Vec<UserlandPackage>,
}

/// A package the guest's userland came from, as results record it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserlandPackage {
    pub package: String,
    pub version: String,
    /// `host` (copied from the host's installed files) or the suite it was fetched from.
    pub from: String,
}

impl Image {
    /// The version of the host's mdadm package the image copied (`4.2-5`), as the
    /// userland record has it.
    pub fn host_mdadm(&self) -> &str {
        self.userland
            .iter()
            .find(|p| p.package == "mdadm" && p.from == "host")
            .map_or("unknown", |p| p.version.as_str())
    }

    /// The packaged program `name` (`mdadm-4.6`), if the image carries it.
    pub fn carried(&self, name: &str) -> Option<&packaged::Carried> {
        self.carried.iter().find(|c| c.name == name)
    }
}

/// Builds the agent as a static binary. A target directory of its own keeps its static
/// flags from invalidating the host build, and `--target` keeps them off proc macros.
/// What cargo says (warnings, replayed on every run) goes to `target/guest/agent-build.log`;
/// a failure quotes it.
pub fn build_agent(project: &Path) -> Result<PathBuf> {
    let target_dir = project.join("target/guest");
    let log = target_dir.join("agent-build.log");
    let _ = std::fs::remove_file(&log);
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .args([
            "build",
            "--quiet",
            "--release",
            "--package",
            "agent",
            "--target",
            "x86_64-unknown-linux-gnu",
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .current_dir(project);
    let out = crate::host::logged::output(&mut cargo, &log)
        .context("run cargo to build the guest agent")?;
    if !out.status.success() {
        anyhow::bail!(
            "building the guest agent failed ({}; log: {}):\n{}",
            out.status,
            log.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(target_dir.join("x86_64-unknown-linux-gnu/release/agent"))
}

/// Builds (or finds in the cache) the initramfs for `kernel`.
pub fn build(cache: &Cache, project: &Path, kernel: &Kernel, agent: &Path) -> Result<Image> {
    let (nodes, carried) = plan(cache, project, kernel, agent)?;
    let key = hash_nodes(&nodes);
    let dir = cache.entry("images", &key, |dir| {
        let file = std::fs::File::create(dir.join("initramfs.cpio"))?;
        cpio::write(&nodes, std::io::BufWriter::new(file))?;
        Ok(())
    })?;
    let userland = userland(&dir, &nodes, &carried)?;
    Ok(Image {
        initramfs: dir.join("initramfs.cpio"),
        key,
        carried,
        userland,
    })
}

/// The packages of an image, asked of dpkg once per image and kept beside it (entries made
/// before it was recorded gain the file on first use).
fn userland(
    entry: &Path,
    nodes: &[Node],
    carried: &[packaged::Carried],
) -> Result<Vec<UserlandPackage>> {
    let file = entry.join("userland.json");
    if let Ok(bytes) = std::fs::read(&file) {
        if let Ok(v) = serde_json::from_slice(&bytes) {
            return Ok(v);
        }
    }
    let hosts: Vec<&Path> = nodes
        .iter()
        .filter_map(|n| match &n.kind {
            cpio::NodeKind::File {
                source: cpio::Source::Host(p),
                ..
            } => Some(p.as_path()),
            _ => None,
        })
        .collect();
    let mut out = host_packages(&hosts);
    for c in carried {
        for p in &c.packages {
            out.push(UserlandPackage {
                package: p.name.clone(),
                version: p.version.clone(),
                from: p.suite.clone(),
            });
        }
    }
    let tmp = entry.join(format!(".userland.json.{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec_pretty(&out)?)?;
    std::fs::rename(&tmp, &file)?;
    Ok(out)
}

/// The host packages that own `paths` (files no package owns, such as the agent, are left
/// out), sorted by name.
fn host_packages(paths: &[&Path]) -> Vec<UserlandPackage> {
    // Under usrmerge a file found in /usr/sbin may be known to dpkg as /sbin's: ask both.
    let mut asked = Vec::new();
    for p in paths
        .iter()
        .filter(|p| !p.starts_with(crate::host::project_root()))
    {
        asked.push(p.to_path_buf());
        if let Ok(rest) = p.strip_prefix("/usr") {
            asked.push(Path::new("/").join(rest));
        } else if p.is_absolute() {
            asked.push(Path::new("/usr").join(p.strip_prefix("/").unwrap_or(p)));
        }
    }
    let out = Command::new("dpkg-query").arg("-S").args(&asked).output();
    let mut names: Vec<String> = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(": "))
        .flat_map(|(pkgs, _)| {
            pkgs.split(", ")
                .map(|p| p.split(':').next().unwrap_or(p).to_string())
        })
        .collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|package| UserlandPackage {
            version: host_package_version(&package),
            package,
            from: "host".into(),
        })
        .collect()
}

/// Everything the initramfs holds, in memory or as host paths, without writing anything
/// (packaged programs are fetched into the cache), and the packaged programs it carries.
pub fn plan(
    cache: &Cache,
    project: &Path,
    kernel: &Kernel,
    agent: &Path,
) -> Result<(Vec<Node>, Vec<packaged::Carried>)> {
    let recipe = Recipe::load(&project.join("images/guest.yaml"))?;
    let mut nodes = Vec::new();
    for (link, target) in [
        ("bin", "usr/bin"),
        ("sbin", "usr/sbin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
    ] {
        nodes.push(Node::symlink(link, target));
    }
    for dir in [
        "proc", "sys", "dev", "tmp", "run", "mnt", "root", "etc/mdbb",
    ] {
        nodes.push(Node::dir(dir));
    }
    nodes.push(Node::host_file("init", project.join("images/init"), 0o755));
    nodes.push(Node::host_file("usr/bin/agent", agent.to_path_buf(), 0o755));

    let programs = recipe
        .programs
        .iter()
        .map(|p| {
            crate::host::find_command(p)
                .with_context(|| format!("images/guest.yaml: program {p} not found on the host"))
        })
        .collect::<Result<Vec<_>>>()?;
    for (guest, host) in elf::closure(&programs, elf::DEFAULT_LIBRARY_DIRS)? {
        nodes.push(Node::host_file(
            guest.to_string_lossy().trim_start_matches('/'),
            host,
            0o755,
        ));
    }
    let busybox = programs
        .iter()
        .find(|p| p.ends_with("busybox"))
        .context("images/guest.yaml must list busybox")?;
    nodes.extend(busybox_applets(busybox, &nodes)?);

    let mut boot_modules = String::new();
    if let Some(tree) = &kernel.modules {
        let tree = modules::ModuleTree::scan(tree)?;
        let resolved = modules::resolve(&tree, &recipe.modules)?;
        let dir = format!("usr/lib/modules/{}", kernel.info.release);
        nodes.push(Node::bytes(
            &format!("{dir}/modules.dep"),
            modules::modules_dep(&resolved).into_bytes(),
            0o644,
        ));
        nodes.push(Node::bytes(
            &format!("{dir}/modules.alias"),
            modules::modules_alias(&resolved).into_bytes(),
            0o644,
        ));
        for m in resolved {
            nodes.push(Node::bytes(
                &format!("{dir}/{}", m.file_name),
                m.data,
                0o644,
            ));
        }
        for m in &recipe.boot_modules {
            if !tree.is_builtin(m) {
                boot_modules.push_str(&format!("{m}\n"));
            }
        }
    }
    nodes.push(Node::bytes(
        "etc/mdbb/boot-modules",
        boot_modules.into_bytes(),
        0o644,
    ));
    let mut carried = Vec::new();
    for p in recipe
        .packaged
        .iter()
        .filter(|p| p.wanted_by(&kernel.info.release))
    {
        let (more, c) = packaged::nodes(cache, p)?;
        nodes.extend(more);
        carried.push(c);
    }
    Ok((nodes, carried))
}

/// Links for every busybox applet that no real program of the recipe already provides,
/// placed by the usrmerged layout the guest has.
fn busybox_applets(busybox: &Path, taken: &[Node]) -> Result<Vec<Node>> {
    let out = Command::new(busybox)
        .arg("--list-full")
        .output()
        .with_context(|| format!("run {} --list-full", busybox.display()))?;
    let taken: std::collections::HashSet<String> = taken
        .iter()
        .filter_map(|n| {
            Path::new(&n.path)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
        })
        .collect();
    let guest_busybox = format!("/{}", elf_guest_path(busybox)?);
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .filter(|l| !taken.contains(l.rsplit('/').next().unwrap_or(l)))
        .map(|l| {
            let path = if l.starts_with("usr/") {
                l.to_string()
            } else {
                format!("usr/{l}")
            };
            Node::symlink(&path, &guest_busybox)
        })
        .collect())
}

fn elf_guest_path(p: &Path) -> Result<String> {
    let dir = p.parent().context("no directory")?.canonicalize()?;
    Ok(dir
        .join(p.file_name().context("no name")?)
        .to_string_lossy()
        .trim_start_matches('/')
        .to_string())
}

fn hash_nodes(nodes: &[Node]) -> String {
    let mut h = Sha256::new();
    for n in nodes {
        n.hash_into(&mut h);
    }
    hex::encode(h.finalize())[..24].to_string()
}

/// The installed version of the host's Debian package `name` (`unknown` off Debian).
fn host_package_version(name: &str) -> String {
    Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", name])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host's dpkg names the package of each file the image copies; the bench's own
    /// files belong to none and are left out.
    #[test]
    fn the_host_packages_of_an_images_files_are_named_with_their_versions() {
        let agent = crate::host::project_root().join("images/init");
        let mdadm = crate::host::find_command("mdadm").expect("mdadm on the host");
        let got = host_packages(&[&mdadm, &agent, Path::new("/usr/sbin/mdadm")]);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].package, "mdadm");
        assert_eq!(got[0].from, "host");
        assert_eq!(got[0].version, host_package_version("mdadm"));
        assert_ne!(got[0].version, "unknown");
    }
}
