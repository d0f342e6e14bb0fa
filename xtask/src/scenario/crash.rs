//! The crash scenario: build a mirror whose bitmap lives in a file, load it with seeded
//! random writes while one member lags, SIGKILL QEMU, and judge from the raw images:
//! 1. safety: every chunk where the members differ is dirty in the on-disk bitmap;
//! 2. resync bounds: the next assembly resyncs no chunk outside the bitmap and every
//!    divergent chunk (traced from the guest's block layer, not from md's own account);
//! 3. convergence: members identical, `check` finds nothing, the bitmap clean again.

use super::images::Readings;
use super::recorded_kill::KillRecording;
use super::workload::WRITERS_CGROUP;
use super::{faults, Scenario};
use crate::case::{CrashMode, CrashPoint, CrashSpec, FaultPhase};
use crate::check;
use crate::poll::{self, Pace, Probe};
use crate::result::Failure;
use crate::vm::{guest, Vm};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Runs the scenario on a prepared case; each check lands in the result as it is judged.
pub fn run(s: &mut Scenario, crash: &CrashSpec) -> Result<(), Failure> {
    // Boot 1: build the array and let it settle.
    let (mut vm, settle, mut recording) = if crash.recorded() && !s.array.build {
        let (vm, settle, r) = s.boot_recorded()?;
        (vm, settle, Some(r))
    } else {
        let (vm, settle) = s.boot_settled()?;
        (vm, settle, None)
    };
    let mut boot = recording.as_ref().map_or(1, |r| r.boot);
    s.note_figure("initial_bitmap_clean_after_ms", settle.as_millis() as u64);
    s.note_figure(
        "crash_mode",
        serde_json::json!({ "mode": crash.mode, "at": crash.at, "cycles": crash.cycles,
            "survives": crash.mode.survives(), "at_this_point": crash.at.survives() }),
    );
    for cycle in 1..=crash.cycles {
        // Only the first cycle's load is recorded: later ones start from the boot that
        // resynced the last crash.
        let before = load_and_crash(s, vm, crash, boot, cycle, recording.take())?;
        // The next boot assembles from the same disks with the block layer traced; the
        // resync md does is read from the trace, not from md.
        boot += 1;
        vm = s.boot(boot)?;
        s.phase(&format!("boot {boot}"));
        s.start_block_trace(&mut vm)?;
        let mut before = before;
        if crash.at == CrashPoint::Resync {
            // Slow the resync so that a kill can land inside it.
            s.sh(
                &mut vm,
                "(modprobe md_mod 2>/dev/null || true) && echo 1000 > /proc/sys/dev/raid/speed_limit_min && echo 4000 > /proc/sys/dev/raid/speed_limit_max",
                10,
            )?;
            s.assemble(&mut vm, &s.members())?;
            interrupt_resync(s, &mut vm, &before)?;
            vm.kill().map_err(Failure::Bench)?;
            s.phase("crash during resync");
            before = judge_crash(s, &s.console(boot), "after-resync-crash", false, None)?;
            boot += 1;
            vm = s.boot(boot)?;
            s.phase(&format!("boot {boot}"));
            s.start_block_trace(&mut vm)?;
        }
        let resync_faults = crash
            .faults
            .as_ref()
            .filter(|f| f.during == FaultPhase::Resync);
        // Armed between the mount and the assembly: the filesystem's own threads
        // (jbd2) are born unmarked.
        s.mount_bitmap_fs(&mut vm)?;
        if let Some(f) = resync_faults {
            faults::arm(s, &mut vm, f)?;
        }
        s.assemble_array(&mut vm, &s.members())
            .map_err(|e| s.why_not_assembled(e))?;
        s.wait_in_sync(&mut vm, Duration::from_secs(600))?;
        if let Some(f) = resync_faults {
            faults::disarm(s, &mut vm, f)?;
            faults::judge_injected(s, &mut vm)?;
        }
        s.phase("assemble and resync");
        let resynced = s.traced_resync(&mut vm, &s.array.members, &before, "resync")?;
        let full = s.full_recovery_messages(&mut vm)?;
        let dirty: BTreeSet<u64> = before.bitmap.dirty_chunks(0).into_iter().collect();
        s.add(check::resync_bounds(
            &resynced,
            &dirty,
            &before.divergent,
            &full,
        ));
        if cycle == crash.cycles {
            return s.converge(vm, &before, "after-resync");
        }
        // Bits the resync leaves dirty clear over two daemon periods; the next cycle
        // starts from a clean bitmap like the first.
        s.wait_bitmap_clean(&mut vm, s.clean_limit(&before.bitmap))?;
        s.phase(&format!("cycle {cycle} done"));
    }
    unreachable!("validated: at least one cycle")
}

