//! From a parsed case file to the plans it runs as: one, or one per matrix combination,
//! each validated against what the run can do, with its disks placed and its seed drawn.

use super::schema::*;
use anyhow::{bail, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A case ready to run: validated, with its disks placed and its seed drawn.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub name: String,
    /// The result directory's name: the case's name, with `.N` for the Nth repeat.
    pub run_name: String,
    pub file: PathBuf,
    pub description: String,
    pub seed: u64,
    pub vm: VmSpec,
    pub disks: Vec<PlannedDisk>,
    pub steps: Vec<Step>,
    pub array: Option<ArraySpec>,
    pub crash: Option<CrashSpec>,
    pub examination: Option<ExaminationSpec>,
    pub readd: Option<ReaddSpec>,
    pub bitmap_eio: Option<BitmapEioSpec>,
    pub bitmap_lie: Option<BitmapLieSpec>,
    pub power_loss: Option<PowerLossSpec>,
    pub expect_splats: Vec<String>,
    /// Kernel options the case needs (its own `requires` and what its faults need).
    pub requires: Vec<String>,
    /// Keep the disk images of a passing run too (a failing run always keeps them).
    pub keep_disks: bool,
    /// The known findings (ids) the case may show and can show: a failure that is all
    /// theirs is an XFAIL.
    pub findings: Vec<String>,
    /// md gets a bitmap file: from the array's bitmap, or the case's own steps.
    pub bitmap_file: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlannedDisk {
    pub name: String,
    pub size: u64,
    /// The guest device: disks are attached in the order the case lists them.
    pub device: String,
}

impl Plan {
    /// `DISK_<name>=/dev/vdX` for every disk, given to every guest command.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .disks
            .iter()
            .map(|d| (format!("DISK_{}", d.name), d.device.clone()))
            .collect();
        env.push(("SEED".into(), self.seed.to_string()));
        env
    }
}

/// The plans of a case file: one, or one per matrix combination (`name@raid5-file`).
pub fn load(file: &Path, seed: Option<u64>) -> Result<Vec<Plan>> {
    let text =
        std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let case = parse(file, &text)?;
    expand(file, case, seed)
}

/// Plans every combination of the case's matrix (or the case itself when it has none).
pub fn expand(file: &Path, mut case: CaseFile, seed: Option<u64>) -> Result<Vec<Plan>> {
    let Some(matrix) = case.matrix.take() else {
        return Ok(vec![plan(file, case, seed)?]);
    };
    if case.array.is_none() {
        bail!(
            "{}: matrix: expands array settings; the case has no array",
            file.display()
        );
    }
    let points = matrix.points();
    if points.is_empty() {
        bail!("{}: matrix: every combination is excluded", file.display());
    }
    let stem = stem(file);
    let declared = case.findings.clone();
    let plans = points
        .iter()
        .map(|p| {
            let mut variant = case.clone();
            let label = p.label();
            p.apply(&mut variant)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))
                .and_then(|_| plan_named(file, format!("{stem}@{label}"), variant, seed, true))
                .map_err(|e| {
                    anyhow::anyhow!(
                        "{:#} (matrix combination {label}; leave it out with matrix.exclude)",
                        e
                    )
                })
        })
        .collect::<Result<Vec<Plan>>>()?;
    for (i, id) in declared.iter().enumerate() {
        if !plans.iter().any(|p| p.findings.contains(id)) {
            bail!(
                "{}: findings[{i}] {id:?} cannot show in any combination of the matrix",
                file.display()
            );
        }
    }
    Ok(plans)
}

