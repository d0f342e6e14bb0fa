//! Chunk-by-chunk comparison of two RAID1 members' data areas.
//!
//! For RAID1 the array's sector `s` is sector `s` of every member's data area, so bitmap
//! chunk `k` covers data-area bytes `k * chunk_bytes .. (k + 1) * chunk_bytes` on each
//! member, and a chunk whose bytes differ between members must have its bit set if the
//! bitmap is to be trusted for resync.

use std::io::{self, Read, Seek, SeekFrom};

/// Bytes read from each member per step. Large reads keep image comparisons at disk
/// speed; the comparison itself is independent of this size.
const BLOCK: usize = 1 << 20;

/// Result of [`divergent_chunks`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Divergence {
    /// Chunks (numbered from the start of the data area) whose bytes differ, ascending.
    pub chunks: Vec<u64>,
    pub bytes_compared: u64,
}

/// Compares `data_len` bytes of two members' data areas, starting at byte offsets
/// `data_offset_a` in `a` and `data_offset_b` in `b` (md's `data_offset` times 512), and
/// reports which `chunk_bytes`-sized chunks differ. The last chunk may be partial.
///
/// Fails with `UnexpectedEof` if either member ends before `data_len` bytes, and with
/// `InvalidInput` if `chunk_bytes` is 0.
pub fn divergent_chunks<A: Read + Seek, B: Read + Seek>(
    a: &mut A,
    b: &mut B,
    data_offset_a: u64,
    data_offset_b: u64,
    data_len: u64,
    chunk_bytes: u64,
) -> io::Result<Divergence> {
    if chunk_bytes == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "chunk_bytes must be positive",
        ));
    }
    a.seek(SeekFrom::Start(data_offset_a))?;
    b.seek(SeekFrom::Start(data_offset_b))?;
    let mut buf_a = vec![0u8; BLOCK];
    let mut buf_b = vec![0u8; BLOCK];
    let mut out = Divergence::default();
    let mut pos: u64 = 0;
    while pos < data_len {
        let len = (data_len - pos).min(BLOCK as u64) as usize;
        let (block_a, block_b) = (&mut buf_a[..len], &mut buf_b[..len]);
        a.read_exact(block_a)?;
        b.read_exact(block_b)?;
        if block_a != block_b {
            // Walk the chunks overlapping this block; a chunk larger than the block is
            // visited once per block, so only record it the first time.
            let mut off = 0usize;
            while off < len {
                let abs = pos + off as u64;
                let chunk = abs / chunk_bytes;
                let chunk_end = (chunk + 1).saturating_mul(chunk_bytes);
                let end = (chunk_end - pos).min(len as u64) as usize;
                if block_a[off..end] != block_b[off..end] && out.chunks.last() != Some(&chunk) {
                    out.chunks.push(chunk);
                }
                off = end;
            }
        }
        pos += len as u64;
        out.bytes_compared = pos;
    }
    Ok(out)
}

