//! `cargo xtask report finding ID RUN...`: one known finding as a bug report for the
//! linux-raid list, drawn from finished runs: what breaks and where in md, the kernels
//! that showed it and those that did not, the command that shows it again, the request
//! trace around the first unsafe state, and what the candidate fix did where a patched
//! kernel ran. [`load`] reads the runs; [`render`] is a pure function of what it read,
//! so that every figure and its run directory can be tested on runs built in a test.

use crate::findings::Finding;
use crate::kernel::KernelInfo;
use crate::powercut::explore::{Cause, Explanation, Violation};
use crate::result::{CaseResult, Verdict};
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Everything the report is drawn from.
#[derive(Debug, Clone)]
pub struct Input {
    pub finding: Finding,
    /// The finding's candidate patches, as `known.yaml`'s `fix` names them.
    pub fixes: Vec<FixPatch>,
    pub runs: Vec<Run>,
}

#[derive(Debug, Clone)]
pub struct FixPatch {
    pub series: String,
    /// The name `--patch` takes (the file's stem).
    pub name: String,
    /// Relative to the checkout.
    pub file: PathBuf,
    /// The mail's subject, `[PATCH]` dropped; `None` when the file could not be read.
    pub subject: Option<String>,
    pub sha256: Option<String>,
}

/// One RUN argument.
#[derive(Debug, Clone)]
pub struct Run {
    /// As given on the command line, so that every path the report names is one the
    /// reader can use from where they ran it.
    pub dir: PathBuf,
    /// `cargo xtask compare`'s layout: `base/` and `patched/`, the same cases and seeds.
    pub compare: bool,
    /// The command line that made the run (`summary.json`'s `arguments`).
    pub arguments: Vec<String>,
    pub kernels: Vec<KernelRun>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Base,
    Patched,
}

/// The cases one kernel ran in one run directory: a row of the report's table.
#[derive(Debug, Clone)]
pub struct KernelRun {
    /// Where its cases are: the run, its kernel's subdirectory, or a compare's side.
    pub dir: PathBuf,
    pub side: Option<Side>,
    pub kernel: KernelInfo,
    pub cases: Vec<Case>,
}

impl KernelRun {
    fn patches(&self) -> &[crate::kernel::patch::PatchInfo] {
        self.kernel.build.as_ref().map_or(&[], |b| &b.patches)
    }

    /// A kernel with patches, or a compare's patched side (which may be a tree of its
    /// own rather than a patched source).
    fn is_patched(&self) -> bool {
        !self.patches().is_empty() || self.side == Some(Side::Patched)
    }
}

#[derive(Debug, Clone)]
pub struct Case {
    pub result: CaseResult,
    /// The case's directory as the reader can use it.
    pub dir: PathBuf,
    /// Whether the case declares the finding (`findings:` in its plan).
    pub declared: bool,
    /// What kind of case it is, as people say it: `RAID1, internal bitmap, power loss
    /// (write_through)`.
    pub setup: String,
    pub power_loss: Option<PowerLoss>,
    /// A recorded SIGKILL crash's first uncovered chunk of the finding's cause.
    pub killed: Option<FirstUnsafe>,
    /// The guest's request trace, read only for the cases that showed the finding.
    pub trace: Option<Trace>,
    /// Whether `cargo xtask power-loss judge` can judge the recording again: it kept its
    /// disks and `recording.json`.
    pub rejudgeable: bool,
}

/// A power-loss case's judgement (`power-loss.json`), for the finding's cause.
#[derive(Debug, Clone, PartialEq)]
pub struct PowerLoss {
    pub states_checked: u64,
    /// Unsafe states with the finding's cause.
    pub states: u64,
    /// The first unsafe state with the cause.
    pub first: Option<FirstUnsafe>,
}

/// The first unsafe state with the finding's cause, as evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct FirstUnsafe {
    /// Events of the recording applied before the power went, and the last of them as
    /// people read it; `None` after a SIGKILL, whose crash is the trace's end.
    pub point: Option<(usize, String)>,
    /// The state's uncovered chunks with this cause.
    pub chunks: Vec<u64>,
    /// The first of them, explained: its data write and its bitmap write.
    pub explained: Explanation,
    /// The undecided writes the state keeps and those it loses, as requests are named.
    pub kept: Vec<String>,
    pub lost: Vec<String>,
    /// The state's other uncovered chunks, by cause.
    pub others: Vec<(String, Vec<u64>)>,
}

impl FirstUnsafe {
    fn of_violation(v: &Violation, cause: &str) -> Option<Self> {
        let mine: Vec<&Explanation> = v
            .explained
            .iter()
            .filter(|e| e.cause.as_str() == cause)
            .collect();
        let mut others: Vec<(String, Vec<u64>)> = Vec::new();
        for e in v.explained.iter().filter(|e| e.cause.as_str() != cause) {
            match others.iter_mut().find(|(c, _)| c == e.cause.as_str()) {
                Some((_, chunks)) => chunks.push(e.chunk),
                None => others.push((e.cause.as_str().into(), vec![e.chunk])),
            }
        }
        Some(FirstUnsafe {
            point: Some((v.point, v.after.clone())),
            chunks: mine.iter().map(|e| e.chunk).collect(),
            explained: (*mine.first()?).clone(),
            kept: v.survived.values().flatten().cloned().collect(),
            lost: v.lost.values().flatten().cloned().collect(),
            others,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// The file, as the reader can open it.
    pub file: PathBuf,
    pub text: String,
    /// The recorded disks: the names requests carry and their device numbers.
    pub disks: Vec<(String, (u32, u32))>,
}

// ---------------------------------------------------------------------------------------
// Loading.

/// The finding `id` and what `runs` hold of it. An unknown id or a RUN that is not a run
/// directory is an error of one line.
pub fn load(id: &str, runs: &[PathBuf], project: &Path) -> Result<Input> {
    let Some(finding) = crate::findings::get(id) else {
        let known: Vec<&str> = crate::findings::all()
            .iter()
            .map(|f| f.id.as_str())
            .collect();
        bail!(
            "unknown finding `{id}`: the known ones are {}",
            known.join(", ")
        )
    };
    let fixes = finding
        .fix
        .iter()
        .map(|f| {
            let read = crate::kernel::patch::read(project, Path::new(&f.patch))
                .map(|p| p.info)
                .ok();
            FixPatch {
                series: f.series.clone(),
                name: f.patch.clone(),
                file: crate::kernel::patch::project_patches(Path::new(""))
                    .join(format!("{}.patch", f.patch)),
                subject: read.as_ref().and_then(|i| i.subject.clone()),
                sha256: read.map(|i| i.sha256),
            }
        })
        .collect();
    let runs = runs
        .iter()
        .map(|r| load_run(r, finding))
        .collect::<Result<Vec<_>>>()?;
    Ok(Input {
        finding: finding.clone(),
        fixes,
        runs,
    })
}

fn load_run(dir: &Path, finding: &Finding) -> Result<Run> {
    let shown = dir.display();
    if !dir.is_dir() {
        bail!("{shown}: no such run directory");
    }
    let summary = |d: &Path| d.join("summary.json").is_file();
    if summary(dir) {
        let part = crate::report::merge::read(dir)?;
        return Ok(Run {
            dir: dir.to_path_buf(),
            compare: false,
            arguments: part.run.arguments.clone(),
            kernels: kernel_runs(dir, &part, None, finding)?,
        });
    }
    let (base, patched) = (dir.join("base"), dir.join("patched"));
    if summary(&base) && summary(&patched) {
        let mut kernels = Vec::new();
        let mut arguments = Vec::new();
        for (side_dir, side) in [(&base, Side::Base), (&patched, Side::Patched)] {
            let part = crate::report::merge::read(side_dir)?;
            arguments = part.run.arguments.clone();
            kernels.extend(kernel_runs(side_dir, &part, Some(side), finding)?);
        }
        return Ok(Run {
            dir: dir.to_path_buf(),
            compare: true,
            arguments,
            kernels,
        });
    }
    if base.is_dir() || patched.is_dir() {
        let side = if summary(&base) { "patched" } else { "base" };
        bail!(
            "{shown}: a compare run whose {side}/ has no summary.json: it did not end (killed, or still running)"
        );
    }
    if dir.join("result.json").is_file() {
        bail!("{shown}: a case's directory, not a run's: give the run directory above it");
    }
    bail!(
        "{shown}: not a run directory: no summary.json (a run writes one when it ends), nor base/ and patched/ of a compare run"
    )
}

/// A run's results grouped by kernel, in the order the run names its kernels.
fn kernel_runs(
    dir: &Path,
    part: &crate::report::merge::Part,
    side: Option<Side>,
    finding: &Finding,
) -> Result<Vec<KernelRun>> {
    let mut kernels: Vec<KernelInfo> = part.run.kernels.clone();
    for r in &part.results {
        if !kernels
            .iter()
            .any(|k| k.vmlinuz_sha256 == r.kernel.vmlinuz_sha256)
        {
            kernels.push(r.kernel.clone());
        }
    }
    let mut out = Vec::new();
    for k in kernels {
        let results: Vec<&CaseResult> = part
            .results
            .iter()
            .filter(|r| r.kernel.vmlinuz_sha256 == k.vmlinuz_sha256)
            .collect();
        let Some(first) = results.first() else {
            continue;
        };
        // A run of several kernels keeps each one's cases under a directory of its own.
        let kernel_dir = match Path::new(first.dir_name()).parent() {
            Some(p) if !p.as_os_str().is_empty() => dir.join(p),
            _ => dir.to_path_buf(),
        };
        let cases = results
            .iter()
            .map(|r| load_case(&dir.join(r.dir_name()), r, finding))
            .collect::<Result<Vec<_>>>()?;
        out.push(KernelRun {
            dir: kernel_dir,
            side,
            kernel: k,
            cases,
        });
    }
    Ok(out)
}

fn read_json(path: &Path) -> Result<Option<Value>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("parse {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
    }
}

fn load_case(dir: &Path, r: &CaseResult, finding: &Finding) -> Result<Case> {
    let plan = read_json(&dir.join("plan.json"))?;
    let declared = match &plan {
        Some(p) => p["findings"]
            .as_array()
            .is_some_and(|a| a.iter().any(|f| f.as_str() == Some(&finding.id))),
        // A result lists every finding its case declares, seen or not.
        None => r
            .findings
            .iter()
            .any(|f| f.declared && f.id.as_deref() == Some(&finding.id)),
    };
    let cause = finding.cause.as_str();
    let check = |name: &str| r.checks.iter().find(|c| c.name == name);
    // power-loss.json is the judge's whole report; the result's check keeps the same
    // figures, for a run whose case directories lost the file.
    let report = match read_json(&dir.join("power-loss.json"))? {
        Some(v) => Some(v),
        None => check("power_loss_safety").map(|c| c.figures.clone()),
    };
    let power_loss = report
        .filter(|v| v.get("states_checked").is_some())
        .map(|v| PowerLoss {
            states_checked: v["states_checked"].as_u64().unwrap_or(0),
            states: v["states_by_cause"][cause].as_u64().unwrap_or(0),
            first: serde_json::from_value::<Violation>(v["first_by_cause"][cause].clone())
                .ok()
                .and_then(|v| FirstUnsafe::of_violation(&v, cause)),
        });
    let killed = check("safety")
        .and_then(|c| c.figures.get("evidence")?.get(cause).cloned())
        .and_then(|e| serde_json::from_value::<Explanation>(e).ok())
        .map(|e| FirstUnsafe {
            point: None,
            chunks: vec![e.chunk],
            explained: e,
            kept: vec![],
            lost: vec![],
            others: vec![],
        });
    let showed = r.findings.iter().any(|f| f.cause == cause && f.states > 0);
    let trace = if showed { load_trace(dir)? } else { None };
    Ok(Case {
        result: r.clone(),
        dir: dir.to_path_buf(),
        declared,
        setup: plan.as_ref().map(setup_of).unwrap_or_default(),
        power_loss,
        killed,
        trace,
        rejudgeable: r.kept_disks.is_some()
            && dir.join(crate::powercut::files::FILE).is_file()
            && plan.as_ref().is_some_and(|p| !p["power_loss"].is_null()),
    })
}

fn load_trace(dir: &Path) -> Result<Option<Trace>> {
    let file = dir.join(crate::powercut::files::TRACE);
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("read {}", file.display())),
    };
    let disks = match crate::powercut::files::RecordingFiles::read(dir) {
        Ok(r) => r.disks.into_iter().map(|d| (d.name, d.dev)).collect(),
        Err(_) => return Ok(None),
    };
    Ok(Some(Trace { file, text, disks }))
}

