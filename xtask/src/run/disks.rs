//! A case's disks: sparse raw files in a directory of its own, opened by QEMU with
//! O_DIRECT where the host filesystem allows it.

use crate::case::Plan;
use crate::vm::Disk;
use anyhow::{Context, Result};
use std::path::Path;

pub fn create(plan: &Plan, dir: &Path) -> Result<Vec<Disk>> {
    let cache = host_cache_mode(dir);
    plan.disks
        .iter()
        .map(|d| {
            let path = dir.join(format!("{}.img", d.name));
            let f = std::fs::File::create(&path)
                .with_context(|| format!("create {}", path.display()))?;
            f.set_len(d.size)?; // sparse
            Ok(Disk::new(&d.name, path, cache))
        })
        .collect()
}

/// `cache=none` needs O_DIRECT on the host file (tmpfs has none): probe it once per dir.
fn host_cache_mode(dir: &Path) -> &'static str {
    use std::os::unix::fs::OpenOptionsExt;
    let probe = dir.join(".odirect");
    let ok = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(&probe)
        .is_ok();
    let _ = std::fs::remove_file(&probe);
    if ok {
        "none"
    } else {
        "writeback"
    }
}
