//! The array a scenario builds, assembles and takes down, and the states it waits for:
//! in sync, bitmap clean, converged.

use super::{Scenario, MNT};
use crate::case::Filesystem;
use crate::check;
use crate::ondisk::bitmap::Bitmap;
use crate::poll::{self, Pace, Probe};
use crate::result::Failure;
use crate::scenario::images::Readings;
use crate::vm::{guest, Vm};
use anyhow::{Context, Result};
use std::time::{Duration, Instant};

impl Scenario<'_, '_> {
    /// mkfs + mount the bitmap's filesystem, create the array with its file bitmap, let
    /// the initial resync end and the daemon clear every bit: a scenario that started
    /// from a bitmap dirty everywhere would prove nothing.
    pub fn create_settled_array(&mut self, vm: &mut Vm) -> Result<Duration, Failure> {
        if self.is_file() {
            let fs = self.dev(&self.array.bitmap.disk);
            self.sh(
                vm,
                &match self.array.bitmap.fs {
                    Filesystem::Ext4 => format!("mkfs.ext4 -q -F -b 4096 {fs}"),
                    Filesystem::Xfs => format!("mkfs.xfs -q -f {fs}"),
                },
                120,
            )?;
            self.mount_bitmap_fs(vm)?;
        }
        let create = if self.array.build {
            // No superblocks: md knows the array only from this command, and the bitmap
            // file is all it keeps of its state.
            format!(
                "mdadm --build /dev/md0 --level={} --raid-devices={} --bitmap={} --bitmap-chunk={}K --delay={} {}",
                self.array.level,
                self.array.members.len(),
                self.bitmap_path(),
                self.array.bitmap.chunk.0 >> 10,
                self.array.bitmap.daemon_sleep.as_secs(),
                self.members()
            )
        } else {
            let bitmap = if self.array.bitmap.grow {
                "none".to_string()
            } else if self.is_lockless() {
                // md picks the lockless bitmap's chunk ("lockless bitmap doesn't support
                // chunksize"), and its period is set through sysfs below.
                self.bitmap_arg()
            } else {
                format!(
                    "{} --bitmap-chunk={}K --delay={}",
                    self.bitmap_arg(),
                    self.array.bitmap.chunk.0 >> 10,
                    self.array.bitmap.daemon_sleep.as_secs()
                )
            };
            format!(
                "mdadm --create /dev/md0 --run --level={} --raid-devices={} --metadata=1.2 --bitmap={bitmap} {}",
                self.array.level,
                self.array.members.len(),
                self.members()
            )
        };
        self.sh(vm, &create, 60)?;
        self.set_lockless_daemon_sleep(vm)?;
        if self.is_file() && self.array.bitmap.fs == Filesystem::Xfs {
            // The host reads XFS metadata in place, not from the log: a freeze writes the
            // new file's inode and extents home.
            self.sh(
                vm,
                &format!("fsfreeze --freeze {MNT} && fsfreeze --unfreeze {MNT}"),
                60,
            )?;
        }
        self.phase("create");
        self.wait_in_sync(vm, Duration::from_secs(600))?;
        if self.array.bitmap.grow {
            // mdadm's old 05r1-grow-external: the bitmap joins an array already running.
            self.sh(
                vm,
                &format!(
                    "mdadm --grow /dev/md0 --bitmap={} --bitmap-chunk={}K --delay={}",
                    self.bitmap_arg(),
                    self.array.bitmap.chunk.0 >> 10,
                    self.array.bitmap.daemon_sleep.as_secs()
                ),
                60,
            )?;
            self.phase("grow a bitmap");
        }
        self.check_daemon_sleep(vm)?;
        let settle = match self.wait_bitmap_clean(vm, Duration::from_secs(90)) {
            Ok(d) => {
                self.add(check::initial_bitmap_clean(Ok(d)));
                d
            }
            Err(Failure::Case(why)) => {
                self.add(check::initial_bitmap_clean(Err(why)));
                return self.verdict().map(|()| Duration::ZERO);
            }
            Err(e) => return Err(e),
        };
        self.phase("initial resync and clean bitmap");
        Ok(settle)
    }

    /// mdadm's `--bitmap=` value for create.
    pub fn bitmap_arg(&self) -> String {
        if self.is_file() {
            self.bitmap_path()
        } else {
            self.array.bitmap.kind.as_str().into()
        }
    }

