//! What the kernel logged: md's complaints about its bitmap, the failures the fault
//! injectors made.

use super::Check;
use serde_json::json;
use std::collections::BTreeMap;

/// The injectors must have fired: a fault case whose faults never hit proved nothing.
pub fn faults_injected(console: &str) -> Check {
    let faults = crate::logs::splat::injected_faults(console);
    // "md_bitmap_checkpage in agent": where the failures landed, most frequent first.
    let mut sites: BTreeMap<String, usize> = BTreeMap::new();
    for f in &faults {
        let site = f.site.as_deref().unwrap_or("?");
        *sites
            .entry(format!("{} {site} in {}", f.injector, f.task))
            .or_default() += 1;
    }
    let mut ranked: Vec<(&String, &usize)> = sites.iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let n = faults.len();
    Check {
        name: "faults_injected".into(),
        ok: n > 0,
        summary: if n > 0 {
            let list: Vec<String> = ranked
                .iter()
                .take(3)
                .map(|(s, c)| format!("{c}x {s}"))
                .collect();
            format!("{n} failures injected: {}", list.join(", "))
        } else {
            "no fault was injected: the run proved nothing about the error paths".into()
        },
        figures: json!({ "injected": n, "sites": sites }),
    }
}

/// md's complaints about its bitmap in a console log.
pub fn bitmap_errors(console: &str) -> Check {
    let found = crate::logs::kmsg::bitmap_complaints(console);
    Check {
        name: "no_bitmap_errors".into(),
        ok: found.is_empty(),
        summary: if found.is_empty() {
            "md logged no bitmap error".into()
        } else {
            format!("md logged: {}", found.join(" | "))
        },
        figures: json!({ "messages": found }),
    }
}

#[cfg(test)]
mod tests {
    use crate::check::*;

    #[test]
    fn pressure_writer_and_bitmap_error_checks_fail_when_broken() {
        let psi = "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
        let none = "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n";
        assert!(!pressure_reached(none, psi).ok);
        assert!(pressure_reached("low 0\nhigh 12\nmax 0\noom 0\n", psi).ok);
        let c = pressure_reached(none, "some avg10=1.00 avg60=0.00 avg300=0.00 total=5300\n");
        assert!(c.ok && c.figures["memory_stall_us"] == 5300);
        assert!(writers_alive(None).ok);
        assert!(
            !writers_alive(Some((
                Some(1),
                "write 4096 at 0: Input/output error".into()
            )))
            .ok
        );
        assert!(bitmap_errors("[ 1.0] md0: bitmap file is ok\n").ok);
        let c = bitmap_errors("[ 5.0] md0: kicking failed bitmap file /mnt/bitmap from array!\n");
        assert!(!c.ok && c.summary.contains("kicking failed bitmap file"));
    }

    #[test]
    fn faults_must_have_been_injected() {
        let c = faults_injected("[ 9.1] FAULT_INJECTION: forcing a failure.\n[ 9.2] name failslab, interval 1, probability 10, space 0, times -1\n");
        assert!(c.ok && c.figures["injected"] == 1);
        assert!(
            c.summary.contains("1x failslab ? in unknown"),
            "{}",
            c.summary
        );
        assert!(!faults_injected("[ 9.1] md0: resync done\n").ok);
    }
}
