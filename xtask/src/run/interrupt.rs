//! Ctrl-C during a run: the disk images of the cases in flight (hundreds of MiB each) go,
//! the results already written stay, and the exit status says the run was cut short.
//! QEMU needs nothing here: every VM dies with the bench (`PR_SET_PDEATHSIG`).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

static IN_FLIGHT: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Exit status of a run stopped by SIGINT (128 + 2, as a shell reports it).
pub const INTERRUPTED: i32 = 130;

/// Installs the handler once for this process: it removes the disk directories in
/// flight, tells `removed` how many it removed (the caller says so where it prints), and
/// exits with [`INTERRUPTED`].
pub fn install(removed: impl Fn(usize) + Send + 'static) -> anyhow::Result<()> {
    ctrlc::set_handler(move || {
        let dirs = std::mem::take(&mut *IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner()));
        for d in &dirs {
            let _ = std::fs::remove_dir_all(d);
        }
        removed(dirs.len());
        std::process::exit(INTERRUPTED);
    })
    .map_err(|e| anyhow::anyhow!("install the Ctrl-C handler: {e}"))
}

/// Marks a case's disk directory as in flight until the guard drops.
pub fn track(dir: &Path) -> Tracked {
    IN_FLIGHT
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(dir.to_path_buf());
    Tracked(dir.to_path_buf())
}

pub struct Tracked(PathBuf);

impl Drop for Tracked {
    fn drop(&mut self) {
        IN_FLIGHT
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|d| d != &self.0);
    }
}
