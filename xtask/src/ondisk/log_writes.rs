//! The dm-log-writes format (`drivers/md/dm-log-writes.c`), as QEMU's `blklogwrites`
//! driver writes it: a superblock in sector 0, then one entry per completed write, discard
//! or flush, each a header sector followed by the write's data. Entries are in the order
//! their requests completed on that disk.
//!
//! QEMU rewrites the superblock's `nr_entries` only when a flush completes, so the writes
//! after the last flush (the ones a power cut is about, and every one a SIGKILL leaves)
//! are past `nr_entries`: the decoder reads on until an entry does not parse, and marks
//! those entries as such.

use super::{read_u32le, read_u64le};
use std::ops::Range;

pub const WRITE_LOG_MAGIC: u64 = 0x006a_7366_7773_6872;
pub const WRITE_LOG_VERSION: u64 = 1;

pub const LOG_FLUSH_FLAG: u64 = 1 << 0;
pub const LOG_FUA_FLAG: u64 = 1 << 1;
pub const LOG_DISCARD_FLAG: u64 = 1 << 2;
pub const LOG_MARK_FLAG: u64 = 1 << 3;
const LOG_FLAG_MASK: u64 = LOG_FLUSH_FLAG | LOG_FUA_FLAG | LOG_DISCARD_FLAG | LOG_MARK_FLAG;

/// `struct log_write_super`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogWriteSuper {
    pub magic: u64,
    pub version: u64,
    /// Entries written before the last flush completed.
    pub nr_entries: u64,
    /// Bytes per log sector; entry sectors and lengths count in these.
    pub sectorsize: u32,
}

/// `struct log_write_entry`, with where its data sits in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogWriteEntry {
    /// In log sectors of the disk.
    pub sector: u64,
    pub nr_sectors: u64,
    pub flags: u64,
    pub data_len: u64,
    /// The written bytes in the log (empty for flushes and discards).
    pub data: Range<usize>,
    /// Beyond the superblock's `nr_entries`: logged after the last flush.
    pub after_last_flush: bool,
}

impl LogWriteEntry {
    pub fn is_flush(&self) -> bool {
        self.flags & LOG_FLUSH_FLAG != 0
    }
    pub fn is_fua(&self) -> bool {
        self.flags & LOG_FUA_FLAG != 0
    }
    pub fn is_discard(&self) -> bool {
        self.flags & LOG_DISCARD_FLAG != 0
    }
    pub fn is_mark(&self) -> bool {
        self.flags & LOG_MARK_FLAG != 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    #[error("write log truncated: {have} bytes, the superblock needs {need}")]
    TruncatedSuper { have: usize, need: usize },
    #[error("bad write-log magic {found:#x} (expected {WRITE_LOG_MAGIC:#x})")]
    BadMagic { found: u64 },
    #[error("unsupported write-log version {version} (this reader knows {WRITE_LOG_VERSION})")]
    UnsupportedVersion { version: u64 },
    #[error("write-log sector size {sectorsize} is not a power of two of at least 32 bytes")]
    BadSectorSize { sectorsize: u32 },
    #[error("write-log entry {index} (of {nr_entries} the superblock counts): {why}")]
    BadEntry {
        index: u64,
        nr_entries: u64,
        why: String,
    },
}

/// A decoded log: the superblock and every entry that parses, in log order.
#[derive(Debug, Clone)]
pub struct WriteLog {
    pub sb: LogWriteSuper,
    pub entries: Vec<LogWriteEntry>,
}

impl WriteLog {
    /// The bytes an entry wrote, out of the log it was decoded from.
    pub fn data<'a>(&self, log: &'a [u8], entry: &LogWriteEntry) -> &'a [u8] {
        &log[entry.data.clone()]
    }
}

const SUPER_LEN: usize = 28;
const ENTRY_LEN: usize = 32;

