//! Bitmap files that lie, on the real kernel: each combination of
//! `cases/raid1-file-bitmap-lie.yaml` crashes a loaded mirror, hands the next assembly a
//! lying file, and must end with md's expected outcome, every divergent chunk resynced and
//! the members identical. `cargo xtask examine` then says, from the files the case kept,
//! what is wrong with the lying file.

mod common;

use common::*;

/// `cargo xtask examine` on the lying file and the member it was handed with: the exit
/// status and what it printed.
fn examine(case: &std::path::Path) -> (i32, String) {
    xtask_cli(&[
        "examine".as_ref(),
        case.join("bitmap-lie.bin").as_os_str(),
        case.join("member-head-at-lie.img").as_os_str(),
    ])
}

/// Runs one lie; asserts md's outcome, the recovery, and what `examine` says of the kept
/// file against the member it was handed with (its exit status and a line of its output).
fn lie(variant: &str, observed: &str, said: &str, examine_status: i32, examine_says: &str) {
    let plan = plan_variant("raid1-file-bitmap-lie", variant, 15);
    let (r, dir) = run(&plan);
    // A race at the crash is the kernel's, not the lie's: every lie here resyncs in full.
    passed_or_judged_by_cause(&r);
    let divergent = check_figures(&r, "crash_left_divergence")["divergent_chunks"]
        .as_u64()
        .unwrap();
    assert!(divergent > 0, "the crash left nothing to recover");
    let outcome = check_figures(&r, "bitmap_outcome");
    assert_eq!(outcome["observed"], observed, "{outcome}");
    assert!(
        outcome["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m.as_str().unwrap().contains(said)),
        "md did not say {said:?}: {outcome}"
    );
    let bounds = check_figures(&r, "resync_bounds");
    assert_eq!(
        bounds["divergent_not_resynced"],
        serde_json::json!([]),
        "{bounds}"
    );
    assert!(r.checks.iter().any(|c| c.name == "converged" && c.ok));

    let (status, text) = examine(&dir.path().join(&plan.name));
    assert_eq!(status, examine_status, "{text}");
    assert!(
        text.contains(examine_says),
        "examine did not say {examine_says:?}:\n{text}"
    );
}

#[test]
fn a_stale_copy_forces_a_full_recovery() {
    lie(
        "stale",
        "full_recovery",
        "out of date",
        0,
        "md recovers in full: the file is out of date",
    );
}

#[test]
fn a_file_that_missed_a_load_forces_a_full_recovery() {
    lie(
        "lagging",
        "full_recovery",
        "out of date",
        0,
        "md recovers in full: the file is out of date",
    );
}

#[test]
fn another_arrays_file_is_refused() {
    lie(
        "foreign",
        "refused",
        "bitmap superblock UUID mismatch",
        1,
        "md refuses it: bitmap superblock UUID mismatch",
    );
}

#[test]
fn a_file_cut_in_its_bits_is_refused() {
    lie(
        "short-bits",
        "refused",
        "bitmap file too short",
        125,
        "the bitmap needs 510 bytes from byte 0, but only 383 are there",
    );
}

#[test]
fn a_file_cut_in_its_superblock_is_refused() {
    lie(
        "short-super",
        "refused",
        "bitmap chunksize too small",
        125,
        "bitmap truncated: need 256 bytes, have 48",
    );
}

#[test]
fn a_bad_magic_is_refused() {
    lie(
        "bad-magic",
        "refused",
        "invalid bitmap file superblock: bad magic",
        125,
        "magic 0x6c756863 at byte 0",
    );
}

#[test]
fn a_chunk_size_not_a_power_of_two_is_refused() {
    lie(
        "bad-chunksize",
        "refused",
        "bitmap chunksize not a power of 2",
        125,
        "bitmap chunksize 66048 is not a power of two",
    );
}

/// md rewrites `sync_size` from the array and keeps the bits, which are the array's: the
/// resync stays inside them.
#[test]
fn a_wrong_sync_size_is_rewritten_and_the_bits_trusted() {
    let plan = plan_variant("raid1-file-bitmap-lie", "bad-sync-size", 15);
    let (r, dir) = run(&plan);
    // md trusts the file's bits, so a chunk the crash's race left clear is not resynced:
    // the race's, read from the recording, and only those.
    let raced = passed_or_judged_by_cause(&r);
    assert_eq!(check_figures(&r, "bitmap_outcome")["observed"], "trusted");
    let bounds = check_figures(&r, "resync_bounds");
    assert_eq!(bounds["resynced_outside_bitmap"], 0, "{bounds}");
    let missed = chunks(&bounds["divergent_not_resynced"]);
    assert!(missed.iter().all(|c| raced.contains(c)), "{bounds}");
    let (status, text) = examine(&dir.path().join(&plan.name));
    assert_eq!(status, 0, "{text}");
    assert!(text.contains("md rewrites it and keeps the bits"), "{text}");
}
