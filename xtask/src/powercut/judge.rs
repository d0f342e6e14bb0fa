//! One crash state judged from its bytes: what md would do with the bitmap it finds, and
//! whether every chunk where the members disagree has its bit set ([`check::uncovered`],
//! the rule the crash cases judge).
//!
//! Judged incrementally: a chunk's agreement depends only on the surviving writes that
//! touch it, so it is computed once per set of survivors and remembered; chunks no write
//! touched keep what the images before the recording showed.

use super::recording::Recording;
use super::view::{DiskViews, Survives};
use crate::check;
use crate::ondisk::bitmap::{BitmapSuper, BITMAP_SUPER_LEN, STATE_STALE};
use crate::ondisk::ext4::FileMap;
use crate::ondisk::redundancy::Geometry;
use crate::ondisk::superblock;
use std::collections::{BTreeSet, HashMap};
use std::io;

/// Where md keeps the bitmap: a file (its blocks on the filesystem's disk, mapped once at
/// load as md's `bmap()` maps them) or inside a member.
#[derive(Debug, Clone)]
pub enum BitmapPlace {
    File { disk: usize, map: FileMap },
    Internal { disk: usize, offset: u64 },
}

impl BitmapPlace {
    /// The disk and byte of the bitmap's byte `at`.
    pub fn locate(&self, at: u64) -> Option<(usize, u64)> {
        match self {
            BitmapPlace::File { disk, map } => {
                let block = *map.blocks.get((at / map.block_size) as usize)?;
                Some((*disk, block * map.block_size + at % map.block_size))
            }
            BitmapPlace::Internal { disk, offset } => Some((*disk, offset + at)),
        }
    }
}

/// The array as the images before the recording show it.
#[derive(Debug, Clone)]
pub struct ArrayLayout {
    /// Disk indexes of the members, in role order.
    pub members: Vec<usize>,
    /// Whether the members carry md superblocks (not `mdadm --build`).
    pub superblocks: bool,
    /// Bytes.
    pub data_offsets: Vec<u64>,
    pub geometry: Geometry,
    pub chunk_bytes: u64,
    /// Bitmap space, bytes.
    pub space: u64,
    pub bitmap: BitmapPlace,
    /// Chunks whose members disagreed before the recording.
    pub base_divergent: BTreeSet<u64>,
}

impl ArrayLayout {
    /// The chunks a write of `bytes` to `disk` touches; `None` when the disk is no
    /// member.
    pub fn chunks_written(
        &self,
        disk: usize,
        bytes: std::ops::Range<u64>,
    ) -> Option<BTreeSet<u64>> {
        let m = self.members.iter().position(|&d| d == disk)?;
        let off = self.data_offsets[m];
        let mut chunks = BTreeSet::new();
        if bytes.end <= off {
            return Some(chunks);
        }
        let start = bytes.start.max(off) - off;
        for (s, len) in self
            .geometry
            .to_bitmap_space(m, start, bytes.end - off - start)
        {
            let last = (s + len).min(self.space);
            if s < last {
                chunks.extend(s / self.chunk_bytes..last.div_ceil(self.chunk_bytes));
            }
        }
        Some(chunks)
    }
}

/// What md would make of a state, and what the rule says of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every divergent chunk is dirty.
    Safe { divergent: usize },
    /// The bitmap is older than the members (or marked stale): md resyncs everything.
    FullRecovery,
    /// md would not load this bitmap or these members; nothing is resynced from it.
    Refused(String),
    /// Divergent chunks md would not resync: a clear bit, or one below the resync offset
    /// of the freshest member superblock.
    Unsafe {
        uncovered: Vec<u64>,
        divergent: usize,
        /// The first chunk md resyncs by its bit: those below it the freshest member
        /// superblock records as in sync (`resync_offset`), whatever their bits say.
        resync_from: u64,
    },
}

/// What the superblocks tell md before it reads a bit.
#[derive(Debug, Clone)]
enum Heads {
    Decided(Outcome),
    /// md resyncs chunk `c` when `c >= resync_from` and its bit is set (every bit, for a
    /// bitmap it found stale).
    Bits {
        resync_from: u64,
        all_set: bool,
    },
}

pub struct Judge<'v, 'r> {
    pub views: &'v DiskViews<'r>,
    pub layout: &'v ArrayLayout,
    /// Member writes touching each chunk, ascending.
    chunk_writes: HashMap<u64, Vec<usize>>,
    /// The chunks each member write touches.
    write_chunks: HashMap<usize, Vec<u64>>,
    /// Agreement of a chunk under a set of surviving writes.
    memo: HashMap<(u64, Vec<u32>), bool>,
    /// Divergent chunks with only the durable writes surviving.
    durable_divergent: BTreeSet<u64>,
    /// The writes that touch a superblock md reads at assembly: the members' (any of
    /// the three v1 places) and the bitmap's.
    head_writes: Vec<usize>,
    /// What the superblocks say under a set of those writes surviving.
    head_memo: HashMap<Vec<u32>, Heads>,
    pub memo_hits: u64,
    pub memo_misses: u64,
    pub remember: bool,
}

