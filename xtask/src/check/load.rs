//! What the load met before the crash: the pressure the case asked for, writers that
//! were still writing.

use super::Check;
use serde_json::json;

/// The pressure a case asked for must have been reached, or the run proved nothing
/// about pressure: the cgroup hit `memory.high`/`memory.max` (`memory.events`), or tasks
/// stalled on memory (PSI `some total`).
pub fn pressure_reached(memory_events: &str, memory_pressure: &str) -> Check {
    let event = |name: &str| {
        memory_events
            .lines()
            .find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|v| v.trim().parse::<u64>().ok())
            })
            .unwrap_or(0)
    };
    let stall_us = memory_pressure
        .lines()
        .find(|l| l.starts_with("some"))
        .and_then(|l| l.split_whitespace().find_map(|f| f.strip_prefix("total=")))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let (high, max, oom) = (event("high "), event("max "), event("oom "));
    Check {
        name: "pressure_reached".into(),
        ok: high + max > 0 || stall_us > 0,
        summary: if high + max > 0 || stall_us > 0 {
            format!("the writers' cgroup hit memory.high {high} and memory.max {max} times; tasks stalled on memory {stall_us} us")
        } else {
            "the run never reached memory pressure (no memory.high/max events, no memory stall): nothing was proved about pressure".into()
        },
        figures: json!({ "high_events": high, "max_events": max, "oom_events": oom, "memory_stall_us": stall_us }),
    }
}

/// The writers were still writing when the crash came: none stopped on an I/O error.
pub fn writers_alive(exit: Option<(Option<i32>, String)>) -> Check {
    Check {
        name: "writers_alive".into(),
        ok: exit.is_none(),
        summary: match &exit {
            None => "the writers were still writing at the crash; none saw an I/O error".into(),
            Some((status, stderr)) => format!(
                "the writers ended before the crash (status {status:?}): {}",
                stderr.trim()
            ),
        },
        figures: json!({ "exited": exit.is_some() }),
    }
}