/// Divergent chunks whose bit is not set: data that differs between members while the
/// bitmap claims the chunk is in sync, so a bitmap-based resync would leave it different.
pub fn uncovered(divergent: &[u64], dirty: impl Fn(u64) -> bool) -> Vec<u64> {
    divergent.iter().copied().filter(|&c| !dirty(c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn member(offset: usize, data: &[u8]) -> Cursor<Vec<u8>> {
        let mut v = vec![0xeeu8; offset];
        v.extend_from_slice(data);
        Cursor::new(v)
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn identical_members_have_no_divergence() {
        let data = pattern(3 * BLOCK + 100);
        let mut a = member(4096, &data);
        let mut b = member(1 << 20, &data);
        let d = divergent_chunks(&mut a, &mut b, 4096, 1 << 20, data.len() as u64, 65536).unwrap();
        assert_eq!(
            d,
            Divergence {
                chunks: vec![],
                bytes_compared: data.len() as u64
            }
        );
    }

    #[test]
    fn reports_each_differing_chunk_once_in_order() {
        let data = pattern(3 * BLOCK);
        let mut other = data.clone();
        // chunk 0 first byte; chunk 5 last byte; chunk 16 (first chunk of block 1);
        // two bytes in chunk 40.
        for i in [
            0usize,
            6 * 65536 - 1,
            16 * 65536,
            40 * 65536 + 3,
            40 * 65536 + 9000,
        ] {
            other[i] ^= 0xff;
        }
        let d = divergent_chunks(
            &mut Cursor::new(&data),
            &mut Cursor::new(&other),
            0,
            0,
            data.len() as u64,
            65536,
        )
        .unwrap();
        assert_eq!(d.chunks, vec![0, 5, 16, 40]);
        assert_eq!(d.bytes_compared, data.len() as u64);
    }

    #[test]
    fn chunks_larger_than_a_block_are_reported_once() {
        let chunk = 4 * BLOCK as u64;
        let data = pattern(10 * BLOCK);
        let mut other = data.clone();
        for i in [1usize, BLOCK + 5, 2 * BLOCK + 7, 9 * BLOCK] {
            other[i] ^= 1;
        }
        let d = divergent_chunks(
            &mut Cursor::new(&data),
            &mut Cursor::new(&other),
            0,
            0,
            data.len() as u64,
            chunk,
        )
        .unwrap();
        assert_eq!(d.chunks, vec![0, 2]);
    }

    #[test]
    fn chunk_straddling_blocks_with_differences_in_both() {
        // chunk size not dividing the block: chunk 1 spans blocks 0 and 1.
        let chunk = 3 * BLOCK as u64 / 4 * 2; // 1.5 blocks
        let data = pattern(3 * BLOCK);
        let mut other = data.clone();
        other[BLOCK - 1] ^= 1; // chunk 0 (0..1.5 blocks)
        other[BLOCK + BLOCK / 2 + 1] ^= 1; // chunk 1 (1.5..3 blocks), block 1
        other[2 * BLOCK + 1] ^= 1; // chunk 1, block 2
        let d = divergent_chunks(
            &mut Cursor::new(&data),
            &mut Cursor::new(&other),
            0,
            0,
            data.len() as u64,
            chunk,
        )
        .unwrap();
        assert_eq!(d.chunks, vec![0, 1]);
    }

    #[test]
    fn offsets_and_partial_last_chunk() {
        let data = pattern(10_000);
        let mut other = data.clone();
        other[9_999] ^= 1;
        let mut a = member(512, &data);
        let mut b = member(8192, &other);
        let d = divergent_chunks(&mut a, &mut b, 512, 8192, 10_000, 4096).unwrap();
        assert_eq!(d.chunks, vec![2]);
        assert_eq!(d.bytes_compared, 10_000);
        // Only the data area is compared: bytes past data_len differ freely.
        let mut a = member(0, &[data.clone(), vec![1; 10]].concat());
        let mut b = member(0, &[data.clone(), vec![2; 10]].concat());
        let d = divergent_chunks(&mut a, &mut b, 0, 0, 10_000, 4096).unwrap();
        assert!(d.chunks.is_empty());
    }

    #[test]
    fn short_member_is_an_error() {
        let data = pattern(5000);
        let err = divergent_chunks(
            &mut Cursor::new(&data),
            &mut Cursor::new(&data[..4000]),
            0,
            0,
            5000,
            4096,
        )
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn zero_chunk_size_is_invalid() {
        let err =
            divergent_chunks(&mut Cursor::new(&[]), &mut Cursor::new(&[]), 0, 0, 0, 0).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn empty_data_area() {
        let d =
            divergent_chunks(&mut Cursor::new(&[]), &mut Cursor::new(&[]), 0, 0, 0, 4096).unwrap();
        assert_eq!(d, Divergence::default());
    }

    #[test]
    fn uncovered_keeps_divergent_chunks_without_a_bit() {
        let dirty = [1u64, 4, 5];
        assert_eq!(
            uncovered(&[0, 1, 2, 5, 9], |c| dirty.contains(&c)),
            vec![0, 2, 9]
        );
        assert!(uncovered(&[], |_| false).is_empty());
        assert!(uncovered(&[1, 4], |c| dirty.contains(&c)).is_empty());
    }
}
