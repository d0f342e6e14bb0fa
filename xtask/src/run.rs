//! Executing plans: one VM per case, its steps through the agent, the verdict, the
//! results; several cases at once.

use crate::bench::{Bench, Options};
use crate::case::{self, Plan, Step};
use crate::exit;
use crate::report::{self, CaseResult, StepRecord, Times, Verdict};
use crate::vm::{Disk, Vm};
use agent::{Request, Response};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub struct RunArgs {
    pub cases: Vec<String>,
    pub filters: Vec<String>,
    pub bench: Options,
    pub seed: Option<u64>,
    pub jobs: Option<usize>,
    pub results: Option<PathBuf>,
    /// Run each case this many times, each with a fresh seed (or `seed` every time).
    pub repeat: u32,
}

/// `cargo xtask run`: load every case first (a bad case file stops the run before any VM
/// boots), prepare the bench, run, report.
pub fn cli(args: RunArgs) -> Result<u8> {
    let project = crate::bench::project_root();
    let files = case_files(&project, &args.cases)?;
    let mut loaded = Vec::new();
    for f in &files {
        loaded.extend(case::load(f, args.seed)?);
    }
    let loaded = select(loaded, &args.filters)?;
    let plans = repeat(&loaded, args.repeat, args.seed);
    let bench = Bench::prepare(&args.bench)?;
    eprintln!(
        "kernel {} ({}), QEMU {}, {}",
        bench.kernel.info.release,
        bench
            .kernel
            .info
            .package_version
            .as_deref()
            .unwrap_or(&bench.kernel.info.source),
        bench
            .qemu_version
            .trim_start_matches("QEMU emulator version "),
        bench.accel.as_str()
    );
    let results_root = args.results.unwrap_or_else(|| project.join("results"));
    let run_dir = new_run_dir(&results_root)?;
    crate::interrupt::install(&run_dir)?;
    keep_kernel_files(&bench, &run_dir)?;
    let jobs = args
        .jobs
        .unwrap_or_else(|| default_jobs(&plans, bench.accel))
        .max(1);
    let results = run_plans(&bench, &plans, &run_dir, jobs, |r| {
        println!("{}", report::case_line(r))
    });
    println!("{}", report::table(&results));
    println!("{}", report::summary(&results));
    for flaky in report::flaky(&results) {
        println!("FLAKY {flaky}");
    }
    println!("results in {}", run_dir.display());
    report::write_json(&run_dir.join("summary.json"), &results)?;
    Ok(exit_code(&results))
}

/// The kernel's config and, for a kernel the bench built, its whole build log, beside the
/// results they explain (`kernel.config`, `kernel-build.log`).
pub fn keep_kernel_files(bench: &Bench, run_dir: &Path) -> Result<()> {
    for (from, to) in [
        (&bench.kernel.config, "kernel.config"),
        (&bench.kernel.build_log, "kernel-build.log"),
    ] {
        if let Some(from) = from {
            std::fs::copy(from, run_dir.join(to))
                .with_context(|| format!("copy {}", from.display()))?;
        }
    }
    Ok(())
}

/// Each plan `n` times; a repeat gets a fresh seed unless one was given, and a directory
/// of its own (`name.2`, `name.3`...).
pub fn repeat(plans: &[Plan], n: u32, seed: Option<u64>) -> Vec<Plan> {
    let mut out = Vec::new();
    for p in plans {
        out.push(p.clone());
        for i in 2..=n {
            let mut again = p.clone();
            again.run_name = format!("{}.{i}", p.name);
            again.seed = seed.unwrap_or_else(|| {
                p.seed
                    .wrapping_add(u64::from(i - 1).wrapping_mul(0x9e37_79b9_7f4a_7c15))
                    >> 1
            });
            out.push(again);
        }
    }
    out
}

