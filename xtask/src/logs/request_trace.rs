//! The guest's `block:block_rq_issue` and `block:block_rq_complete` trace, read: the one
//! order, across every disk, in which requests went to the disks and came back. It is
//! what md saw: a completion md waited for is in it before the request md sent after it.

/// What a request does to its disk, from the trace's `rwbs` letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RqOp {
    Write,
    /// An empty flush (`FF` from the block layer's flush machinery, or `F`).
    Flush,
    Discard,
    /// Reads, and what the bench does not model.
    Other,
}

/// One request event, in trace order.
#[derive(Debug, Clone, PartialEq)]
pub struct RqEvent {
    pub dev: (u32, u32),
    pub op: RqOp,
    /// Issued to the driver (true) or completed by it.
    pub issue: bool,
    pub sector: u64,
    pub sectors: u64,
    /// The FUA flag as issued (`WF...`); virtio-blk has no FUA, so the block layer
    /// strips it and sends a flush after the write instead.
    pub fua: bool,
    /// The completion's errno (0 for an issue).
    pub error: i32,
    /// Trace seconds, for the record; the order is the line order.
    pub time: f64,
    /// The task the line was traced in (0 when the line does not say).
    pub pid: u32,
}

/// Parses the trace's `block_rq_issue: 253,0 WS 4096 () 2048 + 8 none,0,0 [md0_raid1]`
/// and `block_rq_complete: 253,0 WS () 2048 + 8 none,0,0 [0]` lines (Linux 6.1 prints
/// no I/O priority, `none,0,0`); others are skipped.
/// Returns the events and the lines that looked like one but did not parse.
pub fn parse(trace: &str) -> (Vec<RqEvent>, Vec<String>) {
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"\s(\d+\.\d+): block_rq_(issue|complete): (\d+),(\d+) (\S+) (?:\d+ )?\(.*?\) (\d+) \+ (\d+)(?: \S+)? \[(.*)\]$",
        )
        .expect("valid")
    });
    let mut events = Vec::new();
    let mut bad = Vec::new();
    for line in trace.lines() {
        if !line.contains(": block_rq_issue: ") && !line.contains(": block_rq_complete: ") {
            continue;
        }
        let Some(c) = RE.captures(line) else {
            bad.push(line.to_string());
            continue;
        };
        let issue = &c[2] == "issue";
        let rwbs = &c[5];
        let parsed = (|| {
            Some(RqEvent {
                dev: (c[3].parse().ok()?, c[4].parse().ok()?),
                op: op_of(rwbs),
                issue,
                sector: c[6].parse().ok()?,
                sectors: c[7].parse().ok()?,
                fua: fua_of(rwbs),
                error: if issue { 0 } else { c[8].parse().ok()? },
                time: c[1].parse().ok()?,
                pid: task_pid(line),
            })
        })();
        match parsed {
            Some(e) => events.push(e),
            None => bad.push(line.to_string()),
        }
    }
    (events, bad)
}

/// The kprobe event the recorded boot puts on md's `__bitmap_unplug` (`md-bitmap.c`):
/// an unplug of the bitmap begins.
pub const UNPLUG_EVENT: &str = "mdbb_bitmap_unplug";
/// The kprobe event on md's `filemap_write_page`: a task sends a bitmap page to be
/// written (the request may be dispatched later, by another task).
pub const PAGE_WRITE_EVENT: &str = "mdbb_bitmap_write";

/// Where an unplug of the bitmap began, and in which task: `(request events before it,
/// pid)` for every [`UNPLUG_EVENT`] line.
pub fn unplug_starts(trace: &str) -> Vec<(usize, u32)> {
    probe_hits(trace, UNPLUG_EVENT)
}

/// Where a task sent a bitmap page to be written ([`PAGE_WRITE_EVENT`]).
pub fn page_writes(trace: &str) -> Vec<(usize, u32)> {
    probe_hits(trace, PAGE_WRITE_EVENT)
}

fn probe_hits(trace: &str, event: &str) -> Vec<(usize, u32)> {
    let mut events = 0;
    let mut out = Vec::new();
    let probe = format!(": {event}: ");
    for line in trace.lines() {
        if line.contains(&probe) {
            out.push((events, task_pid(line)));
        } else if line.contains(": block_rq_issue: ") || line.contains(": block_rq_complete: ") {
            events += 1;
        }
    }
    out
}

/// The pid of `comm-PID  [CPU] flags time: ...`; a comm may hold dashes and spaces.
pub fn task_pid(line: &str) -> u32 {
    line.split_once(" [")
        .and_then(|(task, _)| task.trim().rsplit_once('-'))
        .and_then(|(_, pid)| pid.parse().ok())
        .unwrap_or(0)
}