/// `RAID10, file bitmap, power loss (volatile_cache)`, from a case's `plan.json`.
fn setup_of(plan: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(level) = plan["array"]["level"].as_u64() {
        parts.push(format!("RAID{level}"));
    }
    if let Some(kind) = plan["array"]["bitmap"]["kind"].as_str() {
        parts.push(format!("{kind} bitmap"));
    }
    if let Some(model) = plan["power_loss"]["model"].as_str() {
        parts.push(format!("power loss ({model})"));
    } else if plan["crash"]["mode"].as_str().is_some() {
        parts.push("SIGKILL crash".into());
    }
    parts.join(", ")
}

// ---------------------------------------------------------------------------------------
// The report.

const WIDTH: usize = 76;
/// The trace excerpt's length: enough for both writes and what came between, short
/// enough to quote in a mail.
const EXCERPT_LINES: usize = 40;
/// Lines kept around each line the excerpt marks.
const CONTEXT: usize = 3;
/// How far before the bitmap write its unplug and page write are looked for.
const PROBE_LOOKBACK: usize = 400;

/// What a case did about the finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// The judge read the finding's cause: this many states (or a SIGKILL's chunks).
    Showed(u64),
    /// Judged, and none of it: PASS or XPASS, or a failure the judge read as other
    /// causes only (a power-loss case XFAIL by another finding judged every state).
    Clean,
    /// Not judged: skipped, an ERROR, or a FAIL the judge did not explain by causes.
    Other,
}

fn status(c: &Case, f: &Finding) -> Status {
    let n = c
        .result
        .findings
        .iter()
        .filter(|s| s.id.as_deref() == Some(&f.id))
        .map(|s| s.states)
        .sum::<u64>();
    let judged_other_causes = c.result.findings.iter().any(|s| s.states > 0);
    match c.result.verdict {
        _ if n > 0 => Status::Showed(n),
        Verdict::Pass | Verdict::Xpass => Status::Clean,
        Verdict::Xfail | Verdict::Fail if judged_other_causes => Status::Clean,
        _ => Status::Other,
    }
}

/// A kernel's figures for the finding, over the cases that declare it.
#[derive(Debug, Default, Clone)]
struct Tally {
    cases: usize,
    showed: usize,
    clean: usize,
    other: usize,
    /// Power-loss states with the cause, and every state judged.
    states: u64,
    checked: u64,
    /// Recorded SIGKILL crashes that showed it, and their uncovered chunks.
    kills: usize,
    chunks: u64,
}

impl Tally {
    fn of(k: &KernelRun, f: &Finding) -> Self {
        let mut t = Tally::default();
        for c in k.cases.iter().filter(|c| c.declared) {
            t.cases += 1;
            let st = status(c, f);
            match st {
                Status::Showed(_) => t.showed += 1,
                Status::Clean => t.clean += 1,
                Status::Other => t.other += 1,
            }
            match (&c.power_loss, st) {
                (Some(p), _) => {
                    t.states += p.states;
                    t.checked += p.states_checked;
                }
                (None, Status::Showed(n)) => {
                    t.kills += 1;
                    t.chunks += n;
                }
                _ => {}
            }
        }
        t
    }

    fn states_cell(&self) -> String {
        if self.checked == 0 {
            "-".into()
        } else {
            format!("{} / {}", n(self.states), n(self.checked))
        }
    }

    /// What ranks one kernel above another for "showed it most".
    fn weight(&self) -> (u64, u64) {
        (self.states, self.chunks)
    }
}