pub fn exit_code(results: &[CaseResult]) -> u8 {
    if results.iter().any(|r| r.verdict == Verdict::Error) {
        exit::CANNOT_TEST
    } else if results.iter().any(|r| r.verdict == Verdict::Fail) {
        exit::CASE_FAILED
    } else if results.iter().all(|r| r.verdict == Verdict::Skip) {
        // Nothing was tested: `git bisect run` must not take that for a good kernel.
        exit::CANNOT_TEST
    } else {
        exit::OK
    }
}

/// As many VMs as the cores hold without slowing one down: under TCG a guest with
/// several vCPUs runs them on one host thread (see `vm::qemu::accel_args`), under KVM
/// each vCPU takes a core.
pub fn default_jobs(plans: &[Plan], accel: crate::host::Accel) -> usize {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let widest = plans
        .iter()
        .map(|p| match accel {
            crate::host::Accel::Tcg => 1,
            crate::host::Accel::Kvm => p.vm.cpus as usize,
        })
        .max()
        .unwrap_or(1);
    (cores / widest).max(1)
}

/// Case files named on the command line (a path, or a name under `cases/`), else every
/// `cases/*.yaml`. A bad file among them stops the run, filtered out or not.
pub fn case_files(project: &Path, names: &[String]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    if names.is_empty() {
        let dir = project.join("cases");
        for e in std::fs::read_dir(&dir).with_context(|| format!("read {}", dir.display()))? {
            let p = e?.path();
            if p.extension().is_some_and(|x| x == "yaml") {
                files.push(p);
            }
        }
        files.sort();
    } else {
        for n in names {
            let as_path = PathBuf::from(n);
            let p = if as_path.is_file() {
                as_path
            } else {
                project.join("cases").join(format!("{n}.yaml"))
            };
            if !p.is_file() {
                bail!(
                    "case {n}: no such file (looked for {n} and {})",
                    p.display()
                );
            }
            files.push(p);
        }
    }
    Ok(files)
}

/// The plans whose name (a matrix case's `name@combination` included) contains a filter.
pub fn select(plans: Vec<Plan>, filters: &[String]) -> Result<Vec<Plan>> {
    let kept: Vec<Plan> = plans
        .into_iter()
        .filter(|p| filters.is_empty() || filters.iter().any(|f| p.name.contains(f.as_str())))
        .collect();
    if kept.is_empty() {
        bail!("no case matches {filters:?}");
    }
    Ok(kept)
}

pub fn new_run_dir(root: &Path) -> Result<PathBuf> {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(':', "-");
    for n in 0.. {
        let dir = root.join(if n == 0 {
            stamp.clone()
        } else {
            format!("{stamp}.{n}")
        });
        match std::fs::create_dir_all(root).and_then(|_| std::fs::create_dir(&dir)) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("create {}", dir.display())),
        }
    }
    unreachable!()
}

/// Runs `plans`, `jobs` at a time; `done` sees each result as its case ends.
pub fn run_plans(
    bench: &Bench,
    plans: &[Plan],
    run_dir: &Path,
    jobs: usize,
    mut done: impl FnMut(&CaseResult),
) -> Vec<CaseResult> {
    let next = AtomicUsize::new(0);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        for _ in 0..jobs.min(plans.len()) {
            let tx = tx.clone();
            let next = &next;
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(plan) = plans.get(i) else { break };
                let dir = run_dir.join(&plan.run_name);
                // A bug of the bench in one case must not take the others down with it.
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run_case(bench, plan, &dir)
                }))
                .unwrap_or_else(|panic| panicked(bench, plan, &panic));
                if tx.send((i, r)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut results: Vec<(usize, CaseResult)> = Vec::new();
        for (i, r) in rx {
            done(&r);
            results.push((i, r));
        }
        results.sort_by_key(|(i, _)| *i);
        results.into_iter().map(|(_, r)| r).collect()
    })
}

