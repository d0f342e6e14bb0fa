//! The crash case on levels beyond the 2-way mirror, on the real kernel: RAID6 (P and Q)
//! and RAID10 (near copies, bitmap in array space) must pass with a divergence to judge,
//! and the image checker that judged them must name a chunk whose parity or copy is
//! broken by hand in the real images the run left behind.

mod common;

use common::*;
use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use xtask::ondisk::{bitmap::Bitmap, redundancy, superblock};
use xtask::result::Verdict;

/// Judges the kept member images as the bench does, after flipping one byte of member
/// `victim` at data-area byte `at` (with `flip` as `Some((victim, at))`); returns the
/// inconsistent bitmap chunks.
fn judge_after_flip(
    dir: &std::path::Path,
    members: &[&str],
    flip: Option<(usize, u64)>,
) -> Vec<u64> {
    let bitmap =
        Bitmap::decode(&std::fs::read(dir.join("bitmap-after-resync.bin")).unwrap()).unwrap();
    let disks = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("disks-")
        })
        .expect("the disks were kept");
    let paths: Vec<std::path::PathBuf> = members
        .iter()
        .map(|m| disks.join(format!("{m}.img")))
        .collect();
    if let Some((victim, at)) = flip {
        let mut w = OpenOptions::new()
            .write(true)
            .read(true)
            .open(&paths[victim])
            .unwrap();
        let size = w.metadata().unwrap().len();
        let (_, sb) = superblock::read_from(&mut w, size).unwrap();
        w.seek(SeekFrom::Start(sb.data_offset * 512 + at)).unwrap();
        w.write_all(&[0x5a]).unwrap();
    }
    redundancy::judge_images(
        &paths,
        true,
        bitmap.sb.sync_size * 512,
        bitmap.chunk_bytes(),
    )
    .unwrap()
    .divergence
    .chunks
}

fn passes_with_divergence(variant: &str, seed: u64) -> (tempfile::TempDir, std::path::PathBuf) {
    let mut plan = plan_variant("crash-levels", variant, seed);
    plan.keep_disks = true;
    let (r, dir) = run(&plan);
    assert_eq!(r.verdict, Verdict::Pass, "{:?}\n{:#?}", r.reason, r.checks);
    let div = r
        .checks
        .iter()
        .find(|c| c.name == "crash_left_divergence")
        .unwrap();
    assert!(div.figures["divergent_chunks"].as_u64().unwrap() > 0);
    let case_dir = dir.path().join(&plan.name);
    (dir, case_dir)
}

#[test]
fn raid6_passes_and_a_broken_p_or_q_block_is_named() {
    let (_keep, dir) = passes_with_divergence("raid6-n4-file", 71);
    let members = ["m0", "m1", "m2", "m3"];
    // The converged images: nothing inconsistent. Row 1 (md chunk 512 KiB) has P on
    // member 2 and Q on member 3 (left-symmetric): break Q, then P of row 2 (member 1).
    let chunk = 512 << 10;
    let bm = 64 << 10;
    assert_eq!(judge_after_flip(&dir, &members, None), Vec::<u64>::new());
    assert_eq!(
        judge_after_flip(&dir, &members, Some((3, chunk + 70_000))),
        vec![(chunk + 70_000) / bm]
    );
    assert_eq!(
        judge_after_flip(&dir, &members, Some((1, 2 * chunk + 5))),
        vec![(chunk + 70_000) / bm, (2 * chunk + 5) / bm]
    );
}

#[test]
fn raid10_passes_and_a_broken_copy_is_named_in_array_space() {
    let (_keep, dir) = passes_with_divergence("raid10-n4-file", 72);
    let members = ["m0", "m1", "m2", "m3"];
    let chunk: u64 = 512 << 10;
    let bm: u64 = 64 << 10;
    assert_eq!(judge_after_flip(&dir, &members, None), Vec::<u64>::new());
    // Member 3, row 0 holds the second copy of array chunk 1.
    assert_eq!(
        judge_after_flip(&dir, &members, Some((3, 100))),
        vec![(chunk + 100) / bm]
    );
}
