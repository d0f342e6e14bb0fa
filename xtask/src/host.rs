//! What the host has: the tools the bench runs, the one `apt-get install` line that provides
//! the missing ones, and whether KVM really runs a guest here.

use crate::cache::Cache;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A host tool the bench needs and the Debian package that ships it.
#[derive(Debug, Clone, Copy)]
pub struct Tool {
    /// A command on `PATH`, or an absolute path the package installs (a `-dev` header).
    pub command: &'static str,
    pub package: &'static str,
}

/// Everything a run needs on the host. The guest's tools are copied from the host, so they
/// are here too.
pub const TOOLS: &[Tool] = &[
    Tool {
        command: "qemu-system-x86_64",
        package: "qemu-system-x86",
    },
    Tool {
        command: "busybox",
        package: "busybox-static",
    },
    Tool {
        command: "mdadm",
        package: "mdadm",
    },
    Tool {
        command: "mke2fs",
        package: "e2fsprogs",
    },
    Tool {
        command: "e2fsck",
        package: "e2fsprogs",
    },
    Tool {
        command: "debugfs",
        package: "e2fsprogs",
    },
    Tool {
        command: "mkfs.xfs",
        package: "xfsprogs",
    },
    Tool {
        command: "dpkg-deb",
        package: "dpkg",
    },
    Tool {
        command: "apt-get",
        package: "apt",
    },
];

/// The path of `command` on `PATH` and in the sbin directories a non-root `PATH` lacks.
pub fn find_command(command: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(command))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn present(t: &Tool) -> bool {
    if t.command.starts_with('/') {
        Path::new(t.command).exists()
    } else {
        find_command(t.command).is_some()
    }
}

pub fn missing_tools(tools: &[Tool]) -> Vec<Tool> {
    tools.iter().copied().filter(|t| !present(t)).collect()
}

/// The one line that installs every package in `packages`.
pub fn apt_line(packages: &[&str]) -> String {
    let mut p = packages.to_vec();
    p.sort();
    p.dedup();
    format!("apt-get install -y --no-install-recommends {}", p.join(" "))
}

/// Installs the `missing` packages when root and allowed, otherwise fails with the line
/// to run; `what` names them for the user ("host tools (qemu-img)").
pub fn ensure_packages(what: &str, missing: &[&str], install: bool) -> Result<()> {
    if missing.is_empty() {
        return Ok(());
    }
    let line = apt_line(missing);
    let root = unsafe { libc::geteuid() } == 0;
    if !install || !root {
        bail!("{what} missing; install them with:\n  sudo {line}");
    }
    eprintln!("installing {what}: {line}");
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("DEBIAN_FRONTEND=noninteractive {line} || (apt-get update -q && DEBIAN_FRONTEND=noninteractive {line})"))
        .status()
        .context("run apt-get")?;
    if !status.success() {
        bail!("`{line}` failed ({status}); no Debian archive reachable?");
    }
    Ok(())
}

/// Installs what of `tools` is missing when root, otherwise fails with the line to run;
/// `what` names them for the user ("host tools", "kernel build tools").
pub fn ensure_tools(what: &str, tools: &[Tool], install: bool) -> Result<()> {
    let missing = missing_tools(tools);
    let names: Vec<&str> = missing.iter().map(|t| t.command).collect();
    let packages: Vec<&str> = missing.iter().map(|t| t.package).collect();
    ensure_packages(
        &format!("{what} ({})", names.join(", ")),
        &packages,
        install,
    )?;
    let still: Vec<&str> = missing_tools(tools).iter().map(|t| t.command).collect();
    if !still.is_empty() {
        bail!("still missing after apt-get: {}", still.join(", "));
    }
    Ok(())
}

pub fn qemu_version() -> Result<String> {
    first_line("qemu-system-x86_64", &["--version"]).context("is qemu-system-x86 installed?")
}

/// The first line a command prints (`gcc --version`).
pub fn first_line(cmd: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .with_context(|| format!("run {cmd} {}", args.join(" ")))?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string())
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn as_str(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// KVM when it really runs a guest here, else TCG. `/dev/kvm` opening is not enough: on
/// this project's machines it opens and every guest then dies with an emulation failure,
/// so a tiny boot decides, once per host, QEMU and host kernel.
pub fn pick_accel(cache: &Cache, vmlinuz: &Path) -> Result<Accel> {
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        return Ok(Accel::Tcg);
    }
    let host = format!(
        "{} {} {}",
        qemu_version()?,
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim(),
        cpu_model()
    );
    let key = format!("accel-{}", &sha256_str(&host)[..16]);
    let entry = cache.entry("host", &key, |dir| {
        let works = kvm_boots(vmlinuz);
        std::fs::write(dir.join("verdict"), if works { "kvm" } else { "tcg" })?;
        std::fs::write(dir.join("host"), &host)?;
        Ok(())
    })?;
    let verdict = std::fs::read_to_string(entry.join("verdict"))?;
    if verdict.trim() == "kvm" {
        Ok(Accel::Kvm)
    } else {
        eprintln!("note: /dev/kvm opens but cannot run a guest here (probed once, cached in {}); using TCG", entry.display());
        Ok(Accel::Tcg)
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .unwrap_or("")
        .to_string()
}

fn sha256_str(s: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Boots `vmlinuz` under KVM with no root filesystem: a kernel that gets as far as looking
/// for one ran real guest code, which is all the probe asks.
fn kvm_boots(vmlinuz: &Path) -> bool {
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args([
        "-accel",
        "kvm",
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-m",
        "256",
    ])
    .args(["-serial", "stdio", "-no-reboot", "-kernel"])
    .arg(vmlinuz)
    .args(["-append", "console=ttyS0 panic=-1 loglevel=4"]);
    let Ok(mut session) = rexpect::session::spawn_command(cmd, Some(30_000)) else {
        return false;
    };
    let verdict = session
        .exp_regex(r"(Kernel panic|VFS: Unable to mount|KVM internal error|failed to set MSR|Could not access KVM)")
        .map(|(_, m)| m.starts_with("Kernel panic") || m.starts_with("VFS"))
        .unwrap_or(false);
    let _ = session.process_mut().exit();
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apt_line_names_each_package_once() {
        let missing: Vec<&str> = [TOOLS[3], TOOLS[4], TOOLS[0]]
            .iter()
            .map(|t| t.package)
            .collect();
        assert_eq!(
            apt_line(&missing),
            "apt-get install -y --no-install-recommends e2fsprogs qemu-system-x86"
        );
    }
}
