//! The platform under the real kernel and the real QEMU: booting, the agent, the smoke
//! case, and every way a guest can go wrong ending its case with the reason.

mod common;

use common::*;
use xtask::result::Verdict;

#[test]
fn smoke_case_passes_and_records_what_the_guest_did() {
    let plan = plan_file("smoke", 1);
    let (r, dir) = run(&plan);
    assert_eq!(r.verdict, Verdict::Pass, "{:?}\n{}", r.reason, r.replay);
    assert_eq!(r.times.boot_ms.len(), 1);
    assert!(r.times.boot_ms[0] > 0);
    assert!(
        r.kernel.package_version.is_some(),
        "the Debian package version is recorded"
    );
    assert_eq!(r.kernel.vmlinuz_sha256.len(), 64);
    let examine = r
        .steps
        .iter()
        .find(|s| s.cmd.contains("mdadm -X"))
        .expect("an mdadm -X step");
    assert!(
        examine.stdout.contains("Chunksize : 64 KB"),
        "{}",
        examine.stdout
    );
    let console = console(&dir, &plan);
    assert!(
        console.contains("md/raid1:md0: active with 2 out of 2 mirrors"),
        "{console}"
    );
    assert!(
        console.contains("using deprecated bitmap file support"),
        "the array really has a file bitmap"
    );
    assert!(
        r.kept_disks.is_none(),
        "a passing case keeps no disk images"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("smoke/result.json")).unwrap())
            .unwrap();
    assert_eq!(json["verdict"], "pass");
    assert_eq!(json["seed"], 1);
}

#[test]
fn a_guest_panic_fails_the_case_with_its_title_and_qemu_is_gone() {
    let plan = plan_inline(
        "panic",
        "description: d\ndisks: []\nsteps:\n  - run: echo ok\n  - run: echo c > /proc/sysrq-trigger\n",
        2,
    );
    let (r, dir) = run(&plan);
    assert_eq!(r.verdict, Verdict::Fail, "{:?}", r.reason);
    let reason = r.reason.unwrap();
    assert!(reason.contains("step 1"), "{reason}");
    assert!(reason.contains("QEMU exited"), "{reason}");
    assert_eq!(
        r.splats.first().map(|s| s.title.as_str()),
        Some("panic: sysrq triggered crash"),
        "{:?}",
        r.splats
    );
    assert!(r.steps[0].ok && !r.steps[1].ok);
    // The real console text, kept for the splat parser's golden tests.
    let console = console(&dir, &plan);
    assert!(console.contains("Kernel panic - not syncing: sysrq triggered crash"));
}

#[test]
fn a_hung_command_ends_at_its_deadline_and_the_next_step_never_runs() {
    let plan = plan_inline(
        "hang",
        "description: d\ndisks: []\nsteps:\n  - run: {cmd: sleep 600, timeout: 2s}\n  - run: echo never\n",
        3,
    );
    let started = std::time::Instant::now();
    let (r, _dir) = run(&plan);
    assert_eq!(r.verdict, Verdict::Fail);
    assert!(
        r.reason
            .as_deref()
            .unwrap()
            .contains("still running after its timeout of 2s"),
        "{:?}",
        r.reason
    );
    assert_eq!(r.steps.len(), 1);
    assert!(started.elapsed() < std::time::Duration::from_secs(120));
}

#[test]
fn a_command_the_shell_cannot_run_is_an_error_of_the_case_not_a_fail() {
    for (name, cmd) in [
        ("no-such-command", "mdadmm --detail /dev/md0"),
        ("syntax", "'if then fi'"),
        ("not-executable", "/etc/passwd"),
    ] {
        let plan = plan_inline(
            name,
            &format!("description: d\ndisks: []\nsteps:\n  - run: {cmd}\n  - run: echo never\n"),
            5,
        );
        let (r, _dir) = run(&plan);
        assert_eq!(r.verdict, Verdict::Error, "{cmd}: {:?}", r.reason);
        assert!(
            r.reason
                .as_deref()
                .unwrap()
                .contains("the case's command cannot work"),
            "{cmd}: {:?}",
            r.reason
        );
        assert_eq!(r.steps.len(), 1);
    }
    // A case that expects the status means it.
    let plan = plan_inline(
        "expects-127",
        "description: d\ndisks: []\nsteps:\n  - run: {cmd: no-such-tool, expect_status: 127}\n",
        5,
    );
    let (r, _dir) = run(&plan);
    assert_eq!(r.verdict, Verdict::Pass, "{:?}", r.reason);
}