/// `12,345`.
fn n(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn plural(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

/// `text` broken into lines of at most `width`, each after `indent`.
fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent.len() + line.len() + 1 + word.len() > width {
            out.push_str(indent);
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(indent);
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// `text` wrapped with `first` before its first line and `rest` before the others.
fn hang(text: &str, width: usize, first: &str, rest: &str) -> String {
    let body = wrap(text, width - first.len().max(rest.len()), "");
    let mut out = String::new();
    for (i, line) in body.lines().enumerate() {
        let _ = writeln!(out, "{}{line}", if i == 0 { first } else { rest });
    }
    out
}

fn heading(out: &mut String, title: &str) {
    let _ = write!(out, "\n{title}\n{}\n\n", "-".repeat(title.len()));
}

/// The release's series: `6.12` of `6.12.118+deb12-cloud-amd64`.
fn series(release: &str) -> String {
    release
        .split(|c: char| !c.is_ascii_digit())
        .take(2)
        .collect::<Vec<_>>()
        .join(".")
}

/// Every kernel run of the input with its tag, `[1]` on.
struct Rows<'a> {
    rows: Vec<(&'a Run, &'a KernelRun, usize)>,
}

impl<'a> Rows<'a> {
    fn of(input: &'a Input) -> Self {
        let mut rows = Vec::new();
        for run in &input.runs {
            for k in &run.kernels {
                rows.push((run, k, rows.len() + 1));
            }
        }
        Rows { rows }
    }

    fn tag(&self, k: &KernelRun) -> String {
        self.rows
            .iter()
            .find(|(_, r, _)| std::ptr::eq(*r, k))
            .map_or_else(|| "[?]".into(), |(_, _, t)| format!("[{t}]"))
    }
}

/// The kernel that showed the finding most, a stock one when any stock kernel showed it
/// (a bug report is reproduced on the kernel its readers run, and a patched kernel's
/// replay names a bzImage in this machine's cache), and the case of it that shows it most
/// plainly: a power-loss case whose unsafe states are this finding's alone, with the
/// largest share of its states unsafe (how many states a case judges follows from its
/// load's length, not from the race).
fn most<'a>(input: &'a Input, rows: &Rows<'a>) -> Option<(&'a KernelRun, &'a Case, u64)> {
    let f = &input.finding;
    let (_, k, _) = rows
        .rows
        .iter()
        .filter(|(_, k, _)| Tally::of(k, f).showed > 0)
        .max_by_key(|(_, k, t)| {
            (
                !k.is_patched(),
                Tally::of(k, f).weight(),
                std::cmp::Reverse(*t),
            )
        })?;
    let k: &'a KernelRun = k;
    let weight = |c: &Case| {
        let alone = !c
            .result
            .findings
            .iter()
            .any(|s| s.states > 0 && s.cause != f.cause);
        match (status(c, f), &c.power_loss) {
            (Status::Showed(v), Some(p)) => {
                let per_million = v.saturating_mul(1_000_000) / p.states_checked.max(1);
                (1, alone, per_million, v)
            }
            (Status::Showed(v), None) => (0, alone, 0, v),
            _ => (0, false, 0, 0),
        }
    };
    let case = k
        .cases
        .iter()
        .enumerate()
        .filter(|(_, c)| c.declared && matches!(status(c, f), Status::Showed(_)))
        .max_by_key(|(i, c)| (weight(c), std::cmp::Reverse(*i)))?
        .1;
    let count = match status(case, f) {
        Status::Showed(v) => v,
        _ => 0,
    };
    Some((k, case, count))
}

/// The report, as text.
pub fn render(input: &Input) -> String {
    let rows = Rows::of(input);
    let f = &input.finding;
    let mut out = String::new();
    let _ = writeln!(out, "Subject: [BUG] md/md-bitmap: {}", f.title);
    out.push('\n');
    let runs: Vec<String> = input
        .runs
        .iter()
        .map(|r| r.dir.display().to_string())
        .collect();
    out.push_str(&wrap(
        &format!(
            "Finding `{}` of md-bitmap-bench, read from {}: {}. Each figure below names the directory it comes from, by the tags [1] to [{}] listed under the table of kernels.",
            f.id,
            plural(runs.len(), "run", "runs"),
            runs.join(", "),
            rows.rows.len()
        ),
        WIDTH,
        "",
    ));
    what_breaks(&mut out, input, &rows);
    kernels(&mut out, input, &rows);
    reproduce(&mut out, input, &rows);
    trace(&mut out, input, &rows);
    fix(&mut out, input, &rows);
    out
}

fn what_breaks(out: &mut String, input: &Input, rows: &Rows) {
    let f = &input.finding;
    heading(out, "What breaks and when");
    let _ = writeln!(out, "Code: {}() in {}\n", f.code.function, f.code.file);
    out.push_str(&wrap(
        "md sets a chunk's bit in the write-intent bitmap on disk before it writes the chunk's data to the members, so that after a crash it resyncs the chunks whose bits are set, and only those. The rule: in every state a crash can leave, a chunk whose copies (or data and parity) differ has its bit set on disk.",
        WIDTH,
        "",
    ));
    out.push('\n');
    let meaning = Cause::ALL
        .iter()
        .find(|c| c.as_str() == f.cause)
        .map(|c| c.meaning());
    out.push_str(&wrap(
        &format!(
            "It breaks here: {}. The bench's judge reads this from the recorded requests as cause `{}`{}. In such a state a chunk differs between the members while its bit is clear: the resync after the crash skips it, and the copies stay different (reads return whichever copy md picks; a `check` counts the mismatch).",
            f.title,
            f.cause,
            meaning.map_or(String::new(), |m| format!(": {m}")),
        ),
        WIDTH,
        "",
    ));
    out.push('\n');
    out.push_str(&wrap(
        &format!("Seen before (known.yaml): {}", f.seen.trim()),
        WIDTH,
        "",
    ));
    let Some((k, case, _)) = most(input, rows) else {
        let declared = rows
            .rows
            .iter()
            .any(|(_, k, _)| k.cases.iter().any(|c| c.declared));
        out.push('\n');
        out.push_str(&wrap(
            &if declared {
                format!(
                    "None of the runs given shows it: no case that declares `{}` read cause `{}` from its recording (the table below counts what they judged).",
                    f.id, f.cause
                )
            } else {
                format!(
                    "None of the runs given shows it: no case in them declares `{}`, so none could.",
                    f.id
                )
            },
            WIDTH,
            "",
        ));
        return;
    };
    let first = case
        .power_loss
        .as_ref()
        .and_then(|p| p.first.as_ref())
        .or(case.killed.as_ref());
    if let Some(first) = first {
        out.push('\n');
        out.push_str(&wrap(
            &format!(
                "In these runs, {} on {} {}: {}.",
                case.result.case,
                k.kernel.release,
                rows.tag(k),
                first.explained.evidence()
            ),
            WIDTH,
            "",
        ));
        if let Some(still) = confirmed(case, &f.cause) {
            out.push_str(&wrap(
                &format!(
                    "Confirmed in the guest: that state's images, assembled and resynced by md, still differ in chunks {}.",
                    crate::check::ranges(still)
                ),
                WIDTH,
                "",
            ));
        }
    }
}

/// The chunks of the cause a resync in the guest left different (`power_loss_confirmed`).
fn confirmed(case: &Case, cause: &str) -> Option<Vec<u64>> {
    let c = case
        .result
        .checks
        .iter()
        .find(|c| c.name == "power_loss_confirmed")?;
    let still: Vec<u64> = c.figures[cause]["still_divergent"]
        .as_array()?
        .iter()
        .filter_map(|v| v.as_u64())
        .collect();
    (!still.is_empty()).then_some(still)
}

fn patch_names(k: &KernelRun) -> String {
    let names: Vec<String> = k
        .patches()
        .iter()
        .map(|p| {
            p.file.file_name().map_or_else(
                || p.file.display().to_string(),
                |n| n.to_string_lossy().into(),
            )
        })
        .collect();
    if names.is_empty() {
        "-".into()
    } else {
        names.join(", ")
    }
}

fn kernels(out: &mut String, input: &Input, rows: &Rows) {
    let f = &input.finding;
    heading(out, "Kernels tested");
    let header = [
        "kernel",
        "patches",
        "cases",
        "showed",
        "clean",
        "other",
        "unsafe states / checked",
        "run",
    ];
    let mut table: Vec<[String; 8]> = vec![header.map(String::from)];
    for (_, k, tag) in &rows.rows {
        let t = Tally::of(k, f);
        table.push([
            k.kernel.release.clone(),
            patch_names(k),
            t.cases.to_string(),
            t.showed.to_string(),
            t.clean.to_string(),
            t.other.to_string(),
            t.states_cell(),
            format!("[{tag}]"),
        ]);
    }
    let widths: Vec<usize> = (0..8)
        .map(|i| table.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    for row in &table {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            // Names left, figures right.
            if i < 2 || i == 7 {
                let _ = write!(line, "{cell:<w$}  ", w = widths[i]);
            } else {
                let _ = write!(line, "{cell:>w$}  ", w = widths[i]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&wrap(
        &format!(
            "cases: those that declare `{}`; showed: the judge read cause `{}` in them (XFAIL, or FAIL beside a cause no finding explains); clean: judged without it (PASS, XPASS, or failed by other causes only); other: not judged (skipped, ERROR, or a failure with no cause read). A SIGKILL crash that missed the window proves little: the states column is the measure, the power-loss cases' crash states with this cause over every state they judged.",
            f.id, f.cause
        ),
        WIDTH,
        "",
    ));
    out.push('\n');
    for (run, k, tag) in &rows.rows {
        let what = match (run.compare, k.side) {
            (true, Some(Side::Base)) => ", compare run, base side",
            (true, Some(Side::Patched)) => ", compare run, patched side",
            _ => "",
        };
        let _ = writeln!(
            out,
            "[{tag}] {}\n    {}{what}",
            k.dir.display(),
            kernel_origin(&k.kernel)
        );
    }
    // Where it showed, and why the others said nothing.
    let mut lines = String::new();
    for (_, k, tag) in &rows.rows {
        let mut showed: Vec<(&Case, u64)> = k
            .cases
            .iter()
            .filter(|c| c.declared)
            .filter_map(|c| match status(c, f) {
                Status::Showed(v) => Some((c, v)),
                _ => None,
            })
            .collect();
        // Power-loss states before a SIGKILL's chunks, the most first.
        showed.sort_by_key(|(c, v)| std::cmp::Reverse((c.power_loss.is_some(), *v)));
        if !showed.is_empty() {
            let _ = writeln!(lines, "  {} [{tag}]:", k.kernel.release);
            for (c, _) in showed {
                let figure = match (&c.power_loss, status(c, f)) {
                    (Some(p), _) => format!("{} of {} states", n(p.states), n(p.states_checked)),
                    (None, Status::Showed(v)) => format!("{} uncovered chunks", n(v)),
                    _ => String::new(),
                };
                let _ = writeln!(
                    lines,
                    "    {:<44} {:<6} {figure}",
                    c.result.case,
                    c.result.verdict.label()
                );
                if !c.setup.is_empty() {
                    let _ = writeln!(lines, "      {}, seed {}", c.setup, c.result.seed);
                }
            }
        }
    }
    if !lines.is_empty() {
        out.push_str("\nWhere it showed:\n");
        out.push_str(&lines);
    }
    let mut others = String::new();
    for (_, k, tag) in &rows.rows {
        let mut groups: Vec<(String, usize)> = Vec::new();
        for c in k
            .cases
            .iter()
            .filter(|c| c.declared && status(c, f) == Status::Other)
        {
            let why = short_reason(&c.result);
            match groups.iter_mut().find(|(w, _)| *w == why) {
                Some(g) => g.1 += 1,
                None => groups.push((why, 1)),
            }
        }
        for (why, count) in groups {
            others.push_str(&hang(
                &format!("{count} on {} [{tag}]: {why}", k.kernel.release),
                WIDTH,
                "  ",
                "      ",
            ));
        }
    }
    if !others.is_empty() {
        out.push_str("\nNot judged for it (other):\n");
        out.push_str(&others);
    }
    // A cause the case does not declare is left unexplained: the same cause, not counted
    // above, is still worth a maintainer's look.
    let mut undeclared = Vec::new();
    for (_, k, tag) in &rows.rows {
        for c in k.cases.iter().filter(|c| !c.declared) {
            if let Some(s) = c
                .result
                .findings
                .iter()
                .find(|s| s.id.is_none() && s.cause == f.cause && s.states > 0)
            {
                undeclared.push(format!(
                    "{} on {} {tag}: {} {}",
                    c.result.case,
                    k.kernel.release,
                    n(s.states),
                    s.unit
                ));
            }
        }
    }
    if !undeclared.is_empty() {
        out.push('\n');
        out.push_str(&wrap(
            &format!(
                "Cause `{}` also showed in cases that do not declare `{}` (counted as unexplained there, not above): {}.",
                f.cause,
                f.id,
                undeclared.join("; ")
            ),
            WIDTH,
            "",
        ));
    }
}

/// `Debian 6.12.118-1~deb12u1`, `built from tree (git-abc...)`.
fn kernel_origin(k: &KernelInfo) -> String {
    match (&k.package_version, &k.build) {
        (_, Some(b)) => format!("{} build of {}", k.source, b.source_key),
        (Some(v), None) if k.source == "debian" => format!("Debian {v}"),
        (Some(v), None) => format!("{} {v}", k.source),
        (None, None) => k.source.clone(),
    }
}

/// A verdict and the gist of its reason: `SKIP md refuses a bitmap file on an array not
/// yet running`.
fn short_reason(r: &CaseResult) -> String {
    let mut why = r.why();
    // A failed step's reason opens with its command: what happened follows it.
    if why.starts_with('`') {
        if let Some(i) = why.find("`: ") {
            why = &why[i + 3..];
        }
    }
    // The detail in parentheses names paths and figures that differ case by case; what
    // is before it groups the cases.
    let why = why[..why.find(" (").unwrap_or(why.len())].trim();
    let mut short = String::new();
    for word in why.split_whitespace() {
        if short.len() + word.len() > 90 {
            short.push_str(" ...");
            break;
        }
        if !short.is_empty() {
            short.push(' ');
        }
        short.push_str(word);
    }
    if short.is_empty() {
        r.verdict.label().into()
    } else {
        format!("{}: {short}", r.verdict.label())
    }
}

fn reproduce(out: &mut String, input: &Input, rows: &Rows) {
    heading(out, "Reproduce");
    let Some((k, case, count)) = most(input, rows) else {
        out.push_str(&wrap(
            "Nothing to reproduce from these runs: no case showed it.",
            WIDTH,
            "",
        ));
        return;
    };
    let t = Tally::of(k, &input.finding);
    let total = if t.states > 0 {
        format!(
            "{} unsafe states in {}",
            n(t.states),
            plural(t.showed - t.kills, "power-loss case", "power-loss cases")
        )
    } else {
        format!(
            "{} uncovered chunks in {}",
            n(t.chunks),
            plural(t.kills, "recorded crash", "recorded crashes")
        )
    };
    let mut in_case = match &case.power_loss {
        Some(p) => format!(
            "{} of {} states unsafe ({:.1} %)",
            n(p.states),
            n(p.states_checked),
            p.states as f64 * 100.0 / p.states_checked.max(1) as f64
        ),
        None => format!("{} uncovered chunks", n(count)),
    };
    let others: Vec<String> = case
        .result
        .findings
        .iter()
        .filter(|s| s.states > 0 && s.cause != input.finding.cause)
        .map(|s| s.label())
        .collect();
    if others.is_empty() {
        in_case.push_str(", no other cause");
    } else {
        let _ = write!(in_case, ", beside {}", others.join(", "));
    }
    out.push_str(&wrap(
        &format!(
            "{} ({}) showed it most: {total} {}. It shows plainest in {}: {in_case}, seed {}. From a checkout of md-bitmap-bench, the command that case recorded:",
            k.kernel.release,
            kernel_origin(&k.kernel),
            rows.tag(k),
            case.result.case,
            case.result.seed
        ),
        WIDTH,
        "",
    ));
    let _ = writeln!(out, "\n    {}\n", case.result.replay);
    let mut notes = String::from(
        "The seed fixes the case's choices (its writers, their sizes and offsets), not the guest's timing, so a replay judges states of its own.",
    );
    let run = rows
        .rows
        .iter()
        .find(|(_, r, _)| std::ptr::eq(*r, k))
        .map(|(run, _, _)| *run);
    if let (Some(b), Some(run)) = (&case.result.kernel.build, run) {
        // The replay names the build in this machine's cache: how the run made it is
        // what another machine needs.
        let mut made = vec!["cargo xtask".to_string()];
        made.extend(run.arguments.iter().skip(1).cloned());
        let _ = write!(
            notes,
            " Its --kernel is this machine's build of {}, which `{}` made.",
            b.source_key,
            made.join(" ")
        );
    }
    if case.result.kernel.source == "debian" && !case.result.replay.contains("--kernel") {
        let _ = write!(
            notes,
            " Without --kernel it takes Debian's newest {} cloud kernel, which may be newer than {}.",
            crate::kernel::Series::default().name(),
            kernel_origin(&case.result.kernel)
        );
    }
    if case.rejudgeable {
        notes.push_str(
            " The recording quoted below is judged again, on the host and without a VM, by:",
        );
    }
    out.push_str(&wrap(&notes, WIDTH, ""));
    if case.rejudgeable {
        let _ = writeln!(
            out,
            "\n    cargo xtask power-loss judge {}",
            case.dir.display()
        );
    }
}

/// The case whose trace the report quotes: the one the Reproduce section names when it
/// has a trace, else the first that showed the finding with one.
fn traced<'a>(input: &'a Input, rows: &Rows<'a>) -> Option<(&'a KernelRun, &'a Case)> {
    let f = &input.finding;
    let usable = |c: &Case| {
        c.trace.is_some()
            && c.power_loss
                .as_ref()
                .and_then(|p| p.first.as_ref())
                .or(c.killed.as_ref())
                .is_some()
    };
    if let Some((k, c, _)) = most(input, rows).filter(|(_, c, _)| usable(c)) {
        return Some((k, c));
    }
    rows.rows.iter().find_map(|(_, k, _)| {
        k.cases
            .iter()
            .find(|c| c.declared && matches!(status(c, f), Status::Showed(_)) && usable(c))
            .map(|c| (*k, c))
    })
}

fn trace(out: &mut String, input: &Input, rows: &Rows) {
    heading(out, "Trace");
    let f = &input.finding;
    let Some((k, case)) = traced(input, rows) else {
        out.push_str(&wrap(
            if most(input, rows).is_some() {
                "No trace to quote: no case that showed it kept its request trace."
            } else {
                "No trace to quote: no case showed it."
            },
            WIDTH,
            "",
        ));
        return;
    };
    let (Some(tr), Some(first)) = (
        &case.trace,
        case.power_loss
            .as_ref()
            .and_then(|p| p.first.as_ref())
            .or(case.killed.as_ref()),
    ) else {
        return;
    };
    let e = &first.explained;
    let devs: Vec<String> = tr
        .disks
        .iter()
        .map(|(name, (a, b))| format!("{a},{b} is {name}"))
        .collect();
    let others: Vec<String> = first
        .others
        .iter()
        .map(|(cause, chunks)| {
            let who = crate::findings::of_cause(cause).map_or_else(
                || "no known finding".to_string(),
                |o| format!("finding {}", o.id),
            );
            format!(
                "{} by `{cause}`, {who}",
                crate::check::ranges(chunks.iter().copied())
            )
        })
        .collect();
    let state = match &first.point {
        Some((point, after)) => format!(
            "its first unsafe state with cause `{}`: the power cut at crash point {point}, after the {after}, leaves chunks {} uncovered{}",
            f.cause,
            crate::check::ranges(first.chunks.iter().copied()),
            if others.is_empty() {
                String::new()
            } else {
                format!(" (and {})", others.join(", "))
            }
        ),
        None => format!(
            "the state its SIGKILL left, with chunk {} uncovered by cause `{}`",
            e.chunk, f.cause
        ),
    };
    out.push_str(&wrap(
        &format!(
            "From {} on {} {}, {state}. The guest's block_rq_issue/block_rq_complete trace ({}; {}; mdbb_bitmap_unplug and mdbb_bitmap_write are kprobes on __bitmap_unplug and filemap_write_page), with chunk {}'s writes marked:",
            case.result.case,
            k.kernel.release,
            rows.tag(k),
            tr.file.display(),
            devs.join(", "),
            e.chunk
        ),
        WIDTH,
        "",
    ));
    out.push('\n');
    let role = match e.cause {
        Cause::Cleared => "the bitmap write that clears its bit",
        Cause::MarkedClean => "the superblock write that marks the array in sync",
        _ => "the bitmap write that sets its bit",
    };
    let when = |s: &crate::powercut::explore::Seen| {
        format!(
            "{}, issued {:.6} s, {}",
            s.request,
            s.issued_us as f64 / 1e6,
            s.completed_us.map_or("never completed".into(), |c| format!(
                "completed {:.6} s",
                c as f64 / 1e6
            ))
        )
    };
    if let Some(d) = &e.data {
        let _ = writeln!(out, "  D  the data write: {}", when(d));
    }
    if let Some(b) = &e.bitmap {
        let _ = writeln!(out, "  B  {role}: {}", when(b));
    }
    let ex = excerpt(tr, first);
    if ex.unplug {
        let _ = writeln!(
            out,
            "  U  the unplug that sent B's page, and its page write (the kprobes)"
        );
    }
    // What the state kept of the two writes is the story: the data on the medium, the
    // bit not.
    let fate = |s: &Option<crate::powercut::explore::Seen>, tag: &str| {
        let s = s.as_ref()?;
        if first.kept.contains(&s.request) {
            Some(format!("keeps {tag}"))
        } else if first.lost.contains(&s.request) {
            Some(format!("loses {tag}"))
        } else if ex.crash_us.is_some_and(|t| s.issued_us > t) {
            Some(format!("has no {tag}, not yet issued at the cut"))
        } else {
            None
        }
    };
    let fates: Vec<String> = [fate(&e.data, "D"), fate(&e.bitmap, "B")]
        .into_iter()
        .flatten()
        .collect();
    if !fates.is_empty() {
        out.push_str(&hang(
            &format!(
                "The state {}: a disk keeps what completed before the cut, and any part of what was in flight (or, with a volatile cache, not yet flushed).",
                fates.join(" and ")
            ),
            WIDTH,
            "  ",
            "  ",
        ));
    }
    out.push('\n');
    out.push_str(&ex.text);
}

/// A request as the judge's evidence names it: `m0 #6 write 21536+440`, `fs #9 flush`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Named {
    disk: String,
    index: usize,
    /// Sector and length of a write; `None` for a flush.
    write: Option<(u64, u64)>,
}

fn parse_named(s: &str) -> Option<Named> {
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^(\S+) #(\d+) (?:write (\d+)\+(\d+)|flush)$").expect("valid")
    });
    let c = RE.captures(s.trim())?;
    let write = match (c.get(3), c.get(4)) {
        (Some(a), Some(b)) => Some((a.as_str().parse().ok()?, b.as_str().parse().ok()?)),
        _ => None,
    };
    Some(Named {
        disk: c[1].to_string(),
        index: c[2].parse().ok()?,
        write,
    })
}

