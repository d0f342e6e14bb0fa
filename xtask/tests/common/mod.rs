//! What every VM test shares: the bench (kernel, image, accelerator) prepared once per
//! test process from the same cache `cargo xtask run` uses, and a way to run a case
//! written inline.

#![allow(dead_code)]

use std::path::Path;
use std::sync::OnceLock;
use xtask::bench::{Bench, Options};
use xtask::case::{self, Plan};
use xtask::result::CaseResult;

pub fn bench() -> &'static Bench {
    static BENCH: OnceLock<Bench> = OnceLock::new();
    BENCH.get_or_init(|| bench_with(xtask::kernel::KernelSpec::Debian(Default::default())))
}

/// Plans a case given as YAML text, as if it were `cases/<name>.yaml`.
pub fn plan_inline(name: &str, yaml: &str, seed: u64) -> Plan {
    let file = Path::new("cases").join(format!("{name}.yaml"));
    let c = case::parse(&file, yaml).unwrap_or_else(|e| panic!("{e}"));
    case::plan(&file, c, Some(seed)).unwrap_or_else(|e| panic!("{e:#}"))
}

pub fn plan_file(name: &str, seed: u64) -> Plan {
    let file = bench().project.join("cases").join(format!("{name}.yaml"));
    let mut plans = case::load(&file, Some(seed)).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(plans.len(), 1, "{name} is a matrix: use plan_variant");
    plans.remove(0)
}

/// One combination (`raid5-file`) of a matrix case file.
pub fn plan_variant(name: &str, variant: &str, seed: u64) -> Plan {
    let file = bench().project.join("cases").join(format!("{name}.yaml"));
    let full = format!("{name}@{variant}");
    case::load(&file, Some(seed))
        .unwrap_or_else(|e| panic!("{e:#}"))
        .into_iter()
        .find(|p| p.name == full)
        .unwrap_or_else(|| panic!("{name} has no combination {variant}"))
}

/// `cargo xtask ARGS...` (the built binary): its exit status and what it printed.
pub fn xtask_cli<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Runs `plan` into a temporary results directory, kept on disk for the assertions.
pub fn run(plan: &Plan) -> (CaseResult, tempfile::TempDir) {
    let dir = tempfile::Builder::new()
        .prefix("mdbb-test-")
        .tempdir()
        .unwrap();
    let result = run_on(bench(), plan, &dir.path().join(&plan.name));
    (result, dir)
}

/// Runs `plan` on `bench` into `case_dir`, with its result files written as a run writes
/// them.
pub fn run_on(bench: &Bench, plan: &Plan, case_dir: &Path) -> CaseResult {
    let events = xtask::result::events::Events::new(vec![
        Box::<xtask::report::files::ResultFiles>::default(),
    ]);
    xtask::run::run_case(bench, plan, case_dir, &events)
}

pub fn console(dir: &tempfile::TempDir, plan: &Plan) -> String {
    std::fs::read_to_string(dir.path().join(&plan.name).join("console.log")).unwrap_or_default()
}

/// A sparse scratch disk of `size` bytes named `name`, in `dir`.
pub fn scratch_disk(dir: &Path, name: &str, size: u64) -> xtask::vm::Disk {
    xtask::vm::Disk::zeros(dir, name, size).unwrap()
}

/// A bench for `kernel`. CI installs the packages first; a test never runs apt-get.
pub fn bench_with(kernel: xtask::kernel::KernelSpec) -> Bench {
    let opts = Options {
        kernel,
        accel: None,
        install: false,
        restore: true,
    };
    Bench::prepare(&opts).unwrap_or_else(|e| panic!("prepare the bench: {e:#}"))
}

/// Polls `f` with backoff until it yields, at most `limit`; past the deadline the test
/// fails with `failure()`.
pub fn poll<T>(
    limit: std::time::Duration,
    failure: impl FnOnce() -> String,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    use xtask::poll::{until, Pace, Probe};
    let probe = || Ok::<_, ()>(f().map_or(Probe::Pending(()), Probe::Done));
    until(limit, Pace::ms(20, 250), probe, |()| ())
        .unwrap_or_else(|()| panic!("{} (deadline of {limit:?} passed)", failure()))
}