#[test]
fn wait_for_polls_until_true_and_reports_its_deadline() {
    let plan = plan_inline(
        "waits",
        "description: d\ndisks: []\nsteps:\n  - run: (sleep 1; touch /tmp/flag) >/dev/null 2>&1 &\n  - wait_for: {cmd: test -e /tmp/flag, timeout: 20s}\n  - wait_for: {cmd: test -e /tmp/never, timeout: 2s}\n",
        4,
    );
    let (r, _dir) = run(&plan);
    assert!(r.steps[1].ok, "{:?}", r.steps[1]);
    assert_eq!(r.verdict, Verdict::Fail);
    assert!(
        r.reason
            .as_deref()
            .unwrap()
            .contains("still not true after 2s (deadline passed)"),
        "{:?}",
        r.reason
    );
}

#[test]
fn agent_reads_files_directly_and_maps_their_extents() {
    use agent::{Request, Response};
    use std::time::Duration;
    let b = bench();
    let dir = tempfile::tempdir().unwrap();
    let disks = vec![scratch_disk(dir.path(), "fs", 64 << 20)];
    let cfg = b.vm_config(512, 2, disks, dir.path().join("console.log"));
    let mut vm = b.boot(&cfg).unwrap();
    let out = xtask::vm::guest::run(
        &mut vm,
        "mkfs.ext4 -q -F /dev/vda && mount /dev/vda /mnt && dd if=/dev/urandom of=/mnt/f bs=4k count=3 status=none && sync",
        &[],
        Duration::from_secs(60),
    )
    .unwrap();
    assert!(out.success(), "{out:?}");
    let read = |vm: &mut xtask::vm::Vm, path: &str, offset, len, direct| match vm
        .call(
            &Request::Read {
                path: path.into(),
                offset,
                len,
                direct,
            },
            Duration::from_secs(10),
        )
        .unwrap()
    {
        Response::Bytes { data } => data,
        other => panic!("{other:?}"),
    };
    let buffered = read(&mut vm, "/mnt/f", 0, 1 << 20, false);
    let direct = read(&mut vm, "/mnt/f", 0, 1 << 20, true);
    assert_eq!(buffered.len(), 12288);
    assert_eq!(buffered, direct);
    let Response::Extents { extents } = vm
        .call(
            &Request::Fiemap {
                path: "/mnt/f".into(),
            },
            Duration::from_secs(10),
        )
        .unwrap()
    else {
        panic!()
    };
    let mut raw = Vec::new();
    for e in &extents {
        raw.extend(read(&mut vm, "/dev/vda", e.physical, e.length, true));
    }
    assert_eq!(
        &raw[..12288],
        &buffered[..],
        "the extents FIEMAP gives hold the file's bytes"
    );
    // An unaligned direct read still returns exactly the bytes asked for.
    assert_eq!(read(&mut vm, "/mnt/f", 100, 50, true), buffered[100..150]);
    vm.quit(Duration::from_secs(10)).unwrap();
}

#[test]
fn a_given_bzimage_and_modules_tree_run_the_smoke_case() {
    // The Debian kernel the bench fetched, handed over as a user would hand their own.
    let debian = bench();
    let spec = xtask::kernel::KernelSpec::BzImage {
        path: debian.kernel.vmlinuz.clone(),
        modules: debian.kernel.modules.clone(),
    };
    let opts = xtask::bench::Options {
        kernel: spec,
        accel: Some(debian.accel),
        install: false,
        restore: true,
    };
    let given = xtask::bench::Bench::prepare(&opts).unwrap();
    assert_eq!(given.kernel.info.source, "bzimage");
    assert_eq!(
        given.kernel.info.release, debian.kernel.info.release,
        "release read from the boot header"
    );
    let plan = plan_file("smoke", 6);
    let dir = tempfile::tempdir().unwrap();
    let r = run_on(&given, &plan, &dir.path().join("smoke"));
    assert_eq!(r.verdict, Verdict::Pass, "{:?}", r.reason);
    assert_eq!(r.kernel.source, "bzimage");
    assert!(
        r.replay.contains("--kernel"),
        "the replay names the kernel: {}",
        r.replay
    );
}

/// A copy of `from` (a modules tree of `.ko.xz` files) where md's modules are `.ko.zst`
/// and the block and XFS drivers `.ko.gz`, as Fedora, Arch and Ubuntu ship them; the rest
/// stay links to the originals.
fn recompressed_modules(from: &std::path::Path, to: &std::path::Path) -> (usize, usize) {
    use std::io::Write;
    let (mut zst, mut gz) = (0, 0);
    std::fs::create_dir_all(to).unwrap();
    let mut stack = vec![from.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(from).unwrap();
            let dest = to.join(rel);
            if path.is_dir() {
                std::fs::create_dir_all(&dest).unwrap();
                stack.push(path);
                continue;
            }
            let name = path.to_string_lossy().into_owned();
            let md = name.contains("/drivers/md/");
            let other = name.contains("/drivers/block/") || name.contains("/fs/xfs/");
            match name.strip_suffix(".ko.xz") {
                Some(stem) if md || other => {
                    let elf = xtask::image::modules::decompress(&path).unwrap();
                    let stem = to.join(std::path::Path::new(stem).strip_prefix(from).unwrap());
                    if md {
                        let packed = ruzstd::encoding::compress_to_vec(
                            elf.as_slice(),
                            ruzstd::encoding::CompressionLevel::Fastest,
                        );
                        std::fs::write(format!("{}.ko.zst", stem.display()), packed).unwrap();
                        zst += 1;
                    } else {
                        let mut enc =
                            flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                        enc.write_all(&elf).unwrap();
                        std::fs::write(format!("{}.ko.gz", stem.display()), enc.finish().unwrap())
                            .unwrap();
                        gz += 1;
                    }
                }
                _ => std::os::unix::fs::symlink(&path, &dest).unwrap(),
            }
        }
    }
    (zst, gz)
}

