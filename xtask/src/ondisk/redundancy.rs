//! Where each byte of bitmap space lives on the members, level by level, and which bitmap
//! chunks hold members that disagree: mirror copies that differ, or parity that does not
//! match its data. A chunk that disagrees must be dirty in the bitmap, whatever the level.
//!
//! Bitmap space is what md hands the bitmap: for RAID1 and RAID4/5/6 each member's data
//! area (`resync_max_sectors` is the device size: raid5 marks `sh->sector`, a device
//! sector), for RAID10 the array itself (raid10 marks array sectors, and its
//! `resync_max_sectors` is the array size). The bitmap's `sync_size` is that space's length.

use super::superblock::{self, MdSuper};
use anyhow::Context;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;

/// md's `ALGORITHM_LEFT_SYMMETRIC`, mdadm's default RAID5/6 layout.
pub const LEFT_SYMMETRIC: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// RAID1: every member holds all of bitmap space at its data offset.
    Mirror,
    /// RAID10 "near": array chunk `c`'s `copies` copies sit on devices
    /// `(c * copies + k) % n`, row `(c * copies + k) / n`.
    Near { copies: u32, chunk: u64 },
    /// RAID5 (any layout: the XOR of a row over all members is zero) or RAID6
    /// left-symmetric (P and Q by position; Q is the GF(2^8) syndrome).
    Parity { raid6: bool, chunk: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub layout: Layout,
    pub members: usize,
}

impl Geometry {
    pub fn mirror(members: usize) -> Self {
        Self {
            layout: Layout::Mirror,
            members,
        }
    }

    /// The geometry a member's superblock describes; levels and layouts the bench cannot
    /// judge are named.
    pub fn from_super(sb: &MdSuper) -> Result<Self, String> {
        Self::new(sb.level, sb.layout, sb.chunksize, sb.raid_disks)
    }

    /// From a superblock's level, layout, chunk size (sectors) and member count.
    pub fn new(
        level: i32,
        layout: u32,
        chunk_sectors: u32,
        raid_disks: u32,
    ) -> Result<Self, String> {
        let members = raid_disks as usize;
        let chunk = u64::from(chunk_sectors) * 512;
        let layout = match level {
            1 => Layout::Mirror,
            10 => {
                let (near, far, offset) = (layout & 0xff, (layout >> 8) & 0xff, layout >> 16);
                if far != 1 || offset != 0 || near < 2 {
                    return Err(format!(
                        "RAID10 layout {layout:#x}: only the near layout (n2, n3...) is judged"
                    ));
                }
                Layout::Near {
                    copies: near,
                    chunk,
                }
            }
            4 | 5 => Layout::Parity {
                raid6: false,
                chunk,
            },
            6 if layout == LEFT_SYMMETRIC => Layout::Parity { raid6: true, chunk },
            6 => {
                return Err(format!(
                    "RAID6 layout {layout}: only left-symmetric ({LEFT_SYMMETRIC}) is judged"
                ))
            }
            other => return Err(format!("RAID level {other} has no redundancy to judge")),
        };
        if chunk == 0 && layout != Layout::Mirror {
            return Err("the superblock gives no chunk size".into());
        }
        Ok(Self { layout, members })
    }

    /// Bitmap-space byte ranges that `len` bytes at data-area byte `off` of `member` hold.
    pub fn to_bitmap_space(&self, member: usize, off: u64, len: u64) -> Vec<(u64, u64)> {
        match self.layout {
            Layout::Mirror | Layout::Parity { .. } => vec![(off, len)],
            Layout::Near { copies, chunk } => {
                let mut out = Vec::new();
                let (mut pos, end) = (off, off + len);
                while pos < end {
                    let row = pos / chunk;
                    let piece = (chunk - pos % chunk).min(end - pos);
                    let c = (row * self.members as u64 + member as u64) / u64::from(copies);
                    out.push((c * chunk + pos % chunk, piece));
                    pos += piece;
                }
                out
            }
        }
    }

    /// The member bytes that [`Geometry::inconsistent`] reads for `len` bytes at
    /// bitmap-space byte `off`: `(member, data-area byte, length)`, every copy or every
    /// member of the stripe. The inverse of [`Geometry::to_bitmap_space`].
    pub fn member_ranges(&self, off: u64, len: u64) -> Vec<(usize, u64, u64)> {
        match self.layout {
            Layout::Mirror | Layout::Parity { .. } => {
                (0..self.members).map(|m| (m, off, len)).collect()
            }
            Layout::Near { copies, chunk } => {
                let n = self.members as u64;
                let mut out = Vec::new();
                let (mut pos, end) = (off, off + len);
                while pos < end {
                    let c = pos / chunk;
                    let piece = (chunk - pos % chunk).min(end - pos);
                    for k in 0..u64::from(copies) {
                        let idx = c * u64::from(copies) + k;
                        out.push(((idx % n) as usize, idx / n * chunk + pos % chunk, piece));
                    }
                    pos += piece;
                }
                out
            }
        }
    }

