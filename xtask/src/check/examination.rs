//! The examination of a running array's bitmap file: O_DIRECT is the disk, mdadm agrees,
//! the page cache is right once md lets the file go, opening for writing does what the
//! case says.

use super::Check;
use serde_json::json;

/// One moment of the examination: the bitmap file read with O_DIRECT, through the page
/// cache, and from the block device at the file's extents.
#[derive(Debug, Clone)]
pub struct FileSample {
    pub direct: Vec<u8>,
    pub cached: Vec<u8>,
    pub raw: Vec<u8>,
    /// Dirty chunks in the decoded O_DIRECT read.
    pub dirty: u64,
}

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .or((a.len() != b.len()).then(|| a.len().min(b.len())))
}

/// While the array runs, an O_DIRECT read of the bitmap file must be what is on the disk,
/// byte for byte, at every sample; the page cache may lag (md writes past it) and that is
/// counted, not failed. Samples that never saw a dirty bit judge nothing, so at least one
/// must have.
pub fn direct_matches_disk(samples: &[FileSample]) -> Check {
    let mismatches: Vec<(usize, usize)> = samples
        .iter()
        .enumerate()
        .filter_map(|(i, s)| first_difference(&s.direct, &s.raw).map(|at| (i, at)))
        .collect();
    let moving = samples.iter().filter(|s| s.dirty > 0).count();
    let lagged = samples.iter().filter(|s| s.cached != s.raw).count();
    let ok = mismatches.is_empty() && moving > 0;
    let summary = if !mismatches.is_empty() {
        let (i, at) = mismatches[0];
        format!(
            "{} of {} O_DIRECT reads differ from the disk (sample {i} first at byte {at})",
            mismatches.len(),
            samples.len()
        )
    } else if moving == 0 {
        format!("no sample of {} saw a dirty bit: the load never reached the bitmap, nothing was judged", samples.len())
    } else {
        format!("{} O_DIRECT reads equal the disk ({moving} with dirty bits); the page cache lagged in {lagged}", samples.len())
    };
    Check {
        name: "direct_matches_disk".into(),
        ok,
        summary,
        figures: json!({ "samples": samples.len(), "mismatches": mismatches.len(), "samples_with_dirty_bits": moving, "page_cache_lagged": lagged }),
    }
}

/// After the array lets the file go, md invalidates its page cache: a buffered read must
/// see the disk.
pub fn page_cache_after_release(cached: &[u8], raw: &[u8]) -> Check {
    let diff = first_difference(cached, raw);
    Check {
        name: "page_cache_after_release".into(),
        ok: diff.is_none(),
        summary: match diff {
            None => format!(
                "after the array stopped, a buffered read equals the disk ({} bytes)",
                raw.len()
            ),
            Some(at) => format!(
                "after the array stopped, the page cache still differs from the disk at byte {at}"
            ),
        },
        figures: json!({ "bytes": raw.len(), "first_difference": diff }),
    }
}

/// `mdadm -X`, run while the bitmap did not change (the same O_DIRECT bytes before and
/// after it), must print what the decoder reads; the Filename line is not compared.
pub fn mdadm_agrees(pairs: &[(String, String)]) -> Check {
    let strip = |t: &str| {
        t.lines()
            .filter(|l| !l.trim_start().starts_with("Filename"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let disagree: Vec<usize> = pairs
        .iter()
        .enumerate()
        .filter(|(_, (ours, theirs))| strip(ours) != strip(theirs))
        .map(|(i, _)| i)
        .collect();
    let ok = !pairs.is_empty() && disagree.is_empty();
    Check {
        name: "mdadm_agrees".into(),
        ok,
        summary: if pairs.is_empty() {
            "the bitmap never held still across an mdadm -X: nothing compared".into()
        } else if disagree.is_empty() {
            format!(
                "mdadm -X agreed with the decoded O_DIRECT read {} times",
                pairs.len()
            )
        } else {
            let (ours, theirs) = &pairs[disagree[0]];
            format!("mdadm -X disagreed with the decoded O_DIRECT read in {} of {}:\nours:\n{ours}\nmdadm:\n{theirs}", disagree.len(), pairs.len())
        },
        figures: json!({ "compared": pairs.len(), "disagreed": disagree.len() }),
    }
}

/// Opening the bitmap file for writing while the array runs must do what the case
/// declares: fail with ETXTBSY (`refused`), or succeed (`allowed`).
pub fn write_open(errno: Option<i32>, expect: crate::case::WriteOpen) -> Check {
    use crate::case::WriteOpen;
    let ok = match expect {
        WriteOpen::Refused => errno == Some(libc::ETXTBSY),
        WriteOpen::Allowed => errno.is_none(),
    };
    let what = match errno {
        Some(libc::ETXTBSY) => "failed with ETXTBSY".to_string(),
        Some(e) => format!("failed with errno {e}"),
        None => "succeeded".to_string(),
    };
    Check {
        name: "write_open".into(),
        ok,
        summary: format!("opening the bitmap file for writing while the array ran {what}; the case expects it {expect:?}"),
        figures: json!({ "errno": errno, "expected": expect }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examination_checks_fail_when_broken() {
        let sample = |d: &[u8], c: &[u8], r: &[u8], dirty| FileSample {
            direct: d.into(),
            cached: c.into(),
            raw: r.into(),
            dirty,
        };
        let good = [
            sample(b"ab", b"xx", b"ab", 3),
            sample(b"cd", b"cd", b"cd", 0),
        ];
        let c = direct_matches_disk(&good);
        assert!(c.ok && c.figures["page_cache_lagged"] == 1, "{c:?}");
        let c = direct_matches_disk(&[
            sample(b"ab", b"ab", b"ab", 1),
            sample(b"cX", b"cd", b"cd", 1),
        ]);
        assert!(
            !c.ok && c.summary.contains("sample 1 first at byte 1"),
            "{}",
            c.summary
        );
        assert!(
            !direct_matches_disk(&[sample(b"a", b"a", b"a", 0)]).ok,
            "no dirty bit, nothing judged"
        );
        assert!(page_cache_after_release(b"abc", b"abc").ok);
        assert!(!page_cache_after_release(b"abd", b"abc").ok);
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert!(
            mdadm_agrees(&[pair(
                "Filename : /a\nEvents : 3",
                "Filename : /b\nEvents : 3"
            )])
            .ok
        );
        assert!(!mdadm_agrees(&[pair("Events : 3", "Events : 4")]).ok);
        assert!(!mdadm_agrees(&[]).ok);
        use crate::case::WriteOpen::{Allowed, Refused};
        assert!(write_open(Some(libc::ETXTBSY), Refused).ok);
        assert!(!write_open(None, Refused).ok);
        assert!(!write_open(Some(libc::EACCES), Refused).ok);
        assert!(write_open(None, Allowed).ok);
        assert!(!write_open(Some(libc::ETXTBSY), Allowed).ok);
    }
}
