//! The O_DIRECT examination on the real kernel: the figures must show that the samples
//! really saw a changing bitmap, and record what the page cache and mdadm did.

mod common;

use common::*;
use xtask::result::Verdict;

#[test]
fn examination_passes_and_its_samples_saw_dirty_bits() {
    let plan = plan_file("raid1-file-bitmap-examine", 5);
    let (r, _dir) = run(&plan);
    assert_eq!(r.verdict, Verdict::Pass, "{:?}\n{:#?}", r.reason, r.checks);
    let fig = |name: &str| {
        r.checks
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.figures.clone())
            .unwrap()
    };
    let direct = fig("direct_matches_disk");
    assert_eq!(direct["samples"], 12);
    assert!(direct["samples_with_dirty_bits"].as_u64().unwrap() > 0);
    assert_eq!(direct["mismatches"], 0);
    // md writes the file past the page cache: while it runs, a buffered read is stale.
    assert!(
        direct["page_cache_lagged"].as_u64().unwrap() > 0,
        "{direct}"
    );
    assert!(fig("mdadm_agrees")["compared"].as_u64().unwrap() > 0);
    assert_eq!(
        fig("page_cache_after_release")["first_difference"],
        serde_json::Value::Null
    );
}