/// Loads the running array, crashes it at the case's point, and judges the images.
fn load_and_crash(
    s: &mut Scenario,
    mut vm: Vm,
    crash: &CrashSpec,
    boot: u32,
    cycle: u32,
    mut recording: Option<KillRecording>,
) -> Result<Readings, Failure> {
    if let Some(t) = &crash.throttle {
        s.throttle(&mut vm, t)?;
    }
    let mut preamble = String::new();
    if let Some(p) = &crash.pressure {
        s.start_pressure(&mut vm, p)?;
        preamble.push_str(&format!("echo $$ > {WRITERS_CGROUP}/cgroup.procs && "));
    }
    let load_faults = crash
        .faults
        .as_ref()
        .filter(|f| f.during == FaultPhase::Load);
    if let Some(f) = load_faults {
        preamble.push_str(&faults::arm(s, &mut vm, f)?);
    }
    let start = s.block_stats(&mut vm)?;
    let workload = s.spawn_workload(&mut vm, &crash.workload, &preamble)?;
    let written = s.wait_kill_point(&mut vm, crash, &start, workload)?;
    if let Some(f) = load_faults {
        faults::note_budget(s, &mut vm, f)?;
    }
    // Before the crash: the writers must still be writing, and what pressure they met.
    let exited = guest::wait(&mut vm, workload, Duration::ZERO)
        .map_err(Failure::Bench)?
        .map(|out| (out.status, out.stderr));
    let writing = exited.is_none();
    s.add(check::writers_alive(exited));
    if crash.pressure.is_some() {
        let cg = WRITERS_CGROUP;
        let (events, psi) = s.pressure_readings(&mut vm)?;
        let stat = s.sh(
            &mut vm,
            &format!("grep -E '^(file_dirty|file_writeback|file) ' {cg}/memory.stat"),
            10,
        )?;
        std::fs::write(
            s.case_dir.join("pressure.txt"),
            format!("memory.events:\n{events}\nmemory.pressure:\n{psi}\nmemory.stat:\n{stat}"),
        )
        .map_err(anyhow::Error::from)?;
        s.add(check::pressure_reached(&events, &psi));
    }
    s.phase("workload");
    if crash.at == CrashPoint::Clearing {
        // A trickle of writes to the array's last MiB goes on, so the daemon clears the
        // rest of the bitmap while writes (the throttled member's) are still in flight.
        let size = s.md_size(&mut vm)?;
        let seek = (size - (1 << 20)) / (64 << 10);
        guest::spawn(
            &mut vm,
            &format!("while :; do dd if=/dev/urandom of=/dev/md0 bs=64K count=16 seek={seek} oflag=direct status=none; done"),
        )
        .map_err(Failure::Bench)?;
        s.stop_workload(&mut vm, workload)?;
        let (peak, now) = wait_clearing(s, &mut vm)?;
        s.note_figure(
            "clearing_at_crash",
            serde_json::json!({ "dirty_peak": peak, "dirty_at_crash": now }),
        );
        s.phase("writers stopped, daemon clearing");
    }
    match crash.mode {
        CrashMode::Sigkill => {
            if let Some(r) = recording.as_mut() {
                s.sync_trace(&mut vm, r)?;
            }
            if crash.at == CrashPoint::Writing && writing {
                // The readings above took round trips, in which the lagging member's queue
                // may have drained: the kill follows a look that saw it behind.
                s.wait_kill_point(&mut vm, crash, &start, workload)?;
            }
            vm.kill().map_err(Failure::Bench)?
        }
        CrashMode::QmpQuit => vm.quit(Duration::from_secs(60)).map_err(Failure::Bench)?,
        CrashMode::Panic => {
            // The call never answers: the guest panics and QEMU exits (panic=-1, -no-reboot).
            let _ = guest::run(
                &mut vm,
                "echo c > /proc/sysrq-trigger",
                &[],
                Duration::from_secs(5),
            );
            if !vm.wait_exit(Duration::from_secs(60)) {
                return Err(Failure::Case(
                    "the guest did not go down within 60 s of a sysrq crash".into(),
                ));
            }
        }
    }
    s.note_figure(&format!("written_before_crash_{cycle}_bytes"), written);
    // QEMU is gone: its console holds every report, which the kernel's ring buffer may not.
    let console = s.console(boot);
    if load_faults.is_some() {
        s.add(check::faults_injected(&console));
    }
    s.phase("crash");
    let label = if cycle == 1 {
        "after-crash".to_string()
    } else {
        format!("after-crash-{cycle}")
    };
    judge_crash(
        s,
        &console,
        &label,
        // At the clearing point only the trickle's one write can be in flight.
        crash.mode.leaves_divergence() && crash.at != CrashPoint::Clearing,
        recording.as_ref(),
    )
}