#[test]
fn a_modules_tree_of_zstd_and_gzip_modules_runs_the_smoke_case() {
    let debian = bench();
    let modules = debian
        .kernel
        .modules
        .clone()
        .expect("Debian's kernel is modular");
    let tree = tempfile::tempdir().unwrap();
    let to = tree.path().join(modules.file_name().unwrap());
    let (zst, gz) = recompressed_modules(&modules, &to);
    assert!(zst > 5 && gz > 2, "{zst} .ko.zst and {gz} .ko.gz modules");
    let opts = xtask::bench::Options {
        kernel: xtask::kernel::KernelSpec::BzImage {
            path: debian.kernel.vmlinuz.clone(),
            modules: Some(to),
        },
        accel: Some(debian.accel),
        install: false,
        restore: true,
    };
    let given = xtask::bench::Bench::prepare(&opts).unwrap();
    let plan = plan_file("smoke", 7);
    let dir = tempfile::tempdir().unwrap();
    let r = run_on(&given, &plan, &dir.path().join("smoke"));
    assert_eq!(r.verdict, Verdict::Pass, "{:?}", r.reason);
}

/// A field of `/proc/PID/status` (`Uid`, `Seccomp`, ...), as it is written there.
fn proc_status(pid: u32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The kernel under test is untrusted: QEMU runs in its seccomp sandbox, as nobody when
/// the bench is root, and a guest saved and restored that way (the migration through
/// pipes handed over QMP, since QEMU may not spawn `cat`) still answers; a case passes.
#[test]
fn qemu_runs_sandboxed_and_unprivileged_and_saves_and_restores_so() {
    let dir = tempfile::tempdir().unwrap();
    let cache = xtask::host::cache::Cache::new(dir.path().join("cache"));
    let disk = scratch_disk(dir.path(), "d", 16 << 20);
    let cfg = bench().vm_config(384, 1, vec![disk], dir.path().join("console.log"));
    // A cache of its own: the guest is booted and saved here, not found saved.
    let saved =
        xtask::vm::saved::guest(&cache, &bench().guest_key(), &cfg, bench().boot_limit()).unwrap();
    assert!(std::fs::metadata(&saved).unwrap().len() > 1 << 20);
    let restored = xtask::vm::VmConfig {
        incoming: Some(saved),
        ..cfg.clone()
    };
    let mut vm = xtask::vm::Vm::start(&restored, bench().boot_limit()).unwrap();
    let out = xtask::vm::guest::run(
        &mut vm,
        "echo restored",
        &[],
        std::time::Duration::from_secs(30),
    )
    .unwrap();
    assert_eq!(out.stdout.trim(), "restored");

    let pid = vm.pid();
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let uids = proc_status(pid, "Uid");
    if root {
        assert!(
            uids.split(' ').all(|u| u != "0"),
            "QEMU of a root bench runs as root: Uid {uids}"
        );
    }
    assert_eq!(
        proc_status(pid, "Seccomp"),
        "2",
        "QEMU runs under a seccomp filter"
    );
    assert_eq!(proc_status(pid, "NoNewPrivs"), "1");
    let cmdline = String::from_utf8(std::fs::read(format!("/proc/{pid}/cmdline")).unwrap())
        .unwrap()
        .replace('\0', " ");
    assert!(
        cmdline.contains(&format!("-sandbox {}", xtask::vm::sandbox::SANDBOX)),
        "{cmdline}"
    );
    assert!(cmdline.contains("-nic none"), "{cmdline}");
    let img = dir.path().join("d.img").to_string_lossy().into_owned();
    assert!(
        !cmdline.contains(&format!("file={img}")) && cmdline.contains("file=/dev/fdset/"),
        "QEMU is handed its disk, not told its path: {cmdline}"
    );
    vm.quit(std::time::Duration::from_secs(30)).unwrap();

    let (r, _dir) = run(&plan_file("smoke", 2));
    assert_eq!(r.verdict, Verdict::Pass, "{:?}\n{}", r.reason, r.replay);
}
