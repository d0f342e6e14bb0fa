//! Kernel splats in a console log: a table of patterns tried in order (as syzkaller's
//! `pkg/report` does), each giving a kind and a title with volatile parts normalised, so
//! the same bug on two runs has the same title.
//!
//! A splat starts at a line one of [`PATTERNS`] matches (on the text after the printk
//! timestamp, from its first character) and runs to the `---[ end` marker, the `=====` rule
//! that closes a KASAN/KFENCE/UBSAN report, the next splat or `sysrq:` line, or
//! [`EXCERPT_LINES`] lines. Its title names the guilty function where the report has one:
//! the `RIP:` of an Oops, the function a `WARNING` names, or the first frame of the call
//! trace that is not reporting machinery ([`SKIP_FRAMES`]).
//!
//! What one bug prints more than once is reported once (see [`Splat::folded`]):
//! - lines inside a splat that would start another one but are its consequence: the
//!   `Oops: invalid opcode` after `kernel BUG at`, the `Oops:` after `BUG: kernel NULL
//!   pointer dereference`, a `Kernel panic` whose message [`FOLLOW_ONS`] ties to the splat;
//! - later splats that are consequences of an earlier one: an `Oops ... [#2]` once the
//!   kernel has already died, `Kernel panic - not syncing: Fatal exception` after an Oops,
//!   `hung_task: blocked tasks` after a hung task...;
//! - the same kind and title again (a hung task is reported at every check).
//!
//! Diagnostics the bench asks for are not splats: `sysrq w` (blocked tasks), `sysrq l`
//! (backtraces) print stacks but no line any pattern starts with.

use regex::{Captures, Regex};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::sync::LazyLock;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Splat {
    pub kind: Cow<'static, str>,
    pub title: String,
    /// The console log it was found in (a case with two boots has two).
    pub log: String,
    /// The case declared it (`expect_splats`): recorded, not failed.
    pub expected: bool,
    /// 1-based line of the console log where it starts.
    pub line: usize,
    /// The splat's lines as printed (at most [`EXCERPT_LINES`]).
    pub excerpt: String,
    /// 1-based lines of later reports folded into this one: the same title again, or a
    /// consequence (a second Oops, the panic an Oops causes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub folded: Vec<usize>,
}

pub const EXCERPT_LINES: usize = 40;

/// Where the function in a title comes from.
#[derive(Clone, Copy)]
enum Guilty {
    /// The title has none.
    None,
    /// The first kernel `RIP: 0010:func+0x..` of the report.
    Rip,
    /// The first call-trace frame not in [`SKIP_FRAMES`].
    Stack,
    /// The RIP, else the stack.
    RipOrStack,
}

struct Pattern {
    kind: &'static str,
    /// Matches the start of a line's text (after the timestamp).
    start: Regex,
    guilty: Guilty,
    /// The title from the start line's captures and the guilty function, if found.
    title: fn(&Captures, Option<&str>, &[&str]) -> String,
}

fn cap<'a>(c: &'a Captures, name: &str) -> &'a str {
    c.name(name).map(|m| m.as_str()).unwrap_or_default()
}

/// `base in func`, or `base` alone when the report names no function.
fn in_func(base: String, func: Option<&str>) -> String {
    match func {
        Some(f) => format!("{base} in {f}"),
        None => base,
    }
}

/// `Read`/`Write` from the line after a KASAN header (`Read of size 8 at addr ...`).
fn access(region: &[&str]) -> Option<&'static str> {
    region.iter().skip(1).take(3).find_map(|l| {
        let b = body(l);
        if b.starts_with("Read of size") {
            Some("Read")
        } else if b.starts_with("Write of size") {
            Some("Write")
        } else {
            None
        }
    })
}

fn kasan_title(c: &Captures, func: Option<&str>, region: &[&str]) -> String {
    let mut t = format!("KASAN: {}", normalise(cap(c, "what")));
    if let Some(a) = access(region) {
        t = format!("{t} {a}");
    }
    let named = c.name("func").and_then(|m| func_name(m.as_str()));
    in_func(t, named.as_deref().or(func))
}

fn kfence_title(c: &Captures, func: Option<&str>, _: &[&str]) -> String {
    let named = c.name("func").and_then(|m| func_name(m.as_str()));
    in_func(
        format!("KFENCE: {}", normalise(cap(c, "what"))),
        named.as_deref().or(func),
    )
}

