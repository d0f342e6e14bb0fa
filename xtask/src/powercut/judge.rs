//! One crash state judged from its bytes: what md would do with the bitmap it finds, and
//! whether every chunk where the members disagree has its bit set ([`check::uncovered`],
//! the rule the crash cases judge).
//!
//! Judged incrementally: a chunk's agreement depends only on the surviving writes that
//! touch it, so it is computed once per set of survivors and remembered; chunks no write
//! touched keep what the images before the recording showed. A chunk is read unit by unit
//! (a page of bitmap space, on every member that holds it): a unit's bytes depend only
//! on the writes that show in it, the surviving ones down to the newest that covers it,
//! so each unit is read once per such set however the states differ in the writes hidden
//! under them. Read whole for each new set of survivors, a RAID5 chunk was every member's
//! chunk read and XORed again, though most of its pages showed what they had shown before.
//!
//! The states of a crash point differ only in its undecided writes: what they share is
//! worked out once a point ([`Judge::at_point`]), and a chunk's judgements (and the
//! superblocks') are listed by which of its undecided writes survive.

use super::recording::Recording;
use super::view::{ByteFate, DiskViews, Survives};
use crate::check;
use crate::ondisk::bitmap::{BitmapSuper, BITMAP_SUPER_LEN, STATE_STALE};
use crate::ondisk::chunk_state::ChunkEncoding;
use crate::ondisk::ext4::FileMap;
use crate::ondisk::redundancy::Geometry;
use crate::ondisk::superblock::{self, MdSuper};
use std::collections::hash_map::Entry;
use std::collections::{btree_map, BTreeMap, BTreeSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::io;

/// The judge's maps, looked up many times a state by chunk and request numbers: hashed
/// as rustc hashes its own, SipHash's guard against chosen keys buying nothing here.
type HashMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// The most bitmap-space bytes judged as one unit of a chunk: a page, as md's stripes and
/// the writes of a filesystem on the array mostly come.
const UNIT: u64 = 4096;

/// Up to this many undecided writes touching a chunk, its judgements are listed by which
/// of them survive ([`Listed`]).
const LISTED_UP_TO: usize = 10;

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
    /// How the bitmap keeps each chunk: a bit, or the lockless bitmap's state byte.
    pub encoding: ChunkEncoding,
    /// Chunks whose members disagreed before the recording.
    pub base_divergent: BTreeSet<u64>,
}

impl ArrayLayout {
    /// Where a write of `bytes` to `disk` lands in bitmap space, as `[start, end)` byte
    /// spans within the bitmap's reach; `None` when the disk is no member.
    pub fn bitmap_spans(
        &self,
        disk: usize,
        bytes: std::ops::Range<u64>,
    ) -> Option<Vec<std::ops::Range<u64>>> {
        let m = self.members.iter().position(|&d| d == disk)?;
        let off = self.data_offsets[m];
        if bytes.end <= off {
            return Some(Vec::new());
        }
        let start = bytes.start.max(off) - off;
        Some(
            self.geometry
                .to_bitmap_space(m, start, bytes.end - off - start)
                .into_iter()
                .map(|(s, len)| s..(s + len).min(self.space))
                .filter(|r| r.start < r.end)
                .collect(),
        )
    }