    /// The lockless bitmap starts with a 30 s period whatever mdadm asks
    /// (`llbitmap_init`), and takes the case's through sysfs; md writes it into the
    /// bitmap's superblock with the next superblock update, so every assembly sets it
    /// again.
    fn set_lockless_daemon_sleep(&self, vm: &mut Vm) -> Result<(), Failure> {
        if self.is_lockless() {
            self.sh(
                vm,
                &format!(
                    "echo {} > {LLBITMAP_SYSFS}/daemon_sleep",
                    self.array.bitmap.daemon_sleep.as_secs()
                ),
                10,
            )?;
        }
        Ok(())
    }

    /// The lockless bitmap's chunks by state as md holds them (`llbitmap/bits`), the
    /// states a reload resyncs counted apart: md writes a chunk's Clean only with the
    /// next write of its block, so the disk keeps Dirty after the daemon cleared it.
    fn llbitmap_unclean(&self, vm: &mut Vm) -> Result<(u64, u64), Failure> {
        let text = self.sh(vm, &format!("cat {LLBITMAP_SYSFS}/bits"), 10)?;
        llbitmap_census(&text).ok_or_else(|| {
            Failure::Bench(anyhow::anyhow!(
                "{LLBITMAP_SYSFS}/bits: not md's census of states: {text:?}"
            ))
        })
    }

    /// What `mdadm --assemble` needs to find the bitmap: a file is named, an internal
    /// one is found through the superblock.
    pub fn assemble_bitmap_arg(&self) -> String {
        if self.is_file() {
            format!("--bitmap={}", self.bitmap_path())
        } else {
            String::new()
        }
    }

    /// Polls until no resync/recovery/check runs and the array is in sync.
    pub fn wait_in_sync(&self, vm: &mut Vm, limit: Duration) -> Result<(), Failure> {
        guest::poll_until_showing(
            vm,
            // Prints md's state, so that a passed deadline says where md stood.
            "a=$(cat /sys/block/md0/md/sync_action) r=$(cat /sys/block/md0/md/resync_start) c=$(cat /sys/block/md0/md/sync_completed); echo \"sync_action $a, resync_start $r, sync_completed $c\"; [ \"$a\" = idle ] && [ \"$r\" = none ]",
            &[],
            limit,
            &mut |out| {
                if let Some(now) = sync_progress(&out.stdout) {
                    self.rec.status(&now);
                }
            },
        )
        .map(|_| ())
        .map_err(|e| Failure::Case(format!("waiting for md0 to be in sync: {e:#}")))
    }

    /// The bitmap file as md wrote it, read in the guest with O_DIRECT (the page cache
    /// of the file may be stale while the array runs).
    pub fn guest_bitmap(&self, vm: &mut Vm) -> Result<Bitmap> {
        let (path, offset) = if self.is_file() {
            (self.bitmap_path(), 0)
        } else {
            // An internal bitmap: where the first member's (v1.2) superblock says it is.
            let dev = self.dev(&self.array.members[0]);
            let sb = crate::ondisk::superblock::decode(&guest::read(vm, &dev, 4096, 4096, true)?)?;
            let sector = sb
                .bitmap_sector()
                .context("the member's superblock names no internal bitmap")?;
            (dev, sector * 512)
        };
        Ok(Bitmap::decode(&guest::read(
            vm,
            &path,
            offset,
            1 << 20,
            true,
        )?)?)
    }

    /// The bitmap md uses must have the case's daemon period (`mdadm --delay`), or every
    /// wait for clean bits is computed for another one.
    pub fn check_daemon_sleep(&self, vm: &mut Vm) -> Result<(), Failure> {
        let asked = self.array.bitmap.daemon_sleep.as_secs();
        let got: u32 = if self.is_lockless() {
            let text = self.sh(vm, &format!("cat {LLBITMAP_SYSFS}/daemon_sleep"), 10)?;
            text.trim().parse().map_err(|_| {
                Failure::Bench(anyhow::anyhow!(
                    "{LLBITMAP_SYSFS}/daemon_sleep: {text:?} is no number"
                ))
            })?
        } else {
            self.guest_bitmap(vm)
                .map_err(Failure::Bench)?
                .sb
                .daemon_sleep
        };
        if u64::from(got) != asked {
            return Err(Failure::Bench(anyhow::anyhow!(
                "the bitmap's daemon_sleep is {got} s where the case asked for {asked} s (mdadm --delay)"
            )));
        }
        Ok(())
    }

