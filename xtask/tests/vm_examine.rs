//! `cargo xtask examine` on what the real kernel wrote: a bitmap file on ext4 read with
//! O_DIRECT in the guest, and the raw image of a member with an internal bitmap read on the
//! host after the VM quit. In both the mdadm part of the report must be what the guest's
//! `mdadm -X` printed, but for the Filename line.

mod common;

use agent::{Request, Response};
use std::path::Path;
use std::time::{Duration, Instant};
use xtask::cli::examine::examine;
use xtask::vm::guest;
use xtask::vm::{Disk, Vm};

const MIB: u64 = 1 << 20;

/// Runs `cmd`, which must succeed; its stdout.
fn sh(vm: &mut Vm, cmd: &str, limit_s: u64) -> String {
    let out = guest::run(vm, cmd, &[], Duration::from_secs(limit_s))
        .unwrap_or_else(|e| panic!("`{cmd}`: {e:#}\n{}", vm.console_tail(20)));
    assert!(
        out.success(),
        "`{cmd}`: {out:?}\nconsole:\n{}",
        vm.console_tail(20)
    );
    out.stdout
}

/// `len` bytes at `offset` of `path` with O_DIRECT (fewer at end of file).
fn read_direct(vm: &mut Vm, path: &str, offset: u64, len: u64) -> Vec<u8> {
    let req = Request::Read {
        path: path.into(),
        offset,
        len,
        direct: true,
    };
    match vm.call(&req, Duration::from_secs(20)).unwrap() {
        Response::Bytes { data } => data,
        other => panic!("read {path}: {other:?}"),
    }
}

/// Waits until `md` has finished its initial resync.
fn wait_in_sync(vm: &mut Vm, md: &str) {
    let cmd = format!(
        "grep -qx idle /sys/block/{md}/md/sync_action && grep -qx none /sys/block/{md}/md/resync_start"
    );
    guest::poll_until(vm, &cmd, &[], Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{md} resync: {e:#}\n{}", vm.console_tail(20)));
}

/// Waits until the bitmap read with O_DIRECT from the first `len` bytes of `path` (a
/// bitmap file, or a member holding its superblock and internal bitmap) has no dirty
/// chunk: the initial resync leaves every bit set, and the daemon clears them a few
/// daemon_sleep periods later. How long it took.
fn wait_bitmap_clean(vm: &mut Vm, dir: &Path, path: &str, len: u64) -> Duration {
    use xtask::poll::{until, Pace, Probe};
    let started = Instant::now();
    let probe = || {
        let bytes = read_direct(vm, path, 0, len);
        let report = examine_bytes(dir, "poll", &bytes);
        Ok::<_, String>(if listed_chunks(&report).is_empty() {
            Probe::Done(started.elapsed())
        } else {
            Probe::Pending(report)
        })
    };
    until(
        Duration::from_secs(60),
        Pace::ms(500, 500),
        probe,
        |report| report,
    )
    .unwrap_or_else(|report| {
        panic!("{path}: the bitmap is still dirty 60 s after the resync:\n{report}")
    })
}

/// The lines of an `mdadm -X` text but its Filename line.
fn without_filename(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with("        Filename : "))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The mdadm part of an `examine` report (from its Filename line to the Dirty lines),
/// without the Filename line.
fn mdadm_part(report: &str) -> String {
    let start = report
        .find("        Filename : ")
        .unwrap_or_else(|| panic!("no bitmap report in:\n{report}"));
    let end = report
        .find("    Dirty chunks : ")
        .unwrap_or_else(|| panic!("no Dirty chunks line in:\n{report}"));
    without_filename(&report[start..end])
}

/// The value of the `label : value` line in `text` (labels are right-aligned).
fn field<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.trim_start().strip_prefix(&format!("{label} : ")))
        .unwrap_or_else(|| panic!("no {label:?} in:\n{text}"))
}

/// "N dirty" from an mdadm `Bitmap : T bits (chunks), N dirty (P%)` line.
fn mdadm_dirty(text: &str) -> u64 {
    let bitmap = field(text, "Bitmap");
    let (_, after) = bitmap.split_once(", ").unwrap();
    after.split(' ').next().unwrap().parse().unwrap()
}

