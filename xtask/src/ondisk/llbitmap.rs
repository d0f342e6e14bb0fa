//! md's lockless bitmap (llbitmap, Linux 6.18+, `drivers/md/md-llbitmap.c`): decoder.
//!
//! The bitmap area starts with the same `bitmap_super_t` as the classic bitmap, version
//! `BITMAP_MAJOR_LOCKLESS` (6), and keeps one byte of state per chunk from
//! `BITMAP_DATA_OFFSET` (1024) on: chunk `n`'s state is the byte at `1024 + n`
//! (`llbitmap_read`). `chunksize` is in sectors here (`MIN_CHUNK_SIZE` is `64 * 2`), where
//! the classic bitmap keeps bytes.
//!
//! What a reassembly does with each state is `state_machine[state][BitmapActionReload]`:
//! Dirty and Syncing become NeedSync, which the resync covers; Clean and Unwritten stay, the
//! other Unwritten kinds become Unwritten, and the resync skips them. A stale bitmap (`events` behind the array's) has every chunk but
//! the Unwritten ones set to NeedSync (`BitmapActionStale`).

use serde::Serialize;
use std::collections::BTreeMap;

use crate::ondisk::bitmap::{BitmapError, BitmapSuper};
pub use crate::ondisk::chunk_state::{ChunkState, BITMAP_MAJOR_LOCKLESS, LLBITMAP_DATA_OFFSET};

/// An llbitmap: its superblock and one state per chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LlBitmap {
    /// `bitmap_super_t` as the classic bitmap has it; `chunksize` is in sectors here.
    pub sb: BitmapSuper,
    pub states: Vec<ChunkState>,
}

impl LlBitmap {
    /// Decodes the bitmap area starting at its superblock, with llbitmap_read_sb's
    /// checks. A superblock marked FIRST_USE has no states yet (md initialises them on
    /// load): it decodes with none.
    pub fn decode(bytes: &[u8]) -> Result<Self, BitmapError> {
        let sb = BitmapSuper::decode(bytes)?;
        if sb.version != BITMAP_MAJOR_LOCKLESS {
            return Err(BitmapError::UnsupportedVersion {
                version: sb.version,
            });
        }
        let need = sb.required_len()?;
        let states = bytes
            .get(LLBITMAP_DATA_OFFSET as usize..need as usize)
            .ok_or(BitmapError::Truncated {
                need,
                have: bytes.len() as u64,
            })?
            .iter()
            .map(|&b| ChunkState::from_byte(b))
            .collect();
        Ok(LlBitmap { sb, states })
    }

    /// Bytes of array data per chunk.
    pub fn chunk_bytes(&self) -> u64 {
        self.sb.chunk_bytes()
    }

    /// How many chunks are in each state, by the state's name (`llbitmap/bits` counts
    /// the same in md's memory).
    pub fn census(&self) -> BTreeMap<&'static str, u64> {
        let mut m = BTreeMap::new();
        for s in &self.states {
            *m.entry(s.as_str()).or_insert(0u64) += 1;
        }
        m
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ondisk::bitmap::{Bitmap, BITMAP_MAGIC, STATE_FIRST_USE};

    /// An llbitmap area as md writes it: superblock, zeros to 1024, the state bytes.
    pub(crate) fn area(sync_size: u64, chunksize: u32, events: u64, states: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; LLBITMAP_DATA_OFFSET as usize + states.len()];
        b[0..4].copy_from_slice(&BITMAP_MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&BITMAP_MAJOR_LOCKLESS.to_le_bytes());
        b[8..24].copy_from_slice(&[7; 16]);
        b[24..32].copy_from_slice(&events.to_le_bytes());
        b[40..48].copy_from_slice(&sync_size.to_le_bytes());
        b[52..56].copy_from_slice(&chunksize.to_le_bytes());
        b[56..60].copy_from_slice(&30u32.to_le_bytes());
        b[LLBITMAP_DATA_OFFSET as usize..].copy_from_slice(states);
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
        assert_eq!(stale_resynced(&l), [1, 2, 3, 4]);
        assert_eq!(l.census()["clean"], 1);
        // The classic decoder reads it too, its bits the chunks a reload resyncs.
        let bm = Bitmap::decode(&b).unwrap();
        assert_eq!(bm.dirty_chunks(0), [2, 3, 4]);
        assert_eq!(bm.chunk_bytes(), 64 << 10);
        assert_eq!(bm.chunks(), 5);
    }

    /// The chunks a reassembly that finds `l` stale resyncs.
    fn stale_resynced(l: &LlBitmap) -> Vec<u64> {
        (0..l.states.len() as u64)
            .filter(|&c| l.states[c as usize].resynced_when_stale())
            .collect()
    }

    fn golden(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/bitmap")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn a_lockless_bitmap_a_guest_wrote_decodes_as_md_left_it() {
        let crashed = LlBitmap::decode(&golden("llbitmap-raid1-n3-after-crash.bin")).unwrap();
        assert_eq!(crashed.sb.chunksize, 128);
        assert_eq!(crashed.sb.sync_size, 129_024);
        assert_eq!(
            crashed.sb.daemon_sleep, 1,
            "the case's period, set through sysfs"
        );
        assert_eq!(crashed.chunk_bytes(), 64 << 10);
        assert_eq!(
            crashed.census(),
            BTreeMap::from([("unwritten", 496), ("dirty", 512)])
        );
        let bm = Bitmap::decode(&golden("llbitmap-raid1-n3-after-crash.bin")).unwrap();
        assert_eq!(bm.dirty_chunks(0), (0..512).collect::<Vec<_>>());
        let resynced = LlBitmap::decode(&golden("llbitmap-raid1-n3-after-resync.bin")).unwrap();
        assert_eq!(
            resynced.census(),
            BTreeMap::from([("unwritten", 496), ("clean", 512)])
        );
        assert!(resynced.sb.events > crashed.sb.events);
        let bm = Bitmap::decode(&golden("llbitmap-raid1-n3-after-resync.bin")).unwrap();
        assert_eq!(bm.dirty_count(0), 0);
        // Stale, md would resync every chunk that held data.
        assert_eq!(stale_resynced(&resynced).len(), 512);
    }

    #[test]
    fn what_llbitmap_read_sb_refuses_is_refused() {
        let good = area(256, 128, 1, &[1, 1]);
        let mut v7 = good.clone();
        v7[4] = 7;
        assert_eq!(
            LlBitmap::decode(&v7).unwrap_err(),
            BitmapError::UnsupportedVersion { version: 7 }
        );
        let mut odd = good.clone();
        odd[52] = 96;
        assert!(matches!(
            LlBitmap::decode(&odd),
            Err(BitmapError::ChunkSizeNotPowerOfTwo { chunksize: 96 })
        ));
        let mut magic = good.clone();
        magic[0] ^= 1;
        assert!(matches!(
            LlBitmap::decode(&magic),
            Err(BitmapError::BadMagic { .. })
        ));
        assert!(matches!(
            LlBitmap::decode(&good[..1025]),
            Err(BitmapError::Truncated { need: 1026, .. })
        ));
        let mut first = good[..1024].to_vec();
        first[48] = STATE_FIRST_USE as u8;
        assert!(LlBitmap::decode(&first).unwrap().states.is_empty());
        assert_eq!(ChunkState::from_byte(9), ChunkState::Unknown(9));
    }
}
