//! The crash scenario: build a mirror whose bitmap lives in a file, load it with seeded
//! random writes while one member lags, SIGKILL QEMU, and judge from the raw images:
//! 1. safety: every chunk where the members differ is dirty in the on-disk bitmap;
//! 2. resync bounds: the next assembly resyncs no chunk outside the bitmap and every
//!    divergent chunk (traced from the guest's block layer, not from md's own account);
//! 3. convergence: members identical, `check` finds nothing, the bitmap clean again.

use crate::case::{CrashMode, CrashSpec, PressureSpec};
use crate::check;
use crate::guest::calls;
use crate::ondisk::{bitmap::Bitmap, compare, ext4, superblock};
use crate::run::Failure;
use crate::scenario::{Scenario, MNT};
use crate::vm::Vm;
use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::io::{Read, Seek, SeekFrom};
use std::time::{Duration, Instant};

/// What the host reads from the images after a VM is gone.
pub(crate) struct Readings {
    pub bitmap: Bitmap,
    pub divergent: Vec<u64>,
    pub bytes_compared: u64,
    pub data_offsets: Vec<u64>,
}

/// Runs the scenario on a prepared case; each check lands in the result as it is judged.
pub fn run(s: &mut Scenario, crash: &CrashSpec) -> Result<(), Failure> {
    // Boot 1: build the array, let it settle, load it, kill QEMU.
    let mut vm = s.boot(1)?;
    s.phase("boot 1");
    let settle = s.create_settled_array(&mut vm)?;
    if let Some(t) = &crash.throttle {
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
    s.result.checks.push(check::Check {
        name: "crash_mode",
        ok: true,
        summary: format!("{:?}: {}", crash.mode, crash.mode.survives()),
        figures: serde_json::json!({ "mode": crash.mode }),
    });
    s.phase("crash");
    let console = std::fs::read_to_string(s.case_dir.join("console-boot1.log")).unwrap_or_default();
    s.add(check::bitmap_errors(&console));

    // From the images: what differs, what the bitmap says.
    let before = s.read_images("after-crash").map_err(Failure::Bench)?;
    let dirty: BTreeSet<u64> = before.bitmap.dirty_chunks(0).into_iter().collect();
    let mut divergence = check::crash_left_divergence(&before.divergent);
    if !crash.mode.leaves_divergence() {
        // Only a SIGKILL is counted on to leave the members apart; the others report it.
        divergence.ok = true;
        divergence
            .summary
            .push_str(&format!(" (not required after {:?})", crash.mode));
    }
    s.add(divergence);
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
    if s.is_file() {
        s.sh(
            &mut vm,
            &format!("mount {} {MNT}", s.dev(&s.array.bitmap.disk)),
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
    s.phase("assemble and resync");
    let trace = s.sh(&mut vm, "cat /sys/kernel/tracing/trace", 60)?;
    std::fs::write(s.case_dir.join("resync-trace.txt"), &trace).map_err(anyhow::Error::from)?;
    let dmesg = s.sh(&mut vm, "dmesg", 10)?;
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
    let full = check::full_recovery_messages(&dmesg);
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
    s.phase("check");
    let dirty_after = match s.wait_bitmap_clean(&mut vm, s.clean_limit(&before.bitmap)) {
        Ok(_) => 0,
        Err(_) => s
            .guest_bitmap(&mut vm)
            .map(|b| b.dirty_count(0))
            .unwrap_or(u64::MAX),
    };
    s.phase("bitmap clears");
    let umount = if s.is_file() {
        format!(" && umount {MNT}")
    } else {
        String::new()
    };
    s.sh(
        &mut vm,
        &format!("mdadm --stop /dev/md0{umount} && sync"),
        60,
    )?;
    vm.quit(Duration::from_secs(30)).map_err(Failure::Bench)?;
    let after = s.read_images("after-resync").map_err(Failure::Bench)?;
    s.add(check::converged(
        &after.divergent,
        mismatch,
        dirty_after,
        after.bytes_compared,
    ));
    s.phase("judge images after resync");
    s.verdict()
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

impl Scenario<'_> {
    /// Waits for the kill point: bytes written to md0, or time since the load started.
    pub(crate) fn wait_kill_point(&self, vm: &mut Vm, crash: &CrashSpec) -> Result<u64, Failure> {
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
    pub(crate) fn read_images(&self, label: &str) -> Result<Readings> {
        let path_of = |name: &str| {
            self.disks
                .iter()
                .find(|d| d.name == name)
                .map(|d| d.path.clone())
                .expect("validated")
        };
        let (bytes, source) = if self.is_file() {
            let fs_image = path_of(&self.array.bitmap.disk);
            let map = ext4::locate(&fs_image, &self.array.bitmap.path)?;
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