    /// Polls the on-disk bitmap until no chunk is dirty, at most `limit`; the lockless
    /// bitmap's states in md's memory, which is where its daemon clears them.
    pub fn wait_bitmap_clean(&self, vm: &mut Vm, limit: Duration) -> Result<Duration, Failure> {
        let started = Instant::now();
        let what = if self.is_lockless() {
            "md's lockless bitmap"
        } else {
            "the on-disk bitmap"
        };
        poll::until(
            limit,
            Pace::ms(200, 1000),
            || {
                let (dirty, chunks) = if self.is_lockless() {
                    self.llbitmap_unclean(vm)?
                } else {
                    let b = self.guest_bitmap(vm).map_err(Failure::Bench)?;
                    (b.dirty_count(0), b.chunks())
                };
                Ok(match dirty {
                    0 => Probe::Done(started.elapsed()),
                    _ => Probe::Pending((dirty, chunks)),
                })
            },
            |(dirty, chunks)| {
                Failure::Case(format!(
                    "{what} still had {dirty} of {chunks} chunks dirty {limit:?} after the array went idle (deadline passed)"
                ))
            },
        )
    }

    /// Bits clear over two daemon periods after the last write; allow a few more.
    pub fn clean_limit(&self, b: &Bitmap) -> Duration {
        Duration::from_secs(u64::from(b.sb.daemon_sleep) * 4 + 20)
    }

    /// Mounts the bitmap's filesystem (a file bitmap) and assembles md0 from `devices`
    /// (mdadm options may lead).
    pub fn assemble(&self, vm: &mut Vm, devices: &str) -> Result<(), Failure> {
        self.mount_bitmap_fs(vm)?;
        self.assemble_array(vm, devices)
    }

    /// Mounts the filesystem that holds the bitmap file (nothing for an internal bitmap).
    pub fn mount_bitmap_fs(&self, vm: &mut Vm) -> Result<(), Failure> {
        if self.is_file() {
            self.sh(
                vm,
                &format!(
                    "{}mount {} {MNT}",
                    if self.array.bitmap.fs == Filesystem::Xfs {
                        "modprobe xfs; "
                    } else {
                        ""
                    },
                    self.dev(&self.array.bitmap.disk)
                ),
                60,
            )?;
        }
        Ok(())
    }

    /// Assembles (or builds) md0 from `devices`, the bitmap's filesystem mounted.
    pub fn assemble_array(&self, vm: &mut Vm, devices: &str) -> Result<(), Failure> {
        let cmd = if self.array.build {
            format!(
                "mdadm --build /dev/md0 --level={} --raid-devices={} {} {devices}",
                self.array.level,
                self.array.members.len(),
                self.assemble_bitmap_arg()
            )
        } else {
            format!(
                "mdadm --assemble /dev/md0 --run {} {devices}",
                self.assemble_bitmap_arg()
            )
        };
        self.sh(vm, &cmd, 60)?;
        self.set_lockless_daemon_sleep(vm)
    }

    /// Stops md0 and unmounts the bitmap's filesystem, so the images are whole.
    pub fn stop_array(&self, vm: &mut Vm) -> Result<(), Failure> {
        let umount = if self.is_file() {
            format!(" && umount {MNT}")
        } else {
            String::new()
        };
        self.sh(vm, &format!("mdadm --stop /dev/md0{umount} && sync"), 60)
            .map(|_| ())
    }

    /// The end every scenario shares: `check` must find no mismatch, the on-disk bitmap
    /// must clear, and after a clean stop the images must hold identical members.
    pub fn converge(&mut self, vm: Vm, before: &Readings, label: &str) -> Result<(), Failure> {
        self.converge_judging(vm, before, label, true)
    }

    /// [`Scenario::converge`] for an array that runs without its bitmap (md refused it):
    /// the members are judged in the chunks of `before`'s bitmap, and no bitmap has to
    /// clear.
    pub fn converge_without_bitmap(
        &mut self,
        vm: Vm,
        before: &Readings,
        label: &str,
    ) -> Result<(), Failure> {
        self.converge_judging(vm, before, label, false)
    }

