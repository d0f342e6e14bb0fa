//! Every crash point of a recording, and at each the states its disk model allows:
//! every subset of the undecided writes while there are few (`exact_up_to`), beyond that
//! `samples` subsets drawn from the recorded seed, each write kept with probability 1/2
//! (CrashMonkey's bounded exploration, across disks).

use super::around::Around;
use super::judge::{ArrayLayout, BitmapPlace, Judge, Outcome};
use super::model::{DiskModel, Fate, Walker};
use super::recording::{Recording, ReqKind};
use super::view::DiskViews;
use crate::ondisk::chunk_state::ChunkEncoding;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bounds {
    /// Up to this many undecided writes, every subset is judged.
    pub exact_up_to: u32,
    /// Beyond it, this many subsets per crash point.
    pub samples: u32,
    pub seed: u64,
    /// Remember each chunk's judgement per set of surviving writes (off only to measure
    /// what remembering saves).
    #[serde(default = "remember")]
    pub remember: bool,
}

fn remember() -> bool {
    true
}

/// A state that broke the rule, with what a person (or `crash-state`) needs to rebuild
/// it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// Events of the order applied before the power went.
    pub point: usize,
    /// The last event before the cut, as people read it.
    pub after: String,
    pub uncovered: Vec<u64>,
    pub divergent: usize,
    /// Why each uncovered chunk's bit is not on the medium, in the order of `uncovered`.
    pub explained: Vec<Explanation>,
    /// Per disk: the undecided writes this state keeps, and those it loses.
    pub survived: BTreeMap<String, Vec<String>>,
    pub lost: BTreeMap<String, Vec<String>>,
    /// Request indexes of the undecided writes kept: with `point`, the whole state.
    pub survivors: Vec<usize>,
    /// The requests around the cut, for its timeline: kept for the first state of each
    /// cause (`first_by_cause`) only, which is what `index.html` draws.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub around: Option<Around>,
}

impl Violation {
    /// The distinct causes of the state's uncovered chunks.
    pub fn causes(&self) -> BTreeSet<Cause> {
        self.explained.iter().map(|e| e.cause).collect()
    }
}

/// Why a divergent chunk's bit is clear in a state, read from the recording: which
/// member write sent the chunk's data out, and what the bitmap writes that carry (or
/// clear) its bit had done by then.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// A bitmap write setting the bit was issued before the data, and md had not seen it
    /// complete when the data went out: md did not wait for it.
    Ordering,
    /// md had seen a bitmap write setting the bit complete before the data went out, but
    /// no flush made it durable, and the state lost it.
    Durability,
    /// The bit was set, then a bitmap write issued after the data went out cleared it,
    /// and the state keeps that clear while the members still differ.
    Cleared,
    /// No bitmap write setting the bit was issued before the data went out at all.
    Unwritten,
    /// The freshest member superblock records the array in sync past the chunk (its
    /// `resync_offset`), so md resyncs it whatever its bit says.
    MarkedClean,
    /// After a kill: a write the logs hold but the trace never showed (issued after its
    /// last synced event) touches the chunk, so the recording cannot say what md had done
    /// with its bit.
    Untraced,
}

impl Cause {
    pub const ALL: [Cause; 6] = [
        Cause::Ordering,
        Cause::Durability,
        Cause::Cleared,
        Cause::Unwritten,
        Cause::MarkedClean,
        Cause::Untraced,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Ordering => "ordering",
            Cause::Durability => "durability",
            Cause::Cleared => "cleared",
            Cause::Unwritten => "unwritten",
            Cause::MarkedClean => "marked_clean",
            Cause::Untraced => "untraced",
        }
    }

    pub fn meaning(self) -> &'static str {
        match self {
            Cause::Ordering => "md sent the data before the bitmap write that sets its bit had completed",
            Cause::Durability => "the bitmap write that sets the bit had completed before the data went out, but no flush had made it durable",
            Cause::Cleared => "a bitmap write issued after the data cleared the bit, and the state keeps it while the members differ",
            Cause::Unwritten => "no bitmap write setting the bit was issued before the data went out",
            Cause::MarkedClean => "the freshest member superblock records the array in sync past the chunk, so md skips it whatever its bit says",
            Cause::Untraced => "a write the disk's log holds but the trace never showed (issued after the trace's last event before the kill) touches the chunk: the recording cannot say what md did with its bit",
        }
    }
}

