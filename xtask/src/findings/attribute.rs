//! Which findings a result shows: each cause the judge read from a recording is either a
//! finding the case declares, or unexplained. Pure, so that "a declared finding never
//! hides another bug" is a unit test.

use serde::{Deserialize, Serialize};

/// Unsafe states of one cause in a case, with one piece of evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub cause: String,
    /// Unsafe states (power loss) or uncovered chunks (a SIGKILL's one state).
    pub states: u64,
    /// `states` or `chunks`.
    pub unit: &'static str,
    pub evidence: String,
}

/// A finding, or an unexplained cause, as a result records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// The finding's id; `None` for a cause no finding the case declares has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub cause: String,
    /// Unsafe states (or chunks, see `unit`) with this cause; 0 for a declared finding the
    /// judge did not see.
    pub states: u64,
    #[serde(default = "states")]
    pub unit: String,
    pub declared: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
}

fn states() -> String {
    "states".into()
}

impl Seen {
    /// `unplug-ordering`, or `unexplained cleared` for a cause no finding explains.
    pub fn name(&self) -> String {
        self.id
            .clone()
            .unwrap_or_else(|| format!("unexplained {}", self.cause))
    }

    /// `unplug-ordering: 150 states`, `unexplained cleared: 3 states`.
    pub fn label(&self) -> String {
        format!("{}: {} {}", self.name(), self.states, self.unit)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attribution {
    /// The declared findings first (seen or not), in declaration order, then the
    /// unexplained causes.
    pub seen: Vec<Seen>,
}

impl Attribution {
    /// The causes no declared finding explains.
    pub fn unexplained(&self) -> impl Iterator<Item = &Seen> {
        self.seen.iter().filter(|s| !s.declared && s.states > 0)
    }

    /// Declared findings the judge saw.
    pub fn shown(&self) -> impl Iterator<Item = &Seen> {
        self.seen.iter().filter(|s| s.declared && s.states > 0)
    }

    pub fn line(&self) -> String {
        self.seen
            .iter()
            .map(Seen::label)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `declared` holds the ids the case declares (known, and fitting it: the case loader
/// checks both).
pub fn attribute(declared: &[String], observed: &[Observed]) -> Attribution {
    let mut seen: Vec<Seen> = declared
        .iter()
        .filter_map(|id| super::get(id))
        .map(|f| Seen {
            id: Some(f.id.clone()),
            cause: f.cause.clone(),
            states: 0,
            unit: observed.first().map_or("states", |o| o.unit).into(),
            declared: true,
            evidence: None,
        })
        .collect();
    for o in observed.iter().filter(|o| o.states > 0) {
        match seen.iter_mut().find(|s| s.declared && s.cause == o.cause) {
            Some(s) => {
                s.states += o.states;
                s.evidence = Some(o.evidence.clone());
            }
            None => seen.push(Seen {
                id: None,
                cause: o.cause.clone(),
                states: o.states,
                unit: o.unit.into(),
                declared: false,
                evidence: Some(o.evidence.clone()),
            }),
        }
    }
    Attribution { seen }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(cause: &str, states: u64) -> Observed {
        Observed {
            cause: cause.into(),
            states,
            unit: "states",
            evidence: format!("chunk 3: {cause}"),
        }
    }

    #[test]
    fn a_cause_is_a_finding_only_when_the_case_declares_the_finding_with_that_cause() {
        let declared = vec!["unplug-ordering".to_string()];
        let a = attribute(&declared, &[observed("ordering", 150)]);
        assert_eq!(a.unexplained().count(), 0);
        assert_eq!(a.line(), "unplug-ordering: 150 states");
        assert_eq!(a.seen[0].evidence.as_deref(), Some("chunk 3: ordering"));

        // The race declared does not hide a bit never written.
        let a = attribute(
            &declared,
            &[observed("ordering", 150), observed("unwritten", 2)],
        );
        let un: Vec<&Seen> = a.unexplained().collect();
        assert_eq!(un.len(), 1);
        assert_eq!(un[0].cause, "unwritten");
        assert_eq!(un[0].id, None);
        assert_eq!(
            a.line(),
            "unplug-ordering: 150 states, unexplained unwritten: 2 states"
        );

        // Durability is a finding of its own: declaring ordering does not cover it.
        let a = attribute(&declared, &[observed("durability", 5)]);
        assert_eq!(a.unexplained().count(), 1);
        assert_eq!(a.seen[0].states, 0, "the declared race was not seen");
    }

    #[test]
    fn declared_findings_not_seen_are_listed_with_no_states() {
        let declared = vec![
            "unplug-ordering".to_string(),
            "file-bitmap-no-fua".to_string(),
        ];
        let a = attribute(&declared, &[observed("durability", 4949)]);
        assert_eq!(
            a.line(),
            "unplug-ordering: 0 states, file-bitmap-no-fua: 4949 states"
        );
        assert_eq!(a.shown().count(), 1);
        assert_eq!(attribute(&declared, &[]).shown().count(), 0);
    }
}
