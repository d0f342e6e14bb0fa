//! md's lockless bitmap (llbitmap, Linux 6.18+, `drivers/md/md-llbitmap.c`): decoder.
//!
//! The bitmap area starts with the same `bitmap_super_t` as the classic bitmap, version
//! `BITMAP_MAJOR_LOCKLESS` (6), and keeps one byte of state per chunk from
//! `BITMAP_DATA_OFFSET` (1024) on: chunk `n`'s state is the byte at `1024 + n`
//! (`llbitmap_read`). `chunksize` is in sectors here (`MIN_CHUNK_SIZE` is `64 * 2`), where
//! the classic bitmap keeps bytes.
//!
//! What a reassembly does with each state is `state_machine[state][BitmapActionReload]`:
//! Dirty and Syncing become NeedSync, which the resync covers; Clean and Unwritten stay, and
//! the resync skips them. A stale bitmap (`events` behind the array's) has every chunk but
//! the Unwritten ones set to NeedSync (`BitmapActionStale`).

use serde::Serialize;

use crate::ondisk::bitmap::{BitmapSuper, BITMAP_MAGIC, BITMAP_SUPER_LEN};

/// `BITMAP_MAJOR_LOCKLESS` (md-bitmap.h).
pub const BITMAP_MAJOR_LOCKLESS: u32 = 6;
/// `BITMAP_DATA_OFFSET`: where the state bytes start, from the superblock.
pub const BITMAP_DATA_OFFSET: usize = 1024;
/// `sb->state` bit `BITMAP_FIRST_USE` (enum bitmap_state bit 3): md initialises the states
/// on the next load instead of reading them.
pub const STATE_FIRST_USE: u32 = 1 << 3;

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
    /// A byte md never writes.
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

    /// Whether the resync after a reassembly covers a chunk left in this state: md's
    /// Reload turns Dirty and Syncing into NeedSync and keeps NeedSync; it resyncs those.
    /// The rest it skips, so their copies must already agree.
    pub fn resynced_after_reload(self) -> bool {
        use ChunkState::*;
        matches!(
            self,
            Dirty | NeedSync | Syncing | NeedSyncUnwritten | SyncingUnwritten
        )
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

/// Why an llbitmap could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlBitmapError {
    #[error("llbitmap truncated: need {need} bytes, have {have}")]
    Truncated { need: u64, have: u64 },
    #[error("bad bitmap magic {found:#010x} (expected {BITMAP_MAGIC:#010x})")]
    BadMagic { found: u32 },
    #[error("bitmap version {version} is not the lockless bitmap's ({BITMAP_MAJOR_LOCKLESS})")]
    NotLockless { version: u32 },
    #[error("llbitmap chunksize {chunksize} sectors is not a power of two")]
    ChunkSizeNotPowerOfTwo { chunksize: u32 },
    #[error("llbitmap daemon_sleep {daemon_sleep}s out of range (md needs at least 1s)")]
    DaemonSleepOutOfRange { daemon_sleep: u32 },
}

/// An llbitmap: its superblock and one state per chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LlBitmap {
    /// `bitmap_super_t` as the classic bitmap has it; `chunksize` is in sectors here.
    pub sb: BitmapSuper,
    pub states: Vec<ChunkState>,
}

impl LlBitmap {
    /// Decodes the bitmap area starting at its superblock, with md_llbitmap's checks in
    /// llbitmap_read_sb's order. A superblock marked FIRST_USE has no states yet (md
    /// initialises them on load): every chunk decodes as Unwritten.
    pub fn decode(bytes: &[u8]) -> Result<Self, LlBitmapError> {
        let truncated = |need: usize| LlBitmapError::Truncated {
            need: need as u64,
            have: bytes.len() as u64,
        };
        let sb = BitmapSuper::decode_fields(bytes).map_err(|_| truncated(BITMAP_SUPER_LEN))?;
        if sb.magic != BITMAP_MAGIC {
            return Err(LlBitmapError::BadMagic { found: sb.magic });
        }
        if sb.version != BITMAP_MAJOR_LOCKLESS {
            return Err(LlBitmapError::NotLockless {
                version: sb.version,
            });
        }
        if sb.state & STATE_FIRST_USE != 0 {
            return Ok(LlBitmap { sb, states: vec![] });
        }
        if !sb.chunksize.is_power_of_two() {
            return Err(LlBitmapError::ChunkSizeNotPowerOfTwo {
                chunksize: sb.chunksize,
            });
        }
        if sb.daemon_sleep < 1 {
            return Err(LlBitmapError::DaemonSleepOutOfRange {
                daemon_sleep: sb.daemon_sleep,
            });
        }
        let chunks = sb.sync_size.div_ceil(u64::from(sb.chunksize)) as usize;
        let end = BITMAP_DATA_OFFSET
            .checked_add(chunks)
            .ok_or(truncated(usize::MAX))?;
        let states = bytes
            .get(BITMAP_DATA_OFFSET..end)
            .ok_or(truncated(end))?
            .iter()
            .map(|&b| ChunkState::from_byte(b))
            .collect();
        Ok(LlBitmap { sb, states })
    }

