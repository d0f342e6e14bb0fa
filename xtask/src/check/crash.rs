//! What a crash, a resync and a recovery must leave: divergence to judge, a bitmap that
//! covers it, a resync inside the bitmap, identical members at the end.

use super::{ranges, Check};
use serde_json::json;
use std::collections::BTreeSet;

/// The crash must have left the members different somewhere: otherwise the safety check
/// has nothing to judge and would pass whatever the kernel did.
pub fn crash_left_divergence(divergent: &[u64]) -> Check {
    Check {
        name: "crash_left_divergence".into(),
        ok: !divergent.is_empty(),
        summary: if divergent.is_empty() {
            "the crash left the members identical: the safety check had nothing to judge".into()
        } else {
            format!(
                "{} chunks differ between members after the crash",
                divergent.len()
            )
        },
        figures: json!({ "divergent_chunks": divergent.len(), "divergent": divergent }),
    }
}

/// The rule [`safety`] judges, alone, for judges of many states: the divergent chunks
/// whose bit is clear.
pub fn uncovered(divergent: &[u64], dirty: impl Fn(u64) -> bool) -> Vec<u64> {
    divergent.iter().copied().filter(|&c| !dirty(c)).collect()
}

/// Every chunk where the members differ must be dirty in the on-disk bitmap.
pub fn safety(divergent: &[u64], dirty: &BTreeSet<u64>, chunks: u64, bytes_compared: u64) -> Check {
    let uncovered = uncovered(divergent, |c| dirty.contains(&c));
    Check {
        name: "safety".into(),
        ok: uncovered.is_empty(),
        summary: if uncovered.is_empty() {
            format!(
                "all {} divergent chunks are dirty in the bitmap ({} of {chunks} dirty)",
                divergent.len(),
                dirty.len()
            )
        } else {
            format!(
                "{} divergent chunks have a clear bit: {} (a resync from this bitmap would leave them different)",
                uncovered.len(),
                ranges(uncovered.iter().copied())
            )
        },
        figures: json!({
            "divergent_chunks": divergent.len(),
            "dirty_chunks": dirty.len(),
            "chunks": chunks,
            "uncovered_chunks": uncovered,
            "bytes_compared": bytes_compared,
            "divergent": divergent,
            "dirty": dirty,
        }),
    }
}

/// The resync (what the members were written, as chunks of the data area) must stay
/// inside the chunks dirty before assembly and must cover every divergent chunk. A kernel
/// that announced a full recovery (`bitmap file is out of date ...`) may go beyond the
/// bitmap; that is reported, not failed.
pub fn resync_bounds(
    resynced: &BTreeSet<u64>,
    dirty: &BTreeSet<u64>,
    divergent: &[u64],
    full_recovery: &[String],
) -> Check {
    let outside: Vec<u64> = resynced.difference(dirty).copied().collect();
    let missed: Vec<u64> = divergent
        .iter()
        .copied()
        .filter(|c| !resynced.contains(c))
        .collect();
    let announced = !full_recovery.is_empty();
    let ok = missed.is_empty() && (outside.is_empty() || announced);
    let mut summary = format!(
        "resync wrote {} chunks, {} dirty before assembly, {} divergent",
        resynced.len(),
        dirty.len(),
        divergent.len()
    );
    if !outside.is_empty() {
        summary.push_str(&format!(
            "; {} resynced chunks were clean in the bitmap: {}",
            outside.len(),
            ranges(outside.iter().copied().take(20))
        ));
        if announced {
            summary.push_str(&format!(
                " (the kernel announced a full recovery: {:?})",
                full_recovery[0]
            ));
        }
    }
    if !missed.is_empty() {
        summary.push_str(&format!(
            "; divergent chunks never resynced: {}",
            ranges(missed.iter().copied())
        ));
    }
    Check {
        name: "resync_bounds".into(),
        ok,
        summary,
        figures: json!({
            "resynced_chunks": resynced.len(),
            "dirty_chunks": dirty.len(),
            "divergent_chunks": divergent.len(),
            "resynced_outside_bitmap": outside.len(),
            "divergent_not_resynced": missed,
            "full_recovery_messages": full_recovery,
            "dirty_not_resynced": dirty.difference(resynced).count(),
            "resynced": resynced,
        }),
    }
}

/// After the resync: members identical, `check` finds no mismatch, the bitmap clean again.
pub fn converged(
    divergent_after: &[u64],
    mismatch_cnt: u64,
    dirty_after: u64,
    bytes_compared: u64,
) -> Check {
    let mut problems = Vec::new();
    if !divergent_after.is_empty() {
        problems.push(format!(
            "members still differ in chunks {}",
            ranges(divergent_after.iter().copied().take(20))
        ));
    }
    if mismatch_cnt != 0 {
        problems.push(format!("mismatch_cnt is {mismatch_cnt} after check"));
    }
    if dirty_after != 0 {
        problems.push(format!("{dirty_after} chunks still dirty on disk"));
    }
    Check {
        name: "converged".into(),
        ok: problems.is_empty(),
        summary: if problems.is_empty() {
            format!("members identical over {bytes_compared} bytes, mismatch_cnt 0, bitmap clean")
        } else {
            problems.join("; ")
        },
        figures: json!({
            "divergent_after": divergent_after,
            "divergent_chunks_after": divergent_after.len(),
            "mismatch_cnt": mismatch_cnt,
            "dirty_chunks_after": dirty_after,
            "bytes_compared": bytes_compared,
        }),
    }
}

