//! The verdicts, each a pure function of readings taken from the disk images, the guest
//! and the traces, returning its figures with it. Pure so that a test can break each
//! condition on purpose and see the check fail.

use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub summary: String,
    pub figures: Value,
}

/// Chunk numbers as compact ranges (`3-7, 12`), for messages.
pub fn ranges(chunks: impl IntoIterator<Item = u64>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut it = chunks.into_iter().peekable();
    while let Some(start) = it.next() {
        let mut end = start;
        while it.peek() == Some(&(end + 1)) {
            end = it.next().unwrap();
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    out.join(", ")
}

/// The crash must have left the members different somewhere: otherwise the safety check
/// has nothing to judge and would pass whatever the kernel did.
pub fn crash_left_divergence(divergent: &[u64]) -> Check {
    Check {
        name: "crash_left_divergence",
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

/// Every chunk where the members differ must be dirty in the on-disk bitmap.
pub fn safety(divergent: &[u64], dirty: &BTreeSet<u64>, chunks: u64, bytes_compared: u64) -> Check {
    let uncovered: Vec<u64> = divergent
        .iter()
        .copied()
        .filter(|c| !dirty.contains(c))
        .collect();
    Check {
        name: "safety",
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
        name: "resync_bounds",
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
        name: "converged",
        ok: problems.is_empty(),
        summary: if problems.is_empty() {
            format!("members identical over {bytes_compared} bytes, mismatch_cnt 0, bitmap clean")
        } else {
            problems.join("; ")
        },
        figures: json!({
            "divergent_chunks_after": divergent_after.len(),
            "mismatch_cnt": mismatch_cnt,
            "dirty_chunks_after": dirty_after,
            "bytes_compared": bytes_compared,
        }),
    }
}

/// Kernel messages that excuse a resync beyond the bitmap.
pub fn full_recovery_messages(dmesg: &str) -> Vec<String> {
    dmesg
        .lines()
        .filter(|l| l.contains("forcing full recovery") || l.contains("doing full recovery"))
        .map(|l| l.trim().to_string())
        .collect()
}

/// One I/O a member saw, from the guest's `block:block_bio_queue` tracepoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracedIo {
    pub dev: (u32, u32),
    pub write: bool,
    pub sector: u64,
    pub sectors: u64,
    pub comm: String,
}

/// Parses `... block_bio_queue: 253,16 WS 2048 + 128 [md0_raid1]` lines; others are skipped.
pub fn parse_block_trace(trace: &str) -> Vec<TracedIo> {
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"block_bio_queue: (\d+),(\d+) (\S+) (\d+) \+ (\d+) \[(.*)\]")
            .expect("valid")
    });
    trace
        .lines()
        .filter_map(|l| {
            let c = RE.captures(l)?;
            let rwbs = &c[3];
            let write = rwbs.contains('W');
            if !write && !rwbs.contains('R') {
                return None;
            }
            Some(TracedIo {
                dev: (c[1].parse().ok()?, c[2].parse().ok()?),
                write,
                sector: c[4].parse().ok()?,
                sectors: c[5].parse().ok()?,
                comm: c[6].to_string(),
            })
        })
        .filter(|io| io.sectors > 0)
        .collect()
}

/// The bitmap chunks a resync or recovery touched on member `dev`: every write past the
/// data offset (sectors), and every read md's own threads (`md0_resync`, `md0_raid5`...)
/// issued. `to_space` maps a data-area byte range to bitmap-space ranges.
pub fn resync_chunks(
    ios: &[TracedIo],
    dev: (u32, u32),
    data_offset: u64,
    to_space: impl Fn(u64, u64) -> Vec<(u64, u64)>,
    chunk_bytes: u64,
) -> BTreeSet<u64> {
    let mut out = BTreeSet::new();
    for io in ios.iter().filter(|io| {
        io.dev == dev && io.sector >= data_offset && (io.write || is_md_thread(&io.comm))
    }) {
        for (start, len) in to_space((io.sector - data_offset) * 512, io.sectors * 512) {
            out.extend(start / chunk_bytes..(start + len).div_ceil(chunk_bytes));
        }
    }
    out
}

