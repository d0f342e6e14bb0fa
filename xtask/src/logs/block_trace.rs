//! The guest's `block:block_bio_queue` trace, read: which member saw which I/O from whom,
//! and the bitmap chunks a resync or recovery touched.

use std::collections::BTreeSet;

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
pub fn parse(trace: &str) -> Vec<TracedIo> {
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

/// `md0_resync`, `md127_raid5`: not `mdadm`, whose probes may read inside the data area.
fn is_md_thread(comm: &str) -> bool {
    comm.strip_prefix("md")
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()) && rest.contains('_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[u64]) -> BTreeSet<u64> {
        v.iter().copied().collect()
    }

    #[test]
    fn block_trace_lines_become_data_area_chunks() {
        let trace = "\
 md0_raid1-99  [001] .....   30.1: block_bio_queue: 253,16 WS 8 + 8 [md0_raid1]
 md0_resync-100 [000] .....   30.2: block_bio_queue: 253,0 R 2048 + 128 [md0_resync]
 md0_raid1-99  [001] .....   30.3: block_bio_queue: 253,16 W 2176 + 256 [md0_raid1]
 kworker/0:1-5 [000] .....   30.4: block_bio_queue: 253,16 FWS 0 + 0 [kworker/0:1]
";
        let ios = parse(trace);
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
        let mdadm =
            parse(" mdadm-7 [000] .....   30.5: block_bio_queue: 253,0 R 4096 + 8 [mdadm]\n");
        assert!(resync_chunks(&mdadm, (253, 0), 0, same, 65536).is_empty());
    }
}
