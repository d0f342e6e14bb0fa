//! What the scenarios (crash, examination, re-add, bitmap EIO) share: the VMs of one
//! case, its guest commands, its phases and checks as they land in the result, the array
//! they build and take down, the block traces, and the readings of the disk images.

use crate::bench::Bench;
use crate::case::{
    ArraySpec, BitmapKind, CrashPoint, CrashSpec, Filesystem, Plan, ThrottleSpec, WorkloadSpec,
};
use crate::check::{self, Check};
use crate::guest::calls;
use crate::ondisk::{
    bitmap::Bitmap,
    ext4,
    redundancy::{self, Geometry},
    superblock, xfs,
};
use crate::report::{self, CaseResult, Phase};
use crate::run::{guest_run, poll_guest, Failure};
use crate::vm::{Disk, Vm};
use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const MNT: &str = "/mnt";
pub const WORKLOAD_PID: &str = "/tmp/workload.pid";
/// The memory cgroup the writers (and a case's dirtier) run in.
pub const WRITERS_CGROUP: &str = "/sys/fs/cgroup/writers";

pub struct Scenario<'a> {
    pub bench: &'a Bench,
    pub plan: &'a Plan,
    pub array: &'a ArraySpec,
    pub case_dir: &'a Path,
    pub disks: &'a [Disk],
    pub result: &'a mut CaseResult,
    pub phase_start: Instant,
}