fn stem(file: &Path) -> String {
    file.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub fn plan(file: &Path, case: CaseFile, seed: Option<u64>) -> Result<Plan> {
    plan_named(file, stem(file), case, seed, false)
}

/// `in_matrix`: the case is one combination of a matrix, where a declared finding may
/// fit only some of them.
fn plan_named(
    file: &Path,
    name: String,
    case: CaseFile,
    seed: Option<u64>,
    in_matrix: bool,
) -> Result<Plan> {
    let at = |what: String| anyhow::anyhow!("{}: {what}", file.display());
    if case.disks.len() > 26 {
        return Err(at(format!(
            "{} disks; at most 26 (vda..vdz)",
            case.disks.len()
        )));
    }
    let mut disks = Vec::new();
    for (i, d) in case.disks.iter().enumerate() {
        if d.name.is_empty()
            || !d
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(at(format!(
                "disks[{i}].name {:?}: use letters, digits and _",
                d.name
            )));
        }
        if disks.iter().any(|p: &PlannedDisk| p.name == d.name) {
            return Err(at(format!("disks[{i}].name {:?} appears twice", d.name)));
        }
        if d.size.0 < 1 << 20 || d.size.0 % 512 != 0 {
            return Err(at(format!(
                "disks[{i}].size {}: at least 1 MiB, in whole sectors",
                d.size.0
            )));
        }
        disks.push(PlannedDisk {
            name: d.name.clone(),
            size: d.size.0,
            device: format!("/dev/vd{}", (b'a' + i as u8) as char),
        });
    }
    if case.vm.memory.0 < 128 << 20 {
        return Err(at(format!(
            "vm.memory {} MiB: the guest needs at least 128 MiB",
            case.vm.memory.0 >> 20
        )));
    }
    if case.vm.cpus == 0 {
        return Err(at("vm.cpus: at least 1".into()));
    }
    let timeout = case.vm.timeout;
    if timeout < Duration::from_secs(1) || timeout > Duration::from_secs(24 * 3600) {
        return Err(at(format!(
            "vm.timeout {timeout:?}: 1 s to 24 h (a case with no time to run judges nothing)"
        )));
    }
    for (i, s) in case.steps.iter().enumerate() {
        let (kind, limit) = match s {
            Step::Run(r) => ("run", r.timeout),
            Step::WaitFor(w) => ("wait_for", w.timeout),
        };
        if limit.is_zero() {
            return Err(at(format!(
                "steps[{i}].{kind}.timeout: 0 s cannot run anything"
            )));
        }
    }
    for (i, s) in case.steps.iter().enumerate() {
        if let Step::Run(r) = s {
            for re in &r.expect_stdout {
                if let Err(e) = regex::Regex::new(re) {
                    return Err(at(format!("steps[{i}].run.expect_stdout {re:?}: {e}")));
                }
            }
        }
    }
    let disk = |what: &str, name: &str| -> Result<usize> {
        disks
            .iter()
            .position(|d| d.name == name)
            .ok_or_else(|| at(format!("{what} {name:?} is not one of the disks")))
    };
    if case.matrix.is_some() {
        return Err(at("matrix: expand the case with case::expand".into()));
    }
    let members: &[String] = case.array.as_ref().map_or(&[], |a| &a.members);
    if let Some(a) = &case.array {
        if let Err(why) = array_shape(a) {
            return Err(at(why));
        }
        for (i, m) in a.members.iter().enumerate() {
            disk("array.members:", m)?;
            if a.members[..i].contains(m) {
                return Err(at(format!("array.members[{i}] {m:?} appears twice")));
            }
        }
        match a.bitmap.kind {
            BitmapKind::File => {
                disk("array.bitmap.disk", &a.bitmap.disk)?;
                if a.members.contains(&a.bitmap.disk) {
                    return Err(at(
                        "array.bitmap.disk: the bitmap file cannot live on a member".into(),
                    ));
                }
            }
            kind if !a.bitmap.disk.is_empty() => {
                return Err(at(format!(
                    "array.bitmap.disk: a {} bitmap lives in the members, not on a disk",
                    kind.as_str()
                )));
            }
            BitmapKind::Internal => {}
            BitmapKind::Lockless if a.bitmap.grow => {
                return Err(at(
                    "array.bitmap.grow: the bench adds only classic bitmaps to a running array"
                        .into(),
                ));
            }
            BitmapKind::Lockless => {}
        }
        let chunk = a.bitmap.chunk.0;
        if !chunk.is_power_of_two() || chunk < 4096 {
            return Err(at(format!(
                "array.bitmap.chunk {chunk}: a power of two of at least 4 KiB"
            )));
        }
        if a.bitmap.kind == BitmapKind::File {
            let path = &a.bitmap.path;
            if !path.starts_with('/')
                || path == "/"
                || path.split('/').any(|c| c == "..")
                || !path
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
            {
                return Err(at(format!(
                    "array.bitmap.path {path:?}: an absolute path inside the bitmap's filesystem, of letters, digits and /._-"
                )));
            }
        }
        let smallest = a
            .members
            .iter()
            .filter_map(|m| disks.iter().find(|d| &d.name == m))
            .map(|d| d.size)
            .min()
            .unwrap_or(0);
        if smallest / chunk < MIN_CHUNKS {
            return Err(at(format!(
                "array.bitmap.chunk {chunk}: the smallest member ({} MiB) holds {} chunks; at least {MIN_CHUNKS}, or one chunk covers so much that every check holds whatever the kernel does",
                smallest >> 20,
                smallest / chunk
            )));
        }
        let sleep = a.bitmap.daemon_sleep;
        if sleep.subsec_nanos() != 0 || !(1..=600).contains(&sleep.as_secs()) {
            return Err(at(format!(
                "array.bitmap.daemon_sleep {sleep:?}: whole seconds, 1 s to 10 min (mdadm --delay)"
            )));
        }
    }
    if let Some(c) = &case.crash {
        if case.array.is_none() {
            return Err(at("crash: needs an array".into()));
        }
        if c.after_written.is_none() == c.after_time.is_none() {
            return Err(at(
                "crash: give exactly one of after_written and after_time".into(),
            ));
        }
        check_load("crash", c, timeout, &disk, members).map_err(at)?;
        if c.cycles == 0 || c.cycles > 20 {
            return Err(at(format!("crash.cycles {}: 1 to 20", c.cycles)));
        }
        if let Some(p) = &c.pressure {
            if p.memory_max.is_none()
                && p.memory_high.is_none()
                && p.dirtier.is_none()
                && p.reclaim.is_none()
                && p.hog.is_none()
            {
                return Err(at(
                    "crash.pressure: set memory_max, memory_high, dirtier, reclaim or hog".into(),
                ));
            }
            if p.hog.is_some_and(|h| h.0 >= case.vm.memory.0 / 4 * 3) {
                return Err(at(format!(
                    "crash.pressure.hog: under three quarters of vm.memory ({} MiB), or the guest OOMs",
                    case.vm.memory.0 >> 20
                )));
            }
            if p.memory_max.is_some_and(|m| m.0 < 4 << 20) {
                return Err(at(
                    "crash.pressure.memory_max: below 4 MiB the writers cannot even start".into(),
                ));
            }
            if p.dirty_ratio > 100 || p.dirty_background_ratio > p.dirty_ratio {
                return Err(at(
                    "crash.pressure: dirty_background_ratio <= dirty_ratio <= 100".into(),
                ));
            }
        }
    }
    for (what, c) in [
        (
            "bitmap_eio.crash",
            case.bitmap_eio.as_ref().map(|b| &b.crash),
        ),
        (
            "bitmap_lie.crash",
            case.bitmap_lie.as_ref().map(|b| &b.crash),
        ),
    ] {
        if let Some(c) = c {
            check_load(what, c, timeout, &disk, members).map_err(at)?;
        }
    }
    for (what, w) in [
        ("readd.workload", case.readd.as_ref().map(|r| &r.workload)),
        (
            "examination.workload",
            case.examination.as_ref().map(|e| &e.workload),
        ),
    ] {
        if let Some(w) = w {
            check_workload(what, w).map_err(at)?;
        }
    }
    for (i, re) in case.expect_splats.iter().enumerate() {
        if let Err(e) = regex::Regex::new(re) {
            return Err(at(format!("expect_splats[{i}] {re:?}: {e}")));
        }
    }
    if let Some(e) = &case.examination {
        if case.array.is_none() || case.crash.is_some() {
            return Err(at(
                "examination: needs an array, and no crash in the same case".into(),
            ));
        }
        if case
            .array
            .as_ref()
            .is_some_and(|a| a.bitmap.kind != BitmapKind::File)
        {
            return Err(at(
                "examination: examines a bitmap file; array.bitmap.kind must be file".into(),
            ));
        }
        if e.samples == 0 {
            return Err(at("examination.samples: at least 1".into()));
        }
    }
    if let Some(r) = &case.readd {
        let a = case
            .array
            .as_ref()
            .ok_or_else(|| at("readd: needs an array".into()))?;
        if case.crash.is_some() || case.examination.is_some() {
            return Err(at("readd: one scenario per case".into()));
        }
        if !a.members.contains(&r.fail) {
            return Err(at(format!("readd.fail {:?} is not a member", r.fail)));
        }
    }
    if let Some(b) = &case.bitmap_eio {
        let a = case
            .array
            .as_ref()
            .ok_or_else(|| at("bitmap_eio: needs an array".into()))?;
        if a.bitmap.kind != BitmapKind::File {
            return Err(at(
                "bitmap_eio: fails the disk of a bitmap file; array.bitmap.kind must be file"
                    .into(),
            ));
        }
        if b.crash.after_written.is_none() == b.crash.after_time.is_none() {
            return Err(at(
                "bitmap_eio.crash: give exactly one of after_written and after_time".into(),
            ));
        }
    }
    if let Some(b) = &case.bitmap_lie {
        let a = case
            .array
            .as_ref()
            .ok_or_else(|| at("bitmap_lie: needs an array".into()))?;
        if a.bitmap.kind != BitmapKind::File || a.build {
            return Err(at(
                "bitmap_lie: lies with a bitmap file of an array with superblocks; array.bitmap.kind must be file and array.build false"
                    .into(),
            ));
        }
        let Some(lie) = b.lie else {
            return Err(at(
                "bitmap_lie.lie: name the lie, here or with a matrix lie axis".into(),
            ));
        };
        if !b.expect.contains_key(&lie) {
            return Err(at(format!(
                "bitmap_lie.expect: says nothing of {:?}; give refused, full_recovery or trusted",
                lie.label()
            )));
        }
        if b.crash.after_written.is_none() == b.crash.after_time.is_none() {
            return Err(at(
                "bitmap_lie.crash: give exactly one of after_written and after_time".into(),
            ));
        }
        if b.crash.throttle.is_none() || b.crash.mode != CrashMode::Sigkill {
            return Err(at(
                "bitmap_lie.crash: needs a throttled member and mode sigkill, or the crash leaves nothing to recover".into(),
            ));
        }
    }
    if let Some(p) = &case.power_loss {
        let a = case
            .array
            .as_ref()
            .ok_or_else(|| at("power_loss: needs an array".into()))?;
        if a.build {
            return Err(at(
                "power_loss: judges an array with superblocks; array.build must be false".into(),
            ));
        }
        check_workload("power_loss.workload", &p.workload).map_err(at)?;
        if let Some(t) = &p.throttle {
            disk("power_loss.throttle.disk", &t.disk)?;
            if !a.members.contains(&t.disk) {
                return Err(at(format!(
                    "power_loss.throttle.disk {:?} is not a member: the throttle makes a member lag its peers",
                    t.disk
                )));
            }
            if t.iops_write == 0 {
                return Err(at(
                    "power_loss.throttle.iops_write: 0 lets no write through".into(),
                ));
            }
        }
        let load = p.load_for.unwrap_or(Duration::from_secs(3));
        if load.is_zero() || load * 4 > timeout {
            return Err(at(format!(
                "power_loss.load_for: {load:?} must be above 0 and at most a quarter of vm.timeout ({timeout:?}): recording and judging take the rest"
            )));
        }
        if p.exact_up_to > 16 {
            return Err(at(format!(
                "power_loss.exact_up_to: {} writes are 2^{} states per crash point; at most 16",
                p.exact_up_to, p.exact_up_to
            )));
        }
        if !(1..=4096).contains(&p.samples) {
            return Err(at(
                "power_loss.samples: 1 to 4096 states per crash point".into()
            ));
        }
    }
    let findings = fitting_findings(&case, in_matrix).map_err(at)?;
    let mut requires = case.requires.clone();
    requires.extend(
        case.array
            .as_ref()
            .and_then(|a| a.bitmap.kind.requires())
            .map(String::from),
    );
    if case
        .readd
        .as_ref()
        .is_some_and(|r| r.via == EioSource::FailMakeRequest)
    {
        requires.extend(FailRequest::requires());
    }
    if let Some(f) = case.crash.as_ref().and_then(|c| c.faults.as_ref()) {
        requires.extend(f.requires());
        if let Some(r) = &f.fail_make_request {
            disk("crash.faults.fail_make_request.disk", &r.disk)?;
            if r.probability > 100 {
                return Err(at(
                    "crash.faults.fail_make_request: probability 0..=100".into()
                ));
            }
        }
        if f.during == FaultPhase::Resync
            && [&f.failslab, &f.fail_page_alloc]
                .into_iter()
                .flatten()
                .any(|a| a.tasks == FailTasks::Writers)
        {
            return Err(at(
                "crash.faults: during resync there are no writers to fail; tasks md or all".into(),
            ));
        }
        for (name, a) in [
            ("failslab", &f.failslab),
            ("fail_page_alloc", &f.fail_page_alloc),
        ] {
            if a.as_ref()
                .is_some_and(|a| a.probability > 100 || a.interval == 0)
            {
                return Err(at(format!(
                    "crash.faults.{name}: probability 0..=100 and interval at least 1"
                )));
            }
        }
    }
    requires.sort();
    requires.dedup();
    if let Some(bad) = requires.iter().find(|o| {
        !o.starts_with("CONFIG_")
            || !o[7..]
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    }) {
        return Err(at(format!(
            "requires: {bad:?} is not a kernel option name (CONFIG_ in capitals)"
        )));
    }
    let scenarios = [
        case.crash.is_some(),
        case.examination.is_some(),
        case.readd.is_some(),
        case.bitmap_eio.is_some(),
        case.bitmap_lie.is_some(),
        case.power_loss.is_some(),
    ];
    if scenarios.iter().filter(|s| **s).count() > 1 {
        return Err(at(
            "crash, examination, readd, bitmap_eio, bitmap_lie, power_loss: one scenario per case"
                .into(),
        ));
    }
    if case.steps.is_empty() && !scenarios.contains(&true) {
        bail!("{}: no steps and no scenario", file.display());
    }
    let bitmap_file = case.bitmap_file
        || case
            .array
            .as_ref()
            .is_some_and(|a| a.bitmap.kind == BitmapKind::File);
    Ok(Plan {
        run_name: name.clone(),
        name,
        file: file.to_path_buf(),
        description: case.description,
        seed: seed.or(case.seed).unwrap_or_else(random_seed),
        vm: case.vm,
        disks,
        steps: case.steps,
        array: case.array,
        crash: case.crash,
        examination: case.examination,
        readd: case.readd,
        bitmap_eio: case.bitmap_eio,
        bitmap_lie: case.bitmap_lie,
        power_loss: case.power_loss,
        expect_splats: case.expect_splats,
        requires,
        keep_disks: false,
        findings,
        bitmap_file,
    })
}