/// After the initial resync of a new array md must clear every bit within its deadline:
/// a bitmap that stays dirty over an idle, synced array is md's fault, and every later
/// check would start from a bitmap that marks everything. `waited` is how long it took, or
/// what the deadline saw.
pub fn initial_bitmap_clean(waited: Result<std::time::Duration, String>) -> Check {
    Check {
        name: "initial_bitmap_clean".into(),
        ok: waited.is_ok(),
        summary: match &waited {
            Ok(d) => format!(
                "the bitmap was clean {:.1} s after the initial resync",
                d.as_secs_f64()
            ),
            Err(why) => why.clone(),
        },
        figures: json!({ "clean_after_ms": waited.as_ref().ok().map(|d| d.as_millis() as u64) }),
    }
}

/// After an EIO on the bitmap file's disk, md must drop the file and say so: a file it
/// could not write is stale.
pub fn bitmap_kicked(kicked: &[String]) -> Check {
    Check {
        name: "bitmap_kicked".into(),
        ok: !kicked.is_empty(),
        summary: match kicked.first() {
            Some(l) => format!("md kicked the bitmap file after the write error: {l}"),
            None => "md did not kick the bitmap file after an EIO on its disk".into(),
        },
        figures: json!({ "messages": kicked }),
    }
}

/// The assembly after a kicked bitmap must not trust it: the kernel announces a full
/// recovery.
pub fn untrusted_bitmap(full_recovery: &[String]) -> Check {
    Check {
        name: "untrusted_bitmap".into(),
        ok: !full_recovery.is_empty(),
        summary: match full_recovery.first() {
            Some(l) => format!("the next assembly did not trust the kicked bitmap: {l}"),
            None => {
                "the next assembly trusted a bitmap md had kicked (no full-recovery message)".into()
            }
        },
        figures: json!({ "messages": full_recovery }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[u64]) -> BTreeSet<u64> {
        v.iter().copied().collect()
    }

    #[test]
    fn safety_fails_on_a_divergent_chunk_with_a_clear_bit_and_names_it() {
        assert!(safety(&[3, 4], &set(&[3, 4, 9]), 100, 1 << 20).ok);
        let c = safety(&[3, 4, 5, 17], &set(&[3]), 100, 1 << 20);
        assert!(!c.ok);
        assert!(
            c.summary
                .contains("3 divergent chunks have a clear bit: 4-5, 17"),
            "{}",
            c.summary
        );
        assert_eq!(c.figures["uncovered_chunks"], json!([4, 5, 17]));
    }

    #[test]
    fn resync_bounds_fails_outside_the_bitmap_and_on_a_missed_divergent_chunk() {
        assert!(resync_bounds(&set(&[1, 2]), &set(&[1, 2, 3]), &[2], &[]).ok);
        let outside = resync_bounds(&set(&[1, 2, 50]), &set(&[1, 2]), &[2], &[]);
        assert!(
            !outside.ok && outside.summary.contains("clean in the bitmap: 50"),
            "{}",
            outside.summary
        );
        let missed = resync_bounds(&set(&[1]), &set(&[1, 2]), &[2], &[]);
        assert!(
            !missed.ok && missed.summary.contains("never resynced: 2"),
            "{}",
            missed.summary
        );
        // A full recovery the kernel announced is reported, not failed...
        let msgs =
            vec!["md0: bitmap file is out of date (3 < 4) -- forcing full recovery".to_string()];
        let full = resync_bounds(&set(&[1, 2, 50]), &set(&[1, 2]), &[2], &msgs);
        assert!(full.ok && full.summary.contains("announced a full recovery"));
        // ...but it still has to cover the divergent chunks.
        assert!(!resync_bounds(&set(&[50]), &set(&[1, 2]), &[2], &msgs).ok);
    }

    #[test]
    fn converged_and_divergence_fail_when_broken() {
        assert!(converged(&[], 0, 0, 10).ok);
        assert!(!converged(&[7], 0, 0, 10).ok);
        assert!(!converged(&[], 8, 0, 10).ok);
        assert!(!converged(&[], 0, 2, 10).ok);
        assert!(!crash_left_divergence(&[]).ok);
        assert!(crash_left_divergence(&[1]).ok);
    }

    #[test]
    fn a_kept_or_trusted_bitmap_after_its_disk_failed_fails() {
        let msg = vec!["md0: kicking failed bitmap file /mnt/bitmap from array!".to_string()];
        assert!(bitmap_kicked(&msg).ok);
        assert!(!bitmap_kicked(&[]).ok);
        assert!(
            untrusted_bitmap(&["md0: bitmap file is out of date, doing full recovery".into()]).ok
        );
        assert!(!untrusted_bitmap(&[]).ok);
    }

    #[test]
    fn a_bitmap_that_never_clears_after_the_initial_resync_fails() {
        assert!(initial_bitmap_clean(Ok(std::time::Duration::from_secs(3))).ok);
        let c = initial_bitmap_clean(Err("still 12 of 2032 chunks dirty".into()));
        assert!(!c.ok && !c.is_precondition() && c.summary.contains("12 of 2032"));
    }
}