/// Without a function: the source file, without the line and column that move.
fn in_func_or_file(base: String, func: Option<&str>, file: &str) -> String {
    match (func, file.split(':').next().filter(|f| !f.is_empty())) {
        (Some(f), _) => format!("{base} in {f}"),
        (None, Some(f)) => format!("{base} at {f}"),
        (None, None) => base,
    }
}

static PATTERNS: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    let p = |kind, start: &str, guilty, title| Pattern {
        kind,
        start: Regex::new(start).expect("valid pattern"),
        guilty,
        title,
    };
    vec![
        p(
            "kasan",
            r"^BUG: KASAN: (?P<what>[\w-]+)(?: in (?P<func>\S+))?",
            Guilty::Stack,
            kasan_title,
        ),
        p(
            "kfence",
            r"^BUG: KFENCE: (?P<what>[\w-]+(?: read| write)?)(?: in (?P<func>\S+))?",
            Guilty::Stack,
            kfence_title,
        ),
        p(
            "ubsan",
            r"^UBSAN: (?P<what>.+?)(?: in (?P<file>\S+))?\s*$",
            Guilty::Stack,
            |c, f, _| {
                in_func_or_file(
                    format!("UBSAN: {}", normalise(cap(c, "what"))),
                    f,
                    cap(c, "file"),
                )
            },
        ),
        p(
            "lockdep",
            r"^WARNING: (?P<what>possible circular locking dependency detected|possible recursive locking detected|inconsistent lock state|suspicious RCU usage|bad unlock balance detected!|held lock freed!|lock held when returning to user space!|possible irq lock inversion dependency detected|\S+-safe -> \S+-unsafe lock order detected)",
            Guilty::None,
            |c, _, _| format!("lockdep: {}", normalise(cap(c, "what"))),
        ),
        p(
            "hung-task",
            r"^INFO: task (?P<what>.+):\d+ blocked for more than \d+ seconds",
            Guilty::None,
            |c, _, _| format!("hung task: {}", normalise(cap(c, "what"))),
        ),
        p(
            "soft-lockup",
            r"^(?:watchdog: )?BUG: soft lockup - CPU#\d+ stuck for \d+s! \[(?P<what>.+):\d+\]",
            Guilty::Rip,
            |c, f, _| {
                format!(
                    "soft lockup in {}",
                    f.map_or_else(|| normalise(cap(c, "what")), str::to_string)
                )
            },
        ),
        p(
            "hard-lockup",
            r"^(?:watchdog: )?Watchdog detected hard LOCKUP on cpu \d+",
            Guilty::Rip,
            |_, f, _| in_func("hard lockup".into(), f),
        ),
        p(
            "rcu-stall",
            r"^(?:rcu: )?INFO: rcu_(?:sched|preempt|bh) (?P<what>detected stalls|detected expedited stalls|self-detected stall)",
            Guilty::None,
            |c, _, _| format!("RCU stall: {}", cap(c, "what")),
        ),
        p(
            "bug",
            r"^kernel BUG at (?P<file>[^:\s]+)(?::\d+)?!",
            Guilty::Rip,
            |c, f, _| match f {
                Some(f) => format!("kernel BUG in {f}"),
                None => format!("kernel BUG at {}", cap(c, "file")),
            },
        ),
        p(
            "bug",
            r"^BUG: (?P<what>.+?)(?:: |,| - | at | for address| on CPU| in process| \[|!|\s+\S+:\S|\s*$)",
            Guilty::RipOrStack,
            |c, f, _| in_func(format!("BUG: {}", normalise(cap(c, "what"))), f),
        ),
        p(
            "warning",
            r"^WARNING: CPU: \d+ PID: \d+ at (?P<file>\S+)(?: (?P<func>[A-Za-z_][\w.]*\+0x\S+))?",
            Guilty::RipOrStack,
            |c, f, _| {
                let named = c.name("func").and_then(|m| func_name(m.as_str()));
                in_func_or_file("WARNING".into(), named.as_deref().or(f), cap(c, "file"))
            },
        ),
        // x86 die(): `Oops: <what>: <error code> [#<n>]` since 6.9, `<what>: ...` before.
        p(
            "oops",
            r"^(?:Oops: )?(?P<what>[^\[]*?):? ?[0-9a-f]{4} \[#(?P<n>\d+)\]",
            Guilty::Rip,
            |c, f, _| {
                let what = cap(c, "what");
                let what = what.split(',').next().unwrap_or_default().trim();
                match what {
                    "" | "Oops" => in_func("Oops".into(), f),
                    w => in_func(format!("Oops: {}", normalise(w)), f),
                }
            },
        ),
        p(
            "panic",
            r"^Kernel panic - not syncing: (?P<what>.+)",
            Guilty::None,
            |c, _, _| format!("panic: {}", normalise(cap(c, "what"))),
        ),
    ]
});

