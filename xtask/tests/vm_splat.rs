//! The splat scanner on console text a real guest prints: a task blocked behind a frozen
//! filesystem is reported as a hung task, and the bench's own `sysrq w` dump before it is
//! not a splat. `capture_console_logs` (ignored) records the consoles the golden files in
//! `xtask/testdata/splat/` were cut from.

mod common;

use common::poll;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use xtask::vm::{Disk, Vm};

fn fs_disk(dir: &Path) -> Disk {
    common::scratch_disk(dir, "fs", 64 << 20)
}

fn run(vm: &mut Vm, cmd: &str) -> String {
    let out = xtask::vm::guest::run(vm, cmd, &[], Duration::from_secs(60)).unwrap();
    assert!(out.success(), "`{cmd}`: {out:?}");
    out.stdout
}

/// The console once `ready` holds for it, read again and again until `limit` passes.
fn wait_console(
    console: &Path,
    what: &str,
    limit: Duration,
    ready: impl Fn(&str) -> bool,
) -> String {
    poll(
        limit,
        || {
            format!(
                "no {what} on the console; tail:\n{}",
                xtask::vm::read_tail(console, 30)
            )
        },
        || {
            let text = std::fs::read_to_string(console).unwrap_or_default();
            ready(&text).then_some(text)
        },
    )
}

/// `wait_console` for a line holding `marker`.
fn wait_marker(console: &Path, marker: &str, limit: Duration) -> String {
    wait_console(console, &format!("{marker:?}"), limit, |t| {
        t.contains(marker)
    })
}

/// Freezes an ext4 filesystem and starts `sh -c 'echo x > /mnt/f'`, which blocks in D
/// state on the frozen superblock; returns once the guest shows it in D state.
fn block_a_writer(vm: &mut Vm) {
    run(
        vm,
        "mkfs.ext4 -q -F /dev/vda && mount /dev/vda /mnt && fsfreeze --freeze /mnt \
         && { sh -c 'echo x > /mnt/f' </dev/null >/dev/null 2>&1 & }",
    );
    xtask::vm::guest::poll_until(
        vm,
        "for s in /proc/[0-9]*/stat; do grep -q '^[0-9]* (sh) D ' $s 2>/dev/null && exit 0; done; exit 1",
        &[],
        Duration::from_secs(20),
    )
    .unwrap();
}

#[test]
fn a_writer_blocked_on_a_frozen_filesystem_is_a_hung_task_and_sysrq_w_is_no_splat() {
    let started = Instant::now();
    let b = common::bench();
    let prepared = started.elapsed();
    let dir = tempfile::tempdir().unwrap();
    let console = dir.path().join("console.log");
    let cfg = b.vm_config(512, 2, vec![fs_disk(dir.path())], console.clone());
    let mut vm = b.boot(&cfg).unwrap();
    let booted = started.elapsed();
    block_a_writer(&mut vm);
    let blocked = started.elapsed() - booted;

    // The bench's own dump of the blocked tasks (what a stalled case fails with) shows
    // the writer's stack, and is not a splat.
    let report = xtask::scenario::stall::blocked_tasks(&mut vm);
    assert!(report.contains("state:D"), "{report}");
    assert!(
        xtask::logs::blocked::task_names(&report).contains(&"sh".to_string()),
        "{report}"
    );
    let text = std::fs::read_to_string(&console).unwrap();
    assert_eq!(
        xtask::logs::splat::scan(&text),
        vec![],
        "sysrq w is diagnostics"
    );

    // Two seconds in D state is now a hung task; khungtaskd checks every two seconds.
    let asked = Instant::now();
    run(&mut vm, "echo 2 > /proc/sys/kernel/hung_task_timeout_secs");
    let text = wait_marker(&console, "blocked for more than", Duration::from_secs(30));
    let reported = asked.elapsed();
    let splats = xtask::logs::splat::scan(&text);
    let hung = splats
        .iter()
        .find(|s| s.title == "hung task: sh")
        .unwrap_or_else(|| panic!("no `hung task: sh` in {splats:?}\n{text}"));
    assert_eq!(hung.kind, "hung-task");
    assert!(
        text.lines()
            .nth(hung.line - 1)
            .unwrap()
            .contains("INFO: task sh:"),
        "{hung:?}"
    );
    assert!(
        splats.iter().all(|s| s.kind == "hung-task"),
        "only hung tasks: {splats:?}"
    );

    // Thawed, the writer finishes and no other splat follows.
    run(
        &mut vm,
        "echo 0 > /proc/sys/kernel/hung_task_timeout_secs && fsfreeze --unfreeze /mnt",
    );
    xtask::vm::guest::poll_until(&mut vm, "grep -qx x /mnt/f", &[], Duration::from_secs(20))
        .unwrap();
    let vm_boot = vm.boot;
    vm.quit(Duration::from_secs(10)).unwrap();
    eprintln!(
        "bench ready {:.1}s, booted at {:.1}s (boot {:.1}s), writer in D state {:.1}s later, \
         hung task on the console {:.1}s after the 2 s timeout was set, total {:.1}s",
        prepared.as_secs_f64(),
        booted.as_secs_f64(),
        vm_boot.as_secs_f64(),
        blocked.as_secs_f64(),
        reported.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
#[ignore = "records consoles for the golden files: MDBB_SPLAT_CAPTURE=DIR"]
fn capture_console_logs() {
    let out = PathBuf::from(std::env::var("MDBB_SPLAT_CAPTURE").expect("MDBB_SPLAT_CAPTURE"));
    std::fs::create_dir_all(&out).unwrap();
    let b = common::bench();
    let dir = tempfile::tempdir().unwrap();

    // A task blocked in D state: `sysrq w` and `sysrq l` first (the default 120 s
    // timeout), then reported hung twice, then `sysrq c`.
    let console = out.join("hung-task.console");
    let cfg = b.vm_config(512, 2, vec![fs_disk(dir.path())], console.clone());
    let mut vm = b.boot(&cfg).unwrap();
    block_a_writer(&mut vm);
    run(&mut vm, "echo w > /proc/sysrq-trigger");
    wait_marker(&console, "Show Blocked State", Duration::from_secs(20));
    run(&mut vm, "echo l > /proc/sysrq-trigger");
    wait_marker(&console, "NMI backtrace", Duration::from_secs(20));
    run(&mut vm, "echo 2 > /proc/sys/kernel/hung_task_timeout_secs");
    wait_marker(
        &console,
        "blocked for more than 4 seconds",
        Duration::from_secs(30),
    );
    let _ = xtask::vm::guest::run(
        &mut vm,
        "echo c > /proc/sysrq-trigger",
        &[],
        Duration::from_secs(10),
    );
    assert!(vm.wait_exit(Duration::from_secs(30)));

    // sysrq c.
    let console = out.join("sysrq-c.console");
    let cfg = b.vm_config(512, 2, vec![], console.clone());
    let mut vm = b.boot(&cfg).unwrap();
    let _ = xtask::vm::guest::run(
        &mut vm,
        "echo c > /proc/sysrq-trigger",
        &[],
        Duration::from_secs(10),
    );
    assert!(vm.wait_exit(Duration::from_secs(30)));
}
