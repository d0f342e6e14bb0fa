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

/// Ctrl-C removes the running cases' disks and says where the results so far are.
fn on_interrupt(run_dir: &Path) -> anyhow::Result<()> {
    let results = run_dir.to_path_buf();
    crate::run::interrupt::install(move |removed| {
        eprintln!(
            "\ninterrupted: removed the disk images of {removed} running case(s); results so far in {}",
            results.display()
        );
    })
}
