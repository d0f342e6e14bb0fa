//! Debian's archive beyond the host's own suites: trixie-backports and sid, where the
//! kernels md's developers run (6.16 to 7.x), their sources and mdadm 4.6 live. Reached
//! through a private apt configuration under the cache (its own sources list, lists and
//! archives, checked with Debian's archive keyring), so the host's apt sources are never
//! touched and a warm cache works offline.

use super::cache::{sha256_file, Cache};
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

/// The suites the private configuration adds, newest last.
pub const SUITES: [&str; 2] = ["trixie-backports", "sid"];
const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";
/// Lists younger than this are used as they are: a run does not wait on the network.
const FRESH: Duration = Duration::from_secs(24 * 3600);
/// What apt-get and dpkg-deb said while fetching into a directory (a cache entry), kept
/// in it: apt's warnings are the fetch's, not the terminal's.
pub const FETCH_LOG: &str = "fetch.log";

/// One package of the archive as a result records it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub sha256: String,
    /// The suite it came from (`bookworm`, `trixie-backports`, `sid`, ...).
    pub suite: String,
}

/// Where apt reads its configuration: the host's (bookworm's suites) or the bench's own.
#[derive(Debug, Clone)]
pub struct Archive {
    /// `None`: the host's apt configuration as it is.
    root: Option<PathBuf>,
}

impl Archive {
    /// The host's apt, as configured (bookworm and its updates on this machine).
    pub fn host() -> Self {
        Archive { root: None }
    }

    /// The private configuration under the cache, its lists brought up to date when older
    /// than a day. Offline, lists already fetched still serve (with a note).
    pub fn private(cache: &Cache) -> Result<Self> {
        let root = cache.root().join("apt");
        for d in [
            "lists/partial",
            "archives/partial",
            "cache",
            "sources.list.d",
            "preferences.d",
        ] {
            fs::create_dir_all(root.join(d))
                .with_context(|| format!("create {}", root.join(d).display()))?;
        }
        let sources = root.join("sources.list");
        let text = sources_list(&mirror());
        if fs::read_to_string(&sources).ok().as_deref() != Some(text.as_str()) {
            fs::write(&sources, &text)?;
            // New sources: the old lists describe another archive.
            let _ = fs::remove_file(root.join("lists/.updated"));
        }
        let status = root.join("status");
        if !status.exists() {
            fs::write(&status, "")?;
        }
        let archive = Archive { root: Some(root) };
        archive.update_if_stale()?;
        Ok(archive)
    }

    fn options(&self) -> Vec<String> {
        let Some(r) = &self.root else {
            return vec![];
        };
        let d = |p: &str| r.join(p).display().to_string();
        [
            ("Dir::Etc::SourceList", d("sources.list")),
            ("Dir::Etc::SourceParts", d("sources.list.d")),
            ("Dir::Etc::Preferences", "/dev/null".into()),
            ("Dir::Etc::PreferencesParts", d("preferences.d")),
            ("Dir::State::Lists", d("lists")),
            ("Dir::State::Status", d("status")),
            ("Dir::Cache", d("cache")),
            ("Dir::Cache::Archives", d("archives")),
            // Root downloads into the cache directly; apt's `_apt` user could not write
            // there, and its warning about it is noise.
            ("APT::Sandbox::User", "root".into()),
        ]
        .into_iter()
        .flat_map(|(k, v)| ["-o".to_string(), format!("{k}={v}")])
        .collect()
    }

    fn apt(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.args(self.options());
        c
    }

    /// An apt query whose stdout is read and whose stderr no one needs.
    fn query(&self, program: &str, args: &[&str]) -> std::io::Result<std::process::Output> {
        let mut c = self.apt(program);
        c.args(args);
        super::echo::command(&c);
        c.output()
    }

