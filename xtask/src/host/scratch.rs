//! Temporary directories that a signal must not leave behind. A `TempDir` removes itself
//! when dropped, but a run stopped by SIGINT or SIGTERM ends with `process::exit`, which
//! drops nothing: what is registered here is removed by the signal handler on the way out.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Registers `dir` until the guard drops (keep the guard beside the `TempDir`).
pub fn register(dir: &Path) -> Registered {
    LIVE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(dir.to_path_buf());
    Registered(dir.to_path_buf())
}

/// Removes every registered directory; the signal handler's last act before exiting.
pub fn remove_all() {
    for d in std::mem::take(&mut *LIVE.lock().unwrap_or_else(|e| e.into_inner())) {
        let _ = std::fs::remove_dir_all(d);
    }
}

pub struct Registered(PathBuf);

impl Drop for Registered {
    fn drop(&mut self) {
        LIVE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|d| d != &self.0);
    }
}