    /// The bitmap chunks (of `chunk_bytes`, over `space` bytes of bitmap space) whose
    /// copies or parity disagree, reading each member at its data offset (bytes).
    pub fn inconsistent<R: Read + Seek>(
        &self,
        members: &mut [R],
        data_offsets: &[u64],
        space: u64,
        chunk_bytes: u64,
    ) -> io::Result<Divergence> {
        self.inconsistent_in(members, data_offsets, space, chunk_bytes, 0..space)
    }

    /// [`Geometry::inconsistent`] over the part of bitmap space inside `within` only.
    /// `bytes_compared` is the span asked for.
    pub fn inconsistent_in<R: Read + Seek>(
        &self,
        members: &mut [R],
        data_offsets: &[u64],
        space: u64,
        chunk_bytes: u64,
        within: std::ops::Range<u64>,
    ) -> io::Result<Divergence> {
        let end = within.end.min(space);
        if chunk_bytes == 0 || members.len() != self.members || data_offsets.len() != self.members {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} members and {} offsets for a {}-member geometry, chunk {chunk_bytes}",
                    members.len(),
                    data_offsets.len(),
                    self.members
                ),
            ));
        }
        let mut marks = Marks::new(chunk_bytes);
        // The part of a unit (a mirror's MiB, an array chunk, a stripe's row) inside
        // `within`: copies and parity agree byte by byte, so only that part is read.
        let clip = |unit: u64, len: u64| {
            let (lo, hi) = (unit.max(within.start), (unit + len).min(end));
            (lo < hi).then_some((lo - unit, hi - lo))
        };
        match self.layout {
            Layout::Mirror => {
                let unit = 1u64 << 20;
                let mut pos = within.start / unit * unit;
                while pos < end {
                    let len = unit.min(space - pos);
                    if let Some((skip, part)) = clip(pos, len) {
                        let rows = read_all(members, data_offsets, pos + skip, part)?;
                        for other in &rows[1..] {
                            marks.differ(pos + skip, &rows[0], other);
                        }
                    }
                    pos += len;
                }
            }
            Layout::Near { copies, chunk } => {
                let n = self.members as u64;
                let mut c = within.start / chunk;
                while c * chunk < end {
                    let len = chunk.min(space - c * chunk);
                    if let Some((skip, part)) = clip(c * chunk, len) {
                        let mut bufs = Vec::new();
                        for k in 0..u64::from(copies) {
                            let idx = c * u64::from(copies) + k;
                            let (dev, row) = ((idx % n) as usize, idx / n);
                            bufs.push(read_at(
                                &mut members[dev],
                                data_offsets[dev] + row * chunk + skip,
                                part,
                            )?);
                        }
                        for other in &bufs[1..] {
                            marks.differ(c * chunk + skip, &bufs[0], other);
                        }
                    }
                    c += 1;
                }
            }
            Layout::Parity { raid6, chunk } => {
                let n = self.members;
                let mut row = within.start / chunk;
                while row * chunk < end {
                    let len = chunk.min(space - row * chunk);
                    let Some((skip, part)) = clip(row * chunk, len) else {
                        row += 1;
                        continue;
                    };
                    let base = row * chunk + skip;
                    let bufs = read_all(members, data_offsets, base, part)?;
                    let (p, q) = if raid6 {
                        let p = n - 1 - (row % n as u64) as usize;
                        (p, Some((p + 1) % n))
                    } else {
                        (0, None)
                    };
                    let data: Vec<&[u8]> = match q {
                        // Data slot i sits on device (p + 2 + i) % n: md's raid6_d0 order.
                        Some(_) => (0..n - 2).map(|i| &bufs[(p + 2 + i) % n][..]).collect(),
                        None => bufs.iter().map(|b| &b[..]).collect(),
                    };
                    let mut want_p = vec![0u8; part as usize];
                    for d in &data {
                        xor_into(&mut want_p, d);
                    }
                    match q {
                        Some(q) => {
                            marks.differ(base, &want_p, &bufs[p]);
                            marks.differ(base, &syndrome(&data, part as usize), &bufs[q]);
                        }
                        // RAID5: the parity block is one of the XORed: all must cancel.
                        None => marks.differ(base, &want_p, &vec![0u8; part as usize]),
                    }
                    row += 1;
                }
            }
        }
        Ok(Divergence {
            chunks: marks.chunks.into_iter().collect(),
            bytes_compared: end.saturating_sub(within.start),
        })
    }
}

