//! The kernel's report of blocked tasks (sysrq `w`), cut out of a console log.

/// The console line sysrq `w` starts its report with.
pub const MARKER: &str = "Show Blocked State";

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
