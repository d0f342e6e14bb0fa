//! The kernel findings the bench knows, as data (`known.yaml`): what each breaks, the
//! code it names, the cases it can show in, and the cause the judge must read from a
//! recording for a failure to count against it ([`attribute`]). Everything else the judge
//! finds is unexplained, and a FAIL.

mod attribute;

pub use attribute::{attribute, Attribution, Observed, Seen};

use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    pub id: String,
    pub title: String,
    pub code: Code,
    /// The judge's cause (`powercut::explore::Cause::as_str`) that is this finding, or
    /// [`PROBE`] for one the bench reads from a probe of the kernel instead of a case.
    pub cause: String,
    pub needs: Needs,
    pub seen: String,
    /// Candidate fixes, one per kernel series, in `patches/` (`--patch NAME`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fix: Vec<Fix>,
}

/// A candidate fix of a finding for one kernel series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fix {
    /// The series whose source it applies to (`6.12`, `7.3`).
    pub series: String,
    /// The patch's name in `patches/`, without `.patch`.
    pub patch: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Code {
    pub file: String,
    pub function: String,
}

/// Where a finding can show: the bitmap kinds, the disk models of a power-loss case
/// (empty: no power-loss case shows it), the fault injectors it needs armed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Needs {
    pub bitmaps: Vec<String>,
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(default)]
    pub injectors: Vec<String>,
    /// Whether a SIGKILL crash case (its load recorded) can show it: only what needs no
    /// lost disk cache.
    #[serde(default)]
    pub sigkill: bool,
}

/// What a case is, for a finding's needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaseKind<'a> {
    pub bitmap: &'a str,
    /// The power-loss case's disk model; `None` for other scenarios.
    pub model: Option<&'a str>,
    /// A crash case whose SIGKILL load is recorded.
    pub sigkill_recorded: bool,
    pub injectors: &'a [&'a str],
}

/// The cause of a finding a probe shows (a case that meets it is SKIPped naming it).
pub const PROBE: &str = "probe";
/// The cause of a finding read from the members' superblocks when an array does not
/// assemble after a crash: the FAIL names it, and no case declares it, since a case
/// that cannot reassemble judges nothing else.
pub const ASSEMBLY: &str = "assembly";

impl Finding {
    /// Why this finding cannot show in such a case, if it cannot.
    pub fn unfit(&self, case: CaseKind) -> Option<String> {
        if self.cause == PROBE {
            return Some(
                "is found by a probe of the kernel, and a case it hits is skipped naming it".into(),
            );
        }
        if self.cause == ASSEMBLY {
            return Some(
                "is read from the superblocks of an array that does not assemble, and the FAIL names it"
                    .into(),
            );
        }
        let n = &self.needs;
        if !n.bitmaps.iter().any(|b| b == case.bitmap) {
            return Some(format!("needs a {} bitmap", n.bitmaps.join(" or ")));
        }
        match case.model {
            None if case.sigkill_recorded && n.sigkill => {}
            None if case.sigkill_recorded => {
                return Some("needs a disk cache that loses writes: a SIGKILL loses none".into())
            }
            None => {
                return Some(
                    "is matched by its cause in a recording: only power-loss cases and SIGKILL crashes while writing record one"
                        .into(),
                )
            }
            Some(m) if !n.models.iter().any(|x| x == m) => {
                return Some(if n.models.is_empty() {
                    "shows in no power-loss case".into()
                } else {
                    format!("needs disk model {}", n.models.join(" or "))
                })
            }
            Some(_) => {}
        }
        let missing: Vec<&str> = n
            .injectors
            .iter()
            .filter(|i| !case.injectors.contains(&i.as_str()))
            .map(|i| i.as_str())
            .collect();
        (!missing.is_empty()).then(|| format!("needs {} armed", missing.join(", ")))
    }
}

const KNOWN: &str = include_str!("known.yaml");

/// Every known finding, in the file's order.
pub fn all() -> &'static [Finding] {
    static ALL: OnceLock<Vec<Finding>> = OnceLock::new();
    ALL.get_or_init(|| {
        // The file is part of the binary and a unit test parses it: a panic here is a
        // build that skipped the tests.
        serde_norway::from_str(KNOWN).expect("xtask/src/findings/known.yaml parses")
    })
}

pub fn get(id: &str) -> Option<&'static Finding> {
    all().iter().find(|f| f.id == id)
}

/// The finding whose cause this is, if any.
pub fn of_cause(cause: &str) -> Option<&'static Finding> {
    all().iter().find(|f| f.cause == cause)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::powercut::explore::Cause;

    #[test]
    fn the_known_findings_parse_with_unique_ids_and_causes_the_judge_gives() {
        let all = all();
        assert!(all.len() >= 3);
        let causes: Vec<&str> = Cause::ALL.iter().map(|c| c.as_str()).collect();
        for (i, f) in all.iter().enumerate() {
            assert!(
                causes.contains(&f.cause.as_str()) || [PROBE, ASSEMBLY].contains(&f.cause.as_str()),
                "{}: cause {:?} is none of {causes:?}",
                f.id,
                f.cause
            );
            assert!(
                all[..i].iter().all(|g| g.id != f.id),
                "{} appears twice",
                f.id
            );
            assert!(f.code.file.starts_with("drivers/md/"), "{}", f.id);
            let patches = crate::kernel::patch::project_patches(&crate::host::project_root());
            for fix in &f.fix {
                let file = patches.join(format!("{}.patch", fix.patch));
                assert!(file.is_file(), "{}: no {}", f.id, file.display());
            }
        }
        let declarable: Vec<&Finding> = all.iter().filter(|f| !f.needs.models.is_empty()).collect();
        for (i, f) in declarable.iter().enumerate() {
            assert!(
                declarable[..i].iter().all(|g| g.cause != f.cause),
                "two findings a power-loss case can declare share the cause {}",
                f.cause
            );
        }
    }

    #[test]
    fn a_finding_fits_only_the_cases_its_needs_name() {
        let no_fua = get("file-bitmap-no-fua").unwrap();
        let case = |bitmap, model| CaseKind {
            bitmap,
            model,
            sigkill_recorded: false,
            injectors: &[],
        };
        let sigkill = |bitmap| CaseKind {
            bitmap,
            model: None,
            sigkill_recorded: true,
            injectors: &[],
        };
        assert_eq!(
            get("unplug-ordering").unwrap().unfit(sigkill("internal")),
            None
        );
        assert!(no_fua
            .unfit(sigkill("file"))
            .unwrap()
            .contains("a SIGKILL loses none"));
        assert_eq!(no_fua.unfit(case("file", Some("volatile_cache"))), None);
        assert_eq!(
            no_fua
                .unfit(case("internal", Some("volatile_cache")))
                .unwrap(),
            "needs a file bitmap"
        );
        assert!(no_fua
            .unfit(case("file", Some("write_through")))
            .unwrap()
            .contains("volatile_cache"));
        assert!(no_fua
            .unfit(case("file", None))
            .unwrap()
            .contains("only power-loss cases"));
        let hijacked = get("hijacked-counter").unwrap();
        assert!(hijacked
            .unfit(case("file", Some("volatile_cache")))
            .is_some());
        assert!(get("unplug-ordering")
            .unwrap()
            .unfit(case("internal", Some("write_through")))
            .is_none());
    }
}
