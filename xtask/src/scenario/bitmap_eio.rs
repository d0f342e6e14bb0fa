//! The bitmap file's disk fails: the disk holding the file returns EIO (QEMU blkdebug,
//! once) on the file's second block while the array writes. md must kick the file from the
//! array (and say so), and after a crash the next assembly must not trust the bitmap it
//! could not keep: the kernel announces a full recovery, and the resync covers every chunk
//! where the members differ, dirty on disk or not.

use super::Scenario;
use crate::case::BitmapEioSpec;
use crate::check;
use crate::logs::kmsg;
use crate::ondisk::ext4;
use crate::result::Failure;
use std::collections::BTreeSet;
use std::time::Duration;

/// Runs the scenario on a prepared case; each check lands in the result as it is judged.
pub fn run(s: &mut Scenario, spec: &BitmapEioSpec) -> Result<(), Failure> {
    let (mut vm, _) = s.boot_settled()?;
    s.stop_array(&mut vm)?;
    vm.quit(Duration::from_secs(30)).map_err(Failure::Bench)?;
    let array = s.array;
    let fs = &array.bitmap.disk;
    let map = ext4::locate(&s.image(fs), &s.array.bitmap.path).map_err(Failure::Bench)?;
    // Not the first block: md writes it while the array starts, and an EIO there fails
    // RUN_ARRAY instead of kicking the file (seen on 6.12). A later block is written only
    // when a chunk it covers gets dirty, under load.
    let Some(block) = map.blocks.get(1) else {
        return Err(Failure::Bench(anyhow::anyhow!(
            "the bitmap file has one block: use smaller bitmap chunks so it spans two"
        )));
    };
    let sector = block * map.block_size / 512;

    // Boot 2: the filesystem's disk behind blkdebug; md's write to that block fails.
    let disks = s.blkdebug_disks(fs, sector)?;
    let mut vm = s.boot_with(2, disks)?;
    s.phase("boot 2");
    s.assemble(&mut vm, &s.members())?;
    if let Some(t) = &spec.crash.throttle {
        s.throttle(&mut vm, t)?;
    }
    let start = s.block_stats(&mut vm)?;
    let workload = s.spawn_workload(&mut vm, &spec.crash.workload, "")?;
    s.wait_kill_point(&mut vm, &spec.crash, &start, workload)?;
    let dmesg = s.sh(&mut vm, "dmesg", 10)?;
    vm.kill().map_err(Failure::Bench)?;
    s.add(check::bitmap_kicked(&kmsg::bitmap_kicked_messages(&dmesg)));
    s.phase("load, EIO, kill");

    let before = s.read_images("after-crash").map_err(Failure::Bench)?;
    let dirty: BTreeSet<u64> = before.bitmap.dirty_chunks(0).into_iter().collect();
    s.add(check::crash_left_divergence(&before.divergent));
    // The kicked bitmap need not cover the divergence: record, do not judge.
    let uncovered = before
        .divergent
        .iter()
        .filter(|c| !dirty.contains(c))
        .count();
    s.note_figure("divergent_chunks_clear_in_kicked_bitmap", uncovered);

    let mut vm = s.boot(3)?;
    s.phase("boot 3");
    s.start_block_trace(&mut vm)?;
    s.assemble(&mut vm, &s.members())?;
    s.wait_in_sync(&mut vm, Duration::from_secs(600))?;
    let resynced = s.traced_resync(&mut vm, &s.array.members, &before, "resync")?;
    let full = s.full_recovery_messages(&mut vm)?;
    s.add(check::untrusted_bitmap(&full));
    s.add(check::resync_bounds(
        &resynced,
        &dirty,
        &before.divergent,
        &full,
    ));
    s.phase("reassemble and resync");
    s.converge(vm, &before, "after-resync")
}
