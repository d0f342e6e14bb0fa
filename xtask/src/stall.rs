//! When the guest stops making progress: before giving up, ask the kernel for the stacks of
//! every blocked task (`echo w > /proc/sysrq-trigger`) and cut them out of the console, so
//! a stall fails with the tasks that were stuck and where.

use crate::run::guest_run;
use crate::vm::Vm;
use std::time::{Duration, Instant};

/// The console line sysrq `w` starts its report with.
const MARKER: &str = "Show Blocked State";

/// Triggers sysrq `w` (through the agent, or QMP's keyboard when the agent does not
/// answer) and returns the report the console printed, empty when none came.
pub fn blocked_tasks(vm: &mut Vm) -> String {
    let log = vm.console_log().to_path_buf();
    let start = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0) as usize;
    let sent = guest_run(
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
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = 0;
    let mut pause = Duration::from_millis(100);
    loop {
        let text = std::fs::read(&log).unwrap_or_default();
        let new = String::from_utf8_lossy(text.get(start..).unwrap_or_default()).into_owned();
        let settled = new.contains(MARKER) && text.len() == last;
        if settled || Instant::now() > deadline {
            return report(&new);
        }
        last = text.len();
        std::thread::sleep(pause); // poll the console with backoff until the deadline
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// The sysrq `w` report in console text: from its marker on, without the agent's lines.
pub fn report(console: &str) -> String {
    match console.find(MARKER) {
        Some(i) => {
            let from = console[..i].rfind('\n').map_or(0, |n| n + 1);
            console[from..]
                .lines()
                .filter(|l| !l.starts_with("mdbb-agent"))
                .collect::<Vec<_>>()
                .join("\n")
        }
        None => String::new(),
    }
}

/// The names of the tasks a report shows (`task:dd state:D ...` lines).
pub fn task_names(report: &str) -> Vec<String> {
    report
        .lines()
        .filter_map(|l| l.split("task:").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_starts_at_its_marker_and_names_the_tasks() {
        let console = "[ 9.1] md0: resync done\n\
            [ 12.0] sysrq: Show Blocked State\n\
            [ 12.0] task:dd              state:D stack:0     pid:201   tgid:201   ppid:1      flags:0x00004002\n\
            [ 12.0] Call Trace:\n\
            mdbb-agent: request 7\n\
            [ 12.0]  percpu_rwsem_wait+0x120/0x150\n\
            [ 12.0] task:md0_raid1       state:D stack:0     pid:150\n";
        let r = report(console);
        assert!(r.starts_with("[ 12.0] sysrq: Show Blocked State"), "{r}");
        assert!(!r.contains("mdbb-agent") && !r.contains("resync done"));
        assert_eq!(task_names(&r), vec!["dd", "md0_raid1"]);
        assert_eq!(report("nothing here\n"), "");
    }
}