    fn converge_judging(
        &mut self,
        mut vm: Vm,
        before: &Readings,
        label: &str,
        bitmap: bool,
    ) -> Result<(), Failure> {
        self.sh(&mut vm, "echo check > /sys/block/md0/md/sync_action", 10)?;
        self.wait_in_sync(&mut vm, Duration::from_secs(600))?;
        let mismatch: u64 = self
            .sh(&mut vm, "cat /sys/block/md0/md/mismatch_cnt", 10)?
            .trim()
            .parse()
            .unwrap_or(u64::MAX);
        let dirty_after = if !bitmap {
            0
        } else {
            match self.wait_bitmap_clean(&mut vm, self.clean_limit(&before.bitmap)) {
                Ok(_) => 0,
                Err(_) => self
                    .guest_bitmap(&mut vm)
                    .map(|b| b.dirty_count(0))
                    .unwrap_or(u64::MAX),
            }
        };
        self.phase(if bitmap {
            "check and bitmap clears"
        } else {
            "check"
        });
        self.stop_array(&mut vm)?;
        vm.quit(Duration::from_secs(30)).map_err(Failure::Bench)?;
        let after = if bitmap {
            self.read_images(label)
        } else {
            self.read_members_with(&before.bitmap)
        }
        .map_err(Failure::Bench)?;
        self.add(check::converged(
            &after.divergent,
            mismatch,
            dirty_after,
            after.bytes_compared,
        ));
        self.phase(&format!("judge images {label}"));
        self.verdict()
    }
}

/// Where md shows the lockless bitmap of md0.
const LLBITMAP_SYSFS: &str = "/sys/block/md0/md/llbitmap";

/// (chunks a reload would resync, all chunks) from `llbitmap/bits` (`bits_show`:
/// `unwritten 10\nclean 3\ndirty 1\nneed sync 0\n...`); None when it is not that.
fn llbitmap_census(text: &str) -> Option<(u64, u64)> {
    let mut unclean = 0;
    let mut all = 0;
    let mut seen = 0;
    for line in text.lines() {
        let (state, count) = line.trim().rsplit_once(' ')?;
        let count: u64 = count.parse().ok()?;
        all += count;
        seen += 1;
        if matches!(state, "dirty" | "need sync" | "syncing") {
            unclean += count;
        }
    }
    (seen >= 5).then_some((unclean, all))
}

/// The resync's progress from the wait's answer (`sync_action resync, resync_start ...,
/// sync_completed 1024 / 262144`) as a live row shows it: `resync 0.4%`. None when md
/// is not syncing (`sync_completed none`).
fn sync_progress(answer: &str) -> Option<String> {
    let action = answer
        .split("sync_action ")
        .nth(1)?
        .split(',')
        .next()?
        .trim();
    let (done, total) = answer.split("sync_completed ").nth(1)?.split_once('/')?;
    let done: f64 = done.trim().parse().ok()?;
    let total: f64 = total.split_whitespace().next()?.parse().ok()?;
    (total > 0.0).then(|| format!("{action} {:.1}%", 100.0 * done / total))
}

#[cfg(test)]
mod tests {
    use super::{llbitmap_census, sync_progress};

    #[test]
    fn the_lockless_census_counts_what_a_reload_resyncs() {
        let text = "unwritten 10\nclean 3\ndirty 1\nneed sync 2\nsyncing 0\nneed sync unwritten 4\nsyncing unwritten 0\nclean unwritten 0\n";
        assert_eq!(llbitmap_census(text), Some((3, 20)));
        assert_eq!(llbitmap_census("no bitmap\n"), None);
        assert_eq!(llbitmap_census("bitmap io error\n"), None);
    }

    #[test]
    fn the_resyncs_progress_comes_from_sync_completed() {
        assert_eq!(
            sync_progress("sync_action resync, resync_start 2048, sync_completed 65536 / 262144\n")
                .as_deref(),
            Some("resync 25.0%")
        );
        assert_eq!(
            sync_progress("sync_action recover, resync_start none, sync_completed 1 / 3"),
            Some("recover 33.3%".into())
        );
        assert_eq!(
            sync_progress("sync_action idle, resync_start none, sync_completed none"),
            None
        );
        assert_eq!(sync_progress("garbage"), None);
    }
}
