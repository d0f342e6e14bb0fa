//! `index.html` in the run's directory: one self-contained page (no network) to look at a
//! run. The verdict table; then per case its phases as a timeline, for a crash case the
//! chunk map of the array (one cell per bitmap chunk: clean, dirty, divergent, resynced,
//! and divergent-but-clean in an alarming colour), for a power-loss case with violations
//! the requests around each cause's first violating state (`timeline.rs`), the reason, the
//! replay command and the consoles' tail.

use super::consoles::console_tails;
use crate::result::events::{Event, Reporter};
use crate::result::CaseResult;
use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::fmt::Write;

/// What a chunk was in a crash case, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChunkState {
    /// The members differ and the bit is clear: what a resync from this bitmap misses.
    DivergentClean,
    /// The members differ; the bit is set.
    Divergent,
    /// Clean in the bitmap, written by the resync anyway.
    ResyncedOutside,
    /// Dirty and resynced.
    Resynced,
    Dirty,
    Clean,
}

impl ChunkState {
    pub const ALL: [ChunkState; 6] = [
        ChunkState::DivergentClean,
        ChunkState::Divergent,
        ChunkState::ResyncedOutside,
        ChunkState::Resynced,
        ChunkState::Dirty,
        ChunkState::Clean,
    ];

    pub fn class(self) -> &'static str {
        match self {
            ChunkState::DivergentClean => "divergent-clean",
            ChunkState::Divergent => "divergent",
            ChunkState::ResyncedOutside => "resynced-outside",
            ChunkState::Resynced => "resynced",
            ChunkState::Dirty => "dirty",
            ChunkState::Clean => "clean",
        }
    }

    fn label(self) -> &'static str {
        match self {
            ChunkState::DivergentClean => "divergent, bit clear",
            ChunkState::Divergent => "divergent, dirty",
            ChunkState::ResyncedOutside => "resynced, clean in the bitmap",
            ChunkState::Resynced => "dirty, resynced",
            ChunkState::Dirty => "dirty",
            ChunkState::Clean => "clean",
        }
    }

    /// The colour of its cells (the page's CSS says the same).
    pub fn colour(self) -> &'static str {
        match self {
            ChunkState::DivergentClean => "rgb(230, 0, 0)",
            ChunkState::Divergent => "rgb(255, 153, 0)",
            ChunkState::ResyncedOutside => "rgb(153, 51, 204)",
            ChunkState::Resynced => "rgb(51, 170, 85)",
            ChunkState::Dirty => "rgb(68, 119, 221)",
            ChunkState::Clean => "rgb(221, 221, 221)",
        }
    }
}

/// The chunk map of a crash case, from its checks' figures: `safety` (the chunks, the
/// dirty and the divergent ones, the uncovered ones) and `resync_bounds` (what the resync
/// wrote). `None` for a case without them.
pub fn chunk_map(r: &CaseResult) -> Option<Vec<ChunkState>> {
    let safety = r.checks.iter().find(|c| c.name == "safety")?;
    let set = |v: &serde_json::Value| -> BTreeSet<u64> {
        v.as_array()
            .map(|a| a.iter().filter_map(|c| c.as_u64()).collect())
            .unwrap_or_default()
    };
    let chunks = safety.figures["chunks"].as_u64()?;
    let dirty = set(&safety.figures["dirty"]);
    let divergent = set(&safety.figures["divergent"]);
    let resynced = r
        .checks
        .iter()
        .find(|c| c.name == "resync_bounds")
        .map(|c| set(&c.figures["resynced"]))
        .unwrap_or_default();
    Some(
        (0..chunks)
            .map(|c| {
                match (
                    divergent.contains(&c),
                    dirty.contains(&c),
                    resynced.contains(&c),
                ) {
                    (true, false, _) => ChunkState::DivergentClean,
                    (true, true, _) => ChunkState::Divergent,
                    (false, false, true) => ChunkState::ResyncedOutside,
                    (false, true, true) => ChunkState::Resynced,
                    (false, true, false) => ChunkState::Dirty,
                    (false, false, false) => ChunkState::Clean,
                }
            })
            .collect(),
    )
}

