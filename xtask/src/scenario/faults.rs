//! The kernel's fault injectors (Documentation/fault-injection/fault-injection.rst),
//! armed through debugfs on a debug kernel: failslab, fail_page_alloc and
//! fail_make_request, scoped to md's threads, the writers or every task.

use super::Scenario;
use crate::case::{FailAttr, FailTasks, FaultPhase, FaultSpec};
use crate::result::Failure;
use crate::vm::Vm;

/// Arms the injectors of `f` and marks md's threads when they are the target; returns the
/// shell preamble that marks the writers when they are (their threads inherit the mark).
pub fn arm(s: &mut Scenario, vm: &mut Vm, f: &FaultSpec) -> Result<String, Failure> {
    let tasks = tasks(f);
    arm_knobs(s, vm, f)?;
    if tasks.contains(&FailTasks::Md) {
        mark_md(s, vm, 1, f.during)?;
    }
    Ok(if tasks.contains(&FailTasks::Writers) {
        // Inherited by the writer threads from their first allocation on (the case's
        // `space` spares their start).
        "echo 1 > /proc/self/make-it-fail && ".to_string()
    } else {
        String::new()
    })
}

/// Stops every injector of `f` and unmarks the tasks `arm` marked: what follows (the
/// checks' own reads and writes) must not fail.
pub fn disarm(s: &mut Scenario, vm: &mut Vm, f: &FaultSpec) -> Result<(), Failure> {
    let dbg = "/sys/kernel/debug";
    let mut cmd = String::from("true");
    for (name, armed) in [
        ("failslab", f.failslab.is_some()),
        ("fail_page_alloc", f.fail_page_alloc.is_some()),
        ("fail_make_request", f.fail_make_request.is_some()),
    ] {
        if armed {
            cmd.push_str(&format!(" && echo 0 > {dbg}/{name}/probability"));
        }
    }
    s.sh(vm, &cmd, 10)?;
    if tasks(f).contains(&FailTasks::Md) {
        mark_md(s, vm, 0, f.during)?;
    }
    Ok(())
}

/// Records what is left of each armed injector's `space` budget and `times`: a run
/// that injected nothing shows whether the budget was never used up or no eligible
/// call came.
pub fn note_budget(s: &mut Scenario, vm: &mut Vm, f: &FaultSpec) -> Result<(), Failure> {
    for (name, armed) in [
        ("failslab", f.failslab.is_some()),
        ("fail_page_alloc", f.fail_page_alloc.is_some()),
    ] {
        if armed {
            let dir = format!("/sys/kernel/debug/{name}");
            let out = s.sh(vm, &format!("cat {dir}/space {dir}/times"), 10)?;
            let mut v = out.split_whitespace().map(|x| x.parse::<i64>().ok());
            s.note_figure(
                &format!("{name}_left_at_crash"),
                serde_json::json!({ "space": v.next().flatten(), "times": v.next().flatten() }),
            );
        }
    }
    Ok(())
}

/// Judges, in a running guest, that the injectors fired (`faults_injected`).
pub fn judge_injected(s: &mut Scenario, vm: &mut Vm) -> Result<(), Failure> {
    // The kernel's log, not the console file: the serial line may still be behind.
    let log = s.sh(vm, "dmesg", 10)?;
    s.add(crate::check::faults_injected(&log));
    Ok(())
}

fn tasks(f: &FaultSpec) -> Vec<FailTasks> {
    [&f.failslab, &f.fail_page_alloc]
        .into_iter()
        .flatten()
        .map(|a| a.tasks)
        .collect()
}

