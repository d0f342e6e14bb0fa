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

    /// The verdict of the checks so far: a failed check of a kernel rule is a FAIL; when
    /// only preconditions failed (`check::PRECONDITIONS`), the case could not judge the
    /// kernel, an ERROR.
    pub fn verdict(&self) -> Result<(), Failure> {
        verdict_of(&self.result.checks)
    }

    /// The end of the case goes out through [`Record::end`]; a progress report that a
    /// reporter could not take is not the case's failure (the end's is).
    /// What the case waits on now, as a live row shows it (`resync 42%`).
    pub fn status(&self, text: &str) {
        self.progress(Progress::Status(text));
    }

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

/// See [`Record::verdict`].
pub fn verdict_of(checks: &[Check]) -> Result<(), Failure> {
    let failed: Vec<&Check> = checks.iter().filter(|c| !c.ok).collect();
    let lines = |cs: &[&Check]| {
        cs.iter()
            .map(|c| format!("{}: {}", c.name, c.summary))
            .collect::<Vec<_>>()
            .join("\n")
    };
    if failed.is_empty() {
        Ok(())
    } else if failed.iter().any(|c| !c.is_precondition()) {
        Err(Failure::Case(lines(&failed)))
    } else {
        Err(Failure::Bench(anyhow::anyhow!(
            "the case could not judge the kernel: {}",
            lines(&failed)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &'static str, ok: bool) -> Check {
        Check {
            name: name.into(),
            ok,
            summary: format!("{name} summary"),
            figures: serde_json::Value::Null,
        }
    }

    #[test]
    fn a_broken_rule_fails_and_a_missed_precondition_is_an_error() {
        assert!(verdict_of(&[check("safety", true)]).is_ok());
        match verdict_of(&[check("crash_left_divergence", false), check("safety", true)]) {
            Err(Failure::Bench(e)) => {
                assert!(format!("{e}").contains("could not judge the kernel: crash_left_divergence"))
            }
            _ => panic!("nothing to judge is the case's error, not the kernel's failure"),
        }
        match verdict_of(&[
            check("crash_left_divergence", false),
            check("safety", false),
        ]) {
            Err(Failure::Case(why)) => assert!(why.contains("safety: safety summary"), "{why}"),
            _ => panic!("a broken rule fails the case"),
        }
    }

    #[test]
    fn a_stall_with_blocked_tasks_fails_and_one_without_is_an_error() {
        assert!(matches!(
            verdict_of(&[check("awaited_state_reached", false)]),
            Err(Failure::Bench(_))
        ));
        match verdict_of(&[check("no_blocked_tasks", false)]) {
            Err(Failure::Case(why)) => assert!(why.starts_with("no_blocked_tasks: "), "{why}"),
            _ => panic!("tasks stuck in the kernel are the kernel's failure"),
        }
    }
}
