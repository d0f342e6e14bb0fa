//! How a bitmap on disk says that a chunk needs a resync: a bit per chunk in the classic
//! bitmap (`md-bitmap.c`), a byte of state per chunk in the lockless one
//! (`md-llbitmap.c`, Linux 6.18+). The judges ask only "where is chunk `c`'s byte" and
//! "does this byte make the next assembly resync `c`"; this file answers both for either
//! kind, so that nothing else needs to know which bitmap it reads.

use serde::Serialize;

/// `BITMAP_MAJOR_LOCKLESS` (md-bitmap.h).
pub const BITMAP_MAJOR_LOCKLESS: u32 = 6;
/// `BITMAP_DATA_OFFSET` (md-llbitmap.c): where the state bytes start, from the superblock.
pub const LLBITMAP_DATA_OFFSET: u64 = 1024;
/// `sizeof(bitmap_super_t)`: where the classic bitmap's bits start.
const CLASSIC_DATA_OFFSET: u64 = 256;

/// `enum llbitmap_state`, one byte per chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChunkState {
    /// `BitUnwritten`: no valid data (a new array, or discarded).
    Unwritten,
    /// `BitClean`: the copies agree.
    Clean,
    /// `BitDirty`: a write may be in flight; set before the write is issued.
    Dirty,
    /// `BitNeedSync`: to be resynced.
    NeedSync,
    /// `BitSyncing`: being resynced.
    Syncing,
    /// `BitNeedSyncUnwritten` (raid456 proactive sync).
    NeedSyncUnwritten,
    /// `BitSyncingUnwritten`.
    SyncingUnwritten,
    /// `BitCleanUnwritten`: parity built for a region never written.
    CleanUnwritten,
    /// A byte md never writes; `llbitmap_state_machine` forces such a chunk to NeedSync.
    Unknown(u8),
}

impl ChunkState {
    pub fn from_byte(b: u8) -> Self {
        use ChunkState::*;
        match b {
            0 => Unwritten,
            1 => Clean,
            2 => Dirty,
            3 => NeedSync,
            4 => Syncing,
            5 => NeedSyncUnwritten,
            6 => SyncingUnwritten,
            7 => CleanUnwritten,
            other => Unknown(other),
        }
    }

    /// Whether the resync after a reassembly covers a chunk left in this state, by
    /// `state_machine[state][BitmapActionReload]`: Dirty and Syncing become NeedSync,
    /// NeedSync stays; the Unwritten kinds fall back to Unwritten and Clean stays, and the
    /// resync skips those. A byte out of range is resynced (`llbitmap_state_machine`).
    pub fn resynced_after_reload(self) -> bool {
        use ChunkState::*;
        matches!(self, Dirty | NeedSync | Syncing | Unknown(_))
    }

    /// The same when md finds the bitmap stale (`BitmapActionStale`): every chunk that
    /// ever held data is resynced, the Unwritten kinds are not.
    pub fn resynced_when_stale(self) -> bool {
        use ChunkState::*;
        matches!(self, Clean | Dirty | NeedSync | Syncing | Unknown(_))
    }

    pub fn as_str(self) -> &'static str {
        use ChunkState::*;
        match self {
            Unwritten => "unwritten",
            Clean => "clean",
            Dirty => "dirty",
            NeedSync => "need_sync",
            Syncing => "syncing",
            NeedSyncUnwritten => "need_sync_unwritten",
            SyncingUnwritten => "syncing_unwritten",
            CleanUnwritten => "clean_unwritten",
            Unknown(_) => "unknown",
        }
    }
}

/// Where and how a bitmap keeps each chunk's need for a resync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChunkEncoding {
    /// Versions 3 to 5: bit `c % 8` of byte `c / 8` after the superblock (version 3's
    /// host-endian longs put it there too on x86-64; see `bitmap::bit_location`).
    #[default]
    Bits,
    /// Version 6, the lockless bitmap: byte `c` from offset 1024 is chunk `c`'s state.
    States,
}

