//! Programs the guest takes from Debian packages of a newer suite rather than from the
//! host: mdadm 4.6 from sid for the kernels from 6.18 on (they ask for mdadm 4.5 or later,
//! and only 4.5+ creates a lockless bitmap). bookworm's libc is older than such a program
//! needs, so it travels with the loader and the libraries of its own suite under
//! `/opt/NAME`, started through a script that runs that loader on that library path.
//!
//! The packages are resolved in the archive when the image is built, their exact versions
//! and sha256 recorded (in the image key, so the image stays content-addressed, and in
//! every result), and unpacked into the cache once per version set.

use super::elf;
use super::Node;
use crate::host::archive::{Archive, Package};
use crate::host::cache::Cache;
use anyhow::{Context, Result};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One program of the recipe's `packaged` list.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Packaged {
    /// The directory under `/opt` and the name results use (`mdadm-4.6`).
    pub name: String,
    /// The program inside the packages (`usr/sbin/mdadm`).
    pub program: String,
    /// The packages that hold it, its loader and its libraries.
    pub packages: Vec<String>,
    /// The oldest kernel series whose images carry it (`6.18`).
    pub from_kernel: String,
}

impl Packaged {
    /// Whether an image for kernel `release` (`7.3.4+deb13-cloud-amd64`) carries it.
    pub fn wanted_by(&self, release: &str) -> bool {
        series(&self.from_kernel).is_some_and(|m| series_at_least(release, m))
    }

    /// The program's path in the guest: the script that starts it.
    pub fn guest_path(&self) -> String {
        format!("/opt/{}/{}", self.name, file_name(&self.program))
    }
}

/// What an image holds of a packaged program.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct Carried {
    pub name: String,
    pub guest_path: String,
    pub packages: Vec<Package>,
}

/// `(major, minor)` of a kernel release or series (`7.3.4+deb13-cloud-amd64`, `6.18`).
fn series(s: &str) -> Option<(u32, u32)> {
    let mut p = s.split(['.', '-', '+']);
    Some((p.next()?.parse().ok()?, p.next()?.parse().ok()?))
}

/// Whether kernel `release` is of series `min` or newer (unknown: no).
pub fn series_at_least(release: &str, min: (u32, u32)) -> bool {
    series(release).is_some_and(|k| k >= min)
}

fn file_name(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// The nodes that put `p` under `/opt/NAME`: the program, the loader and every library
/// the program needs, each from the unpacked packages, and the script that starts it.
pub fn nodes(cache: &Cache, p: &Packaged) -> Result<(Vec<Node>, Carried)> {
    let archive = Archive::private(cache)?;
    let packages = p
        .packages
        .iter()
        .map(|name| archive.show(name))
        .collect::<Result<Vec<_>>>()
        .with_context(|| format!("images/guest.yaml: packaged {}", p.name))?;
    let mut key = Sha256::new();
    for pkg in &packages {
        key.update(format!("{} {} {}\n", pkg.name, pkg.version, pkg.sha256));
    }
    let key = format!("{}-{}", p.name, &hex::encode(key.finalize())[..16]);
    let root = cache
        .entry("userland", &key, |dir| {
            for pkg in &packages {
                archive.unpack(pkg, dir, &dir.join("root"))?;
            }
            Ok(())
        })?
        .join("root");
    let files = closure(&root, &root.join(&p.program))?;
    let dir = format!("opt/{}", p.name);
    let mut nodes = Vec::new();
    let mut loader = None;
    for (name, host) in &files {
        if name.starts_with("ld-linux") {
            loader = Some(name.clone());
        }
        nodes.push(Node::host_file(
            &format!("{dir}/lib/{name}"),
            host.clone(),
            0o755,
        ));
    }
    let loader = loader.with_context(|| format!("{}: no ELF loader in the packages", p.program))?;
    let program = file_name(&p.program);
    nodes.push(Node::host_file(
        &format!("{dir}/lib/{program}.bin"),
        root.join(&p.program),
        0o755,
    ));
    let script = format!(
        "#!/bin/sh\n# {name}: {versions}\nexec /{dir}/lib/{loader} --library-path /{dir}/lib /{dir}/lib/{program}.bin \"$@\"\n",
        name = p.name,
        versions = packages
            .iter()
            .map(|k| format!("{} {}", k.name, k.version))
            .collect::<Vec<_>>()
            .join(", "),
    );
    nodes.push(Node::bytes(
        &format!("{dir}/{program}"),
        script.into_bytes(),
        0o755,
    ));
    Ok((
        nodes,
        Carried {
            name: p.name.clone(),
            guest_path: p.guest_path(),
            packages,
        },
    ))
}

/// The loader and libraries `program` needs, found in `root`'s library directories by
/// the names its ELF headers give: name -> file.
fn closure(root: &Path, program: &Path) -> Result<BTreeMap<String, PathBuf>> {
    let dirs: Vec<PathBuf> = elf::DEFAULT_LIBRARY_DIRS
        .iter()
        .map(|d| root.join(d.trim_start_matches('/')))
        .collect();
    let find = |name: &str| dirs.iter().map(|d| d.join(name)).find(|p| p.exists());
    let mut files = BTreeMap::new();
    let mut todo = vec![program.to_path_buf()];
    while let Some(file) = todo.pop() {
        let data = std::fs::read(&file).with_context(|| format!("read {}", file.display()))?;
        let needs = elf::needs(&data).with_context(|| format!("{}", file.display()))?;
        let interp = needs.interpreter.iter().map(|i| file_name(i).to_string());
        for lib in interp.chain(needs.needed.iter().cloned()) {
            if files.contains_key(&lib) {
                continue;
            }
            let found = find(&lib).with_context(|| {
                format!(
                    "{} needs {lib}, which none of the packages holds",
                    file.display()
                )
            })?;
            files.insert(lib, found.clone());
            todo.push(found);
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packaged_program_goes_into_images_from_its_kernel_series_on() {
        let p = Packaged {
            name: "mdadm-4.6".into(),
            program: "usr/sbin/mdadm".into(),
            packages: vec![],
            from_kernel: "6.18".into(),
        };
        assert!(p.wanted_by("7.3.4+deb13-cloud-amd64"));
        assert!(p.wanted_by("6.18.15+deb13-cloud-amd64"));
        assert!(p.wanted_by("6.19.0"));
        assert!(!p.wanted_by("6.12.118+deb12-cloud-amd64"));
        assert!(!p.wanted_by("6.1.0-44-cloud-amd64"));
        assert!(!p.wanted_by("garbage"));
        assert_eq!(p.guest_path(), "/opt/mdadm-4.6/mdadm");
    }
}
