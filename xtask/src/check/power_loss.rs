//! The verdicts of a power-loss case: that the guest saw the disks the model assumes,
//! that there were crash states to judge, that none of them leaves a divergent chunk
//! with a clear bit, and that a violation the model finds is real (the members still
//! differ after md's own resync of that state).

use super::{ranges, Check};
use crate::case::DiskModel;
use serde_json::{json, Value};

/// Each recorded disk's `queue/write_cache` must say what the model assumes: `write back`
/// for a volatile cache, `write through` without one.
pub fn write_cache_as_modelled(model: DiskModel, seen: &[(String, String)]) -> Check {
    let want = match model {
        DiskModel::VolatileCache => "write back",
        DiskModel::WriteThrough => "write through",
    };
    let wrong: Vec<String> = seen
        .iter()
        .filter(|(_, s)| s.trim() != want)
        .map(|(d, s)| format!("{d}: {:?}", s.trim()))
        .collect();
    Check {
        name: "write_cache_as_modelled".into(),
        ok: wrong.is_empty() && !seen.is_empty(),
        summary: if wrong.is_empty() {
            format!(
                "the guest sees {want:?} on all {} recorded disks, as {} assumes",
                seen.len(),
                model.as_str()
            )
        } else {
            format!(
                "{} assumes {want:?}, the guest sees {}",
                model.as_str(),
                wrong.join(", ")
            )
        },
        figures: json!({ "model": model, "write_cache": seen.iter().map(|(d, s)| (d.clone(), s.trim().to_string())).collect::<std::collections::BTreeMap<_, _>>() }),
    }
}

/// The recording must give crash points and states: with none, the safety verdict would
/// hold whatever the kernel did.
pub fn crash_states_judged(crash_points: usize, states: u64, writes: usize) -> Check {
    Check {
        name: "crash_states_judged".into(),
        ok: crash_points > 0 && states > 0 && writes > 0,
        summary: format!("{states} crash states judged at {crash_points} crash points over {writes} recorded writes"),
        figures: json!({ "crash_points": crash_points, "states": states, "writes": writes }),
    }
}

/// The first violation, as the explorer found it.
pub struct FirstViolation<'a> {
    pub point: usize,
    pub after: &'a str,
    pub uncovered: &'a [u64],
    /// The causes of the unsafe states, and the first uncovered chunk explained.
    pub cause: &'a str,
}

/// No crash state may hold a chunk whose members differ while its bit is clear. Fails
/// only on a violation the guest confirmed.
pub fn power_loss_safety(
    unsafe_states: u64,
    unsafe_points: usize,
    states: u64,
    first: Option<FirstViolation>,
    report: Value,
) -> Check {
    Check {
        name: "power_loss_safety".into(),
        ok: unsafe_states == 0,
        summary: match &first {
            None => format!("no divergent chunk with a clear bit in any of {states} crash states"),
            Some(v) => format!(
                "{unsafe_states} of {states} crash states (at {unsafe_points} crash points) leave divergent chunks with a clear bit; the first, cut after event {} ({}), leaves chunks {} uncovered ({}), and a resync of it in the guest left them different",
                v.point,
                v.after,
                ranges(v.uncovered.iter().copied()),
                v.cause
            ),
        },
        figures: report,
    }
}

/// A violation the model finds must be seen in the guest: the state's images assembled,
/// md's resync run, the members must still differ. Otherwise the model, not the kernel,
/// is wrong.
pub fn power_loss_confirmed(outcome: Result<Vec<u64>, String>, uncovered: &[u64]) -> Check {
    let still: Vec<u64> = match &outcome {
        Ok(d) => uncovered
            .iter()
            .copied()
            .filter(|c| d.contains(c))
            .collect(),
        Err(_) => vec![],
    };
    Check {
        name: "power_loss_confirmed".into(),
        ok: !still.is_empty(),
        summary: match &outcome {
            Ok(_) if !still.is_empty() => format!(
                "the state's images, assembled and resynced in the guest, still differ in chunks {}",
                ranges(still.iter().copied())
            ),
            Ok(d) => format!(
                "unconfirmed: after md's resync of the state the uncovered chunks {} agree ({} others differ): the model found what the kernel does not do",
                ranges(uncovered.iter().copied()),
                d.len()
            ),
            Err(why) => format!("unconfirmed: the state could not be run in the guest: {why}"),
        },
        figures: json!({ "still_divergent": still, "uncovered": uncovered,
            "divergent_after_resync": outcome.as_ref().ok(), "error": outcome.as_ref().err() }),
    }
}

