//! What a power cut may keep of each request, under a disk model, walked event by event.
//!
//! - `write_through`: a completed write is on the medium; one issued and not completed
//!   may or may not be.
//! - `volatile_cache`: a completed write is on the medium only once a flush issued after
//!   its completion has completed on the same disk (or it was FUA); until then it may or
//!   may not be. Each disk keeps its own cache.
//!
//! Both only ever add to what is durable as the order advances, so the walk is
//! incremental: each step returns what became durable.

use super::recording::{Recording, ReqKind};
use std::collections::{BTreeMap, BTreeSet};

pub use crate::case::DiskModel;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Not issued yet: not on the medium.
    Absent,
    /// On the medium or not: each state chooses.
    Maybe,
    Durable,
}

/// The fates of every request after a prefix of the order.
pub struct Walker<'r> {
    rec: &'r Recording,
    model: DiskModel,
    /// Events applied so far.
    applied: usize,
    fate: Vec<Fate>,
    maybe: BTreeSet<usize>,
    /// Completed, not yet flushed writes per disk, by completion order (volatile cache).
    unflushed: Vec<BTreeMap<usize, usize>>,
    /// For each flush in flight: the completion position below which it flushes.
    flush_covers: BTreeMap<usize, usize>,
}

impl<'r> Walker<'r> {
    pub fn new(rec: &'r Recording, model: DiskModel) -> Self {
        Self {
            rec,
            model,
            applied: 0,
            fate: vec![Fate::Absent; rec.requests.len()],
            maybe: BTreeSet::new(),
            unflushed: vec![BTreeMap::new(); rec.disks.len()],
            flush_covers: BTreeMap::new(),
        }
    }

    pub fn applied(&self) -> usize {
        self.applied
    }

    pub fn fate(&self, request: usize) -> Fate {
        self.fate[request]
    }

    /// Applies the next event; returns the writes that became durable with it.
    pub fn step(&mut self) -> Vec<usize> {
        let e = self.rec.events[self.applied];
        let at = self.applied;
        self.applied += 1;
        let r = &self.rec.requests[e.request];
        let mut durable = Vec::new();
        match (r.kind, e.issue) {
            (ReqKind::Write, true) => {
                self.fate[e.request] = Fate::Maybe;
                self.maybe.insert(e.request);
            }
            (ReqKind::Write, false) => {
                if self.model == DiskModel::WriteThrough || r.fua {
                    self.fate[e.request] = Fate::Durable;
                    durable.push(e.request);
                } else {
                    self.unflushed[r.disk].insert(at, e.request);
                }
            }
            // A flush covers what completed before it was issued.
            (ReqKind::Flush, true) => {
                self.flush_covers.insert(e.request, at);
            }
            (ReqKind::Flush, false) => {
                let below = self.flush_covers.remove(&e.request).unwrap_or(0);
                let cache = &mut self.unflushed[r.disk];
                let kept = cache.split_off(&below);
                for (_, w) in std::mem::replace(cache, kept) {
                    self.fate[w] = Fate::Durable;
                    durable.push(w);
                }
            }
        }
        for w in &durable {
            self.maybe.remove(w);
        }
        durable
    }

    /// The writes whose survival a state chooses, ascending.
    pub fn maybe(&self) -> Vec<usize> {
        self.maybe.iter().copied().collect()
    }
}
