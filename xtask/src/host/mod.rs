//! What the host has: the checkout, the tools the bench runs, the one `apt-get install`
//! line that provides the missing ones, the cache, and whether KVM really runs a guest here.

mod accel;
pub mod archive;
pub mod cache;
pub mod echo;
pub mod logged;
pub mod owner;
pub mod scratch;

pub use accel::{pick_accel, Accel};

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The checkout this crate was built from.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

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
    // apt's warnings ("Download is performed unsandboxed as root") and progress are the
    // install's, kept in its log; the terminal gets this line, and the tail on a failure.
    let log = install_log();
    eprintln!("installing {what}: {line} (log: {})", log.display());
    let out = logged::output(
        Command::new("sh")
            .arg("-c")
            .arg(format!("DEBIAN_FRONTEND=noninteractive {line} || (apt-get update -q && DEBIAN_FRONTEND=noninteractive {line})")),
        &log,
    )
    .context("run apt-get")?;
    if !out.status.success() {
        bail!(
            "`{line}` failed ({}); no Debian archive reachable? (log: {}):\n{}",
            out.status,
            log.display(),
            logged::tail(&out, 5)
        );
    }
    Ok(())
}

/// Where `apt-get install`s of the bench are logged: under the cache, which every run on
/// the machine shares (the system's temporary directory when no cache can be named).
fn install_log() -> PathBuf {
    let dir =
        cache::Cache::from_env().map_or_else(|_| std::env::temp_dir(), |c| c.root().join("logs"));
    dir.join("apt-install.log")
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
