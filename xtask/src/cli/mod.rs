//! One file per subcommand of `cargo xtask`: each takes its arguments (parsed in
//! `main.rs`), ties the stages together and prints what the subcommand prints. The
//! returned number is the exit status (`result::exit`).

pub mod bench;
pub mod compare;
pub mod examine;
pub mod exec;
pub mod kernel_build;
pub mod power_loss;
pub mod report;
pub mod run;
pub mod setup;

use crate::report::files::ResultFiles;
use crate::report::html::HtmlFile;
use crate::report::junit::JunitFile;
use crate::report::ktap::Ktap;
use crate::result::events::{Events, Reporter};
use std::path::Path;

/// The reporters of a run: the result files first (JSON, KTAP, JUnit, HTML), so that what the
/// terminal shows is already on disk, then `screen`.
fn reporters(screen: Box<dyn Reporter>) -> Events {
    Events::new(vec![
        Box::<ResultFiles>::default(),
        Box::new(Ktap::file()),
        Box::<JunitFile>::default(),
        Box::<HtmlFile>::default(),
        screen,
    ])
}

/// The run directory an interrupt names, once there is one.
static RESULTS: std::sync::Mutex<Option<std::path::PathBuf>> = std::sync::Mutex::new(None);

/// Ctrl-C and SIGTERM, from a run's first moment (a kernel build included): the running
/// cases' disks and every registered temporary directory (a partial cache entry) go, and
/// the message says where the results so far are.
fn on_interrupt() -> anyhow::Result<()> {
    crate::run::interrupt::install(move |removed| {
        match RESULTS.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            Some(results) => eprintln!(
                "\ninterrupted: removed the disk images of {removed} running case(s); results so far in {}",
                results.display()
            ),
            None => eprintln!("\ninterrupted before any case ran; nothing left behind"),
        }
    })
}

/// Where the results of the run so far are, for the interrupt's message.
fn results_in(run_dir: &Path) {
    *RESULTS.lock().unwrap_or_else(|e| e.into_inner()) = Some(run_dir.to_path_buf());
}