/// The trace's requests numbered as the recording numbers them
/// (`powercut::recording::assemble`): writes with data and flushes on the recorded disks,
/// in issue order, and the events (issues and completions) in trace order.
struct Numbered {
    /// Per request: its device, sectors, issue time (µs), issue line and completion line.
    requests: Vec<NumberedRq>,
    /// Per event of the order: its line.
    events: Vec<usize>,
}

struct NumberedRq {
    dev: (u32, u32),
    write: Option<(u64, u64)>,
    issued_us: u64,
    issue: usize,
    complete: Option<usize>,
}

fn number(lines: &[&str], devs: &[(u32, u32)]) -> Numbered {
    use crate::logs::request_trace::{parse, RqOp};
    let mut requests: Vec<NumberedRq> = Vec::new();
    let mut events = Vec::new();
    let mut in_flight: Vec<usize> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if !line.contains(": block_rq_issue: ") && !line.contains(": block_rq_complete: ") {
            continue;
        }
        let Some(e) = parse(line).0.into_iter().next() else {
            continue;
        };
        if !devs.contains(&e.dev) {
            continue;
        }
        let write = match e.op {
            // The flush machinery's empty completion of a PREFLUSH/FUA write: not a
            // request of its own.
            RqOp::Write if e.sectors == 0 => continue,
            RqOp::Write => Some((e.sector, e.sectors)),
            RqOp::Flush => None,
            _ => continue,
        };
        if e.issue {
            in_flight.push(requests.len());
            requests.push(NumberedRq {
                dev: e.dev,
                write,
                issued_us: (e.time * 1e6).round() as u64,
                issue: i,
                complete: None,
            });
            events.push(i);
        } else if let Some(at) = in_flight.iter().position(|&r| {
            let q = &requests[r];
            q.dev == e.dev
                && q.write.is_some() == write.is_some()
                && (write.is_none() || q.write == write)
        }) {
            let r = in_flight.remove(at);
            requests[r].complete = Some(i);
            events.push(i);
        }
    }
    Numbered { requests, events }
}