/// Member images judged as md lays them out.
pub struct MemberImages {
    /// Each member's data offset, in sectors (0 without superblocks).
    pub data_offsets: Vec<u64>,
    pub geometry: Geometry,
    pub divergence: Divergence,
}

/// Opens each member image and judges it with [`judge_members`].
pub fn judge_images(
    paths: &[PathBuf],
    superblocks: bool,
    space: u64,
    chunk_bytes: u64,
) -> anyhow::Result<MemberImages> {
    let members = paths
        .iter()
        .map(|p| {
            std::fs::File::open(p)
                .with_context(|| format!("open {}", p.display()))
                .map(|f| (p.display().to_string(), f))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    judge_members(members, superblocks, space, chunk_bytes)
}

/// Reads each member's superblock (when the array has them) for its data offset and the
/// array's geometry, then the chunks of `space` bytes of bitmap space that disagree.
/// Without superblocks (`mdadm --build`) the members are a mirror from sector 0. Each
/// member comes with the name its errors give.
pub fn judge_members<R: Read + Seek>(
    members: Vec<(String, R)>,
    superblocks: bool,
    space: u64,
    chunk_bytes: u64,
) -> anyhow::Result<MemberImages> {
    let mut files = Vec::new();
    let mut data_offsets = Vec::new();
    let mut geometry = None;
    for (name, mut f) in members {
        if superblocks {
            let size = f.seek(io::SeekFrom::End(0))?;
            let (_, sb) = superblock::read_from(&mut f, size)
                .with_context(|| format!("md superblock of {name}"))?;
            data_offsets.push(sb.data_offset);
            geometry.get_or_insert(
                Geometry::from_super(&sb).map_err(|e| anyhow::anyhow!("{name}: {e}"))?,
            );
        } else {
            data_offsets.push(0);
        }
        files.push(f);
    }
    let geometry = geometry.unwrap_or(Geometry::mirror(files.len()));
    let offsets: Vec<u64> = data_offsets.iter().map(|o| o * 512).collect();
    let divergence = geometry.inconsistent(&mut files, &offsets, space, chunk_bytes)?;
    Ok(MemberImages {
        data_offsets,
        geometry,
        divergence,
    })
}

/// What [`Geometry::inconsistent`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Divergence {
    /// Bitmap chunks whose copies or parity disagree, ascending.
    pub chunks: Vec<u64>,
    pub bytes_compared: u64,
}

/// Bitmap chunks seen to disagree.
struct Marks {
    chunk_bytes: u64,
    chunks: std::collections::BTreeSet<u64>,
}

impl Marks {
    fn new(chunk_bytes: u64) -> Self {
        Self {
            chunk_bytes,
            chunks: Default::default(),
        }
    }

    /// Marks the chunks where `a` and `b`, both at bitmap-space offset `base`, differ.
    fn differ(&mut self, base: u64, a: &[u8], b: &[u8]) {
        if a == b {
            return;
        }
        let mut off = 0usize;
        while off < a.len() {
            let abs = base + off as u64;
            let end = ((abs / self.chunk_bytes + 1) * self.chunk_bytes - base).min(a.len() as u64)
                as usize;
            if a[off..end] != b[off..end] {
                self.chunks.insert(abs / self.chunk_bytes);
            }
            off = end;
        }
    }
}

fn read_at<R: Read + Seek>(r: &mut R, at: u64, len: u64) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len as usize];
    r.seek(SeekFrom::Start(at))?;
    r.read_exact(&mut buf)?;
    Ok(buf)
}

fn read_all<R: Read + Seek>(
    members: &mut [R],
    data_offsets: &[u64],
    pos: u64,
    len: u64,
) -> io::Result<Vec<Vec<u8>>> {
    members
        .iter_mut()
        .zip(data_offsets)
        .map(|(m, off)| read_at(m, off + pos, len))
        .collect()
}

fn xor_into(acc: &mut [u8], d: &[u8]) {
    acc.iter_mut().zip(d).for_each(|(a, b)| *a ^= b);
}

