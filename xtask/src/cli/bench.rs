//! `cargo xtask bench`: the cold path and the fast path side by side, in one invocation on
//! one machine, so that their ratio means something: boots of a case's VM shape booted
//! cold and restored from its saved guest, then the case itself both ways with the same
//! seed, phase by phase. Prints the table and writes `bench.json` into a run directory.

use crate::bench::{Bench, Options};
use crate::report::files::{new_run_dir, ResultFiles};
use crate::result::events::Events;
use crate::result::json::write_json;
use crate::result::{exit, CaseResult, Verdict};
use crate::vm::Disk;
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub struct BenchArgs {
    pub options: Options,
    /// The case to time (a name as `--case` takes it).
    pub case: String,
    pub boots: u32,
    pub seed: u64,
    pub results: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Figures {
    case: String,
    seed: u64,
    boot_ms: Paths<Vec<u64>>,
    case_ms: Paths<u64>,
    phases: Vec<PhaseRow>,
    verdicts: Paths<Verdict>,
    /// For a power-loss case: what the recording costs the load, and what remembering
    /// chunk judgements saves the judge, on the fast path's recording.
    #[serde(skip_serializing_if = "Option::is_none")]
    power_loss: Option<PowerLossFigures>,
    /// For a crash case whose SIGKILL is recorded: the fast case recorded and not, in
    /// turns, with the same seed.
    #[serde(skip_serializing_if = "Option::is_none")]
    crash_recording: Option<CrashRecordingFigures>,
}

#[derive(Debug, Serialize)]
struct CrashRecordingFigures {
    recorded_ms: Vec<u64>,
    unrecorded_ms: Vec<u64>,
    /// The median recorded case over the median unrecorded one, minus one.
    cost: f64,
}

#[derive(Debug, Serialize)]
struct PowerLossFigures {
    load_mib_per_second_recorded: Option<f64>,
    load_mib_per_second_unrecorded: Option<f64>,
    states: u64,
    states_per_second_remembering: f64,
    states_per_second_not_remembering: f64,
}

#[derive(Debug, Serialize)]
struct Paths<T> {
    cold: T,
    fast: T,
}

#[derive(Debug, Serialize)]
struct PhaseRow {
    phase: String,
    cold_ms: Option<u64>,
    fast_ms: Option<u64>,
}

pub fn run(args: BenchArgs) -> Result<u8> {
    let project = crate::host::project_root();
    let filters = crate::case::select::Filters {
        include: vec![args.case.clone()],
        exclude: vec![],
        partition: None,
    };
    let plans = crate::case::select::plans(&project, &[], &filters, Some(args.seed), 1)?;
    let plan = plans.first().context("no case selected")?;
    let fast = Bench::prepare(&Options {
        restore: true,
        ..args.options.clone()
    })?;
    let cold = Bench {
        restore: false,
        ..fast.clone()
    };
    let root = args.results.unwrap_or_else(|| project.join("results"));
    let run_dir = new_run_dir(&root)?;

    // Boots of the case's shape: its memory, vCPUs and disks (new, all zeros).
    let disks_dir = tempfile::Builder::new()
        .prefix("disks-")
        .tempdir_in(&run_dir)?;
    let disks = plan
        .disks
        .iter()
        .map(|d| Disk::zeros(disks_dir.path(), &d.name, d.size))
        .collect::<Result<Vec<_>>>()?;
    let boot = |b: &Bench, i: u32| -> Result<u64> {
        let cfg = b.vm_config(
            plan.vm.memory.0 >> 20,
            plan.vm.cpus,
            disks.clone(),
            disks_dir.path().join(format!("console-{i}.log")),
        );
        let started = Instant::now();
        let vm = b.boot(&cfg)?;
        let ms = started.elapsed().as_millis() as u64;
        vm.quit(Duration::from_secs(30))?;
        Ok(ms)
    };
    // The first fast start of a shape boots and saves it: not what is measured.
    boot(&fast, 0)?;
    let mut boot_ms = Paths {
        cold: vec![],
        fast: vec![],
    };
    for i in 1..=args.boots {
        boot_ms.cold.push(boot(&cold, i)?);
        boot_ms.fast.push(boot(&fast, i)?);
    }
    drop(disks_dir);

    let events = Events::new(vec![Box::<ResultFiles>::default()]);
    let case_on = |b: &Bench, path: &str| -> CaseResult {
        crate::run::run_case(b, plan, &run_dir.join(path).join(&plan.name), &events)
    };
    let cold_case = case_on(&cold, "cold");
    let fast_case = case_on(&fast, "fast");
    let power_loss = match &plan.power_loss {
        Some(p) => Some(power_loss_figures(
            &fast, plan, p, &run_dir, &events, &fast_case,
        )?),
        None => None,
    };
    let crash_recording = match &plan.crash {
        Some(c) if c.recorded() => Some(crash_recording_figures(
            &fast, plan, &run_dir, &events, &fast_case, args.boots,
        )),
        _ => None,
    };
    let mut phases: Vec<PhaseRow> = cold_case
        .phases
        .iter()
        .map(|p| PhaseRow {
            phase: p.name.clone(),
            cold_ms: Some(p.ms),
            fast_ms: fast_case
                .phases
                .iter()
                .find(|f| f.name == p.name)
                .map(|f| f.ms),
        })
        .collect();
    for p in &fast_case.phases {
        if !phases.iter().any(|r| r.phase == p.name) {
            phases.push(PhaseRow {
                phase: p.name.clone(),
                cold_ms: None,
                fast_ms: Some(p.ms),
            });
        }
    }
    let figures = Figures {
        case: plan.name.clone(),
        seed: plan.seed,
        boot_ms,
        case_ms: Paths {
            cold: cold_case.times.total_ms,
            fast: fast_case.times.total_ms,
        },
        phases,
        verdicts: Paths {
            cold: cold_case.verdict,
            fast: fast_case.verdict,
        },
        power_loss,
        crash_recording,
    };
    print!("{}", table(&figures));
    write_json(&run_dir.join("bench.json"), &figures)?;
    println!("figures in {}", run_dir.join("bench.json").display());
    let good = |v: Verdict| matches!(v, Verdict::Pass | Verdict::Xfail | Verdict::Xpass);
    Ok(
        if good(figures.verdicts.cold) && good(figures.verdicts.fast) {
            exit::OK
        } else {
            exit::CASE_FAILED
        },
    )
}

/// The fast case recorded (the one already run, then `runs - 1` more) and unrecorded
/// (`runs`), in turns so that the machine's load falls on both alike.
fn crash_recording_figures(
    fast: &Bench,
    plan: &crate::case::Plan,
    run_dir: &std::path::Path,
    events: &Events,
    first: &CaseResult,
    runs: u32,
) -> CrashRecordingFigures {
    let mut unrecorded_plan = plan.clone();
    if let Some(c) = unrecorded_plan.crash.as_mut() {
        c.record = false;
    }
    let mut recorded_ms = vec![first.times.total_ms];
    let mut unrecorded_ms = Vec::new();
    for i in 1..=runs.max(1) {
        let dir = |what: &str| run_dir.join(format!("{what}-{i}")).join(&plan.name);
        unrecorded_ms.push(
            crate::run::run_case(fast, &unrecorded_plan, &dir("unrecorded"), events)
                .times
                .total_ms,
        );
        if i < runs {
            recorded_ms.push(
                crate::run::run_case(fast, plan, &dir("recorded"), events)
                    .times
                    .total_ms,
            );
        }
    }
    let cost = median(&recorded_ms) as f64 / median(&unrecorded_ms).max(1) as f64 - 1.0;
    CrashRecordingFigures {
        recorded_ms,
        unrecorded_ms,
        cost,
    }
}

/// The same load unrecorded, and the fast case's recording judged with and without
/// remembering chunk judgements.
fn power_loss_figures(
    fast: &Bench,
    plan: &crate::case::Plan,
    spec: &crate::case::PowerLossSpec,
    run_dir: &std::path::Path,
    events: &Events,
    recorded: &CaseResult,
) -> Result<PowerLossFigures> {
    let mut unrecorded_plan = plan.clone();
    unrecorded_plan.findings.clear();
    if let Some(p) = unrecorded_plan.power_loss.as_mut() {
        p.record = false;
    }
    let unrecorded = crate::run::run_case(
        fast,
        &unrecorded_plan,
        &run_dir.join("unrecorded").join(&plan.name),
        events,
    );
    let mib = |r: &CaseResult| {
        r.figures
            .get("load_mib_per_second")
            .and_then(|v| v.as_f64())
    };
    let case_dir = run_dir.join("fast").join(&plan.name);
    let loaded = crate::powercut::files::RecordingFiles::read(&case_dir)?.load(&case_dir)?;
    let bases: Vec<&std::path::Path> = loaded.bases.iter().map(|b| b.as_path()).collect();
    let views = crate::powercut::view::DiskViews::open(&loaded.rec, &bases)?;
    let judge = |remember| {
        crate::powercut::explore::explore(
            &loaded.rec,
            &views,
            &loaded.layout,
            spec.model,
            crate::powercut::explore::Bounds {
                exact_up_to: spec.exact_up_to,
                samples: spec.samples,
                seed: plan.seed,
                remember,
            },
        )
    };
    let (with, without) = (judge(true)?, judge(false)?);
    Ok(PowerLossFigures {
        load_mib_per_second_recorded: mib(recorded),
        load_mib_per_second_unrecorded: mib(&unrecorded),
        states: with.states_checked,
        states_per_second_remembering: with.states_per_second,
        states_per_second_not_remembering: without.states_per_second,
    })
}

fn median(v: &[u64]) -> u64 {
    let mut v = v.to_vec();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

fn ratio(cold: u64, fast: u64) -> String {
    if fast == 0 {
        "-".into()
    } else {
        format!("{:.1}x", cold as f64 / fast as f64)
    }
}

/// The case and its seed on a line of their own, then a row per figure: cold, fast, and
/// how many times faster (columns as wide as their widest cell).
fn table(f: &Figures) -> String {
    use crate::report::columns::{Align::*, Columns};
    let secs =
        |ms: Option<u64>| ms.map_or_else(|| "-".into(), |m| format!("{:.1}s", m as f64 / 1000.0));
    let mut t = Columns::new(&[
        ("", Left),
        ("cold", Right),
        ("fast", Right),
        ("ratio", Right),
    ]);
    let (bc, bf) = (median(&f.boot_ms.cold), median(&f.boot_ms.fast));
    t.row([
        format!("boot, median of {}", f.boot_ms.cold.len()),
        secs(Some(bc)),
        secs(Some(bf)),
        ratio(bc, bf),
    ]);
    for p in &f.phases {
        t.row([
            format!("  {}", p.phase),
            secs(p.cold_ms),
            secs(p.fast_ms),
            ratio(p.cold_ms.unwrap_or(0), p.fast_ms.unwrap_or(0)),
        ]);
    }
    t.row([
        format!("case ({:?} / {:?})", f.verdicts.cold, f.verdicts.fast),
        secs(Some(f.case_ms.cold)),
        secs(Some(f.case_ms.fast)),
        ratio(f.case_ms.cold, f.case_ms.fast),
    ]);
    if let Some(p) = &f.power_loss {
        let mib = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{v:.1}"));
        t.row([
            "load MiB/s (recorded / not)".to_string(),
            mib(p.load_mib_per_second_recorded),
            mib(p.load_mib_per_second_unrecorded),
        ]);
        t.row([
            format!("states/s of {} (remember / not)", p.states),
            format!("{:.0}", p.states_per_second_remembering),
            format!("{:.0}", p.states_per_second_not_remembering),
            format!(
                "{:.1}x",
                p.states_per_second_remembering / p.states_per_second_not_remembering.max(1e-9)
            ),
        ]);
    }
    if let Some(c) = &f.crash_recording {
        t.row([
            format!("case, median of {} (recorded / not)", c.unrecorded_ms.len()),
            secs(Some(median(&c.recorded_ms))),
            secs(Some(median(&c.unrecorded_ms))),
            format!("{:+.0}%", c.cost * 100.0),
        ]);
    }
    format!("case {}, seed {}\n{}\n", f.case, f.seed, t.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The case and its seed head the table, out of the first column, which is as wide as
    /// its widest label: every figure of a column ends at one place.
    #[test]
    fn the_case_and_seed_head_a_table_whose_figures_line_up() {
        let case = format!("crash-levels@{}", "r".repeat(47));
        let f = Figures {
            case: case.clone(),
            seed: 7660387277089990888,
            boot_ms: Paths {
                cold: vec![1200, 1300, 1100],
                fast: vec![300, 310, 290],
            },
            case_ms: Paths {
                cold: 21_700,
                fast: 9_300,
            },
            phases: vec![PhaseRow {
                phase: "a phase with a rather long name indeed".into(),
                cold_ms: Some(5_000),
                fast_ms: None,
            }],
            verdicts: Paths {
                cold: Verdict::Pass,
                fast: Verdict::Pass,
            },
            power_loss: None,
            crash_recording: Some(CrashRecordingFigures {
                recorded_ms: vec![10_000],
                unrecorded_ms: vec![9_000],
                cost: 0.11,
            }),
        };
        let t = table(&f);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], format!("case {case}, seed 7660387277089990888"));
        let end = lines[1].len();
        assert!(lines[1].ends_with("ratio"), "{t}");
        for line in &lines[1..] {
            assert_eq!(line.len(), end, "{t}");
        }
        assert!(
            lines[3].starts_with("  a phase with a rather long name indeed  "),
            "{t}"
        );
    }
}
