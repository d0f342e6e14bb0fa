//! Boot once, restore many. A guest booted to a ready agent is saved with QMP migration
//! into a file, once per VM shape (kernel, image, QEMU, accelerator, memory, vCPUs, and the
//! number, sizes and cache modes of its disks); every VM of that shape then starts from
//! the file (`-incoming defer`, `migrate-incoming`) in about a second instead of booting.
//!
//! The pitfall: the saved guest has seen disks. They were all zeros when it was saved, as
//! a case's new disks are, but a later boot's disks are not: before the restored guest is
//! used, [`refresh_disks`] drops every block device's buffers and partitions and the page
//! cache, and then proves, disk by disk, that a buffered read is what an `O_DIRECT` read
//! finds on the disk. A guest that still sees stale data is an error, never a verdict.

use super::qmp::Qmp;
use super::{guest, Disk, Vm, VmConfig};
use crate::host::cache::Cache;
use crate::poll::{self, Pace, Probe};
use anyhow::{bail, Context, Result};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A restored VM that could not be started or trusted: the bench's failure, not the
/// kernel's (a kernel that does not boot fails the saved guest's own cold boot instead).
#[derive(Debug, thiserror::Error)]
#[error("restoring the saved guest: {0}")]
pub struct RestoreFailed(pub String);

/// The file of a saved guest in its cache entry.
const FILE: &str = "guest.mig";

/// The cache key of `cfg`'s shape; `base` names the kernel, image, QEMU and accelerator.
pub fn key(base: &str, cfg: &VmConfig) -> String {
    let mut h = Sha256::new();
    h.update(base.as_bytes());
    h.update(format!(
        "\0{}\0{}\0{}\0{:?}",
        cfg.memory_mib, cfg.cpus, cfg.cmdline, cfg.accel
    ));
    for d in &cfg.disks {
        let size = std::fs::metadata(&d.path).map(|m| m.len()).unwrap_or(0);
        // The write cache is negotiated at probe time (virtio's FLUSH feature): a guest
        // saved with one cannot be restored over a disk without.
        h.update(format!("\0{size}:{}", d.write_cache));
    }
    hex::encode(&h.finalize()[..12])
}

