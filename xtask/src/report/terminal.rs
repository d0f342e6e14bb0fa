//! What a person sees: the kernel a run boots, a line per case as it ends, and at the end
//! the table, the summary and the flaky cases. On a terminal, one live row per running
//! case (its last phase, its time) under the finished ones and an N/M counter
//! (indicatif); in a log (CI), a plain line when a case starts and when each phase ends.

use super::text;
use crate::result::events::{Event, Progress, Reporter};
use anyhow::Result;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

pub struct Terminal {
    /// Put before every line of a case (`base`, `patched`), and in the kernel's line.
    label: Option<String>,
    /// The table, summary and flaky cases at the run's end.
    summary: bool,
    /// Live rows when stdout is a terminal.
    live: Option<Live>,
    started: HashMap<String, Instant>,
    total: usize,
    done: usize,
}

struct Live {
    multi: MultiProgress,
    counter: ProgressBar,
    rows: HashMap<String, ProgressBar>,
}

impl Terminal {
    /// The terminal of `cargo xtask run`.
    pub fn run() -> Self {
        Self::new(None, true)
    }

    /// One side of a comparison: its lines labelled, no summary of its own.
    pub fn side(label: &str) -> Self {
        Self::new(Some(label.to_string()), false)
    }

    fn new(label: Option<String>, summary: bool) -> Self {
        Self {
            label,
            summary,
            live: None,
            started: HashMap::new(),
            total: 0,
            done: 0,
        }
    }

    fn line(&self, text: &str) {
        let text = match &self.label {
            Some(label) => format!("{label:<8} {text}"),
            None => text.to_string(),
        };
        match &self.live {
            Some(live) => {
                let _ = live.multi.println(text);
            }
            None => println!("{text}"),
        }
    }

    fn row_style() -> ProgressStyle {
        ProgressStyle::with_template("{spinner} {msg} {elapsed:>4}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner())
    }
}

impl Reporter for Terminal {
    fn report(&mut self, event: &Event) -> Result<()> {
        match event {
            Event::RunStarted { bench, plans, .. } => {
                match &self.label {
                    None => eprintln!("{}", text::kernel_line(bench)),
                    Some(label) => eprintln!(
                        "{label}: kernel {} ({})",
                        bench.kernel.info.release, bench.kernel.info.source
                    ),
                }
                self.total = plans.len();
                self.done = 0;
                if std::io::stdout().is_terminal() && self.label.is_none() {
                    let multi = MultiProgress::new();
                    let counter = multi.add(ProgressBar::new(plans.len() as u64));
                    counter.set_style(
                        ProgressStyle::with_template(
                            "{pos}/{len} cases done, {elapsed} {wide_bar}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                    self.live = Some(Live {
                        multi,
                        counter,
                        rows: HashMap::new(),
                    });
                }
            }
            Event::CaseStarted { plan, .. } => {
                self.started.insert(plan.run_name.clone(), Instant::now());
                match &mut self.live {
                    Some(live) => {
                        let row = live
                            .multi
                            .insert_before(&live.counter, ProgressBar::new_spinner());
                        row.set_style(Self::row_style());
                        row.set_message(text::live_row(&plan.run_name, "starting"));
                        row.enable_steady_tick(Duration::from_millis(250));
                        live.rows.insert(plan.run_name.clone(), row);
                    }
                    None => self.line(&text::start_line(self.done, self.total, &plan.run_name)),
                }
            }
            Event::CaseProgress {
                plan,
                progress: Progress::Status(now),
                ..
            } => {
                if let Some(row) = self.live.as_ref().and_then(|l| l.rows.get(&plan.run_name)) {
                    row.set_message(text::live_row(&plan.run_name, now));
                }
            }
            Event::CaseProgress { plan, progress, .. } => {
                let last = match progress {
                    Progress::PhaseEnded(p) => Some((p.name.clone(), p.ms)),
                    Progress::Booted { boot, ms } => Some((format!("boot {boot} ready"), *ms)),
                    Progress::StepEnded(st) => {
                        Some((format!("step {} {}", st.index + 1, st.kind), st.elapsed_ms))
                    }
                    _ => None,
                };
                if let Some((what, ms)) = last {
                    let elapsed = self
                        .started
                        .get(&plan.run_name)
                        .map_or(0, |t| t.elapsed().as_millis() as u64);
                    match self.live.as_ref().and_then(|l| l.rows.get(&plan.run_name)) {
                        Some(row) => row.set_message(text::live_row(&plan.run_name, &what)),
                        None => self.line(&text::phase_line(&plan.run_name, &what, ms, elapsed)),
                    }
                }
            }
            Event::CaseEnded { plan, result, .. } => {
                self.done += 1;
                if let Some(live) = &mut self.live {
                    if let Some(row) = live.rows.remove(&plan.run_name) {
                        row.finish_and_clear();
                    }
                    live.counter.inc(1);
                }
                self.line(&text::case_line(result));
            }
            Event::RunEnded { run_dir, results } if self.summary => {
                if let Some(live) = self.live.take() {
                    live.counter.finish_and_clear();
                }
                println!("{}", text::table(results));
                println!("{}", text::summary(results));
                if let Some(f) = text::findings(results) {
                    println!("{f}");
                }
                for flaky in text::flaky(results) {
                    println!("FLAKY {flaky}");
                }
                println!("results in {}", run_dir.display());
            }
            _ => {}
        }
        Ok(())
    }
}
