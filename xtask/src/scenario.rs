//! What the scenarios (crash, examine) share: the VMs of one case, its guest commands,
//! its phases and checks as they land in the result, and the array they build.

use crate::bench::Bench;
use crate::case::{ArraySpec, BitmapKind, Plan, WorkloadSpec};
use crate::check::Check;
use crate::guest::calls;
use crate::ondisk::bitmap::Bitmap;
use crate::report::{self, CaseResult, Phase};
use crate::run::{guest_run, poll_guest, Failure};
use crate::vm::{Disk, Vm};
use anyhow::{Context, Result};
use std::path::Path;
use std::time::{Duration, Instant};

pub const MNT: &str = "/mnt";
pub const WORKLOAD_PID: &str = "/tmp/workload.pid";

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
                &format!("mkfs.ext4 -q -F -b 4096 {fs} && mount {fs} {MNT}"),
                120,
            )?;
        }
        let create = format!(
            "mdadm --create /dev/md0 --run --level={} --raid-devices={} --metadata=1.2 --bitmap={} --bitmap-chunk={}K {}",
            self.array.level,
            self.array.members.len(),
            self.bitmap_arg(),
            self.array.bitmap.chunk.0 >> 10,
            self.members()
        );
        self.sh(vm, &create, 60)?;
        self.phase("create");
        self.wait_in_sync(vm, Duration::from_secs(600))?;
        let settle = self.wait_bitmap_clean(vm, Duration::from_secs(90))?;
        self.phase("initial resync and clean bitmap");
        Ok(settle)
    }

    /// Starts the seeded writer on md0 in the background; its pid lands in
    /// [`WORKLOAD_PID`], and the agent's spawn id is returned for reaping it.
    pub fn spawn_workload(
        &mut self,
        vm: &mut Vm,
        w: &WorkloadSpec,
        cgroup: Option<&str>,
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
        // The shell joins the cgroup first, so the writers it execs are born inside it.
        let join = cgroup
            .map(|c| format!("echo $$ > {c}/cgroup.procs && "))
            .unwrap_or_default();
        let cmd = format!(
            "{join}echo $$ > {WORKLOAD_PID}; exec /usr/bin/agent workload {}",
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

    pub fn boot(&mut self, n: u32) -> Result<Vm, Failure> {
        self.boot_with(n, self.disks.to_vec())
    }

    /// A boot with its own view of the disks (one behind blkdebug, say).
    pub fn boot_with(&mut self, n: u32, disks: Vec<Disk>) -> Result<Vm, Failure> {
        let console = self.case_dir.join(format!("console-boot{n}.log"));
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

    pub fn note_figure(&mut self, name: &'static str, value: u64) {
        self.result.checks.push(Check {
            name,
            ok: true,
            summary: format!("{name} = {value}"),
            figures: serde_json::json!({ name: value }),
        });
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
            "grep -qx idle /sys/block/md0/md/sync_action && grep -qx none /sys/block/md0/md/resync_start",
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
}
