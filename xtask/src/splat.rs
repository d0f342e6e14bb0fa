//! Kernel splats in a console log: a table of patterns tried in order (as syzkaller's
//! `pkg/report` does), each giving a kind and a title with volatile parts normalised, so
//! the same bug on two runs has the same title.

use regex::Regex;
use serde::Serialize;
use std::sync::LazyLock;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Splat {
    pub kind: &'static str,
    pub title: String,
    /// The console log it was found in (a case with two boots has two).
    pub log: String,
    /// The case declared it (`expect_splats`): recorded, not failed.
    pub expected: bool,
    /// 1-based line of the console log where it starts.
    pub line: usize,
    /// The splat's lines as printed (at most [`EXCERPT_LINES`]).
    pub excerpt: String,
}

pub const EXCERPT_LINES: usize = 40;

struct Pattern {
    kind: &'static str,
    /// Matches the first line; capture group `what`, if any, goes into the title.
    start: Regex,
    title: &'static str,
}

static PATTERNS: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    let p = |kind, start: &str, title| Pattern {
        kind,
        start: Regex::new(start).expect("valid pattern"),
        title,
    };
    vec![
        p(
            "kasan",
            r"BUG: KASAN: (?P<what>[\w-]+(?: in \S+)?)",
            "KASAN: {what}",
        ),
        p(
            "kfence",
            r"BUG: KFENCE: (?P<what>[\w-]+(?: in \S+)?)",
            "KFENCE: {what}",
        ),
        p("ubsan", r"UBSAN: (?P<what>.+)", "UBSAN: {what}"),
        p(
            "lockdep",
            r"WARNING: (?P<what>possible circular locking dependency detected|possible recursive locking detected|inconsistent lock state|suspicious RCU usage|bad unlock balance detected!)",
            "lockdep: {what}",
        ),
        p(
            "hung-task",
            r"INFO: task (?P<what>\S+):\d+ blocked for more than \d+ seconds",
            "hung task: {what}",
        ),
        p(
            "soft-lockup",
            r"watchdog: BUG: soft lockup - CPU#\d+ stuck for \d+s! \[(?P<what>[^\]]+)\]",
            "soft lockup in {what}",
        ),
        p(
            "rcu-stall",
            r"rcu: INFO: rcu_(?:sched|preempt) (?P<what>detected stalls|self-detected stall)",
            "RCU stall: {what}",
        ),
        p(
            "bug",
            r"kernel BUG at (?P<what>\S+)!",
            "kernel BUG at {what}",
        ),
        p("bug", r"BUG: (?P<what>.+)", "BUG: {what}"),
        p(
            "warning",
            r"WARNING: CPU: \d+ PID: \d+ at (?P<what>\S+)",
            "WARNING in {what}",
        ),
        p(
            "gpf",
            r"general protection fault(?P<what>)",
            "general protection fault",
        ),
        p("oops", r"Oops: (?P<what>.+)", "Oops: {what}"),
        p(
            "panic",
            r"Kernel panic - not syncing: (?P<what>.+)",
            "panic: {what}",
        ),
    ]
});

/// Where a WARNING's function shows when the first line only has file:line.
static RIP: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"RIP: \d+:(?P<func>[\w.]+)\+0x").expect("valid"));
static VOLATILE: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    vec![
        (Regex::new(r"0x[0-9a-fA-F]+").unwrap(), "ADDR"),
        (Regex::new(r"\b[0-9a-fA-F]{8,}\b").unwrap(), "ADDR"),
        (Regex::new(r"\b\d+\b").unwrap(), "NUM"),
    ]
});

fn normalise(title: &str) -> String {
    let mut t = title.trim().to_string();
    for (re, with) in VOLATILE.iter() {
        t = re.replace_all(&t, *with).into_owned();
    }
    t
}

/// Strips the `[   12.345678] ` timestamp the console puts before each kernel line.
fn body(line: &str) -> &str {
    let l = line.trim_start();
    if l.starts_with('[') {
        if let Some(end) = l.find("] ") {
            return &l[end + 2..];
        }
    }
    l
}

/// Every splat in `log`, in order. A splat's excerpt runs to the next `---[ end` marker,
/// or to [`EXCERPT_LINES`] lines.
pub fn scan(log: &str) -> Vec<Splat> {
    let lines: Vec<&str> = log.lines().collect();
    let mut found: Vec<Splat> = Vec::new();
    let mut skip_until = 0;
    for (i, line) in lines.iter().enumerate() {
        if i < skip_until {
            continue;
        }
        let text = body(line);
        let Some((pattern, caps)) = PATTERNS
            .iter()
            .find_map(|p| p.start.captures(text).map(|c| (p, c)))
        else {
            continue;
        };
        let end = (i + 1..lines.len().min(i + EXCERPT_LINES))
            .find(|&j| body(lines[j]).starts_with("---[ end"))
            .map(|j| j + 1)
            .unwrap_or_else(|| lines.len().min(i + EXCERPT_LINES));
        let mut what = caps
            .name("what")
            .map(|m| m.as_str().to_string())
            .unwrap_or_default();
        if pattern.kind == "warning" || pattern.kind == "gpf" || pattern.kind == "oops" {
            if let Some(func) = lines[i..end]
                .iter()
                .find_map(|l| RIP.captures(l))
                .and_then(|c| c.name("func"))
            {
                what = match pattern.kind {
                    "warning" => func.as_str().to_string(),
                    _ => format!("{what} in {}", func.as_str()).trim().to_string(),
                };
            }
        }
        let title = normalise(&pattern.title.replace("{what}", &what));
        // One splat prints several matching lines (an Oops after a BUG, the panic after
        // both); the first names it.
        skip_until = end;
        found.push(Splat {
            kind: pattern.kind,
            title,
            log: String::new(),
            expected: false,
            line: i + 1,
            excerpt: lines[i..end].join("\n"),
        });
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_normalised_and_excerpts_end_at_the_end_marker() {
        let log = "[    1.0] ok\n[    2.5] WARNING: CPU: 1 PID: 77 at drivers/md/md-bitmap.c:1234 md_bitmap_startwrite+0x1a/0x30 [md_mod]\n[    2.5] RIP: 0010:md_bitmap_startwrite+0x1a/0x30 [md_mod]\n[    2.6] ---[ end trace 0000000000000000 ]---\n[    2.7] after\n";
        let s = scan(log);
        assert_eq!(s.len(), 1);
        assert_eq!(
            (s[0].kind, s[0].title.as_str(), s[0].line),
            ("warning", "WARNING in md_bitmap_startwrite", 2)
        );
        assert!(s[0]
            .excerpt
            .ends_with("---[ end trace 0000000000000000 ]---"));
    }

    #[test]
    fn hung_task_and_panic() {
        let s = scan("[  245.1] INFO: task md0_raid1:123 blocked for more than 122 seconds.\n");
        assert_eq!(s[0].title, "hung task: md0_raid1");
        let s = scan("[ 3.1] Kernel panic - not syncing: sysrq triggered crash\n");
        assert_eq!(
            (s[0].kind, s[0].title.as_str()),
            ("panic", "panic: sysrq triggered crash")
        );
        assert!(scan("[ 1.0] md/raid1:md0: active with 2 out of 2 mirrors\n").is_empty());
    }
}