    fn update_if_stale(&self) -> Result<()> {
        let root = self.root.as_ref().expect("private archive");
        let stamp = root.join("lists/.updated");
        let age = fs::metadata(&stamp)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok());
        if age.is_some_and(|a| a < FRESH) {
            return Ok(());
        }
        let log = root.join("update.log");
        // Each update's log on its own: the last one is what a note points at.
        let _ = fs::remove_file(&log);
        let out = super::logged::output(self.apt("apt-get").args(["update", "-q"]), &log)
            .context("run apt-get update (is this Debian?)")?;
        if out.status.success() {
            fs::write(&stamp, "")?;
            return Ok(());
        }
        if age.is_some() {
            eprintln!(
                "note: apt-get update of {} failed ({}); using the lists fetched before (log: {})",
                SUITES.join(" and "),
                out.status,
                log.display()
            );
            return Ok(());
        }
        bail!(
            "apt-get update of Debian's {} failed ({}): no archive reachable? (log: {})",
            SUITES.join(" and "),
            out.status,
            log.display()
        )
    }

    /// Package names matching the regular expression `pattern`.
    pub fn search(&self, pattern: &str) -> Result<Vec<String>> {
        let out = self
            .query("apt-cache", &["search", "--names-only", pattern])
            .context("run apt-cache (is this Debian?)")?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect())
    }

    /// The candidate version of `name`: its version, sha256 and suite.
    pub fn show(&self, name: &str) -> Result<Package> {
        let out = self
            .query("apt-cache", &["show", "--no-all-versions", name])
            .context("run apt-cache show")?;
        let text = String::from_utf8_lossy(&out.stdout);
        let field = |f: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(f).and_then(|r| r.strip_prefix(": ")))
                .map(|v| v.trim().to_string())
                .with_context(|| format!("apt-cache show {name}: no {f} field"))
        };
        let version = field("Version")?;
        let out = self
            .query("apt-cache", &["madison", name])
            .context("run apt-cache madison")?;
        let suite = suite_of(&String::from_utf8_lossy(&out.stdout), &version)
            .unwrap_or_else(|| "unknown".into());
        Ok(Package {
            name: name.into(),
            sha256: field("SHA256")?,
            version,
            suite,
        })
    }

    /// Downloads `p` into `dir`, checks it against the archive's sha256, and returns the
    /// `.deb`. What apt says goes to `dir`'s [`FETCH_LOG`].
    pub fn download(&self, p: &Package, dir: &Path) -> Result<PathBuf> {
        let before: Vec<PathBuf> = debs(dir);
        let out = super::logged::output(
            self.apt("apt-get")
                .args(["download", "-q", &format!("{}={}", p.name, p.version)])
                .current_dir(dir),
            &dir.join(FETCH_LOG),
        )
        .context("run apt-get download")?;
        if !out.status.success() {
            bail!(
                "apt-get download {}={} failed ({}): {}",
                p.name,
                p.version,
                out.status,
                super::logged::tail(&out, 5)
            );
        }
        let deb = debs(dir)
            .into_iter()
            .find(|d| !before.contains(d))
            .context("apt-get download wrote no .deb")?;
        let sha = sha256_file(&deb)?;
        if sha != p.sha256 {
            bail!(
                "{}: sha256 {sha} differs from the archive's {}",
                deb.display(),
                p.sha256
            );
        }
        Ok(deb)
    }
}

impl Archive {
    /// Downloads `p` into `dir`, checked, unpacks it into `root` and drops the `.deb`.
    pub fn unpack(&self, p: &Package, dir: &Path, root: &Path) -> Result<()> {
        let deb = self.download(p, dir)?;
        let out = super::logged::output(
            Command::new("dpkg-deb").arg("-x").arg(&deb).arg(root),
            &dir.join(FETCH_LOG),
        )
        .context("run dpkg-deb")?;
        if !out.status.success() {
            bail!(
                "dpkg-deb -x {} failed ({}): {}",
                deb.display(),
                out.status,
                super::logged::tail(&out, 5)
            );
        }
        fs::remove_file(&deb)?;
        Ok(())
    }
}

fn debs(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "deb"))
                .collect()
        })
        .unwrap_or_default()
}

/// The mirror the host uses (Debian's own unless `MDBB_DEBIAN_MIRROR` names another).
fn mirror() -> String {
    std::env::var("MDBB_DEBIAN_MIRROR").unwrap_or_else(|_| "http://deb.debian.org/debian".into())
}

fn sources_list(mirror: &str) -> String {
    SUITES
        .iter()
        .map(|s| format!("deb [signed-by={KEYRING}] {mirror} {s} main\n"))
        .collect()
}

/// The suite of `version` in `apt-cache madison` output
/// (`pkg | 7.3.4-1~bpo13+1 | http://deb.debian.org/debian trixie-backports/main amd64 Packages`).
fn suite_of(madison: &str, version: &str) -> Option<String> {
    madison.lines().find_map(|l| {
        let mut cols = l.split('|').map(str::trim);
        let (_, v, source) = (cols.next()?, cols.next()?, cols.next()?);
        (v == version).then(|| {
            let dist = source.split_whitespace().nth(1)?;
            Some(dist.split('/').next()?.to_string())
        })?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_suite_is_read_from_madison_for_the_candidate_version() {
        let madison = "linux-source-7.2 |   7.2.13-1 | http://deb.debian.org/debian sid/main amd64 Packages\n\
                       linux-source-7.2 | 7.2.12-1~bpo13+1 | http://deb.debian.org/debian trixie-backports/main amd64 Packages\n";
        assert_eq!(suite_of(madison, "7.2.13-1").as_deref(), Some("sid"));
        assert_eq!(
            suite_of(madison, "7.2.12-1~bpo13+1").as_deref(),
            Some("trixie-backports")
        );
        assert_eq!(suite_of(madison, "7.2.1-1"), None);
    }

    #[test]
    fn the_sources_list_checks_signatures_with_debian_s_keyring() {
        let s = sources_list("http://m/debian");
        assert_eq!(
            s,
            "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://m/debian trixie-backports main\n\
             deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://m/debian sid main\n"
        );
    }
}
