//! The last lines of the consoles each case left: what the JUnit and HTML reports show
//! beside a verdict. A result names its directory under the run's, so a report written
//! later (`report merge`) finds the same consoles as one written when the run ended.

use crate::result::CaseResult;
use std::path::Path;

/// Lines of each console kept.
const CONSOLE_TAIL: usize = 40;

/// Each result's consoles' tails, in the results' order ("" where a case left none).
pub fn console_tails(run_dir: &Path, results: &[CaseResult]) -> Vec<String> {
    results
        .iter()
        .map(|r| console_tail(&run_dir.join(r.dir_name())))
        .collect()
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