/// `blk_fill_rwbs`: an optional `F` (PREFLUSH), the op letter (`W`, `R`, `D`, `F` for a
/// flush op, `N` otherwise), an optional `F` (FUA), then `S`, `M`...
fn op_of(rwbs: &str) -> RqOp {
    let body = rwbs.strip_prefix('F').unwrap_or(rwbs);
    match body.chars().next() {
        Some('W') => RqOp::Write,
        Some('D') => RqOp::Discard,
        // "FF" (PREFLUSH on a flush op) or a lone "F".
        Some('F') | None => RqOp::Flush,
        _ => RqOp::Other,
    }
}

fn fua_of(rwbs: &str) -> bool {
    let body = rwbs.strip_prefix('F').unwrap_or(rwbs);
    matches!(body.chars().next(), Some('W')) && body[1..].starts_with('F')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_and_completions_of_writes_and_flushes() {
        let trace = "\
# tracer: nop
   md0_raid1-99  [001] d..1.  30.100001: block_rq_issue: 253,16 WS 4096 () 2048 + 8 none,0,0 [md0_raid1]
  kworker/0:1-5  [000] d..1.  30.100002: block_rq_issue: 253,0 FF 0 () 0 + 0 none,0,0 [kworker/0:1]
      <idle>-0   [000] d.h1.  30.100003: block_rq_complete: 253,16 WS () 2048 + 8 none,0,0 [0]
      <idle>-0   [000] d.h1.  30.100004: block_rq_complete: 253,0 FF () 18446744073709551615 + 0 none,0,0 [-5]
   md0_raid1-99  [001] d..1.  30.100005: block_rq_issue: 253,16 WFS 512 () 8 + 1 none,0,0 [md0_raid1]
   md0_raid1-99  [001] d..1.  30.100006: block_rq_issue: 253,16 R 4096 () 8 + 8 none,0,0 [mdadm]
   md0_raid1-99  [001] d..1.  30.100007: block_rq_issue: garbage
";
        let (ev, bad) = parse(trace);
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert_eq!(ev.len(), 6);
        assert_eq!(
            ev[0],
            RqEvent {
                dev: (253, 16),
                op: RqOp::Write,
                issue: true,
                sector: 2048,
                sectors: 8,
                fua: false,
                error: 0,
                time: 30.100001,
                pid: 99,
            }
        );
        assert_eq!(ev[1].pid, 5, "kworker/0:1-5");
        assert_eq!((ev[1].op, ev[1].dev), (RqOp::Flush, (253, 0)));
        assert!(!ev[2].issue && ev[2].op == RqOp::Write && ev[2].error == 0);
        assert_eq!((ev[3].op, ev[3].error), (RqOp::Flush, -5));
        assert!(ev[4].fua && ev[4].op == RqOp::Write);
        assert_eq!(ev[5].op, RqOp::Other);
        // Linux 6.1's lines, without the I/O priority.
        let (ev, bad) = parse(
            "   mdadm-112     [000] .....     3.046410: block_rq_issue: 254,0 WS 4096 () 262016 + 8 [mdadm]\n\
             <idle>-0   [000] d.h1.  3.046500: block_rq_complete: 254,0 WS () 262016 + 8 [0]\n",
        );
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!((ev.len(), ev[0].sector, ev[1].issue), (2, 262016, false));
    }

    #[test]
    fn unplug_starts_are_placed_among_the_request_events_with_their_task() {
        let trace = "\
   agent-192     [001] .....    16.433193: block_rq_issue: 254,0 WS 159744 () 106632 + 312 be,0,4 [agent]
 kworker/u8:2-38      [000] .....    16.433200: mdbb_bitmap_unplug: (__bitmap_unplug+0x4/0x1f0 [md_mod])
 <idle>-0       [000] d.H2.    16.437079: block_rq_complete: 254,32 WS () 16520 + 8 be,0,4 [0]
 md0 raid-1-x-77 [000] .....    16.437100: mdbb_bitmap_unplug: (__bitmap_unplug+0x4/0x1f0 [md_mod])
";
        assert_eq!(unplug_starts(trace), [(1, 38), (2, 77)]);
        let written = " kworker/u8:0-12 [001] ..... 5.2104: mdbb_bitmap_write: (filemap_write_page+0x0/0x90 [md_mod])\n";
        assert_eq!(page_writes(&format!("{trace}{written}")), [(2, 12)]);
    }
}
