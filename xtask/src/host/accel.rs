//! The accelerator: KVM where it really runs a guest, else TCG.

use super::cache::Cache;
use super::qemu_version;
use anyhow::Result;
use std::path::Path;
use std::process::Command;

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
    super::cache::sha256_hex(s.as_bytes())
}

/// Boots `vmlinuz` under KVM with no root filesystem: a kernel that gets as far as looking
/// for one ran real guest code, which is all the probe asks.
fn kvm_boots(vmlinuz: &Path) -> bool {
    let mut cmd = Command::new("qemu-system-x86_64");
    // Sandboxed like every VM (`vm::sandbox`); it runs as the bench's user, since it is the
    // one QEMU that must open /dev/kvm by path, and it boots only to a missing root.
    cmd.args(crate::vm::sandbox::sandbox_args())
        .args([
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
    super::echo::command(&cmd);
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