pub fn decode(log: &[u8]) -> Result<WriteLog, LogError> {
    if log.len() < SUPER_LEN {
        return Err(LogError::TruncatedSuper {
            have: log.len(),
            need: SUPER_LEN,
        });
    }
    let mut sb = LogWriteSuper {
        magic: read_u64le(log, 0),
        version: read_u64le(log, 8),
        nr_entries: read_u64le(log, 16),
        sectorsize: read_u32le(log, 24),
    };
    // QEMU writes the superblock at the first flush: a disk never flushed has entries
    // behind a zero sector 0, in QEMU's default log sector size.
    if log[..SUPER_LEN].iter().all(|&b| b == 0) {
        sb = LogWriteSuper {
            magic: WRITE_LOG_MAGIC,
            version: WRITE_LOG_VERSION,
            nr_entries: 0,
            sectorsize: 512,
        };
    }
    if sb.magic != WRITE_LOG_MAGIC {
        return Err(LogError::BadMagic { found: sb.magic });
    }
    if sb.version != WRITE_LOG_VERSION {
        return Err(LogError::UnsupportedVersion {
            version: sb.version,
        });
    }
    if !sb.sectorsize.is_power_of_two() || (sb.sectorsize as usize) < ENTRY_LEN {
        return Err(LogError::BadSectorSize {
            sectorsize: sb.sectorsize,
        });
    }
    let ss = sb.sectorsize as usize;
    let mut entries = Vec::new();
    let mut at = ss;
    let mut index = 0u64;
    loop {
        match entry_at(log, at, ss) {
            Ok(Some((entry, next))) => {
                entries.push(LogWriteEntry {
                    after_last_flush: index >= sb.nr_entries,
                    ..entry
                });
                at = next;
                index += 1;
            }
            // Past what the last flush counted, the first entry that does not parse is
            // where the log ends.
            Ok(None) | Err(_) if index >= sb.nr_entries => break,
            Ok(None) => {
                return Err(LogError::BadEntry {
                    index,
                    nr_entries: sb.nr_entries,
                    why: format!("the log ends at byte {}", log.len()),
                })
            }
            Err(why) => {
                return Err(LogError::BadEntry {
                    index,
                    nr_entries: sb.nr_entries,
                    why,
                })
            }
        }
    }
    Ok(WriteLog { sb, entries })
}

/// The entry whose header sector starts at `at`, and where the next one starts; `None`
/// where the log ends (no whole header, or an all-zero one).
fn entry_at(log: &[u8], at: usize, ss: usize) -> Result<Option<(LogWriteEntry, usize)>, String> {
    if at + ss > log.len() {
        return Ok(None);
    }
    let head = &log[at..at + ENTRY_LEN];
    if head.iter().all(|&b| b == 0) {
        return Ok(None);
    }
    let (sector, nr_sectors, flags, data_len) = (
        read_u64le(head, 0),
        read_u64le(head, 8),
        read_u64le(head, 16),
        read_u64le(head, 24),
    );
    if flags & !LOG_FLAG_MASK != 0 {
        return Err(format!("invalid flags {flags:#x} at byte {at}"));
    }
    let data_start = at + ss;
    let data_bytes = if flags & (LOG_DISCARD_FLAG | LOG_FLUSH_FLAG) != 0 {
        0
    } else if flags & LOG_MARK_FLAG != 0 {
        data_len
    } else {
        nr_sectors
            .checked_mul(ss as u64)
            .ok_or_else(|| format!("{nr_sectors} sectors overflow at byte {at}"))?
    };
    let data_end = (data_start as u64)
        .checked_add(data_bytes)
        .filter(|&e| e <= log.len() as u64)
        .ok_or_else(|| {
            format!(
                "its {data_bytes} bytes of data at byte {data_start} run past the log's end ({})",
                log.len()
            )
        })? as usize;
    let next = data_start + (data_end - data_start).div_ceil(ss) * ss;
    Ok(Some((
        LogWriteEntry {
            sector,
            nr_sectors,
            flags,
            data_len,
            data: data_start..data_end,
            after_last_flush: false,
        },
        next,
    )))
}