/// Sets `make-it-fail` on md's threads (`md0_raid1`, `md0_resync`...). Before an
/// assembly they do not exist yet: kthreadd is marked too, and every kernel thread it
/// forks while armed inherits the mark (md's, and any kworker born meanwhile: the
/// failures' stacks say whose allocation failed).
fn mark_md(s: &mut Scenario, vm: &mut Vm, on: u8, during: FaultPhase) -> Result<(), Failure> {
    let mut cmd = format!(
        "for p in /proc/[0-9]*; do case $(cat $p/comm 2>/dev/null) in md[0-9]*_*) echo {on} > $p/make-it-fail;; esac; done"
    );
    if during == FaultPhase::Resync {
        cmd.push_str(&format!("; echo {on} > /proc/2/make-it-fail"));
    }
    s.sh(vm, &cmd, 10)?;
    Ok(())
}

/// Disarms fail_make_request on `dev` (`/dev/vdb`): a later recovery must reach the disk.
pub fn disarm_request(s: &mut Scenario, vm: &mut Vm, dev: &str) -> Result<(), Failure> {
    let name = dev.trim_start_matches("/dev/");
    s.sh(vm, &format!("echo 0 > /sys/block/{name}/make-it-fail"), 10)?;
    Ok(())
}

/// Sets the injectors' debugfs knobs (Documentation/fault-injection/fault-injection.rst):
/// each prints a line and the stack per injected failure (`verbose=2`): the case counts
/// the lines, and the stacks show which allocation failed.
fn arm_knobs(s: &mut Scenario, vm: &mut Vm, f: &FaultSpec) -> Result<(), Failure> {
    let dbg = "/sys/kernel/debug";
    let mut cmd = format!("(grep -q ' {dbg} ' /proc/mounts || mount -t debugfs none {dbg})");
    let attr = |name: &str, a: &FailAttr| {
        let mut c = format!(
            " && cd {dbg}/{name} && echo {} > probability && echo {} > interval && echo {} > times && echo {} > space && echo 2 > verbose && echo {} > task-filter",
            a.probability,
            a.interval,
            a.times,
            space_units(name, a.space.0),
            if a.tasks == FailTasks::All { "N" } else { "Y" }
        );
        let gfp_wait = if a.fail_sleeping { "N" } else { "Y" };
        c.push_str(&format!(" && echo {gfp_wait} > ignore-gfp-wait"));
        if name == "fail_page_alloc" {
            c.push_str(&format!(" && echo {} > min-order", a.min_order));
        }
        if name == "failslab" && !a.caches.is_empty() {
            c.push_str(" && echo Y > cache-filter");
            for cache in &a.caches {
                c.push_str(&format!(" && echo 1 > /sys/kernel/slab/{cache}/failslab"));
            }
        }
        c
    };
    if let Some(a) = &f.failslab {
        cmd.push_str(&attr("failslab", a));
    }
    if let Some(a) = &f.fail_page_alloc {
        cmd.push_str(&attr("fail_page_alloc", a));
    }
    if let Some(r) = &f.fail_make_request {
        let dev = s.dev(&r.disk);
        let name = dev.trim_start_matches("/dev/");
        cmd.push_str(&format!(
            " && cd {dbg}/fail_make_request && echo {} > probability && echo {} > times && echo 2 > verbose && echo 1 > /sys/block/{name}/make-it-fail",
            r.probability, r.times
        ));
    }
    s.sh(vm, &cmd, 30)?;
    s.phase("arm fault injection");
    Ok(())
}

/// The `space` budget in the injector's own unit: should_fail_ex() is given the bytes of
/// a slab object or a bio, but fail_page_alloc gives it pages (`1 << order`), so bytes
/// written there would spare a 4096 times larger budget and, in practice, every failure.
fn space_units(injector: &str, bytes: u64) -> u64 {
    if injector == "fail_page_alloc" {
        bytes.div_ceil(GUEST_PAGE_SIZE)
    } else {
        bytes
    }
}

/// The guests are x86_64.
const GUEST_PAGE_SIZE: u64 = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_page_alloc_counts_its_budget_in_pages() {
        assert_eq!(space_units("fail_page_alloc", 1 << 20), 256);
        assert_eq!(space_units("fail_page_alloc", 1), 1);
        assert_eq!(space_units("failslab", 1 << 20), 1 << 20);
    }
}
