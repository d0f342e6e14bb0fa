//! Bitmap files that lie. A file bitmap lives outside the array, so it can fall out of step
//! with it: an older copy restored, a load the file never saw, another array's file, a
//! truncated or damaged file. The array is loaded and crashed as in the crash case, so
//! that there are divergent chunks to recover; then the next assembly is handed the lying
//! file. md may refuse it or recover in full (the case says which it expects); what must
//! never happen is that md trusts bits that are not the array's and leaves divergent
//! chunks unsynced. That is judged from the images and the traced resync, as for a crash.

use super::images::Readings;
use super::Scenario;
use crate::case::{BitmapLieSpec, Lie, LieOutcome};
use crate::check;
use crate::logs::kmsg;
use crate::ondisk::bitmap::{Bitmap, BitmapSuper, BITMAP_SUPER_LEN};
use crate::result::Failure;
use crate::vm::{guest, Vm};
use std::collections::BTreeSet;
use std::time::Duration;

/// Runs the scenario on a prepared case; each check lands in the result as it is judged.
pub fn run(s: &mut Scenario, spec: &BitmapLieSpec) -> Result<(), Failure> {
    let lie = spec.lie.expect("validated: the lie is named");
    let expect = spec.expect[&lie];
    // Boot 1: a settled array, then (for the lies that need it) the file as it was before
    // the load, then the load and the crash.
    // A lagging file misses the load: no bitmap is in use while it runs, so there is no
    // rule to judge at the crash and nothing to record.
    let judged_at_crash = lie != Lie::Lagging;
    let (mut vm, mut recording) = if spec.crash.recorded() && judged_at_crash {
        let (vm, _, r) = s.boot_recorded()?;
        (vm, Some(r))
    } else {
        (s.boot_settled()?.0, None)
    };
    let older = match lie {
        Lie::Stale | Lie::Lagging => Some(before_the_load(s, &mut vm, lie)?),
        _ => None,
    };
    if let Some(t) = &spec.crash.throttle {
        s.throttle(&mut vm, t)?;
    }
    let start = s.block_stats(&mut vm)?;
    let workload = s.spawn_workload(&mut vm, &spec.crash.workload, "")?;
    s.wait_kill_point(&mut vm, &spec.crash, &start, workload)?;
    if let Some(r) = recording.as_mut() {
        s.sync_trace(&mut vm, r)?;
        // The sync took round trips: the kill follows a look that saw the member behind.
        s.wait_kill_point(&mut vm, &spec.crash, &start, workload)?;
    }
    vm.kill().map_err(Failure::Bench)?;
    s.phase("load and crash");
    let before = s.read_images("after-crash").map_err(Failure::Bench)?;
    s.add(check::crash_left_divergence(&before.divergent));
    // Before the lie, the crash itself: a chunk it left divergent with a clear bit is no
    // lie's doing, and the recording says why.
    if judged_at_crash {
        let dirty: BTreeSet<u64> = before.bitmap.dirty_chunks(0).into_iter().collect();
        let safety = s.safety_explained(&before, &dirty, recording.as_ref())?;
        s.add(safety);
    }
    s.phase("judge images after-crash");

    // Boot 2: the file lies, the array is assembled with it.
    let mut vm = s.boot(2)?;
    s.phase("boot 2");
    s.mount_bitmap_fs(&mut vm)?;
    let lied = tell_the_lie(s, &mut vm, lie, older.as_deref())?;
    s.phase("the file lies");
    s.start_block_trace(&mut vm)?;
    let (observed, messages) = assemble_with_the_lie(s, &mut vm)?;
    s.wait_in_sync(&mut vm, Duration::from_secs(600))?;
    s.add(check::bitmap_outcome(expect, observed, &messages));
    let resynced = s.traced_resync(&mut vm, &s.array.members, &before, "resync")?;
    let full = s.full_recovery_messages(&mut vm)?;
    s.add(check::resync_bounds(
        &resynced,
        &bound(observed, &lied, &before),
        &before.divergent,
        &full,
    ));
    s.phase("assemble and resync");
    if observed == LieOutcome::Refused {
        s.converge_without_bitmap(vm, &before, "after-resync")
    } else {
        s.converge(vm, &before, "after-resync")
    }
}

/// Stops the array, reads its file as it is now (the older copy a stale lie restores),
/// and assembles the array again: with the file for a stale lie, without it for a lagging
/// one, so that the load and the crash happen behind the file's back.
fn before_the_load(s: &mut Scenario, vm: &mut Vm, lie: Lie) -> Result<Vec<u8>, Failure> {
    s.stop_array(vm)?;
    s.mount_bitmap_fs(vm)?;
    let older = read_file(s, vm)?;
    if lie == Lie::Lagging {
        s.sh(
            vm,
            &format!("mdadm --assemble /dev/md0 --run {}", s.members()),
            60,
        )?;
    } else {
        s.assemble_array(vm, &s.members())?;
    }
    s.phase("before the load");
    Ok(older)
}

