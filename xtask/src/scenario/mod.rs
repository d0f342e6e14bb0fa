//! What a case does in its VMs. The shared steps first: the VMs of one case and its guest
//! commands (this file), the array it builds and takes down (`array`), the load
//! (`workload`) and the moment to crash it (`kill_point`), the disks' faults (`disks`),
//! the block trace (`trace`), the readings of the disk images (`images`). Then one file
//! per scenario, each reading as its steps: `steps` (a case's own commands), `crash`,
//! `readd`, `bitmap_eio`, `bitmap_lie`, `examination`, `power_loss`, with `faults` (the
//! kernel's fault injectors) and `stall` (blocked tasks) beside them.
//!
//! A scenario drives the guest, hands what it read to `images` and `logs`, and the
//! verdicts to `check`; what it records goes into the case's [`Record`].

pub mod array;
pub mod bitmap_eio;
pub mod bitmap_lie;
pub mod crash;
pub mod disks;
pub mod examination;
pub mod faults;
pub mod images;
pub mod kill_point;
pub mod power_loss;
pub mod prepared;
pub mod readd;
pub mod recorded_kill;
pub mod recorder;
pub mod stall;
pub mod steps;
pub mod trace;
pub mod workload;

use crate::bench::Bench;
use crate::case::{ArraySpec, BitmapKind, Plan};
use crate::check::Check;
use crate::result::record::Record;
use crate::result::Failure;
use crate::vm::{guest, Disk, Vm};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the bitmap's filesystem is mounted in the guest.
pub const MNT: &str = "/mnt";

/// Runs the case's scenario on its disks: one of the array scenarios when the case names
/// one, else the case's own steps.
pub fn run(
    bench: &Bench,
    plan: &Plan,
    case_dir: &Path,
    disks: Vec<Disk>,
    rec: &mut Record,
) -> Result<(), Failure> {
    if let Some(array) = &plan.array {
        let mut s = Scenario {
            bench,
            plan,
            array,
            case_dir,
            disks: &disks,
            rec,
            stalls: Default::default(),
        };
        let result = if let Some(c) = &plan.crash {
            crash::run(&mut s, c)
        } else if let Some(e) = &plan.examination {
            examination::run(&mut s, e)
        } else if let Some(r) = &plan.readd {
            readd::run(&mut s, r)
        } else if let Some(b) = &plan.bitmap_eio {
            bitmap_eio::run(&mut s, b)
        } else if let Some(l) = &plan.bitmap_lie {
            bitmap_lie::run(&mut s, l)
        } else if let Some(p) = &plan.power_loss {
            power_loss::run(&mut s, p)
        } else {
            return steps::run(bench, plan, case_dir, disks.clone(), s.rec);
        };
        s.land_stalls();
        return result;
    }
    steps::run(bench, plan, case_dir, disks, rec)
}

/// One case's scenario as it runs: what it was given, and the record it writes.
pub struct Scenario<'a, 'r> {
    pub bench: &'a Bench,
    pub plan: &'a Plan,
    pub array: &'a ArraySpec,
    pub case_dir: &'a Path,
    pub disks: &'a [Disk],
    pub rec: &'a mut Record<'r>,
    /// The checks of waits that passed their deadline ([`Scenario::stalled`]), not yet
    /// in the record.
    pub stalls: std::cell::RefCell<Vec<Check>>,
}