/// The injectors must have fired: a fault case whose faults never hit proved nothing.
pub fn faults_injected(console: &str) -> Check {
    let faults = crate::splat::injected_faults(console);
    // "md_bitmap_checkpage in agent": where the failures landed, most frequent first.
    let mut sites: BTreeMap<String, usize> = BTreeMap::new();
    for f in &faults {
        let site = f.site.as_deref().unwrap_or("?");
        *sites
            .entry(format!("{} {site} in {}", f.injector, f.task))
            .or_default() += 1;
    }
    let mut ranked: Vec<(&String, &usize)> = sites.iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let n = faults.len();
    Check {
        name: "faults_injected",
        ok: n > 0,
        summary: if n > 0 {
            let list: Vec<String> = ranked
                .iter()
                .take(3)
                .map(|(s, c)| format!("{c}x {s}"))
                .collect();
            format!("{n} failures injected: {}", list.join(", "))
        } else {
            "no fault was injected: the run proved nothing about the error paths".into()
        },
        figures: json!({ "injected": n, "sites": sites }),
    }
}

/// `md0_resync`, `md127_raid5`: not `mdadm`, whose probes may read inside the data area.
fn is_md_thread(comm: &str) -> bool {
    comm.strip_prefix("md")
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()) && rest.contains('_'))
}

/// One moment of the examination: the bitmap file read with O_DIRECT, through the page
/// cache, and from the block device at the file's extents.
#[derive(Debug, Clone)]
pub struct FileSample {
    pub direct: Vec<u8>,
    pub cached: Vec<u8>,
    pub raw: Vec<u8>,
    /// Dirty chunks in the decoded O_DIRECT read.
    pub dirty: u64,
}

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .or((a.len() != b.len()).then(|| a.len().min(b.len())))
}

/// While the array runs, an O_DIRECT read of the bitmap file must be what is on the disk,
/// byte for byte, at every sample; the page cache may lag (md writes past it) and that is
/// counted, not failed. Samples that never saw a dirty bit judge nothing, so at least one
/// must have.
pub fn direct_matches_disk(samples: &[FileSample]) -> Check {
    let mismatches: Vec<(usize, usize)> = samples
        .iter()
        .enumerate()
        .filter_map(|(i, s)| first_difference(&s.direct, &s.raw).map(|at| (i, at)))
        .collect();
    let moving = samples.iter().filter(|s| s.dirty > 0).count();
    let lagged = samples.iter().filter(|s| s.cached != s.raw).count();
    let ok = mismatches.is_empty() && moving > 0;
    let summary = if !mismatches.is_empty() {
        let (i, at) = mismatches[0];
        format!(
            "{} of {} O_DIRECT reads differ from the disk (sample {i} first at byte {at})",
            mismatches.len(),
            samples.len()
        )
    } else if moving == 0 {
        format!("no sample of {} saw a dirty bit: the load never reached the bitmap, nothing was judged", samples.len())
    } else {
        format!("{} O_DIRECT reads equal the disk ({moving} with dirty bits); the page cache lagged in {lagged}", samples.len())
    };
    Check {
        name: "direct_matches_disk",
        ok,
        summary,
        figures: json!({ "samples": samples.len(), "mismatches": mismatches.len(), "samples_with_dirty_bits": moving, "page_cache_lagged": lagged }),
    }
}

/// After the array lets the file go, md invalidates its page cache: a buffered read must
/// see the disk.
pub fn page_cache_after_release(cached: &[u8], raw: &[u8]) -> Check {
    let diff = first_difference(cached, raw);
    Check {
        name: "page_cache_after_release",
        ok: diff.is_none(),
        summary: match diff {
            None => format!(
                "after the array stopped, a buffered read equals the disk ({} bytes)",
                raw.len()
            ),
            Some(at) => format!(
                "after the array stopped, the page cache still differs from the disk at byte {at}"
            ),
        },
        figures: json!({ "bytes": raw.len(), "first_difference": diff }),
    }
}

