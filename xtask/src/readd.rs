//! The fail/re-add scenario (mdadm's old 05r1-re-add test, with a real I/O error): a
//! member's disk returns EIO once on a chosen chunk (QEMU blkdebug), md fails the member,
//! the array keeps writing degraded while the bitmap records what the member missed; the
//! member is then re-added and the recovery must write the chunks the bitmap names, cover
//! every chunk where the members differ, and leave them identical.

use crate::case::ReaddSpec;
use crate::check;
use crate::guest::calls;
use crate::run::{poll_guest, Failure};
use crate::scenario::{Scenario, MNT, WORKLOAD_PID};
use crate::vm::Vm;
use std::collections::BTreeSet;
use std::time::Duration;

/// Runs the scenario on a prepared case; each check lands in the result as it is judged.
pub fn run(s: &mut Scenario, spec: &ReaddSpec) -> Result<(), Failure> {
    // Boot 1: a settled array, stopped cleanly.
    let mut vm = s.boot(1)?;
    s.phase("boot 1");
    s.create_settled_array(&mut vm)?;
    stop(s, &mut vm)?;
    vm.quit(Duration::from_secs(30)).map_err(Failure::Bench)?;
    let data_offset = s
        .read_images("before-failure")
        .map_err(Failure::Bench)?
        .data_offsets[0];
    let chunk_sectors = s.array.bitmap.chunk.0 / 512;
    let sector = data_offset + spec.chunk * chunk_sectors;

    // Boot 2: the member behind blkdebug; a write to the chunk fails it, the load goes on.
    let rules = s.case_dir.join(format!("blkdebug-{}.conf", spec.fail));
    std::fs::write(
        &rules,
        format!("[inject-error]\nevent = \"write_aio\"\nerrno = \"5\"\niotype = \"write\"\nsector = \"{sector}\"\nonce = \"on\"\n"),
    )
    .map_err(anyhow::Error::from)?;
    let mut disks = s.disks.to_vec();
    disks
        .iter_mut()
        .filter(|d| d.name == spec.fail)
        .for_each(|d| d.blkdebug = Some(rules.clone()));
    let mut vm = s.boot_with(2, disks)?;
    s.phase("boot 2");
    // Without a bad-block log: with one, raid1 narrows a failed write down and records a
    // bad block instead of failing the member (and a retry of a once-only error succeeds).
    assemble(s, &mut vm, &format!("--update=no-bbl {}", s.members()))?;
    let chunk_kib = s.array.bitmap.chunk.0 >> 10;
    s.sh(&mut vm, &format!("dd if=/dev/urandom of=/dev/md0 bs={chunk_kib}K count=1 seek={} oflag=direct status=none", spec.chunk), 30)?;
    poll_guest(
        &mut vm,
        "grep -qx 1 /sys/block/md0/md/degraded",
        &[],
        Duration::from_secs(60),
    )
    .map_err(|e| {
        Failure::Case(format!(
            "md never failed the member after the injected EIO: {e:#}"
        ))
    })?;
    s.phase("member failed");
    let workload = s.spawn_workload(&mut vm, &spec.workload, None)?;
    let start = written(s, &mut vm)?;
    let limit = std::time::Instant::now() + Duration::from_secs(300);
    let mut pause = Duration::from_millis(50);
    while written(s, &mut vm)? < start + spec.written.0 {
        if std::time::Instant::now() > limit {
            return Err(Failure::Case(
                "the degraded array did not write enough in 300 s (deadline passed)".into(),
            ));
        }
        std::thread::sleep(pause); // poll with backoff until the deadline
        pause = (pause * 2).min(Duration::from_millis(250));
    }
    s.sh(&mut vm, &format!("kill -TERM $(cat {WORKLOAD_PID})"), 10)?;
    if calls::wait(&mut vm, workload, Duration::from_secs(60))
        .map_err(Failure::Bench)?
        .is_none()
    {
        return Err(Failure::Case(
            "the workload did not end within 60 s of SIGTERM".into(),
        ));
    }
    stop(s, &mut vm)?;
    vm.quit(Duration::from_secs(30)).map_err(Failure::Bench)?;
    s.phase("degraded load");

    // From the images: the member missed exactly what the bitmap must name.
    let before = s.read_images("degraded").map_err(Failure::Bench)?;
    let dirty: BTreeSet<u64> = before.bitmap.dirty_chunks(0).into_iter().collect();
    s.add(check::crash_left_divergence(&before.divergent));
    s.add(check::safety(
        &before.divergent,
        &dirty,
        before.bitmap.chunks(),
        before.bytes_compared,
    ));

    // Boot 3: assemble without the member, re-add it, trace the recovery.
    let mut vm = s.boot(3)?;
    s.phase("boot 3");
    let others: Vec<String> = s
        .array
        .members
        .iter()
        .filter(|m| **m != spec.fail)
        .map(|m| s.dev(m))
        .collect();
    assemble(s, &mut vm, &others.join(" "))?;
    s.sh(
        &mut vm,
        "cd /sys/kernel/tracing && echo 65536 > buffer_size_kb && echo 1 > events/block/block_bio_queue/enable && echo > trace && echo 1 > tracing_on",
        30,
    )?;
    s.sh(
        &mut vm,
        &format!("mdadm /dev/md0 --re-add {}", s.dev(&spec.fail)),
        60,
    )?;
    s.wait_in_sync(&mut vm, Duration::from_secs(600))?;
    s.sh(&mut vm, "echo 0 > /sys/kernel/tracing/tracing_on", 10)?;
    let trace = s.sh(&mut vm, "cat /sys/kernel/tracing/trace", 60)?;
    std::fs::write(s.case_dir.join("recovery-trace.txt"), &trace).map_err(anyhow::Error::from)?;
    let index = s
        .array
        .members
        .iter()
        .position(|m| *m == spec.fail)
        .expect("validated");
    let dev = s.dev_number(&mut vm, &spec.fail)?;
    let recovered = check::written_chunks(
        &check::parse_block_trace(&trace),
        dev,
        before.data_offsets[index],
        before.bitmap.chunk_bytes(),
    );
    let dmesg = s.sh(&mut vm, "dmesg", 10)?;
    s.add(check::resync_bounds(
        &recovered,
        &dirty,
        &before.divergent,
        &check::full_recovery_messages(&dmesg),
    ));
    s.phase("re-add and recovery");
    s.sh(&mut vm, "echo check > /sys/block/md0/md/sync_action", 10)?;
    s.wait_in_sync(&mut vm, Duration::from_secs(600))?;
    let mismatch: u64 = s
        .sh(&mut vm, "cat /sys/block/md0/md/mismatch_cnt", 10)?
        .trim()
        .parse()
        .unwrap_or(u64::MAX);
    let dirty_after = match s.wait_bitmap_clean(&mut vm, s.clean_limit(&before.bitmap)) {
        Ok(_) => 0,
        Err(_) => s
            .guest_bitmap(&mut vm)
            .map(|b| b.dirty_count(0))
            .unwrap_or(u64::MAX),
    };
    stop(s, &mut vm)?;
    vm.quit(Duration::from_secs(30)).map_err(Failure::Bench)?;
    let after = s.read_images("after-recovery").map_err(Failure::Bench)?;
    s.add(check::converged(
        &after.divergent,
        mismatch,
        dirty_after,
        after.bytes_compared,
    ));
    s.phase("judge after recovery");
    s.verdict()
}

pub(crate) fn assemble(s: &Scenario, vm: &mut Vm, devices: &str) -> Result<(), Failure> {
    if s.is_file() {
        s.sh(
            vm,
            &format!("mount {} {MNT}", s.dev(&s.array.bitmap.disk)),
            60,
        )?;
    }
    s.sh(
        vm,
        &format!(
            "mdadm --assemble /dev/md0 --run {} {devices}",
            s.assemble_bitmap_arg()
        ),
        60,
    )?;
    Ok(())
}

pub(crate) fn stop(s: &Scenario, vm: &mut Vm) -> Result<(), Failure> {
    let umount = if s.is_file() {
        format!(" && umount {MNT}")
    } else {
        String::new()
    };
    s.sh(vm, &format!("mdadm --stop /dev/md0{umount} && sync"), 60)
        .map(|_| ())
}

/// Bytes md0 has written since assembly (`/sys/block/md0/stat`, field 7, in sectors).
fn written(s: &Scenario, vm: &mut Vm) -> Result<u64, Failure> {
    let stat = s.sh(vm, "cat /sys/block/md0/stat", 10)?;
    Ok(stat
        .split_whitespace()
        .nth(6)
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        * 512)
}