impl Numbered {
    /// The request a name gives, checked against its disk and sectors (and, when known,
    /// its issue time); by its sectors and time when the numbering disagrees.
    fn find(&self, named: &Named, dev: (u32, u32), issued_us: Option<u64>) -> Option<usize> {
        let fits = |r: &NumberedRq| {
            r.dev == dev
                && r.write == named.write
                && issued_us.is_none_or(|t| r.issued_us.abs_diff(t) <= 1)
        };
        if self.requests.get(named.index).is_some_and(fits) {
            return Some(named.index);
        }
        issued_us?;
        self.requests.iter().position(fits)
    }
}

/// The trace around the state: the data and bitmap writes' lines tagged D and B, the
/// unplug that sent the bitmap's page U, the crash point marked after the event it
/// follows, elided where long.
fn excerpt(tr: &Trace, first: &FirstUnsafe) -> Excerpt {
    let lines: Vec<&str> = tr.text.lines().collect();
    let devs: Vec<(u32, u32)> = tr.disks.iter().map(|(_, d)| *d).collect();
    let numbered = number(&lines, &devs);
    let dev_of = |disk: &str| tr.disks.iter().find(|(n, _)| n == disk).map(|(_, d)| *d);
    let locate = |s: &crate::powercut::explore::Seen| -> Option<&NumberedRq> {
        let named = parse_named(&s.request)?;
        let r = numbered.find(&named, dev_of(&named.disk)?, Some(s.issued_us))?;
        numbered.requests.get(r)
    };
    let mut tags: Vec<(usize, &str)> = Vec::new();
    for (seen, tag) in [(&first.explained.data, "D"), (&first.explained.bitmap, "B")] {
        if let Some(r) = seen.as_ref().and_then(&locate) {
            tags.push((r.issue, tag));
            tags.extend(r.complete.map(|c| (c, tag)));
        }
    }
    // Who sent the bitmap write: the last page write before its issue (the request may
    // be dispatched from another task), and the unplug of that task that took the page,
    // as the judge reads them (`explore::queued_carrier`).
    let bitmap_issue = first
        .explained
        .bitmap
        .as_ref()
        .and_then(&locate)
        .map(|r| r.issue);
    let probe = |event: &str, before: usize, pid: Option<u32>| {
        let hit = format!(": {event}: ");
        (before.saturating_sub(PROBE_LOOKBACK)..before)
            .rev()
            .find(|&i| {
                lines[i].contains(&hit)
                    && pid.is_none_or(|p| crate::logs::request_trace::task_pid(lines[i]) == p)
            })
    };
    let mut unplug = false;
    if let Some(page) =
        bitmap_issue.and_then(|b| probe(crate::logs::request_trace::PAGE_WRITE_EVENT, b, None))
    {
        let pid = crate::logs::request_trace::task_pid(lines[page]);
        tags.push((page, "U"));
        if let Some(u) = probe(crate::logs::request_trace::UNPLUG_EVENT, page, Some(pid)) {
            tags.push((u, "U"));
        }
        unplug = true;
    }
    // The crash point follows the event the violation names (`issue of m0 #6 write
    // 21536+440`): that request by its number, or else event point-1 of the order when
    // it is a request of that disk and sectors; never a line that is neither, since a
    // misplaced mark would tell the reader the wrong story.
    let crash = first.point.as_ref().and_then(|(point, after)| {
        let (issue, name) = after
            .strip_prefix("issue of ")
            .map(|n| (true, n))
            .or_else(|| after.strip_prefix("completion of ").map(|n| (false, n)))?;
        let named = parse_named(name)?;
        let dev = dev_of(&named.disk)?;
        let line_of = |r: &NumberedRq| if issue { Some(r.issue) } else { r.complete };
        if let Some(r) = numbered.find(&named, dev, None) {
            return Some((line_of(&numbered.requests[r])?, *point, after));
        }
        let line = *numbered.events.get(point.checked_sub(1)?)?;
        numbered
            .requests
            .iter()
            .any(|r| r.dev == dev && r.write == named.write && line_of(r) == Some(line))
            .then_some((line, *point, after))
    });
    let mut keys: Vec<usize> = tags.iter().map(|(l, _)| *l).collect();
    keys.extend(crash.map(|(l, _, _)| l));
    if keys.is_empty() {
        let why = wrap(
            "(Neither write is in the trace's lines: the recording and the trace disagree, so no excerpt is quoted.)",
            WIDTH,
            "",
        );
        return Excerpt {
            text: why,
            unplug: false,
            crash_us: None,
        };
    }
    let lo = keys.iter().min().unwrap().saturating_sub(CONTEXT);
    let hi = (keys.iter().max().unwrap() + 1).min(lines.len().saturating_sub(1));
    let keep: Vec<usize> = if hi - lo < EXCERPT_LINES {
        (lo..=hi).collect()
    } else {
        let mut keep: Vec<usize> = keys
            .iter()
            .flat_map(|&k| k.saturating_sub(CONTEXT - 1)..=(k + 1).min(hi))
            .collect();
        keep.sort_unstable();
        keep.dedup();
        keep
    };
    let indent = keep
        .iter()
        .map(|&i| lines[i].len() - lines[i].trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out = String::new();
    let mut prev: Option<usize> = None;
    for &i in &keep {
        if let Some(p) = prev.filter(|&p| i > p + 1) {
            let _ = writeln!(out, "       [... {} lines ...]", i - p - 1);
        }
        let tag = tags
            .iter()
            .filter(|(l, _)| *l == i)
            .map(|(_, t)| *t)
            .collect::<Vec<_>>()
            .join("");
        let line = lines[i].get(indent..).unwrap_or(lines[i]);
        let _ = writeln!(out, "  {tag:<2} {line}");
        if let Some((_, point, after)) = crash.filter(|(l, _, _)| *l == i) {
            let _ = writeln!(
                out,
                "  >> power cut here: crash point {point}, after the {after} <<"
            );
        }
        prev = Some(i);
    }
    if first.point.is_some() && crash.is_none() {
        out.push_str("  (the crash point's event is not one the trace numbering finds)\n");
    }
    if first.point.is_none() {
        out.push_str("  (the SIGKILL came after the trace's last line)\n");
    }
    let crash_us = crash.and_then(|(l, _, _)| {
        let e = crate::logs::request_trace::parse(lines[l])
            .0
            .into_iter()
            .next()?;
        Some((e.time * 1e6).round() as u64)
    });
    Excerpt {
        text: out,
        unplug,
        crash_us,
    }
}

struct Excerpt {
    text: String,
    /// Whether it found the unplug that sent the bitmap's page.
    unplug: bool,
    /// When the event the crash point follows happened.
    crash_us: Option<u64>,
}

// ---------------------------------------------------------------------------------------
// The candidate fix.

/// A patched kernel and the stock kernel it is measured against.
struct Pair<'a> {
    stock: Option<&'a KernelRun>,
    patched: &'a KernelRun,
    compare: Option<&'a Run>,
}

fn pairs(input: &Input) -> Vec<Pair<'_>> {
    let mut out = Vec::new();
    for run in &input.runs {
        if run.compare {
            let side = |s| run.kernels.iter().find(|k| k.side == Some(s));
            if let Some(patched) = side(Side::Patched) {
                out.push(Pair {
                    stock: side(Side::Base),
                    patched,
                    compare: Some(run),
                });
            }
            continue;
        }
        for k in run.kernels.iter().filter(|k| k.is_patched()) {
            // The stock kernel of the same series among the plain runs, the same release
            // first.
            let stock: Vec<&KernelRun> = input
                .runs
                .iter()
                .filter(|r| !r.compare)
                .flat_map(|r| &r.kernels)
                .filter(|s| {
                    !s.is_patched() && series(&s.kernel.release) == series(&k.kernel.release)
                })
                .collect();
            let stock = stock
                .iter()
                .find(|s| s.kernel.release == k.kernel.release)
                .or(stock.first())
                .copied();
            out.push(Pair {
                stock,
                patched: k,
                compare: None,
            });
        }
    }
    out
}

/// The cases of `stock` and `patched` that ran the same case: by case and seed, else by
/// case alone (runs made apart draw their own seeds).
fn pair_cases<'a>(stock: &'a KernelRun, patched: &'a KernelRun) -> Vec<(&'a Case, &'a Case)> {
    let mut used = vec![false; patched.cases.len()];
    let mut out = Vec::new();
    for s in &stock.cases {
        let same = |p: &Case, seed: bool| {
            p.result.case == s.result.case && (!seed || p.result.seed == s.result.seed)
        };
        let at = (0..patched.cases.len())
            .find(|&i| !used[i] && same(&patched.cases[i], true))
            .or_else(|| {
                (0..patched.cases.len()).find(|&i| !used[i] && same(&patched.cases[i], false))
            });
        if let Some(i) = at {
            used[i] = true;
            out.push((s, &patched.cases[i]));
        }
    }
    out
}