/// A log in the format, for tests and for a recording rebuilt from its trace alone
/// (`RecordingFiles::timing`): each `(sector, flags, data)` becomes an entry; the
/// superblock counts the first `nr_entries`.
pub fn encode(sectorsize: u32, nr_entries: u64, entries: &[(u64, u64, Vec<u8>)]) -> Vec<u8> {
    let ss = sectorsize as usize;
    let mut out = vec![0u8; ss];
    out[0..8].copy_from_slice(&WRITE_LOG_MAGIC.to_le_bytes());
    out[8..16].copy_from_slice(&WRITE_LOG_VERSION.to_le_bytes());
    out[16..24].copy_from_slice(&nr_entries.to_le_bytes());
    out[24..28].copy_from_slice(&sectorsize.to_le_bytes());
    for (sector, flags, data) in entries {
        let mut head = vec![0u8; ss];
        head[0..8].copy_from_slice(&sector.to_le_bytes());
        head[8..16].copy_from_slice(&((data.len() / ss) as u64).to_le_bytes());
        head[16..24].copy_from_slice(&flags.to_le_bytes());
        out.extend(head);
        out.extend(data);
        out.resize(out.len().div_ceil(ss) * ss, 0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_past_the_last_flush_are_read_and_marked() {
        let log = encode(
            512,
            2,
            &[
                (8, 0, vec![1u8; 1024]),
                (0, LOG_FLUSH_FLAG, vec![]),
                (16, 0, vec![2u8; 512]),
            ],
        );
        let l = decode(&log).unwrap();
        assert_eq!(l.sb.nr_entries, 2);
        assert_eq!(l.entries.len(), 3);
        let (w, f, late) = (&l.entries[0], &l.entries[1], &l.entries[2]);
        assert_eq!((w.sector, w.nr_sectors, w.is_flush()), (8, 2, false));
        assert_eq!(l.data(&log, w), &[1u8; 1024][..]);
        assert!(f.is_flush() && f.data.is_empty() && !f.after_last_flush);
        assert!(late.after_last_flush);
        assert_eq!(l.data(&log, late), &[2u8; 512][..]);
    }

    #[test]
    fn a_torn_last_entry_ends_the_log_but_a_counted_one_is_an_error() {
        let mut log = encode(512, 1, &[(8, 0, vec![1u8; 512]), (9, 0, vec![3u8; 512])]);
        log.truncate(log.len() - 100);
        let l = decode(&log).unwrap();
        assert_eq!(
            l.entries.len(),
            1,
            "the torn entry after the flush is dropped"
        );

        let mut counted = encode(512, 2, &[(8, 0, vec![1u8; 512]), (9, 0, vec![3u8; 512])]);
        counted.truncate(counted.len() - 100);
        let e = decode(&counted).unwrap_err();
        assert!(
            matches!(
                e,
                LogError::BadEntry {
                    index: 1,
                    nr_entries: 2,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("entry 1"), "{e}");
    }

    #[test]
    fn a_log_never_flushed_has_no_superblock_yet() {
        let mut log = encode(512, 0, &[(8, 0, vec![1u8; 512])]);
        log[..512].fill(0);
        let l = decode(&log).unwrap();
        assert_eq!(l.entries.len(), 1);
        assert!(l.entries[0].after_last_flush);
    }

    #[test]
    fn bad_superblocks_and_flags_are_named() {
        let mut log = encode(512, 1, &[(8, 0, vec![1u8; 512])]);
        log[0] ^= 1;
        assert!(matches!(decode(&log), Err(LogError::BadMagic { .. })));
        let mut log = encode(512, 1, &[(8, 0, vec![1u8; 512])]);
        log[8] = 2;
        assert!(matches!(
            decode(&log),
            Err(LogError::UnsupportedVersion { version: 2 })
        ));
        let mut log = encode(512, 1, &[(8, 0, vec![1u8; 512])]);
        log[512 + 16] = 0x80;
        let e = decode(&log).unwrap_err();
        assert!(e.to_string().contains("invalid flags 0x80"), "{e}");
        assert!(matches!(
            decode(&[0u8; 10]),
            Err(LogError::TruncatedSuper { .. })
        ));
    }

    /// The log QEMU wrote for a bitmap file's disk (testdata/log-writes/README.md).
    const QEMU_LOG: &[u8] = include_bytes!("../../testdata/log-writes/fs-bitmap-file.wlog");

    #[test]
    fn a_log_qemu_wrote_decodes_and_its_cut_is_named() {
        let e = decode(QEMU_LOG).unwrap_err();
        assert_eq!(
            e,
            LogError::BadEntry {
                index: 12,
                nr_entries: 112,
                why: format!("the log ends at byte {}", QEMU_LOG.len())
            }
        );
        // As it stood after its first flush: the superblock counts two entries.
        let mut log = QEMU_LOG.to_vec();
        log[16..24].copy_from_slice(&2u64.to_le_bytes());
        let l = decode(&log).unwrap();
        assert_eq!(l.sb.sectorsize, 512);
        assert_eq!(l.entries.len(), 12);
        assert_eq!((l.entries[0].sector, l.entries[0].nr_sectors), (0, 8));
        assert!(l.entries[1].is_flush() && !l.entries[1].after_last_flush);
        for e in &l.entries[2..] {
            assert_eq!((e.sector, e.nr_sectors, e.flags), (16520, 8, 0));
            assert!(e.after_last_flush);
            // md's bitmap file page: bitmap_super_t's magic first.
            assert_eq!(&l.data(&log, e)[..4], &0x6d74_6962u32.to_le_bytes());
        }
    }
}
