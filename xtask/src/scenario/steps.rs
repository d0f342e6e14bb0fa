//! A case's own steps (`steps:` in its file), run in one VM in order: each a command that
//! must exit as the case expects, or one polled until it succeeds.

use crate::bench::Bench;
use crate::case::{Plan, Step};
use crate::result::record::Record;
use crate::result::{Failure, StepRecord};
use crate::vm::{guest, Disk, Vm};
use std::path::Path;
use std::time::{Duration, Instant};

pub fn run(
    bench: &Bench,
    plan: &Plan,
    case_dir: &Path,
    disks: Vec<Disk>,
    rec: &mut Record,
) -> Result<(), Failure> {
    let deadline = Instant::now() + plan.vm.timeout;
    let cfg = bench.vm_config(
        plan.vm.memory.0 >> 20,
        plan.vm.cpus,
        disks,
        case_dir.join("console.log"),
    );
    let mut vm = bench
        .boot(&cfg)
        .map_err(|e| super::boot_failure("boot", e))?;
    rec.booted(vm.boot, vm.guest_uptime_ms);
    let env = plan.env();
    for (index, step) in plan.steps.iter().enumerate() {
        let record = run_step(&mut vm, index, step, &env, deadline);
        let failed = (!record.ok).then(|| step_failure(&record, &vm));
        let broken = cannot_work(step, &record);
        rec.step(record);
        if let Some(why) = failed {
            // A command the shell could not run says nothing about the kernel.
            return Err(match broken {
                Some(what) => Failure::Bench(anyhow::anyhow!(
                    "{}: the case's command cannot work ({what}): {why}",
                    plan.file.display()
                )),
                None => Failure::Case(why),
            });
        }
    }
    vm.quit(Duration::from_secs(30))?;
    Ok(())
}

/// Why a failed step's command could not have worked whatever the kernel did: the shell
/// found no such command (127), could not execute it (126), or could not parse it
/// (busybox sh: exit 2, `syntax error`). A case that expects that status means it.
fn cannot_work(step: &Step, r: &StepRecord) -> Option<&'static str> {
    let expected = match step {
        Step::Run(run) => Some(run.expect_status),
        Step::WaitFor(_) => None,
    };
    if r.ok || r.status.is_none() || r.status == expected {
        return None;
    }
    match r.status? {
        127 => Some("exit 127: command not found"),
        126 => Some("exit 126: command not executable"),
        2 if r.stderr.contains("syntax error") => Some("a shell syntax error"),
        _ => None,
    }
}

fn step_failure(r: &StepRecord, vm: &Vm) -> String {
    let mut why = format!("step {} ({} `{}`): ", r.index, r.kind, r.cmd);
    match (&r.error, r.status) {
        (Some(e), _) => why.push_str(e),
        (None, Some(s)) => why.push_str(&format!("exit status {s}")),
        (None, None) => why.push_str("killed"),
    }
    for (name, text) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
        if !text.trim().is_empty() {
            why.push_str(&format!("\n{name}:\n{}", excerpt(text.trim_end())));
        }
    }
    why.push_str(&format!("\nconsole:\n{}", vm.console_tail(15).trim_end()));
    why
}

fn run_step(
    vm: &mut Vm,
    index: usize,
    step: &Step,
    env: &[(String, String)],
    deadline: Instant,
) -> StepRecord {
    let started = Instant::now();
    let (kind, cmd) = match step {
        Step::Run(r) => ("run", r.cmd.clone()),
        Step::WaitFor(w) => ("wait_for", w.cmd.clone()),
    };
    let mut rec = StepRecord {
        index,
        kind: kind.into(),
        cmd,
        ok: false,
        elapsed_ms: 0,
        status: None,
        stdout: String::new(),
        stderr: String::new(),
        error: None,
    };
    let left = deadline.saturating_duration_since(Instant::now());
    match step {
        Step::Run(r) => {
            match guest::run(vm, &r.cmd, env, r.timeout.min(left)) {
                Ok(out) => {
                    rec.status = out.status;
                    rec.ok = !out.timed_out && out.status == Some(r.expect_status);
                    if out.timed_out {
                        rec.error = Some(if r.timeout <= left {
                            format!("still running after its timeout of {:?}", r.timeout)
                        } else {
                            "still running at the case's deadline".into()
                        });
                    } else if rec.ok {
                        if let Some(re) = r.expect_stdout.iter().find(|re| {
                            !regex::Regex::new(re).is_ok_and(|re| re.is_match(&out.stdout))
                        }) {
                            rec.ok = false;
                            rec.error = Some(format!("stdout does not match {re:?}"));
                        }
                    } else if out.status.is_some() && r.expect_status != 0 {
                        rec.error = Some(format!(
                            "exit status {:?}, expected {}",
                            out.status, r.expect_status
                        ));
                    }
                    rec.stdout = out.stdout;
                    rec.stderr = out.stderr;
                }
                Err(e) => rec.error = Some(format!("{e:#}")),
            }
        }
        Step::WaitFor(w) => {
            let limit = w.timeout.min(left);
            let mut last = None;
            match guest::poll_until_showing(vm, &w.cmd, env, limit, &mut |out| {
                last = Some((out.status, out.stderr.clone()))
            }) {
                Ok(out) => {
                    rec.ok = true;
                    rec.status = out.status;
                    rec.stdout = out.stdout;
                }
                Err(e) => {
                    rec.error = Some(format!("{e:#}"));
                    // What the last try said, to tell a command that cannot work.
                    if let Some((status, stderr)) = last {
                        rec.status = status;
                        rec.stderr = stderr;
                    }
                }
            }
        }
    }
    rec.elapsed_ms = started.elapsed().as_millis() as u64;
    rec
}

pub fn excerpt(text: &str) -> String {
    text.lines()
        .take(12)
        .map(|l| format!("  | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
