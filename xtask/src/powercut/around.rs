//! The requests of a recording around a violation's power cut, with their times: what the
//! violation's timeline in `index.html` draws. Saved with the violation in
//! `power-loss.json`, because what they come from (the disks' logs) is left out of the
//! results a CI shard uploads, and a report is written from the result directory alone.

use super::explore::{Seen, Violation};
use super::recording::{Recording, ReqKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// How far from the cut the timeline reaches for a violation's data and bitmap writes: a
/// window much wider would draw the requests near the cut too thin to see.
pub const REACH_US: u64 = 100_000;

/// The span saved on each side of the cut: the timeline's reach and its margins.
const SAVED_US: u64 = REACH_US * 5 / 4;

/// The requests of the recording near one violation's cut.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Around {
    /// Trace times (µs) of the last event the state applied and of the next one: the
    /// power went between them (`None` before the first event or past the last).
    pub cut_after_us: Option<u64>,
    pub cut_before_us: Option<u64>,
    /// Every request overlapping `from_us..=to_us` is listed, and the violation's data and
    /// bitmap writes wherever they are.
    pub from_us: u64,
    pub to_us: u64,
    /// Member disks, in role order.
    pub members: Vec<String>,
    /// The disk holding the bitmap file; `None` for a bitmap inside the members.
    #[serde(default)]
    pub bitmap_file: Option<String>,
    /// In issue order.
    pub requests: Vec<Timed>,
}

/// One request with its times, and where it stands to the cut.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timed {
    /// As people read it, and as the violation names it (`m0 #6 write 21536+440`).
    pub request: String,
    pub disk: String,
    pub flush: bool,
    #[serde(default)]
    pub fua: bool,
    /// See [`super::recording::Request::flush_sequence`].
    #[serde(default)]
    pub flush_sequence: bool,
    pub issued_us: u64,
    /// `None`: not completed within the recording.
    pub completed_us: Option<u64>,
    /// By the order, not the clock (events often share a microsecond): whether the
    /// state applied the request's issue, and its completion.
    pub issued_before_cut: bool,
    pub completed_before_cut: bool,
}

impl Around {
    /// The requests around `v`'s cut. `members` and `bitmap_file` are disk indexes of
    /// `rec`.
    pub fn of(
        rec: &Recording,
        members: &[usize],
        bitmap_file: Option<usize>,
        v: &Violation,
    ) -> Self {
        let time = |i: usize| rec.events.get(i).map(|e| e.time_us);
        let cut_after_us = v.point.checked_sub(1).and_then(time);
        let cut_before_us = time(v.point);
        let cut = cut_after_us.or(cut_before_us).unwrap_or(0);
        let (from_us, to_us) = (cut.saturating_sub(SAVED_US), cut.saturating_add(SAVED_US));
        let picked: BTreeSet<usize> = v
            .explained
            .iter()
            .flat_map(|e| [&e.data, &e.bitmap])
            .flatten()
            .filter_map(|s| request_index(rec, s))
            .collect();
        let requests = rec
            .requests
            .iter()
            .enumerate()
            .filter_map(|(r, q)| {
                let issued_us = time(q.issued)?;
                let completed_us = time(q.completed);
                let near = issued_us <= to_us && completed_us.is_none_or(|c| c >= from_us);
                (near || picked.contains(&r)).then(|| Timed {
                    request: rec.describe(r),
                    disk: rec.disks[q.disk].name.clone(),
                    flush: q.kind == ReqKind::Flush,
                    fua: q.fua,
                    flush_sequence: q.flush_sequence,
                    issued_us,
                    completed_us,
                    issued_before_cut: q.issued < v.point,
                    completed_before_cut: q.completed < v.point,
                })
            })
            .collect();
        Around {
            cut_after_us,
            cut_before_us,
            from_us,
            to_us,
            members: members.iter().map(|&d| rec.disks[d].name.clone()).collect(),
            bitmap_file: bitmap_file.map(|d| rec.disks[d].name.clone()),
            requests,
        }
    }

    /// Where the timeline draws the cut: between the two events' times.
    pub fn cut_us(&self) -> u64 {
        match (self.cut_after_us, self.cut_before_us) {
            (Some(a), Some(b)) => a + (b.saturating_sub(a)) / 2,
            (a, b) => a.or(b).unwrap_or(0),
        }
    }
}

/// The request a piece of evidence names, checked against the recording's own
/// description of it (`m0 #6 write ...`: the number is its index).
pub fn request_index(rec: &Recording, seen: &Seen) -> Option<usize> {
    let (_, rest) = seen.request.split_once('#')?;
    let r: usize = rest.split(' ').next()?.parse().ok()?;
    (r < rec.requests.len() && rec.describe(r) == seen.request).then_some(r)
}
