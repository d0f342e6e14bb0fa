//! Ctrl-C, or the SIGTERM a CI runner sends on cancel and timeout, during a run: the disk
//! images of the cases in flight (hundreds of MiB each) go, their `result.json` says
//! `interrupted` instead of `running`, the results already written stay, and the exit
//! status says the run was cut short (128 + the signal, as a shell reports it). QEMU needs
//! nothing here: every VM dies with the bench (`PR_SET_PDEATHSIG`).

use signal_hook::consts::{SIGINT, SIGTERM};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// A case in flight: its directory and its disks' directory within it.
struct InFlight {
    case_dir: PathBuf,
    disks: PathBuf,
}

static IN_FLIGHT: Mutex<Vec<InFlight>> = Mutex::new(Vec::new());

/// Set once a signal came: result files are no longer written, so that none overwrites an
/// `interrupted` mark on the way out.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Whether the run is being stopped by a signal.
pub fn stopping() -> bool {
    STOPPING.load(Ordering::SeqCst)
}

/// Where the main thread ends while a signal is being handled: the handler exits with
/// 128 + the signal once it has cleaned up, so the main thread must not exit first with
/// the error its own work met on the way (a wait for a child the handler reaped gets
/// ECHILD, a directory it removed is missing) and turn an interruption into an ERROR.
pub fn yield_to_handler() {
    while stopping() {
        std::thread::park();
    }
}

/// Exit status of a run stopped by SIGINT.
pub const INTERRUPTED: i32 = 128 + SIGINT;
/// Exit status of a run stopped by SIGTERM.
pub const TERMINATED: i32 = 128 + SIGTERM;

/// Installs the handler once for this process: on SIGINT or SIGTERM it removes the disk
/// directories in flight, marks their cases interrupted, tells `removed` how many (the
/// caller says so where it prints), and exits with 128 + the signal.
pub fn install(removed: impl Fn(usize) + Send + 'static) -> anyhow::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .map_err(|e| anyhow::anyhow!("install the SIGINT/SIGTERM handler: {e}"))?;
    std::thread::Builder::new()
        .name("interrupt".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                STOPPING.store(true, Ordering::SeqCst);
                let cases =
                    std::mem::take(&mut *IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner()));
                for c in &cases {
                    let _ = std::fs::remove_dir_all(&c.disks);
                    mark_interrupted(&c.case_dir);
                }
                crate::host::scratch::remove_all();
                removed(cases.len());
                std::process::exit(128 + signal);
            }
        })?;
    Ok(())
}

/// What a SIGKILLed run left in `results`, swept by the next run: every run directory
/// whose owner is gone (`host::owner::OWNER_FILE`) gets its running cases marked
/// `interrupted` and their disk images removed. Returns the cases swept.
pub fn sweep_killed_runs(results: &Path) -> usize {
    let mut swept = 0;
    for run in std::fs::read_dir(results).into_iter().flatten().flatten() {
        let owner_file = run.path().join(crate::host::owner::OWNER_FILE);
        let Ok(owner) = std::fs::read_to_string(&owner_file) else {
            continue;
        };
        if crate::host::owner::alive(&owner) {
            continue;
        }
        // Every case that started: one killed before its first result has a plan only.
        for case in super::dirs_holding(&run.path(), "plan.json") {
            let result = case.join("result.json");
            // No result yet: killed after its disks were made and before its first phase
            // ended, when the first `result.json` is written.
            let running = match std::fs::read(&result) {
                Err(_) => true,
                Ok(t) => serde_json::from_slice::<serde_json::Value>(&t)
                    .is_ok_and(|v| v["verdict"] == "running"),
            };
            if !running {
                continue;
            }
            for d in std::fs::read_dir(&case).into_iter().flatten().flatten() {
                if d.file_name().to_string_lossy().starts_with("disks-") {
                    let _ = std::fs::remove_dir_all(d.path());
                }
            }
            mark(
                &case,
                &format!(
                    "the run was killed (its process, {}, is gone); swept by a later run",
                    owner.split_whitespace().next().unwrap_or("?")
                ),
            );
            swept += 1;
        }
        let _ = std::fs::remove_file(&owner_file);
    }
    swept
}

/// Rewrites a case's `result.json` (if it has one) with the verdict `interrupted`, whole
/// or not at all.
fn mark_interrupted(case_dir: &Path) {
    mark(case_dir, "the run was interrupted (SIGINT or SIGTERM)");
}

fn mark(case_dir: &Path, reason: &str) {
    let path = case_dir.join("result.json");
    let Ok(text) = std::fs::read(&path) else {
        return;
    };
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&text) else {
        return;
    };
    value["verdict"] = "interrupted".into();
    value["reason"] = reason.into();
    let _ = crate::result::json::write_json(&path, &value);
}

/// Marks a case's disk directory as in flight until the guard drops.
pub fn track(case_dir: &Path, disks: &Path) -> Tracked {
    IN_FLIGHT
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(InFlight {
            case_dir: case_dir.to_path_buf(),
            disks: disks.to_path_buf(),
        });
    Tracked(disks.to_path_buf())
}

pub struct Tracked(PathBuf);

impl Drop for Tracked {
    fn drop(&mut self) {
        IN_FLIGHT
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|d| d.disks != self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_run_s_disks_are_swept_whether_or_not_its_case_wrote_a_result_yet() {
        let results = tempfile::tempdir().unwrap();
        let run = results.path().join("2026-12-07T00-00-00Z");
        let early = run.join("smoke");
        let later = run.join("raid1-file-bitmap-crash");
        let done = run.join("raid1-internal-bitmap-crash");
        for case in [&early, &later, &done] {
            std::fs::create_dir_all(case.join("disks-abc")).unwrap();
            std::fs::write(case.join("plan.json"), "{}").unwrap();
        }
        std::fs::write(later.join("result.json"), r#"{"verdict": "running"}"#).unwrap();
        std::fs::write(
            done.join("result.json"),
            r#"{"verdict": "fail", "kept_disks": "x"}"#,
        )
        .unwrap();
        // A pid no process has.
        std::fs::write(run.join(crate::host::owner::OWNER_FILE), "4194303 1").unwrap();
        assert_eq!(sweep_killed_runs(results.path()), 2);
        assert!(
            !early.join("disks-abc").exists(),
            "killed before its first result"
        );
        assert!(!later.join("disks-abc").exists());
        assert!(
            done.join("disks-abc").exists(),
            "a finished case keeps what it kept"
        );
        let marked: serde_json::Value =
            serde_json::from_slice(&std::fs::read(later.join("result.json")).unwrap()).unwrap();
        assert_eq!(marked["verdict"], "interrupted");
    }
}