/// `mdadm -X`, run while the bitmap did not change (the same O_DIRECT bytes before and
/// after it), must print what the decoder reads; the Filename line is not compared.
pub fn mdadm_agrees(pairs: &[(String, String)]) -> Check {
    let strip = |t: &str| {
        t.lines()
            .filter(|l| !l.trim_start().starts_with("Filename"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let disagree: Vec<usize> = pairs
        .iter()
        .enumerate()
        .filter(|(_, (ours, theirs))| strip(ours) != strip(theirs))
        .map(|(i, _)| i)
        .collect();
    let ok = !pairs.is_empty() && disagree.is_empty();
    Check {
        name: "mdadm_agrees",
        ok,
        summary: if pairs.is_empty() {
            "the bitmap never held still across an mdadm -X: nothing compared".into()
        } else if disagree.is_empty() {
            format!(
                "mdadm -X agreed with the decoded O_DIRECT read {} times",
                pairs.len()
            )
        } else {
            let (ours, theirs) = &pairs[disagree[0]];
            format!("mdadm -X disagreed with the decoded O_DIRECT read in {} of {}:\nours:\n{ours}\nmdadm:\n{theirs}", disagree.len(), pairs.len())
        },
        figures: json!({ "compared": pairs.len(), "disagreed": disagree.len() }),
    }
}

/// Opening the bitmap file for writing while the array runs must do what the case
/// declares: fail with ETXTBSY (`refused`), or succeed (`allowed`).
pub fn write_open(errno: Option<i32>, expect: crate::case::WriteOpen) -> Check {
    use crate::case::WriteOpen;
    let ok = match expect {
        WriteOpen::Refused => errno == Some(libc::ETXTBSY),
        WriteOpen::Allowed => errno.is_none(),
    };
    let what = match errno {
        Some(libc::ETXTBSY) => "failed with ETXTBSY".to_string(),
        Some(e) => format!("failed with errno {e}"),
        None => "succeeded".to_string(),
    };
    Check {
        name: "write_open",
        ok,
        summary: format!("opening the bitmap file for writing while the array ran {what}; the case expects it {expect:?}"),
        figures: json!({ "errno": errno, "expected": expect }),
    }
}

/// The pressure a case asked for must have been reached, or the run proved nothing
/// about pressure: the cgroup hit `memory.high`/`memory.max` (`memory.events`), or tasks
/// stalled on memory (PSI `some total`).
pub fn pressure_reached(memory_events: &str, memory_pressure: &str) -> Check {
    let event = |name: &str| {
        memory_events
            .lines()
            .find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|v| v.trim().parse::<u64>().ok())
            })
            .unwrap_or(0)
    };
    let stall_us = memory_pressure
        .lines()
        .find(|l| l.starts_with("some"))
        .and_then(|l| l.split_whitespace().find_map(|f| f.strip_prefix("total=")))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let (high, max, oom) = (event("high "), event("max "), event("oom "));
    Check {
        name: "pressure_reached",
        ok: high + max > 0 || stall_us > 0,
        summary: if high + max > 0 || stall_us > 0 {
            format!("the writers' cgroup hit memory.high {high} and memory.max {max} times; tasks stalled on memory {stall_us} us")
        } else {
            "the run never reached memory pressure (no memory.high/max events, no memory stall): nothing was proved about pressure".into()
        },
        figures: json!({ "high_events": high, "max_events": max, "oom_events": oom, "memory_stall_us": stall_us }),
    }
}

/// The writers were still writing when the crash came: none stopped on an I/O error.
pub fn writers_alive(exit: Option<(Option<i32>, String)>) -> Check {
    Check {
        name: "writers_alive",
        ok: exit.is_none(),
        summary: match &exit {
            None => "the writers were still writing at the crash; none saw an I/O error".into(),
            Some((status, stderr)) => format!(
                "the writers ended before the crash (status {status:?}): {}",
                stderr.trim()
            ),
        },
        figures: json!({ "exited": exit.is_some() }),
    }
}