/// The bitmap file's bytes, read with O_DIRECT: what is on the disk.
fn read_file(s: &Scenario, vm: &mut Vm) -> Result<Vec<u8>, Failure> {
    let path = s.bitmap_path();
    let size: u64 = s
        .sh(vm, &format!("stat -c %s {path}"), 10)?
        .trim()
        .parse()
        .map_err(|e| Failure::Bench(anyhow::anyhow!("size of {path}: {e}")))?;
    guest::read(vm, &path, 0, size, true).map_err(Failure::Bench)
}

/// Makes the file lie, in the guest, and returns what it holds now (also kept as
/// `bitmap-lie.bin` for `cargo xtask examine`).
fn tell_the_lie(
    s: &mut Scenario,
    vm: &mut Vm,
    lie: Lie,
    older: Option<&[u8]>,
) -> Result<Vec<u8>, Failure> {
    let path = s.bitmap_path();
    let now = read_file(s, vm)?;
    let lied = lie_bytes(lie, &now, older).map_err(Failure::Bench)?;
    if lied != now {
        guest::write(vm, &path, &lied).map_err(Failure::Bench)?;
    }
    std::fs::write(s.case_dir.join("bitmap-lie.bin"), &lied).map_err(anyhow::Error::from)?;
    keep_member_head(s).map_err(Failure::Bench)?;
    s.note_figure(
        "lie",
        serde_json::json!({ "lie": lie, "bytes_before": now.len(), "bytes_after": lied.len(),
            "decodes": Bitmap::decode(&lied).map(|_| "yes".to_string()).unwrap_or_else(|e| e.to_string()) }),
    );
    Ok(lied)
}

/// The first MiB of the first member as it is when the file lies (its md superblock), as
/// `member-head-at-lie.img`: `cargo xtask examine bitmap-lie.bin member-head-at-lie.img`
/// then says what md makes of the file against the array it was handed to.
fn keep_member_head(s: &Scenario) -> anyhow::Result<()> {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(s.image(&s.array.members[0]))?
        .take(1 << 20)
        .read_to_end(&mut head)?;
    std::fs::write(s.case_dir.join("member-head-at-lie.img"), head)?;
    Ok(())
}

/// Assembles md0 with the file. A refusal is not the case's failure: md may refuse, and
/// then the array is assembled without the file, so that md resyncs it whole. Returns what
/// md did and what it said about the file.
fn assemble_with_the_lie(
    s: &mut Scenario,
    vm: &mut Vm,
) -> Result<(LieOutcome, Vec<String>), Failure> {
    let cmd = format!(
        "mdadm --assemble /dev/md0 --run --bitmap={} {}",
        s.bitmap_path(),
        s.members()
    );
    let out = guest::run(vm, &cmd, &[], Duration::from_secs(60))
        .map_err(|e| Failure::Case(format!("`{cmd}`: {e:#}")))?;
    if out.timed_out {
        return Err(s.stalled(vm, format!("`{cmd}` did not end within 60 s")));
    }
    let assembled = out.success();
    s.note_figure(
        "assembly_with_the_file",
        serde_json::json!({ "status": out.status, "stderr": out.stderr.trim() }),
    );
    let location = if assembled {
        s.sh(vm, "cat /sys/block/md0/md/bitmap/location", 10)?
    } else {
        // A failed RUN_ARRAY leaves md0 inactive, holding the members.
        s.sh(vm, "mdadm --stop /dev/md0 >/dev/null 2>&1; true", 30)?;
        s.sh(
            vm,
            &format!("mdadm --assemble /dev/md0 --run {}", s.members()),
            60,
        )?;
        String::new()
    };
    let dmesg = s.sh(vm, "dmesg", 10)?;
    let full = kmsg::full_recovery_messages(&dmesg);
    let mut messages = kmsg::bitmap_complaints(&dmesg);
    messages.extend(full.iter().cloned());
    Ok((
        check::observed_outcome(assembled, &location, &full),
        messages,
    ))
}

/// The chunks md may resync: those the file marks when md trusted it, every chunk when it
/// did not.
fn bound(observed: LieOutcome, lied: &[u8], before: &Readings) -> BTreeSet<u64> {
    match (observed, bits_as_md_reads(lied, before.bitmap.sb.sync_size)) {
        (LieOutcome::Trusted, Some(b)) => b.dirty_chunks(0).into_iter().collect(),
        _ => (0..before.bitmap.chunks()).collect(),
    }
}

