//! What md did with a bitmap file that lies, against what the case expects of it.

use super::Check;
use crate::case::LieOutcome;
use serde_json::json;

/// What md did at the assembly, from what the guest showed: whether `mdadm --assemble`
/// with the file succeeded, `md/bitmap/location` after it, and md's full-recovery
/// announcements.
pub fn observed_outcome(assembled: bool, location: &str, full_recovery: &[String]) -> LieOutcome {
    if !assembled || location.trim() == "none" {
        LieOutcome::Refused
    } else if !full_recovery.is_empty() {
        LieOutcome::FullRecovery
    } else {
        LieOutcome::Trusted
    }
}

/// md must do with the file what the case expects of it (refuse it, recover in full, or
/// use bits that are the array's own); `messages` are md's words about it.
pub fn bitmap_outcome(expected: LieOutcome, observed: LieOutcome, messages: &[String]) -> Check {
    let said = if messages.is_empty() {
        "md said nothing about the file".to_string()
    } else {
        format!("md: {}", messages.join(" | "))
    };
    Check {
        name: "bitmap_outcome".into(),
        ok: expected == observed,
        summary: if expected == observed {
            format!("md {} the file, as expected; {said}", verb(observed))
        } else {
            format!(
                "md {} the file where the case expects it {}; {said}",
                verb(observed),
                verb(expected)
            )
        },
        figures: json!({
            "expected": expected.as_str(),
            "observed": observed.as_str(),
            "messages": messages,
        }),
    }
}

fn verb(o: LieOutcome) -> &'static str {
    match o {
        LieOutcome::Refused => "refused",
        LieOutcome::FullRecovery => "recovered in full instead of trusting",
        LieOutcome::Trusted => "trusted",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LieOutcome::*;

    #[test]
    fn the_outcome_is_read_from_the_assembly_the_location_and_the_messages() {
        let full =
            vec!["md0: bitmap file is out of date (3 < 9) -- forcing full recovery".to_string()];
        assert_eq!(observed_outcome(false, "", &[]), Refused);
        assert_eq!(observed_outcome(true, "none\n", &[]), Refused);
        assert_eq!(observed_outcome(true, "file\n", &full), FullRecovery);
        assert_eq!(observed_outcome(true, "file\n", &[]), Trusted);
    }

    #[test]
    fn an_outcome_other_than_the_expected_one_fails_and_names_both() {
        let msg = vec!["md0: bitmap superblock UUID mismatch".to_string()];
        assert!(bitmap_outcome(Refused, Refused, &msg).ok);
        let c = bitmap_outcome(Refused, Trusted, &[]);
        assert!(!c.ok);
        assert!(
            c.summary
                .contains("trusted the file where the case expects it refused"),
            "{}",
            c.summary
        );
        assert_eq!(c.figures["observed"], "trusted");
        assert!(!bitmap_outcome(FullRecovery, Refused, &msg).ok);
    }
}