/// Panics that are the consequence of an earlier splat of these kinds (`*`: any kind), so
/// not reported on their own: `panic_on_oops`, `panic_on_warn`, `hung_task_panic`...
static FOLLOW_ONS: LazyLock<Vec<(Regex, &'static [&'static str])>> = LazyLock::new(|| {
    const DIED: &[&str] = &["oops", "gpf", "bug", "kasan", "kfence"];
    [
        (r"^Fatal exception", DIED),
        (r"^Attempted to kill (?:init|the idle task)!", DIED),
        (r"^Aiee, killing interrupt handler!", DIED),
        (r"panic_on_warn set", &["*"][..]),
        (r"^hung_task: blocked tasks", &["hung-task"][..]),
        (r"^softlockup: hung tasks", &["soft-lockup"][..]),
        (r"^Hard LOCKUP", &["hard-lockup"][..]),
        (r"^RCU Stall", &["rcu-stall"][..]),
    ]
    .into_iter()
    .map(|(re, kinds)| (Regex::new(re).expect("valid"), kinds))
    .collect()
});

/// Kinds after which the kernel has died (`die()` ran): a later `Oops ... [#2]` is fallout.
const DIED_KINDS: &[&str] = &["oops", "gpf", "bug"];

/// Call-trace frames that are the reporting machinery, locking or scheduling primitives,
/// or syscall entry, never the guilty function (in the spirit of syzkaller's skip list).
static SKIP_FRAMES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"^(?:dump_stack\w*|show_stack|__dump_stack|show_regs|panic|__warn\w*|warn_\w*|",
        r"report_bug|handle_bug|do_error_trap|do_trap|exc_\w+|asm_exc_\w+|asm_sysvec_\w+|",
        r"kasan_\w+|__kasan_\w+|kfence_\w+|__kfence_\w+|ubsan_\w+|__ubsan_\w+|print_report|",
        r"print_address_description\w*|__might_\w+|___might_sleep|might_\w+|__schedule_bug|",
        r"__schedule|schedule\w*|preempt_schedule\w*|io_schedule\w*|lock_acquire\w*|",
        r"__lock_acquire|lockdep_\w+|lock_is_held\w*|_raw_\w+|do_raw_\w+|__mutex_lock\w*|",
        r"mutex_lock\w*|down_\w+|__down\w*|up_\w+|rwsem_\w+|percpu_\w+|__percpu_\w+|",
        r"wait_for_\w+|__wait_\w+|bit_wait\w*|out_of_line_wait_on_bit\w*|kmalloc\w*|",
        r"__kmalloc\w*|kfree|kmem_cache_\w+|slab_\w+|__slab_\w+|",
        r"entry_SYSCALL\w*|do_syscall_64|__pfx_\w+|ret_from_fork\w*|kthread)$"
    ))
    .expect("valid")
});

static RIP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^RIP: [0-9a-f]{4}:(?P<func>[A-Za-z_][\w.]*\+0x[0-9a-f]+)").expect("valid")
});
static FRAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?P<func>[A-Za-z_][\w.]*)\+0x[0-9a-f]+/0x[0-9a-f]+").expect("valid")
});
/// Compiler suffixes that differ between builds of the same function.
static CLONE_SUFFIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:\.(?:isra|constprop|part|cold|lto_priv|llvm)(?:\.\d+)?)+$").expect("valid")
});
static VOLATILE: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    vec![
        (Regex::new(r"0x[0-9a-fA-F]+").unwrap(), "ADDR"),
        (Regex::new(r"\b[0-9a-fA-F]{8,}\b").unwrap(), "ADDR"),
        (Regex::new(r"\b\d+\b").unwrap(), "NUM"),
    ]
});

fn normalise(text: &str) -> String {
    let mut t = text.trim().to_string();
    for (re, with) in VOLATILE.iter() {
        t = re.replace_all(&t, *with).into_owned();
    }
    t
}

