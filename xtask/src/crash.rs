//! The crash scenario: build a mirror whose bitmap lives in a file, load it with seeded
//! random writes while one member lags, SIGKILL QEMU, and judge from the raw images:
//! 1. safety: every chunk where the members differ is dirty in the on-disk bitmap;
//! 2. resync bounds: the next assembly resyncs no chunk outside the bitmap and every
//!    divergent chunk (traced from the guest's block layer, not from md's own account);
//! 3. convergence: members identical, `check` finds nothing, the bitmap clean again.

use crate::bench::Bench;
use crate::case::{ArraySpec, CrashSpec, Plan};
use crate::check::{self, Check};
use crate::ondisk::{bitmap::Bitmap, compare, ext4, superblock};
use crate::report::{self, CaseResult, Phase};
use crate::run::{guest_run, poll_guest, Failure};
use crate::vm::{Disk, Vm};
use agent::{Request, Response};
use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

const MNT: &str = "/mnt";

/// Runs the scenario; each check lands in `result` as it is judged.
pub fn execute(
    bench: &Bench,
    plan: &Plan,
    case_dir: &Path,
    disks: &[Disk],
    result: &mut CaseResult,
) -> Result<(), Failure> {
    let array = plan
        .array
        .as_ref()
        .expect("validated: crash needs an array");
    let crash = plan.crash.as_ref().expect("called for crash cases");
    let mut s = Scenario {
        bench,
        plan,
        array,
        case_dir,
        disks,
        result,
        phase_start: Instant::now(),
    };
    s.run(crash)
}

struct Scenario<'a> {
    bench: &'a Bench,
    plan: &'a Plan,
    array: &'a ArraySpec,
    case_dir: &'a Path,
    disks: &'a [Disk],
    result: &'a mut CaseResult,
    phase_start: Instant,
}

/// What the host reads from the images after a VM is gone.
struct Readings {
    bitmap: Bitmap,
    divergent: Vec<u64>,
    bytes_compared: u64,
    data_offsets: Vec<u64>,
}

