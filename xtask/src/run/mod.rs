//! The scheduler: plans in, events out. Cases run on as many threads as the cores hold;
//! each announces what it does as events, and the run ends with every result. Nothing here
//! prints or writes a result file: the reporters do, from the events.

mod case;
mod disks;
pub mod interrupt;

pub use case::{console_logs, replay_command, run_case};

use crate::bench::Bench;
use crate::case::Plan;
use crate::host::Accel;
use crate::result::events::{Event, Events};
use crate::result::CaseResult;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs `plans`, `jobs` at a time, into `run_dir` (a directory per plan): announces the
/// run, each case, and the end of the run with every result in the order of the plans.
pub fn run_plans(
    bench: &Bench,
    plans: &[Plan],
    run_dir: &Path,
    jobs: usize,
    events: &Events,
) -> anyhow::Result<Vec<CaseResult>> {
    events.emit(&Event::RunStarted {
        bench,
        run_dir,
        plans,
        jobs,
    })?;
    let next = AtomicUsize::new(0);
    let (tx, rx) = std::sync::mpsc::channel();
    let results = std::thread::scope(|s| {
        for _ in 0..jobs.min(plans.len()) {
            let tx = tx.clone();
            let next = &next;
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(plan) = plans.get(i) else { break };
                let dir = run_dir.join(&plan.run_name);
                // A bug of the bench in one case must not take the others down with it.
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run_case(bench, plan, &dir, events)
                }))
                .unwrap_or_else(|panic| {
                    let r = case::panicked(bench, plan, &panic);
                    let _ = events.emit(&Event::CaseEnded {
                        plan,
                        dir: &dir,
                        result: &r,
                    });
                    r
                });
                if tx.send((i, r)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut results: Vec<(usize, CaseResult)> = rx.into_iter().collect();
        results.sort_by_key(|(i, _)| *i);
        results.into_iter().map(|(_, r)| r).collect::<Vec<_>>()
    });
    events.emit(&Event::RunEnded {
        run_dir,
        results: &results,
    })?;
    Ok(results)
}

/// The case directories of a run: those holding a `result.json`, directly under
/// `run_dir` or, in a run of several kernels, under a kernel's directory.
pub fn case_dirs(run_dir: &Path) -> Vec<std::path::PathBuf> {
    dirs_holding(run_dir, "result.json")
}

/// The directories of a run holding `file`, laid out as [`case_dirs`] finds them:
/// `plan.json` finds every case that started, with a result yet or not.
pub fn dirs_holding(run_dir: &Path, file: &str) -> Vec<std::path::PathBuf> {
    let children = |dir: &Path| {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        v.sort();
        v
    };
    let mut out = Vec::new();
    for child in children(run_dir) {
        if child.join(file).is_file() {
            out.push(child);
        } else {
            out.extend(
                children(&child)
                    .into_iter()
                    .filter(|c| c.join(file).is_file()),
            );
        }
    }
    out
}

/// The directory of one kernel's cases in a run of several: its release and the start
/// of its image's hash (a patched kernel often has its base's release).
pub fn kernel_dir_name(kernel: &crate::kernel::KernelInfo) -> String {
    let sha = kernel.vmlinuz_sha256.get(..8).unwrap_or("unknown");
    format!("{}-{sha}", kernel.release.replace('/', "_"))
}

/// As many VMs as the cores hold without slowing one down: under TCG a guest with
/// several vCPUs runs them on one host thread (see `vm::qemu::accel_args`), under KVM
/// each vCPU takes a core. Under TCG one more than the cores: a case's guest idles for
/// much of its time (md's daemon periods, the agent's round trips), and the default suite
/// on 2 cores took 4 min 44 s with 2 VMs (560 s of VM time), 3 min 12 s with 3 (570 s),
/// 2 min 40-48 s with 4 (604-640 s: the guests slowing down).
pub fn default_jobs(plans: &[Plan], accel: Accel) -> usize {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    match accel {
        Accel::Tcg => cores + 1,
        Accel::Kvm => {
            let widest = plans.iter().map(|p| p.vm.cpus as usize).max().unwrap_or(1);
            (cores / widest).max(1)
        }
    }
}
