//! Boot once, restore many, on the real kernel: a VM started from a saved guest judges a
//! crash case as a cold boot does, and a restored guest that still remembers what it saw
//! of its disks when it was saved is caught before anything runs in it.

mod common;

use common::*;
use std::io::{Seek, SeekFrom, Write};
use std::time::Duration;
use xtask::result::Verdict;

fn checks(r: &xtask::result::CaseResult) -> Vec<(&str, bool)> {
    r.checks.iter().map(|c| (c.name.as_ref(), c.ok)).collect()
}

#[test]
fn a_restored_guest_judges_the_crash_case_as_a_cold_boot_does() {
    let plan = plan_file("raid1-file-bitmap-crash", 41);
    let mut cold = bench().clone();
    cold.restore = false;
    let dir = tempfile::tempdir().unwrap();
    let restored = run_on(bench(), &plan, &dir.path().join("restored"));
    let booted = run_on(&cold, &plan, &dir.path().join("cold"));
    for (how, r) in [("restored", &restored), ("cold", &booted)] {
        assert_eq!(
            r.verdict,
            Verdict::Pass,
            "{how}: {:?}\n{:#?}",
            r.reason,
            r.checks
        );
        let divergent = r.check_figure("crash_left_divergence", "divergent_chunks");
        assert!(divergent > Some(0), "{how}: nothing to judge");
    }
    assert_eq!(checks(&restored), checks(&booted));
    eprintln!(
        "boots: restored {:?} ms, cold {:?} ms; case: restored {} ms, cold {} ms",
        restored.times.boot_ms,
        booted.times.boot_ms,
        restored.times.total_ms,
        booted.times.total_ms
    );
}

/// A restored guest carries whatever it held of its disks when it was saved. Linux drops
/// a disk's page cache when its last opener closes it, so a guest saved after its boot
/// holds none; the refresh and its check are there for the day it does. The test makes a
/// guest that does: it holds the disk open with a page cached while the host rewrites the
/// disk underneath, as a restore over changed disks would. The check must catch it, and
/// the refresh must cure it.
#[test]
fn a_guest_that_remembers_stale_disk_contents_is_caught_and_refreshed() {
    let dir = tempfile::tempdir().unwrap();
    let disk = scratch_disk(dir.path(), "d", 32 << 20);
    let cfg = bench().vm_config(512, 2, vec![disk.clone()], dir.path().join("console.log"));
    let mut vm = bench().boot(&cfg).unwrap();
    // The holder keeps /dev/vda open, so the page its read cached stays cached.
    xtask::vm::guest::spawn(
        &mut vm,
        "exec 3</dev/vda; dd if=/dev/vda of=/dev/null bs=64k count=1 2>/dev/null; touch /tmp/cached; exec sleep 600",
    )
    .unwrap();
    poll(
        Duration::from_secs(30),
        || "the guest never read the disk".into(),
        || {
            let out =
                xtask::vm::guest::run(&mut vm, "test -e /tmp/cached", &[], Duration::from_secs(10))
                    .unwrap();
            out.success().then_some(())
        },
    );
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&disk.path)
        .unwrap();
    f.seek(SeekFrom::Start(0)).unwrap();
    f.write_all(&[0xa5; 4096]).unwrap();
    f.sync_all().unwrap();

    let err =
        xtask::vm::saved::refresh_disks(&mut vm, 1, false).expect_err("a stale view must not pass");
    assert!(
        format!("{err:#}").contains("view of /dev/vda is stale"),
        "{err:#}"
    );
    xtask::vm::saved::refresh_disks(&mut vm, 1, true).unwrap();
    let head = xtask::vm::guest::read(&mut vm, "/dev/vda", 0, 4096, false).unwrap();
    assert_eq!(head, vec![0xa5; 4096], "the refreshed guest reads the disk");
    vm.quit(Duration::from_secs(30)).unwrap();
}
