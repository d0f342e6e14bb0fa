//! The bitmap file's disk fails: the disk holding the file returns EIO (QEMU blkdebug,
//! once) on the file's second block while the array writes. md must kick the file from the
//! array (and say so), and after a crash the next assembly must not trust the bitmap it
//! could not keep: the kernel announces a full recovery, and the resync covers every chunk
//! where the members differ, dirty on disk or not.

use crate::case::BitmapEioSpec;
use crate::check::{self, Check};
use crate::ondisk::ext4;
use crate::readd::{assemble, stop};
use crate::run::Failure;
use crate::scenario::Scenario;
use std::collections::BTreeSet;
use std::time::Duration;

/// Runs the scenario on a prepared case; each check lands in the result as it is judged.
pub fn run(s: &mut Scenario, spec: &BitmapEioSpec) -> Result<(), Failure> {
    let mut vm = s.boot(1)?;
    s.phase("boot 1");
    s.create_settled_array(&mut vm)?;
    stop(s, &mut vm)?;
    vm.quit(Duration::from_secs(30)).map_err(Failure::Bench)?;
    let fs = s
        .disks
        .iter()
        .find(|d| d.name == s.array.bitmap.disk)
        .expect("validated")
        .clone();
    let map = ext4::locate(&fs.path, &s.array.bitmap.path).map_err(Failure::Bench)?;
    // Not the first block: md writes it while the array starts, and an EIO there fails
    // RUN_ARRAY instead of kicking the file (seen on 6.12). A later block is written only
    // when a chunk it covers gets dirty, under load.
    let Some(block) = map.blocks.get(1) else {
        return Err(Failure::Bench(anyhow::anyhow!(
            "the bitmap file has one block: use smaller bitmap chunks so it spans two"
        )));
    };
    let sector = block * map.block_size / 512;

    // Boot 2: the filesystem's disk behind blkdebug; md's first write to the file fails.
    let rules = s.case_dir.join("blkdebug-bitmap.conf");
    std::fs::write(
        &rules,
        format!("[inject-error]\nevent = \"write_aio\"\nerrno = \"5\"\niotype = \"write\"\nsector = \"{sector}\"\nonce = \"on\"\n"),
    )
    .map_err(anyhow::Error::from)?;
    let mut disks = s.disks.to_vec();
    disks
        .iter_mut()
        .filter(|d| d.name == fs.name)
        .for_each(|d| d.blkdebug = Some(rules.clone()));
    let mut vm = s.boot_with(2, disks)?;
    s.phase("boot 2");
    assemble(s, &mut vm, &s.members())?;
    if let Some(t) = &spec.crash.throttle {
        let index = s
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
    s.spawn_workload(&mut vm, &spec.crash.workload, None)?;
    s.wait_kill_point(&mut vm, &spec.crash)?;
    let dmesg = s.sh(&mut vm, "dmesg", 10)?;
    vm.kill().map_err(Failure::Bench)?;
    let kicked: Vec<String> = dmesg
        .lines()
        .filter(|l| l.contains("kicking failed bitmap file"))
        .map(str::to_string)
        .collect();
    s.add(Check {
        name: "bitmap_kicked",
        ok: !kicked.is_empty(),
        summary: match kicked.first() {
            Some(l) => format!(
                "md kicked the bitmap file after the write error: {}",
                l.trim()
            ),
            None => "md did not kick the bitmap file after an EIO on its disk".into(),
        },
        figures: serde_json::json!({ "messages": kicked }),
    });
    s.phase("load, EIO, kill");

    let before = s.read_images("after-crash").map_err(Failure::Bench)?;
    let dirty: BTreeSet<u64> = before.bitmap.dirty_chunks(0).into_iter().collect();
    s.add(check::crash_left_divergence(&before.divergent));
    // The kicked bitmap need not cover the divergence: record, do not judge.
    let mut stale = check::safety(
        &before.divergent,
        &dirty,
        before.bitmap.chunks(),
        before.bytes_compared,
    );
    stale.name = "stale_bitmap_coverage";
    stale.ok = true;
    s.add(stale);

    let mut vm = s.boot(3)?;
    s.phase("boot 3");
    if s.is_file() {
        s.sh(
            &mut vm,
            &format!(
                "mount {} {}",
                s.dev(&s.array.bitmap.disk),
                crate::scenario::MNT
            ),
            60,
        )?;
    }
    s.sh(
        &mut vm,
        "cd /sys/kernel/tracing && echo 65536 > buffer_size_kb && echo 1 > events/block/block_bio_queue/enable && echo > trace && echo 1 > tracing_on",
        30,
    )?;
    s.sh(
        &mut vm,
        &format!(
            "mdadm --assemble /dev/md0 --run {} {}",
            s.assemble_bitmap_arg(),
            s.members()
        ),
        60,
    )?;
    s.wait_in_sync(&mut vm, Duration::from_secs(600))?;
    s.sh(&mut vm, "echo 0 > /sys/kernel/tracing/tracing_on", 10)?;
    let trace = s.sh(&mut vm, "cat /sys/kernel/tracing/trace", 60)?;
    let ios = check::parse_block_trace(&trace);
    let mut resynced = BTreeSet::new();
    for (i, m) in s.array.members.iter().enumerate() {
        let dev = s.dev_number(&mut vm, m)?;
        resynced.extend(check::written_chunks(
            &ios,
            dev,
            before.data_offsets[i],
            before.bitmap.chunk_bytes(),
        ));
    }
    let dmesg = s.sh(&mut vm, "dmesg", 10)?;
    let full = check::full_recovery_messages(&dmesg);
    s.add(Check {
        name: "untrusted_bitmap",
        ok: !full.is_empty(),
        summary: match full.first() {
            Some(l) => format!(
                "the next assembly did not trust the kicked bitmap: {}",
                l.trim()
            ),
            None => {
                "the next assembly trusted a bitmap md had kicked (no full-recovery message)".into()
            }
        },
        figures: serde_json::json!({ "messages": full }),
    });
    s.add(check::resync_bounds(
        &resynced,
        &dirty,
        &before.divergent,
        &full,
    ));
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
    let after = s.read_images("after-resync").map_err(Failure::Bench)?;
    s.add(check::converged(
        &after.divergent,
        mismatch,
        dirty_after,
        after.bytes_compared,
    ));
    s.phase("reassemble and resync");
    s.verdict()
}