/// The declared findings that can show in this case; a finding unknown, declared twice,
/// or that fits no case of this kind is a mistake of the case file. In a matrix a finding
/// may fit only some combinations ([`expand`] checks it fits one).
fn fitting_findings(case: &CaseFile, in_matrix: bool) -> std::result::Result<Vec<String>, String> {
    let bitmap = case.array.as_ref().map_or("", |a| a.bitmap.kind.as_str());
    let model = case.power_loss.as_ref().map(|p| p.model.as_str());
    let injectors: Vec<&str> = case
        .crash
        .as_ref()
        .and_then(|c| c.faults.as_ref())
        .map(|f| {
            [
                ("failslab", f.failslab.is_some()),
                ("fail_page_alloc", f.fail_page_alloc.is_some()),
                ("fail_make_request", f.fail_make_request.is_some()),
            ]
            .into_iter()
            .filter(|(_, on)| *on)
            .map(|(n, _)| n)
            .collect()
        })
        .unwrap_or_default();
    let kind = crate::findings::CaseKind {
        bitmap,
        model,
        sigkill_recorded: (case.crash.as_ref().is_some_and(|c| c.recorded())
            || case.bitmap_lie.as_ref().is_some_and(|l| l.crash.recorded()))
            && !case.array.as_ref().is_some_and(|a| a.build),
        injectors: &injectors,
    };
    let mut fitting = Vec::new();
    for (i, id) in case.findings.iter().enumerate() {
        let Some(f) = crate::findings::get(id) else {
            let known: Vec<&str> = crate::findings::all()
                .iter()
                .map(|f| f.id.as_str())
                .collect();
            return Err(format!(
                "findings[{i}] {id:?} is no known finding (known: {})",
                known.join(", ")
            ));
        };
        if case.findings[..i].contains(id) {
            return Err(format!("findings[{i}] {id:?} appears twice"));
        }
        match f.unfit(kind) {
            None => fitting.push(id.clone()),
            Some(why) if !in_matrix => {
                return Err(format!(
                    "findings[{i}] {id:?} cannot show in this case: it {why}"
                ))
            }
            Some(_) => {}
        }
    }
    Ok(fitting)
}

