//! The power-loss scenario: record every write of a load on every disk of the case, then
//! judge, host-side, every crash state a power cut could leave under the case's disk
//! model, and show the first violation in the guest.
//!
//! 1. Boot 1 settles the array (prepared or created) and stops it: the images are the
//!    recording's starting point, copied aside.
//! 2. Boot 2 puts every disk behind QEMU's `blklogwrites` (the data) and traces the
//!    guest's `block_rq_issue`/`block_rq_complete` (one order across disks), assembles,
//!    loads, lets the daemon clear the bits, and stops the trace.
//! 3. The host joins logs and trace (`powercut::recording`) and explores the crash states
//!    (`powercut::explore`).
//! 4. A violation is written out as images, booted, assembled and resynced by md: if the
//!    members still differ, the kernel lost the divergence (FAIL); if not, the model was
//!    wrong (ERROR).

use super::recorder;
use super::Scenario;
use crate::case::{DiskModel, PowerLossSpec};
use crate::check;
use crate::powercut::explore::{self, Bounds, Report};
use crate::powercut::files::{self, Loaded};
use crate::powercut::materialize;
use crate::powercut::recording::Recording;
use crate::powercut::view::DiskViews;
use crate::result::Failure;
use crate::vm::{guest, Disk, Vm};
use anyhow::Context;
use std::path::Path;
use std::time::Duration;

pub fn run(s: &mut Scenario, p: &PowerLossSpec) -> Result<(), Failure> {
    let (mut vm, settle) = s.boot_settled()?;
    s.note_figure("initial_bitmap_clean_after_ms", settle.as_millis() as u64);
    s.stop_array(&mut vm)?;
    vm.quit(Duration::from_secs(60)).map_err(Failure::Bench)?;
    s.phase("settle and stop");

    if !p.record {
        return unrecorded_load(s, p);
    }
    let recorded = s.recorded_disks();
    let bases = s.copy_bases(&recorded)?;
    let logged = s.logged_disks(&recorded, Some(p.model == DiskModel::VolatileCache))?;
    let mut vm = s.boot_with(2, logged)?;
    s.phase("boot 2 (recorded)");
    let devs = record_load(s, &mut vm, p, &recorded)?;
    vm.kill().map_err(Failure::Bench)?;
    s.phase("record");

    let files = s.write_recording(&recorded, &devs, &bases, false)?;
    let Loaded { rec, layout, bases } = files.load(s.case_dir).map_err(Failure::Bench)?;
    s.note_figure("recording", &rec.figures);
    let base_refs: Vec<&Path> = bases.iter().map(|b| b.as_path()).collect();
    let views = DiskViews::open(&rec, &base_refs).map_err(Failure::Bench)?;
    let bounds = Bounds {
        exact_up_to: p.exact_up_to,
        samples: p.samples,
        seed: s.plan.seed,
        remember: true,
    };
    let report = explore::explore(&rec, &views, &layout, p.model, bounds)
        .context("judge the crash states")
        .map_err(Failure::Bench)?;
    write_report(s, &report).map_err(Failure::Bench)?;
    if !report.violations.is_empty() {
        s.note_figure(
            "write_violation",
            format!(
                "cargo xtask power-loss write {} --violation N --out DIR  (N from 0 to {}; power-loss.json lists them)",
                s.case_dir.display(),
                report.violations.len() - 1
            ),
        );
    }
    s.note_figure("states_per_second", report.states_per_second.round() as u64);
    s.add(check::crash_states_judged(
        report.crash_points,
        report.states_checked,
        rec.figures.writes,
    ));
    s.phase("judge crash states");
    s.verdict()?;

    let summary = report_figures(&report);
    let Some(first) = report.violations.first() else {
        s.add(check::power_loss_safety(
            0,
            0,
            report.states_checked,
            None,
            summary,
        ));
        return s.verdict();
    };
    // The first state of each cause, booted and resynced in the guest: a state that
    // shows several causes is confirmed once, for its chunks of each.
    let mut states: Vec<&explore::Violation> = Vec::new();
    for v in report.first_by_cause.values() {
        if !states
            .iter()
            .any(|w| w.point == v.point && w.survivors == v.survivors)
        {
            states.push(v);
        }
    }
    let mut confirmed = Vec::new();
    for (i, v) in states.iter().enumerate() {
        let state_dir = bases[0]
            .parent()
            .expect("in the disks directory")
            .join(format!("state-{i}"));
        let outcome = confirm(s, &rec, &base_refs, p.model, v, &state_dir, i);
        // A state is every member whole (hundreds of MiB a state, three states a case ran
        // a run's disk full); the recording writes it again on demand (`cargo xtask
        // power-loss write`).
        let _ = std::fs::remove_dir_all(&state_dir);
        for (cause, first_of) in &report.first_by_cause {
            if first_of.point == v.point && first_of.survivors == v.survivors {
                let chunks: Vec<u64> = v
                    .explained
                    .iter()
                    .filter(|e| e.cause == *cause)
                    .map(|e| e.chunk)
                    .collect();
                confirmed.push((cause.as_str(), outcome.clone(), chunks));
            }
        }
    }
    s.add(check::power_loss_confirmed_per_cause(&confirmed));
    s.verdict()?;
    let why = format!(
        "unsafe states by cause: {}; {}",
        explore::causes_line(&report.states_by_cause),
        first
            .explained
            .first()
            .map(|e| format!("{}: {}", e.cause.as_str(), e.evidence()))
            .unwrap_or_default()
    );
    s.add(check::power_loss_safety(
        report.unsafe_states,
        report.unsafe_points,
        report.states_checked,
        Some(check::FirstViolation {
            point: first.point,
            after: &first.after,
            uncovered: &first.uncovered,
            cause: &why,
        }),
        summary,
    ));
    s.verdict()
}

