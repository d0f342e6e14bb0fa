//! The splat scanner on console text a real guest prints: a task blocked behind a frozen
//! filesystem is reported as a hung task, and the bench's own `sysrq w` dump before it is
//! not a splat. `capture_console_logs` (ignored) records the consoles the golden files in
//! `xtask/testdata/splat/` were cut from.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use xtask::vm::{Disk, Vm};

fn fs_disk(dir: &Path) -> Disk {
    let path = dir.join("fs.img");
    std::fs::File::create(&path)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    Disk {
        name: "fs".into(),
        path,
        cache: "writeback".into(),
        drive_options: vec![],
        blkdebug: None,
    }
}

fn run(vm: &mut Vm, cmd: &str) -> String {
    let out = xtask::run::guest_run(vm, cmd, &[], Duration::from_secs(60)).unwrap();
    assert!(out.success(), "`{cmd}`: {out:?}");
    out.stdout
}

/// The console once it holds `marker`, read again and again until `limit` passes.
fn wait_console(console: &Path, marker: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(20);
    loop {
        let text = std::fs::read_to_string(console).unwrap_or_default();
        if text.contains(marker) {
            return text;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no {marker:?} on the console within {limit:?} (deadline passed); tail:\n{}",
            xtask::vm::read_tail(console, 30)
        );
        std::thread::sleep(pause.min(left)); // poll the console with backoff until the deadline
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

/// Freezes an ext4 filesystem and starts `sh -c 'echo x > /mnt/f'`, which blocks in D
/// state on the frozen superblock; returns once the guest shows it in D state.
fn block_a_writer(vm: &mut Vm) {
    run(
        vm,
        "mkfs.ext4 -q -F /dev/vda && mount /dev/vda /mnt && fsfreeze --freeze /mnt \
         && { sh -c 'echo x > /mnt/f' </dev/null >/dev/null 2>&1 & }",
    );
    xtask::run::poll_guest(
        vm,
        "for s in /proc/[0-9]*/stat; do grep -q '^[0-9]* (sh) D ' $s 2>/dev/null && exit 0; done; exit 1",
        &[],
        Duration::from_secs(20),
    )
    .unwrap();
}

#[test]
#[ignore = "records consoles for the golden files: MDBB_SPLAT_CAPTURE=DIR"]
fn capture_console_logs() {
    let out = PathBuf::from(std::env::var("MDBB_SPLAT_CAPTURE").expect("MDBB_SPLAT_CAPTURE"));
    std::fs::create_dir_all(&out).unwrap();
    let b = common::bench();
    let dir = tempfile::tempdir().unwrap();

    // A task blocked in D state: `sysrq w` first (the default 120 s timeout), then hung.
    let console = out.join("hung-task.console");
    let cfg = b.vm_config(512, 2, vec![fs_disk(dir.path())], console.clone());
    let mut vm = b.boot(&cfg).unwrap();
    block_a_writer(&mut vm);
    run(&mut vm, "echo w > /proc/sysrq-trigger");
    wait_console(&console, "Show Blocked State", Duration::from_secs(20));
    run(&mut vm, "echo l > /proc/sysrq-trigger");
    wait_console(&console, "NMI backtrace", Duration::from_secs(20));
    run(&mut vm, "echo 2 > /proc/sys/kernel/hung_task_timeout_secs");
    wait_console(&console, "blocked for more than", Duration::from_secs(30));
    run(&mut vm, "fsfreeze --unfreeze /mnt");
    vm.quit(Duration::from_secs(10)).unwrap();

    // sysrq c.
    let console = out.join("sysrq-c.console");
    let cfg = b.vm_config(512, 2, vec![], console.clone());
    let mut vm = b.boot(&cfg).unwrap();
    let _ = xtask::run::guest_run(
        &mut vm,
        "echo c > /proc/sysrq-trigger",
        &[],
        Duration::from_secs(10),
    );
    assert!(vm.wait_exit(Duration::from_secs(30)));
}
