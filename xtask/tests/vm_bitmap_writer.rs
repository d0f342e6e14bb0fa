//! The bench's own bitmap writer, handed to the kernel with SET_BITMAP_FILE (the way left
//! once mdadm 4.4 dropped `--bitmap=<file>`), against mdadm 4.2's `--grow --bitmap=<file>`
//! on the same running array: the kernel must take both the same way.

mod common;

use agent::{Request, Response};
use common::*;
use std::time::Duration;
use xtask::ondisk::bitmap::{self, Bitmap, BitmapSuper};
use xtask::ondisk::superblock;
use xtask::vm::guest;
use xtask::vm::Vm;

fn sh(vm: &mut Vm, cmd: &str) -> String {
    let out = guest::run(vm, cmd, &[], Duration::from_secs(120)).unwrap();
    assert!(out.success(), "`{cmd}`: {out:?}");
    out.stdout
}

fn read(vm: &mut Vm, path: &str, offset: u64, len: u64) -> Vec<u8> {
    match vm
        .call(
            &Request::Read {
                path: path.into(),
                offset,
                len,
                direct: true,
            },
            Duration::from_secs(10),
        )
        .unwrap()
    {
        Response::Bytes { data } => data,
        other => panic!("{other:?}"),
    }
}

/// What the running kernel shows of its bitmap.
fn kernel_view(vm: &mut Vm) -> String {
    let mdstat = sh(vm, "grep bitmap: /proc/mdstat");
    let chunk = sh(vm, "cat /sys/block/md0/md/bitmap/chunksize");
    // The file's name differs between the two ways, and so may the counter pages in use
    // (mdadm's grow leaves bits to resync); the geometry must not.
    let geometry = regex::Regex::new(r"\d+/(\d+) pages \[\d+KB\]").unwrap();
    let line = mdstat.split(", file:").next().unwrap().trim();
    format!("{}|{}", geometry.replace(line, "$1 pages"), chunk.trim())
}

#[test]
fn a_bitmap_file_written_by_the_bench_is_taken_like_mdadms() {
    let b = bench();
    let dir = tempfile::tempdir().unwrap();
    let disks = ["m0", "m1", "fs"]
        .iter()
        .map(|n| scratch_disk(dir.path(), n, 64 << 20))
        .collect();
    let cfg = b.vm_config(512, 2, disks, dir.path().join("console.log"));
    let mut vm = b.boot(&cfg).unwrap();
    sh(
        &mut vm,
        "mkfs.ext4 -q -F -b 4096 /dev/vdc && mount /dev/vdc /mnt",
    );
    sh(&mut vm, "mdadm --create /dev/md0 --run --level=1 --raid-devices=2 --metadata=1.2 --bitmap=none /dev/vda /dev/vdb");
    let in_sync = "grep -qx idle /sys/block/md0/md/sync_action && grep -qx none /sys/block/md0/md/resync_start";
    guest::poll_until(&mut vm, in_sync, &[], Duration::from_secs(300)).unwrap();

    // mdadm's way.
    sh(
        &mut vm,
        "mdadm --grow /dev/md0 --bitmap=/mnt/by-mdadm --bitmap-chunk=64K",
    );
    let by_mdadm = Bitmap::decode(&read(&mut vm, "/mnt/by-mdadm", 0, 1 << 20)).unwrap();
    let mdadm_view = kernel_view(&mut vm);
    sh(&mut vm, "mdadm --grow /dev/md0 --bitmap=none");

    // The bench's way: the array's UUID and events from its superblock, the file from the
    // encoder, handed over with the ioctl.
    let sb = superblock::decode(&read(&mut vm, "/dev/vda", 4096, 4096)).unwrap();
    let mut new = BitmapSuper::new_v4(sb.set_uuid, by_mdadm.sb.sync_size, 65536, 5);
    new.events = sb.events;
    let bytes = bitmap::encode(&new, &[vec![]]).unwrap();
    match vm
        .call(
            &Request::Write {
                path: "/mnt/by-bench".into(),
                data: bytes,
            },
            Duration::from_secs(10),
        )
        .unwrap()
    {
        Response::Done => {}
        other => panic!("{other:?}"),
    }
    let set = Request::SetBitmapFile {
        md: "/dev/md0".into(),
        file: "/mnt/by-bench".into(),
    };
    match vm.call(&set, Duration::from_secs(30)).unwrap() {
        Response::Done => {}
        other => panic!("SET_BITMAP_FILE: {other:?}\n{}", vm.console_tail(10)),
    }
    let by_bench = Bitmap::decode(&read(&mut vm, "/mnt/by-bench", 0, 1 << 20)).unwrap();
    assert_eq!(
        kernel_view(&mut vm),
        mdadm_view,
        "the kernel shows both bitmaps alike"
    );
    for (what, a, c) in [
        (
            "uuid",
            hex::encode(by_bench.sb.uuid),
            hex::encode(by_mdadm.sb.uuid),
        ),
        (
            "chunksize",
            by_bench.sb.chunksize.to_string(),
            by_mdadm.sb.chunksize.to_string(),
        ),
        (
            "sync_size",
            by_bench.sb.sync_size.to_string(),
            by_mdadm.sb.sync_size.to_string(),
        ),
        (
            "daemon_sleep",
            by_bench.sb.daemon_sleep.to_string(),
            by_mdadm.sb.daemon_sleep.to_string(),
        ),
        (
            "chunks",
            by_bench.chunks().to_string(),
            by_mdadm.chunks().to_string(),
        ),
    ] {
        assert_eq!(a, c, "{what}");
    }

    // And the kernel really uses it: a write sets its bits on disk.
    sh(
        &mut vm,
        "dd if=/dev/zero of=/dev/md0 bs=64K count=4 seek=20 oflag=direct status=none",
    );
    let after = Bitmap::decode(&read(&mut vm, "/mnt/by-bench", 0, 1 << 20)).unwrap();
    assert!(
        (20..24).all(|c| after.is_dirty(0, c)),
        "dirty: {:?}",
        after.dirty_chunks(0)
    );
    let dmesg = sh(&mut vm, "dmesg");
    assert!(
        !dmesg.contains("bitmap superblock UUID mismatch"),
        "{dmesg}"
    );
    sh(&mut vm, "mdadm --stop /dev/md0");
    vm.quit(Duration::from_secs(10)).unwrap();
}