fn fix(out: &mut String, input: &Input, rows: &Rows) {
    let f = &input.finding;
    heading(out, "Candidate fix");
    if input.fixes.is_empty() {
        out.push_str(&wrap(
            &format!("known.yaml names no candidate fix for `{}` yet.", f.id),
            WIDTH,
            "",
        ));
    } else {
        out.push_str("known.yaml names, by kernel series:\n");
        for p in &input.fixes {
            let _ = writeln!(
                out,
                "  {:<5} {}\n        \"{}\"",
                p.series,
                p.file.display(),
                p.subject
                    .as_deref()
                    .unwrap_or("(no subject: the file could not be read)")
            );
        }
    }
    let pairs = pairs(input);
    if pairs.is_empty() {
        out.push('\n');
        let tags: Vec<String> = rows.rows.iter().map(|(_, _, t)| format!("[{t}]")).collect();
        out.push_str(&wrap(
            &format!(
                "No run given holds a patched kernel (kernel.build.patches is empty in {}), and none is a compare run, so these runs do not say whether a patch closes it.",
                tags.join(", ")
            ),
            WIDTH,
            "",
        ));
        if let Some((k, _, _)) = most(input, rows) {
            let s = series(&k.kernel.release);
            let cases: Vec<String> = k
                .cases
                .iter()
                .filter(|c| c.declared && matches!(status(c, f), Status::Showed(_)))
                .map(|c| format!("--case '{}'", c.result.case))
                .collect();
            let (base, patch) = match input.fixes.iter().find(|p| p.series == s) {
                Some(p) if k.kernel.source == "debian" => {
                    (format!("debian-source:{s}"), p.name.clone())
                }
                Some(p) => ("KERNEL".into(), p.name.clone()),
                None => ("KERNEL".into(), "FILE".into()),
            };
            out.push('\n');
            out.push_str(&wrap(
                &format!(
                    "To measure it on {} {}, where it showed most, with the cases that showed it:",
                    k.kernel.release,
                    rows.tag(k)
                ),
                WIDTH,
                "",
            ));
            let _ = write!(
                out,
                "\n    cargo xtask compare --base {base} --patch {patch}"
            );
            for c in cases {
                let _ = write!(out, " \\\n        {c}");
            }
            out.push('\n');
        }
        return;
    }
    for pair in pairs {
        fix_pair(out, input, rows, &pair);
    }
}