/// The chunks the `Dirty chunks` line lists ("3-7, 12" or "none").
fn listed_chunks(report: &str) -> Vec<u64> {
    let line = field(report, "Dirty chunks");
    if line == "none" {
        return Vec::new();
    }
    line.split(", ")
        .flat_map(|r| match r.split_once('-') {
            Some((a, b)) => a.parse::<u64>().unwrap()..=b.parse().unwrap(),
            None => {
                let n: u64 = r.parse().unwrap();
                n..=n
            }
        })
        .collect()
}

/// Writes `bytes` to a host file and examines it.
fn examine_bytes(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    examine(&path).unwrap_or_else(|e| panic!("{e:#}"))
}

fn disk(dir: &Path, name: &str, size: u64) -> Disk {
    common::scratch_disk(dir, name, size)
}

#[test]
fn examine_agrees_with_mdadm_on_a_bitmap_file_and_an_internal_bitmap() {
    let started = Instant::now();
    let mut last = Instant::now();
    let mut lap = move |what: &str| {
        eprintln!(
            "[{:6.1}s] {what} ({:.1}s)",
            started.elapsed().as_secs_f64(),
            last.elapsed().as_secs_f64()
        );
        last = Instant::now();
    };
    let b = common::bench();
    let dir = tempfile::Builder::new()
        .prefix("mdbb-examine-")
        .tempdir()
        .unwrap();
    let host = dir.path();
    // vda, vdb: md0's members; vdc: ext4 with md0's bitmap file; vdd, vde: md1's members.
    let disks = vec![
        disk(host, "m0", 64 * MIB),
        disk(host, "m1", 64 * MIB),
        disk(host, "fs", 64 * MIB),
        disk(host, "i0", 64 * MIB),
        disk(host, "i1", 64 * MIB),
    ];
    let cfg = b.vm_config(512, 2, disks, host.join("console.log"));
    lap("prepare");
    let mut vm = b.boot(&cfg).unwrap();
    lap("boot");

    // --- md0: a bitmap file on ext4 ---
    sh(
        &mut vm,
        "mkfs.ext4 -q -F -b 4096 /dev/vdc && mount /dev/vdc /mnt",
        60,
    );
    sh(
        &mut vm,
        "mdadm --create /dev/md0 --run --level=1 --raid-devices=2 --metadata=1.2 \
         --bitmap=/mnt/bitmap --bitmap-chunk=64K /dev/vda /dev/vdb",
        60,
    );
    wait_in_sync(&mut vm, "md0");
    lap("md0 created and in sync");
    wait_bitmap_clean(&mut vm, host, "/mnt/bitmap", MIB);
    lap("md0's bitmap clean on disk");

    // Chunks 50..=65 of 64 KiB.
    sh(
        &mut vm,
        "dd if=/dev/urandom of=/dev/md0 bs=64K count=16 seek=50 oflag=direct status=none",
        60,
    );
    let written = Instant::now();
    // While the array runs: O_DIRECT, mdadm -X, O_DIRECT again.
    let live = read_direct(&mut vm, "/mnt/bitmap", 0, MIB);
    let since_write = written.elapsed();
    let live_mdadm = sh(&mut vm, "mdadm -X /mnt/bitmap", 30);
    let live_again = read_direct(&mut vm, "/mnt/bitmap", 0, MIB);
    let live_report = examine_bytes(host, "bitmap-live", &live);
    let live_chunks = listed_chunks(&live_report);
    eprintln!(
        "md0 running, {:.1}s after dd: dirty chunks {}; mdadm -X says {} dirty; \
         file unchanged across mdadm: {}; mdadm part equal: {}",
        since_write.as_secs_f64(),
        field(&live_report, "Dirty chunks"),
        mdadm_dirty(&live_mdadm),
        live == live_again,
        mdadm_part(&live_report) == without_filename(&live_mdadm)
    );
    // Write intent: the bits were on disk before the data, and nothing else was dirty; the
    // daemon clears a bit no sooner than one daemon_sleep (5 s) after its last write.
    if since_write < Duration::from_secs(5) {
        assert_eq!(
            live_chunks,
            (50..=65).collect::<Vec<u64>>(),
            "chunks 50-65 were just written to a clean array\n{live_report}"
        );
    }
    lap("md0 written and sampled while running");

    sh(&mut vm, "mdadm --stop /dev/md0", 60);
    let file = read_direct(&mut vm, "/mnt/bitmap", 0, MIB);
    let file_mdadm = sh(&mut vm, "mdadm -X /mnt/bitmap", 30);
    let file_report = examine_bytes(host, "bitmap", &file);
    eprintln!(
        "md0 stopped: {} bytes of bitmap file\n--- mdadm -X /mnt/bitmap ---\n{file_mdadm}\
         --- examine ---\n{file_report}",
        file.len()
    );
    assert_eq!(
        mdadm_part(&file_report),
        without_filename(&file_mdadm),
        "examine on the stopped array's bitmap file vs the guest's mdadm -X"
    );
    assert_eq!(
        listed_chunks(&file_report).len() as u64,
        mdadm_dirty(&file_mdadm),
        "the Dirty chunks line lists as many chunks as mdadm counts"
    );
    assert_eq!(field(&file_report, "Chunksize"), "64 KB");
    lap("md0 stopped and compared");

    // --- md1: an internal bitmap ---
    sh(
        &mut vm,
        "mdadm --create /dev/md1 --run --level=1 --raid-devices=2 --metadata=1.2 \
         --bitmap=internal --bitmap-chunk=64K /dev/vdd /dev/vde",
        60,
    );
    wait_in_sync(&mut vm, "md1");
    lap("md1 created and in sync");
    wait_bitmap_clean(&mut vm, host, "/dev/vdd", MIB);
    lap("md1's bitmap clean on disk");
    sh(
        &mut vm,
        "dd if=/dev/urandom of=/dev/md1 bs=64K count=16 seek=50 oflag=direct status=none",
        60,
    );
    let written = Instant::now();
    // The first MiB of the member holds the 1.2 superblock and the bitmap after it.
    let head = read_direct(&mut vm, "/dev/vdd", 0, MIB);
    let since_write = written.elapsed();
    let head_report = examine_bytes(host, "vdd-head-live", &head);
    let head_chunks = listed_chunks(&head_report);
    eprintln!(
        "md1 running, {:.1}s after dd: internal bitmap dirty chunks {}",
        since_write.as_secs_f64(),
        field(&head_report, "Dirty chunks")
    );
    if since_write < Duration::from_secs(5) {
        assert_eq!(
            head_chunks,
            (50..=65).collect::<Vec<u64>>(),
            "chunks 50-65 were just written to a clean array\n{head_report}"
        );
    }
    sh(&mut vm, "mdadm --stop /dev/md1", 60);
    let member_mdadm = sh(&mut vm, "mdadm -X /dev/vdd", 30);
    let member_examine = sh(&mut vm, "mdadm --examine /dev/vdd", 30);
    lap("md1 written, sampled and stopped");
    vm.quit(Duration::from_secs(30)).unwrap();
    lap("quit");

    let image = host.join("i0.img");
    let report = examine(&image).unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!(
        "--- mdadm -X /dev/vdd ---\n{member_mdadm}--- examine {} ---\n{report}",
        image.display()
    );
    assert_eq!(
        mdadm_part(&report),
        without_filename(&member_mdadm),
        "examine on the raw image of vdd vs the guest's mdadm -X /dev/vdd"
    );
    assert_eq!(
        listed_chunks(&report).len() as u64,
        mdadm_dirty(&member_mdadm)
    );
    // The summary says what mdadm --examine says, and the bitmap belongs to the array.
    for label in [
        "Array UUID",
        "Raid Level",
        "Raid Devices",
        "Events",
        "Data Offset",
        "Device Role",
    ] {
        assert_eq!(
            field(&report, label),
            field(&member_examine, label),
            "{label}\n{member_examine}"
        );
    }
    assert_eq!(
        field(&report, "Data Size").trim_end_matches(" sectors"),
        field(&member_examine, "Avail Dev Size")
            .split(' ')
            .next()
            .unwrap()
    );
    assert_eq!(field(&report, "Array UUID"), field(&report, "UUID"));
    assert!(field(&report, "Superblock").starts_with("md 1.2 at sector 8"));

    // md0's members carry no internal bitmap: the summary alone.
    let m0 = examine(&host.join("m0.img")).unwrap_or_else(|e| panic!("{e:#}"));
    assert!(m0.ends_with("  Internal Bitmap : none\n"), "{m0}");
    assert_eq!(field(&m0, "Array UUID"), field(&file_report, "UUID"));
    lap("host examine of the images");
    assert!(
        started.elapsed() < Duration::from_secs(180),
        "took {:?}",
        started.elapsed()
    );
}