/// The fewest bitmap chunks a member may hold: with fewer, a few dirty chunks cover the
/// array and the checks cannot tell a bitmap that lies from one that tells the truth.
const MIN_CHUNKS: u64 = 32;

/// A load and its kill point: a workload that can run, a throttled disk that exists and
/// lets writes through, a kill within the case's time.
fn check_load(
    what: &str,
    c: &CrashSpec,
    timeout: Duration,
    disk: &dyn Fn(&str, &str) -> Result<usize>,
    members: &[String],
) -> Result<(), String> {
    if let Some(t) = &c.throttle {
        disk(&format!("{what}.throttle.disk"), &t.disk).map_err(|e| format!("{e:#}"))?;
        if !members.contains(&t.disk) {
            return Err(format!(
                "{what}.throttle.disk {:?} is not a member: the throttle makes a member lag its peers",
                t.disk
            ));
        }
        if t.iops_write == 0 {
            return Err(format!(
                "{what}.throttle.iops_write: at least 1, or the member never writes"
            ));
        }
    }
    if let Some(t) = c.after_time {
        if t.is_zero() || t >= timeout {
            return Err(format!(
                "{what}.after_time {t:?}: more than 0 s and less than vm.timeout ({timeout:?})"
            ));
        }
    }
    if c.after_written.is_some_and(|b| b.0 == 0) {
        return Err(format!("{what}.after_written: more than 0 bytes"));
    }
    check_workload(&format!("{what}.workload"), &c.workload)
}