/// `md_bitmap_startwrite+0x1a/0x30 [md_mod]` -> `md_bitmap_startwrite`.
fn func_name(symbol: &str) -> Option<String> {
    let name = symbol.split('+').next()?;
    let name = CLONE_SUFFIX.replace(name, "");
    (!name.is_empty() && !name.starts_with("0x")).then(|| name.into_owned())
}

fn rip_func(region: &[&str]) -> Option<String> {
    region
        .iter()
        .find_map(|l| RIP.captures(body(l)))
        .and_then(|c| func_name(&c["func"]))
}

/// The first frame after `Call Trace:` that is not in [`SKIP_FRAMES`] (`?` frames are
/// stale stack words, never guilty).
fn stack_func(region: &[&str]) -> Option<String> {
    stack_func_past(region, None)
}

/// [`stack_func`], also passing over the frames `more` matches.
fn stack_func_past(region: &[&str], more: Option<&Regex>) -> Option<String> {
    let from = region
        .iter()
        .position(|l| body(l).starts_with("Call Trace:"))?;
    region[from + 1..]
        .iter()
        .filter_map(|l| FRAME.captures(body(l).trim_start()))
        .filter_map(|c| func_name(&c["func"]))
        .find(|f| !SKIP_FRAMES.is_match(f) && !more.is_some_and(|m| m.is_match(f)))
}

/// The text of a console line after its `[   12.345678] ` timestamp (and the
/// `[    T123] ` caller id of `CONFIG_PRINTK_CALLER`).
fn body(line: &str) -> &str {
    let l = line.trim_start();
    if l.starts_with('[') {
        if let Some(end) = l.find("] ") {
            return &l[end + 2..];
        }
    }
    l
}

fn start_at(text: &str) -> Option<(&'static Pattern, Captures<'_>)> {
    PATTERNS
        .iter()
        .find_map(|p| p.start.captures(text).map(|c| (p, c)))
}

/// Whether the panic `message` is the consequence of a splat of `kind`.
fn panic_follows(message: &str, kind: &str) -> bool {
    FOLLOW_ONS
        .iter()
        .any(|(re, kinds)| re.is_match(message) && kinds.iter().any(|k| *k == "*" || *k == kind))
}

/// Whether a splat that starts inside the report of a `kind` splat belongs to it: the
/// `Oops:` header die() prints under a BUG before any call trace, or a panic it causes.
fn part_of(kind: &str, traced: bool, inner: &Pattern, caps: &Captures) -> bool {
    match inner.kind {
        "oops" => DIED_KINDS.contains(&kind) && !traced,
        "panic" => panic_follows(cap(caps, "what"), kind),
        _ => false,
    }
}

/// The index one past the last line of the splat that starts at `lines[i]`.
fn report_end(lines: &[&str], i: usize, kind: &str) -> usize {
    let limit = lines.len().min(i + EXCERPT_LINES);
    let mut traced = false;
    for (j, line) in lines.iter().enumerate().take(limit).skip(i + 1) {
        let text = body(line);
        traced |= text.starts_with("Call Trace:");
        if text.starts_with("---[ end")
            || (matches!(kind, "kasan" | "kfence" | "ubsan") && text.starts_with("=========="))
        {
            return j + 1;
        }
        if text.starts_with("sysrq: ") {
            return j;
        }
        if let Some((inner, caps)) = start_at(text) {
            if !part_of(kind, traced, inner, &caps) {
                return j;
            }
        }
    }
    limit
}

/// Every splat in `log`, in order of first appearance.
pub fn scan(log: &str) -> Vec<Splat> {
    let lines: Vec<&str> = log.lines().collect();
    let mut found: Vec<Splat> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some((pattern, caps)) = start_at(body(lines[i])) else {
            i += 1;
            continue;
        };
        let end = report_end(&lines, i, pattern.kind);
        let region = &lines[i..end];
        let func = match pattern.guilty {
            Guilty::None => None,
            Guilty::Rip => rip_func(region),
            Guilty::Stack => stack_func(region),
            Guilty::RipOrStack => rip_func(region).or_else(|| stack_func(region)),
        };
        let title = (pattern.title)(&caps, func.as_deref(), region);
        // A general protection fault is an Oops of its own kind, as syzkaller names it.
        let (kind, title) = match title.strip_prefix("Oops: general protection fault") {
            Some(rest) if pattern.kind == "oops" => {
                ("gpf", format!("general protection fault{rest}"))
            }
            _ => (pattern.kind, title),
        };
        let cause = match kind {
            "oops" | "gpf" => {
                let n: usize = cap(&caps, "n").parse().unwrap_or(1);
                (n > 1)
                    .then(|| {
                        found
                            .iter()
                            .rposition(|s| DIED_KINDS.contains(&s.kind.as_ref()))
                    })
                    .flatten()
            }
            "panic" => found
                .iter()
                .rposition(|s| panic_follows(cap(&caps, "what"), &s.kind)),
            _ => None,
        }
        .or_else(|| {
            found
                .iter()
                .position(|s| s.kind == kind && s.title == title)
        });
        match cause {
            Some(k) => found[k].folded.push(i + 1),
            None => found.push(Splat {
                kind: kind.into(),
                title,
                log: String::new(),
                expected: false,
                line: i + 1,
                excerpt: region.join("\n"),
                folded: Vec::new(),
            }),
        }
        i = end;
    }
    found
}