impl<'a> Scenario<'a> {
    pub fn new(
        bench: &'a Bench,
        plan: &'a Plan,
        case_dir: &'a Path,
        disks: &'a [Disk],
        result: &'a mut CaseResult,
    ) -> Self {
        let array = plan
            .array
            .as_ref()
            .expect("validated: a scenario needs an array");
        Self {
            bench,
            plan,
            array,
            case_dir,
            disks,
            result,
            phase_start: Instant::now(),
        }
    }

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
                "mdadm --build /dev/md0 --level={} --raid-devices={} --bitmap={} --bitmap-chunk={}K {}",
                self.array.level,
                self.array.members.len(),
                self.bitmap_path(),
                self.array.bitmap.chunk.0 >> 10,
                self.members()
            )
        } else {
            let bitmap = if self.array.bitmap.grow {
                "none".to_string()
            } else {
                format!(
                    "{} --bitmap-chunk={}K",
                    self.bitmap_arg(),
                    self.array.bitmap.chunk.0 >> 10
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
                    "mdadm --grow /dev/md0 --bitmap={} --bitmap-chunk={}K",
                    self.bitmap_arg(),
                    self.array.bitmap.chunk.0 >> 10
                ),
                60,
            )?;
            self.phase("grow a bitmap");
        }
        let settle = self.wait_bitmap_clean(vm, Duration::from_secs(90))?;
        self.phase("initial resync and clean bitmap");
        Ok(settle)
    }

    /// Starts the seeded writer on md0 in the background after `preamble` (shell
    /// commands, each ending in `&& `); its pid lands in
    /// [`WORKLOAD_PID`], and the agent's spawn id is returned for reaping it.
    pub fn spawn_workload(
        &mut self,
        vm: &mut Vm,
        w: &WorkloadSpec,
        preamble: &str,
    ) -> Result<u32, Failure> {
        let size = self.sh(vm, "blockdev --getsize64 /dev/md0", 10)?;
        let span: u64 = size
            .trim()
            .parse()
            .map_err(|_| Failure::Bench(anyhow::anyhow!("md0 size {size:?}")))?;
        let span = w.span.map_or(span, |limit| span.min(limit.0));
        let workload = agent::workload::Workload {
            dev: "/dev/md0".into(),
            seed: self.plan.seed,
            writers: w.writers,
            min_io: w.min_io.0,
            max_io: w.max_io.0,
            span,
            direct: w.direct,
        };
        // The shell runs the preamble first (join a cgroup, mark itself for fault
        // injection), so the writers it execs inherit what it set.
        let cmd = format!(
            "{preamble}echo $$ > {WORKLOAD_PID}; exec /usr/bin/agent workload {}",
            agent::workload::args(&workload)
        );
        calls::spawn(vm, &cmd).map_err(Failure::Bench)
    }

    /// The verdict of the checks so far.
    pub fn verdict(&self) -> Result<(), Failure> {
        let failed: Vec<String> = self
            .result
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| format!("{}: {}", c.name, c.summary))
            .collect();
        if failed.is_empty() {
            Ok(())
        } else {
            Err(Failure::Case(failed.join("\n")))
        }
    }

    /// Where boot `n`'s console is captured.
    pub fn console_path(&self, n: u32) -> PathBuf {
        self.case_dir.join(format!("console-boot{n}.log"))
    }

    /// Boot `n`'s console as captured so far (whole once its QEMU is gone).
    pub fn console(&self, n: u32) -> String {
        std::fs::read_to_string(self.console_path(n)).unwrap_or_default()
    }

    pub fn boot(&mut self, n: u32) -> Result<Vm, Failure> {
        self.boot_with(n, self.disks.to_vec())
    }

    /// A boot with its own view of the disks (one behind blkdebug, say).
    pub fn boot_with(&mut self, n: u32, disks: Vec<Disk>) -> Result<Vm, Failure> {
        let console = self.console_path(n);
        let cfg = self.bench.vm_config(
            self.plan.vm.memory.0 >> 20,
            self.plan.vm.cpus,
            disks,
            console,
        );
        let vm = self
            .bench
            .boot(&cfg)
            .map_err(|e| Failure::Case(format!("boot {n}: {e:#}")))?;
        self.result.times.boot_ms.push(vm.boot.as_millis() as u64);
        self.result
            .times
            .guest_ready_uptime_ms
            .push(vm.guest_uptime_ms);
        Ok(vm)
    }

    /// Runs a setup command that must succeed; its failure fails the case with its output.
    pub fn sh(&self, vm: &mut Vm, cmd: &str, limit_s: u64) -> Result<String, Failure> {
        let out = guest_run(vm, cmd, &self.plan.env(), Duration::from_secs(limit_s))
            .map_err(|e| Failure::Case(format!("`{cmd}`: {e:#}\n{}", vm.console_tail(10))))?;
        if out.timed_out {
            return Err(self.stalled(vm, format!("`{cmd}` did not end within {limit_s} s")));
        }
        if !out.success() {
            return Err(Failure::Case(format!(
                "`{cmd}` failed ({}): {}{}\n{}",
                if out.timed_out {
                    "timed out".to_string()
                } else {
                    format!("status {:?}", out.status)
                },
                out.stdout.trim(),
                out.stderr.trim(),
                vm.console_tail(10)
            )));
        }
        Ok(out.stdout)
    }

    /// The failure of a guest that stopped making progress, with the stacks of its
    /// blocked tasks (sysrq `w`), also kept as `blocked-tasks.txt`.
    pub fn stalled(&self, vm: &mut Vm, why: String) -> Failure {
        let report = crate::stall::blocked_tasks(vm);
        let _ = std::fs::write(self.case_dir.join("blocked-tasks.txt"), &report);
        if report.is_empty() {
            return Failure::Case(format!(
                "{why}; sysrq w printed no blocked tasks\n{}",
                vm.console_tail(10)
            ));
        }
        let tasks = crate::stall::task_names(&report);
        Failure::Case(format!(
            "{why}; blocked tasks: {} (stacks in blocked-tasks.txt)\n{}",
            tasks.join(", "),
            report.lines().take(40).collect::<Vec<_>>().join("\n")
        ))
    }

    pub fn phase(&mut self, name: &str) {
        self.result.phases.push(Phase {
            name: name.into(),
            ms: self.phase_start.elapsed().as_millis() as u64,
        });
        self.phase_start = Instant::now();
        let _ = report::write_json(&self.case_dir.join("result.json"), &*self.result);
    }

    pub fn add(&mut self, c: Check) {
        self.result.checks.push(c);
        let _ = report::write_json(&self.case_dir.join("result.json"), &*self.result);
    }

    /// A measurement the case records but does not judge (checks are only what can fail).
    pub fn note_figure(&mut self, name: &str, value: impl serde::Serialize) {
        let value = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
        self.result.figures.insert(name.to_string(), value);
    }

    pub fn dev(&self, disk: &str) -> String {
        self.plan
            .disks
            .iter()
            .find(|d| d.name == disk)
            .map(|d| d.device.clone())
            .expect("validated disk name")
    }

    pub fn members(&self) -> String {
        self.array
            .members
            .iter()
            .map(|m| self.dev(m))
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn bitmap_path(&self) -> String {
        format!("{MNT}{}", self.array.bitmap.path)
    }

    pub fn is_file(&self) -> bool {
        self.array.bitmap.kind == BitmapKind::File
    }

    /// mdadm's `--bitmap=` value for create.
    pub fn bitmap_arg(&self) -> String {
        if self.is_file() {
            self.bitmap_path()
        } else {
            "internal".into()
        }
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

    pub fn dev_number(&self, vm: &mut Vm, disk: &str) -> Result<(u32, u32), Failure> {
        let name = self.dev(disk).trim_start_matches("/dev/").to_string();
        let text = self.sh(vm, &format!("cat /sys/block/{name}/dev"), 10)?;
        let (a, b) = text
            .trim()
            .split_once(':')
            .ok_or_else(|| Failure::Bench(anyhow::anyhow!("dev {text:?}")))?;
        Ok((a.parse().unwrap_or(0), b.parse().unwrap_or(0)))
    }

    /// Polls until no resync/recovery/check runs and the array is in sync.
    pub fn wait_in_sync(&self, vm: &mut Vm, limit: Duration) -> Result<(), Failure> {
        poll_guest(
            vm,
            // Prints md's state, so that a passed deadline says where md stood.
            "a=$(cat /sys/block/md0/md/sync_action) r=$(cat /sys/block/md0/md/resync_start) c=$(cat /sys/block/md0/md/sync_completed); echo \"sync_action $a, resync_start $r, sync_completed $c\"; [ \"$a\" = idle ] && [ \"$r\" = none ]",
            &[],
            limit,
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
            let sb = crate::ondisk::superblock::decode(&calls::read(vm, &dev, 4096, 4096, true)?)?;
            let sector = sb
                .bitmap_sector()
                .context("the member's superblock names no internal bitmap")?;
            (dev, sector * 512)
        };
        Ok(Bitmap::decode(&calls::read(
            vm,
            &path,
            offset,
            1 << 20,
            true,
        )?)?)
    }

    /// Polls the on-disk bitmap until no chunk is dirty, at most `limit`.
    pub fn wait_bitmap_clean(&self, vm: &mut Vm, limit: Duration) -> Result<Duration, Failure> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(200);
        loop {
            let b = self.guest_bitmap(vm).map_err(Failure::Bench)?;
            let dirty = b.dirty_count(0);
            if dirty == 0 {
                return Ok(started.elapsed());
            }
            if started.elapsed() > limit {
                return Err(Failure::Case(format!(
                    "the on-disk bitmap still had {dirty} of {} chunks dirty {limit:?} after the array went idle (deadline passed)",
                    b.chunks()
                )));
            }
            std::thread::sleep(pause); // poll with backoff until the deadline
            pause = (pause * 2).min(Duration::from_secs(1));
        }
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
        Ok(())
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

    /// Slows one disk's writes with QMP `block_set_io_throttle`.
    pub fn throttle(&self, vm: &mut Vm, t: &ThrottleSpec) -> Result<(), Failure> {
        let index = self
            .plan
            .disks
            .iter()
            .position(|d| d.name == t.disk)
            .expect("validated");
        vm.qmp()
            .execute(
                "block_set_io_throttle",
                serde_json::json!({"device": format!("drive{index}"), "bps": 0, "bps_rd": 0, "bps_wr": 0,
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

    /// SIGTERM to the writers, then reaps them through the agent.
    pub fn stop_workload(&self, vm: &mut Vm, id: u32) -> Result<(), Failure> {
        self.sh(vm, &format!("kill -TERM $(cat {WORKLOAD_PID})"), 10)?;
        match calls::wait(vm, id, Duration::from_secs(60)).map_err(Failure::Bench)? {
            Some(_) => Ok(()),
            None => Err(self.stalled(vm, "the workload did not end within 60 s of SIGTERM".into())),
        }
    }

    /// Starts recording every bio the members get (`block:block_bio_queue`), so what a
    /// resync or recovery writes is read from the block layer, not from md.
    pub fn start_block_trace(&self, vm: &mut Vm) -> Result<(), Failure> {
        self.sh(
            vm,
            "cd /sys/kernel/tracing && echo 65536 > buffer_size_kb && echo 1 > events/block/block_bio_queue/enable && echo > trace && echo 1 > tracing_on",
            30,
        )
        .map(|_| ())
    }

    /// Stops the trace, keeps it as `<name>-trace.txt`, and returns the bitmap chunks that
    /// md's resync or recovery touched on `members`: everything written, and what md's own
    /// threads read (raid10 and raid5/6 resyncs read every copy and write only what
    /// disagrees, so their reads show the extent of the resync).
    pub fn traced_resync(
        &self,
        vm: &mut Vm,
        members: &[String],
        before: &Readings,
        name: &str,
    ) -> Result<BTreeSet<u64>, Failure> {
        self.sh(vm, "echo 0 > /sys/kernel/tracing/tracing_on", 10)?;
        let trace = self.sh(vm, "cat /sys/kernel/tracing/trace", 60)?;
        std::fs::write(self.case_dir.join(format!("{name}-trace.txt")), &trace)
            .map_err(anyhow::Error::from)?;
        let ios = check::parse_block_trace(&trace);
        let mut chunks = BTreeSet::new();
        for m in members {
            let index = self
                .array
                .members
                .iter()
                .position(|x| x == m)
                .expect("a member");
            let dev = self.dev_number(vm, m)?;
            chunks.extend(check::resync_chunks(
                &ios,
                dev,
                before.data_offsets[index],
                |off, len| before.geometry.to_bitmap_space(index, off, len),
                before.bitmap.chunk_bytes(),
            ));
        }
        Ok(chunks)
    }

    /// The kernel's full-recovery announcements so far.
    pub fn full_recovery_messages(&self, vm: &mut Vm) -> Result<Vec<String>, Failure> {
        Ok(check::full_recovery_messages(&self.sh(vm, "dmesg", 10)?))
    }

    /// The end every scenario shares: `check` must find no mismatch, the on-disk bitmap
    /// must clear, and after a clean stop the images must hold identical members.
    pub fn converge(&mut self, mut vm: Vm, before: &Readings, label: &str) -> Result<(), Failure> {
        self.sh(&mut vm, "echo check > /sys/block/md0/md/sync_action", 10)?;
        self.wait_in_sync(&mut vm, Duration::from_secs(600))?;
        let mismatch: u64 = self
            .sh(&mut vm, "cat /sys/block/md0/md/mismatch_cnt", 10)?
            .trim()
            .parse()
            .unwrap_or(u64::MAX);
        let dirty_after = match self.wait_bitmap_clean(&mut vm, self.clean_limit(&before.bitmap)) {
            Ok(_) => 0,
            Err(_) => self
                .guest_bitmap(&mut vm)
                .map(|b| b.dirty_count(0))
                .unwrap_or(u64::MAX),
        };
        self.phase("check and bitmap clears");
        self.stop_array(&mut vm)?;
        vm.quit(Duration::from_secs(30)).map_err(Failure::Bench)?;
        let after = self.read_images(label).map_err(Failure::Bench)?;
        self.add(check::converged(
            &after.divergent,
            mismatch,
            dirty_after,
            after.bytes_compared,
        ));
        self.phase(&format!("judge images {label}"));
        self.verdict()
    }

    /// Waits for the kill point: bytes written to md0, or time since the load started.
    pub fn wait_kill_point(&self, vm: &mut Vm, crash: &CrashSpec) -> Result<u64, Failure> {
        let started = Instant::now();
        let limit = Duration::from_secs(300);
        let mut pause = Duration::from_millis(50);
        // While writing, the kill waits until the lagging member has writes queued in
        // QEMU too: only those are lost, so only then can the members differ (a slow
        // guest may never outrun the throttle, and would crash with nothing to judge).
        let lagging = crash
            .throttle
            .as_ref()
            .filter(|_| crash.at == CrashPoint::Writing)
            .map(|t| self.dev(&t.disk).trim_start_matches("/dev/").to_string());
        let cmd = match &lagging {
            Some(name) => format!("cat /sys/block/md0/stat /sys/block/{name}/inflight"),
            None => "cat /sys/block/md0/stat".to_string(),
        };
        loop {
            let stat = self.sh(vm, &cmd, 10)?;
            let fields: Vec<u64> = stat
                .split_whitespace()
                .map(|v| v.parse::<u64>().unwrap_or(0))
                .collect();
            let written = fields.get(6).copied().unwrap_or(0) * 512;
            // `inflight` (reads, writes) follows md0's stat fields.
            let lagging_writes = fields.last().copied().unwrap_or(0);
            let due = match (crash.after_written, crash.after_time) {
                (Some(bytes), _) => written >= bytes.0,
                (None, Some(t)) => started.elapsed() >= t,
                (None, None) => true,
            };
            // The first condition of the kill point not met yet, as a deadline would say it.
            let waiting_for = if !due {
                Some(format!("the workload wrote only {written} bytes"))
            } else if lagging.is_some() && lagging_writes == 0 {
                Some(format!(
                    "the throttled member {} never had a write in flight (the load does not outrun its throttle)",
                    lagging.as_deref().unwrap_or_default()
                ))
            } else if !self.pressure_ok(vm, crash)? {
                Some("the writers' cgroup never reached memory pressure (no memory.high/max event, no memory stall)".to_string())
            } else {
                None
            };
            let Some(why) = waiting_for else {
                return Ok(written);
            };
            if started.elapsed() > limit {
                return Err(self.stalled(vm, format!("{why} in {limit:?} (deadline passed)")));
            }
            if let Some(status) = vm.exited() {
                return Err(Failure::Case(format!(
                    "QEMU exited ({status}) during the workload"
                )));
            }
            std::thread::sleep(pause); // poll with backoff until the kill point's deadline
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    }

    /// Under a case's memory pressure, whether the writers' cgroup has met it yet: a
    /// crash before that (a slow guest, a slow dirtier) would prove nothing about it.
    fn pressure_ok(&self, vm: &mut Vm, crash: &CrashSpec) -> Result<bool, Failure> {
        if crash.pressure.is_none() {
            return Ok(true);
        }
        let cg = WRITERS_CGROUP;
        let events = self.sh(vm, &format!("cat {cg}/memory.events"), 10)?;
        let psi = self.sh(vm, &format!("cat {cg}/memory.pressure"), 10)?;
        Ok(check::pressure_reached(&events, &psi).ok)
    }

    /// Reads the members' superblocks and data, and the bitmap file out of the ext4 image.
    /// The bitmap file's bytes are kept as `bitmap-<label>.bin` beside the result.
    pub fn read_images(&self, label: &str) -> Result<Readings> {
        let path_of = |name: &str| {
            self.disks
                .iter()
                .find(|d| d.name == name)
                .map(|d| d.path.clone())
                .expect("validated")
        };
        let (bytes, source) = if self.is_file() {
            let fs_image = path_of(&self.array.bitmap.disk);
            let map = match self.array.bitmap.fs {
                Filesystem::Ext4 => ext4::locate(&fs_image, &self.array.bitmap.path)?,
                Filesystem::Xfs => xfs::locate(&fs_image, &self.array.bitmap.path)?,
            };
            (ext4::read(&fs_image, &map)?, fs_image)
        } else {
            // The control: the bitmap md keeps inside the first member, where its
            // superblock says.
            let image = path_of(&self.array.members[0]);
            let mut f = std::fs::File::open(&image)?;
            let size = f.metadata()?.len();
            let (_, sb) = superblock::read_from(&mut f, size)?;
            let sector = sb
                .bitmap_sector()
                .context("no internal bitmap in the superblock")?;
            let mut head = vec![0u8; 256];
            f.seek(SeekFrom::Start(sector * 512))?;
            f.read_exact(&mut head)?;
            let len = crate::ondisk::bitmap::BitmapSuper::decode(&head)?.required_len()?;
            let mut bytes = vec![0u8; len as usize];
            f.seek(SeekFrom::Start(sector * 512))?;
            f.read_exact(&mut bytes)?;
            (bytes, image)
        };
        std::fs::write(self.case_dir.join(format!("bitmap-{label}.bin")), &bytes)?;
        let bitmap = Bitmap::decode(&bytes)
            .with_context(|| format!("decode the bitmap read from {}", source.display()))?;
        let paths: Vec<PathBuf> = self.array.members.iter().map(|m| path_of(m)).collect();
        let judged = redundancy::judge_images(
            &paths,
            !self.array.build,
            bitmap.sb.sync_size * 512,
            bitmap.chunk_bytes(),
        )?;
        let (divergent, bytes_compared) =
            (judged.divergence.chunks, judged.divergence.bytes_compared);
        let (data_offsets, geometry) = (judged.data_offsets, judged.geometry);
        Ok(Readings {
            bitmap,
            divergent,
            bytes_compared,
            data_offsets,
            geometry,
        })
    }
}

/// What the host reads from the images after a VM is gone.
pub struct Readings {
    pub bitmap: Bitmap,
    pub divergent: Vec<u64>,
    /// Bytes of bitmap space judged.
    pub bytes_compared: u64,
    /// Sectors.
    pub data_offsets: Vec<u64>,
    pub geometry: Geometry,
}