impl Scenario<'_> {
    fn run(&mut self, crash: &CrashSpec) -> Result<(), Failure> {
        // Boot 1: build the array, let it settle, load it, kill QEMU.
        let mut vm = self.boot(1)?;
        self.phase("boot 1");
        self.sh(
            &mut vm,
            &format!(
                "mkfs.ext4 -q -F -b 4096 {fs} && mount {fs} {MNT}",
                fs = self.dev(&self.array.bitmap.disk)
            ),
            120,
        )?;
        let members = self.members();
        let create = format!(
            "mdadm --create /dev/md0 --run --level={} --raid-devices={} --metadata=1.2 --bitmap={} --bitmap-chunk={}K {}",
            self.array.level,
            self.array.members.len(),
            self.bitmap_path(),
            self.array.bitmap.chunk.0 >> 10,
            members
        );
        self.sh(&mut vm, &create, 60)?;
        self.phase("create");
        // The initial resync must end and the daemon must clear every bit, or the crash
        // would start from a bitmap that is dirty everywhere and prove nothing.
        self.wait_in_sync(&mut vm, Duration::from_secs(600))?;
        let settle = self.wait_bitmap_clean(&mut vm, Duration::from_secs(90))?;
        self.phase("initial resync and clean bitmap");
        if let Some(t) = &crash.throttle {
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
                .map_err(Failure::Bench)?;
        }
        let size = self.sh(&mut vm, "blockdev --getsize64 /dev/md0", 10)?;
        let span: u64 = size
            .trim()
            .parse()
            .map_err(|_| Failure::Bench(anyhow::anyhow!("md0 size {size:?}")))?;
        let w = &crash.workload;
        let workload = agent::workload::Workload {
            dev: "/dev/md0".into(),
            seed: self.plan.seed,
            writers: w.writers,
            min_io: w.min_io.0,
            max_io: w.max_io.0,
            span,
            direct: w.direct,
        };
        let cmd = format!(
            "/usr/bin/agent workload {}",
            agent::workload::args(&workload)
        );
        match vm
            .call(
                &Request::Spawn { cmd, env: vec![] },
                Duration::from_secs(10),
            )
            .map_err(anyhow::Error::from)?
        {
            Response::Spawned { .. } => {}
            other => return Err(Failure::Bench(anyhow::anyhow!("spawn workload: {other:?}"))),
        }
        let written = self.wait_kill_point(&mut vm, crash)?;
        self.phase("workload");
        vm.kill().map_err(Failure::Bench)?;
        self.note_figure("written_before_kill_bytes", written);
        self.note_figure("initial_bitmap_clean_after_ms", settle.as_millis() as u64);
        self.phase("kill");

        // From the images: what differs, what the bitmap says.
        let before = self.read_images("after-crash").map_err(Failure::Bench)?;
        let dirty: BTreeSet<u64> = before.bitmap.dirty_chunks(0).into_iter().collect();
        self.add(check::crash_left_divergence(&before.divergent));
        self.add(check::safety(
            &before.divergent,
            &dirty,
            before.bitmap.chunks(),
            before.bytes_compared,
        ));
        self.phase("judge images after crash");

        // Boot 2: assemble from the same disks with the block layer traced; the resync
        // md does is read from the trace, not from md.
        let mut vm = self.boot(2)?;
        self.phase("boot 2");
        self.sh(
            &mut vm,
            &format!("mount {} {MNT}", self.dev(&self.array.bitmap.disk)),
            60,
        )?;
        self.sh(
            &mut vm,
            "cd /sys/kernel/tracing && echo 65536 > buffer_size_kb && echo 1 > events/block/block_bio_queue/enable && echo > trace && echo 1 > tracing_on",
            30,
        )?;
        self.sh(
            &mut vm,
            &format!(
                "mdadm --assemble /dev/md0 --run --bitmap={} {}",
                self.bitmap_path(),
                members
            ),
            60,
        )?;
        self.wait_in_sync(&mut vm, Duration::from_secs(600))?;
        self.sh(&mut vm, "echo 0 > /sys/kernel/tracing/tracing_on", 10)?;
        self.phase("assemble and resync");
        let trace = self.sh(&mut vm, "cat /sys/kernel/tracing/trace", 60)?;
        std::fs::write(self.case_dir.join("resync-trace.txt"), &trace)
            .map_err(anyhow::Error::from)?;
        let dmesg = self.sh(&mut vm, "dmesg", 10)?;
        let ios = check::parse_block_trace(&trace);
        let mut resynced = BTreeSet::new();
        for (i, m) in self.array.members.iter().enumerate() {
            let dev = self.dev_number(&mut vm, m)?;
            resynced.extend(check::written_chunks(
                &ios,
                dev,
                before.data_offsets[i],
                before.bitmap.chunk_bytes(),
            ));
        }
        let full = check::full_recovery_messages(&dmesg);
        self.add(check::resync_bounds(
            &resynced,
            &dirty,
            &before.divergent,
            &full,
        ));

        self.sh(&mut vm, "echo check > /sys/block/md0/md/sync_action", 10)?;
        self.wait_in_sync(&mut vm, Duration::from_secs(600))?;
        let mismatch: u64 = self
            .sh(&mut vm, "cat /sys/block/md0/md/mismatch_cnt", 10)?
            .trim()
            .parse()
            .unwrap_or(u64::MAX);
        self.phase("check");
        let cleared = self.wait_bitmap_clean(&mut vm, self.clean_limit(&before.bitmap));
        let dirty_after = match &cleared {
            Ok(_) => 0,
            Err(_) => self
                .guest_bitmap(&mut vm)
                .map(|b| b.dirty_count(0))
                .unwrap_or(u64::MAX),
        };
        self.phase("bitmap clears");
        self.sh(
            &mut vm,
            &format!("mdadm --stop /dev/md0 && umount {MNT} && sync"),
            60,
        )?;
        vm.quit(Duration::from_secs(30)).map_err(Failure::Bench)?;
        let after = self.read_images("after-resync").map_err(Failure::Bench)?;
        self.add(check::converged(
            &after.divergent,
            mismatch,
            dirty_after,
            after.bytes_compared,
        ));
        self.phase("judge images after resync");

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

    fn boot(&mut self, n: u32) -> Result<Vm, Failure> {
        let console = self.case_dir.join(format!("console-boot{n}.log"));
        let cfg = self.bench.vm_config(
            self.plan.vm.memory.0 >> 20,
            self.plan.vm.cpus,
            self.disks.to_vec(),
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
    fn sh(&self, vm: &mut Vm, cmd: &str, limit_s: u64) -> Result<String, Failure> {
        let out = guest_run(vm, cmd, &self.plan.env(), Duration::from_secs(limit_s))
            .map_err(|e| Failure::Case(format!("`{cmd}`: {e:#}\n{}", vm.console_tail(10))))?;
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

    fn phase(&mut self, name: &str) {
        self.result.phases.push(Phase {
            name: name.into(),
            ms: self.phase_start.elapsed().as_millis() as u64,
        });
        self.phase_start = Instant::now();
        let _ = report::write_json(&self.case_dir.join("result.json"), &*self.result);
    }

    fn add(&mut self, c: Check) {
        self.result.checks.push(c);
        let _ = report::write_json(&self.case_dir.join("result.json"), &*self.result);
    }

    fn note_figure(&mut self, name: &'static str, value: u64) {
        self.result.checks.push(Check {
            name,
            ok: true,
            summary: format!("{name} = {value}"),
            figures: serde_json::json!({ name: value }),
        });
    }

    fn dev(&self, disk: &str) -> String {
        self.plan
            .disks
            .iter()
            .find(|d| d.name == disk)
            .map(|d| d.device.clone())
            .expect("validated disk name")
    }

    fn members(&self) -> String {
        self.array
            .members
            .iter()
            .map(|m| self.dev(m))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn bitmap_path(&self) -> String {
        format!("{MNT}{}", self.array.bitmap.path)
    }

    fn dev_number(&self, vm: &mut Vm, disk: &str) -> Result<(u32, u32), Failure> {
        let name = self.dev(disk).trim_start_matches("/dev/").to_string();
        let text = self.sh(vm, &format!("cat /sys/block/{name}/dev"), 10)?;
        let (a, b) = text
            .trim()
            .split_once(':')
            .ok_or_else(|| Failure::Bench(anyhow::anyhow!("dev {text:?}")))?;
        Ok((a.parse().unwrap_or(0), b.parse().unwrap_or(0)))
    }

    /// Polls until no resync/recovery/check runs and the array is in sync.
    fn wait_in_sync(&self, vm: &mut Vm, limit: Duration) -> Result<(), Failure> {
        poll_guest(
            vm,
            "grep -qx idle /sys/block/md0/md/sync_action && grep -qx none /sys/block/md0/md/resync_start",
            &[],
            limit,
        )
        .map(|_| ())
        .map_err(|e| Failure::Case(format!("waiting for md0 to be in sync: {e:#}")))
    }

    /// The bitmap file as md wrote it, read in the guest with O_DIRECT (the page cache
    /// of the file may be stale while the array runs).
    fn guest_bitmap(&self, vm: &mut Vm) -> Result<Bitmap> {
        let req = Request::Read {
            path: self.bitmap_path(),
            offset: 0,
            len: 1 << 20,
            direct: true,
        };
        match vm.call(&req, Duration::from_secs(10))? {
            Response::Bytes { data } => Ok(Bitmap::decode(&data)?),
            other => bail!("read bitmap: {other:?}"),
        }
    }

    /// Polls the on-disk bitmap until no chunk is dirty, at most `limit`.
    fn wait_bitmap_clean(&self, vm: &mut Vm, limit: Duration) -> Result<Duration, Failure> {
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
    fn clean_limit(&self, b: &Bitmap) -> Duration {
        Duration::from_secs(u64::from(b.sb.daemon_sleep) * 4 + 20)
    }

    /// Waits for the kill point: bytes written to md0, or time since the load started.
    fn wait_kill_point(&self, vm: &mut Vm, crash: &CrashSpec) -> Result<u64, Failure> {
        let started = Instant::now();
        let limit = Duration::from_secs(300);
        let mut pause = Duration::from_millis(50);
        loop {
            let stat = self.sh(vm, "cat /sys/block/md0/stat", 10)?;
            let written = stat
                .split_whitespace()
                .nth(6)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
                * 512;
            let due = match (crash.after_written, crash.after_time) {
                (Some(bytes), _) => written >= bytes.0,
                (None, Some(t)) => started.elapsed() >= t,
                (None, None) => true,
            };
            if due {
                return Ok(written);
            }
            if started.elapsed() > limit {
                return Err(Failure::Case(format!(
                    "the workload wrote only {written} bytes in {limit:?} (deadline passed)"
                )));
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

    /// Reads the members' superblocks and data, and the bitmap file out of the ext4 image.
    /// The bitmap file's bytes are kept as `bitmap-<label>.bin` beside the result.
    fn read_images(&self, label: &str) -> Result<Readings> {
        let path_of = |name: &str| {
            self.disks
                .iter()
                .find(|d| d.name == name)
                .map(|d| d.path.clone())
                .expect("validated")
        };
        let fs_image = path_of(&self.array.bitmap.disk);
        let map = ext4::locate(&fs_image, &self.array.bitmap.path)?;
        let bytes = ext4::read(&fs_image, &map)?;
        std::fs::write(self.case_dir.join(format!("bitmap-{label}.bin")), &bytes)?;
        let bitmap = Bitmap::decode(&bytes)
            .with_context(|| format!("decode the bitmap file read from {}", fs_image.display()))?;
        let mut files = Vec::new();
        let mut data_offsets = Vec::new();
        for m in &self.array.members {
            let p = path_of(m);
            let mut f = std::fs::File::open(&p)?;
            let size = f.metadata()?.len();
            let (_, sb) = superblock::read_from(&mut f, size)
                .with_context(|| format!("md superblock of {}", p.display()))?;
            data_offsets.push(sb.data_offset);
            files.push(f);
        }
        let data_len = bitmap.sb.sync_size * 512;
        let mut divergent = BTreeSet::new();
        let mut bytes_compared = 0;
        let (first, rest) = files.split_first_mut().expect("at least two members");
        for (i, other) in rest.iter_mut().enumerate() {
            let d = compare::divergent_chunks(
                first,
                other,
                data_offsets[0] * 512,
                data_offsets[i + 1] * 512,
                data_len,
                bitmap.chunk_bytes(),
            )?;
            bytes_compared += d.bytes_compared;
            divergent.extend(d.chunks);
        }
        Ok(Readings {
            bitmap,
            divergent: divergent.into_iter().collect(),
            bytes_compared,
            data_offsets,
        })
    }
}