impl ChunkEncoding {
    /// The encoding of a superblock's `version` (3 to 5 are classic bits).
    pub fn of_version(version: u32) -> Self {
        if version == BITMAP_MAJOR_LOCKLESS {
            ChunkEncoding::States
        } else {
            ChunkEncoding::Bits
        }
    }

    /// Where the per-chunk data starts, from the superblock's first byte.
    pub fn data_offset(self) -> u64 {
        match self {
            ChunkEncoding::States => LLBITMAP_DATA_OFFSET,
            ChunkEncoding::Bits => CLASSIC_DATA_OFFSET,
        }
    }

    /// Bytes of per-chunk data for `chunks` chunks.
    pub fn data_len(self, chunks: u64) -> u64 {
        match self {
            ChunkEncoding::States => chunks,
            ChunkEncoding::Bits => chunks.div_ceil(8),
        }
    }

    /// The byte holding chunk `chunk`, from the superblock's first byte.
    pub fn byte_of(self, chunk: u64) -> u64 {
        self.data_offset()
            + match self {
                ChunkEncoding::Bits => chunk / 8,
                ChunkEncoding::States => chunk,
            }
    }

    /// Whether `byte`, read at [`ChunkEncoding::byte_of`], makes the next assembly resync
    /// `chunk`; `stale` when md finds the bitmap older than the array.
    pub fn resyncs(self, byte: u8, chunk: u64, stale: bool) -> bool {
        match self {
            ChunkEncoding::States => {
                let s = ChunkState::from_byte(byte);
                if stale {
                    s.resynced_when_stale()
                } else {
                    s.resynced_after_reload()
                }
            }
            // md_bitmap_read_sb: a stale classic bitmap has every bit taken as set.
            ChunkEncoding::Bits => stale || byte & (1 << (chunk % 8)) != 0,
        }
    }

    /// Whether md trusts the members below the freshest superblock's resync offset,
    /// whatever the bitmap says there: the classic bitmap's load marks only the chunks at
    /// or past it as needed (`md_bitmap_init_from_disk`); `llbitmap_load` reloads every
    /// chunk, and a resync with a bitmap starts at 0 (`md_sync_position`).
    pub fn skips_below_resync_offset(self) -> bool {
        self != ChunkEncoding::States
    }

    /// Whether a stale bitmap resyncs every chunk whatever its byte (the classic one),
    /// so that a stale bitmap with no resync offset is a full recovery.
    pub fn stale_resyncs_all(self) -> bool {
        self != ChunkEncoding::States
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reload_resyncs_dirty_syncing_and_need_sync_only() {
        let resynced: Vec<u8> = (0..=8)
            .filter(|&b| ChunkState::from_byte(b).resynced_after_reload())
            .collect();
        // 2 Dirty, 3 NeedSync, 4 Syncing; 8 is no state md writes.
        assert_eq!(resynced, [2, 3, 4, 8]);
        let stale: Vec<u8> = (0..=7)
            .filter(|&b| ChunkState::from_byte(b).resynced_when_stale())
            .collect();
        assert_eq!(stale, [1, 2, 3, 4]);
    }

    #[test]
    fn each_encoding_finds_its_chunk() {
        let bits = ChunkEncoding::of_version(4);
        assert_eq!(bits.byte_of(10), 256 + 1);
        assert!(bits.resyncs(1 << 2, 10, false));
        assert!(!bits.resyncs(!(1 << 2), 10, false));
        assert!(bits.resyncs(0, 10, true));
        assert_eq!(ChunkEncoding::of_version(3), bits);
        let states = ChunkEncoding::of_version(BITMAP_MAJOR_LOCKLESS);
        assert_eq!(states.byte_of(10), 1024 + 10);
        assert!(states.resyncs(2, 10, false));
        assert!(!states.resyncs(1, 10, false));
        assert!(states.resyncs(1, 10, true));
        assert!(!states.resyncs(0, 10, true));
        assert!(!states.stale_resyncs_all() && bits.stale_resyncs_all());
        assert_eq!(states.data_len(9), 9);
        assert_eq!(bits.data_len(9), 2);
    }
}