/// md's complaints about its bitmap in a console log.
pub fn bitmap_errors(console: &str) -> Check {
    const PATTERNS: [&str; 7] = [
        "kicking failed bitmap file",
        "md: bitmap read error",
        "bitmap file too short",
        "invalid bitmap file superblock",
        "bitmap superblock UUID mismatch",
        "md: cannot resize file-based bitmap",
        "bitmap: write error",
    ];
    let found: Vec<String> = console
        .lines()
        .filter(|l| PATTERNS.iter().any(|p| l.contains(p)))
        .map(|l| l.trim().to_string())
        .collect();
    Check {
        name: "no_bitmap_errors",
        ok: found.is_empty(),
        summary: if found.is_empty() {
            "md logged no bitmap error".into()
        } else {
            format!("md logged: {}", found.join(" | "))
        },
        figures: json!({ "messages": found }),
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
    fn pressure_writer_and_bitmap_error_checks_fail_when_broken() {
        let psi = "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
        let none = "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n";
        assert!(!pressure_reached(none, psi).ok);
        assert!(pressure_reached("low 0\nhigh 12\nmax 0\noom 0\n", psi).ok);
        let c = pressure_reached(none, "some avg10=1.00 avg60=0.00 avg300=0.00 total=5300\n");
        assert!(c.ok && c.figures["memory_stall_us"] == 5300);
        assert!(writers_alive(None).ok);
        assert!(
            !writers_alive(Some((
                Some(1),
                "write 4096 at 0: Input/output error".into()
            )))
            .ok
        );
        assert!(bitmap_errors("[ 1.0] md0: bitmap file is ok\n").ok);
        let c = bitmap_errors("[ 5.0] md0: kicking failed bitmap file /mnt/bitmap from array!\n");
        assert!(!c.ok && c.summary.contains("kicking failed bitmap file"));
    }

    #[test]
    fn examination_checks_fail_when_broken() {
        let sample = |d: &[u8], c: &[u8], r: &[u8], dirty| FileSample {
            direct: d.into(),
            cached: c.into(),
            raw: r.into(),
            dirty,
        };
        let good = [
            sample(b"ab", b"xx", b"ab", 3),
            sample(b"cd", b"cd", b"cd", 0),
        ];
        let c = direct_matches_disk(&good);
        assert!(c.ok && c.figures["page_cache_lagged"] == 1, "{c:?}");
        let c = direct_matches_disk(&[
            sample(b"ab", b"ab", b"ab", 1),
            sample(b"cX", b"cd", b"cd", 1),
        ]);
        assert!(
            !c.ok && c.summary.contains("sample 1 first at byte 1"),
            "{}",
            c.summary
        );
        assert!(
            !direct_matches_disk(&[sample(b"a", b"a", b"a", 0)]).ok,
            "no dirty bit, nothing judged"
        );
        assert!(page_cache_after_release(b"abc", b"abc").ok);
        assert!(!page_cache_after_release(b"abd", b"abc").ok);
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert!(
            mdadm_agrees(&[pair(
                "Filename : /a\nEvents : 3",
                "Filename : /b\nEvents : 3"
            )])
            .ok
        );
        assert!(!mdadm_agrees(&[pair("Events : 3", "Events : 4")]).ok);
        assert!(!mdadm_agrees(&[]).ok);
        use crate::case::WriteOpen::{Allowed, Refused};
        assert!(write_open(Some(libc::ETXTBSY), Refused).ok);
        assert!(!write_open(None, Refused).ok);
        assert!(!write_open(Some(libc::EACCES), Refused).ok);
        assert!(write_open(None, Allowed).ok);
        assert!(!write_open(Some(libc::ETXTBSY), Allowed).ok);
    }

    #[test]
    fn faults_must_have_been_injected() {
        let c = faults_injected("[ 9.1] FAULT_INJECTION: forcing a failure.\n[ 9.2] name failslab, interval 1, probability 10, space 0, times -1\n");
        assert!(c.ok && c.figures["injected"] == 1);
        assert!(
            c.summary.contains("1x failslab ? in unknown"),
            "{}",
            c.summary
        );
        assert!(!faults_injected("[ 9.1] md0: resync done\n").ok);
    }

    #[test]
    fn block_trace_lines_become_data_area_chunks() {
        let trace = "\
 md0_raid1-99  [001] .....   30.1: block_bio_queue: 253,16 WS 8 + 8 [md0_raid1]
 md0_resync-100 [000] .....   30.2: block_bio_queue: 253,0 R 2048 + 128 [md0_resync]
 md0_raid1-99  [001] .....   30.3: block_bio_queue: 253,16 W 2176 + 256 [md0_raid1]
 kworker/0:1-5 [000] .....   30.4: block_bio_queue: 253,16 FWS 0 + 0 [kworker/0:1]
";
        let ios = parse_block_trace(trace);
        assert_eq!(ios.len(), 3);
        assert_eq!(
            ios[1],
            TracedIo {
                dev: (253, 0),
                write: false,
                sector: 2048,
                sectors: 128,
                comm: "md0_resync".into()
            }
        );
        // 2176-2048 = 128 sectors = 64 KiB: chunk 1 and 2 of 64 KiB chunks; the superblock
        // write at sector 8 lies before the data area and counts for nothing.
        let same = |off, len| vec![(off, len)];
        assert_eq!(
            resync_chunks(&ios, (253, 16), 2048, same, 65536),
            set(&[1, 2])
        );
        // md's own reads count (a raid5/raid10 resync reads every copy), others' do not.
        assert_eq!(resync_chunks(&ios, (253, 0), 0, same, 65536), set(&[16]));
        let mdadm = parse_block_trace(
            " mdadm-7 [000] .....   30.5: block_bio_queue: 253,0 R 4096 + 8 [mdadm]\n",
        );
        assert!(resync_chunks(&mdadm, (253, 0), 0, same, 65536).is_empty());
        assert_eq!(ranges([1, 2, 3, 7, 9, 10]), "1-3, 7, 9-10");
        assert_eq!(
            full_recovery_messages(
                "[1] md0: bitmap file is out of date, doing full recovery\n[2] ok\n"
            )
            .len(),
            1
        );
    }
}