    /// The chunks a write of `bytes` to `disk` touches; `None` when the disk is no
    /// member.
    pub fn chunks_written(
        &self,
        disk: usize,
        bytes: std::ops::Range<u64>,
    ) -> Option<BTreeSet<u64>> {
        let spans = self.bitmap_spans(disk, bytes)?;
        Some(
            spans
                .iter()
                .flat_map(|r| r.start / self.chunk_bytes..r.end.div_ceil(self.chunk_bytes))
                .collect(),
        )
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
    /// md resyncs chunk `c` when `c >= resync_from` and its byte says so, read as md
    /// reads a bitmap it found `stale` (every bit set, for the classic one).
    Bits {
        resync_from: u64,
        stale: bool,
    },
}

pub struct Judge<'v, 'r> {
    pub views: &'v DiskViews<'r>,
    pub layout: &'v ArrayLayout,
    /// The chunks member writes touch.
    chunks: HashMap<u64, Chunk>,
    /// The chunks each member write touches.
    write_chunks: HashMap<usize, Vec<u64>>,
    /// Bytes of bitmap space in a unit: a divisor of the chunk, so units never straddle.
    unit: u64,
    /// Divergent chunks with only the durable writes surviving.
    durable_divergent: BTreeSet<u64>,
    /// The writes that touch a superblock md reads at assembly: the members' (any of
    /// the three v1 places) and the bitmap's.
    head_writes: Vec<usize>,
    /// The superblocks md reads: the bitmap's, then each member's three places.
    heads: Vec<Region>,
    /// What the superblocks say, by the writes that show in them.
    head_memo: HashMap<Vec<u32>, Heads>,
    /// The bitmap's superblock (or why md refuses it), by the writes that show in it.
    bitmap_supers: HashMap<Vec<u32>, Result<BitmapSuper, String>>,
    /// A member's superblock (or why md finds none), by the writes that show in its
    /// places: states that differ in one member's superblock read only that one again.
    member_supers: HashMap<(usize, Vec<u32>), Result<MdSuper, String>>,
    /// The crash point whose states are being judged.
    point: Point,
    /// Bytes of the images from before the recording, read once.
    base_bytes: HashMap<(usize, u64), u8>,
    pub memo_hits: u64,
    pub memo_misses: u64,
    pub remember: bool,
}

impl<'v, 'r> Judge<'v, 'r> {
    pub fn new(views: &'v DiskViews<'r>, layout: &'v ArrayLayout) -> Self {
        let rec: &Recording = views.rec;
        let mut chunks: HashMap<u64, Chunk> = HashMap::default();
        let mut write_chunks: HashMap<usize, Vec<u64>> = HashMap::default();
        let unit = gcd(UNIT, layout.chunk_bytes.max(1));
        let mut unit_writes: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        for (r, q) in rec.requests.iter().enumerate() {
            if q.sectors == 0 {
                continue;
            }
            let Some(spans) = layout.bitmap_spans(q.disk, q.bytes()) else {
                continue;
            };
            let mut touched = BTreeSet::new();
            let mut units = BTreeSet::new();
            for r in &spans {
                touched.extend(r.start / layout.chunk_bytes..r.end.div_ceil(layout.chunk_bytes));
                units.extend(r.start / unit..r.end.div_ceil(unit));
            }
            for &c in &touched {
                chunks.entry(c).or_default().writes.push(r);
            }
            for &u in &units {
                unit_writes.entry(u).or_default().push(r);
            }
            write_chunks.insert(r, touched.into_iter().collect());
        }
        // Ascending, as the map gives them.
        for &at in unit_writes.keys() {
            let c = at * unit / layout.chunk_bytes.max(1);
            chunks
                .entry(c)
                .or_default()
                .units
                .push(Unit::new(views, layout, at, unit));
        }
        // v1.1 at 0, v1.2 at 4 KiB, v1.0 in the last 12 KiB: each read 4 KiB long, each
        // 4 KiB a range of its own, as md writes them.
        const HEAD: u64 = 12 << 10;
        let mut heads = vec![Region::new(
            views,
            layout
                .bitmap
                .locate(0)
                .map(|(disk, off)| (disk, off, BITMAP_SUPER_LEN as u64)),
        )];
        for &d in &layout.members {
            let size = views.sizes[d];
            let places = [0, size.saturating_sub(HEAD)]
                .into_iter()
                .flat_map(|from| (from..(from + HEAD).min(size)).step_by(4096))
                .map(|at| (d, at, 4096.min(size - at)));
            heads.push(if layout.superblocks {
                Region::new(views, places)
            } else {
                Region::default()
            });
        }
        let mut head_writes: Vec<usize> = heads
            .iter()
            .flat_map(|h| h.pieces.iter().flatten().map(|&(w, _)| w))
            .collect();
        head_writes.sort_unstable();
        head_writes.dedup();
        Self {
            views,
            layout,
            chunks,
            write_chunks,
            unit,
            head_writes,
            heads,
            head_memo: HashMap::default(),
            bitmap_supers: HashMap::default(),
            member_supers: HashMap::default(),
            point: Point::default(),
            base_bytes: HashMap::default(),
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
        self.chunks.get(&c).map_or(&[], |k| &k.writes)
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
        let (views, layout, unit, remember) = (self.views, self.layout, self.unit, self.remember);
        let Some(chunk) = self.chunks.get_mut(&c) else {
            return Ok(layout.base_divergent.contains(&c));
        };
        let key = survivors(&chunk.writes, survives);
        if key.is_empty() {
            return Ok(layout.base_divergent.contains(&c));
        }
        if let Some(&d) = chunk.seen.get(&key).filter(|_| remember) {
            self.memo_hits += 1;
            return Ok(d);
        }
        self.memo_misses += 1;
        let judged = Judged {
            views,
            layout,
            unit,
            remember,
        };
        let d = judged.untouched(c, chunk)? || judged.touched(chunk, survives)?;
        if remember {
            chunk.seen.insert(key, d);
        }
        Ok(d)
    }

    /// Prepares the states of a crash point: `maybe` its undecided writes, ascending;
    /// every other write survives in all of them or in none, as `durable` says.
    pub fn at_point(&mut self, maybe: &[usize], durable: Survives) {
        let mut point = std::mem::take(&mut self.point);
        point.undecided.resize(self.views.rec.requests.len(), false);
        for &w in &point.maybe {
            point.undecided[w] = false;
        }
        for &w in maybe {
            point.undecided[w] = true;
        }
        // From one point to the next a write or a few join or leave the undecided: count
        // the chunks they touch in and out rather than gather them all again.
        let (gone, come) = differences(&point.maybe, maybe);
        for w in gone {
            for c in self.chunks_of(w) {
                if let btree_map::Entry::Occupied(mut e) = point.touching.entry(*c) {
                    *e.get_mut() -= 1;
                    if *e.get() == 0 {
                        e.remove();
                    }
                }
            }
        }
        for w in come {
            for &c in self.chunks_of(w) {
                *point.touching.entry(c).or_default() += 1;
            }
        }
        point.maybe = maybe.to_vec();
        for (c, listed) in point.variable.drain(..).zip(point.listed.drain(..)) {
            point.put_away.insert(c, listed);
        }
        let variable: Vec<u64> = point.touching.keys().copied().collect();
        for &c in &variable {
            let before = point.put_away.remove(&c);
            let listed = Listed::of(self.writes_of_chunk(c), &point.undecided, durable, before);
            point.listed.push(listed);
        }
        let before = std::mem::take(&mut point.heads);
        point.heads = Listed::of(&self.head_writes, &point.undecided, durable, Some(before));
        point.head_regions = self
            .heads
            .iter()
            .map(|h| h.at_point(&point.undecided, durable))
            .collect();
        point.steady = self
            .durable_divergent
            .iter()
            .copied()
            .filter(|c| variable.binary_search(c).is_err())
            .collect();
        point.variable = variable;
        point.bit_bytes.clear();
        self.point = point;
    }

    /// Judges one state of the crash point [`Judge::at_point`] prepared: `survives` keeps
    /// the durable writes, and of the undecided ones those the state chooses.
    pub fn judge(&mut self, survives: Survives) -> io::Result<Outcome> {
        let kept = self.point.heads.kept(survives);
        let heads = match self.point.heads.get(kept) {
            Some(h) => h.clone(),
            None => {
                let mut key = Vec::new();
                for region in &self.point.head_regions {
                    region.showing(survives, &mut key);
                }
                let h = match self.head_memo.get(&key) {
                    Some(h) => h.clone(),
                    None => {
                        let h = self.heads(survives)?;
                        self.head_memo.insert(key, h.clone());
                        h
                    }
                };
                self.point.heads.set(kept, h.clone());
                h
            }
        };
        match heads {
            Heads::Decided(outcome) => Ok(outcome),
            Heads::Bits { resync_from, stale } => {
                // Borrowed apart from the judge, whose memos the point's chunks fill.
                let mut point = std::mem::take(&mut self.point);
                let outcome = self.bits_cover(&mut point, survives, resync_from, stale);
                self.point = point;
                outcome
            }
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
    fn heads(&mut self, survives: Survives) -> io::Result<Heads> {
        let l = self.layout;
        let refused = |why: String| Ok(Heads::Decided(Outcome::Refused(why)));
        let mut key = Vec::new();
        self.point.head_regions[0].showing(survives, &mut key);
        let read = match self.bitmap_supers.get(&key) {
            Some(read) => read.clone(),
            None => {
                let mut head = [0u8; BITMAP_SUPER_LEN];
                let read = match self.read_bitmap(0, &mut head, survives) {
                    Ok(()) => BitmapSuper::decode(&head).map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                self.bitmap_supers.insert(key, read.clone());
                read
            }
        };
        let sb = match read {
            Ok(sb) => sb,
            Err(e) => return refused(format!("the bitmap's superblock: {e}")),
        };
        if !l.superblocks {
            return Ok(Heads::Bits {
                resync_from: 0,
                stale: false,
            });
        }
        let mut supers = Vec::new();
        for (m, &d) in l.members.iter().enumerate() {
            let name = &self.views.rec.disks[d].name;
            let mut showing = Vec::new();
            self.point.head_regions[1 + m].showing(survives, &mut showing);
            let key = (m, showing);
            let read = match self.member_supers.get(&key) {
                Some(read) => read.clone(),
                None => {
                    let read = superblock::read_from(
                        &mut self.views.reader(d, survives),
                        self.views.sizes[d],
                    )
                    .map(|(_, msb)| msb)
                    .map_err(|e| e.to_string());
                    self.member_supers.insert(key, read.clone());
                    read
                }
            };
            match read {
                Ok(msb) => supers.push((name, msb)),
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
        let resync_from = if l.encoding.skips_below_resync_offset() {
            fresh
                .resync_offset
                .div_ceil(chunk_sectors)
                .saturating_sub(1)
        } else {
            0
        };
        // md_bitmap_read_sb: a bitmap older than the freshest member is stale, its every
        // bit set; llbitmap_read_sb marks it so, and its load resyncs every chunk that
        // ever held data.
        let stale = sb.events < fresh.events || sb.state & STATE_STALE != 0;
        if stale && resync_from == 0 && l.encoding.stale_resyncs_all() {
            return Ok(Heads::Decided(Outcome::FullRecovery));
        }
        Ok(Heads::Bits { resync_from, stale })
    }

    /// Whether md resyncs every chunk that disagrees in the state: its byte says so (read
    /// as md reads a `stale` bitmap) and the chunk at or past `resync_from`.
    fn bits_cover(
        &mut self,
        point: &mut Point,
        survives: Survives,
        resync_from: u64,
        stale: bool,
    ) -> io::Result<Outcome> {
        let l = self.layout;
        let mut divergent = point.steady.clone();
        for (&c, listed) in point.variable.iter().zip(&mut point.listed) {
            let kept = listed.kept(survives);
            let d = match listed.get(kept) {
                Some(&d) => {
                    // What the memo would have answered: the chunk was judged under this
                    // very set of survivors before (none at all is no judgement, as in
                    // `chunk_divergent`).
                    if listed.any_survive(kept) {
                        self.memo_hits += 1;
                    }
                    d
                }
                None => {
                    let d = self.chunk_divergent(c, survives)?;
                    if self.remember {
                        listed.set(kept, d);
                    }
                    d
                }
            };
            if d {
                divergent.push(c);
            }
        }
        divergent.sort_unstable();
        let mut bits = Vec::with_capacity(divergent.len());
        for &c in &divergent {
            if c < resync_from || (stale && l.encoding.stale_resyncs_all()) {
                bits.push(c >= resync_from);
                continue;
            }
            let Some((disk, off)) = l.bitmap.locate(l.encoding.byte_of(c)) else {
                bits.push(false);
                continue;
            };
            let (fate, base) = match point.bit_bytes.entry((disk, off)) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => {
                    let undecided = &point.undecided;
                    let fate = self.views.byte_fate(disk, off, &|w| undecided[w], survives);
                    // Read only where it may show, as a read of the state would.
                    let base = if fate.shows_base() {
                        self.base_byte(disk, off)?
                    } else {
                        0
                    };
                    e.insert((fate, base))
                }
            };
            let byte = fate.byte(survives).unwrap_or(*base);
            bits.push(l.encoding.resyncs(byte, c, stale));
        }
        let uncovered = check::uncovered(&divergent, |c| {
            divergent.binary_search(&c).is_ok_and(|i| bits[i])
        });
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

    /// A byte of a disk's image from before the recording, read once.
    fn base_byte(&mut self, disk: usize, at: u64) -> io::Result<u8> {
        if let Some(&b) = self.base_bytes.get(&(disk, at)) {
            return Ok(b);
        }
        let b = self.views.base_byte(disk, at)?;
        self.base_bytes.insert((disk, at), b);
        Ok(b)
    }

    /// The bitmap's bytes at `at`, which must lie in one block of the file.
    fn read_bitmap(&self, at: u64, buf: &mut [u8], survives: Survives) -> io::Result<()> {
        let (disk, off) = self.layout.bitmap.locate(at).ok_or_else(|| {
            io::Error::new(io::ErrorKind::UnexpectedEof, "past the bitmap file's end")
        })?;
        self.views.read(disk, off, buf, survives)
    }
}

/// A chunk that member writes touch, and what is known of it.
#[derive(Default)]
struct Chunk {
    /// The member writes touching it, ascending.
    writes: Vec<usize>,
    /// Its units that member writes touch, ascending.
    units: Vec<Unit>,
    /// Whether it disagrees, by its surviving writes.
    seen: HashMap<Vec<u32>, bool>,
    /// Whether its units that no write touches disagree: as the images before the
    /// recording left them, whatever the state.
    untouched: Option<bool>,
}

/// A unit of a chunk that member writes touch.
struct Unit {
    /// Its number in bitmap space.
    at: u64,
    /// Where the members hold it.
    region: Region,
    /// Whether it disagrees, by the writes that show in it.
    seen: HashMap<Vec<u32>, bool>,
}

impl Unit {
    fn new(views: &DiskViews, layout: &ArrayLayout, at: u64, unit: u64) -> Self {
        let start = at * unit;
        let len = unit.min(layout.space.saturating_sub(start));
        let ranges = layout
            .geometry
            .member_ranges(start, len)
            .into_iter()
            .map(|(m, off, len)| (layout.members[m], layout.data_offsets[m] + off, len));
        Self {
            at,
            region: Region::new(views, ranges),
            seen: HashMap::default(),
        }
    }
}

/// Ranges of the disks that are read together (a unit of bitmap space on its members, a
/// superblock's places), with the writes that can show in each.
#[derive(Debug, Clone, Default)]
struct Region {
    /// Per range: the writes over it, newest first in the disk's completion order (the
    /// views lay the later completed on top), each with whether it covers the range.
    pieces: Vec<Vec<(usize, bool)>>,
}

impl Region {
    /// `(disk, byte, length)` ranges.
    fn new(views: &DiskViews, ranges: impl IntoIterator<Item = (usize, u64, u64)>) -> Self {
        let rec = views.rec;
        let pieces = ranges
            .into_iter()
            .map(|(disk, off, len)| {
                let mut writes = views.touching(disk, off, len);
                writes.sort_by_key(|&w| std::cmp::Reverse((rec.requests[w].log_index, w)));
                writes
                    .into_iter()
                    .map(|w| {
                        let b = rec.requests[w].bytes();
                        (w, b.start <= off && off + len <= b.end)
                    })
                    .collect()
            })
            .collect();
        Self { pieces }
    }

    /// The writes that show in the region in the state, appended to `key`: per range,
    /// the surviving ones down to the newest that covers it all (it hides every older
    /// one), each range's closed by `u32::MAX`. States alike in these are alike in the
    /// region's bytes, however they differ in the writes hidden under them.
    fn showing(&self, survives: Survives, key: &mut Vec<u32>) {
        for piece in &self.pieces {
            for &(w, whole) in piece {
                if survives(w) {
                    key.push(w as u32);
                    if whole {
                        break;
                    }
                }
            }
            key.push(u32::MAX);
        }
    }

    /// The region as the states of a crash point can show it: without the writes none
    /// of them keeps, nor those under a durable write that covers a range. Shows what the
    /// whole region shows in those states, looking through fewer writes.
    fn at_point(&self, undecided: &[bool], durable: Survives) -> Self {
        let pieces = self
            .pieces
            .iter()
            .map(|piece| {
                let mut kept = Vec::new();
                for &(w, whole) in piece {
                    if undecided[w] {
                        kept.push((w, whole));
                    } else if durable(w) {
                        kept.push((w, whole));
                        if whole {
                            break;
                        }
                    }
                }
                kept
            })
            .collect();
        Self { pieces }
    }
}

/// What judging a chunk's units reads with, apart from the judge whose chunk it is.
struct Judged<'v, 'r> {
    views: &'v DiskViews<'r>,
    layout: &'v ArrayLayout,
    unit: u64,
    remember: bool,
}

impl Judged<'_, '_> {
    /// Whether the units of `chunk` that member writes touch disagree in the state: each
    /// as remembered under the same writes showing in it, the others read in runs of
    /// adjacent units, a run in one go.
    fn touched(&self, chunk: &mut Chunk, survives: Survives) -> io::Result<bool> {
        let mut unknown: Vec<(usize, u64, Vec<u32>)> = Vec::new();
        let mut key = Vec::new();
        for (i, u) in chunk.units.iter().enumerate() {
            key.clear();
            u.region.showing(survives, &mut key);
            match u.seen.get(&key[..]).filter(|_| self.remember) {
                Some(true) => return Ok(true),
                Some(false) => {}
                None => unknown.push((i, u.at, key.clone())),
            }
        }
        let mut d = false;
        for run in unknown.chunk_by(|a, b| a.1 + 1 == b.1) {
            let (first, last) = (run[0].1, run[run.len() - 1].1);
            let within = first * self.unit..(last + 1) * self.unit;
            let found = self.divergent_in(within, self.unit, survives)?;
            d |= !found.is_empty();
            if self.remember {
                for (i, at, key) in run {
                    let seen = found.binary_search(at).is_ok();
                    chunk.units[*i].seen.insert(key.clone(), seen);
                }
            }
        }
        Ok(d)
    }

    /// Whether the units of `chunk` (chunk `c`) that no member write touches disagree.
    fn untouched(&self, c: u64, chunk: &mut Chunk) -> io::Result<bool> {
        if let Some(d) = chunk.untouched {
            return Ok(d);
        }
        let (cb, unit) = (self.layout.chunk_bytes, self.unit);
        // The runs of untouched units between the touched ones, each read in one go.
        let mut from = c * cb;
        let mut d = false;
        for end in chunk
            .units
            .iter()
            .map(|u| u.at * unit)
            .chain([(c + 1) * cb])
        {
            if from < end && !self.divergent_in(from..end, cb, &|_| false)?.is_empty() {
                d = true;
                break;
            }
            from = end + unit;
        }
        chunk.untouched = Some(d);
        Ok(d)
    }

    /// Where the members disagree in `within` (bitmap space, inside one chunk) in the
    /// state: the pieces of `piece` bytes, ascending.
    fn divergent_in(
        &self,
        within: std::ops::Range<u64>,
        piece: u64,
        survives: Survives,
    ) -> io::Result<Vec<u64>> {
        let l = self.layout;
        let mut readers: Vec<_> = l
            .members
            .iter()
            .map(|&d| self.views.reader(d, survives))
            .collect();
        let found =
            l.geometry
                .inconsistent_in(&mut readers, &l.data_offsets, l.space, piece, within)?;
        Ok(found.chunks)
    }
}

/// The crash point whose states are judged, and what stays put across them.
#[derive(Default)]
struct Point {
    /// The undecided writes, ascending.
    maybe: Vec<usize>,
    /// By request: whether it is undecided.
    undecided: Vec<bool>,
    /// The chunks the undecided writes touch, ascending.
    variable: Vec<u64>,
    /// The same, with how many of the undecided touch each.
    touching: BTreeMap<u64, usize>,
    /// Per variable chunk: its judgements.
    listed: Vec<Listed<bool>>,
    /// The lists of chunks not variable at this point, taken up again at a point where
    /// their writes' fates are as they were.
    put_away: HashMap<u64, Listed<bool>>,
    /// What the superblocks say.
    heads: Listed<Heads>,
    /// The superblocks' regions as the point's states can show them.
    head_regions: Vec<Region>,
    /// The chunks that disagree with the durable writes alone and that no undecided
    /// write touches, ascending.
    steady: Vec<u64>,
    /// Per bitmap byte read at this point (disk and offset): what decides it, and that
    /// byte before the recording.
    bit_bytes: HashMap<(usize, u64), (ByteFate, u8)>,
}

/// What some writes decide (a chunk's agreement, the superblocks' say), listed by which
/// of the undecided ones survive, and found without building the set of survivors: most
/// states of a point, and of the points after it, differ in few of those writes.
struct Listed<T> {
    /// The undecided writes, ascending.
    undecided: Vec<usize>,
    /// The durable ones, ascending: with `undecided`, what the list holds for.
    durable: Vec<usize>,
    /// Indexed by the undecided that survive (bit `j` for the `j`th); empty when there
    /// are too many to list.
    seen: Vec<Option<T>>,
}

impl<T> Default for Listed<T> {
    fn default() -> Self {
        Self {
            undecided: Vec::new(),
            durable: Vec::new(),
            seen: Vec::new(),
        }
    }
}

impl<T: Clone> Listed<T> {
    /// The list for `writes` at a point, the one `before` when their fates are the same.
    fn of(writes: &[usize], undecided: &[bool], durable: Survives, before: Option<Self>) -> Self {
        let mine: Vec<usize> = writes.iter().copied().filter(|&w| undecided[w]).collect();
        let durable: Vec<usize> = writes
            .iter()
            .copied()
            .filter(|&w| !undecided[w] && durable(w))
            .collect();
        match before {
            Some(l) if l.undecided == mine && l.durable == durable => l,
            _ => Self {
                seen: if mine.len() <= LISTED_UP_TO {
                    vec![None; 1 << mine.len()]
                } else {
                    Vec::new()
                },
                undecided: mine,
                durable,
            },
        }
    }

    /// The state's place in the list (none when the list is not kept).
    fn kept(&self, survives: Survives) -> Option<usize> {
        if self.seen.is_empty() {
            return None;
        }
        Some(
            self.undecided
                .iter()
                .enumerate()
                .filter(|&(_, &w)| survives(w))
                .fold(0, |mask, (j, _)| mask | 1 << j),
        )
    }

    fn get(&self, kept: Option<usize>) -> Option<&T> {
        self.seen.get(kept?)?.as_ref()
    }

    fn set(&mut self, kept: Option<usize>, value: T) {
        if let Some(seen) = kept.and_then(|k| self.seen.get_mut(k)) {
            *seen = Some(value);
        }
    }

    /// Whether any of the writes survives.
    fn any_survive(&self, kept: Option<usize>) -> bool {
        kept.is_some_and(|k| k != 0) || !self.durable.is_empty()
    }
}

/// What only `old` holds and what only `new` holds, both ascending.
fn differences(old: &[usize], new: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let (mut gone, mut come) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    loop {
        match (old.get(i), new.get(j)) {
            (Some(a), Some(b)) if a == b => (i, j) = (i + 1, j + 1),
            (Some(&a), Some(&b)) if a < b => {
                gone.push(a);
                i += 1;
            }
            (Some(&a), None) => {
                gone.push(a);
                i += 1;
            }
            (_, Some(&b)) => {
                come.push(b);
                j += 1;
            }
            (None, None) => return (gone, come),
        }
    }
}

/// The writes of `writes` that survive, as a memo's key.
fn survivors(writes: &[usize], survives: Survives) -> Vec<u32> {
    writes
        .iter()
        .copied()
        .filter(|&w| survives(w))
        .map(|w| w as u32)
        .collect()
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// rustc's FxHash, a word at a time.
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.add(u64::from_le_bytes(w.try_into().expect("8 bytes")));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(n.into());
    }

    fn write_u32(&mut self, n: u32) {
        self.add(n.into());
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    /// Rotated so that the product's best mixed bits, its high ones, pick the bucket.
    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }
}