/// The result of a case whose run panicked: the bench's fault, so an error.
fn panicked(bench: &Bench, plan: &Plan, panic: &Box<dyn std::any::Any + Send>) -> CaseResult {
    let what = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    let mut r = blank_result(bench, plan);
    r.verdict = Verdict::Error;
    r.reason = Some(format!("the bench panicked: {what}"));
    r
}

fn blank_result(bench: &Bench, plan: &Plan) -> CaseResult {
    CaseResult {
        case: plan.name.clone(),
        file: plan.file.clone(),
        verdict: Verdict::Running,
        reason: None,
        seed: plan.seed,
        kernel: bench.kernel.info.clone(),
        qemu: bench.qemu_version.clone(),
        accel: bench.accel.as_str().into(),
        image: bench.image.key.clone(),
        times: Times::default(),
        steps: Vec::new(),
        splats: Vec::new(),
        checks: Vec::new(),
        figures: Default::default(),
        phases: Vec::new(),
        replay: replay_command(bench, plan),
        kept_disks: None,
    }
}

/// One case from start to verdict; never panics on the guest's account, always writes
/// its result.
pub fn run_case(bench: &Bench, plan: &Plan, case_dir: &Path) -> CaseResult {
    let started = Instant::now();
    let mut result = blank_result(bench, plan);
    if let Some(why) = missing_requirements(bench, plan) {
        // Decided before anything is made: no disks, no boot.
        result.verdict = Verdict::Skip;
        result.reason = Some(why);
        if let Err(e) = std::fs::create_dir_all(case_dir)
            .map_err(anyhow::Error::from)
            .and_then(|_| report::write_json(&case_dir.join("plan.json"), plan))
            .and_then(|_| report::write_json(&case_dir.join("result.json"), &result))
        {
            result.verdict = Verdict::Error;
            result.reason = Some(format!("{e:#}"));
        }
        return result;
    }
    let outcome = std::fs::create_dir_all(case_dir)
        .map_err(anyhow::Error::from)
        .and_then(|_| report::write_json(&case_dir.join("plan.json"), plan))
        .and_then(|_| {
            tempfile::Builder::new()
                .prefix("disks-")
                .tempdir_in(case_dir)
                .map_err(Into::into)
        })
        .map(|disks| {
            let _tracked = crate::interrupt::track(disks.path());
            let outcome = execute(bench, plan, case_dir, disks.path(), &mut result);
            (outcome, disks)
        });
    result.splats = console_logs(case_dir)
        .iter()
        .flat_map(|log| {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let name = log
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            crate::splat::scan(&text).into_iter().map(move |mut s| {
                s.log = name.clone();
                s
            })
        })
        .collect();
    let (verdict, reason, disks) = match outcome {
        Err(e) => (Verdict::Error, Some(format!("{e:#}")), None),
        Ok((Err(Failure::Bench(e)), d)) => (Verdict::Error, Some(format!("{e:#}")), Some(d)),
        Ok((Err(Failure::Case(why)), d)) => (Verdict::Fail, Some(why), Some(d)),
        Ok((Ok(()), d)) => (Verdict::Pass, None, Some(d)),
    };
    result.verdict = verdict;
    result.reason = reason;
    let expected: Vec<regex::Regex> = plan
        .expect_splats
        .iter()
        .filter_map(|re| regex::Regex::new(re).ok())
        .collect();
    for s in result.splats.iter_mut() {
        s.expected = expected.iter().any(|re| re.is_match(&s.title));
    }
    if let Some(s) = result.splats.iter().find(|s| !s.expected) {
        if result.verdict == Verdict::Pass {
            result.verdict = Verdict::Fail;
            result.reason = Some(format!(
                "kernel splat: {} ({} line {})\n{}",
                s.title,
                s.log,
                s.line,
                excerpt(&s.excerpt)
            ));
        }
    }
    if let Some(d) = disks {
        if result.verdict != Verdict::Pass || plan.keep_disks {
            result.kept_disks = Some(d.keep());
        }
    }
    result.times.total_ms = started.elapsed().as_millis() as u64;
    if let Err(e) = report::write_json(&case_dir.join("result.json"), &result) {
        result.verdict = Verdict::Error;
        result.reason = Some(format!("{e:#}"));
    }
    result
}

