//! What a person sees on the terminal: the kernel a run boots, a line per case as it ends,
//! and at the end the table, the summary and the flaky cases.

use super::text;
use crate::result::events::{Event, Reporter};
use anyhow::Result;

pub struct Terminal {
    /// Put before every line of a case (`base`, `patched`), and in the kernel's line.
    label: Option<String>,
    /// The table, summary and flaky cases at the run's end.
    summary: bool,
}

impl Terminal {
    /// The terminal of `cargo xtask run`.
    pub fn run() -> Self {
        Self {
            label: None,
            summary: true,
        }
    }

    /// One side of a comparison: its lines labelled, no summary of its own.
    pub fn side(label: &str) -> Self {
        Self {
            label: Some(label.to_string()),
            summary: false,
        }
    }
}

impl Reporter for Terminal {
    fn report(&mut self, event: &Event) -> Result<()> {
        match event {
            Event::RunStarted { bench, .. } => match &self.label {
                None => eprintln!("{}", text::kernel_line(bench)),
                Some(label) => eprintln!(
                    "{label}: kernel {} ({})",
                    bench.kernel.info.release, bench.kernel.info.source
                ),
            },
            Event::CaseEnded { result, .. } => match &self.label {
                None => println!("{}", text::case_line(result)),
                Some(label) => println!("{label:<8} {}", text::case_line(result)),
            },
            Event::RunEnded { run_dir, results } if self.summary => {
                println!("{}", text::table(results));
                println!("{}", text::summary(results));
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