/// The images after a crash, with the crashed boot's console: md's log, what differs, what
/// the bitmap says.
fn judge_crash(
    s: &mut Scenario,
    console: &str,
    label: &str,
    must_diverge: bool,
    recording: Option<&KillRecording>,
) -> Result<Readings, Failure> {
    s.add(check::bitmap_errors(console));
    let before = s.read_images(label).map_err(Failure::Bench)?;
    if let Some(states) = &before.llbitmap_states {
        s.note_figure(&format!("llbitmap_states_{label}"), states);
    }
    let dirty: BTreeSet<u64> = before.bitmap.dirty_chunks(0).into_iter().collect();
    if must_diverge {
        s.add(check::crash_left_divergence(&before.divergent));
    } else {
        // Only a SIGKILL under load is counted on to leave the members apart; the other
        // modes and points report what they left.
        s.note_figure(&format!("divergent_chunks_{label}"), before.divergent.len());
    }
    let safety = s.safety_explained(&before, &dirty, recording)?;
    s.add(safety);
    s.phase(&format!("judge images {label}"));
    Ok(before)
}

/// Polls the on-disk bitmap after the writers stopped until the daemon has cleared some
/// bits while the trickle's are still dirty: the moment to crash. Returns (peak, now).
fn wait_clearing(s: &Scenario, vm: &mut Vm) -> Result<(u64, u64), Failure> {
    let limit = Duration::from_secs(120);
    let mut peak = 0;
    poll::until(
        limit,
        // As fast as the agent answers: the window is one daemon period.
        Pace::EAGER,
        || {
            let dirty = s.guest_bitmap(vm).map_err(Failure::Bench)?.dirty_count(0);
            peak = peak.max(dirty);
            Ok(if dirty > 0 && dirty < peak {
                Probe::Done((peak, dirty))
            } else {
                Probe::Pending(dirty)
            })
        },
        |dirty| {
            Failure::Case(format!(
                "the daemon cleared no bit within {limit:?} of the writers stopping ({dirty} dirty; deadline passed)"
            ))
        },
    )
}

/// Waits until the resync is past the middle of the dirty region, still running.
fn interrupt_resync(s: &mut Scenario, vm: &mut Vm, before: &Readings) -> Result<(), Failure> {
    let dirty = before.bitmap.dirty_chunks(0);
    let Some(&mid) = dirty.get(dirty.len() / 2) else {
        return Err(Failure::Case(
            "nothing dirty after the crash: no resync to interrupt".into(),
        ));
    };
    let target = mid * before.bitmap.chunk_bytes() / 512;
    let started = Instant::now();
    let limit = Duration::from_secs(300);
    let pos = poll::until(
        limit,
        Pace::ms(50, 200),
        || {
            let text = s.sh(
                vm,
                "cat /sys/block/md0/md/sync_action /sys/block/md0/md/sync_completed",
                10,
            )?;
            let mut lines = text.lines();
            let action = lines.next().unwrap_or_default().trim().to_string();
            let done: Option<u64> = lines
                .next()
                .and_then(|l| l.split('/').next())
                .and_then(|v| v.trim().parse().ok());
            match done {
                Some(pos) if action == "resync" && pos >= target => Ok(Probe::Done(pos)),
                None if action == "idle" && started.elapsed() > Duration::from_secs(5) => {
                    Err(Failure::Case(
                        "the resync ended before it reached the middle of the dirty region".into(),
                    ))
                }
                _ => Ok(Probe::Pending(action)),
            }
        },
        |action| {
            Failure::Case(format!(
                "the resync did not reach sector {target} within {limit:?} ({action}; deadline passed)"
            ))
        },
    )?;
    s.note_figure(
        "resync_interrupted_at_sector",
        serde_json::json!({ "position": pos, "aimed_at": target }),
    );
    Ok(())
}

impl Scenario<'_, '_> {
    /// A reassembly that failed, with what the members' superblocks say of it: a member
    /// md recorded as recovering is missing to the assembly, so a dirty RAID5/6 does not
    /// start. With the lockless bitmap that is the finding
    /// `lockless-lazy-recovery-refused`: its first writes start a recovery of the
    /// chunks they mark NeedSync (MD_RECOVERY_LAZY_RECOVER).
    fn why_not_assembled(&self, failed: Failure) -> Failure {
        let Failure::Case(why) = failed else {
            return failed;
        };
        let recovering = check::recovering_members(&self.member_superblocks());
        if recovering.is_empty() {
            return Failure::Case(why);
        }
        let finding = if self.is_lockless() {
            "finding lockless-lazy-recovery-refused: "
        } else {
            ""
        };
        Failure::Case(format!(
            "{finding}the superblocks record {} as recovering, so the assembly counts it missing and md does not start a dirty array missing a member\n{why}",
            recovering.join(", ")
        ))
    }
}
