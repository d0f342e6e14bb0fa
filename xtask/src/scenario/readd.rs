//! The fail/re-add scenario (mdadm's old 05r1-re-add test, with a real I/O error): a
//! member's disk returns EIO once on a chosen chunk (QEMU blkdebug), md fails the member,
//! the array keeps writing degraded while the bitmap records what the member missed; the
//! member is then re-added and the recovery must write the chunks the bitmap names, cover
//! every chunk where the members differ, and leave them identical.

use super::{faults, Scenario};
use crate::case::{EioSource, FailRequest, FaultSpec, ReaddSpec};
use crate::check;
use crate::poll::{self, Pace, Probe};
use crate::result::Failure;
use crate::vm::guest;
use std::collections::BTreeSet;
use std::time::Duration;

/// Runs the scenario on a prepared case; each check lands in the result as it is judged.
pub fn run(s: &mut Scenario, spec: &ReaddSpec) -> Result<(), Failure> {
    // Boot 1: a settled array, stopped cleanly.
    let (mut vm, _) = s.boot_settled()?;
    s.stop_array(&mut vm)?;
    vm.quit(Duration::from_secs(30)).map_err(Failure::Bench)?;
    let data_offset = s
        .read_images("before-failure")
        .map_err(Failure::Bench)?
        .data_offsets[0];
    let chunk_sectors = s.array.bitmap.chunk.0 / 512;
    let sector = data_offset + spec.chunk * chunk_sectors;

    // Boot 2: a write to the chunk fails the member, the load goes on.
    let mut vm = match spec.via {
        EioSource::Blkdebug => {
            let disks = s.blkdebug_disks(&spec.fail, sector)?;
            s.boot_with(2, disks)?
        }
        EioSource::FailMakeRequest => s.boot(2)?,
    };
    s.phase("boot 2");
    // Without a bad-block log: with one, raid1 narrows a failed write down and records a
    // bad block instead of failing the member (and a retry of a once-only error succeeds).
    let members = if s.array.build {
        // No superblock, no bad-block log.
        s.members()
    } else {
        format!("--update=no-bbl {}", s.members())
    };
    s.assemble(&mut vm, &members)?;
    if spec.via == EioSource::FailMakeRequest {
        let fault = FaultSpec {
            fail_make_request: Some(FailRequest {
                disk: spec.fail.clone(),
                probability: 100,
                times: 1,
            }),
            ..FaultSpec::default()
        };
        faults::arm(s, &mut vm, &fault)?;
    }
    let chunk_kib = s.array.bitmap.chunk.0 >> 10;
    s.sh(&mut vm, &format!("dd if=/dev/urandom of=/dev/md0 bs={chunk_kib}K count=1 seek={} oflag=direct status=none", spec.chunk), 30)?;
    guest::poll_until(
        &mut vm,
        "grep -qx 1 /sys/block/md0/md/degraded",
        &[],
        Duration::from_secs(60),
    )
    .map_err(|e| {
        // Not a broken rule: from 7.x raid1's narrow_write_error() retries a failed write
        // block by block when the member has no bad-block log, and keeps the member when
        // the retry succeeds, as it does after a one-time EIO. The case then has nothing
        // to re-add.
        Failure::Bench(anyhow::anyhow!(
            "md kept the member after the injected one-time EIO (a kernel that retries the failed write, as 7.x's narrow_write_error does, keeps it), so there is nothing to re-add: {e:#}"
        ))
    })?;
    s.phase("member failed");
    if spec.via == EioSource::FailMakeRequest {
        faults::disarm_request(s, &mut vm, &s.dev(&spec.fail))?;
        faults::judge_injected(s, &mut vm)?;
    }
    let workload = s.spawn_workload(&mut vm, &spec.workload, "")?;
    let start = s.md_written(&mut vm)?;
    poll::until(
        Duration::from_secs(300),
        Pace::ms(50, 250),
        || {
            let written = s.md_written(&mut vm)?;
            Ok(if written >= start + spec.written.0 {
                Probe::Done(())
            } else {
                Probe::Pending(())
            })
        },
        |()| {
            Failure::Case(
                "the degraded array did not write enough in 300 s (deadline passed)".into(),
            )
        },
    )?;
    s.stop_workload(&mut vm, workload)?;
    let (before, mut vm) = if s.array.build {
        // Without superblocks md cannot tell after a restart which member is stale, so
        // the re-add comes in the same boot, as in mdadm's 05r1-re-add-nosuper; the
        // images are read while QEMU is paused (a stop drains every request first).
        vm.qmp()
            .execute("stop", serde_json::json!({}))
            .map_err(Failure::Bench)?;
        s.phase("degraded load");
        let before = s.read_images("degraded").map_err(Failure::Bench)?;
        vm.qmp()
            .execute("cont", serde_json::json!({}))
            .map_err(Failure::Bench)?;
        s.sh(
            &mut vm,
            &format!("mdadm /dev/md0 --remove {}", s.dev(&spec.fail)),
            30,
        )?;
        (before, vm)
    } else {
        s.stop_array(&mut vm)?;
        vm.quit(Duration::from_secs(30)).map_err(Failure::Bench)?;
        s.phase("degraded load");
        let before = s.read_images("degraded").map_err(Failure::Bench)?;
        // Boot 3: assemble without the member, to re-add it.
        let mut vm = s.boot(3)?;
        s.phase("boot 3");
        let others: Vec<String> = s
            .array
            .members
            .iter()
            .filter(|m| **m != spec.fail)
            .map(|m| s.dev(m))
            .collect();
        s.assemble(&mut vm, &others.join(" "))?;
        (before, vm)
    };

    // From the images: the member missed exactly what the bitmap must name.
    let dirty: BTreeSet<u64> = before.bitmap.dirty_chunks(0).into_iter().collect();
    s.add(check::crash_left_divergence(&before.divergent));
    s.add(check::safety(
        &before.divergent,
        &dirty,
        before.bitmap.chunks(),
        before.bytes_compared,
    ));

    // The re-add, with the recovery traced.
    s.start_block_trace(&mut vm)?;
    s.sh(
        &mut vm,
        &format!("mdadm /dev/md0 --re-add {}", s.dev(&spec.fail)),
        60,
    )?;
    s.wait_in_sync(&mut vm, Duration::from_secs(600))?;
    let recovered = s.traced_resync(
        &mut vm,
        std::slice::from_ref(&spec.fail),
        &before,
        "recovery",
    )?;
    let full = s.full_recovery_messages(&mut vm)?;
    s.add(check::resync_bounds(
        &recovered,
        &dirty,
        &before.divergent,
        &full,
    ));
    s.phase("re-add and recovery");
    s.converge(vm, &before, "after-recovery")
}
