//! The verdicts, each a pure function of readings taken from the disk images, the guest
//! and the traces, returning its figures with it. Pure so that a test can break each
//! condition on purpose and see the check fail.

mod assembly;
mod crash;
mod examination;
mod kernel_log;
mod lie;
mod load;
mod power_loss;

pub use assembly::*;
pub use crash::*;
pub use examination::*;
pub use kernel_log::*;
pub use lie::*;
pub use load::*;
pub use power_loss::*;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    pub name: Cow<'static, str>,
    pub ok: bool,
    pub summary: String,
    pub figures: Value,
}

/// The checks that judge the run, not the kernel: that the crash left something to
/// judge, that the pressure the case asked for was met, that the injectors fired, that
/// the guest saw the disks a power-loss model assumes, that there were crash states, that
/// a violation the model found is real, that a wait's state came (without blocked tasks
/// to blame the kernel for its absence). One of
/// them failing means the case could not judge the kernel (an ERROR), never that the
/// kernel broke a rule (a FAIL).
pub const PRECONDITIONS: [&str; 7] = [
    "crash_left_divergence",
    "awaited_state_reached",
    "pressure_reached",
    "faults_injected",
    "write_cache_as_modelled",
    "crash_states_judged",
    "power_loss_confirmed",
];

impl Check {
    pub fn is_precondition(&self) -> bool {
        PRECONDITIONS.contains(&self.name.as_ref())
    }
}

/// Chunk numbers as compact ranges (`3-7, 12`), for messages.
pub fn ranges(chunks: impl IntoIterator<Item = u64>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut it = chunks.into_iter().peekable();
    while let Some(start) = it.next() {
        let mut end = start;
        while it.peek() == Some(&(end + 1)) {
            end = it.next().unwrap();
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn ranges_are_compact() {
        assert_eq!(super::ranges([1, 2, 3, 7, 9, 10]), "1-3, 7, 9-10");
    }
}
