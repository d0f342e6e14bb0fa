//! What a scenario does to its disks from the host: slow one down (QMP I/O throttling),
//! put one behind QEMU's error injector (blkdebug).

use super::Scenario;
use crate::case::ThrottleSpec;
use crate::result::Failure;
use crate::vm::{Disk, Vm};
use anyhow::Context;
use std::path::Path;

/// Copies a disk image sparsely (reflinked where the filesystem can).
pub fn copy_image(from: &Path, to: &Path) -> anyhow::Result<()> {
    let mut cp = std::process::Command::new("cp");
    cp.args(["--sparse=always", "--reflink=auto"])
        .arg(from)
        .arg(to);
    crate::host::echo::command(&cp);
    let st = cp.status().context("run cp")?;
    anyhow::ensure!(st.success(), "copy {} to {}", from.display(), to.display());
    Ok(())
}

impl Scenario<'_, '_> {
    /// QEMU's name of `disk`'s drive (`drive1`).
    pub fn drive_id(&self, disk: &str) -> String {
        let index = self
            .plan
            .disks
            .iter()
            .position(|d| d.name == disk)
            .expect("validated");
        format!("drive{index}")
    }

    /// Slows one disk's writes with QMP `block_set_io_throttle`.
    pub fn throttle(&self, vm: &mut Vm, t: &ThrottleSpec) -> Result<(), Failure> {
        vm.qmp()
            .execute(
                "block_set_io_throttle",
                serde_json::json!({"device": self.drive_id(&t.disk), "bps": 0, "bps_rd": 0, "bps_wr": 0,
                    "iops": 0, "iops_rd": 0, "iops_wr": t.iops_write}),
            )
            .map(|_| ())
            .map_err(Failure::Bench)
    }

    /// The case's disks with `disk` behind blkdebug: EIO once on the first write that
    /// covers `sector` (reads pass, so md can still load what is there).
    pub fn blkdebug_disks(&self, disk: &str, sector: u64) -> Result<Vec<Disk>, Failure> {
        let rules = self.case_dir.join(format!("blkdebug-{disk}.conf"));
        let text = format!(
            "[inject-error]\nevent = \"write_aio\"\nerrno = \"5\"\niotype = \"write\"\nsector = \"{sector}\"\nonce = \"on\"\n"
        );
        std::fs::write(&rules, text).map_err(anyhow::Error::from)?;
        let mut disks = self.disks.to_vec();
        disks
            .iter_mut()
            .filter(|d| d.name == disk)
            .for_each(|d| d.blkdebug = Some(rules.clone()));
        Ok(disks)
    }
}