/// RAID6's Q: sum over data slots of g^i * D_i in GF(2^8) (polynomial 0x11d, g = 2),
/// by Horner's rule from the highest slot.
pub fn syndrome(data: &[&[u8]], len: usize) -> Vec<u8> {
    let mut q = vec![0u8; len];
    for d in data.iter().rev() {
        for (q, &b) in q.iter_mut().zip(d.iter()) {
            *q = gf_mul2(*q) ^ b;
        }
    }
    q
}

fn gf_mul2(x: u8) -> u8 {
    (x << 1) ^ if x & 0x80 != 0 { 0x1d } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    const CHUNK: u64 = 8192; // md chunk in these tests
    const BM: u64 = 4096; // bitmap chunk

    fn pattern(seed: u8, len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    /// Lays out `rows` rows of a consistent RAID5/6 array, by the layout the checker uses.
    fn parity_members(n: usize, raid6: bool, rows: u64) -> Vec<Vec<u8>> {
        let mut devs = vec![Vec::new(); n];
        for row in 0..rows {
            let d = n - if raid6 { 2 } else { 1 };
            let data: Vec<Vec<u8>> = (0..d)
                .map(|i| pattern((row as u8) * 7 + i as u8, CHUNK as usize))
                .collect();
            let refs: Vec<&[u8]> = data.iter().map(|v| &v[..]).collect();
            let mut p = vec![0u8; CHUNK as usize];
            refs.iter().for_each(|x| xor_into(&mut p, x));
            if raid6 {
                let pd = n - 1 - (row as usize % n);
                let qd = (pd + 1) % n;
                devs[pd].extend_from_slice(&p);
                devs[qd].extend_from_slice(&syndrome(&refs, CHUNK as usize));
                for (i, x) in data.iter().enumerate() {
                    devs[(pd + 2 + i) % n].extend_from_slice(x);
                }
            } else {
                // left-symmetric RAID5: parity on n-1-row%n, data after it
                let pd = n - 1 - (row as usize % n);
                devs[pd].extend_from_slice(&p);
                for (i, x) in data.iter().enumerate() {
                    devs[(pd + 1 + i) % n].extend_from_slice(x);
                }
            }
        }
        devs
    }

    fn judge(g: Geometry, devs: &[Vec<u8>], space: u64) -> Vec<u64> {
        let mut cursors: Vec<Cursor<&Vec<u8>>> = devs.iter().map(Cursor::new).collect();
        let offsets = vec![0; devs.len()];
        g.inconsistent(&mut cursors, &offsets, space, BM)
            .unwrap()
            .chunks
    }

    #[test]
    fn consistent_parity_is_clean_and_one_flipped_byte_is_found() {
        for (n, raid6) in [(3, false), (4, false), (4, true), (5, true)] {
            let g = Geometry {
                layout: Layout::Parity {
                    raid6,
                    chunk: CHUNK,
                },
                members: n,
            };
            let mut devs = parity_members(n, raid6, 6);
            let space = 6 * CHUNK;
            assert_eq!(
                judge(g, &devs, space),
                Vec::<u64>::new(),
                "n={n} raid6={raid6}"
            );
            // Every device, P and Q included, is checked: flip a byte on each in turn.
            for dev in 0..n {
                let mut broken = devs.clone();
                broken[dev][(3 * CHUNK + 5000) as usize] ^= 0x40;
                assert_eq!(judge(g, &broken, space), vec![(3 * CHUNK + 5000) / BM]);
            }
            devs[1][10] ^= 1;
            devs[2][(CHUNK * 5 + 1) as usize] ^= 1;
            assert_eq!(judge(g, &devs, space), vec![0, (CHUNK * 5) / BM]);
        }
    }

    #[test]
    fn raid6_q_is_checked_not_only_p() {
        // Swapping two data blocks keeps P (XOR commutes) but breaks Q.
        let n = 4;
        let g = Geometry {
            layout: Layout::Parity {
                raid6: true,
                chunk: CHUNK,
            },
            members: n,
        };
        let mut devs = parity_members(n, true, 1);
        let (a, b) = ((n - 1 + 2) % n, (n - 1 + 3) % n); // row 0: P on 3, Q on 0, data 1, 2
        let tmp = devs[a].clone();
        devs[a] = devs[b].clone();
        devs[b] = tmp;
        assert_eq!(judge(g, &devs, CHUNK), vec![0, 1]);
    }

    #[test]
    fn near_layout_compares_each_array_chunk_with_its_copy() {
        // 3 devices, 2 copies: array chunk c at idx 2c, 2c+1 -> (dev, row) = (idx % 3, idx / 3).
        let n = 3usize;
        let g = Geometry {
            layout: Layout::Near {
                copies: 2,
                chunk: CHUNK,
            },
            members: n,
        };
        let chunks = 6u64;
        let mut devs = vec![vec![0u8; (4 * CHUNK) as usize]; n];
        for c in 0..chunks {
            for k in 0..2 {
                let idx = c * 2 + k;
                let (dev, row) = ((idx % 3) as usize, idx / 3);
                let at = (row * CHUNK) as usize;
                devs[dev][at..at + CHUNK as usize]
                    .copy_from_slice(&pattern(c as u8, CHUNK as usize));
            }
        }
        let space = chunks * CHUNK;
        assert!(judge(g, &devs, space).is_empty());
        // Array chunk 4 is idx 8 (dev 2, row 2) and idx 9 (dev 0, row 3); break the second copy.
        devs[0][(3 * CHUNK + 4100) as usize] ^= 1;
        assert_eq!(judge(g, &devs, space), vec![(4 * CHUNK + 4100) / BM]);
        // The trace mapping agrees: device 0, row 3 holds array chunk 4.
        assert_eq!(
            g.to_bitmap_space(0, 3 * CHUNK + 4100, 100),
            vec![(4 * CHUNK + 4100, 100)]
        );
        // A device range across a row boundary splits into its array chunks.
        assert_eq!(
            g.to_bitmap_space(1, CHUNK - 512, 1024),
            vec![(CHUNK - 512, 512), (2 * CHUNK, 512)]
        );
    }

    #[test]
    fn mirrors_differ_where_any_member_differs_from_the_first() {
        let g = Geometry::mirror(3);
        let mut devs = vec![pattern(1, 3 << 20); 3];
        devs[2][(2 << 20) + 7] ^= 1;
        devs[1][BM as usize] ^= 1;
        assert_eq!(judge(g, &devs, 3 << 20), vec![1, ((2 << 20) + 7) / BM]);
    }

    #[test]
    fn member_ranges_are_what_each_member_holds_of_bitmap_space() {
        let near = Geometry {
            layout: Layout::Near {
                copies: 2,
                chunk: CHUNK,
            },
            members: 3,
        };
        // Array chunk 4 is idx 8 (dev 2, row 2) and idx 9 (dev 0, row 3).
        assert_eq!(
            near.member_ranges(4 * CHUNK + 100, 200),
            vec![(2, 2 * CHUNK + 100, 200), (0, 3 * CHUNK + 100, 200)]
        );
        // Across an array chunk's end: each chunk's copies in turn.
        assert_eq!(
            near.member_ranges(CHUNK - 512, 1024).len(),
            4,
            "two pieces, two copies each"
        );
        let parity = Geometry {
            layout: Layout::Parity {
                raid6: false,
                chunk: CHUNK,
            },
            members: 3,
        };
        assert_eq!(
            parity.member_ranges(5000, 10),
            vec![(0, 5000, 10), (1, 5000, 10), (2, 5000, 10)]
        );
        // Each member's range maps back onto the bitmap-space range asked for.
        for g in [near, parity, Geometry::mirror(2)] {
            for (m, off, len) in g.member_ranges(3 * CHUNK - 700, 1400) {
                for (b, blen) in g.to_bitmap_space(m, off, len) {
                    assert!(b >= 3 * CHUNK - 700 && b + blen <= 3 * CHUNK + 700, "{g:?}");
                }
            }
        }
    }

    #[test]
    fn superblock_geometry_refuses_what_it_cannot_judge() {
        assert_eq!(
            Geometry::new(10, 0x102, 1024, 4).unwrap().layout,
            Layout::Near {
                copies: 2,
                chunk: 512 << 10
            }
        );
        assert!(Geometry::new(10, 0x201, 1024, 4)
            .unwrap_err()
            .contains("near"));
        assert!(Geometry::new(6, 5, 1024, 4)
            .unwrap_err()
            .contains("left-symmetric"));
        assert!(Geometry::new(0, 0, 1024, 4).is_err());
    }

    #[test]
    fn gf_doubling_wraps_with_the_raid6_polynomial() {
        assert_eq!(gf_mul2(0x80), 0x1d);
        assert_eq!(gf_mul2(0x01), 0x02);
        // Q of one slot is the data itself; of two, D0 ^ 2*D1.
        assert_eq!(syndrome(&[&[0x53]], 1), vec![0x53]);
        assert_eq!(syndrome(&[&[0x01], &[0x80]], 1), vec![0x01 ^ 0x1d]);
    }

    /// The mirror's walk, as RAID1 members: chunk `k` is bytes `k * chunk..` of each
    /// member's data area.
    const MIRROR_UNIT: usize = 1 << 20;

    /// Two members with their data at offset 0, compared over all of `a`.
    fn differing(a: &[u8], b: &[u8], chunk: u64) -> Divergence {
        let (a, b) = (Cursor::new(a.to_vec()), Cursor::new(b.to_vec()));
        let len = a.get_ref().len() as u64;
        mirror2(a, b, 0, 0, len, chunk).unwrap()
    }

    fn mirror2(
        a: Cursor<Vec<u8>>,
        b: Cursor<Vec<u8>>,
        offset_a: u64,
        offset_b: u64,
        len: u64,
        chunk: u64,
    ) -> io::Result<Divergence> {
        Geometry::mirror(2).inconsistent(&mut [a, b], &[offset_a, offset_b], len, chunk)
    }

    fn member(offset: usize, data: &[u8]) -> Cursor<Vec<u8>> {
        let mut v = vec![0xeeu8; offset];
        v.extend_from_slice(data);
        Cursor::new(v)
    }

    fn pattern_bytes(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn identical_members_have_no_divergence() {
        let data = pattern_bytes(3 * MIRROR_UNIT + 100);
        let a = member(4096, &data);
        let b = member(1 << 20, &data);
        let d = mirror2(a, b, 4096, 1 << 20, data.len() as u64, 65536).unwrap();
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
        let data = pattern_bytes(3 * MIRROR_UNIT);
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
        let d = differing(&data, &other, 65536);
        assert_eq!(d.chunks, vec![0, 5, 16, 40]);
        assert_eq!(d.bytes_compared, data.len() as u64);
    }

    #[test]
    fn chunks_larger_than_a_block_are_reported_once() {
        let chunk = 4 * MIRROR_UNIT as u64;
        let data = pattern_bytes(10 * MIRROR_UNIT);
        let mut other = data.clone();
        for i in [
            1usize,
            MIRROR_UNIT + 5,
            2 * MIRROR_UNIT + 7,
            9 * MIRROR_UNIT,
        ] {
            other[i] ^= 1;
        }
        assert_eq!(differing(&data, &other, chunk).chunks, vec![0, 2]);
    }

    #[test]
    fn chunk_straddling_blocks_with_differences_in_both() {
        // chunk size not dividing the block: chunk 1 spans blocks 0 and 1.
        let chunk = 3 * MIRROR_UNIT as u64 / 4 * 2; // 1.5 blocks
        let data = pattern_bytes(3 * MIRROR_UNIT);
        let mut other = data.clone();
        other[MIRROR_UNIT - 1] ^= 1; // chunk 0 (0..1.5 blocks)
        other[MIRROR_UNIT + MIRROR_UNIT / 2 + 1] ^= 1; // chunk 1 (1.5..3 blocks), block 1
        other[2 * MIRROR_UNIT + 1] ^= 1; // chunk 1, block 2
        assert_eq!(differing(&data, &other, chunk).chunks, vec![0, 1]);
    }

    #[test]
    fn offsets_and_partial_last_chunk() {
        let data = pattern_bytes(10_000);
        let mut other = data.clone();
        other[9_999] ^= 1;
        let a = member(512, &data);
        let b = member(8192, &other);
        let d = mirror2(a, b, 512, 8192, 10_000, 4096).unwrap();
        assert_eq!(d.chunks, vec![2]);
        assert_eq!(d.bytes_compared, 10_000);
        // Only the data area is compared: bytes past data_len differ freely.
        let a = member(0, &[data.clone(), vec![1; 10]].concat());
        let b = member(0, &[data.clone(), vec![2; 10]].concat());
        let d = mirror2(a, b, 0, 0, 10_000, 4096).unwrap();
        assert!(d.chunks.is_empty());
    }

    #[test]
    fn short_member_is_an_error() {
        let data = pattern_bytes(5000);
        let err = mirror2(
            Cursor::new(data.clone()),
            Cursor::new(data[..4000].to_vec()),
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
        let err = mirror2(Cursor::new(vec![]), Cursor::new(vec![]), 0, 0, 0, 0).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn empty_data_area() {
        let d = mirror2(Cursor::new(vec![]), Cursor::new(vec![]), 0, 0, 0, 4096).unwrap();
        assert_eq!(d, Divergence::default());
    }
}