/// A cause, what its state's resync in the guest left different (or why it could not
/// run), and the state's chunks of that cause.
pub type CauseConfirmation<'a> = (&'a str, Result<Vec<u64>, String>, Vec<u64>);

/// One violating state per cause, each confirmed in the guest ([`power_loss_confirmed`]
/// on the chunks of that cause): every cause the judge reports must be one the kernel
/// really shows.
pub fn power_loss_confirmed_per_cause(states: &[CauseConfirmation]) -> Check {
    let each: Vec<(&str, Check)> = states
        .iter()
        .map(|(cause, outcome, uncovered)| {
            (*cause, power_loss_confirmed(outcome.clone(), uncovered))
        })
        .collect();
    Check {
        name: "power_loss_confirmed".into(),
        ok: !each.is_empty() && each.iter().all(|(_, c)| c.ok),
        summary: each
            .iter()
            .map(|(cause, c)| format!("{cause}: {}", c.summary))
            .collect::<Vec<_>>()
            .join("; "),
        figures: json!(each
            .iter()
            .map(|(cause, c)| (cause.to_string(), c.figures.clone()))
            .collect::<serde_json::Map<_, _>>()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disk_the_guest_caches_otherwise_than_modelled_fails() {
        let wb = |d: &str| (d.to_string(), "write back\n".to_string());
        assert!(write_cache_as_modelled(DiskModel::VolatileCache, &[wb("m0"), wb("fs")]).ok);
        let c = write_cache_as_modelled(DiskModel::WriteThrough, &[wb("m0")]);
        assert!(!c.ok);
        assert!(c.summary.contains("m0: \"write back\""), "{}", c.summary);
        assert!(!write_cache_as_modelled(DiskModel::WriteThrough, &[]).ok);
    }

    #[test]
    fn nothing_judged_and_violations_fail() {
        assert!(!crash_states_judged(0, 0, 10).ok);
        assert!(!crash_states_judged(5, 10, 0).ok);
        assert!(crash_states_judged(5, 10, 3).ok);
        assert!(power_loss_safety(0, 0, 10, None, Value::Null).ok);
        let v = FirstViolation {
            point: 7,
            after: "issue of m0 #3 write 2048+8",
            uncovered: &[4, 5],
            cause: "ordering",
        };
        let c = power_loss_safety(3, 1, 10, Some(v), Value::Null);
        assert!(!c.ok);
        assert!(
            c.summary.contains("chunks 4-5 uncovered (ordering)"),
            "{}",
            c.summary
        );
    }

    #[test]
    fn a_violation_is_confirmed_only_if_the_chunks_still_differ() {
        assert!(power_loss_confirmed(Ok(vec![4, 9]), &[4, 5]).ok);
        let gone = power_loss_confirmed(Ok(vec![9]), &[4, 5]);
        assert!(!gone.ok && gone.summary.starts_with("unconfirmed"));
        assert!(!power_loss_confirmed(Err("mdadm refused".into()), &[4]).ok);
        let both = power_loss_confirmed_per_cause(&[
            ("ordering", Ok(vec![4]), vec![4]),
            ("cleared", Ok(vec![]), vec![7]),
        ]);
        assert!(!both.ok, "the cleared state did not stay different");
        assert!(
            both.summary.contains("cleared: unconfirmed"),
            "{}",
            both.summary
        );
        assert!(power_loss_confirmed_per_cause(&[("ordering", Ok(vec![4]), vec![4])]).ok);
        assert!(!power_loss_confirmed_per_cause(&[]).ok);
    }
}
