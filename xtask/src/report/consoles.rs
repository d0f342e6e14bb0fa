//! The case directories of a run, noted as the cases end, and the last lines of the
//! consoles each case left: what the JUnit and HTML reports show beside a verdict.

use crate::result::events::Event;
use crate::result::CaseResult;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Lines of each console kept.
const CONSOLE_TAIL: usize = 40;

#[derive(Default)]
pub struct CaseDirs {
    /// Each case's directory, by name and seed.
    dirs: BTreeMap<(String, u64), PathBuf>,
}

impl CaseDirs {
    pub fn note(&mut self, event: &Event) {
        if let Event::CaseEnded { dir, result, .. } = event {
            self.dirs
                .insert((result.case.clone(), result.seed), dir.to_path_buf());
        }
    }

    pub fn dir(&self, r: &CaseResult) -> Option<&Path> {
        self.dirs
            .get(&(r.case.clone(), r.seed))
            .map(|d| d.as_path())
    }

    /// Each result's consoles' tails, in the results' order.
    pub fn console_tails(&self, results: &[CaseResult]) -> Vec<String> {
        results
            .iter()
            .map(|r| self.dir(r).map(console_tail).unwrap_or_default())
            .collect()
    }
}

/// The last lines of every console a case left, boot by boot.
pub fn console_tail(dir: &Path) -> String {
    let mut out = String::new();
    for log in crate::run::console_logs(dir) {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(CONSOLE_TAIL);
        out.push_str(&format!(
            "==> {} <==\n",
            log.file_name().unwrap_or_default().to_string_lossy()
        ));
        for l in &lines[from..] {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}
