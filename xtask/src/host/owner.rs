//! What a SIGKILL leaves behind, and how the next run knows it is nobody's. A SIGKILL runs
//! no handler: QEMU dies with the bench (`PR_SET_PDEATHSIG`), but the VMs' socket
//! directories, half-built cache entries and a running case's disks stay. Each of them
//! names its owner (the temporary directories carry the pid, a run directory an `owner`
//! file with the pid and its start time), and the next run sweeps what belongs to a
//! process that is gone.

use std::path::Path;

/// The file in a run directory that names the process running it, until it ends.
pub const OWNER_FILE: &str = "owner";

/// The prefix of this process's temporary directories: `mdbb-<pid>-`.
pub fn temp_prefix(what: &str) -> String {
    format!("mdbb-{}-{what}", std::process::id())
}

/// The start time of `pid` (`/proc/<pid>/stat` field 22), to tell a pid reused.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command sits in parentheses and may hold spaces: count after the last one.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// `pid start-time` of this process, what an `owner` file holds.
pub fn me() -> String {
    let pid = std::process::id();
    format!("{pid} {}", start_time(pid).unwrap_or(0))
}

/// Whether the owner an `owner` file or a directory name gives is still running.
pub fn alive(owner: &str) -> bool {
    let mut it = owner.split_whitespace();
    let Some(pid) = it.next().and_then(|p| p.parse::<u32>().ok()) else {
        return false;
    };
    match (
        start_time(pid),
        it.next().and_then(|s| s.parse::<u64>().ok()),
    ) {
        (None, _) => false,
        (Some(now), Some(then)) if then != 0 => now == then,
        (Some(_), _) => true,
    }
}

/// Removes the `mdbb-<pid>-*` directories in `tmp` whose process is gone; returns them.
pub fn sweep_temp(tmp: &Path) -> Vec<std::path::PathBuf> {
    let mut swept = Vec::new();
    for e in std::fs::read_dir(tmp).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("mdbb-")
            .and_then(|r| r.split('-').next())
            .filter(|p| p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty())
        else {
            continue;
        };
        if !alive(pid) && std::fs::remove_dir_all(e.path()).is_ok() {
            swept.push(e.path());
        }
    }
    swept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_owner_is_kept_and_a_gone_one_swept() {
        assert!(alive(&me()));
        assert!(!alive("4194303 1"), "no such pid");
        let pid = std::process::id();
        assert!(
            !alive(&format!("{pid} 1")),
            "the pid reused by another start"
        );
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("mdbb-4194303-abc");
        let mine = dir.path().join(format!("{}x", temp_prefix("")));
        let other = dir.path().join("unrelated");
        for d in [&gone, &mine, &other] {
            std::fs::create_dir(d).unwrap();
        }
        assert_eq!(sweep_temp(dir.path()), std::slice::from_ref(&gone));
        assert!(!gone.exists() && mine.exists() && other.exists());
    }
}