fn fix_pair(out: &mut String, input: &Input, rows: &Rows, pair: &Pair) {
    let f = &input.finding;
    let p = pair.patched;
    out.push('\n');
    let patches: Vec<String> =
        p.patches()
            .iter()
            .map(|info| {
                let stem = info
                    .file
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let ours = input.fixes.iter().find(|fx| {
                    fx.name == stem || fx.sha256.as_deref() == Some(info.sha256.as_str())
                });
                format!(
                    "{}, {}",
                    info.file.display(),
                    match ours {
                        Some(fx) => format!("this finding's candidate fix for {}", fx.series),
                        None => "not one of this finding's candidate fixes".into(),
                    }
                )
            })
            .collect();
    match pair.compare {
        Some(run) => {
            let _ = writeln!(
                out,
                "Compare run {}: the same cases and seeds on both kernels.",
                run.dir.display()
            );
        }
        None => out.push_str("Runs made apart: each drew its own seeds.\n"),
    }
    match pair.stock {
        Some(s) => {
            let _ = writeln!(out, "  stock:    {} {}", s.kernel.release, rows.tag(s));
        }
        None => {
            let _ = writeln!(
                out,
                "  stock:    none of series {} among the runs given",
                series(&p.kernel.release)
            );
        }
    }
    let _ = writeln!(out, "  patched:  {} {}", p.kernel.release, rows.tag(p));
    if patches.is_empty() {
        out.push_str("            (no patches recorded: a kernel of its own)\n");
    }
    for patch in &patches {
        out.push_str(&hang(patch, WIDTH, "            with ", "              "));
    }
    let pt = Tally::of(p, f);
    let Some(stock) = pair.stock else {
        let _ = writeln!(
            out,
            "  {} states: {} / {} checked on patched {}; shown in {} of {} cases",
            f.id,
            n(pt.states),
            n(pt.checked),
            rows.tag(p),
            pt.showed,
            pt.cases
        );
        let verdict = if pt.showed > 0 {
            format!(
                "NOT FIXED: the patched kernel still shows it, in {} {}.",
                plural(pt.showed, "case", "cases"),
                rows.tag(p)
            )
        } else {
            format!(
                "Inconclusive: the patched kernel showed it in none of its {} judged cases, but no stock kernel of series {} is among the runs to show it was there to remove.",
                pt.clean,
                series(&p.kernel.release)
            )
        };
        out.push_str(&wrap(&format!("Verdict: {verdict}"), WIDTH, "  "));
        return;
    };
    let st = Tally::of(stock, f);
    let (ts, tp) = (rows.tag(stock), rows.tag(p));
    let _ = writeln!(
        out,
        "  {} states: {} / {} checked on stock {ts} -> {} / {} on patched {tp}",
        f.id,
        n(st.states),
        n(st.checked),
        n(pt.states),
        n(pt.checked)
    );
    if st.kills + pt.kills > 0 {
        let _ = writeln!(
            out,
            "  recorded SIGKILL crashes showing it: {} {ts} -> {} {tp}",
            st.kills, pt.kills
        );
    }
    let cases = pair_cases(stock, p);
    let mine: Vec<&(&Case, &Case)> = cases
        .iter()
        .filter(|(s, q)| s.declared || q.declared)
        .collect();
    let count = |pred: &dyn Fn(Status, Status) -> bool| {
        mine.iter()
            .filter(|(s, q)| pred(status(s, f), status(q, f)))
            .count()
    };
    let showed = |s: Status| matches!(s, Status::Showed(_));
    let on_stock = count(&|s, _| showed(s));
    let gone = count(&|s, q| showed(s) && q == Status::Clean);
    let still = count(&|s, q| showed(s) && showed(q));
    let unjudged = count(&|s, q| showed(s) && q == Status::Other);
    let new = count(&|s, q| !showed(s) && showed(q));
    // The verdicts the cases that lost it went through: one that showed it beside a cause
    // no finding explains was a FAIL, and one that shows other findings stays an XFAIL.
    let mut moves: Vec<(String, usize)> = Vec::new();
    for (s, q) in mine
        .iter()
        .filter(|(s, q)| showed(status(s, f)) && status(q, f) == Status::Clean)
    {
        let m = format!(
            "{} -> {}",
            s.result.verdict.label(),
            q.result.verdict.label()
        );
        match moves.iter_mut().find(|(x, _)| *x == m) {
            Some(x) => x.1 += 1,
            None => moves.push((m, 1)),
        }
    }
    let moves = if moves.is_empty() {
        String::new()
    } else {
        let each: Vec<String> = moves.iter().map(|(m, k)| format!("{m} {k}")).collect();
        format!(" ({})", each.join(", "))
    };
    let _ = writeln!(
        out,
        "  cases that showed it on stock {ts}: {on_stock}\n    on patched {tp}: gone {gone}{moves}, still showing {still}, not judged {unjudged}"
    );
    let _ = writeln!(out, "  cases that show it only on patched {tp}: {new}");
    let seeds_differ = cases.iter().any(|(s, q)| s.result.seed != q.result.seed);
    // Regressions as `cargo xtask compare` judges them, this finding's own aside.
    let mut other = Vec::new();
    for (s, q) in &cases {
        let mut q = q.result.clone();
        q.seed = s.result.seed;
        for row in crate::report::compare::judge(std::slice::from_ref(&s.result), &[q]) {
            for reg in row
                .regressions
                .iter()
                .filter(|r| !r.starts_with(&format!("{}:", f.id)))
            {
                other.push(format!("{}: {reg}", row.case));
            }
        }
    }
    if other.is_empty() {
        let _ = writeln!(
            out,
            "  other regressions, as compare judges them ({} cases paired): none",
            cases.len()
        );
    } else {
        let _ = writeln!(
            out,
            "  other regressions, as compare judges them ({} cases paired): {}",
            cases.len(),
            other.len()
        );
        for o in other.iter().take(10) {
            out.push_str(&wrap(o, WIDTH, "    "));
        }
        if other.len() > 10 {
            let _ = writeln!(out, "    ... and {} more", other.len() - 10);
        }
    }
    if seeds_differ {
        out.push_str(&wrap(
            "(The paired cases ran with different seeds: runs made apart draw their own, so each pair ran a different load.)",
            WIDTH,
            "  ",
        ));
    }
    let verdict = if pt.showed > 0 || still > 0 || new > 0 {
        format!(
            "NOT FIXED: the patched kernel {tp} still shows it, {} unsafe states in {}.",
            n(pt.states),
            plural(pt.showed, "case", "cases")
        )
    } else if on_stock == 0 {
        format!(
            "Inconclusive: the stock kernel {ts} did not show it in the paired cases either, so these runs cannot tell a fix from luck."
        )
    } else if unjudged > 0 {
        format!(
            "Inconclusive: {} of the {on_stock} cases that showed it on stock were not judged on the patched kernel {tp}.",
            unjudged
        )
    } else {
        format!(
            "gone on the patched kernel in these runs: {gone} of {on_stock} cases that showed it on stock are judged without it. One run each is not proof: the window depends on timing, so more runs (--repeat) make the case."
        )
    };
    // `compare` counts a finding that appears where the base showed none as a
    // regression; with timing-dependent findings that may be chance, so the report
    // names the count and leaves the reading to the list above.
    let regressed = if other.is_empty() {
        String::new()
    } else {
        format!(
            " Apart from it, compare counts {} on the patched kernel (above).",
            plural(other.len(), "regression", "regressions")
        )
    };
    out.push_str(&wrap(
        &format!("Verdict: {verdict}{regressed}"),
        WIDTH,
        "  ",
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::build::{Base, BuildInfo};
    use crate::kernel::patch::PatchInfo;
    use crate::powercut::explore::Seen as Write;

    fn kernel(release: &str, sha: &str, patches: &[&str]) -> KernelInfo {
        KernelInfo {
            source: if patches.is_empty() {
                "debian"
            } else {
                "debian-source"
            }
            .into(),
            release: release.into(),
            vmlinuz_sha256: sha.into(),
            package: None,
            package_version: Some("6.12.118-1~deb12u1".into()),
            package_sha256: None,
            packages: vec![],
            build: (!patches.is_empty()).then(|| BuildInfo {
                tree: "/cache/sources/linux-6.12".into(),
                source_key: "debian-6.12.118-1~deb12u1-abc".into(),
                base: Base::Defconfig,
                fragments: vec![],
                config_sha256: "c0".into(),
                patches: patches
                    .iter()
                    .map(|p| PatchInfo {
                        file: format!("xtask/src/findings/patches/{p}.patch").into(),
                        sha256: format!("sha-{p}"),
                        subject: Some(
                            "md/md-bitmap: wait for the unplug that writes a caller's bits".into(),
                        ),
                    })
                    .collect(),
                compiler: "gcc".into(),
                build_seconds: 1,
            }),
        }
    }

    const TRACE: &str = "\
# tracer: nop
              sh-178     [001] .....     5.983483: tracing_mark_write: md-bitmap-bench: load
           agent-187     [001] .....     6.100000: block_rq_issue: 254,0 WS 4096 () 100 + 8 be,0,4 [agent]
          <idle>-0       [001] d.h2.     6.100500: block_rq_complete: 254,0 WS () 100 + 8 be,0,4 [0]
    kworker/u8:1-31      [001] .....     6.239739: mdbb_bitmap_unplug: (__bitmap_unplug+0x0/0x1c0 [md_mod])
           agent-187     [001] .....     6.240129: block_rq_issue: 254,0 WS 225280 () 21536 + 440 be,0,4 [agent]
           agent-187     [001] .....     6.240675: block_rq_issue: 254,16 WS 225280 () 21536 + 440 be,0,4 [agent]
           agent-188     [000] .....     6.244133: block_rq_issue: 254,0 R 4096 () 5000 + 8 be,0,4 [agent]
    kworker/u8:4-110     [001] .....     6.249067: mdbb_bitmap_write: (filemap_write_page+0x0/0x50 [md_mod])
    kworker/u8:4-110     [001] .....     6.249179: block_rq_issue: 254,0 WSM 512 () 16 + 1 be,0,4 [kworker/u8:4]
    kworker/u8:4-110     [001] .....     6.249231: block_rq_issue: 254,16 WSM 512 () 16 + 1 be,0,4 [kworker/u8:4]
          <idle>-0       [000] d.h2.     6.266226: block_rq_complete: 254,16 WSM () 16 + 1 be,0,4 [0]
          <idle>-0       [001] d.h2.     6.266438: block_rq_complete: 254,16 WS () 21536 + 440 be,0,4 [0]
          <idle>-0       [000] dNH2.     6.269655: block_rq_complete: 254,0 WSM () 16 + 1 be,0,4 [0]
          <idle>-0       [001] dNh2.     6.270160: block_rq_complete: 254,0 WS () 21536 + 440 be,0,4 [0]
";

    fn ordering(chunk: u64) -> Explanation {
        Explanation {
            chunk,
            cause: Cause::Ordering,
            data: Some(Write {
                request: "m0 #1 write 21536+440".into(),
                issued_us: 6240129,
                completed_us: Some(6270160),
            }),
            bitmap: Some(Write {
                request: "m0 #3 write 16+1".into(),
                issued_us: 6249179,
                completed_us: Some(6269655),
            }),
        }
    }

    /// A power-loss case that declares unplug-ordering: `states` of `checked` unsafe
    /// with its cause (0: XPASS).
    fn power_loss(name: &str, states: u64, checked: u64) -> Case {
        let verdict = if states > 0 {
            Verdict::Xfail
        } else {
            Verdict::Xpass
        };
        let mut r = crate::result::tests::result(name, verdict, 7660387277089990888);
        r.replay = format!(
            "cargo xtask run cases/raid1-power-loss.yaml --seed 7660387277089990888 --case {name}"
        );
        r.findings = vec![crate::findings::Seen {
            id: Some("unplug-ordering".into()),
            cause: "ordering".into(),
            states,
            unit: "states".into(),
            declared: true,
            evidence: None,
        }];
        if states > 0 {
            r.checks.push(crate::check::Check {
                name: "power_loss_confirmed".into(),
                ok: true,
                summary: String::new(),
                figures: serde_json::json!({"ordering": {"still_divergent": [152, 153, 154, 155]}}),
            });
            r.kept_disks = Some("disks-x".into());
        }
        Case {
            dir: PathBuf::from(format!("results/R/k/{name}")),
            declared: true,
            setup: "RAID1, internal bitmap, power loss (write_through)".into(),
            power_loss: Some(PowerLoss {
                states_checked: checked,
                states,
                first: (states > 0).then(|| FirstUnsafe {
                    point: Some((3, "issue of m0 #1 write 21536+440".into())),
                    chunks: vec![152, 153, 154, 155],
                    explained: ordering(152),
                    kept: vec!["m0 #1 write 21536+440".into()],
                    // The cut came before md issued B: it is in neither list.
                    lost: vec!["m1 #2 write 21536+440".into()],
                    others: vec![],
                }),
            }),
            killed: None,
            trace: (states > 0).then(|| Trace {
                file: format!("results/R/k/{name}/rq-trace.txt").into(),
                text: TRACE.into(),
                disks: vec![("m0".into(), (254, 0)), ("m1".into(), (254, 16))],
            }),
            rejudgeable: states > 0,
            result: r,
        }
    }

    fn case(name: &str, verdict: Verdict, reason: Option<&str>, declared: bool) -> Case {
        let mut r = crate::result::tests::result(name, verdict, 5);
        r.reason = reason.map(String::from);
        Case {
            dir: PathBuf::from(format!("results/R/k/{name}")),
            declared,
            setup: "RAID1, file bitmap, SIGKILL crash".into(),
            power_loss: None,
            killed: None,
            trace: None,
            rejudgeable: false,
            result: r,
        }
    }

    fn kernel_run(dir: &str, k: KernelInfo, side: Option<Side>, cases: Vec<Case>) -> KernelRun {
        let cases = cases
            .into_iter()
            .map(|mut c| {
                c.result.kernel = k.clone();
                c
            })
            .collect();
        KernelRun {
            dir: dir.into(),
            side,
            kernel: k,
            cases,
        }
    }

    fn input(runs: Vec<Run>) -> Input {
        Input {
            finding: crate::findings::get("unplug-ordering").unwrap().clone(),
            fixes: vec![FixPatch {
                series: "6.12".into(),
                name: "unplug-ordering-6.12".into(),
                file: "xtask/src/findings/patches/unplug-ordering-6.12.patch".into(),
                subject: Some(
                    "md/md-bitmap: wait for the unplug that writes a caller's bits".into(),
                ),
                sha256: Some("sha-unplug-ordering-6.12".into()),
            }],
            runs,
        }
    }

    /// Stock 6.12 showing the race in two power-loss cases, against itself patched,
    /// where `patched_states` are the states the patched kernel still shows in each.
    fn compare_run(patched_states: u64) -> Input {
        let stock = kernel("6.12.118+deb12-cloud-amd64", "aaaa", &[]);
        let patched = kernel("6.12.118", "bbbb", &["unplug-ordering-6.12"]);
        let cases = |states: u64| {
            vec![
                power_loss("raid1-power-loss@internal", states * 2, 10_591),
                power_loss("raid1-power-loss@file", states, 20_000),
                case("crash-levels@raid1-n3-internal", Verdict::Pass, None, true),
                case(
                    "crash-levels@raid1-n3-file",
                    Verdict::Skip,
                    Some("md refuses a bitmap file on an array not yet running (SET_BITMAP_FILE: EINVAL)"),
                    true,
                ),
                case("smoke", Verdict::Pass, None, false),
            ]
        };
        input(vec![Run {
            dir: "results/C".into(),
            compare: true,
            arguments: vec![],
            kernels: vec![
                kernel_run("results/C/base", stock, Some(Side::Base), cases(339)),
                kernel_run(
                    "results/C/patched",
                    patched,
                    Some(Side::Patched),
                    cases(patched_states),
                ),
            ],
        }])
    }

    /// The report with every run of white space one space: prose is wrapped.
    fn flat(report: &str) -> String {
        report.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    fn row<'a>(report: &'a str, tag: &str) -> &'a str {
        report
            .lines()
            .find(|l| l.trim_end().ends_with(tag) && l.contains("  "))
            .unwrap_or_else(|| panic!("no row {tag} in\n{report}"))
    }

    fn cells(line: &str) -> Vec<&str> {
        line.split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect()
    }

    #[test]
    fn a_fixed_kernel_is_reported_with_its_figures_against_the_stock_one() {
        let report = render(&compare_run(0));
        assert!(
            report.starts_with("Subject: [BUG] md/md-bitmap: md sends a write's data while"),
            "{report}"
        );
        assert!(report.contains("Code: __bitmap_unplug() in drivers/md/md-bitmap.c"));
        // One row per kernel: cases declaring it, showed, clean, other, states, its run.
        assert_eq!(
            cells(row(&report, "[1]")),
            [
                "6.12.118+deb12-cloud-amd64",
                "-",
                "4",
                "2",
                "1",
                "1",
                "1,017 / 30,591",
                "[1]"
            ]
        );
        assert_eq!(
            cells(row(&report, "[2]")),
            [
                "6.12.118",
                "unplug-ordering-6.12.patch",
                "4",
                "0",
                "3",
                "1",
                "0 / 30,591",
                "[2]"
            ]
        );
        assert!(report.contains("[1] results/C/base\n"), "{report}");
        assert!(report.contains("[2] results/C/patched\n"), "{report}");
        assert!(
            flat(&report).contains("1 on 6.12.118+deb12-cloud-amd64 [1]: SKIP: md refuses a bitmap file on an array not yet running"),
            "{report}"
        );
        // The fix section: the patch, the states stock vs patched, the transitions.
        assert!(report.contains("xtask/src/findings/patches/unplug-ordering-6.12.patch\n        \"md/md-bitmap: wait for the unplug that writes a caller's bits\""), "{report}");
        assert!(
            flat(&report).contains("patched: 6.12.118 [2] with xtask/src/findings/patches/unplug-ordering-6.12.patch, this finding's candidate fix for 6.12 unplug-ordering states:"),
            "{report}"
        );
        assert!(
            report.contains("unplug-ordering states: 1,017 / 30,591 checked on stock [1] -> 0 / 30,591 on patched [2]"),
            "{report}"
        );
        assert!(
            report.contains("  cases that showed it on stock [1]: 2\n    on patched [2]: gone 2 (XFAIL -> XPASS 2), still showing 0, not judged 0\n"),
            "{report}"
        );
        assert!(
            report.contains("other regressions, as compare judges them (5 cases paired): none"),
            "{report}"
        );
        assert!(
            flat(&report).contains("Verdict: gone on the patched kernel in these runs: 2 of 2"),
            "{report}"
        );
        assert!(!flat(&report).contains("NOT FIXED"), "{report}");
        // Reproduce names the case with the most states and its own command.
        assert!(
            flat(&report).contains("It shows plainest in raid1-power-loss@internal: 678 of 10,591 states unsafe (6.4 %), no other cause, seed 7660387277089990888."),
            "{report}"
        );
        assert!(report.contains("\n    cargo xtask run cases/raid1-power-loss.yaml --seed 7660387277089990888 --case raid1-power-loss@internal\n"), "{report}");
        assert!(
            report.contains("cargo xtask power-loss judge results/R/k/raid1-power-loss@internal"),
            "{report}"
        );
        assert!(
            flat(&report).contains("still differ in chunks 152-155"),
            "{report}"
        );
    }

    #[test]
    fn a_patched_kernel_that_still_shows_it_is_not_fixed() {
        let report = render(&compare_run(5));
        let verdict = report
            .lines()
            .find(|l| l.contains("Verdict:"))
            .unwrap_or_else(|| panic!("{report}"));
        assert!(verdict.contains("NOT FIXED"), "{verdict}");
        assert!(
            !flat(&report).contains("gone on the patched kernel"),
            "{report}"
        );
        assert!(report.contains("still showing 2"), "{report}");
        assert_eq!(cells(row(&report, "[2]"))[3], "2", "{report}");

        // A patched kernel that shows it more than stock is still not the one to
        // reproduce it on: its replay names a bzImage in this machine's cache.
        let report = render(&compare_run(1000));
        let reproduce = &report[report.find("\nReproduce\n").unwrap()..];
        assert!(
            flat(reproduce).contains("6.12.118+deb12-cloud-amd64 (Debian 6.12.118-1~deb12u1) showed it most: 1,017 unsafe states in 2 power-loss cases [1]."),
            "{reproduce}"
        );

        // The same, with the patched kernel in a run of its own beside the stock one.
        let c = compare_run(5);
        let mut kernels = c.runs[0].kernels.clone();
        for k in &mut kernels {
            k.side = None;
        }
        let patched = kernels.pop().unwrap();
        let apart = input(vec![
            Run {
                dir: "results/A".into(),
                compare: false,
                arguments: vec![],
                kernels,
            },
            Run {
                dir: "results/B".into(),
                compare: false,
                arguments: vec![],
                kernels: vec![patched],
            },
        ]);
        let report = render(&apart);
        assert!(flat(&report).contains("Verdict: NOT FIXED"), "{report}");
        assert!(
            !flat(&report).contains("gone on the patched kernel"),
            "{report}"
        );
        assert!(
            report.contains("Runs made apart: each drew its own seeds."),
            "{report}"
        );
    }

    #[test]
    fn the_trace_marks_both_writes_and_the_crash_point_after_the_data_issue() {
        let report = render(&compare_run(0));
        let trace =
            &report[report.find("\nTrace\n").unwrap()..report.find("\nCandidate fix\n").unwrap()];
        let lines: Vec<&str> = trace.lines().collect();
        let at = |needle: &str| {
            lines
                .iter()
                .position(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("no {needle:?} in\n{trace}"))
        };
        let data_issue = at("block_rq_issue: 254,0 WS 225280 () 21536 + 440");
        assert!(
            lines[data_issue].starts_with("  D "),
            "{}",
            lines[data_issue]
        );
        assert!(
            lines[data_issue + 1].contains(
                ">> power cut here: crash point 3, after the issue of m0 #1 write 21536+440 <<"
            ),
            "{trace}"
        );
        assert!(lines[at("block_rq_issue: 254,0 WSM 512 () 16 + 1")].starts_with("  B "));
        assert!(lines[at("block_rq_complete: 254,0 WSM () 16 + 1")].starts_with("  B "));
        assert!(lines[at("block_rq_complete: 254,0 WS () 21536 + 440")].starts_with("  D "));
        // The other member's copy is in the excerpt, untagged.
        assert!(lines[at("block_rq_issue: 254,16 WS 225280")].starts_with("     "));
        assert!(flat(trace).contains("254,0 is m0, 254,16 is m1"), "{trace}");
        assert!(
            flat(trace).contains("The state keeps D and has no B, not yet issued at the cut"),
            "{trace}"
        );
        // The page write that sent B is tagged U.
        assert!(
            lines[at("mdbb_bitmap_write: (filemap")].starts_with("  U "),
            "{trace}"
        );
        assert_eq!(trace.matches(">> power cut here").count(), 1);
    }

    #[test]
    fn a_long_trace_is_elided_between_the_marked_lines() {
        let mut text = TRACE.lines().take(6).collect::<Vec<_>>().join("\n");
        text.push('\n');
        for i in 0..200 {
            text.push_str(&format!(
                "           agent-190     [001] .....     6.2450{i:02}: block_rq_issue: 254,0 R 4096 () {} + 8 be,0,4 [agent]\n",
                90000 + i * 8
            ));
        }
        text.push_str(&TRACE.lines().skip(6).collect::<Vec<_>>().join("\n"));
        let tr = Trace {
            file: "t".into(),
            text,
            disks: vec![("m0".into(), (254, 0)), ("m1".into(), (254, 16))],
        };
        let first = FirstUnsafe {
            point: Some((3, "issue of m0 #1 write 21536+440".into())),
            chunks: vec![152],
            explained: ordering(152),
            kept: vec![],
            lost: vec![],
            others: vec![],
        };
        let ex = excerpt(&tr, &first).text;
        assert!(ex.lines().count() <= EXCERPT_LINES, "{ex}");
        assert!(ex.contains("[... "), "{ex}");
        assert!(ex.contains(">> power cut here"), "{ex}");
        assert_eq!(
            ex.lines().filter(|l| l.starts_with("  D ")).count(),
            2,
            "{ex}"
        );
        assert_eq!(
            ex.lines().filter(|l| l.starts_with("  B ")).count(),
            2,
            "{ex}"
        );
    }

    #[test]
    fn a_finding_no_run_shows_is_said_and_no_patched_run_is_said() {
        let stock = kernel("6.1.0-57-cloud-amd64", "cccc", &[]);
        let report = render(&input(vec![Run {
            dir: "results/S".into(),
            compare: false,
            arguments: vec![],
            kernels: vec![kernel_run(
                "results/S",
                stock,
                None,
                vec![power_loss("raid1-power-loss@internal", 0, 15_291)],
            )],
        }]));
        assert!(
            flat(&report).contains("None of the runs given shows it"),
            "{report}"
        );
        assert!(
            flat(&report).contains("Nothing to reproduce from these runs"),
            "{report}"
        );
        assert!(
            flat(&report).contains("No run given holds a patched kernel"),
            "{report}"
        );
        assert_eq!(
            cells(row(&report, "[1]")),
            [
                "6.1.0-57-cloud-amd64",
                "-",
                "1",
                "0",
                "1",
                "0",
                "0 / 15,291",
                "[1]"
            ]
        );
    }

    #[test]
    fn a_stock_run_suggests_the_compare_that_would_measure_the_fix() {
        let mut c = compare_run(0);
        c.runs[0].compare = false;
        c.runs[0].kernels.truncate(1);
        c.runs[0].kernels[0].side = None;
        let report = render(&c);
        assert!(
            flat(&report).contains(
                "No run given holds a patched kernel (kernel.build.patches is empty in [1])"
            ),
            "{report}"
        );
        assert!(
            report.contains("cargo xtask compare --base debian-source:6.12 --patch unplug-ordering-6.12 \\\n        --case 'raid1-power-loss@internal' \\\n        --case 'raid1-power-loss@file'\n"),
            "{report}"
        );
    }

    #[test]
    fn request_names_and_series_read_as_the_judge_writes_them() {
        assert_eq!(
            parse_named("m0 #6 write 21536+440"),
            Some(Named {
                disk: "m0".into(),
                index: 6,
                write: Some((21536, 440))
            })
        );
        assert_eq!(
            parse_named("fs #9 flush"),
            Some(Named {
                disk: "fs".into(),
                index: 9,
                write: None
            })
        );
        assert_eq!(parse_named("m0 write 1+2 (logged, never traced)"), None);
        assert_eq!(series("6.12.118+deb12-cloud-amd64"), "6.12");
        assert_eq!(series("7.3.4+deb13-cloud-amd64"), "7.3");
        assert_eq!(n(1234567), "1,234,567");
        assert_eq!(n(999), "999");
    }

    #[test]
    fn an_unknown_finding_and_a_directory_that_is_no_run_are_one_line_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = load(
            "no-such",
            &[dir.path().into()],
            &crate::host::project_root(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("unknown finding `no-such`: the known ones are unplug-ordering, "),
            "{err}"
        );
        assert!(!err.contains('\n'));
        let err = load(
            "unplug-ordering",
            &[dir.path().into()],
            &crate::host::project_root(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(&dir.path().display().to_string()) && err.contains("not a run directory"),
            "{err}"
        );
        assert!(!err.contains('\n'));
        std::fs::write(dir.path().join("result.json"), "{}").unwrap();
        let err = load(
            "unplug-ordering",
            &[dir.path().into()],
            &crate::host::project_root(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("a case's directory"), "{err}");
        let err = load(
            "unplug-ordering",
            &[dir.path().join("gone")],
            &crate::host::project_root(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("gone: no such run directory"), "{err}");
    }
}
