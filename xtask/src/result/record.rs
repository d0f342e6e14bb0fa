//! The result of a case as it is being made: every phase, check, figure and boot lands in
//! it and is announced as an event at once, so that a result file written from the events
//! loses nothing when the case dies later.

use crate::case::Plan;
use crate::check::Check;
use crate::result::events::{Event, Events, Progress};
use crate::result::{CaseResult, Failure, Phase, StepRecord};
use std::path::Path;
use std::time::{Duration, Instant};

pub struct Record<'a> {
    pub result: CaseResult,
    pub plan: &'a Plan,
    pub dir: &'a Path,
    events: &'a Events,
    phase_start: Instant,
}

impl<'a> Record<'a> {
    pub fn new(result: CaseResult, plan: &'a Plan, dir: &'a Path, events: &'a Events) -> Self {
        Self {
            result,
            plan,
            dir,
            events,
            phase_start: Instant::now(),
        }
    }

    /// Ends the phase that started with the last one (or with the record).
    pub fn phase(&mut self, name: &str) {
        self.result.phases.push(Phase {
            name: name.into(),
            ms: self.phase_start.elapsed().as_millis() as u64,
        });
        self.phase_start = Instant::now();
        let phase = self.result.phases.last().expect("just pushed");
        self.progress(Progress::PhaseEnded(phase));
    }

    pub fn add(&mut self, c: Check) {
        self.result.checks.push(c);
        let check = self.result.checks.last().expect("just pushed");
        self.progress(Progress::CheckJudged(check));
    }

    /// A measurement the case records but does not judge (checks are only what can fail).
    pub fn note_figure(&mut self, name: &str, value: impl serde::Serialize) {
        let value = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
        self.result.figures.insert(name.to_string(), value);
        self.progress(Progress::Figure(name));
    }

    pub fn booted(&mut self, boot: Duration, guest_uptime_ms: u64) {
        let ms = boot.as_millis() as u64;
        self.result.times.boot_ms.push(ms);
        self.result
            .times
            .guest_ready_uptime_ms
            .push(guest_uptime_ms);
        let boot = self.result.times.boot_ms.len() as u32;
        self.progress(Progress::Booted { boot, ms });
    }

    pub fn step(&mut self, r: StepRecord) {
        self.result.steps.push(r);
        let step = self.result.steps.last().expect("just pushed");
        self.progress(Progress::StepEnded(step));
    }

    /// The verdict of the checks so far.
    pub fn verdict(&self) -> Result<(), Failure> {
        let failed: Vec<String> = self
            .result
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| format!("{}: {}", c.name, c.summary))
            .collect();
        if failed.is_empty() {
            Ok(())
        } else {
            Err(Failure::Case(failed.join("\n")))
        }
    }

    /// The end of the case goes out through [`Record::end`]; a progress report that a
    /// reporter could not take is not the case's failure (the end's is).
    fn progress(&self, progress: Progress) {
        let _ = self.events.emit(&Event::CaseProgress {
            plan: self.plan,
            dir: self.dir,
            progress,
            result: &self.result,
        });
    }

    /// Announces the case's end; a reporter that could not take it (its result file
    /// unwritten) makes the case an ERROR.
    pub fn end(mut self) -> CaseResult {
        if let Err(e) = self.events.emit(&Event::CaseEnded {
            plan: self.plan,
            dir: self.dir,
            result: &self.result,
        }) {
            self.result.verdict = crate::result::Verdict::Error;
            self.result.reason = Some(format!("{e:#}"));
        }
        self.result
    }
}
