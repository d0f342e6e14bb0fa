//! A kernel under test is untrusted code, and QEMU is what holds it in. QEMU runs under its
//! seccomp sandbox, with spawning, privilege changes, obsolete calls and resource control
//! denied, and, when the bench runs as root, as an unprivileged user from its first
//! instruction. The guest has no network (`-nic none` in `qemu::machine_args`).
//!
//! The user is set here, between fork and exec, not with QEMU's `-runas`: `-runas` changes
//! user after the sandbox is installed, which `elevateprivileges=deny` forbids, and the
//! change of user clears `PR_SET_PDEATHSIG`, so a bench killed by SIGKILL would leave its
//! QEMUs running. Set before exec, the death signal is armed after the change and holds.
//! QEMU opens nothing by path (`vm::handoff`), so it needs no access to the results or
//! the cache.

use std::ffi::OsString;

/// QEMU's `-sandbox` option.
pub const SANDBOX: &str = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny";

pub fn sandbox_args() -> Vec<OsString> {
    vec!["-sandbox".into(), SANDBOX.into()]
}

/// Who QEMU runs as: the user and group, and the supplementary groups it keeps (`kvm`,
/// for `/dev/kvm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Jail {
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
    pub kvm_gid: Option<libc::gid_t>,
}

/// The user QEMU runs as: `nobody` when the bench is root (none otherwise: the bench's
/// own user is unprivileged already). Looked up once per run, not at every boot.
pub fn jail() -> Option<Jail> {
    static JAIL: std::sync::OnceLock<Option<Jail>> = std::sync::OnceLock::new();
    *JAIL.get_or_init(look_up)
}

fn look_up() -> Option<Jail> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    use nix::unistd::{Group, User};
    let user = User::from_name("nobody").ok().flatten();
    let group = Group::from_name("nogroup")
        .ok()
        .flatten()
        .map(|g| g.gid.as_raw());
    Some(Jail {
        // 65534 is nobody and nogroup wherever they exist under these names or others.
        uid: user.as_ref().map_or(65534, |u| u.uid.as_raw()),
        gid: group.or(user.map(|u| u.gid.as_raw())).unwrap_or(65534),
        kvm_gid: Group::from_name("kvm")
            .ok()
            .flatten()
            .map(|g| g.gid.as_raw()),
    })
}

impl Jail {
    /// Becomes the jail's user, in the child between fork and exec: groups first, then
    /// the group, then the user (each change needs the privilege the next one drops).
    ///
    /// # Safety
    /// Only async-signal-safe calls: meant for `pre_exec`.
    pub unsafe fn enter(&self) -> std::io::Result<()> {
        let groups: &[libc::gid_t] = match &self.kvm_gid {
            Some(g) => std::slice::from_ref(g),
            None => &[],
        };
        if libc::setgroups(groups.len(), groups.as_ptr()) != 0
            || libc::setresgid(self.gid, self.gid, self.gid) != 0
            || libc::setresuid(self.uid, self.uid, self.uid) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sandbox_denies_spawning_and_privilege_changes() {
        let a: Vec<String> = sandbox_args()
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect();
        assert_eq!(a[0], "-sandbox");
        for deny in [
            "spawn=deny",
            "elevateprivileges=deny",
            "obsolete=deny",
            "resourcecontrol=deny",
        ] {
            assert!(a[1].split(',').any(|o| o == deny), "{deny} in {a:?}");
        }
        assert!(a[1].starts_with("on,"));
    }

    #[test]
    fn root_jails_qemu_as_an_unprivileged_user() {
        // SAFETY: geteuid cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        match jail() {
            Some(j) => {
                assert!(root);
                assert_ne!(j.uid, 0);
                assert_ne!(j.gid, 0);
                assert_ne!(j.kvm_gid, Some(0));
            }
            None => assert!(!root),
        }
    }
}