impl<'v, 'r> Judge<'v, 'r> {
    pub fn new(views: &'v DiskViews<'r>, layout: &'v ArrayLayout) -> Self {
        let rec: &Recording = views.rec;
        let mut chunk_writes: HashMap<u64, Vec<usize>> = HashMap::new();
        let mut write_chunks: HashMap<usize, Vec<u64>> = HashMap::new();
        for (r, q) in rec.requests.iter().enumerate() {
            if q.sectors == 0 {
                continue;
            }
            let Some(chunks) = layout.chunks_written(q.disk, q.bytes()) else {
                continue;
            };
            for &c in &chunks {
                chunk_writes.entry(c).or_default().push(r);
            }
            write_chunks.insert(r, chunks.into_iter().collect());
        }
        // v1.1 at 0, v1.2 at 4 KiB, v1.0 in the last 12 KiB: each read 4 KiB long.
        const HEAD: u64 = 12 << 10;
        let mut head_writes: Vec<usize> = Vec::new();
        if layout.superblocks {
            for &d in &layout.members {
                let size = views.sizes[d];
                head_writes.extend(views.touching(d, 0, HEAD.min(size)));
                head_writes.extend(views.touching(d, size.saturating_sub(HEAD), HEAD.min(size)));
            }
        }
        if let Some((disk, off)) = layout.bitmap.locate(0) {
            head_writes.extend(views.touching(disk, off, BITMAP_SUPER_LEN as u64));
        }
        head_writes.sort_unstable();
        head_writes.dedup();
        Self {
            views,
            layout,
            chunk_writes,
            write_chunks,
            head_writes,
            head_memo: HashMap::new(),
            memo: HashMap::new(),
            durable_divergent: layout.base_divergent.clone(),
            memo_hits: 0,
            memo_misses: 0,
            remember: true,
        }
    }

    /// The chunks a member write touches (none for other disks' writes).
    pub fn chunks_of(&self, request: usize) -> &[u64] {
        self.write_chunks.get(&request).map_or(&[], |v| v)
    }

    /// The member writes touching chunk `c`, in issue order.
    pub fn writes_of_chunk(&self, c: u64) -> &[usize] {
        self.chunk_writes.get(&c).map_or(&[], |v| v)
    }

    /// Re-judges, with only the durable writes, the chunks that `newly` durable writes
    /// touch.
    pub fn on_durable(&mut self, newly: &[usize], durable: Survives) -> io::Result<()> {
        let chunks: BTreeSet<u64> = newly
            .iter()
            .flat_map(|&w| self.chunks_of(w).to_vec())
            .collect();
        for c in chunks {
            if self.chunk_divergent(c, durable)? {
                self.durable_divergent.insert(c);
            } else {
                self.durable_divergent.remove(&c);
            }
        }
        Ok(())
    }

    /// Whether chunk `c`'s copies or parity disagree in the state.
    pub fn chunk_divergent(&mut self, c: u64, survives: Survives) -> io::Result<bool> {
        let key: Vec<u32> = self
            .chunk_writes
            .get(&c)
            .map(|ws| {
                ws.iter()
                    .copied()
                    .filter(|&w| survives(w))
                    .map(|w| w as u32)
                    .collect()
            })
            .unwrap_or_default();
        if key.is_empty() {
            return Ok(self.layout.base_divergent.contains(&c));
        }
        if let Some(&d) = self.memo.get(&(c, key.clone())).filter(|_| self.remember) {
            self.memo_hits += 1;
            return Ok(d);
        }
        self.memo_misses += 1;
        let l = self.layout;
        let mut readers: Vec<_> = l
            .members
            .iter()
            .map(|&d| self.views.reader(d, survives))
            .collect();
        let cb = l.chunk_bytes;
        let found = l.geometry.inconsistent_in(
            &mut readers,
            &l.data_offsets,
            l.space,
            cb,
            c * cb..(c + 1) * cb,
        )?;
        let d = found.chunks.contains(&c);
        if self.remember {
            self.memo.insert((c, key), d);
        }
        Ok(d)
    }

    /// Judges one state; `variable` holds the chunks the state's undecided writes touch
    /// (the others are as the durable writes left them).
    pub fn judge(&mut self, survives: Survives, variable: &BTreeSet<u64>) -> io::Result<Outcome> {
        let key: Vec<u32> = self
            .head_writes
            .iter()
            .copied()
            .filter(|&w| survives(w))
            .map(|w| w as u32)
            .collect();
        let heads = match self.head_memo.get(&key) {
            Some(h) => h.clone(),
            None => {
                let h = self.heads(survives)?;
                self.head_memo.insert(key, h.clone());
                h
            }
        };
        match heads {
            Heads::Decided(outcome) => Ok(outcome),
            Heads::Bits {
                resync_from,
                all_set,
            } => self.bits_cover(survives, variable, resync_from, all_set),
        }
    }

