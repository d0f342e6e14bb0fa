//! The crash cases on the real kernel: they must pass, their figures must show that the
//! crash and the resync really did what the verdicts claim, and each verdict must fail
//! when its condition is broken in a copy of the real readings.

mod common;

use common::*;
use std::collections::BTreeSet;
use xtask::check;
use xtask::ondisk::bitmap::Bitmap;
use xtask::result::Verdict;

fn failed_checks(r: &xtask::result::CaseResult) -> Vec<&str> {
    r.checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.name.as_ref())
        .collect()
}

#[test]
fn crash_64k_passes_and_each_check_fails_on_broken_readings() {
    let plan = plan_file("raid1-file-bitmap-crash", 11);
    let (r, dir) = run(&plan);
    let raced = passed_or_judged_by_cause(&r);
    assert_eq!(
        r.times.boot_ms.len(),
        2,
        "two boots: the crash and the reassembly"
    );

    let divergent = chunks(&check_figures(&r, "crash_left_divergence")["divergent"]);
    let bounds = check_figures(&r, "resync_bounds");
    let resynced: BTreeSet<u64> = chunks(&bounds["resynced"]).into_iter().collect();
    let total = check_figures(&r, "safety")["chunks"].as_u64().unwrap();
    assert!(
        !divergent.is_empty(),
        "the throttled member must be left behind"
    );
    assert!(
        (resynced.len() as u64) < total / 2,
        "the resync skipped the clean chunks: {} of {total} resynced",
        resynced.len()
    );
    assert!(divergent
        .iter()
        .all(|c| resynced.contains(c) || raced.contains(c)));

    // Safety, on the real bitmap read from the crashed ext4 image: clear one divergent
    // chunk's bit in a copy and the check must name that chunk.
    let bytes = std::fs::read(dir.path().join(&plan.name).join("bitmap-after-crash.bin")).unwrap();
    let real = Bitmap::decode(&bytes).unwrap();
    let dirty: BTreeSet<u64> = real.dirty_chunks(0).into_iter().collect();
    assert_eq!(
        check::safety(&divergent, &dirty, real.chunks(), 1).ok,
        raced.is_empty()
    );
    let covered: Vec<u64> = divergent
        .iter()
        .copied()
        .filter(|c| !raced.contains(c))
        .collect();
    let victim = covered[covered.len() / 2];
    let mut broken = bytes.clone();
    broken[256 + (victim / 8) as usize] &= !(1 << (victim % 8));
    let broken = Bitmap::decode(&broken).unwrap();
    assert!(!broken.is_dirty(0, victim));
    let broken_dirty: BTreeSet<u64> = broken.dirty_chunks(0).into_iter().collect();
    let c = check::safety(&divergent, &broken_dirty, broken.chunks(), 1);
    let mut want = raced.clone();
    want.push(victim);
    want.sort();
    assert!(
        !c.ok && c.figures["uncovered_chunks"] == serde_json::json!(want),
        "{c:?}"
    );

    // Resync bounds, on the real trace: a divergent chunk the resync skipped, or a clean
    // chunk it wrote, must fail.
    let mut skipped = resynced.clone();
    skipped.remove(&victim);
    assert!(!check::resync_bounds(&skipped, &dirty, &divergent, &[]).ok);
    let clean = (0..total).find(|c| !dirty.contains(c)).unwrap();
    let mut beyond = resynced.clone();
    beyond.insert(clean);
    assert!(!check::resync_bounds(&beyond, &dirty, &divergent, &[]).ok);

    // Convergence, on the real figures: one mismatch or one dirty chunk left must fail.
    let conv = check_figures(&r, "converged");
    // The race's chunks stay different, and `check` counts them.
    assert_eq!(conv["mismatch_cnt"] == 0, raced.is_empty(), "{conv}");
    assert_eq!(conv["dirty_chunks_after"], 0);
    assert!(!check::converged(&[], 1, 0, 1).ok);
    assert!(!check::converged(&[], 0, 1, 1).ok);
    let after = Bitmap::decode(
        &std::fs::read(dir.path().join(&plan.name).join("bitmap-after-resync.bin")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        after.dirty_count(0),
        0,
        "the bitmap read from the image after the resync is clean"
    );
}

#[test]
fn crash_1m_chunks_passes_with_coarser_bits() {
    let plan = plan_file("raid1-file-bitmap-crash-1m", 12);
    let (r, _dir) = run(&plan);
    passed_or_judged_by_cause(&r);
    let safety = check_figures(&r, "safety");
    assert_eq!(safety["chunks"], 127, "127 MiB of data in 1 MiB chunks");
    assert!(safety["divergent_chunks"].as_u64().unwrap() > 0);
}

#[test]
fn crash_under_memory_pressure_reaches_pressure_and_keeps_the_promise() {
    let plan = plan_file("raid1-file-bitmap-crash-pressure", 31);
    let (r, _dir) = run(&plan);
    passed_or_judged_by_cause(&r);
    let p = check_figures(&r, "pressure_reached");
    assert!(
        p["max_events"].as_u64().unwrap() + p["high_events"].as_u64().unwrap() > 0
            || p["memory_stall_us"].as_u64().unwrap() > 0,
        "the run must really have been squeezed: {p}"
    );
    assert_eq!(check_figures(&r, "writers_alive")["exited"], false);
    assert!(
        check_figures(&r, "safety")["divergent_chunks"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[test]
fn internal_bitmap_control_passes_the_same_checks() {
    let plan = plan_file("raid1-internal-bitmap-crash", 41);
    let (r, dir) = run(&plan);
    if !passed_or_judged_by_cause(&r).is_empty() {
        let failed = failed_checks(&r);
        assert!(
            failed
                .iter()
                .all(|n| ["safety", "resync_bounds", "converged"].contains(n)),
            "not the ordering race: {failed:?}"
        );
    }
    assert!(
        check_figures(&r, "safety")["divergent_chunks"]
            .as_u64()
            .unwrap()
            > 0
    );
    // The bitmap came out of the member image, not out of a filesystem.
    let bytes = std::fs::read(dir.path().join(&plan.name).join("bitmap-after-crash.bin")).unwrap();
    assert_eq!(&bytes[..4], b"bitm");
}

#[test]
fn a_member_failed_by_an_injected_eio_is_re_added_from_the_bitmap() {
    let plan = plan_file("raid1-file-bitmap-readd", 51);
    let (r, dir) = run(&plan);
    assert_eq!(r.verdict, Verdict::Pass, "{:?}\n{:#?}", r.reason, r.checks);
    let console =
        std::fs::read_to_string(dir.path().join(&plan.name).join("console-boot2.log")).unwrap();
    assert!(
        console.contains("Disk failure on vdb, disabling device"),
        "md failed the member on the EIO"
    );
    let bounds = check_figures(&r, "resync_bounds");
    let missed = check_figures(&r, "safety")["divergent_chunks"]
        .as_u64()
        .unwrap();
    assert!(missed > 0, "the member missed writes while it was out");
    assert_eq!(bounds["divergent_not_resynced"], serde_json::json!([]));
    assert_eq!(bounds["resynced_outside_bitmap"], 0);
}

#[test]
fn an_eio_on_the_bitmap_disk_kicks_the_file_and_the_next_assembly_distrusts_it() {
    let plan = plan_file("raid1-file-bitmap-eio", 61);
    let (r, _dir) = run(&plan);
    assert_eq!(r.verdict, Verdict::Pass, "{:?}\n{:#?}", r.reason, r.checks);
    assert!(!check_figures(&r, "bitmap_kicked")["messages"]
        .as_array()
        .unwrap()
        .is_empty());
    assert!(!check_figures(&r, "untrusted_bitmap")["messages"]
        .as_array()
        .unwrap()
        .is_empty());
    let bounds = check_figures(&r, "resync_bounds");
    assert_eq!(bounds["divergent_not_resynced"], serde_json::json!([]));
}

#[test]
fn a_crash_during_the_resync_is_judged_twice_and_finished_from_the_bitmap() {
    let plan = plan_file("raid1-file-bitmap-crash-resync", 81);
    let (r, _dir) = run(&plan);
    assert_eq!(r.verdict, Verdict::Pass, "{:?}\n{:#?}", r.reason, r.checks);
    assert_eq!(
        r.times.boot_ms.len(),
        3,
        "crash, crash in the resync, finish"
    );
    let at = &r.figures["resync_interrupted_at_sector"];
    assert!(at["position"].as_u64().unwrap() >= at["aimed_at"].as_u64().unwrap());
    // Judged after each crash: the second time over what the first resync left.
    let safety: Vec<_> = r.checks.iter().filter(|c| c.name == "safety").collect();
    assert_eq!(safety.len(), 2, "{:#?}", r.checks);
    let first = safety[0].figures["divergent_chunks"].as_u64().unwrap();
    let second = safety[1].figures["divergent_chunks"].as_u64().unwrap();
    assert!(first > 0 && second <= first, "{first} then {second}");
}

/// A kill point the load can never reach: one writer of 4 KiB at a time keeps the
/// throttled member at most one write behind its mirror, never the 64 KiB the kill waits
/// for. The wait ends at its deadline (the case's VM time) as an ERROR, the precondition
/// `awaited_state_reached`, never as a FAIL of the kernel, although the writers sit in
/// the kernel waiting for their I/O when it is asked for blocked tasks.
#[test]
fn a_kill_point_the_load_never_reaches_is_an_error_not_a_fail() {
    let yaml = std::fs::read_to_string(bench().project.join("cases/raid1-file-bitmap-crash.yaml"))
        .unwrap()
        .replace("timeout: 15m", "timeout: 20s")
        .replace(
            "{writers: 8, min_io: 4K, max_io: 256K, direct: true}",
            "{writers: 1, min_io: 4K, max_io: 4K, direct: true}",
        )
        .replace("after_time: 3s", "after_time: 1s");
    let plan = plan_inline("kill-point-unreached", &yaml, 5);
    let (r, _dir) = run(&plan);
    assert_eq!(r.verdict, Verdict::Error, "{:?}\n{:#?}", r.reason, r.checks);
    let failed = failed_checks(&r);
    assert_eq!(failed, ["awaited_state_reached"], "{:#?}", r.checks);
    let summary = &r.checks.iter().find(|c| !c.ok).unwrap().summary;
    assert!(
        summary.contains("never fell 65536 bytes behind its mirror")
            && summary.contains("in 20s (deadline passed)")
            && summary.contains("the load was still writing"),
        "{summary}"
    );
}
