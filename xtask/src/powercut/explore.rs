//! Every crash point of a recording, and at each the states its disk model allows:
//! every subset of the undecided writes while there are few (`exact_up_to`), beyond that
//! `samples` subsets drawn from the recorded seed, each write kept with probability 1/2
//! (CrashMonkey's bounded exploration, across disks).

use super::judge::{ArrayLayout, Judge, Outcome};
use super::model::{DiskModel, Fate, Walker};
use super::recording::Recording;
use super::view::DiskViews;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
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
    /// Why the first uncovered chunk's bit is not on the medium: `ordering` when no
    /// write carrying it had completed at the cut (md sent the data before its bitmap
    /// write completed), `durability` when one had but no flush had made it durable.
    pub cause: Cause,
    /// Per disk: the undecided writes this state keeps, and those it loses.
    pub survived: BTreeMap<String, Vec<String>>,
    pub lost: BTreeMap<String, Vec<String>>,
    /// Request indexes of the undecided writes kept: with `point`, the whole state.
    pub survivors: Vec<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    Ordering,
    Durability,
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
    /// Unsafe states by [`Cause`].
    pub ordering_states: u64,
    pub durability_states: u64,
    /// Crash points with at least one unsafe state.
    pub unsafe_points: usize,
    pub seconds: f64,
    pub states_per_second: f64,
    pub chunk_judgements: u64,
    pub chunk_judgements_remembered: u64,
    /// The first violations, in order.
    pub violations: Vec<Violation>,
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
        ordering_states: 0,
        durability_states: 0,
        unsafe_points: 0,
        seconds: 0.0,
        states_per_second: 0.0,
        chunk_judgements: 0,
        chunk_judgements_remembered: 0,
        violations: Vec::new(),
    };
    loop {
        let point = walker.applied();
        if point >= rec.window.start {
            judge_point(rec, layout, &walker, &mut judge, &mut rng, &mut report)?;
        }
        if point >= rec.window.end {
            break;
        }
        let newly = walker.step();
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

fn judge_point(
    rec: &Recording,
    layout: &ArrayLayout,
    walker: &Walker,
    judge: &mut Judge,
    rng: &mut ChaCha8Rng,
    report: &mut Report,
) -> std::io::Result<()> {
    let point = walker.applied();
    let maybe = walker.maybe();
    let variable: BTreeSet<u64> = maybe
        .iter()
        .flat_map(|&w| judge.chunks_of(w).to_vec())
        .collect();
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
    for s in 0..states {
        for (i, c) in chosen.iter_mut().enumerate() {
            *c = if exact { s >> i & 1 == 1 } else { rng.random() };
        }
        let survives = |r: usize| match walker.fate(r) {
            Fate::Durable => true,
            Fate::Absent => false,
            Fate::Maybe => maybe.binary_search(&r).is_ok_and(|i| chosen[i]),
        };
        report.states_checked += 1;
        match judge.judge(&survives, &variable)? {
            Outcome::Safe { .. } => report.safe_states += 1,
            Outcome::FullRecovery => report.full_recovery_states += 1,
            Outcome::Refused(_) => report.refused_states += 1,
            Outcome::Unsafe {
                uncovered,
                divergent,
            } => {
                report.unsafe_states += 1;
                point_unsafe = true;
                let cause = cause(rec, layout, point, &maybe, &chosen, uncovered[0]);
                match cause {
                    Cause::Ordering => report.ordering_states += 1,
                    Cause::Durability => report.durability_states += 1,
                }
                if report.violations.len() < KEPT_VIOLATIONS {
                    report.violations.push(violation(
                        rec, point, &maybe, &chosen, uncovered, divergent, cause,
                    ));
                }
            }
        }
    }
    if point_unsafe {
        report.unsafe_points += 1;
    }
    Ok(())
}

/// Whether md had seen a lost write that carried `chunk`'s bit end before the cut (for
/// a PREFLUSH/FUA write, the flush after it too): then md was right to send the data and
/// the disk's cache lost the bit; otherwise md sent the data too early.
fn cause(
    rec: &Recording,
    layout: &ArrayLayout,
    point: usize,
    maybe: &[usize],
    chosen: &[bool],
    chunk: u64,
) -> Cause {
    let Some((disk, at)) = layout
        .bitmap
        .locate(crate::ondisk::bitmap::BITMAP_SUPER_LEN as u64 + chunk / 8)
    else {
        return Cause::Ordering;
    };
    let completed_carrier = maybe.iter().zip(chosen).any(|(&w, &kept)| {
        let q = &rec.requests[w];
        let b = q.bytes();
        !kept
            && q.disk == disk
            && b.contains(&at)
            && rec.data(q)[(at - b.start) as usize] & (1 << (chunk % 8)) != 0
            && q.acked <= point
    });
    if completed_carrier {
        Cause::Durability
    } else {
        Cause::Ordering
    }
}

fn violation(
    rec: &Recording,
    point: usize,
    maybe: &[usize],
    chosen: &[bool],
    uncovered: Vec<u64>,
    divergent: usize,
    cause: Cause,
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
        cause,
        survived,
        lost,
        survivors,
    }
}
