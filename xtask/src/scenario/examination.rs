//! The examination scenario: while the array runs and writes, the bitmap file is read with
//! O_DIRECT, through the page cache, and from the block device at its FIEMAP extents.
//! md writes the file past the page cache, so O_DIRECT must equal the disk at every sample
//! while the page cache may lag; after the array lets the file go, the page cache must
//! equal the disk. `mdadm -X` must agree with the decoder, and the file must refuse
//! writers while md holds it.

use super::workload::WORKLOAD_PID;
use super::Scenario;
use crate::case::ExaminationSpec;
use crate::check::{self, FileSample};
use crate::ondisk::bitmap::Bitmap;
use crate::result::Failure;
use crate::vm::{guest, Vm};
use agent::Extent;
use anyhow::Result;
use std::time::Duration;

/// Runs the scenario on a prepared case; each check lands in the result as it is judged.
pub fn run(s: &mut Scenario, spec: &ExaminationSpec) -> Result<(), Failure> {
    let (mut vm, _) = s.boot_settled()?;
    let path = s.bitmap_path();
    let fs_dev = s.dev(&s.array.bitmap.disk);
    let size: u64 = s
        .sh(&mut vm, &format!("stat -c %s {path}"), 10)?
        .trim()
        .parse()
        .unwrap_or(0);
    let extents = guest::fiemap(&mut vm, &path).map_err(Failure::Bench)?;
    let workload = s.spawn_workload(&mut vm, &spec.workload, "")?;
    s.phase("start load");

    let mut samples = Vec::new();
    let mut pairs = Vec::new();
    let mut unstable = 0;
    for i in 0..spec.samples {
        // The writers are stopped while a sample is taken, and a sample counts only if
        // the disk read the same before and after it: otherwise the three reads would
        // race the bitmap's own changes and prove nothing either way.
        pause(s, &mut vm, true)?;
        for _attempt in 0..5 {
            let (sample, pair) =
                stable_sample(s, &mut vm, &path, &fs_dev, &extents, size, i % 3 == 0)?;
            match sample {
                Some(sample) => {
                    samples.push(sample);
                    pairs.extend(pair);
                    break;
                }
                None => unstable += 1,
            }
        }
        pause(s, &mut vm, false)?;
    }
    let errno = guest::try_open_write(&mut vm, &path).map_err(Failure::Bench)?;
    s.phase("sample while writing");
    s.note_figure("unstable_sample_attempts", unstable);
    s.add(check::direct_matches_disk(&samples));
    s.add(check::mdadm_agrees(&pairs));
    s.add(check::write_open(errno, spec.write_open));

    s.stop_workload(&mut vm, workload)?;
    s.sh(&mut vm, "mdadm --stop /dev/md0", 60)?;
    let after = sample(&mut vm, &path, &fs_dev, &extents, size).map_err(Failure::Bench)?;
    s.add(check::page_cache_after_release(&after.cached, &after.raw));
    s.phase("after stop");
    vm.quit(Duration::from_secs(30)).map_err(Failure::Bench)?;
    s.verdict()
}

/// Stops (SIGSTOP) or resumes the writers; stopping waits until every thread is stopped,
/// which is after its write in flight completed.
fn pause(s: &Scenario, vm: &mut Vm, stop: bool) -> Result<(), Failure> {
    if !stop {
        return s
            .sh(vm, &format!("kill -CONT $(cat {WORKLOAD_PID})"), 10)
            .map(|_| ());
    }
    s.sh(vm, &format!("kill -STOP $(cat {WORKLOAD_PID})"), 10)?;
    let all_stopped = format!(
        "! grep -h '^State:' /proc/$(cat {WORKLOAD_PID})/task/*/status | grep -qv 'T (stopped)'"
    );
    guest::poll_until(vm, &all_stopped, &[], Duration::from_secs(30))
        .map(|_| ())
        .map_err(|e| Failure::Case(format!("the writers did not stop: {e:#}")))
}

/// The decoder's `mdadm -X` text beside mdadm's own.
type MdadmPair = (String, String);

/// One sample, if the disk held still across it; with `ask_mdadm`, also mdadm -X's
/// output beside the decoder's, if the file held still across that too.
fn stable_sample(
    s: &Scenario,
    vm: &mut Vm,
    path: &str,
    dev: &str,
    extents: &[Extent],
    size: u64,
    ask_mdadm: bool,
) -> Result<(Option<FileSample>, Option<MdadmPair>), Failure> {
    let before = raw(vm, dev, extents, size).map_err(Failure::Bench)?;
    let sample = sample(vm, path, dev, extents, size).map_err(Failure::Bench)?;
    let mut pair = None;
    if ask_mdadm {
        let x = s.sh(vm, &format!("mdadm -X {path}"), 30)?;
        let again = read(vm, path, size, true).map_err(Failure::Bench)?;
        if again == sample.direct {
            let ours = Bitmap::decode(&sample.direct)
                .map_err(|e| Failure::Bench(e.into()))?
                .mdadm_x_report(path);
            pair = Some((ours, x));
        }
    }
    let after = raw(vm, dev, extents, size).map_err(Failure::Bench)?;
    Ok(if before == after && after == sample.raw {
        (Some(sample), pair)
    } else {
        (None, None)
    })
}

fn read(vm: &mut Vm, path: &str, len: u64, direct: bool) -> Result<Vec<u8>> {
    guest::read(vm, path, 0, len, direct)
}

/// The file's bytes from the device at its extents, with O_DIRECT so the device's own
/// page cache cannot stand in for the disk.
fn raw(vm: &mut Vm, dev: &str, extents: &[Extent], size: u64) -> Result<Vec<u8>> {
    let mut raw = Vec::new();
    for e in extents {
        raw.extend(guest::read(vm, dev, e.physical, e.length, true)?);
    }
    raw.truncate(size as usize);
    Ok(raw)
}

/// The file three ways: O_DIRECT, buffered, and the device at its extents.
fn sample(vm: &mut Vm, path: &str, dev: &str, extents: &[Extent], size: u64) -> Result<FileSample> {
    let direct = read(vm, path, size, true)?;
    let cached = read(vm, path, size, false)?;
    let raw = raw(vm, dev, extents, size)?;
    let dirty = Bitmap::decode(&direct)
        .map(|b| b.dirty_count(0))
        .unwrap_or(0);
    Ok(FileSample {
        direct,
        cached,
        raw,
        dirty,
    })
}
