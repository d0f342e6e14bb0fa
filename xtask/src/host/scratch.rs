//! Temporary directories that a signal must not leave behind. A `TempDir` removes itself
//! when dropped, but a run stopped by SIGINT or SIGTERM ends with `process::exit`, which
//! drops nothing: what is registered here is removed by the signal handler on the way out.
//! The children that write into them (tar, make) are registered too and killed first, or
//! they would fill a directory while it is being removed.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Registers a child process until the guard drops (after the child was waited for).
pub fn register_child(pid: u32) -> RegisteredChild {
    CHILDREN.lock().unwrap_or_else(|e| e.into_inner()).push(pid);
    RegisteredChild(pid)
}

pub struct RegisteredChild(u32);

impl Drop for RegisteredChild {
    fn drop(&mut self) {
        CHILDREN
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|p| *p != self.0);
    }
}

/// Registers `dir` until the guard drops (keep the guard beside the `TempDir`).
pub fn register(dir: &Path) -> Registered {
    LIVE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(dir.to_path_buf());
    Registered(dir.to_path_buf())
}

/// Kills every registered child and waits for it, then removes every registered
/// directory; the signal handler's last act before exiting.
pub fn remove_all() {
    for pid in std::mem::take(&mut *CHILDREN.lock().unwrap_or_else(|e| e.into_inner())) {
        // SAFETY: plain system calls on a child of this process; reaping it here is fine,
        // the process exits right after.
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL);
            libc::waitpid(pid as i32, std::ptr::null_mut(), 0);
        }
    }
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
