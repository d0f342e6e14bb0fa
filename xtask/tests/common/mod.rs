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

/// A recorded SIGKILL case passes, or shows the stock kernel's known race and nothing
/// else (the finding `unplug-ordering`): a writer's data completes while the bitmap write
/// setting its bit is still in flight, so a few divergent chunks have a clear bit, and
/// the resync misses exactly those. The judge reads that cause from the recording for
/// every uncovered chunk, which makes the case an XFAIL; any other cause, or any other
/// check failing, is a FAIL and fails the test. Returns the chunks the race left
/// uncovered (none for a pass).
#[allow(dead_code)]
pub fn passed_or_the_race(r: &CaseResult) -> Vec<u64> {
    use xtask::result::Verdict;
    if r.verdict == Verdict::Pass {
        return Vec::new();
    }
    assert_eq!(r.verdict, Verdict::Xfail, "{:?}\n{:#?}", r.reason, r.checks);
    assert!(
        r.findings.iter().all(|f| f.declared)
            && r.findings
                .iter()
                .any(|f| f.id.as_deref() == Some("unplug-ordering") && f.states > 0),
        "{:#?}",
        r.findings
    );
    let safety = check_figures(r, "safety");
    let uncovered: Vec<u64> = safety["uncovered_chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .collect();
    assert_eq!(
        safety["chunks_by_cause"]["ordering"].as_u64(),
        Some(uncovered.len() as u64),
        "{safety}"
    );
    eprintln!(
        "the kernel's ordering race (finding unplug-ordering): chunks {uncovered:?} divergent \
         with a clear bit, each read from the recording as ordering"
    );
    uncovered
}