    /// Bytes of array data per chunk.
    pub fn chunk_bytes(&self) -> u64 {
        u64::from(self.sb.chunksize) * 512
    }

    /// The chunks a reassembly would resync, given whether md finds the bitmap stale
    /// (its events behind the array's): then every chunk but the Unwritten ones.
    pub fn resynced_chunks(&self, stale: bool) -> Vec<u64> {
        self.states
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                s.resynced_after_reload()
                    || (stale && !matches!(s, ChunkState::Unwritten | ChunkState::Unknown(_)))
            })
            .map(|(i, _)| i as u64)
            .collect()
    }

    /// How many chunks are in each state, in state order.
    pub fn census(&self) -> Vec<(ChunkState, u64)> {
        let mut m = std::collections::BTreeMap::new();
        for s in &self.states {
            *m.entry(*s).or_insert(0u64) += 1;
        }
        m.into_iter().collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An llbitmap area as md writes it: superblock, zeros to 1024, the state bytes.
    pub(crate) fn area(sync_size: u64, chunksize: u32, events: u64, states: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; BITMAP_DATA_OFFSET + states.len()];
        b[0..4].copy_from_slice(&BITMAP_MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&BITMAP_MAJOR_LOCKLESS.to_le_bytes());
        b[8..24].copy_from_slice(&[7; 16]);
        b[24..32].copy_from_slice(&events.to_le_bytes());
        b[40..48].copy_from_slice(&sync_size.to_le_bytes());
        b[52..56].copy_from_slice(&chunksize.to_le_bytes());
        b[56..60].copy_from_slice(&30u32.to_le_bytes());
        b[BITMAP_DATA_OFFSET..].copy_from_slice(states);
        b
    }

    #[test]
    fn states_decode_by_chunk_and_only_those_reload_resyncs_are_resynced() {
        // 5 chunks of 128 sectors (64 KiB): the last one partial.
        let b = area(4 * 128 + 5, 128, 9, &[0, 1, 2, 3, 4]);
        let l = LlBitmap::decode(&b).unwrap();
        assert_eq!(l.chunk_bytes(), 64 << 10);
        assert_eq!(
            l.states,
            [
                ChunkState::Unwritten,
                ChunkState::Clean,
                ChunkState::Dirty,
                ChunkState::NeedSync,
                ChunkState::Syncing
            ]
        );
        assert_eq!(l.resynced_chunks(false), [2, 3, 4]);
        assert_eq!(l.resynced_chunks(true), [1, 2, 3, 4]);
        assert_eq!(l.census()[1], (ChunkState::Clean, 1));
    }

    #[test]
    fn what_llbitmap_read_sb_refuses_is_refused() {
        let good = area(256, 128, 1, &[1, 1]);
        let mut v5 = good.clone();
        v5[4] = 4;
        assert_eq!(
            LlBitmap::decode(&v5).unwrap_err(),
            LlBitmapError::NotLockless { version: 4 }
        );
        let mut odd = good.clone();
        odd[52] = 96;
        assert!(matches!(
            LlBitmap::decode(&odd),
            Err(LlBitmapError::ChunkSizeNotPowerOfTwo { chunksize: 96 })
        ));
        let mut magic = good.clone();
        magic[0] ^= 1;
        assert!(matches!(
            LlBitmap::decode(&magic),
            Err(LlBitmapError::BadMagic { .. })
        ));
        assert!(matches!(
            LlBitmap::decode(&good[..1025]),
            Err(LlBitmapError::Truncated { need: 1026, .. })
        ));
        let mut first = good[..300].to_vec();
        first[48] = STATE_FIRST_USE as u8;
        assert!(LlBitmap::decode(&first).unwrap().states.is_empty());
        assert_eq!(ChunkState::from_byte(9), ChunkState::Unknown(9));
    }
}