/// The figures of `r`'s check `name`; a missing check fails the test, naming the checks.
pub fn check_figures<'a>(r: &'a CaseResult, name: &str) -> &'a serde_json::Value {
    &r.checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name}: {:#?}", r.checks))
        .figures
}

/// The processes whose command line names `path` (QEMU names its disks, tar and make the
/// build's directories), but not the test process itself.
pub fn processes_naming(path: &Path) -> Vec<String> {
    let needle = path.to_string_lossy().into_owned();
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.bytes().all(|b| b.is_ascii_digit()) && n != me
        })
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&needle))
        .collect()
}

/// A list of chunk numbers in a result's figures.
#[allow(dead_code)]
pub fn chunks(v: &serde_json::Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .collect()
}

/// A recorded case passes, or fails only the safety rule (and, for a SIGKILL, its
/// consequences in the same chunks) with every uncovered chunk's cause read from the
/// recording: an XFAIL when each cause is a finding the case declares (on the stock
/// kernel, `unplug-ordering`: a writer's data goes out while the bitmap write setting its
/// bit is still on its way), a FAIL naming the cause when one is not. Which of the two a
/// run gets depends on md's timing, not on the bench; what the test holds the bench to is
/// that the verdict follows the causes. Anything else fails the test. Returns the chunks
/// left uncovered (none for a pass).
#[allow(dead_code)]
pub fn passed_or_judged_by_cause(r: &CaseResult) -> Vec<u64> {
    use xtask::result::Verdict;
    if r.verdict == Verdict::Pass {
        return Vec::new();
    }
    let failed: Vec<&str> = r
        .checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.name.as_ref())
        .collect();
    assert!(
        failed
            .iter()
            .all(|n| ["safety", "power_loss_safety", "resync_bounds", "converged"].contains(n)),
        "not the safety rule: {failed:?}\n{:?}\n{:#?}",
        r.reason,
        r.checks
    );
    let undeclared: Vec<&xtask::findings::Seen> = r
        .findings
        .iter()
        .filter(|f| !f.declared && f.states > 0)
        .collect();
    match r.verdict {
        Verdict::Xfail => assert!(
            undeclared.is_empty() && r.findings.iter().any(|f| f.states > 0),
            "{:#?}",
            r.findings
        ),
        Verdict::Fail => {
            assert!(
                !undeclared.is_empty(),
                "a FAIL with every cause declared: {:#?}",
                r.findings
            );
            assert!(
                r.why().starts_with("unexplained "),
                "the unexplained cause comes first: {:?}",
                r.reason
            );
        }
        v => panic!("{v:?}: {:?}\n{:#?}", r.reason, r.checks),
    }
    let Some(safety) = r.checks.iter().find(|c| c.name == "safety") else {
        return Vec::new();
    };
    let uncovered = chunks(&safety.figures["uncovered_chunks"]);
    let counted: u64 = safety.figures["chunks_by_cause"]
        .as_object()
        .map_or(0, |m| m.values().filter_map(|v| v.as_u64()).sum());
    assert_eq!(
        counted,
        uncovered.len() as u64,
        "every uncovered chunk has a cause: {}",
        safety.figures
    );
    eprintln!("uncovered chunks {uncovered:?}, by cause: {:?}", r.findings);
    uncovered
}

/// The bench's own binary with `args`: exit status, stdout, stderr.
pub fn xtask(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The bench's own binary with `args`, run from `dir` (paths in `args` are relative to
/// it): exit status, stdout, stderr.
pub fn xtask_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Splits a command line as the shell would, for the quoting commands use here (single
/// and double quotes, no escapes); a `#` that starts a word starts a comment.
pub fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, '#') if word.is_none() => break,
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

/// The one run directory `results` holds.
pub fn only_run(results: &Path) -> std::path::PathBuf {
    let runs: Vec<_> = std::fs::read_dir(results)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs[0].clone()
}