/// One failure a fault injector forced (`FAULT_INJECTION: forcing a failure.` with
/// `verbose=2`): which injector, in which task, and the function that asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InjectedFault {
    /// `failslab`, `fail_page_alloc`, `fail_make_request`.
    pub injector: String,
    /// The `Comm:` of the task that met the failure.
    pub task: String,
    /// The first frame outside the injector and the allocators: the caller that got NULL
    /// or EIO (`md_bitmap_checkpage`).
    pub site: Option<String>,
}

/// The injector's own frames and the allocators between it and the caller.
static FAULT_FRAMES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"^(?:_*should_fail\w*|prepare_alloc_pages|_*alloc_pages\w*|_*alloc_frozen_pages\w*|",
        r"alloc_slab_page|allocate_slab|new_slab|_*slab_alloc\w*|mempool_alloc\w*|",
        r"folio_alloc\w*|_*get_free_pages\w*|get_zeroed_page\w*|alloc_page_buffers|",
        r"submit_bio_noacct\w*|_*submit_bio\w*)$"
    ))
    .expect("valid")
});

static FAULT_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^name (?P<name>\w+), interval").expect("valid"));
static COMM: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r" Comm: (?P<comm>\S+)").expect("valid"));

/// Every injected failure in a console log, in order.
pub fn injected_faults(log: &str) -> Vec<InjectedFault> {
    let lines: Vec<&str> = log.lines().collect();
    let starts: Vec<usize> = (0..lines.len())
        .filter(|&i| body(lines[i]).starts_with("FAULT_INJECTION: forcing a failure"))
        .collect();
    starts
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            // The report runs to the end of its stack, the next report, or 80 lines.
            let next = starts.get(k + 1).copied().unwrap_or(lines.len());
            let end = (i + 1..next)
                .find(|&j| body(lines[j]).trim() == "</TASK>")
                .map_or(next, |j| j + 1)
                .min(i + 80);
            let region = &lines[i..end];
            let injector = region
                .iter()
                .find_map(|l| FAULT_NAME.captures(body(l)))
                .map_or_else(|| "unknown".into(), |c| c["name"].to_string());
            let task = region
                .iter()
                .find_map(|l| COMM.captures(l))
                .map_or_else(|| "unknown".into(), |c| c["comm"].to_string());
            let site = stack_func_past(region, Some(&FAULT_FRAMES));
            InjectedFault {
                injector,
                task,
                site,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injected_faults_name_the_injector_the_task_and_the_caller() {
        // Real console text: failslab failing md's counter pages in the writers' context.
        let log = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("testdata/splat/failslab-md-bitmap-checkpage.log"),
        )
        .unwrap();
        let f = injected_faults(&log);
        assert_eq!(f.len(), 7);
        for one in &f {
            assert_eq!(
                (
                    one.injector.as_str(),
                    one.task.as_str(),
                    one.site.as_deref()
                ),
                ("failslab", "agent", Some("md_bitmap_checkpage"))
            );
        }
        assert!(scan(&log).is_empty(), "a forced failure is not a splat");
        // Real console text: fail_make_request failing md's superblock write on a member.
        let log = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("testdata/splat/fail-make-request-md-update-sb.log"),
        )
        .unwrap();
        assert_eq!(
            injected_faults(&log),
            [InjectedFault {
                injector: "fail_make_request".into(),
                task: "md0_raid1".into(),
                site: Some("md_update_sb".into()),
            }]
        );
        assert!(scan(&log).is_empty(), "a forced failure is not a splat");
        assert!(injected_faults("[ 9.3] md0: resync done\n").is_empty());
    }

    #[test]
    fn titles_are_normalised_and_excerpts_end_at_the_end_marker() {
        let log = "[    1.0] ok\n[    2.5] WARNING: CPU: 1 PID: 77 at drivers/md/md-bitmap.c:1234 md_bitmap_startwrite+0x1a/0x30 [md_mod]\n[    2.5] RIP: 0010:md_bitmap_startwrite+0x1a/0x30 [md_mod]\n[    2.6] ---[ end trace 0000000000000000 ]---\n[    2.7] after\n";
        let s = scan(log);
        assert_eq!(s.len(), 1);
        assert_eq!(
            (s[0].kind.as_ref(), s[0].title.as_str(), s[0].line),
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
            (s[0].kind.as_ref(), s[0].title.as_str()),
            ("panic", "panic: sysrq triggered crash")
        );
        assert!(scan("[ 1.0] md/raid1:md0: active with 2 out of 2 mirrors\n").is_empty());
    }

    #[test]
    fn a_pattern_counts_only_at_the_start_of_the_kernel_text() {
        // The end marker of a panic repeats its message; a log line may quote one.
        let log = "[ 1.0] ---[ end Kernel panic - not syncing: sysrq triggered crash ]---\n\
                   [ 1.1] PCI: Using host bridge windows from ACPI; if necessary, use \"pci=nocrs\" and report a bug\n\
                   [ 1.2] test: saw BUG: nothing\n";
        assert_eq!(scan(log), vec![]);
    }

    #[test]
    fn function_names_lose_offsets_and_compiler_suffixes() {
        assert_eq!(
            func_name("arch_exit_to_user_mode_prepare.constprop.0+0x16/0xa0").as_deref(),
            Some("arch_exit_to_user_mode_prepare")
        );
        assert_eq!(func_name("foo.isra.0.cold+0x1/0x2").as_deref(), Some("foo"));
        assert_eq!(func_name("0x47b5e1"), None);
    }

    #[test]
    fn a_repeated_report_is_folded_into_the_first() {
        let log = "[ 4.0] INFO: task sh:161 blocked for more than 2 seconds.\n\
                   [ 4.1] task:sh state:D\n\
                   [ 6.0] INFO: task sh:161 blocked for more than 4 seconds.\n\
                   [ 6.1] INFO: task kworker/u8:2:33 blocked for more than 4 seconds.\n";
        let s = scan(log);
        assert_eq!(s.len(), 2, "{s:?}");
        assert_eq!(
            (s[0].title.as_str(), &s[0].folded[..]),
            ("hung task: sh", &[3][..])
        );
        assert_eq!(s[0].excerpt.lines().count(), 2);
        assert_eq!(s[1].title, "hung task: kworker/u8:NUM");
    }

    /// The shapes of other reports (the golden files hold the real ones this machine makes).
    #[test]
    fn each_kind_is_named_by_its_guilty_function() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            (
                "------------[ cut here ]------------\n\
                 kernel BUG at drivers/md/md-bitmap.c:1434!\n\
                 Oops: invalid opcode: 0000 [#1] PREEMPT SMP NOPTI\n\
                 RIP: 0010:md_bitmap_startwrite.part.0+0x1a/0x30 [md_mod]\n\
                 ---[ end trace 0000000000000000 ]---\n\
                 Kernel panic - not syncing: Fatal exception\n",
                &[("bug", "kernel BUG in md_bitmap_startwrite")],
            ),
            (
                "BUG: kernel NULL pointer dereference, address: 0000000000000008\n\
                 #PF: supervisor read access in kernel mode\n\
                 Oops: Oops: 0000 [#1] PREEMPT SMP NOPTI\n\
                 RIP: 0010:raid1_end_write_request+0x2c/0x300 [raid1]\n",
                &[("bug", "BUG: kernel NULL pointer dereference in raid1_end_write_request")],
            ),
            (
                "Oops: general protection fault, probably for non-canonical address 0xdffffc0000000000: 0000 [#1] PREEMPT SMP NOPTI\n\
                 RIP: 0010:md_bitmap_daemon_work+0x4c/0x3a0 [md_mod]\n",
                &[("gpf", "general protection fault in md_bitmap_daemon_work")],
            ),
            (
                "==================================================================\n\
                 BUG: KASAN: slab-use-after-free in md_bitmap_daemon_work+0x4c/0x3a0 [md_mod]\n\
                 Read of size 8 at addr ffff888012345678 by task md0_raid1/123\n\
                 ==================================================================\n\
                 Kernel panic - not syncing: KASAN: panic_on_warn set ...\n",
                &[("kasan", "KASAN: slab-use-after-free Read in md_bitmap_daemon_work")],
            ),
            (
                "BUG: sleeping function called from invalid context at kernel/locking/mutex.c:283\n\
                 in_atomic(): 1, irqs_disabled(): 0, non_block: 0, pid: 1, name: sh\n\
                 Call Trace:\n <TASK>\n dump_stack_lvl+0x64/0x80\n __might_resched+0x155/0x180\n\
                 \x20mutex_lock+0x1a/0x40\n md_bitmap_flush+0x20/0x50 [md_mod]\n",
                &[("bug", "BUG: sleeping function called from invalid context in md_bitmap_flush")],
            ),
            (
                "UBSAN: array-index-out-of-bounds in drivers/md/raid1.c:1234:5\n\
                 index 5 is out of range for type 'int [4]'\n\
                 Call Trace:\n <TASK>\n dump_stack_lvl+0x64/0x80\n\
                 \x20__ubsan_handle_out_of_bounds+0xd3/0x120\n raid1_read_request+0x99/0x100 [raid1]\n",
                &[("ubsan", "UBSAN: array-index-out-of-bounds in raid1_read_request")],
            ),
            (
                "watchdog: BUG: soft lockup - CPU#1 stuck for 26s! [md0_raid1:123]\n\
                 RIP: 0010:raid1d+0x10/0x50 [raid1]\n",
                &[("soft-lockup", "soft lockup in raid1d")],
            ),
            (
                "WARNING: possible circular locking dependency detected\n\
                 rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:\n\
                 BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 stuck for 31s!\n",
                &[
                    ("lockdep", "lockdep: possible circular locking dependency detected"),
                    ("rcu-stall", "RCU stall: detected stalls"),
                    ("bug", "BUG: workqueue lockup"),
                ],
            ),
            (
                "[   24.9][   T35] WARNING: CPU: 0 PID: 35 at drivers/md/md.c:9000 md_do_sync+0x1/0x2 [md_mod]\n\
                 [   24.9][   T35] Kernel panic - not syncing: kernel: panic_on_warn set ...\n",
                &[("warning", "WARNING in md_do_sync")],
            ),
        ];
        for (log, want) in cases {
            let got: Vec<(String, String)> = scan(log)
                .into_iter()
                .map(|s| (s.kind.to_string(), s.title))
                .collect();
            let want: Vec<(String, String)> = want
                .iter()
                .map(|(k, t)| (k.to_string(), t.to_string()))
                .collect();
            assert_eq!(got, want, "{log}");
        }
    }

    #[test]
    fn an_oops_after_the_trace_of_a_bug_is_its_own_splat() {
        let log = "BUG: sleeping function called from invalid context at mm/slab.h:1\n\
                   Call Trace:\n md_bitmap_flush+0x20/0x50 [md_mod]\n\
                   Oops: general protection fault, probably for non-canonical address 0xdead: 0000 [#1] SMP\n\
                   RIP: 0010:md_bitmap_unplug+0x1/0x2 [md_mod]\n";
        let t: Vec<_> = scan(log)
            .into_iter()
            .map(|s| (s.kind.into_owned(), s.title))
            .collect();
        assert_eq!(
            t,
            [
                (
                    "bug".to_string(),
                    "BUG: sleeping function called from invalid context in md_bitmap_flush"
                        .to_string()
                ),
                (
                    "gpf".to_string(),
                    "general protection fault in md_bitmap_unplug".to_string()
                )
            ]
        );
    }

    #[test]
    fn a_panic_that_is_not_a_consequence_is_its_own_splat() {
        let log = "[ 4.0] INFO: task sh:161 blocked for more than 2 seconds.\n\
                   [ 9.0] Kernel panic - not syncing: sysrq triggered crash\n";
        let t: Vec<_> = scan(log).into_iter().map(|s| s.title).collect();
        assert_eq!(t, ["hung task: sh", "panic: sysrq triggered crash"]);
        let log = "[ 4.0] INFO: task sh:161 blocked for more than 2 seconds.\n\
                   [ 9.0] Kernel panic - not syncing: hung_task: blocked tasks\n";
        let s = scan(log);
        assert_eq!(s.len(), 1, "{s:?}");
    }
}

