//! When the guest stops making progress: before giving up, ask the kernel for the stacks of
//! every blocked task (`echo w > /proc/sysrq-trigger`) and cut them out of the console, so
//! a stall fails with the tasks that were stuck and where.

use crate::logs::blocked::{self, MARKER};
use crate::poll::{self, Pace, Probe};
use crate::vm::{guest, Vm};
use std::time::Duration;

/// Triggers sysrq `w` (through the agent, or QMP's keyboard when the agent does not
/// answer) and returns the report the console printed, empty when none came.
pub fn blocked_tasks(vm: &mut Vm) -> String {
    let log = vm.console_log().to_path_buf();
    let start = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0) as usize;
    let sent = guest::run(
        vm,
        "echo w > /proc/sysrq-trigger",
        &[],
        Duration::from_secs(5),
    )
    .is_ok_and(|o| o.success());
    if !sent {
        let keys = ["alt", "sysrq", "w"].map(|k| serde_json::json!({"type": "qcode", "data": k}));
        let _ = vm
            .qmp()
            .execute("send-key", serde_json::json!({ "keys": keys }));
    }
    // The report is printed by the kernel at once but can be long: wait until it has
    // appeared and the console has stopped growing, at most 10 s.
    let mut last = 0;
    let settled = poll::until(
        Duration::from_secs(10),
        Pace::ms(100, 500),
        || {
            let text = std::fs::read(&log).unwrap_or_default();
            let new = String::from_utf8_lossy(text.get(start..).unwrap_or_default()).into_owned();
            let done = new.contains(MARKER) && text.len() == last;
            last = text.len();
            Ok::<_, String>(if done {
                Probe::Done(new)
            } else {
                Probe::Pending(new)
            })
        },
        |new| new,
    );
    let text = settled.unwrap_or_else(|new| new);
    blocked::report(&text)
}