impl Scenario<'_, '_> {
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
        let mut vm = self
            .bench
            .boot(&cfg)
            .map_err(|e| boot_failure(&format!("boot {n}"), e))?;
        self.rec.booted(vm.boot, vm.guest_uptime_ms);
        if let Some(path) = self.bench.mdadm_for(self.plan).guest_path {
            // Every command the case runs says `mdadm`: this VM's rootfs gets the
            // packaged one under that name, the host's kept beside it.
            self.sh(
                &mut vm,
                &format!("mv /usr/sbin/mdadm /usr/sbin/mdadm-host && ln -s {path} /usr/sbin/mdadm"),
                30,
            )?;
        }
        Ok(vm)
    }

    /// Runs a setup command that must succeed; its failure fails the case with its output.
    pub fn sh(&self, vm: &mut Vm, cmd: &str, limit_s: u64) -> Result<String, Failure> {
        let out = guest::run(vm, cmd, &self.plan.env(), Duration::from_secs(limit_s))
            .map_err(|e| Failure::Case(format!("`{cmd}`: {e:#}\n{}", vm.console_tail(10))))?;
        if out.timed_out {
            return Err(self.stalled(vm, format!("`{cmd}` did not end within {limit_s} s")));
        }
        if !out.success() {
            return Err(Failure::Case(format!(
                "`{cmd}` failed (status {:?}): {}{}\n{}",
                out.status,
                out.stdout.trim(),
                out.stderr.trim(),
                vm.console_tail(10)
            )));
        }
        Ok(out.stdout)
    }

    /// A wait that passed its deadline, judged as a named check. With tasks blocked in the
    /// kernel (sysrq `w`), the kernel is stuck: `no_blocked_tasks` fails, a FAIL. With none,
    /// the state the case waited for never came and nothing points at the kernel (a load
    /// that never outran its throttle, a command of the case that waits forever):
    /// `awaited_state_reached` fails, a precondition, so the case could not judge (ERROR).
    /// The check lands in the record when the scenario returns ([`run`]): the waits that
    /// stall are the shared ones, which only read the scenario.
    pub fn stalled(&self, vm: &mut Vm, why: String) -> Failure {
        let report = stall::blocked_tasks(vm);
        let _ = std::fs::write(self.case_dir.join("blocked-tasks.txt"), &report);
        let tasks = crate::logs::blocked::task_names(&report);
        // The report has its heading even when no task is blocked.
        if tasks.is_empty() {
            let context = vm.console_tail(10);
            let detail = "sysrq w printed no blocked tasks".to_string();
            return self.unreached(why, Some(detail), context);
        }
        let check = Check {
            name: "no_blocked_tasks".into(),
            ok: false,
            summary: format!(
                "{why}; blocked tasks: {} (stacks in blocked-tasks.txt)",
                tasks.join(", ")
            ),
            figures: serde_json::json!({ "waiting_for": why, "blocked_tasks": tasks }),
        };
        let context = report.lines().take(40).collect::<Vec<_>>().join("\n");
        self.failed_wait(check, context)
    }

    /// A wait whose state never came with nothing to blame the kernel for (no task
    /// blocked, the load still writing: tasks blocked then are its own I/O, the writers
    /// gone): only `awaited_state_reached` fails (ERROR). `why` is what the wait waited
    /// for, `detail` what was seen when it gave up.
    pub fn unreached(&self, why: String, detail: Option<String>, context: String) -> Failure {
        let check = Check {
            name: "awaited_state_reached".into(),
            ok: false,
            summary: detail.map_or_else(|| why.clone(), |d| format!("{why}; {d}")),
            figures: serde_json::json!({ "waiting_for": why, "blocked_tasks": [] }),
        };
        self.failed_wait(check, context)
    }

    fn failed_wait(&self, check: Check, context: String) -> Failure {
        let mut checks = self.rec.result.checks.clone();
        checks.push(check.clone());
        self.stalls.borrow_mut().push(check);
        match crate::result::record::verdict_of(&checks) {
            Err(Failure::Case(why)) => Failure::Case(format!("{why}\n{context}")),
            Err(Failure::Bench(e)) => Failure::Bench(e.context(context)),
            Ok(()) => unreachable!("a check just failed"),
        }
    }

    /// Moves the checks of stalled waits into the record.
    pub fn land_stalls(&mut self) {
        for c in self.stalls.take() {
            self.rec.add(c);
        }
    }

    pub fn phase(&mut self, name: &str) {
        self.rec.phase(name);
    }

    pub fn add(&mut self, c: Check) {
        self.rec.add(c);
    }

    /// A measurement the case records but does not judge (checks are only what can fail).
    pub fn note_figure(&mut self, name: &str, value: impl serde::Serialize) {
        self.rec.note_figure(name, value);
    }

    /// The verdict of the checks so far.
    pub fn verdict(&self) -> Result<(), Failure> {
        self.rec.verdict()
    }

    /// The guest's device of disk `disk` (`/dev/vdb`).
    pub fn dev(&self, disk: &str) -> String {
        self.plan
            .disks
            .iter()
            .find(|d| d.name == disk)
            .map(|d| d.device.clone())
            .expect("validated disk name")
    }

    /// The host's image of disk `disk`.
    pub fn image(&self, disk: &str) -> PathBuf {
        self.disks
            .iter()
            .find(|d| d.name == disk)
            .map(|d| d.path.clone())
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

    pub fn is_lockless(&self) -> bool {
        self.array.bitmap.kind == BitmapKind::Lockless
    }

    /// The guest's device number of disk `disk`, as the block trace names it.
    pub fn dev_number(&self, vm: &mut Vm, disk: &str) -> Result<(u32, u32), Failure> {
        let name = self.dev(disk).trim_start_matches("/dev/").to_string();
        let text = self.sh(vm, &format!("cat /sys/block/{name}/dev"), 10)?;
        let (a, b) = text
            .trim()
            .split_once(':')
            .ok_or_else(|| Failure::Bench(anyhow::anyhow!("dev {text:?}")))?;
        Ok((a.parse().unwrap_or(0), b.parse().unwrap_or(0)))
    }

    /// md0's size in bytes.
    pub fn md_size(&self, vm: &mut Vm) -> Result<u64, Failure> {
        let size = self.sh(vm, "blockdev --getsize64 /dev/md0", 10)?;
        size.trim()
            .parse()
            .map_err(|_| Failure::Bench(anyhow::anyhow!("md0 size {size:?}")))
    }
}

/// A failed boot as a case's failure: the kernel's (it did not boot: FAIL), or the bench's
/// when a restore went wrong (ERROR).
pub fn boot_failure(what: &str, e: anyhow::Error) -> Failure {
    if e.downcast_ref::<crate::vm::saved::RestoreFailed>()
        .is_some()
    {
        Failure::Bench(e.context(what.to_string()))
    } else {
        Failure::Case(format!("{what}: {e:#}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_restore_is_the_benchs_error_and_a_failed_boot_the_kernels_failure() {
        let restore =
            anyhow::Error::new(crate::vm::saved::RestoreFailed("migration failed".into()));
        assert!(matches!(boot_failure("boot 2", restore), Failure::Bench(_)));
        let boot = anyhow::anyhow!("guest never became ready");
        match boot_failure("boot 1", boot) {
            Failure::Case(why) => assert_eq!(why, "boot 1: guest never became ready"),
            Failure::Bench(e) => {
                panic!("a kernel that does not boot is not the bench's error: {e}")
            }
        }
    }
}