    /// The newest surviving write to a member's superblock: the evidence for a chunk md
    /// skips because the array was recorded in sync there.
    pub fn last_superblock_write(&self, survives: Survives) -> Option<usize> {
        let rec = self.views.rec;
        self.head_writes
            .iter()
            .copied()
            .filter(|&w| self.layout.members.contains(&rec.requests[w].disk) && survives(w))
            .max_by_key(|&w| rec.requests[w].issued)
    }

    /// What md makes of the state's superblocks, as `analyze_sbs`, `super_1_validate`
    /// and `md_bitmap_read_sb` read them: a bitmap or a member it refuses, a bitmap older
    /// than the freshest member (every bit taken as set), and the freshest member's
    /// resync offset, below which md trusts the members whatever the bits say.
    fn heads(&self, survives: Survives) -> io::Result<Heads> {
        let l = self.layout;
        let refused = |why: String| Ok(Heads::Decided(Outcome::Refused(why)));
        let mut head = [0u8; BITMAP_SUPER_LEN];
        if let Err(e) = self.read_bitmap(0, &mut head, survives) {
            return refused(format!("the bitmap's superblock: {e}"));
        }
        let sb = match BitmapSuper::decode(&head) {
            Ok(sb) => sb,
            Err(e) => return refused(format!("the bitmap's superblock: {e}")),
        };
        if !l.superblocks {
            return Ok(Heads::Bits {
                resync_from: 0,
                all_set: false,
            });
        }
        let mut supers = Vec::new();
        for &d in &l.members {
            let name = &self.views.rec.disks[d].name;
            match superblock::read_from(&mut self.views.reader(d, survives), self.views.sizes[d]) {
                Ok((_, msb)) => supers.push((name, msb)),
                Err(e) => return refused(format!("the md superblock of {name}: {e}")),
            }
        }
        // analyze_sbs: the first member with the most events is the freshest.
        let Some((fresh_name, fresh)) = supers.iter().fold(
            None::<&(&String, superblock::MdSuper)>,
            |best, s| match best {
                Some(b) if b.1.events >= s.1.events => Some(b),
                _ => Some(s),
            },
        ) else {
            return refused("no member".into());
        };
        // super_1_validate while assembling (and mdadm's event margin of one): a member
        // further behind is kicked, and comes back only through a recovery.
        if let Some((name, old)) = supers.iter().find(|(_, s)| s.events + 1 < fresh.events) {
            return refused(format!(
                "{name} is at event {} and {fresh_name} at {}: md kicks {name} as non-fresh",
                old.events, fresh.events
            ));
        }
        // md_bitmap_init_from_disk: a bit is needed when its chunk ends at or past the
        // resync offset (recovery_cp, MaxSector for an array recorded clean).
        let chunk_sectors = (l.chunk_bytes / 512).max(1);
        let resync_from = fresh
            .resync_offset
            .div_ceil(chunk_sectors)
            .saturating_sub(1);
        // md_bitmap_read_sb: a bitmap older than the freshest member is stale, its every
        // bit set.
        let stale = sb.events < fresh.events || sb.state & STATE_STALE != 0;
        if stale && resync_from == 0 {
            return Ok(Heads::Decided(Outcome::FullRecovery));
        }
        Ok(Heads::Bits {
            resync_from,
            all_set: stale,
        })
    }

    /// Whether md resyncs every chunk that disagrees in the state: its bit set (or every
    /// bit, `all_set`) and the chunk at or past `resync_from`.
    fn bits_cover(
        &mut self,
        survives: Survives,
        variable: &BTreeSet<u64>,
        resync_from: u64,
        all_set: bool,
    ) -> io::Result<Outcome> {
        let l = self.layout;
        let mut divergent: BTreeSet<u64> = self
            .durable_divergent
            .difference(variable)
            .copied()
            .collect();
        for &c in variable {
            if self.chunk_divergent(c, survives)? {
                divergent.insert(c);
            }
        }
        let divergent: Vec<u64> = divergent.into_iter().collect();
        let mut bits = HashMap::new();
        for &c in &divergent {
            if c < resync_from || all_set {
                bits.insert(c, c >= resync_from);
                continue;
            }
            let at = BITMAP_SUPER_LEN as u64 + c / 8;
            let byte = match l.bitmap.locate(at) {
                Some((disk, off)) => self.views.byte(disk, off, survives)?,
                None => 0,
            };
            bits.insert(c, byte & (1 << (c % 8)) != 0);
        }
        let uncovered = check::uncovered(&divergent, |c| bits[&c]);
        Ok(if uncovered.is_empty() {
            Outcome::Safe {
                divergent: divergent.len(),
            }
        } else {
            Outcome::Unsafe {
                uncovered,
                divergent: divergent.len(),
                resync_from,
            }
        })
    }

    /// The bitmap's bytes at `at`, which must lie in one block of the file.
    fn read_bitmap(&self, at: u64, buf: &mut [u8], survives: Survives) -> io::Result<()> {
        let (disk, off) = self.layout.bitmap.locate(at).ok_or_else(|| {
            io::Error::new(io::ErrorKind::UnexpectedEof, "past the bitmap file's end")
        })?;
        self.views.read(disk, off, buf, survives)
    }
}