/// The golden files in `testdata/splat/`: real console text under a header naming the
/// splats [`scan`] must find, in order (as syzkaller's `testdata/linux/report/N`).
///
/// ```text
/// TITLE: Oops: int3 in sched_clock_cpu
/// KIND: oops
///
/// <console text>
/// ```
///
/// `NONE` instead of the pairs: the text holds no splat. `MDBB_UPDATE_GOLDEN=1` rewrites
/// each header from what the scanner finds.
#[cfg(test)]
mod golden {
    use super::*;
    use std::path::{Path, PathBuf};

    /// (title, kind) of each splat a file declares.
    type Want = Vec<(String, String)>;

    /// What a file declares, and its console text.
    fn parse(text: &str) -> Result<(Want, &str), String> {
        let (header, log) = text
            .split_once("\n\n")
            .ok_or("no blank line after the header")?;
        let mut want: Vec<(String, Option<String>)> = Vec::new();
        let mut none = false;
        for (n, line) in header.lines().enumerate() {
            let at = |what: &str| format!("header line {}: {what}: {line:?}", n + 1);
            if let Some(title) = line.strip_prefix("TITLE: ") {
                if want.last().is_some_and(|w| w.1.is_none()) {
                    return Err(at("TITLE without a KIND before it"));
                }
                want.push((title.to_string(), None));
            } else if let Some(kind) = line.strip_prefix("KIND: ") {
                match want.last_mut() {
                    Some((_, k @ None)) => *k = Some(kind.to_string()),
                    _ => return Err(at("KIND without a TITLE before it")),
                }
            } else if line == "NONE" {
                none = true;
            } else {
                return Err(at("unknown header line"));
            }
        }
        let want: Want = want
            .into_iter()
            .map(|(t, k)| {
                k.map(|k| (t.clone(), k))
                    .ok_or(format!("TITLE {t:?} has no KIND"))
            })
            .collect::<Result<_, _>>()?;
        match (none, want.is_empty()) {
            (true, false) => Err("NONE and TITLE in one header".into()),
            (false, true) => Err("an empty header (say NONE)".into()),
            _ => Ok((want, log)),
        }
    }