/// The same boot and load with the disks as they are, nothing recorded: the throughput
/// the recording is measured against.
fn unrecorded_load(s: &mut Scenario, p: &PowerLossSpec) -> Result<(), Failure> {
    let disks: Vec<Disk> = s
        .disks
        .iter()
        .map(|d| Disk {
            write_cache: p.model == DiskModel::VolatileCache,
            ..d.clone()
        })
        .collect();
    let mut vm = s.boot_with(2, disks)?;
    s.phase("boot 2 (unrecorded)");
    s.assemble(&mut vm, &s.members())?;
    s.wait_in_sync(&mut vm, Duration::from_secs(60))?;
    s.phase("assemble (unrecorded)");
    load(s, &mut vm, p)?;
    s.phase("unrecorded load");
    vm.kill().map_err(Failure::Bench)?;
    s.verdict()
}

/// The case's load for its time, from a trace marker on; the writers must not end first.
/// Records the throughput.
fn load(s: &mut Scenario, vm: &mut Vm, p: &PowerLossSpec) -> Result<(), Failure> {
    if let Some(t) = &p.throttle {
        s.throttle(vm, t)?;
    }
    s.sh(
        vm,
        &format!(
            "echo '{}' > /sys/kernel/tracing/trace_marker",
            files::LOAD_MARK
        ),
        10,
    )?;
    let load_for = p.load_for.unwrap_or(Duration::from_secs(3));
    let workload = s.spawn_workload(vm, &p.workload, "")?;
    let exited = guest::wait(vm, workload, load_for)
        .map_err(Failure::Bench)?
        .map(|out| (out.status, out.stderr));
    s.add(check::writers_alive(exited.clone()));
    if exited.is_none() {
        s.stop_workload(vm, workload)?;
    }
    let written = s.md_written(vm)?;
    s.note_figure("load_seconds", load_for.as_secs_f64());
    s.note_figure(
        "load_mib_per_second",
        (written as f64 / (1 << 20) as f64 / load_for.as_secs_f64() * 10.0).round() / 10.0,
    );
    Ok(())
}

