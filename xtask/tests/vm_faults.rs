//! Fault-injection cases need a debug kernel: on the stock kernel they are skipped, naming
//! the options its config lacks, and a run of nothing but skips cannot pass for a good
//! kernel. (The cases themselves run on a kernel built with `--config md --config debug`;
//! building one does not fit in CI's time.)

mod common;

use common::*;
use xtask::result::Verdict;

#[test]
fn a_fault_case_is_skipped_on_a_kernel_without_the_injectors() {
    let plan = plan_file("raid1-file-bitmap-crash-failslab", 3);
    assert_eq!(
        plan.requires,
        ["CONFIG_FAILSLAB", "CONFIG_FAULT_INJECTION_DEBUG_FS"]
    );
    let (r, dir) = run(&plan);
    assert_eq!(r.verdict, Verdict::Skip, "{:?}", r.reason);
    let why = r.reason.clone().unwrap();
    assert!(
        why.contains("CONFIG_FAILSLAB") && why.contains("CONFIG_FAULT_INJECTION_DEBUG_FS"),
        "{why}"
    );
    assert!(
        why.contains("unset in"),
        "the stock kernel's config is read: {why}"
    );
    assert!(r.times.boot_ms.is_empty(), "nothing booted");
    let made: Vec<String> = std::fs::read_dir(dir.path().join(&plan.name))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        made.iter().all(|n| n == "plan.json" || n == "result.json"),
        "a skipped case makes no disks: {made:?}"
    );
    assert_eq!(
        xtask::result::exit::exit_code(&[r]),
        xtask::result::exit::CANNOT_TEST
    );
}

#[test]
fn a_re_add_through_fail_make_request_needs_the_injector() {
    let plan = plan_file("raid1-file-bitmap-readd-fail-make-request", 3);
    assert_eq!(
        plan.requires,
        [
            "CONFIG_FAIL_MAKE_REQUEST",
            "CONFIG_FAULT_INJECTION_DEBUG_FS"
        ]
    );
    let (r, _dir) = run(&plan);
    assert_eq!(r.verdict, Verdict::Skip, "{:?}", r.reason);
    assert!(
        r.reason
            .as_deref()
            .unwrap()
            .contains("CONFIG_FAIL_MAKE_REQUEST"),
        "{:?}",
        r.reason
    );
    // The blkdebug re-add needs nothing beyond md.
    assert!(plan_file("raid1-file-bitmap-readd", 3).requires.is_empty());
}