    fn header(found: &[Splat]) -> String {
        if found.is_empty() {
            return "NONE\n".into();
        }
        found
            .iter()
            .map(|s| format!("TITLE: {}\nKIND: {}\n", s.title, s.kind))
            .collect()
    }

    fn files() -> Vec<PathBuf> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/splat");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        files.sort();
        files
    }

    #[test]
    fn every_golden_file_gives_its_titles_and_kinds_in_order() {
        let update = std::env::var("MDBB_UPDATE_GOLDEN").is_ok_and(|v| v == "1");
        let files = files();
        assert!(files.len() >= 5, "golden files missing: {files:?}");
        let mut failures = Vec::new();
        for path in &files {
            let text = std::fs::read_to_string(path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy();
            let log = match (parse(&text), update) {
                (Ok((_, log)), _) => log,
                (Err(_), true) if text.contains("\n\n") => text.split_once("\n\n").unwrap().1,
                (Err(e), _) => {
                    failures.push(format!("{name}: {e}"));
                    continue;
                }
            };
            let found = scan(log);
            if update {
                std::fs::write(path, format!("{}\n{log}", header(&found))).unwrap();
                continue;
            }
            let want = parse(&text).unwrap().0;
            let got: Vec<(String, String)> = found
                .iter()
                .map(|s| (s.title.clone(), s.kind.to_string()))
                .collect();
            if got != want {
                failures.push(format!(
                    "{name}:\n  want {want:?}\n  got  {got:?}\n  (MDBB_UPDATE_GOLDEN=1 rewrites the headers)"
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn a_header_is_pairs_or_none_and_nothing_else() {
        let ok = parse("TITLE: a\nKIND: b\nTITLE: c\nKIND: d\n\nlog\n").unwrap();
        assert_eq!(ok.0, [("a".into(), "b".into()), ("c".into(), "d".into())]);
        assert_eq!(ok.1, "log\n");
        assert!(parse("NONE\n\nlog").unwrap().0.is_empty());
        for bad in [
            "TITLE: a\nKIND: b\nCORRUPTED: y\n\nlog",
            "TITLE: a\n\nlog",
            "KIND: b\n\nlog",
            "TITLE: a\nTITLE: c\nKIND: d\n\nlog",
            "NONE\nTITLE: a\nKIND: b\n\nlog",
            "\nlog",
            "TITLE: a\nKIND: b\nlog",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