/// The file's bits as md reads them: md sizes the bit array from the array
/// (`resync_max_sectors`, which it also writes back as `sync_size`), not from the file's
/// own `sync_size`.
pub fn bits_as_md_reads(file: &[u8], array_sync_size: u64) -> Option<Bitmap> {
    let mut sb = BitmapSuper::decode(file).ok()?;
    sb.sync_size = array_sync_size;
    let mut bytes = file.to_vec();
    sb.encode_into(bytes.get_mut(..BITMAP_SUPER_LEN)?).ok()?;
    Bitmap::decode(&bytes).ok()
}

/// The file's bytes after the lie, from the bytes it holds now and (for a stale lie) the
/// older copy. A pure function of the bytes, so each lie is tested on a real file.
pub fn lie_bytes(lie: Lie, now: &[u8], older: Option<&[u8]>) -> anyhow::Result<Vec<u8>> {
    let sb = BitmapSuper::decode(now)?;
    let mut out = now.to_vec();
    let mut changed = sb.clone();
    match lie {
        Lie::Stale => {
            return older
                .map(<[u8]>::to_vec)
                .ok_or_else(|| anyhow::anyhow!("a stale lie needs the older copy"))
        }
        Lie::Lagging => return Ok(out),
        Lie::Foreign => changed.uuid.iter_mut().for_each(|b| *b ^= 0x5a),
        Lie::BadMagic => changed.magic ^= 0x0101_0101,
        Lie::BadChunksize => changed.chunksize += 512,
        Lie::BadSyncSize => changed.sync_size /= 2,
        Lie::ShortBits => {
            let need = sb.required_len()? as usize;
            out.truncate((BITMAP_SUPER_LEN + need) / 2);
            return Ok(out);
        }
        // Past the sync size, before the chunk size: md reads a chunk size of 0.
        Lie::ShortSuper => {
            out.truncate(48);
            return Ok(out);
        }
    }
    changed.encode_into(&mut out[..BITMAP_SUPER_LEN])?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ondisk::bitmap::BitmapError;

    /// A bitmap file md wrote (see testdata/bitmap/README.md).
    fn real() -> Vec<u8> {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("testdata/bitmap/raid1-64k-after-crash.bin"),
        )
        .unwrap()
    }

    fn decoded(bytes: &[u8]) -> Result<Bitmap, BitmapError> {
        Bitmap::decode(bytes)
    }

    #[test]
    fn each_damaging_lie_makes_the_decoder_name_the_field_and_its_value() {
        let real = real();
        let err = |lie| decoded(&lie_bytes(lie, &real, None).unwrap()).unwrap_err();
        assert_eq!(
            err(Lie::BadMagic),
            BitmapError::BadMagic { found: 0x6c75_6863 }
        );
        assert_eq!(
            err(Lie::BadChunksize),
            BitmapError::ChunkSizeNotPowerOfTwo { chunksize: 66048 }
        );
        assert_eq!(
            err(Lie::ShortBits),
            BitmapError::Truncated {
                need: 510,
                have: 383
            }
        );
        assert_eq!(
            err(Lie::ShortSuper),
            BitmapError::Truncated {
                need: 256,
                have: 48
            }
        );
        assert_eq!(
            err(Lie::ShortSuper).to_string(),
            "bitmap truncated: need 256 bytes, have 48"
        );
    }

    #[test]
    fn the_lies_md_must_catch_elsewhere_leave_a_valid_file() {
        let real = real();
        let foreign = decoded(&lie_bytes(Lie::Foreign, &real, None).unwrap()).unwrap();
        let own = decoded(&real).unwrap();
        assert_ne!(foreign.sb.uuid, own.sb.uuid);
        assert_eq!(foreign.dirty_chunks(0), own.dirty_chunks(0));
        let lied = lie_bytes(Lie::BadSyncSize, &real, None).unwrap();
        let short_sync = decoded(&lied).unwrap();
        assert_eq!(short_sync.sb.sync_size, own.sb.sync_size / 2);
        // The decoder reads half the bits; md reads them all (the array sizes them).
        assert!(short_sync.dirty_count(0) < own.dirty_count(0));
        let as_md = bits_as_md_reads(&lied, own.sb.sync_size).unwrap();
        assert_eq!(as_md.dirty_chunks(0), own.dirty_chunks(0));
        assert!(bits_as_md_reads(&lie_bytes(Lie::BadMagic, &real, None).unwrap(), 1).is_none());
        assert_eq!(lie_bytes(Lie::Lagging, &real, None).unwrap(), real);
        let mut older = real.clone();
        older[24] = 3; // events 3: behind the array's
        assert_eq!(lie_bytes(Lie::Stale, &real, Some(&older)).unwrap(), older);
        assert!(lie_bytes(Lie::Stale, &real, None).is_err());
    }
}
