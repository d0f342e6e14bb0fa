//! The result files of a run, written from the runner's events: per case `plan.json` when
//! it starts and `result.json` after everything it does (so a case that dies later loses
//! nothing), per run the kernel's config and build log and `summary.json`.

use crate::bench::Bench;
use crate::result::events::{Event, Reporter};
use crate::result::json::write_json;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Writes the result files where the events say.
pub struct ResultFiles;

impl Reporter for ResultFiles {
    fn report(&mut self, event: &Event) -> Result<()> {
        if crate::run::interrupt::stopping() {
            return Ok(());
        }
        match event {
            Event::RunStarted { bench, run_dir, .. } => keep_kernel_files(bench, run_dir),
            Event::CaseStarted { plan, dir } => write_json(&dir.join("plan.json"), plan),
            Event::CaseProgress { dir, result, .. } | Event::CaseEnded { dir, result, .. } => {
                write_json(&dir.join("result.json"), result)
            }
            Event::RunEnded { run_dir, results } => {
                write_json(&run_dir.join("summary.json"), results)
            }
        }
    }
}

/// The kernel's config and, for a kernel the bench built, its whole build log, beside the
/// results they explain (`kernel.config`, `kernel-build.log`).
fn keep_kernel_files(bench: &Bench, run_dir: &Path) -> Result<()> {
    for (from, to) in [
        (&bench.kernel.config, "kernel.config"),
        (&bench.kernel.build_log, "kernel-build.log"),
    ] {
        if let Some(from) = from {
            std::fs::copy(from, run_dir.join(to))
                .with_context(|| format!("copy {}", from.display()))?;
        }
    }
    Ok(())
}

/// A new directory under `root` named for the time the run started.
pub fn new_run_dir(root: &Path) -> Result<PathBuf> {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(':', "-");
    for n in 0.. {
        let dir = root.join(if n == 0 {
            stamp.clone()
        } else {
            format!("{stamp}.{n}")
        });
        match std::fs::create_dir_all(root).and_then(|_| std::fs::create_dir(&dir)) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("create {}", dir.display())),
        }
    }
    unreachable!()
}