/// Boot 2: the trace on, the array assembled, the load for its time, the bits cleared,
/// the trace read. Returns it with each recorded disk's device number.
fn record_load(
    s: &mut Scenario,
    vm: &mut Vm,
    p: &PowerLossSpec,
    recorded: &[String],
) -> Result<Vec<(u32, u32)>, Failure> {
    let mut seen = Vec::new();
    for name in recorded {
        let dev = s.dev(name);
        let base = dev.trim_start_matches("/dev/");
        seen.push((
            name.clone(),
            s.sh(vm, &format!("cat /sys/block/{base}/queue/write_cache"), 10)?,
        ));
    }
    let devs = s.dev_numbers(vm, recorded)?;
    s.add(check::write_cache_as_modelled(p.model, &seen));
    s.verdict()?;
    s.probe_unplugs(vm)?;
    s.sh(vm, &recorder::trace_on(131072), recorder::TRACE_ON_LIMIT)?;
    s.assemble(vm, &s.members())?;
    s.wait_in_sync(vm, Duration::from_secs(60))?;
    s.phase("assemble (recorded)");
    load(s, vm, p)?;
    s.phase("recorded load");
    if p.clearing {
        let b = s.guest_bitmap(vm).map_err(Failure::Bench)?;
        s.wait_bitmap_clean(vm, s.clean_limit(&b))?;
        s.phase("recorded clearing");
    }
    s.sh(vm, "echo 0 > /sys/kernel/tracing/tracing_on", 10)?;
    let lost = s.sh(vm, "cat /sys/kernel/tracing/per_cpu/cpu*/stats | grep -E '^(overrun|dropped events):' | awk '{s+=$NF} END {print s+0}'", 10)?;
    if lost.trim() != "0" {
        return Err(Failure::Bench(anyhow::anyhow!(
            "the guest's trace buffer lost {} events: the recording is incomplete",
            lost.trim()
        )));
    }
    let trace = s.sh(vm, "cat /sys/kernel/tracing/trace", 120)?;
    let path = s.case_dir.join(files::TRACE);
    std::fs::write(&path, &trace).map_err(|e| Failure::Bench(e.into()))?;
    Ok(devs)
}

fn write_report(s: &Scenario, report: &Report) -> anyhow::Result<()> {
    let path = s.case_dir.join("power-loss.json");
    std::fs::write(&path, serde_json::to_vec_pretty(report)?)
        .with_context(|| format!("write {}", path.display()))
}

/// The report's figures for the result, with the first violations only, and without the
/// requests around their cuts: `index.html` reads those from `power-loss.json`, and
/// `result.json` is read by every report.
fn report_figures(report: &Report) -> serde_json::Value {
    let mut v = serde_json::to_value(report).unwrap_or_default();
    if let Some(list) = v.get_mut("violations").and_then(|l| l.as_array_mut()) {
        list.truncate(3);
    }
    if let Some(firsts) = v.get_mut("first_by_cause").and_then(|m| m.as_object_mut()) {
        for first in firsts.values_mut() {
            if let Some(first) = first.as_object_mut() {
                first.remove("around");
            }
        }
    }
    v
}

/// Writes the violating state out, boots it, lets md assemble and resync it, and returns
/// the chunks where the members still differ.
fn confirm(
    s: &mut Scenario,
    rec: &Recording,
    bases: &[&Path],
    model: DiskModel,
    v: &explore::Violation,
    out: &Path,
    index: usize,
) -> Result<Vec<u64>, String> {
    let images = materialize::write_state(rec, bases, model, v.point, &v.survivors, out)
        .map_err(|e| format!("{e:#}"))?;
    let disks: Vec<Disk> = s
        .disks
        .iter()
        .map(|d| {
            let mut d = d.clone();
            if let Some(i) = rec.disk_index(&d.name) {
                d.path = images[i].clone();
            }
            d
        })
        .collect();
    let mut state = Scenario {
        bench: s.bench,
        plan: s.plan,
        array: s.array,
        case_dir: s.case_dir,
        disks: &disks,
        rec: &mut *s.rec,
        stalls: Default::default(),
    };
    let result = (|| -> Result<Vec<u64>, Failure> {
        let boot = 3 + index as u32;
        let mut vm = state.boot(boot)?;
        state.phase(&format!("boot {boot} (violating state {index})"));
        state.assemble(&mut vm, &state.members())?;
        state.wait_in_sync(&mut vm, Duration::from_secs(600))?;
        state.stop_array(&mut vm)?;
        vm.quit(Duration::from_secs(60)).map_err(Failure::Bench)?;
        let after = state
            .read_images(&if index == 0 {
                "violating-state-resynced".to_string()
            } else {
                format!("violating-state-{index}-resynced")
            })
            .map_err(Failure::Bench)?;
        state.phase(&format!("assemble and resync violating state {index}"));
        Ok(after.divergent)
    })();
    state.land_stalls();
    result.map_err(|f| match f {
        Failure::Case(why) => why,
        Failure::Bench(e) => format!("{e:#}"),
    })
}