pub(super) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = "body{font:14px sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}
.v-PASS{color:#181}.v-FAIL{color:#c00;font-weight:bold}.v-ERROR{color:#a50;font-weight:bold}
.v-SKIP,.v-XFAIL,.v-XPASS{color:#666}
.map{display:flex;flex-wrap:wrap;gap:1px;max-width:1040px;margin:4px 0}
.map span{width:7px;height:7px;display:inline-block}
.legend span.cell{width:10px;height:10px;display:inline-block;margin:0 3px 0 10px}
.timeline{display:flex;max-width:1040px;height:18px;margin:4px 0}
.timeline span{overflow:hidden;white-space:nowrap;font-size:11px;color:#fff;padding-left:2px;border-right:1px solid #fff}
pre{background:#f4f4f4;padding:6px;max-height:24em;overflow:auto;font-size:12px}
.rq-timeline{margin:8px 0}.rq-timeline figcaption{max-width:1040px;font-size:13px;margin-bottom:4px}
.rq-timeline-missing{color:#666}
.reason{white-space:pre-wrap}";

/// The page for a run's `results`, each with its consoles' tail and its violations'
/// timelines (HTML, from [`super::timeline::timelines`]).
pub fn render(
    title: &str,
    results: &[CaseResult],
    consoles: &[String],
    timelines: &[String],
) -> String {
    let mut css = String::from(STYLE);
    for s in ChunkState::ALL {
        let _ = write!(css, "\n.{}{{background:{}}}", s.class(), s.colour());
    }
    let mut h = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title><style>{css}</style></head><body>\n<h1>{}</h1>\n",
        esc(title),
        esc(title)
    );
    // A run of several kernels says which kernel each row ran on.
    let several = results.iter().any(|r| r.kernel != results[0].kernel);
    let kernel_cell = |r: &CaseResult| {
        if several {
            format!("<td>{}</td>", esc(&crate::run::kernel_dir_name(&r.kernel)))
        } else {
            String::new()
        }
    };
    let _ = writeln!(
        h,
        "<table id=\"verdicts\"><tr>{}<th>case</th><th>verdict</th><th>checks</th><th>time</th><th>why</th></tr>",
        if several { "<th>kernel</th>" } else { "" }
    );
    for (i, r) in results.iter().enumerate() {
        let ok = r.checks.iter().filter(|c| c.ok).count();
        let why = r.why();
        let _ = writeln!(
            h,
            "<tr>{}<td><a href=\"#case-{i}\">{}</a></td><td class=\"v-{v}\">{v}</td><td>{ok}/{}</td><td>{:.1} s</td><td>{}</td></tr>",
            kernel_cell(r),
            esc(&r.case),
            r.checks.len(),
            r.times.total_ms as f64 / 1000.0,
            esc(why),
            v = r.verdict.label(),
        );
    }
    h.push_str("</table>\n");
    for (i, r) in results.iter().enumerate() {
        let _ = writeln!(
            h,
            "<section class=\"case\" id=\"case-{i}\" data-case=\"{}\"><h2>{}{} <span class=\"v-{v}\">{v}</span></h2>",
            esc(&r.case),
            esc(&r.case),
            if several {
                format!(" on {}", esc(&crate::run::kernel_dir_name(&r.kernel)))
            } else {
                String::new()
            },
            v = r.verdict.label()
        );
        timeline(&mut h, r);
        if let Some(map) = chunk_map(r) {
            h.push_str("<div class=\"legend\">");
            for s in ChunkState::ALL {
                let n = map.iter().filter(|&&m| m == s).count();
                let _ = write!(
                    h,
                    "<span class=\"cell {}\"></span>{} ({n})",
                    s.class(),
                    s.label()
                );
            }
            h.push_str("</div>\n<div class=\"map\">");
            for (c, s) in map.iter().enumerate() {
                let _ = write!(
                    h,
                    "<span class=\"{}\" title=\"chunk {c}\"></span>",
                    s.class()
                );
            }
            h.push_str("</div>\n");
        }
        if let Some(t) = timelines.get(i) {
            h.push_str(t);
        }
        if let Some(reason) = &r.reason {
            let _ = writeln!(h, "<pre class=\"reason\">{}</pre>", esc(reason));
        }
        let _ = writeln!(h, "<p>replay: <code>{}</code></p>", esc(&r.replay));
        if let Some(c) = consoles.get(i).filter(|c| !c.is_empty()) {
            let _ = writeln!(
                h,
                "<details><summary>consoles (last lines)</summary><pre>{}</pre></details>",
                esc(c)
            );
        }
        h.push_str("</section>\n");
    }
    h.push_str("</body></html>\n");
    h
}

/// The phases as one bar, each as wide as it took.
fn timeline(h: &mut String, r: &CaseResult) {
    let total: u64 = r.phases.iter().map(|p| p.ms).sum();
    if total == 0 {
        return;
    }
    h.push_str("<div class=\"timeline\">");
    for (k, p) in r.phases.iter().enumerate() {
        let hue = (k * 47) % 360;
        let _ = write!(
            h,
            "<span style=\"flex:{} 0 0;background:hsl({hue},45%,45%)\" title=\"{}: {:.1} s\">{}</span>",
            p.ms.max(1),
            esc(&p.name),
            p.ms as f64 / 1000.0,
            esc(&p.name)
        );
    }
    h.push_str("</div>\n");
}

/// Writes `index.html` into the run's directory when the run ends.
#[derive(Default)]
pub struct HtmlFile;

impl Reporter for HtmlFile {
    fn report(&mut self, event: &Event) -> Result<()> {
        if let Event::RunEnded { run_dir, results } = event {
            let title = format!(
                "md-bitmap-bench: {}",
                run_dir.file_name().unwrap_or_default().to_string_lossy()
            );
            let page = render(
                &title,
                results,
                &console_tails(run_dir, results),
                &super::timeline::timelines(run_dir, results),
            );
            let path = run_dir.join("index.html");
            std::fs::write(&path, page).with_context(|| format!("write {}", path.display()))?;
        }
        Ok(())
    }
}

/// The page in a real browser: Debian's `chromium`, headless, computes every cell's colour.
#[cfg(test)]
pub(super) mod chromium {
    use super::*;
    use crate::check::Check;
    use crate::result::tests::result;
    use crate::result::{Phase, Verdict};
    use serde_json::json;

    /// What `probe`, a script run at the end of `page`, left in a `<pre id="probe">`
    /// once Debian's `chromium` laid the page out.
    pub(crate) fn drawn_by_chromium(page: &str, probe: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let html = dir.path().join("index.html");
        std::fs::write(&html, page.replace("</body>", &format!("{probe}</body>"))).unwrap();
        let out = std::process::Command::new("chromium")
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
            .arg(format!(
                "--user-data-dir={}",
                dir.path().join("profile").display()
            ))
            .arg(format!("file://{}", html.display()))
            .output()
            .expect("chromium (apt-get install chromium; CI installs it)");
        let dom = String::from_utf8_lossy(&out.stdout);
        dom.split("<pre id=\"probe\">")
            .nth(1)
            .and_then(|t| t.split("</pre>").next())
            .unwrap_or_else(|| panic!("no probe in what chromium drew:\n{dom}"))
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
    }

    fn crash_case() -> CaseResult {
        let mut r = result("raid1-file-bitmap-crash", Verdict::Fail, 1);
        r.checks = vec![
            Check {
                name: "safety".into(),
                ok: false,
                summary: "1 divergent chunk has a clear bit: 20".into(),
                figures: json!({ "chunks": 64, "dirty": [3, 4, 5, 6, 7, 8, 9],
                    "divergent": [4, 5, 20], "uncovered_chunks": [20] }),
            },
            Check {
                name: "resync_bounds".into(),
                ok: true,
                summary: String::new(),
                figures: json!({ "resynced": [3, 4, 5, 6, 7, 8, 9, 30] }),
            },
        ];
        r.phases = vec![
            Phase {
                name: "boot 1".into(),
                ms: 900,
            },
            Phase {
                name: "workload".into(),
                ms: 3000,
            },
        ];
        r.reason = Some("safety: 1 divergent chunk has a clear bit: 20 <b>".into());
        r
    }

    #[test]
    fn the_chunk_map_has_a_cell_per_chunk_in_the_colours_of_the_figures() {
        let results = [crash_case(), result("smoke", Verdict::Pass, 2)];
        let map = chunk_map(&results[0]).unwrap();
        let count = |s| map.iter().filter(|&&m| m == s).count();
        let want = [
            (ChunkState::DivergentClean, 1),
            (ChunkState::Divergent, 2),
            (ChunkState::ResyncedOutside, 1),
            (ChunkState::Resynced, 5),
            (ChunkState::Dirty, 0),
            (ChunkState::Clean, 55),
        ];
        for (s, n) in want {
            assert_eq!(count(s), n, "{s:?}");
        }
        assert!(chunk_map(&results[1]).is_none());

        // The page, with a probe that reports what the browser drew.
        let page = render(
            "run",
            &results,
            &["==> console-boot1.log <==\nok\n".into()],
            &[],
        );
        assert!(page.contains("20 &lt;b&gt;"), "the reason is escaped");
        let probe = "<script>const out = {};\
            for (const s of document.querySelectorAll('section.case')) {\
              const c = {};\
              for (const cell of s.querySelectorAll('.map span')) {\
                const k = getComputedStyle(cell).backgroundColor; c[k] = (c[k] || 0) + 1; }\
              out[s.dataset.case] = c; }\
            const p = document.createElement('pre'); p.id = 'probe';\
            p.textContent = JSON.stringify(out); document.body.appendChild(p);</script>";
        let probe = drawn_by_chromium(&page, probe);
        let drawn: serde_json::Value = serde_json::from_str(&probe).unwrap();
        let cells = &drawn["raid1-file-bitmap-crash"];
        let total: u64 = cells
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(total, 64, "one cell per chunk: {drawn}");
        for (s, n) in want.iter().filter(|(_, n)| *n > 0) {
            assert_eq!(
                cells[s.colour()],
                *n as u64,
                "{s:?} in {}: {drawn}",
                s.colour()
            );
        }
        assert_eq!(drawn["smoke"], json!({}), "no map for a case without one");
    }
}