fn check_workload(what: &str, w: &WorkloadSpec) -> Result<(), String> {
    if w.min_io.0 == 0
        || !w.min_io.0.is_multiple_of(4096)
        || !w.max_io.0.is_multiple_of(4096)
        || w.min_io.0 > w.max_io.0
        || w.writers == 0
    {
        return Err(format!(
            "{what}: min_io <= max_io, both whole 4 KiB blocks, and at least one writer"
        ));
    }
    Ok(())
}

/// Level, member count and bitmap options that md and the checker can both handle.
fn array_shape(a: &ArraySpec) -> Result<(), String> {
    let n = a.members.len();
    let least = match a.level {
        1 | 10 => 2,
        5 => 3,
        6 => 4,
        other => {
            return Err(format!(
                "array.level {other}: the bench judges RAID1, RAID10, RAID5 and RAID6"
            ))
        }
    };
    if n < least {
        return Err(format!(
            "array.members: RAID{} needs at least {least} members, the case gives {n}",
            a.level
        ));
    }
    if a.build && (a.level != 1 || a.bitmap.kind != BitmapKind::File || a.bitmap.grow) {
        return Err(
            "array.build: an array without superblocks is judged as RAID1 with a bitmap file given at build time"
                .into(),
        );
    }
    Ok(())
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.finish() >> 1
}