/// The saved guest of `cfg`'s shape, booted and saved first if the cache has none.
pub fn guest(cache: &Cache, base: &str, cfg: &VmConfig, limit: Duration) -> Result<PathBuf> {
    let entry = cache.entry("guests", &key(base, cfg), |dir| {
        // The shape's disks, as a case's new disks are: sparse files of zeros (host
        // caching is no part of what the guest sees: both modes present a write cache).
        let disks_dir = tempfile::Builder::new().prefix("disks-").tempdir_in(dir)?;
        let disks = cfg
            .disks
            .iter()
            .map(|d| {
                let size = std::fs::metadata(&d.path)
                    .with_context(|| format!("size of {}", d.path.display()))?
                    .len();
                Disk::zeros(disks_dir.path(), &d.name, size).map(|z| Disk {
                    write_cache: d.write_cache,
                    ..z
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let template = VmConfig {
            disks,
            console_log: dir.join("console.log"),
            incoming: None,
            ..cfg.clone()
        };
        let vm = Vm::start(&template, limit).context("boot the guest to save")?;
        vm.save(&dir.join(FILE), limit).context("save the guest")?;
        drop(disks_dir);
        Ok(())
    })?;
    Ok(entry.join(FILE))
}

/// Loads a saved guest into QEMU started with `-incoming defer`, and resumes it. The
/// stream reaches QEMU through a pipe the bench fills: QEMU may not spawn a `cat`
/// (`-sandbox spawn=deny`), and an unprivileged QEMU could not open the cache's file.
pub fn load(qmp: &mut Qmp, file: &Path, deadline: Instant) -> Result<()> {
    let mut saved =
        File::open(file).with_context(|| format!("open the saved guest {}", file.display()))?;
    let (reader, mut writer) = std::io::pipe().context("a pipe for the restore")?;
    // The writer ends with QEMU's end of the pipe: at the stream's end, or when QEMU dies.
    let feeder = std::thread::spawn(move || std::io::copy(&mut saved, &mut writer));
    qmp.send_fd(FD_NAME, &reader)?;
    drop(reader);
    qmp.execute(
        "migrate-incoming",
        json!({ "uri": format!("fd:{FD_NAME}") }),
    )
    .with_context(|| format!("restore the saved guest {}", file.display()))?;
    wait_migration(qmp, deadline, "restore")?;
    // QEMU read what it needed; a pipe it closed on the stream's trailing bytes is no error.
    let _ = feeder.join();
    qmp.execute("cont", json!({}))?;
    Ok(())
}

/// Stops the guest and migrates it into `file`, through a pipe the bench drains.
pub fn store(qmp: &mut Qmp, file: &Path, deadline: Instant) -> Result<()> {
    let mut out =
        File::create(file).with_context(|| format!("create the saved guest {}", file.display()))?;
    let (mut reader, writer) = std::io::pipe().context("a pipe for the save")?;
    let drainer = std::thread::spawn(move || {
        std::io::copy(&mut reader, &mut out)?;
        out.sync_all()
    });
    qmp.execute("stop", json!({}))?;
    qmp.send_fd(FD_NAME, &writer)?;
    drop(writer);
    qmp.execute("migrate", json!({ "uri": format!("fd:{FD_NAME}") }))?;
    wait_migration(qmp, deadline, "save")?;
    // The migration completed, so QEMU closed its end: the drainer is at the end of file.
    drainer
        .join()
        .map_err(|_| anyhow::anyhow!("the saved guest's writer panicked"))?
        .with_context(|| format!("write the saved guest {}", file.display()))
}

/// The name the migration's descriptor has in QEMU (`getfd`).
const FD_NAME: &str = "migration";

/// Polls `query-migrate` until the migration completed; its failure is an error.
fn wait_migration(qmp: &mut Qmp, deadline: Instant, what: &str) -> Result<()> {
    let limit = deadline.saturating_duration_since(Instant::now());
    poll::until(
        limit,
        Pace::ms(10, 100),
        || {
            let info = qmp.execute("query-migrate", json!({}))?;
            match info["status"].as_str().unwrap_or("none") {
                "completed" => Ok(Probe::Done(())),
                "failed" | "cancelled" => bail!(
                    "the {what} failed: {}",
                    info["error-desc"].as_str().unwrap_or("no reason given")
                ),
                status => Ok(Probe::Pending(status.to_string())),
            }
        },
        |status| {
            anyhow::anyhow!(
                "the {what} of the guest was still {status} at its deadline of {limit:?}"
            )
        },
    )
}

/// The bytes at the start of each disk that a restored guest must read as the disk holds
/// them (the partition scan of the saved guest read there).
const PROBE_BYTES: u64 = 64 << 10;

/// Makes a restored guest forget what it saw of its disks, then checks that it did: for
/// `disks` disks (`/dev/vda` on), a buffered read of their first bytes must equal an
/// `O_DIRECT` read. With `forget` false nothing is dropped: a test's way to show the check
/// catching a guest that remembers.
pub fn refresh_disks(vm: &mut Vm, disks: usize, forget: bool) -> Result<()> {
    let devs: Vec<String> = (0..disks)
        .map(|i| format!("/dev/vd{}", (b'a' + i as u8) as char))
        .collect();
    if forget {
        let mut cmd = String::new();
        for d in &devs {
            cmd.push_str(&format!(
                "blockdev --flushbufs {d} && (blockdev --rereadpt {d} 2>/dev/null; true) && "
            ));
        }
        // The saved guest's entropy pool is every restored guest's: stir it.
        let stir = hex::encode(rand_bytes());
        cmd.push_str(&format!(
            "echo 3 > /proc/sys/vm/drop_caches && echo {stir} > /dev/urandom"
        ));
        let out = guest::run(vm, &cmd, &[], Duration::from_secs(30))?;
        if !out.success() {
            bail!(
                "the restored guest could not drop its view of the disks: {}{}",
                out.stdout.trim(),
                out.stderr.trim()
            );
        }
    }
    for d in &devs {
        let cached = guest::read(vm, d, 0, PROBE_BYTES, false)?;
        let direct = guest::read(vm, d, 0, PROBE_BYTES, true)?;
        if cached != direct {
            bail!(
                "the restored guest's view of {d} is stale: a buffered read of its first {PROBE_BYTES} bytes differs from the disk"
            );
        }
    }
    Ok(())
}

fn rand_bytes() -> [u8; 16] {
    use std::io::Read;
    let mut b = [0u8; 16];
    let _ = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::Accel;

    fn cfg(dir: &Path, sizes: &[u64], memory_mib: u64) -> VmConfig {
        VmConfig {
            kernel: "k".into(),
            initrd: "i".into(),
            cmdline: String::new(),
            memory_mib,
            cpus: 2,
            accel: Accel::Tcg,
            disks: sizes
                .iter()
                .enumerate()
                .map(|(i, &s)| {
                    let path = dir.join(format!("d{i}.img"));
                    std::fs::File::create(&path).unwrap().set_len(s).unwrap();
                    Disk::new(&format!("d{i}"), path, "none")
                })
                .collect(),
            console_log: dir.join("c.log"),
            incoming: None,
        }
    }

    #[test]
    fn the_key_is_the_shape_not_the_files() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let one = key("k1", &cfg(a.path(), &[1 << 20, 2 << 20], 512));
        assert_eq!(one, key("k1", &cfg(b.path(), &[1 << 20, 2 << 20], 512)));
        assert_ne!(one, key("k2", &cfg(b.path(), &[1 << 20, 2 << 20], 512)));
        assert_ne!(one, key("k1", &cfg(b.path(), &[1 << 20, 3 << 20], 512)));
        assert_ne!(one, key("k1", &cfg(b.path(), &[1 << 20], 512)));
        assert_ne!(one, key("k1", &cfg(b.path(), &[1 << 20, 2 << 20], 1024)));
    }
}