/// One request of the recording as evidence: what it was and when the guest saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub request: String,
    pub issued_us: u64,
    /// `None`: not completed within the recording.
    pub completed_us: Option<u64>,
}

impl Seen {
    fn of(rec: &Recording, r: usize) -> Self {
        let q = &rec.requests[r];
        let us = |i: usize| rec.events.get(i).map(|e| e.time_us);
        Seen {
            request: rec.describe(r),
            issued_us: us(q.issued).unwrap_or(0),
            completed_us: us(q.completed),
        }
    }

    fn when(&self) -> String {
        let s = |us: u64| format!("{:.6} s", us as f64 / 1e6);
        match self.completed_us {
            Some(c) => format!(
                "{} (issued {}, completed {})",
                self.request,
                s(self.issued_us),
                s(c)
            ),
            None => format!(
                "{} (issued {}, never completed)",
                self.request,
                s(self.issued_us)
            ),
        }
    }
}

/// One uncovered chunk explained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    pub chunk: u64,
    pub cause: Cause,
    /// The member write whose data the bit should have covered (none for a chunk that
    /// differed before the recording).
    pub data: Option<Seen>,
    /// The bitmap write that carried the bit (`ordering`, `durability`) or cleared it
    /// (`cleared`); for `marked_clean`, the member superblock write that records the
    /// array in sync.
    pub bitmap: Option<Seen>,
}

