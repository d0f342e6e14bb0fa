//! The crash scenario: build a mirror whose bitmap lives in a file, load it with seeded
//! random writes while one member lags, SIGKILL QEMU, and judge from the raw images:
//! 1. safety: every chunk where the members differ is dirty in the on-disk bitmap;
//! 2. resync bounds: the next assembly resyncs no chunk outside the bitmap and every
//!    divergent chunk (traced from the guest's block layer, not from md's own account);
//! 3. convergence: members identical, `check` finds nothing, the bitmap clean again.

use crate::case::{CrashMode, CrashSpec, PressureSpec};
use crate::check;
use crate::guest::calls;
use crate::run::Failure;
use crate::scenario::{Scenario, MNT};
use crate::vm::Vm;
use std::collections::BTreeSet;
use std::time::Duration;

/// Runs the scenario on a prepared case; each check lands in the result as it is judged.
pub fn run(s: &mut Scenario, crash: &CrashSpec) -> Result<(), Failure> {
    // Boot 1: build the array, let it settle, load it, kill QEMU.
    let mut vm = s.boot(1)?;
    s.phase("boot 1");
    let settle = s.create_settled_array(&mut vm)?;
    if let Some(t) = &crash.throttle {
        s.throttle(&mut vm, t)?;
    }
    let cgroup = match &crash.pressure {
        Some(p) => Some(start_pressure(s, &mut vm, p)?),
        None => None,
    };
    let workload = s.spawn_workload(&mut vm, &crash.workload, cgroup.as_deref())?;
    let written = s.wait_kill_point(&mut vm, crash)?;
    // Before the crash: the writers must still be writing, and what pressure they met.
    let exited = calls::wait(&mut vm, workload, Duration::ZERO)
        .map_err(Failure::Bench)?
        .map(|out| (out.status, out.stderr));
    s.add(check::writers_alive(exited));
    if let Some(cg) = &cgroup {
        let events = s.sh(&mut vm, &format!("cat {cg}/memory.events"), 10)?;
        let psi = s.sh(&mut vm, &format!("cat {cg}/memory.pressure"), 10)?;
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
    match crash.mode {
        CrashMode::Sigkill => vm.kill().map_err(Failure::Bench)?,
        CrashMode::QmpQuit => vm.quit(Duration::from_secs(60)).map_err(Failure::Bench)?,
        CrashMode::Panic => {
            // The call never answers: the guest panics and QEMU exits (panic=-1, -no-reboot).
            let _ = crate::run::guest_run(
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
    s.note_figure("written_before_crash_bytes", written);
    s.note_figure("initial_bitmap_clean_after_ms", settle.as_millis() as u64);
    s.note_figure(
        "crash_mode",
        serde_json::json!({ "mode": crash.mode, "survives": crash.mode.survives() }),
    );
    s.phase("crash");
    let console = std::fs::read_to_string(s.case_dir.join("console-boot1.log")).unwrap_or_default();
    s.add(check::bitmap_errors(&console));

    // From the images: what differs, what the bitmap says.
    let before = s.read_images("after-crash").map_err(Failure::Bench)?;
    let dirty: BTreeSet<u64> = before.bitmap.dirty_chunks(0).into_iter().collect();
    if crash.mode.leaves_divergence() {
        s.add(check::crash_left_divergence(&before.divergent));
    } else {
        // Only a SIGKILL is counted on to leave the members apart; the others report it.
        s.note_figure("divergent_chunks", before.divergent.len());
    }
    s.add(check::safety(
        &before.divergent,
        &dirty,
        before.bitmap.chunks(),
        before.bytes_compared,
    ));
    s.phase("judge images after crash");

    // Boot 2: assemble from the same disks with the block layer traced; the resync md
    // does is read from the trace, not from md.
    let mut vm = s.boot(2)?;
    s.phase("boot 2");
    s.start_block_trace(&mut vm)?;
    s.assemble(&mut vm, &s.members())?;
    s.wait_in_sync(&mut vm, Duration::from_secs(600))?;
    s.phase("assemble and resync");
    let resynced = s.traced_resync(&mut vm, &s.array.members, &before, "resync")?;
    let full = s.full_recovery_messages(&mut vm)?;
    s.add(check::resync_bounds(
        &resynced,
        &dirty,
        &before.divergent,
        &full,
    ));
    s.converge(vm, &before, "after-resync")
}

/// Makes the writers' cgroup with the case's limits, raises the dirty ratios and starts
/// the dirtier on the bitmap's filesystem inside it; returns the cgroup's path.
fn start_pressure(s: &mut Scenario, vm: &mut Vm, p: &PressureSpec) -> Result<String, Failure> {
    let cg = "/sys/fs/cgroup/writers";
    let mut setup = format!(
        "echo +memory > /sys/fs/cgroup/cgroup.subtree_control && mkdir -p {cg} && echo {} > /proc/sys/vm/dirty_ratio && echo {} > /proc/sys/vm/dirty_background_ratio",
        p.dirty_ratio, p.dirty_background_ratio
    );
    if let Some(m) = p.memory_max {
        setup.push_str(&format!(" && echo {} > {cg}/memory.max", m.0));
    }
    if let Some(m) = p.memory_high {
        setup.push_str(&format!(" && echo {} > {cg}/memory.high", m.0));
    }
    s.sh(vm, &setup, 10)?;
    if let Some(size) = p.dirtier {
        let cmd = format!("echo $$ > {cg}/cgroup.procs && exec dd if=/dev/zero of={MNT}/dirt bs=1M count={} 2>/dev/null", size.0 >> 20);
        calls::spawn(vm, &cmd).map_err(Failure::Bench)?;
    }
    Ok(cg.to_string())
}
