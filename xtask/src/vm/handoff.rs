//! The files and sockets QEMU gets already open. The bench opens every one of them itself
//! and QEMU is told `/dev/fdset/N` (what its block layer and chardevs take) or
//! `/proc/self/fd/N` (what its loaders take): QEMU opens nothing by path, so it can start
//! as an unprivileged user (`vm::sandbox`) whatever directories the results and the cache
//! live in, and a socket directory is never left behind, because there is none.

use anyhow::{Context, Result};
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// What QEMU is told of each handed-over path, and the descriptors behind the names.
#[derive(Default)]
pub struct Handoff {
    names: HashMap<PathBuf, OsString>,
    fds: Vec<OwnedFd>,
    add_fd: Vec<OsString>,
}

impl Handoff {
    /// A raw image for QEMU's block layer, which opens it read-only to probe and
    /// read-write to use: an fd set holds one descriptor of each mode.
    pub fn image(&mut self, path: &Path) -> Result<()> {
        let rw = OpenOptions::new().read(true).write(true).open(path);
        let ro = File::open(path);
        let set = self.fd_set(
            path,
            [rw, ro]
                .into_iter()
                .map(|f| f.map(OwnedFd::from))
                .collect::<std::io::Result<Vec<_>>>()
                .with_context(|| format!("open the disk image {}", path.display()))?,
        );
        self.names.insert(path.into(), set);
        Ok(())
    }

    /// A log QEMU writes through a `file` chardev: created (or emptied) here.
    pub fn output(&mut self, path: &Path) -> Result<()> {
        let f = File::create(path).with_context(|| format!("create {}", path.display()))?;
        let set = self.fd_set(path, vec![f.into()]);
        self.names.insert(path.into(), set);
        Ok(())
    }

    /// A file QEMU only reads, with its own `fopen` (the kernel, the initrd, blkdebug's
    /// rules). Through `/proc/self/fd` only the file's own mode is checked, not the
    /// directories above it; a file the unprivileged user could not read is handed over
    /// as a private copy in memory instead.
    pub fn input(&mut self, path: &Path) -> Result<()> {
        let f = File::open(path).with_context(|| format!("open {}", path.display()))?;
        let mode = f.metadata()?.permissions().mode();
        let fd: OwnedFd = if mode & 0o004 != 0 {
            f.into()
        } else {
            private_copy(path, f)?
        };
        let name = format!("/proc/self/fd/{}", fd.as_raw_fd());
        self.fds.push(fd);
        self.names.insert(path.into(), name.into());
        Ok(())
    }

    /// A connected socket QEMU uses as a chardev (`socket,fd=N`); its number.
    pub fn socket(&mut self, fd: OwnedFd) -> RawFd {
        let n = fd.as_raw_fd();
        self.fds.push(fd);
        n
    }

    /// What QEMU is told of `path`: its handed-over name, or the path itself when it was
    /// not handed over (the command line's unit tests hand nothing).
    pub fn name(&self, path: &Path) -> OsString {
        self.names.get(path).cloned().unwrap_or_else(|| path.into())
    }

    /// The `-add-fd` options that declare the fd sets.
    pub fn args(&self) -> &[OsString] {
        &self.add_fd
    }

    /// The descriptors the child must keep across `exec` (all others close on exec).
    pub fn raw_fds(&self) -> Vec<RawFd> {
        self.fds.iter().map(|f| f.as_raw_fd()).collect()
    }

    fn fd_set(&mut self, path: &Path, fds: Vec<OwnedFd>) -> OsString {
        // Sets are numbered by their first descriptor: unique while the descriptors live.
        let set = fds[0].as_raw_fd();
        for fd in fds {
            self.add_fd.push("-add-fd".into());
            self.add_fd
                .push(format!("fd={},set={set},opaque={}", fd.as_raw_fd(), opaque(path)).into());
            self.fds.push(fd);
        }
        format!("/dev/fdset/{set}").into()
    }
}

/// The path as QEMU's `opaque=` shows it (`query-fdsets`), commas being option separators.
fn opaque(path: &Path) -> String {
    path.to_string_lossy().replace(',', "_")
}

/// `file`'s bytes in a memfd, which any user may open through `/proc/self/fd`.
fn private_copy(path: &Path, mut file: File) -> Result<OwnedFd> {
    use nix::sys::memfd::{memfd_create, MFdFlags};
    let mut copy = File::from(memfd_create("mdbb-input", MFdFlags::MFD_CLOEXEC)?);
    std::io::copy(&mut file, &mut copy)
        .with_context(|| format!("copy {} for QEMU", path.display()))?;
    Ok(copy.into())
}

/// Clears close-on-exec on `fds`, in the child between fork and exec.
///
/// # Safety
/// Only async-signal-safe calls: meant for `pre_exec`.
pub unsafe fn keep_across_exec(fds: &[RawFd]) -> std::io::Result<()> {
    for &fd in fds {
        if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn images_get_a_set_of_two_modes_and_inputs_a_readable_descriptor() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("a,b.img");
        std::fs::write(&img, b"disk").unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, b"kernel").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let public = dir.path().join("public");
        std::fs::write(&public, b"initrd").unwrap();
        std::fs::set_permissions(&public, std::fs::Permissions::from_mode(0o644)).unwrap();

        let mut h = Handoff::default();
        h.image(&img).unwrap();
        h.input(&secret).unwrap();
        h.input(&public).unwrap();
        let set = h.name(&img).into_string().unwrap();
        let n: RawFd = set.strip_prefix("/dev/fdset/").unwrap().parse().unwrap();
        let args: Vec<String> = h
            .args()
            .iter()
            .map(|a| a.clone().into_string().unwrap())
            .collect();
        assert_eq!(args.len(), 4, "{args:?}");
        assert!(
            args[1].starts_with(&format!("fd={n},set={n},opaque=")),
            "{args:?}"
        );
        assert!(
            args[1].ends_with("a_b.img"),
            "commas kept out of the option: {args:?}"
        );
        assert!(args[3].contains(&format!(",set={n},")), "{args:?}");

        for (path, want) in [(&secret, "kernel"), (&public, "initrd")] {
            let name = h.name(path);
            assert!(name.to_string_lossy().starts_with("/proc/self/fd/"));
            let mut got = String::new();
            File::open(&name).unwrap().read_to_string(&mut got).unwrap();
            assert_eq!(got, want);
        }
        // The 0600 file is a copy (its descriptor is not the file), the 0644 one is not.
        let target = |p: &Path| std::fs::read_link(h.name(p)).unwrap();
        assert_ne!(target(&secret), secret);
        assert_eq!(target(&public), public);
        assert_eq!(h.raw_fds().len(), 4);
        assert_eq!(
            h.name(Path::new("/not/handed")),
            OsString::from("/not/handed")
        );
    }
}