impl Explanation {
    /// One line a person reads: the chunk, the two writes and their times.
    pub fn evidence(&self) -> String {
        let data = self.data.as_ref().map_or(
            "no member write (it differed before the recording)".into(),
            // An untraced write has no times to give.
            |d| match self.cause {
                Cause::Untraced => d.request.clone(),
                _ => d.when(),
            },
        );
        match (&self.bitmap, self.cause) {
            (Some(b), Cause::Cleared) => format!(
                "chunk {}: data {data}; cleared by {} after the data went out",
                self.chunk,
                b.when()
            ),
            (Some(b), Cause::MarkedClean) => format!(
                "chunk {}: data {data}; the surviving superblock {}: {}",
                self.chunk,
                b.when(),
                self.cause.meaning()
            ),
            (Some(b), _) => format!(
                "chunk {}: data {data}; its bit carried by {}{}: {}",
                self.chunk,
                b.when(),
                if self
                    .data
                    .as_ref()
                    .is_some_and(|d| b.issued_us > d.issued_us)
                {
                    ", issued after the data behind a write of the page or a flush in flight when the data went out"
                } else {
                    ""
                },
                self.cause.meaning()
            ),
            (None, _) => format!(
                "chunk {}: data {data}: {}",
                self.chunk,
                self.cause.meaning()
            ),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub model: DiskModel,
    pub bounds: Bounds,
    pub crash_points: usize,
    /// Crash points whose states were all judged.
    pub exact_points: usize,
    pub states_checked: u64,
    /// States the bound left out (a float: 2^n grows past any integer).
    pub states_skipped: f64,
    pub max_undecided_writes: usize,
    pub safe_states: u64,
    pub full_recovery_states: u64,
    pub refused_states: u64,
    pub unsafe_states: u64,
    /// Unsafe states by [`Cause`]: a state counts once for each cause among its
    /// uncovered chunks.
    pub states_by_cause: BTreeMap<Cause, u64>,
    /// The first uncovered chunk explained for each cause seen.
    pub evidence: BTreeMap<Cause, Explanation>,
    /// The first state with each cause: what the guest confirms, one per cause.
    pub first_by_cause: BTreeMap<Cause, Violation>,
    /// Crash points with at least one unsafe state.
    pub unsafe_points: usize,
    pub seconds: f64,
    pub states_per_second: f64,
    pub chunk_judgements: u64,
    pub chunk_judgements_remembered: u64,
    /// The first violations, in order.
    pub violations: Vec<Violation>,
}

/// `150 ordering, 2,826 durability`.
pub fn causes_line(by_cause: &BTreeMap<Cause, u64>) -> String {
    by_cause
        .iter()
        .map(|(c, n)| format!("{n} {}", c.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How many violations a report keeps whole.
pub const KEPT_VIOLATIONS: usize = 20;

pub fn explore(
    rec: &Recording,
    views: &DiskViews,
    layout: &ArrayLayout,
    model: DiskModel,
    bounds: Bounds,
) -> std::io::Result<Report> {
    let started = Instant::now();
    let mut walker = Walker::new(rec, model);
    let mut judge = Judge::new(views, layout);
    judge.remember = bounds.remember;
    let mut rng = ChaCha8Rng::seed_from_u64(bounds.seed);
    let mut report = Report {
        model,
        bounds,
        crash_points: 0,
        exact_points: 0,
        states_checked: 0,
        states_skipped: 0.0,
        max_undecided_writes: 0,
        safe_states: 0,
        full_recovery_states: 0,
        refused_states: 0,
        unsafe_states: 0,
        states_by_cause: BTreeMap::new(),
        evidence: BTreeMap::new(),
        first_by_cause: BTreeMap::new(),
        unsafe_points: 0,
        seconds: 0.0,
        states_per_second: 0.0,
        chunk_judgements: 0,
        chunk_judgements_remembered: 0,
        violations: Vec::new(),
    };
    let mut carried = Carried {
        kept: vec![false; rec.requests.len()],
        bit_writes: HashMap::new(),
    };
    loop {
        let point = walker.applied();
        if point >= rec.window.start {
            judge_point(
                rec,
                layout,
                &walker,
                &mut judge,
                &mut carried,
                &mut rng,
                &mut report,
            )?;
        }
        if point >= rec.window.end {
            break;
        }
        let newly = walker.step();
        for &w in &newly {
            carried.kept[w] = true;
        }
        if !newly.is_empty() {
            let w = &walker;
            judge.on_durable(&newly, &|r| w.fate(r) == Fate::Durable)?;
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    report.states_per_second = report.states_checked as f64 / report.seconds.max(1e-9);
    report.chunk_judgements = judge.memo_misses;
    report.chunk_judgements_remembered = judge.memo_hits;
    Ok(report)
}

/// What the crash points' judging carries from one to the next.
struct Carried {
    /// Whether each request survives in the state judged, looked up by index: the judge
    /// asks it of every write touching each chunk it judges, many times a state. Between
    /// states it holds the durable writes.
    kept: Vec<bool>,
    /// Per uncovered chunk: [`bit_writes`].
    bit_writes: HashMap<u64, Vec<usize>>,
}

fn judge_point(
    rec: &Recording,
    layout: &ArrayLayout,
    walker: &Walker,
    judge: &mut Judge,
    carried: &mut Carried,
    rng: &mut ChaCha8Rng,
    report: &mut Report,
) -> std::io::Result<()> {
    let point = walker.applied();
    let maybe = walker.maybe();
    judge.at_point(&maybe, &|r| walker.fate(r) == Fate::Durable);
    let k = maybe.len();
    report.crash_points += 1;
    report.max_undecided_writes = report.max_undecided_writes.max(k);
    let exact = k <= report.bounds.exact_up_to as usize;
    let states: u64 = if exact {
        report.exact_points += 1;
        1 << k
    } else {
        report.states_skipped += 2f64.powi(k as i32) - f64::from(report.bounds.samples);
        u64::from(report.bounds.samples)
    };
    let mut chosen = vec![false; k];
    let mut point_unsafe = false;
    // An uncovered chunk's explanation takes of the state only its bit's source: worked
    // out once a point for each chunk and source.
    let mut bit_writes_of: HashMap<u64, Vec<usize>> = HashMap::new();
    let mut explanations: HashMap<(u64, Option<usize>), Explanation> = HashMap::new();
    for s in 0..states {
        for (i, c) in chosen.iter_mut().enumerate() {
            *c = if exact { s >> i & 1 == 1 } else { rng.random() };
            carried.kept[maybe[i]] = *c;
        }
        let kept = &carried.kept;
        let survives = |r: usize| kept[r];
        report.states_checked += 1;
        match judge.judge(&survives)? {
            Outcome::Safe { .. } => report.safe_states += 1,
            Outcome::FullRecovery => report.full_recovery_states += 1,
            Outcome::Refused(_) => report.refused_states += 1,
            Outcome::Unsafe {
                uncovered,
                divergent,
                resync_from,
            } => {
                report.unsafe_states += 1;
                point_unsafe = true;
                let explained: Vec<Explanation> = uncovered
                    .iter()
                    .map(|&c| {
                        let writes = bit_writes_of.entry(c).or_insert_with(|| {
                            let all = carried
                                .bit_writes
                                .entry(c)
                                .or_insert_with(|| bit_writes(rec, layout, judge, c));
                            issued_before(rec, all, point)
                        });
                        let source = bit_source(writes, &survives);
                        let mut e = explanations
                            .entry((c, source))
                            .or_insert_with(|| {
                                explain_from(rec, judge, point, &maybe, c, writes, source)
                            })
                            .clone();
                        if c < resync_from {
                            e.cause = Cause::MarkedClean;
                            e.bitmap = judge
                                .last_superblock_write(&survives)
                                .map(|w| Seen::of(rec, w));
                        }
                        e
                    })
                    .collect();
                let mut seen = BTreeSet::new();
                for e in &explained {
                    if seen.insert(e.cause) {
                        *report.states_by_cause.entry(e.cause).or_default() += 1;
                        report.evidence.entry(e.cause).or_insert_with(|| e.clone());
                    }
                }
                let first_of_a_cause = seen.iter().any(|c| !report.first_by_cause.contains_key(c));
                if report.violations.len() < KEPT_VIOLATIONS || first_of_a_cause {
                    let v = violation(rec, point, &maybe, &chosen, uncovered, divergent, explained);
                    for c in &seen {
                        report
                            .first_by_cause
                            .entry(*c)
                            .or_insert_with(|| Violation {
                                around: Some(around(rec, layout, &v)),
                                ..v.clone()
                            });
                    }
                    if report.violations.len() < KEPT_VIOLATIONS {
                        report.violations.push(v);
                    }
                }
            }
        }
    }
    for &w in &maybe {
        carried.kept[w] = false;
    }
    if point_unsafe {
        report.unsafe_points += 1;
    }
    Ok(())
}

/// Why `chunk`'s bit is clear in the state although its members differ, read from the
/// recording. The data write is the earliest undecided member write to the chunk issued
/// before the cut (the earliest data a power cut can leave without its bit); the bit's
/// source is the newest surviving write of its byte in the disk's completion order. A
/// clear issued after the data is `cleared`; else a lost write setting the bit, issued
/// before the data, is `durability` if md had seen it end before the data went out and
/// `ordering` if not; with none, the bit was never written before the data (`unwritten`).
pub fn explain(
    rec: &Recording,
    layout: &ArrayLayout,
    judge: &Judge,
    point: usize,
    maybe: &[usize],
    survives: &dyn Fn(usize) -> bool,
    chunk: u64,
) -> Explanation {
    let writes = issued_before(rec, &bit_writes(rec, layout, judge, chunk), point);
    let source = bit_source(&writes, survives);
    explain_from(rec, judge, point, maybe, chunk, &writes, source)
}

/// The writes of the byte holding `chunk`'s bit, newest first in the disk's completion
/// order.
fn bit_writes(rec: &Recording, layout: &ArrayLayout, judge: &Judge, chunk: u64) -> Vec<usize> {
    let Some((disk, at)) = layout.bitmap.locate(layout.encoding.byte_of(chunk)) else {
        return Vec::new();
    };
    let mut writes = judge.views.touching(disk, at, 1);
    writes.sort_by_key(|&r| std::cmp::Reverse((rec.requests[r].log_index, r)));
    writes
}

/// Of [`bit_writes`], those issued before the cut.
fn issued_before(rec: &Recording, writes: &[usize], point: usize) -> Vec<usize> {
    writes
        .iter()
        .copied()
        .filter(|&r| rec.requests[r].issued < point)
        .collect()
}

/// The bit's source in the state: the newest surviving of its byte's `writes`.
fn bit_source(writes: &[usize], survives: &dyn Fn(usize) -> bool) -> Option<usize> {
    writes.iter().copied().find(|&r| survives(r))
}

/// [`explain`] with the bit's byte's `writes` and its `source` in the state found: all
/// that the explanation takes of the state.
fn explain_from(
    rec: &Recording,
    judge: &Judge,
    point: usize,
    maybe: &[usize],
    chunk: u64,
    writes: &[usize],
    source: Option<usize>,
) -> Explanation {
    let layout = judge.layout;
    let before_cut: Vec<usize> = judge
        .writes_of_chunk(chunk)
        .iter()
        .copied()
        .filter(|&w| rec.requests[w].issued < point)
        .collect();
    let data = before_cut
        .iter()
        .copied()
        .filter(|w| maybe.binary_search(w).is_ok())
        .min_by_key(|&w| rec.requests[w].issued)
        .or_else(|| {
            before_cut
                .iter()
                .copied()
                .max_by_key(|&w| rec.requests[w].issued)
        });
    let mut e = Explanation {
        chunk,
        cause: Cause::Unwritten,
        data: data.map(|w| Seen::of(rec, w)),
        bitmap: None,
    };
    let (Some(w), Some((disk, at))) = (data, layout.bitmap.locate(layout.encoding.byte_of(chunk)))
    else {
        return e;
    };
    let sent = rec.requests[w].issued;
    let bit = Mark {
        encoding: layout.encoding,
        chunk,
    };
    if let Some(s) = source.filter(|&s| rec.requests[s].issued > sent) {
        e.cause = Cause::Cleared;
        e.bitmap = Some(Seen::of(rec, s));
        return e;
    }
    let after_source = source.map_or(0, |s| rec.requests[s].log_index + 1);
    let carriers: Vec<usize> = writes
        .iter()
        .copied()
        .filter(|&r| {
            let q = &rec.requests[r];
            q.issued < sent && q.log_index >= after_source && may_carry(rec, r, at, bit)
        })
        .collect();
    let acked = carriers
        .iter()
        .copied()
        .filter(|&r| rec.requests[r].acked <= sent)
        .max_by_key(|&r| rec.requests[r].issued);
    let pending = carriers
        .iter()
        .copied()
        .max_by_key(|&r| rec.requests[r].issued);
    (e.cause, e.bitmap) = match (acked, pending) {
        (Some(r), _) => (Cause::Durability, Some(Seen::of(rec, r))),
        (None, Some(r)) => (Cause::Ordering, Some(Seen::of(rec, r))),
        (None, None) => match queued_carrier(rec, judge, layout, disk, at, bit, sent) {
            Some(r) => (Cause::Ordering, Some(Seen::of(rec, r))),
            None => (Cause::Unwritten, None),
        },
    };
    e
}

/// A chunk's mark in the bitmap: its bit, or the lockless bitmap's state byte.
#[derive(Clone, Copy)]
struct Mark {
    encoding: ChunkEncoding,
    chunk: u64,
}

/// Whether write `r` sets `bit` in byte `at` (a state that resyncs, for the lockless
/// bitmap): by its logged data, or, for a write a kill left in flight (never logged, its
/// data unknown), perhaps.
fn may_carry(rec: &Recording, r: usize, at: u64, bit: Mark) -> bool {
    let q = &rec.requests[r];
    !q.logged()
        || bit.encoding.resyncs(
            rec.data(q)[(at - q.bytes().start) as usize],
            bit.chunk,
            false,
        )
}

/// Why each of `chunks` differs with its bit clear in the state a SIGKILL of QEMU left:
/// the logged writes, nothing else. A chunk's data write is the first member write to it
/// issued at or after the first one the kill lost.
pub fn explain_killed(rec: &Recording, judge: &Judge, chunks: &[u64]) -> Vec<Explanation> {
    let layout = judge.layout;
    let survives = |r: usize| rec.requests[r].logged();
    // The writes issued after the trace's last event: a chunk they touch changed where
    // the recording cannot see.
    let untraced: Vec<(u64, String)> = rec
        .untraced
        .iter()
        .flat_map(|&(disk, sector, sectors)| {
            let what = format!(
                "{} write {sector}+{sectors} (logged, never traced)",
                rec.disks[disk].name
            );
            layout
                .chunks_written(disk, sector * 512..(sector + sectors) * 512)
                .unwrap_or_default()
                .into_iter()
                .map(move |c| (c, what.clone()))
        })
        .collect();
    chunks
        .iter()
        .map(|&c| {
            if let Some((_, what)) = untraced.iter().find(|(u, _)| *u == c) {
                return Explanation {
                    chunk: c,
                    cause: Cause::Untraced,
                    data: Some(Seen {
                        request: what.clone(),
                        issued_us: 0,
                        completed_us: None,
                    }),
                    bitmap: None,
                };
            }
            let writes = judge.writes_of_chunk(c);
            let first_lost = writes
                .iter()
                .filter(|&&w| !rec.requests[w].logged())
                .map(|&w| rec.requests[w].issued)
                .min();
            let maybe: Vec<usize> = first_lost.map_or(Vec::new(), |t| {
                writes
                    .iter()
                    .copied()
                    .filter(|&w| rec.requests[w].issued >= t)
                    .collect()
            });
            explain(rec, layout, judge, rec.events.len(), &maybe, &survives, c)
        })
        .collect()
}

/// The bitmap write that carries the bit when md had taken its page for writing before
/// the data went out but not yet issued it: `__bitmap_unplug` clears a page's dirty mark
/// and then waits for the writes of the bitmap in flight (or the block layer holds the
/// write behind its preflush), so the write is issued after the data, behind a write of
/// the page or a flush of its disk that was in flight when the data went out. It must
/// be the first write of the bit's byte issued after the data, and carry the bit; for a
/// PREFLUSH write, its preflush issued before the data is the same evidence, and so is
/// the write's own unplug having begun before the data.
fn queued_carrier(
    rec: &Recording,
    judge: &Judge,
    layout: &ArrayLayout,
    disk: usize,
    at: u64,
    bit: Mark,
    sent: usize,
) -> Option<usize> {
    // md writes an internal bitmap's page to every member and waits for all of them
    // (`md_bitmap_wait_writes`): a copy in flight on any member holds the page up.
    let copies: Vec<usize> = match layout.bitmap {
        BitmapPlace::Internal { .. } => layout.members.clone(),
        BitmapPlace::File { .. } => vec![disk],
    };
    let busy = |r: usize| {
        let q = &rec.requests[r];
        copies.contains(&q.disk) && q.issued < sent && q.completed > sent
    };
    let page_writes = judge.views.touching(disk, at, 1);
    let copy_writes: Vec<usize> = copies
        .iter()
        .flat_map(|&d| judge.views.touching(d, at, 1))
        .collect();
    let next = page_writes
        .iter()
        .copied()
        .filter(|&r| rec.requests[r].issued > sent)
        .min_by_key(|&r| rec.requests[r].issued)?;
    let q = &rec.requests[next];
    if !may_carry(rec, next, at, bit) {
        return None;
    }
    let in_flight = copy_writes.iter().any(|&r| busy(r))
        || (0..rec.requests.len()).any(|r| rec.requests[r].kind == ReqKind::Flush && busy(r));
    // A PREFLUSH write (the flush machinery acked it after a flush of its own) whose
    // preflush, the last flush of its disk before it, was issued before the data: md had
    // submitted it before the data went out.
    let preflushed_before = q.acked > q.completed + 1
        && (0..rec.requests.len())
            .filter(|&r| {
                let f = &rec.requests[r];
                f.kind == ReqKind::Flush && f.disk == disk && f.issued < q.issued
            })
            .max_by_key(|&r| rec.requests[r].issued)
            .is_some_and(|f| rec.requests[f].issued < sent);
    // The write was sent by an unplug of the bitmap that had begun before the data went
    // out: that unplug took the page, and the data's own unplug found it clean. The
    // sender is the task of the last page sent (`filemap_write_page`) before the write's
    // issue, or, without that probe, the task that issued it.
    let began_before_data = |pid: u32, by: usize| {
        pid != 0
            && rec
                .unplugs
                .iter()
                .filter(|&&(at, p)| p == pid && at <= by)
                .map(|&(at, _)| at)
                .max()
                .is_some_and(|at| at <= sent)
    };
    let sender = rec
        .page_writes
        .iter()
        .filter(|&&(at, _)| at <= q.issued)
        .max_by_key(|&&(at, _)| at);
    let unplugged_before = sender.is_some_and(|&(at, pid)| began_before_data(pid, at))
        || began_before_data(q.pid, q.issued);
    (in_flight || preflushed_before || unplugged_before).then_some(next)
}

fn violation(
    rec: &Recording,
    point: usize,
    maybe: &[usize],
    chosen: &[bool],
    uncovered: Vec<u64>,
    divergent: usize,
    explained: Vec<Explanation>,
) -> Violation {
    let mut survived: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut lost: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut survivors = Vec::new();
    for (&w, &kept) in maybe.iter().zip(chosen) {
        let disk = rec.disks[rec.requests[w].disk].name.clone();
        let side = if kept { &mut survived } else { &mut lost };
        side.entry(disk).or_default().push(rec.describe(w));
        if kept {
            survivors.push(w);
        }
    }
    let after = match point.checked_sub(1).map(|i| rec.events[i]) {
        Some(e) => format!(
            "{} {}",
            if e.issue { "issue of" } else { "completion of" },
            rec.describe(e.request)
        ),
        None => "the start".into(),
    };
    Violation {
        point,
        after,
        uncovered,
        divergent,
        explained,
        survived,
        lost,
        survivors,
        around: None,
    }
}

/// [`Around::of`] with the array's disks.
fn around(rec: &Recording, layout: &ArrayLayout, v: &Violation) -> Around {
    let bitmap_file = match layout.bitmap {
        BitmapPlace::File { disk, .. } => Some(disk),
        BitmapPlace::Internal { .. } => None,
    };
    Around::of(rec, &layout.members, bitmap_file, v)
}