/// Every console log of a case, one per boot, in boot order.
pub fn console_logs(case_dir: &Path) -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(case_dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            n.starts_with("console") && n.ends_with(".log")
        })
        .collect();
    logs.sort();
    logs
}

fn excerpt(text: &str) -> String {
    text.lines()
        .take(12)
        .map(|l| format!("  | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn replay_command(bench: &Bench, plan: &Plan) -> String {
    let file = plan.file.strip_prefix(&bench.project).unwrap_or(&plan.file);
    let mut cmd = format!("cargo xtask run {} --seed {}", file.display(), plan.seed);
    if plan.name.contains('@') {
        cmd.push_str(&format!(" --case {}", plan.name));
    }
    if bench.kernel.info.source != "debian" {
        cmd.push_str(&format!(" --kernel {}", bench.kernel.vmlinuz.display()));
        if let Some(m) = &bench.kernel.modules {
            cmd.push_str(&format!(" --modules {}", m.display()));
        }
    }
    cmd
}

/// Why a case did not pass: the kernel's fault (a failed step) or the bench's.
pub enum Failure {
    Case(String),
    Bench(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Bench(e)
    }
}

fn execute(
    bench: &Bench,
    plan: &Plan,
    case_dir: &Path,
    disk_dir: &Path,
    result: &mut CaseResult,
) -> Result<(), Failure> {
    let disks = create_disks(plan, disk_dir)?;
    if plan.array.is_some() {
        let mut s = crate::scenario::Scenario::new(bench, plan, case_dir, &disks, result);
        if let Some(c) = &plan.crash {
            return crate::crash::run(&mut s, c);
        }
        if let Some(e) = &plan.examination {
            return crate::examination::run(&mut s, e);
        }
        if let Some(r) = &plan.readd {
            return crate::readd::run(&mut s, r);
        }
        if let Some(b) = &plan.bitmap_eio {
            return crate::bitmap_eio::run(&mut s, b);
        }
    }
    execute_steps(bench, plan, case_dir, disks, result)
}

/// Why the case cannot run on this kernel, if it cannot: options it requires that the
/// kernel's config lacks, or no config to tell.
fn missing_requirements(bench: &Bench, plan: &Plan) -> Option<String> {
    if plan.requires.is_empty() {
        return None;
    }
    let (Some(path), Some(options)) = (&bench.kernel.config, &bench.kernel_options) else {
        return Some(format!(
            "needs {}, and the kernel's config is unknown (no config beside {})",
            plan.requires.join(", "),
            bench.kernel.vmlinuz.display()
        ));
    };
    let missing = crate::kconfig::unset(&plan.requires, options);
    (!missing.is_empty()).then(|| {
        format!(
            "needs {} (unset in {}): build a debug kernel with --config debug",
            missing.join(", "),
            path.display()
        )
    })
}

fn execute_steps(
    bench: &Bench,
    plan: &Plan,
    case_dir: &Path,
    disks: Vec<Disk>,
    result: &mut CaseResult,
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
        .map_err(|e| Failure::Case(format!("boot: {e:#}")))?;
    result.times.boot_ms.push(vm.boot.as_millis() as u64);
    result.times.guest_ready_uptime_ms.push(vm.guest_uptime_ms);
    let _ = report::write_json(&case_dir.join("result.json"), result);
    let env = plan.env();
    for (index, step) in plan.steps.iter().enumerate() {
        let record = run_step(&mut vm, index, step, &env, deadline);
        let failed = (!record.ok).then(|| step_failure(&record, &vm));
        result.steps.push(record);
        let _ = report::write_json(&case_dir.join("result.json"), result);
        if let Some(why) = failed {
            return Err(Failure::Case(why));
        }
    }
    vm.quit(Duration::from_secs(30))?;
    Ok(())
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

pub fn create_disks(plan: &Plan, dir: &Path) -> Result<Vec<Disk>> {
    let cache = host_cache_mode(dir);
    plan.disks
        .iter()
        .map(|d| {
            let path = dir.join(format!("{}.img", d.name));
            let f = std::fs::File::create(&path)
                .with_context(|| format!("create {}", path.display()))?;
            f.set_len(d.size)?; // sparse
            Ok(Disk {
                name: d.name.clone(),
                path,
                cache: cache.into(),
                drive_options: vec![],
                blkdebug: None,
            })
        })
        .collect()
}

/// `cache=none` needs O_DIRECT on the host file (tmpfs has none): probe it once per dir.
fn host_cache_mode(dir: &Path) -> &'static str {
    use std::os::unix::fs::OpenOptionsExt;
    let probe = dir.join(".odirect");
    let ok = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(&probe)
        .is_ok();
    let _ = std::fs::remove_file(&probe);
    if ok {
        "none"
    } else {
        "writeback"
    }
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
        kind,
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
            match guest_run(vm, &r.cmd, env, r.timeout.min(left)) {
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
            match poll_guest(vm, &w.cmd, env, limit) {
                Ok(out) => {
                    rec.ok = true;
                    rec.status = out.status;
                    rec.stdout = out.stdout;
                }
                Err(e) => rec.error = Some(format!("{e:#}")),
            }
        }
    }
    rec.elapsed_ms = started.elapsed().as_millis() as u64;
    rec
}

/// Runs `cmd` in the guest; the agent kills it at `limit`, the host gives the agent a
/// margin beyond that before calling the guest hung.
pub fn guest_run(
    vm: &mut Vm,
    cmd: &str,
    env: &[(String, String)],
    limit: Duration,
) -> Result<agent::RunOutput> {
    let req = Request::Run {
        cmd: cmd.into(),
        env: env.to_vec(),
        timeout_ms: limit.as_millis() as u64,
    };
    match vm.call(&req, limit + Duration::from_secs(15))? {
        Response::Ran(out) => Ok(out),
        Response::Error { message, .. } => bail!("agent: {message}"),
        other => bail!("agent answered {other:?}"),
    }
}

/// Runs `cmd` until it exits 0, at most `limit`; the error carries the last output.
pub fn poll_guest(
    vm: &mut Vm,
    cmd: &str,
    env: &[(String, String)],
    limit: Duration,
) -> Result<agent::RunOutput> {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(50);
    loop {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(1));
        let out = guest_run(vm, cmd, env, left.min(Duration::from_secs(30)))?;
        if out.success() {
            return Ok(out);
        }
        if Instant::now() >= deadline {
            bail!(
                "still not true after {limit:?} (deadline passed): last exit {:?}, stdout {:?}, stderr {:?}",
                out.status,
                out.stdout.trim(),
                out.stderr.trim()
            );
        }
        std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))); // poll with backoff until the deadline
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// `cargo xtask exec`: boot, run one command, print its output.
pub fn exec(opts: &Options, cmd: &str) -> Result<u8> {
    let bench = Bench::prepare(opts)?;
    let dir = tempfile::Builder::new().prefix("mdbb-exec-").tempdir()?;
    let cfg = bench.vm_config(512, 2, vec![], dir.path().join("console.log"));
    let mut vm = bench.boot(&cfg)?;
    eprintln!(
        "booted in {:.2}s (guest uptime {:.2}s)",
        vm.boot.as_secs_f64(),
        vm.guest_uptime_ms as f64 / 1000.0
    );
    let out = guest_run(&mut vm, cmd, &[], Duration::from_secs(300))?;
    print!("{}", out.stdout);
    eprint!("{}", out.stderr);
    vm.quit(Duration::from_secs(10))?;
    Ok(out.status.map(|s| s as u8).unwrap_or(exit::CASE_FAILED))
}
