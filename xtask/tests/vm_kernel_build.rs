//! A kernel built by the bench from Debian's linux-source-6.12: tinyconfig + tiny.config +
//! md.config, everything built in, booted and put through the smoke case. The build is
//! cached in the bench's cache, so only the first run on a machine pays for it.

mod common;

use common::*;
use std::time::Instant;
use xtask::kernel::build::{Base, BuildSpec, Source};
use xtask::kernel::KernelSpec;
use xtask::result::Verdict;

fn tiny_spec() -> KernelSpec {
    patched_spec(&[])
}

fn patched_spec(patches: &[&str]) -> KernelSpec {
    KernelSpec::Build(BuildSpec {
        source: Source::Debian {
            series: "6.12".into(),
        },
        base: Base::Tinyconfig,
        fragments: vec![],
        patches: patches.iter().map(Into::into).collect(),
    })
}

#[test]
fn a_tiny_kernel_built_from_debian_source_runs_the_smoke_case() {
    let started = Instant::now();
    let b = bench_with(tiny_spec());
    eprintln!(
        "kernel {} ready in {:.1}s",
        b.kernel.info.release,
        started.elapsed().as_secs_f64()
    );
    let info = &b.kernel.info;
    assert_eq!(info.source, "debian-source");
    assert_eq!(info.package.as_deref(), Some("linux-source-6.12"));
    assert!(b.kernel.modules.is_none(), "tinyconfig has no modules");
    let build = info.build.as_ref().expect("build details recorded");
    let names: Vec<String> = build
        .fragments
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["tiny.config", "md.config"]);
    assert!(
        build.source_key.starts_with("debian-6.12."),
        "{}",
        build.source_key
    );
    assert_eq!(build.config_sha256.len(), 64);
    let entry = b.kernel.vmlinuz.parent().unwrap();
    let config = std::fs::read_to_string(entry.join("config")).unwrap();
    for line in [
        "CONFIG_MD_BITMAP_FILE=y",
        "CONFIG_MD_RAID1=y",
        "CONFIG_VIRTIO_BLK=y",
    ] {
        assert!(config.lines().any(|l| l == line), "{line}");
    }
    assert!(
        std::fs::metadata(entry.join("build.log")).unwrap().len() > 0,
        "the build log is kept beside the result"
    );
    eprintln!(
        "built in {}s, bzImage {} KiB",
        build.build_seconds,
        std::fs::metadata(&b.kernel.vmlinuz).unwrap().len() / 1024
    );

    // The second acquisition finds the entry: no configure, no make.
    let again = Instant::now();
    let cache = xtask::host::cache::Cache::from_env().unwrap();
    let k = xtask::kernel::acquire(&cache, &tiny_spec(), false).unwrap();
    assert_eq!(k.vmlinuz, b.kernel.vmlinuz);
    assert!(
        again.elapsed().as_secs() < 30,
        "a cached build took {:?}",
        again.elapsed()
    );

    let plan = plan_file("smoke", 21);
    let dir = tempfile::tempdir().unwrap();
    let case_started = Instant::now();
    let r = run_on(&b, &plan, &dir.path().join("smoke"));
    let console = std::fs::read_to_string(dir.path().join("smoke/console.log")).unwrap_or_default();
    assert_eq!(r.verdict, Verdict::Pass, "{:?}\n{console}", r.reason);
    eprintln!(
        "smoke on the tiny kernel: {:.1}s, boot {} ms",
        case_started.elapsed().as_secs_f64(),
        r.times.boot_ms[0]
    );
    assert_eq!(r.kernel.source, "debian-source");
    assert!(r.kernel.build.is_some(), "the result records the build");
    assert!(
        console.contains("md/raid1:md0: active with 2 out of 2 mirrors"),
        "{console}"
    );
    assert!(console.contains("using deprecated bitmap file support"));
}

/// `--patch`: the project's ordering fix on the same source, built from a copy of the stock
/// build's objects (so only what it touches compiles again), recorded, cached under a key
/// of its own, and booted; a patch that does not apply names its hunk and caches nothing.
#[test]
fn a_patched_tiny_kernel_builds_incrementally_and_records_its_patch() {
    let cache = xtask::host::cache::Cache::from_env().unwrap();
    let stock = xtask::kernel::acquire(&cache, &tiny_spec(), false).unwrap();
    let b = bench_with(patched_spec(&["unplug-ordering-6.12"]));
    let info = &b.kernel.info;
    let build = info.build.as_ref().unwrap();
    assert_ne!(b.kernel.vmlinuz, stock.vmlinuz);
    assert_ne!(info.vmlinuz_sha256, stock.info.vmlinuz_sha256);
    assert!(
        build.source_key.contains("+patches-"),
        "{}",
        build.source_key
    );
    let [p] = build.patches.as_slice() else {
        panic!("{:?}", build.patches)
    };
    assert_eq!(
        p.file,
        std::path::Path::new("xtask/src/findings/patches/unplug-ordering-6.12.patch")
    );
    assert_eq!(p.sha256.len(), 64);
    assert_eq!(
        p.subject.as_deref(),
        Some("md/md-bitmap: wait for the unplug that writes a caller's bits")
    );
    let log = std::fs::read_to_string(b.kernel.build_log.as_ref().unwrap()).unwrap();
    let compiled: Vec<&str> = log
        .lines()
        .filter_map(|l| l.trim().strip_prefix("CC "))
        .map(str::trim)
        // objtool builds with absolute paths, so it always builds again: it is not the
        // kernel.
        .filter(|f| !f.starts_with('/'))
        .collect();
    assert!(compiled.contains(&"drivers/md/md-bitmap.o"), "{compiled:?}");
    assert!(
        compiled.len() < 20,
        "a patch to md-bitmap.c compiled {} files: {compiled:?}",
        compiled.len()
    );
    eprintln!(
        "patched build: {}s, compiled {compiled:?}",
        build.build_seconds
    );

    let plan = plan_file("smoke", 22);
    let dir = tempfile::tempdir().unwrap();
    let r = run_on(&b, &plan, &dir.path().join("smoke"));
    assert_eq!(r.verdict, Verdict::Pass, "{:?}", r.reason);
    assert_eq!(r.kernel.build.as_ref().unwrap().patches, build.patches);

    let bad = dir.path().join("stale.patch");
    let text = std::fs::read_to_string(
        xtask::host::project_root().join("xtask/src/findings/patches/unplug-ordering-6.12.patch"),
    )
    .unwrap()
    .replace(
        " \tif (!__bitmap_enabled(bitmap))",
        " \tif (!bitmap_enabled(bitmap, true))",
    );
    std::fs::write(&bad, text).unwrap();
    let spec = patched_spec(&[bad.to_str().unwrap()]);
    let err = format!(
        "{:#}",
        xtask::kernel::acquire(&cache, &spec, false).unwrap_err()
    );
    assert!(
        err.contains("stale.patch: hunk #2 of drivers/md/md-bitmap.c does not apply"),
        "{err}"
    );
    let sources = cache.root().join("sources");
    let leftovers: Vec<_> = std::fs::read_dir(&sources)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".partial-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
