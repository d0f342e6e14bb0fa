//! Whether the kernel takes a bitmap file at all: `SET_BITMAP_FILE` on an array not yet
//! set up, the first thing mdadm's create, build and assemble do with a file bitmap.
//!
//! From 6.18 on, md registers an array's bitmap operations only when the array runs
//! (`mddev_set_bitmap_ops_nosysfs`, reached from `md_run`), and `set_bitmap_file()` now
//! begins with `if (!md_bitmap_registered(mddev) || mddev->bitmap_id == ID_BITMAP_NONE)
//! return -EINVAL;`: refused before the array runs, and after it runs without a bitmap
//! too. The probe tells that cause from the others by its evidence: EINVAL, and no
//! `using deprecated bitmap file support` line, which `set_bitmap_file()` logs once it is
//! past that check (a kernel without `CONFIG_MD_BITMAP_FILE` logs `bitmap files not
//! supported by this kernel` instead).

use super::{Vm, VmConfig};
use crate::host::Accel;
use agent::{Request, Response};
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::time::Duration;

/// What the probe saw.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FileBitmaps {
    Taken,
    /// md refused the file: why, with the evidence.
    Refused(String),
}

/// The refusal this code names, from the ioctl's errno and the console after it.
pub fn classify(errno: Option<i32>, console: &str) -> FileBitmaps {
    let Some(errno) = errno else {
        return FileBitmaps::Taken;
    };
    let past_first_checks = console.contains("using deprecated bitmap file support");
    FileBitmaps::Refused(
        if console.contains("bitmap files not supported by this kernel") {
            "md refuses a bitmap file: the kernel is built without CONFIG_MD_BITMAP_FILE".into()
        } else if errno == libc::EINVAL && !past_first_checks {
            "md refuses a bitmap file on an array not yet running (SET_BITMAP_FILE: EINVAL, and no `using deprecated bitmap file support`): set_bitmap_file() in drivers/md/md.c returns -EINVAL while the array's bitmap operations are unregistered, which since 6.18 they are until the array runs (finding set-bitmap-file-refused)".into()
        } else {
            format!(
            "md refuses a bitmap file: SET_BITMAP_FILE on an array not yet running failed with errno {errno}{}",
            if past_first_checks {
                " after `using deprecated bitmap file support`"
            } else {
                ""
            }
        )
        },
    )
}

/// Boots the kernel once with no disks and hands a fresh array a file.
pub fn probe(kernel: &Path, initrd: &Path, accel: Accel, dir: &Path) -> Result<FileBitmaps> {
    let cfg = VmConfig {
        kernel: kernel.to_path_buf(),
        initrd: initrd.to_path_buf(),
        cmdline: String::new(),
        memory_mib: 512,
        cpus: 1,
        accel,
        disks: vec![],
        console_log: dir.join("console.log"),
        incoming: None,
    };
    let limit = match accel {
        Accel::Kvm => Duration::from_secs(30),
        Accel::Tcg => Duration::from_secs(90),
    };
    let mut vm = Vm::start(&cfg, limit).context("boot the file-bitmap probe")?;
    let setup = "modprobe md_mod 2>/dev/null; echo md0 > /sys/module/md_mod/parameters/new_array && dd if=/dev/zero of=/tmp/probe-bitmap bs=4096 count=1 2>/dev/null";
    let out = super::guest::run(&mut vm, setup, &[], Duration::from_secs(30))?;
    if !out.success() {
        bail!(
            "file-bitmap probe: `{setup}` failed: {}{}",
            out.stdout,
            out.stderr
        );
    }
    let errno = match vm.call(
        &Request::SetBitmapFile {
            md: "/dev/md0".into(),
            file: "/tmp/probe-bitmap".into(),
        },
        Duration::from_secs(30),
    )? {
        Response::Done => None,
        Response::Error { errno, message } => {
            Some(errno.with_context(|| format!("file-bitmap probe: {message}"))?)
        }
        other => bail!("file-bitmap probe: SET_BITMAP_FILE answered {other:?}"),
    };
    // The kernel's line, if any, precedes the ioctl's return; `dmesg` reads it whole.
    let dmesg = super::guest::run(&mut vm, "dmesg", &[], Duration::from_secs(30))?;
    vm.quit(Duration::from_secs(30))?;
    Ok(classify(errno, &dmesg.stdout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_is_told_by_its_evidence() {
        assert_eq!(classify(None, ""), FileBitmaps::Taken);
        let FileBitmaps::Refused(r) = classify(Some(libc::EINVAL), "md: md0 stopped.\n") else {
            panic!()
        };
        assert!(r.contains("set-bitmap-file-refused"), "{r}");
        let FileBitmaps::Refused(r) = classify(
            Some(libc::EINVAL),
            "md0: bitmap files not supported by this kernel\n",
        ) else {
            panic!()
        };
        assert!(
            r.contains("CONFIG_MD_BITMAP_FILE") && !r.contains("finding"),
            "{r}"
        );
        // Past the first checks, EINVAL is another refusal, never the finding.
        let FileBitmaps::Refused(r) = classify(
            Some(libc::EINVAL),
            "md0: using deprecated bitmap file support\n",
        ) else {
            panic!()
        };
        assert!(
            !r.contains("finding") && r.contains("errno 22 after"),
            "{r}"
        );
        let FileBitmaps::Refused(r) = classify(Some(libc::EBUSY), "") else {
            panic!()
        };
        assert!(r.contains("errno 16") && !r.contains("finding"), "{r}");
    }
}
