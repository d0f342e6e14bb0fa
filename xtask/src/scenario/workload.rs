//! The load a scenario puts on the array: the seeded writers and the memory pressure they
//! run under (the moment to crash them is `kill_point`).

use super::{Scenario, MNT};
use crate::case::{CrashSpec, PressureSpec, WorkloadSpec};
use crate::check;
use crate::result::Failure;
use crate::vm::{guest, Vm};
use std::time::Duration;

pub const WORKLOAD_PID: &str = "/tmp/workload.pid";
/// The memory cgroup the writers (and a case's dirtier) run in.
pub const WRITERS_CGROUP: &str = "/sys/fs/cgroup/writers";

impl Scenario<'_, '_> {
    /// Starts the seeded writer on md0 in the background after `preamble` (shell
    /// commands, each ending in `&& `); its pid lands in
    /// [`WORKLOAD_PID`], and the agent's spawn id is returned for reaping it.
    pub fn spawn_workload(
        &mut self,
        vm: &mut Vm,
        w: &WorkloadSpec,
        preamble: &str,
    ) -> Result<u32, Failure> {
        let span = self.md_size(vm)?;
        let span = w.span.map_or(span, |limit| span.min(limit.0));
        let workload = agent::workload::Workload {
            dev: "/dev/md0".into(),
            seed: self.plan.seed,
            writers: w.writers,
            min_io: w.min_io.0,
            max_io: w.max_io.0,
            span,
            direct: w.direct,
        };
        // The shell runs the preamble first (join a cgroup, mark itself for fault
        // injection), so the writers it execs inherit what it set.
        // The writers are the case's instrument: a memory limit squeezes md through them,
        // and the OOM killer must take the case's dirtier, never them (seen: a memcg OOM
        // in the pressure case killed the writers, and the kill point never came).
        let cmd = format!(
            "echo -1000 > /proc/self/oom_score_adj; {preamble}echo $$ > {WORKLOAD_PID}; exec /usr/bin/agent workload {}",
            agent::workload::args(&workload)
        );
        self.sh(vm, &format!("rm -f {WORKLOAD_PID}"), 10)?;
        let id = guest::spawn(vm, &cmd).map_err(Failure::Bench)?;
        // The spawn returns before the shell runs: what signals the writers next needs
        // their pid on file.
        guest::poll_until(
            vm,
            &format!("test -s {WORKLOAD_PID}"),
            &[],
            Duration::from_secs(30),
        )
        .map_err(|e| Failure::Bench(e.context("the workload's pid file")))?;
        Ok(id)
    }

    /// SIGTERM to the writers, then reaps them through the agent.
    pub fn stop_workload(&self, vm: &mut Vm, id: u32) -> Result<(), Failure> {
        self.sh(vm, &format!("kill -TERM $(cat {WORKLOAD_PID})"), 10)?;
        match guest::wait(vm, id, Duration::from_secs(60)).map_err(Failure::Bench)? {
            Some(_) => Ok(()),
            None => Err(self.stalled(vm, "the workload did not end within 60 s of SIGTERM".into())),
        }
    }

    /// The writers' cgroup's `memory.events` and `memory.pressure`.
    pub fn pressure_readings(&self, vm: &mut Vm) -> Result<(String, String), Failure> {
        let cg = WRITERS_CGROUP;
        let events = self.sh(vm, &format!("cat {cg}/memory.events"), 10)?;
        let psi = self.sh(vm, &format!("cat {cg}/memory.pressure"), 10)?;
        Ok((events, psi))
    }

    /// Under a case's memory pressure, whether the writers' cgroup has met it yet: a
    /// crash before that (a slow guest, a slow dirtier) would prove nothing about it.
    pub(super) fn pressure_ok(&self, vm: &mut Vm, crash: &CrashSpec) -> Result<bool, Failure> {
        if crash.pressure.is_none() {
            return Ok(true);
        }
        let (events, psi) = self.pressure_readings(vm)?;
        Ok(check::pressure_reached(&events, &psi).ok)
    }

    /// Makes the writers' cgroup with the case's limits, raises the dirty ratios and starts
    /// the dirtier on the bitmap's filesystem inside it.
    pub fn start_pressure(&mut self, vm: &mut Vm, p: &PressureSpec) -> Result<(), Failure> {
        let cg = WRITERS_CGROUP;
        let mut setup = format!(
            "echo +memory > /sys/fs/cgroup/cgroup.subtree_control && mkdir -p {cg} && echo {} > /proc/sys/vm/dirty_ratio && echo {} > /proc/sys/vm/dirty_background_ratio",
            p.dirty_ratio, p.dirty_background_ratio
        );
        if let Some(m) = p.memory_max {
            setup.push_str(&format!(" && echo {} > {cg}/memory.max", m.0));
        }
        if let Some(m) = p.memory_high {
            setup.push_str(&format!(" && echo {} > {cg}/memory.high", m.0));
        }
        self.sh(vm, &setup, 10)?;
        if let Some(r) = p.reclaim {
            let cmd = format!(
                "while :; do echo {} > {cg}/memory.reclaim 2>/dev/null; usleep 100000; done", // paces the loop, not a wait: no deadline, it dies with the crash
                r.0
            );
            guest::spawn(vm, &cmd).map_err(Failure::Bench)?;
        }
        if let Some(h) = p.hog {
            // busybox tail keeps the last N bytes of an endless stream: N bytes held and
            // touched over and over, outside the writers' cgroup.
            guest::spawn(vm, &format!("exec tail -c {} /dev/zero", h.0)).map_err(Failure::Bench)?;
        }
        if let Some(size) = p.dirtier {
            let cmd = format!("echo $$ > {cg}/cgroup.procs && exec dd if=/dev/zero of={MNT}/dirt bs=1M count={} 2>/dev/null", size.0 >> 20);
            guest::spawn(vm, &cmd).map_err(Failure::Bench)?;
        }
        Ok(())
    }
}
