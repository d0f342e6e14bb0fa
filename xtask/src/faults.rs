//! The kernel's fault injectors (Documentation/fault-injection/fault-injection.rst),
//! armed through debugfs on a debug kernel: failslab, fail_page_alloc and
//! fail_make_request, scoped to md's threads, the writers or every task.

use crate::case::{FailAttr, FailTasks, FaultSpec};
use crate::run::Failure;
use crate::scenario::Scenario;
use crate::vm::Vm;

/// Arms the injectors of `f` and marks md's threads when they are the target; returns the
/// shell preamble that marks the writers when they are (their threads inherit the mark).
pub fn arm(s: &mut Scenario, vm: &mut Vm, f: &FaultSpec) -> Result<String, Failure> {
    let tasks: Vec<FailTasks> = [&f.failslab, &f.fail_page_alloc]
        .into_iter()
        .flatten()
        .map(|a| a.tasks)
        .collect();
    arm_knobs(s, vm, f)?;
    if tasks.contains(&FailTasks::Md) {
        s.sh(
            vm,
            "for p in /proc/[0-9]*; do case $(cat $p/comm 2>/dev/null) in md[0-9]*_*) echo 1 > $p/make-it-fail;; esac; done",
            10,
        )?;
    }
    Ok(if tasks.contains(&FailTasks::Writers) {
        // Inherited by the writer threads from their first allocation on (the case's
        // `space` spares their start).
        "echo 1 > /proc/self/make-it-fail && ".to_string()
    } else {
        String::new()
    })
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
            a.space.0,
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
