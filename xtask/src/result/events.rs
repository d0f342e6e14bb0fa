//! What the runner tells the world, as typed events. The runner never prints and never
//! writes a result file: the terminal, the result files and every other format are
//! [`Reporter`]s that consume these events, so a reporter is added without touching the
//! runner.

use crate::bench::Bench;
use crate::case::Plan;
use crate::check::Check;
use crate::result::{CaseResult, Phase, StepRecord};
use anyhow::Result;
use std::path::Path;
use std::sync::Mutex;

pub enum Event<'a> {
    /// The bench is prepared and the cases are about to run, `jobs` at a time.
    RunStarted {
        bench: &'a Bench,
        run_dir: &'a Path,
        plans: &'a [Plan],
        jobs: usize,
    },
    /// A case's directory exists; nothing of it has run yet.
    CaseStarted { plan: &'a Plan, dir: &'a Path },
    /// Something a case did, with the whole result as it stands after it.
    CaseProgress {
        plan: &'a Plan,
        dir: &'a Path,
        progress: Progress<'a>,
        result: &'a CaseResult,
    },
    /// The case's final result: its verdict is no longer `running`.
    CaseEnded {
        plan: &'a Plan,
        dir: &'a Path,
        result: &'a CaseResult,
    },
    /// Every case of the run ended; `results` in the order of the plans.
    RunEnded {
        run_dir: &'a Path,
        results: &'a [CaseResult],
    },
}

/// What a [`Event::CaseProgress`] reports.
pub enum Progress<'a> {
    /// Boot `boot` (counted from 1) reached a ready agent.
    Booted {
        boot: u32,
        ms: u64,
    },
    PhaseEnded(&'a Phase),
    CheckJudged(&'a Check),
    StepEnded(&'a StepRecord),
    /// A figure recorded without being judged.
    Figure(&'a str),
    /// What the case is waiting on right now (the resync's progress), for a live row;
    /// in no result, and no log line.
    Status(&'a str),
}

/// A consumer of events. An error says the reporter could not do its part (a result file
/// could not be written): the runner makes that case an ERROR where it can.
pub trait Reporter: Send {
    fn report(&mut self, event: &Event) -> Result<()>;
}

/// The reporters of a run, shared by the threads that run its cases; each event reaches
/// every reporter, in the order they were given, one event at a time.
pub struct Events {
    reporters: Mutex<Vec<Box<dyn Reporter>>>,
}

impl Events {
    pub fn new(reporters: Vec<Box<dyn Reporter>>) -> Self {
        Self {
            reporters: Mutex::new(reporters),
        }
    }

    /// Every reporter sees the event, also after one of them failed; the first error is
    /// returned.
    pub fn emit(&self, event: &Event) -> Result<()> {
        let mut reporters = self.reporters.lock().unwrap_or_else(|e| e.into_inner());
        let mut first = None;
        for r in reporters.iter_mut() {
            if let Err(e) = r.report(event) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}
