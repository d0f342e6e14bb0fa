//! A power-loss violation drawn as a timeline in `index.html`, one per cause the case
//! showed (its first state, `first_by_cause` in `power-loss.json`): a row per disk, each
//! request a bar from its issue to its completion as the guest's trace saw them, flushes
//! as marks, the power cut as a vertical line, and what the state made of each write
//! (survived, kept or lost of the undecided ones, or never issued). The uncovered chunk's
//! data write and the bitmap write of its bit are outlined and named, so the race the
//! cause describes can be read off the page.
//!
//! An inline SVG, no script: the page stays one file with no network. Fates are told
//! apart by fill pattern and border as well as colour, and named in each bar wide enough.
//!
//! The requests come from the violation's `around` (saved by the power-loss stage since
//! it was added); for a `power-loss.json` from before, from the case's recording: its
//! logs and trace when the logs were kept, else its trace alone.

use super::html::esc;
use crate::powercut::around::{Around, Timed, REACH_US};
use crate::powercut::explore::{Cause, Explanation, Seen, Violation};
use crate::powercut::files::RecordingFiles;
use crate::result::CaseResult;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::Path;

/// The SVG's width, as wide as the page's other figures.
pub const WIDTH: f64 = 1040.0;
/// Where the plot starts (row labels left of it) and ends.
pub const PLOT_X0: f64 = 170.0;
pub const PLOT_X1: f64 = WIDTH - 20.0;
/// A bar narrower than this would vanish.
pub const MIN_BAR: f64 = 2.0;
/// Room a window keeps beside what it must show, at least.
const MIN_PAD_US: u64 = 300;
const TOP: f64 = 30.0;
const LANE_H: f64 = 15.0;
const BAR_H: f64 = 11.0;
const NOTE_H: f64 = 13.0;
const ROW_PAD: f64 = 6.0;
const MIN_ROW_H: f64 = 32.0;
const GAP: f64 = 3.0;
/// A flush mark's diamond, half its width.
const DIAMOND: f64 = 4.0;

/// What a request is in the violating state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// A write on the medium in every state of the cut.
    Survived,
    /// An undecided write this state keeps.
    Kept,
    /// An undecided write this state loses.
    Lost,
    /// A flush the state issued.
    Issued,
    /// Issued after the cut: it never happened in this state.
    Unissued,
}

impl Fate {
    /// Its classes in the SVG; a kept write survived too.
    pub fn class(self) -> &'static str {
        match self {
            Fate::Survived => "survived durable",
            Fate::Kept => "survived kept",
            Fate::Lost => "lost",
            Fate::Issued => "issued",
            Fate::Unissued => "unissued",
        }
    }

    /// What a bar wide enough says of itself.
    fn word(self) -> &'static str {
        match self {
            Fate::Survived => "",
            Fate::Kept => "kept",
            Fate::Lost => "lost",
            Fate::Issued => "",
            Fate::Unissued => "not issued",
        }
    }

    /// `fill`, `stroke`, `stroke-dasharray` and the label's colour of a bar.
    fn style(self, id: &str) -> (String, &'static str, &'static str, &'static str) {
        match self {
            Fate::Survived | Fate::Issued => ("#2e7d32".into(), "#1b5e20", "none", "#fff"),
            Fate::Kept => (format!("url(#{id}-kept)"), "#1b5e20", "none", "#000"),
            Fate::Lost => (format!("url(#{id}-lost)"), "#c62828", "4 2", "#000"),
            Fate::Unissued => ("#f2f2f2".into(), "#777", "1 2", "#555"),
        }
    }

    /// The fate of `t` in `v`'s state: the violation's lists say what it did with the
    /// undecided writes; every other write issued before the cut is on the medium.
    pub fn of(t: &Timed, v: &Violation) -> Fate {
        let listed = |m: &BTreeMap<String, Vec<String>>| {
            m.get(&t.disk).is_some_and(|l| l.contains(&t.request))
        };
        if t.flush {
            if t.issued_before_cut {
                Fate::Issued
            } else {
                Fate::Unissued
            }
        } else if listed(&v.lost) {
            Fate::Lost
        } else if listed(&v.survived) {
            Fate::Kept
        } else if t.issued_before_cut {
            Fate::Survived
        } else {
            Fate::Unissued
        }
    }
}

/// Which of the uncovered chunk's two writes a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Picked {
    Data,
    Bitmap,
}

impl Picked {
    pub fn class(self) -> &'static str {
        match self {
            Picked::Data => "picked-data",
            Picked::Bitmap => "picked-bitmap",
        }
    }
}

/// A disk's row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub disk: String,
    /// What it is to the array: `member 0`, `bitmap file`.
    pub role: String,
    pub y: f64,
    pub height: f64,
    pub lanes: usize,
    /// Lines of labels for the picked writes above its bars.
    pub notes: usize,
}

/// A request drawn: a bar (a write) or a mark (a flush).
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub request: String,
    pub row: usize,
    pub lane: usize,
    pub flush: bool,
    pub fate: Fate,
    pub picked: Option<Picked>,
    pub fua: bool,
    pub flush_sequence: bool,
    /// The drawn span, clipped to the plot.
    pub x0: f64,
    pub x1: f64,
    pub y: f64,
    pub clipped_left: bool,
    pub clipped_right: bool,
    pub issued_us: u64,
    pub completed_us: Option<u64>,
}

/// A label naming a picked write, above its row's bars or at the window's edge when the
/// write lies outside it.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub picked: Picked,
    pub row: usize,
    pub x: f64,
    pub y: f64,
    pub text: String,
    /// `start` or `end` (at the right edge).
    pub anchor: &'static str,
    pub outside: bool,
}

/// A whole timeline, in SVG pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// Prefix of the SVG's ids: unique on the page.
    pub id: String,
    pub cause: Cause,
    /// The window, trace microseconds.
    pub from_us: u64,
    pub to_us: u64,
    pub cut_us: u64,
    pub cut_x: f64,
    /// The times of the events either side of the cut.
    pub cut_after_us: Option<u64>,
    pub cut_before_us: Option<u64>,
    /// The last event before the cut, as people read it.
    pub after: String,
    pub rows: Vec<Row>,
    pub items: Vec<Item>,
    pub notes: Vec<Note>,
    /// Ticks of the axis: `(x, label)`.
    pub ticks: Vec<(f64, String)>,
    pub rows_bottom: f64,
    pub height: f64,
    /// Undecided writes outside the window, not drawn: kept, lost.
    pub outside: (usize, usize),
    /// The explanation whose writes are picked out.
    pub explanation: Option<Explanation>,
}

impl Layout {
    pub fn x(&self, us: u64) -> f64 {
        scale(self.from_us, self.to_us, us)
    }
}

fn scale(from: u64, to: u64, us: u64) -> f64 {
    let span = to.saturating_sub(from).max(1) as f64;
    let at = us.clamp(from, to) - from;
    PLOT_X0 + (PLOT_X1 - PLOT_X0) * at as f64 / span
}

/// The explanation a cause's timeline picks out: the first uncovered chunk of that cause.
pub fn explanation(v: &Violation, cause: Cause) -> Option<&Explanation> {
    v.explained
        .iter()
        .find(|e| e.cause == cause)
        .or(v.explained.first())
}

/// The window: the cut, and the picked writes' issues and completions within
/// [`REACH_US`] of it (a write farther off is named at the window's edge instead), with a
/// margin, within what `around` holds.
pub fn window(around: &Around, picked: &[&Seen]) -> (u64, u64) {
    let cut = around.cut_us();
    let mut lo = cut;
    let mut hi = cut;
    for s in picked {
        for t in [Some(s.issued_us), s.completed_us].into_iter().flatten() {
            if t.abs_diff(cut) <= REACH_US {
                lo = lo.min(t);
                hi = hi.max(t);
            }
        }
    }
    let pad = ((hi - lo) / 8).max(MIN_PAD_US);
    let from = lo.saturating_sub(pad).max(around.from_us.min(cut));
    let to = (hi + pad).min(around.to_us.max(cut + 1));
    (from, to.max(from + 1))
}

/// The rows: the members in role order, then the bitmap file's disk, then any other disk
/// the requests name.
fn rows_of(around: &Around) -> Vec<(String, String)> {
    let internal = around.bitmap_file.is_none();
    let mut rows: Vec<(String, String)> = around
        .members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            (
                m.clone(),
                if internal {
                    format!("member {i}, bitmap")
                } else {
                    format!("member {i}")
                },
            )
        })
        .collect();
    if let Some(f) = &around.bitmap_file {
        if !rows.iter().any(|(d, _)| d == f) {
            rows.push((f.clone(), "bitmap file".into()));
        }
    }
    for t in &around.requests {
        if !rows.iter().any(|(d, _)| *d == t.disk) {
            rows.push((t.disk.clone(), String::new()));
        }
    }
    rows
}

/// Lays out `v`'s state around its cut for `cause`.
pub fn layout(around: &Around, v: &Violation, cause: Cause, id: &str) -> Layout {
    let e = explanation(v, cause);
    let picked: Vec<(Picked, &Seen)> = e
        .map(|e| {
            [(Picked::Data, &e.data), (Picked::Bitmap, &e.bitmap)]
                .into_iter()
                .filter_map(|(p, s)| s.as_ref().map(|s| (p, s)))
                .collect()
        })
        .unwrap_or_default();
    let seen: Vec<&Seen> = picked.iter().map(|(_, s)| *s).collect();
    let (from_us, to_us) = window(around, &seen);
    let cut_us = around.cut_us();
    let x = |us: u64| scale(from_us, to_us, us);
    let row_list = rows_of(around);
    let row_of = |disk: &str| row_list.iter().position(|(d, _)| d == disk).unwrap_or(0);

    let mut items: Vec<Item> = Vec::new();
    let mut drawn = BTreeSet::new();
    for t in &around.requests {
        let end = t.completed_us.unwrap_or(u64::MAX);
        if t.issued_us > to_us || end < from_us {
            continue;
        }
        drawn.insert(t.request.as_str());
        let (x0, mut x1) = (x(t.issued_us), x(end.min(to_us)));
        if !t.flush {
            x1 = x1.max(x0 + MIN_BAR);
        }
        items.push(Item {
            request: t.request.clone(),
            row: row_of(&t.disk),
            lane: 0,
            flush: t.flush,
            fate: Fate::of(t, v),
            picked: picked
                .iter()
                .find(|(_, s)| s.request == t.request)
                .map(|(p, _)| *p),
            fua: t.fua,
            flush_sequence: t.flush_sequence,
            x0,
            x1,
            y: 0.0,
            clipped_left: t.issued_us < from_us,
            clipped_right: end > to_us,
            issued_us: t.issued_us,
            completed_us: t.completed_us,
        });
    }

    // Lanes: a request goes in the first lane of its row free where it starts.
    let mut lane_ends: Vec<Vec<f64>> = vec![Vec::new(); row_list.len()];
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| items[a].x0.total_cmp(&items[b].x0).then(a.cmp(&b)));
    for i in order {
        let it = &items[i];
        let (start, end) = if it.flush {
            (it.x0 - DIAMOND, it.x1.max(it.x0 + DIAMOND))
        } else {
            (it.x0, it.x1)
        };
        let ends = &mut lane_ends[it.row];
        let lane = match ends.iter().position(|&e| e + GAP <= start) {
            Some(l) => l,
            None => {
                ends.push(f64::MIN);
                ends.len() - 1
            }
        };
        ends[lane] = end;
        items[i].lane = lane;
    }

    // Notes: a picked write is named above its row, or at the window's edge.
    let mut notes = Vec::new();
    for (p, s) in &picked {
        let what = match p {
            Picked::Data => format!(
                "data write of chunk {}",
                e.map(|e| e.chunk).unwrap_or_default()
            ),
            Picked::Bitmap => match cause {
                Cause::Cleared => "bitmap write clearing its bit".into(),
                Cause::MarkedClean => "superblock recording it in sync".into(),
                _ => "bitmap write setting its bit".into(),
            },
        };
        let disk = s.request.split(' ').next().unwrap_or("");
        let row = row_of(disk);
        if drawn.contains(s.request.as_str()) {
            let it = items
                .iter()
                .find(|i| i.request == s.request)
                .expect("drawn");
            notes.push(Note {
                picked: *p,
                row,
                x: it.x0,
                y: 0.0,
                text: format!("{what}: {}", s.request),
                anchor: "start",
                outside: false,
            });
        } else {
            let before = s.issued_us < from_us;
            let off = if before {
                from_us - s.completed_us.unwrap_or(s.issued_us).min(from_us)
            } else {
                s.issued_us.saturating_sub(to_us)
            };
            notes.push(Note {
                picked: *p,
                row,
                x: if before { PLOT_X0 } else { PLOT_X1 },
                y: 0.0,
                text: format!(
                    "{}{what}: {} (issued {}, {} {} the window){}",
                    if before { "\u{25c0} " } else { "" },
                    s.request,
                    seconds(s.issued_us),
                    duration(off),
                    if before { "before" } else { "after" },
                    if before { "" } else { " \u{25b6}" }
                ),
                anchor: if before { "start" } else { "end" },
                outside: true,
            });
        }
    }

    let mut rows = Vec::new();
    let mut y = TOP;
    for (r, (disk, role)) in row_list.iter().enumerate() {
        let lanes = lane_ends[r].len().max(1);
        let row_notes: Vec<usize> = (0..notes.len()).filter(|&n| notes[n].row == r).collect();
        let content = NOTE_H * row_notes.len() as f64 + LANE_H * lanes as f64;
        // Room for the disk's name and role beside a single lane, the lanes centred in it.
        let height = (ROW_PAD + content).max(MIN_ROW_H);
        let top = y + (height - content) / 2.0;
        for (k, &n) in row_notes.iter().enumerate() {
            notes[n].y = top + NOTE_H * (k as f64 + 1.0) - 3.0;
        }
        let bars_y = top + NOTE_H * row_notes.len() as f64;
        for it in items.iter_mut().filter(|i| i.row == r) {
            it.y = bars_y + LANE_H * it.lane as f64 + (LANE_H - BAR_H) / 2.0;
        }
        rows.push(Row {
            disk: disk.clone(),
            role: role.clone(),
            y,
            height,
            lanes,
            notes: row_notes.len(),
        });
        y += height;
    }
    let rows_bottom = y;

    let undecided_outside = |m: &BTreeMap<String, Vec<String>>| {
        m.values()
            .flatten()
            .filter(|r| !drawn.contains(r.as_str()))
            .count()
    };
    Layout {
        id: id.into(),
        cause,
        from_us,
        to_us,
        cut_us,
        cut_x: x(cut_us),
        cut_after_us: around.cut_after_us,
        cut_before_us: around.cut_before_us,
        after: v.after.clone(),
        rows,
        items,
        notes,
        ticks: ticks(from_us, to_us, cut_us),
        rows_bottom,
        height: rows_bottom + 30.0 + LEGEND_ROWS as f64 * 18.0 + 8.0,
        outside: (undecided_outside(&v.survived), undecided_outside(&v.lost)),
        explanation: e.cloned(),
    }
}

/// Ticks at a round step, counted from the cut (`cut`, `-10 ms`, `+5 ms`).
fn ticks(from: u64, to: u64, cut: u64) -> Vec<(f64, String)> {
    let span = (to - from).max(1);
    let mut step = 1u64;
    'find: for p in 0..12 {
        for m in [1, 2, 5] {
            step = m * 10u64.pow(p);
            if span / step <= 10 {
                break 'find;
            }
        }
    }
    let decimals = match step {
        s if s >= 1000 => 0,
        s if s >= 100 => 1,
        s if s >= 10 => 2,
        _ => 3,
    };
    let first = -((cut.saturating_sub(from) / step) as i64);
    let last = (to.saturating_sub(cut) / step) as i64;
    (first..=last)
        .map(|k| {
            let us = cut as i64 + k * step as i64;
            let label = if k == 0 {
                "cut".to_string()
            } else {
                format!("{:+.*} ms", decimals, (k * step as i64) as f64 / 1000.0)
            };
            (scale(from, to, us.max(0) as u64), label)
        })
        .collect()
}

fn seconds(us: u64) -> String {
    format!("{:.6} s", us as f64 / 1e6)
}

fn duration(us: u64) -> String {
    if us >= 1_000_000 {
        format!("{:.3} s", us as f64 / 1e6)
    } else {
        format!("{:.1} ms", us as f64 / 1e3)
    }
}

const LEGEND_ROWS: usize = 3;

/// The legend's entries: a swatch's kind and what it means.
const LEGEND: [(&str, &str); 8] = [
    (
        "survived",
        "survived: on the medium in every state of this cut",
    ),
    ("kept", "undecided at the cut, kept by this state"),
    ("lost", "undecided at the cut, lost by this state"),
    ("unissued", "not issued: after the cut"),
    ("flush", "flush request, issue to completion"),
    (
        "marks",
        "FUA write (end) / ended by the block layer's flushes (start)",
    ),
    (
        "picked",
        "the chunk's data write and bitmap write (named above)",
    ),
    ("cut", "power cut (between the two events around it)"),
];

/// The timeline as an inline SVG; its elements carry what the page's test reads back:
/// `.rq` per request (`data-request`, the fate's and picked's classes), `.cut` the line.
pub fn svg(l: &Layout) -> String {
    let id = &l.id;
    let mut s = format!(
        "<svg class=\"rq-timeline-svg\" id=\"{id}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{h:.0}\" viewBox=\"0 0 {WIDTH} {h:.0}\" font-family=\"sans-serif\" font-size=\"10\" data-from-us=\"{}\" data-to-us=\"{}\" data-cut-us=\"{}\" role=\"img\" aria-label=\"requests around the power cut, {}\">\n",
        l.from_us,
        l.to_us,
        l.cut_us,
        esc(l.cause.as_str()),
        h = l.height,
    );
    // Patterns: kept is striped, lost cross-hatched, after the cut shaded.
    let _ = writeln!(
        s,
        "<defs>\
<pattern id=\"{id}-kept\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#a5d6a7\"/><rect width=\"2.5\" height=\"6\" fill=\"#2e7d32\"/></pattern>\
<pattern id=\"{id}-lost\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\"><rect width=\"6\" height=\"6\" fill=\"#fff\"/><path d=\"M0,0 L6,6 M6,0 L0,6\" stroke=\"#c62828\" stroke-width=\"1.2\"/></pattern>\
<pattern id=\"{id}-after\" width=\"8\" height=\"8\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(-45)\"><rect width=\"8\" height=\"8\" fill=\"#f7f7f7\"/><rect width=\"1\" height=\"8\" fill=\"#ddd\"/></pattern>\
</defs>"
    );
    let top = TOP - 4.0;
    // What came after the cut, shaded behind the bars.
    let _ = writeln!(
        s,
        "<rect class=\"after-cut\" x=\"{:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"url(#{id}-after)\"/>",
        l.cut_x,
        (PLOT_X1 - l.cut_x).max(0.0),
        l.rows_bottom - top
    );
    let _ = writeln!(
        s,
        "<text x=\"{PLOT_X1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#555\">after the cut: not issued in this state</text>",
        TOP - 8.0
    );
    for r in &l.rows {
        let mid = r.y + r.height / 2.0;
        let _ = writeln!(
            s,
            "<g class=\"row\" data-disk=\"{d}\"><line x1=\"0\" x2=\"{WIDTH}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ccc\"/><text x=\"4\" y=\"{:.1}\" font-size=\"12\" font-weight=\"bold\">{d}</text><text x=\"4\" y=\"{:.1}\" fill=\"#555\">{}</text></g>",
            mid - 2.0,
            mid + 11.0,
            esc(&r.role),
            d = esc(&r.disk),
            y = r.y
        );
    }
    let _ = writeln!(
        s,
        "<line x1=\"0\" x2=\"{WIDTH}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ccc\"/>",
        y = l.rows_bottom
    );
    for it in &l.items {
        item(&mut s, l, it);
    }
    for n in &l.notes {
        let _ = writeln!(
            s,
            "<text class=\"note {}{}\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{}\" font-weight=\"bold\">{}</text>",
            n.picked.class(),
            if n.outside { " outside" } else { "" },
            n.x,
            n.y,
            n.anchor,
            esc(&n.text)
        );
    }
    // The cut, over everything.
    let _ = writeln!(
        s,
        "<line class=\"cut\" x1=\"{x:.2}\" x2=\"{x:.2}\" y1=\"{top:.1}\" y2=\"{:.1}\" stroke=\"#d00000\" stroke-width=\"2\"/>\
<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#d00000\" font-weight=\"bold\" text-anchor=\"{}\">power cut, after the {}</text>",
        l.rows_bottom,
        l.cut_x + if l.cut_x > WIDTH / 2.0 { -4.0 } else { 4.0 },
        TOP - 8.0 - 12.0,
        if l.cut_x > WIDTH / 2.0 { "end" } else { "start" },
        esc(&l.after),
        x = l.cut_x,
    );
    // The axis, from the cut.
    let ay = l.rows_bottom;
    for (x, label) in &l.ticks {
        let _ = writeln!(
            s,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{ay:.1}\" y2=\"{:.1}\" stroke=\"#888\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#444\">{}</text>",
            ay + 4.0,
            ay + 15.0,
            esc(label)
        );
    }
    legend(&mut s, l, ay + 30.0);
    s.push_str("</svg>\n");
    s
}

/// One request: a bar with its marks, or a flush's mark.
fn item(s: &mut String, l: &Layout, it: &Item) {
    let id = &l.id;
    let mut class = format!(
        "rq {} {}",
        if it.flush { "flush" } else { "write" },
        it.fate.class()
    );
    if let Some(p) = it.picked {
        let _ = write!(class, " {}", p.class());
    }
    // A clipped bar's end is the window's, not the request's: its title says so.
    let title = format!(
        "{}: issued {}{}, {}{}; {}",
        it.request,
        seconds(it.issued_us),
        if it.clipped_left {
            " (before the window)"
        } else {
            ""
        },
        it.completed_us
            .map_or("never completed".into(), |c| format!(
                "completed {}",
                seconds(c)
            )),
        if it.clipped_right {
            " (after the window)"
        } else {
            ""
        },
        match it.fate {
            Fate::Survived => "survived (on the medium at the cut)",
            Fate::Kept => "undecided, kept by this state",
            Fate::Lost => "undecided, lost by this state",
            Fate::Issued => "issued before the cut",
            Fate::Unissued => "not issued: after the cut",
        }
    );
    let mid = it.y + BAR_H / 2.0;
    if it.flush {
        // A whisker from issue to completion, a diamond at the issue.
        let (fill, stroke) = match it.fate {
            Fate::Unissued => ("#fff", "#777"),
            _ => ("#000", "#000"),
        };
        let _ = writeln!(
            s,
            "<g><title>{}</title><line class=\"{class}\" data-request=\"{}\" x1=\"{:.2}\" x2=\"{:.2}\" y1=\"{mid:.1}\" y2=\"{mid:.1}\" stroke=\"{stroke}\" stroke-width=\"1.5\"/><path class=\"flush-mark\" d=\"M{:.2},{:.1} l{DIAMOND},{DIAMOND} l-{DIAMOND},{DIAMOND} l-{DIAMOND},-{DIAMOND} z\" fill=\"{fill}\" stroke=\"{stroke}\"/></g>",
            esc(&title),
            esc(&it.request),
            it.x0,
            it.x1,
            it.x0,
            mid - DIAMOND,
        );
        return;
    }
    let (fill, stroke, dash, text) = it.fate.style(id);
    let (stroke, width) = if it.picked.is_some() {
        ("#000", 2.5)
    } else {
        (stroke, 1.0)
    };
    let w = it.x1 - it.x0;
    let _ = write!(
        s,
        "<g><title>{}</title><rect class=\"{class}\" data-request=\"{}\" x=\"{:.2}\" y=\"{:.1}\" width=\"{w:.2}\" height=\"{BAR_H}\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{width}\" stroke-dasharray=\"{dash}\"/>",
        esc(&title),
        esc(&it.request),
        it.x0,
        it.y,
    );
    if it.flush_sequence {
        let _ = write!(
            s,
            "<path class=\"fseq-mark\" d=\"M{:.2},{:.1} l5,{:.1} l-5,{:.1} z\" fill=\"#000\"/>",
            it.x0,
            it.y,
            BAR_H / 2.0,
            BAR_H / 2.0
        );
    }
    if it.fua {
        let _ = write!(
            s,
            "<rect class=\"fua-mark\" x=\"{:.2}\" y=\"{:.1}\" width=\"3\" height=\"{BAR_H}\" fill=\"#000\"/>",
            it.x1 - 3.0,
            it.y
        );
    }
    // The request's number and its fate, where they fit.
    let number = it.request.split(' ').nth(1).unwrap_or("");
    let label = match it.fate.word() {
        "" => number.to_string(),
        w => format!("{number} {w}"),
    };
    if w >= 8.0 + 5.5 * label.len() as f64 {
        let _ = write!(
            s,
            "<text x=\"{:.2}\" y=\"{:.1}\" fill=\"{text}\" font-size=\"9\">{}</text>",
            it.x0 + 6.0,
            it.y + BAR_H - 2.5,
            esc(&label)
        );
    }
    s.push_str("</g>\n");
}

fn legend(s: &mut String, l: &Layout, y0: f64) {
    let id = &l.id;
    let col = WIDTH / 3.0;
    for (k, (kind, text)) in LEGEND.iter().enumerate() {
        let (x, y) = (
            4.0 + col * (k / LEGEND_ROWS) as f64,
            y0 + 18.0 * (k % LEGEND_ROWS) as f64,
        );
        let swatch = |fate: Fate, stroke_width: f64| {
            let (fill, stroke, dash, _) = fate.style(id);
            format!(
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"26\" height=\"{BAR_H}\" fill=\"{fill}\" stroke=\"{}\" stroke-width=\"{stroke_width}\" stroke-dasharray=\"{dash}\"/>",
                y - BAR_H + 1.0,
                if stroke_width > 1.0 { "#000" } else { stroke }
            )
        };
        let mark = match *kind {
            "survived" => swatch(Fate::Survived, 1.0),
            "kept" => swatch(Fate::Kept, 1.0),
            "lost" => swatch(Fate::Lost, 1.0),
            "unissued" => swatch(Fate::Unissued, 1.0),
            "picked" => swatch(Fate::Survived, 2.5),
            "flush" => format!(
                "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{m:.1}\" y2=\"{m:.1}\" stroke=\"#000\" stroke-width=\"1.5\"/><path d=\"M{:.1},{:.1} l{DIAMOND},{DIAMOND} l-{DIAMOND},{DIAMOND} l-{DIAMOND},-{DIAMOND} z\"/>",
                x + 4.0,
                x + 26.0,
                x + 4.0,
                y - BAR_H + 1.0 + BAR_H / 2.0 - DIAMOND,
                m = y - BAR_H + 1.0 + BAR_H / 2.0
            ),
            "marks" => format!(
                "{}<path d=\"M{x:.1},{:.1} l5,{:.1} l-5,{:.1} z\"/><rect x=\"{:.1}\" y=\"{:.1}\" width=\"3\" height=\"{BAR_H}\"/>",
                swatch(Fate::Unissued, 1.0),
                y - BAR_H + 1.0,
                BAR_H / 2.0,
                BAR_H / 2.0,
                x + 23.0,
                y - BAR_H + 1.0
            ),
            _ => format!(
                "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#d00000\" stroke-width=\"2\"/>",
                x + 13.0,
                x + 13.0,
                y - BAR_H - 2.0,
                y + 3.0
            ),
        };
        let _ = writeln!(
            s,
            "<g class=\"legend\">{mark}<text x=\"{:.1}\" y=\"{y:.1}\">{}</text></g>",
            x + 32.0,
            esc(text)
        );
    }
}

/// The caption: which state, which cut, which window, and what is left out.
pub fn caption(l: &Layout, v: &Violation, states: Option<u64>) -> String {
    let mut c = format!(
        "First state of cause <b>{}</b>{}: the power went after event {} ({}{}){}.",
        esc(l.cause.as_str()),
        states.map_or(String::new(), |n| format!(" ({n} unsafe states)")),
        v.point,
        esc(&l.after),
        l.cut_after_us
            .map_or(String::new(), |t| format!(", at {}", seconds(t))),
        l.cut_before_us.map_or(String::new(), |t| format!(
            " and before the next, at {}",
            seconds(t)
        )),
    );
    let _ = write!(
        c,
        " Window: {} to {} ({}) of the guest's trace, around the cut",
        seconds(l.from_us),
        seconds(l.to_us),
        duration(l.to_us - l.from_us)
    );
    match &l.explanation {
        Some(e) => {
            let _ = write!(
                c,
                " and chunk {}'s data and bitmap writes within {} of it.",
                e.chunk,
                duration(REACH_US)
            );
        }
        None => c.push('.'),
    }
    let (kept, lost) = l.outside;
    if kept + lost > 0 {
        let _ = write!(
            c,
            " Not drawn: {} undecided writes outside the window ({kept} kept, {lost} lost).",
            kept + lost
        );
    }
    if v.uncovered.len() > 1 {
        let _ = write!(
            c,
            " {} chunks uncovered in this state; the first of this cause is drawn.",
            v.uncovered.len()
        );
    }
    c
}

/// One figure: the caption and the SVG.
pub fn figure(
    around: &Around,
    v: &Violation,
    cause: Cause,
    id: &str,
    states: Option<u64>,
) -> String {
    let l = layout(around, v, cause, id);
    format!(
        "<figure class=\"rq-timeline\" data-cause=\"{}\"><figcaption>{}</figcaption>\n{}</figure>\n",
        cause.as_str(),
        caption(&l, v, states),
        svg(&l)
    )
}

/// The timelines of a case's directory: one figure per cause in its `power-loss.json`
/// (nothing for a case without one, or without violations). `n` makes the ids unique on
/// the page.
pub fn case_timelines(case_dir: &Path, n: usize) -> String {
    let Ok(text) = std::fs::read(case_dir.join("power-loss.json")) else {
        return String::new();
    };
    let Ok(report) = serde_json::from_slice::<serde_json::Value>(&text) else {
        return String::new();
    };
    let firsts: BTreeMap<Cause, Violation> =
        serde_json::from_value(report["first_by_cause"].clone()).unwrap_or_default();
    let states: BTreeMap<Cause, u64> =
        serde_json::from_value(report["states_by_cause"].clone()).unwrap_or_default();
    let mut out = String::new();
    // A power-loss.json from before `around` was saved: the recording gives the same
    // requests, from its trace alone when its logs are gone.
    let mut rebuilt: Option<Option<(crate::powercut::recording::Recording, RecordingFiles)>> = None;
    for (cause, v) in &firsts {
        let around = v.around.clone().or_else(|| {
            let loaded = rebuilt.get_or_insert_with(|| {
                let files = RecordingFiles::read(case_dir).ok()?;
                let rec = files
                    .recording(case_dir)
                    .or_else(|_| files.timing(case_dir))
                    .ok()?;
                Some((rec, files))
            });
            let (rec, files) = loaded.as_ref()?;
            let index = |name: &str| rec.disk_index(name);
            let members: Vec<usize> = files.members.iter().filter_map(|m| index(m)).collect();
            let bitmap = files.bitmap_file.as_ref().and_then(|b| index(&b.disk));
            Some(Around::of(rec, &members, bitmap, v))
        });
        match around {
            Some(a) => out.push_str(&figure(
                &a,
                v,
                *cause,
                &format!("tl{n}-{}", cause.as_str()),
                states.get(cause).copied(),
            )),
            None => {
                let _ = writeln!(
                    out,
                    "<p class=\"rq-timeline-missing\">No timeline for the first state of cause {}: its power-loss.json predates the requests saved around the cut, and the recording (recording.json, rq-trace.txt) was not kept.</p>",
                    cause.as_str()
                );
            }
        }
    }
    out
}

/// Each result's timelines, in the results' order ("" where a case has none).
pub fn timelines(run_dir: &Path, results: &[CaseResult]) -> Vec<String> {
    results
        .iter()
        .enumerate()
        .map(|(n, r)| case_timelines(&run_dir.join(r.dir_name()), n))
        .collect()
}

/// Timelines built from data made in the test.
#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn timed(request: &str, issued: u64, completed: Option<u64>, cut: u64) -> Timed {
        Timed {
            request: request.into(),
            disk: request.split(' ').next().unwrap().into(),
            flush: request.ends_with("flush"),
            fua: false,
            flush_sequence: false,
            issued_us: issued,
            completed_us: completed,
            issued_before_cut: issued < cut,
            completed_before_cut: completed.is_some_and(|c| c < cut),
        }
    }

    fn seen(t: &Timed) -> Seen {
        Seen {
            request: t.request.clone(),
            issued_us: t.issued_us,
            completed_us: t.completed_us,
        }
    }

    /// A durability state on two mirrors and a bitmap file: the bitmap write (fs #1)
    /// completed before the data (m0 #2) went out, no flush followed, and the state lost
    /// it; m1's copy (m1 #4) went out just before the cut and is lost too. The cut falls
    /// between 2100 (m1 #4's issue) and 2300 µs (m0 #5's).
    pub(crate) fn durability() -> (Around, Violation) {
        let cut = 2200;
        let mut requests = vec![
            timed("fs #0 flush", 500, Some(600), cut),
            timed("fs #1 write 16520+8", 1000, Some(1800), cut),
            timed("m0 #2 write 2048+8", 2000, Some(3000), cut),
            timed("m1 #3 write 4096+8", 300, Some(900), cut),
            timed("m1 #4 write 2048+8", 2100, Some(2900), cut),
            timed("m0 #5 write 8192+8", 2300, Some(2600), cut),
            timed("fs #6 flush", 2400, Some(2500), cut),
            timed("m0 #7 write 0+8", 250_000, Some(251_000), cut),
        ];
        requests[5].fua = true;
        requests[1].flush_sequence = true;
        let around = Around {
            cut_after_us: Some(2100),
            cut_before_us: Some(2300),
            from_us: 0,
            to_us: cut + 125_000,
            members: vec!["m0".into(), "m1".into()],
            bitmap_file: Some("fs".into()),
            requests,
        };
        let list = |pairs: &[(&str, &str)]| {
            let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (d, r) in pairs {
                m.entry(d.to_string()).or_default().push(r.to_string());
            }
            m
        };
        let v = Violation {
            point: 9,
            after: "issue of m1 #4 write 2048+8".into(),
            uncovered: vec![1],
            divergent: 1,
            explained: vec![Explanation {
                chunk: 1,
                cause: Cause::Durability,
                data: Some(seen(&around.requests[2])),
                bitmap: Some(seen(&around.requests[1])),
            }],
            survived: list(&[("m0", "m0 #2 write 2048+8")]),
            // An undecided write long before the window (volatile: completed, never
            // flushed).
            lost: list(&[
                ("fs", "fs #1 write 16520+8"),
                ("m1", "m1 #4 write 2048+8"),
                ("m0", "m0 #-1 write 64+8"),
            ]),
            survivors: vec![2],
            around: None,
        };
        (around, v)
    }

    fn item<'l>(l: &'l Layout, request: &str) -> &'l Item {
        l.items
            .iter()
            .find(|i| i.request.starts_with(request))
            .unwrap_or_else(|| panic!("{request} not drawn: {:?}", l.items))
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn a_state_s_requests_are_bars_on_their_disk_s_row_in_its_window() {
        let (around, v) = durability();
        let l = layout(&around, &v, Cause::Durability, "t");
        let rows: Vec<(&str, &str)> = l
            .rows
            .iter()
            .map(|r| (r.disk.as_str(), r.role.as_str()))
            .collect();
        assert_eq!(
            rows,
            [
                ("m0", "member 0"),
                ("m1", "member 1"),
                ("fs", "bitmap file")
            ]
        );
        // The cut (2200) and the picked writes (1000..3000), an eighth of that on each
        // side (250 µs, less than the least margin).
        assert_eq!((l.from_us, l.to_us, l.cut_us), (700, 3300, 2200));
        let x = |us: u64| PLOT_X0 + (PLOT_X1 - PLOT_X0) * (us - 700) as f64 / 2600.0;
        assert!(close(l.cut_x, x(2200)), "{}", l.cut_x);

        let data = item(&l, "m0 #2");
        assert!(
            close(data.x0, x(2000)) && close(data.x1, x(3000)),
            "{data:?}"
        );
        assert_eq!(
            (data.row, data.fate, data.picked),
            (0, Fate::Kept, Some(Picked::Data))
        );
        let bitmap = item(&l, "fs #1");
        assert!(close(bitmap.x0, x(1000)) && close(bitmap.x1, x(1800)));
        assert_eq!(
            (bitmap.row, bitmap.fate, bitmap.picked),
            (2, Fate::Lost, Some(Picked::Bitmap))
        );
        assert!(bitmap.flush_sequence);
        let durable = item(&l, "m1 #3");
        assert_eq!((durable.fate, durable.picked), (Fate::Survived, None));
        assert!(durable.clipped_left && close(durable.x0, PLOT_X0) && close(durable.x1, x(900)));
        let copy = item(&l, "m1 #4");
        assert_eq!((copy.row, copy.fate), (1, Fate::Lost));
        assert!(copy.x0 < l.cut_x && copy.x1 > l.cut_x);
        let after = item(&l, "m0 #5");
        assert_eq!(after.fate, Fate::Unissued);
        assert!(after.fua && after.x0 > l.cut_x);
        let flush = item(&l, "fs #6");
        assert!(flush.flush && flush.fate == Fate::Unissued && flush.x0 > l.cut_x);
        // A flush over before the window, a write long after the cut: not drawn.
        assert_eq!(l.items.len(), 6, "{:?}", l.items);

        // m0 #5 overlaps the data write: a second lane, below the first; the row also
        // names the data write above its bars.
        assert_eq!((data.lane, after.lane), (0, 1));
        assert!(close(after.y - data.y, LANE_H));
        assert_eq!((l.rows[0].lanes, l.rows[0].notes), (2, 1));
        assert!(data.y > l.rows[0].y && after.y + BAR_H < l.rows[0].y + l.rows[0].height);
        assert!(l.rows[1].y >= l.rows[0].y + l.rows[0].height);
        let notes: Vec<(Picked, usize, bool)> = l
            .notes
            .iter()
            .map(|n| (n.picked, n.row, n.outside))
            .collect();
        assert_eq!(
            notes,
            [(Picked::Data, 0, false), (Picked::Bitmap, 2, false)]
        );
        assert_eq!(l.notes[0].text, "data write of chunk 1: m0 #2 write 2048+8");
        assert!(close(l.notes[0].x, data.x0));
        assert!(l.notes[0].y < data.y);

        let cut_tick = l.ticks.iter().find(|(_, t)| t == "cut").unwrap();
        assert!(close(cut_tick.0, l.cut_x));
        assert!(l.ticks.iter().any(|(_, t)| t == "-1.0 ms"), "{:?}", l.ticks);
        // The undecided write long before the window is counted, not drawn.
        assert_eq!(l.outside, (0, 1));
        let c = caption(&l, &v, Some(7));
        assert!(
            c.contains("after event 9 (issue of m1 #4 write 2048+8, at 0.002100 s) and before the next, at 0.002300 s.")
                && c.contains("0.000700 s to 0.003300 s (2.6 ms)")
                && c.contains("1 undecided writes outside the window (0 kept, 1 lost)"),
            "{c}"
        );
    }

    #[test]
    fn the_svg_marks_each_request_with_its_fate_and_the_picked_writes() {
        let (around, v) = durability();
        let l = layout(&around, &v, Cause::Durability, "t0");
        let s = svg(&l);
        for (request, class) in [
            ("m0 #2 write 2048+8", "rq write survived kept picked-data"),
            ("fs #1 write 16520+8", "rq write lost picked-bitmap"),
            ("m1 #3 write 4096+8", "rq write survived durable"),
            ("m1 #4 write 2048+8", "rq write lost"),
            ("m0 #5 write 8192+8", "rq write unissued"),
            ("fs #6 flush", "rq flush unissued"),
        ] {
            assert!(
                s.contains(&format!("class=\"{class}\" data-request=\"{request}\"")),
                "{request} as {class}:\n{s}"
            );
        }
        assert_eq!(s.matches("class=\"rq ").count(), 6);
        assert_eq!(s.matches("class=\"cut\"").count(), 1);
        // Told apart without colour: patterns, and words in the bars wide enough.
        assert!(s.contains("fill=\"url(#t0-lost)\"") && s.contains("fill=\"url(#t0-kept)\""));
        assert!(
            s.contains(">#4 lost</text>") && s.contains(">#2 kept</text>"),
            "{s}"
        );
        assert!(s.contains("class=\"fua-mark\"") && s.contains("class=\"fseq-mark\""));
    }

    #[test]
    fn a_picked_write_far_from_the_cut_is_named_at_the_window_s_edge() {
        let (mut around, mut v) = durability();
        // The bitmap write half a second before the cut: the window stays near the cut.
        around.requests[1].issued_us = 0;
        around.requests[1].completed_us = Some(100);
        let far = Seen {
            issued_us: 0,
            completed_us: Some(100),
            ..v.explained[0].bitmap.clone().unwrap()
        };
        v.explained[0].bitmap = Some(far);
        for t in &mut around.requests {
            for us in [Some(&mut t.issued_us), t.completed_us.as_mut()]
                .into_iter()
                .flatten()
            {
                if *us >= 300 {
                    *us += 500_000;
                }
            }
        }
        around.cut_after_us = Some(502_100);
        around.cut_before_us = Some(502_300);
        around.from_us = 502_200 - 125_000;
        around.to_us = 502_200 + 125_000;
        let mut data = v.explained[0].data.clone().unwrap();
        data.issued_us += 500_000;
        data.completed_us = data.completed_us.map(|c| c + 500_000);
        v.explained[0].data = Some(data);
        let l = layout(&around, &v, Cause::Durability, "t");
        // The cut and the data write (502000..503000), the least margin on each side.
        assert_eq!((l.from_us, l.to_us), (501_700, 503_300));
        assert!(l.items.iter().all(|i| !i.request.starts_with("fs #1")));
        let n = l.notes.iter().find(|n| n.picked == Picked::Bitmap).unwrap();
        assert!(
            n.outside && close(n.x, PLOT_X0) && n.anchor == "start",
            "{n:?}"
        );
        assert_eq!(
            n.text,
            "\u{25c0} bitmap write setting its bit: fs #1 write 16520+8 (issued 0.000000 s, 501.6 ms before the window)"
        );
    }
}

/// The timeline in a real browser: Debian's `chromium` lays the page out, and what it
/// drew is checked against the state it draws.
#[cfg(test)]
mod chromium {
    use super::tests::durability;
    use super::*;
    use crate::report::html::{chromium::drawn_by_chromium, render};
    use crate::result::tests::result;
    use crate::result::Verdict;
    use serde_json::{json, Value};

    /// What a bar's edge may lie past the cut: rounding, and the least width a bar is
    /// drawn with.
    const SLACK: f64 = 0.75;

    /// Reports, per timeline, every `.rq` element's classes, request, fill and edges,
    /// and the cut line's, in pixels from the SVG's left.
    const PROBE: &str = "<script>const out = {};\
        for (const svg of document.querySelectorAll('svg.rq-timeline-svg')) {\
          const o = svg.getBoundingClientRect().left;\
          const f = { from: +svg.dataset.fromUs, to: +svg.dataset.toUs, items: [],\
            cut: [...svg.querySelectorAll('.cut')].map(c => c.getBoundingClientRect().left - o) };\
          for (const e of svg.querySelectorAll('.rq')) {\
            const r = e.getBoundingClientRect();\
            f.items.push({ request: e.dataset.request, classes: [...e.classList],\
              left: r.left - o, right: r.right - o, fill: getComputedStyle(e).fill }); }\
          out[svg.id] = f; }\
        const p = document.createElement('pre'); p.id = 'probe';\
        p.textContent = JSON.stringify(out); document.body.appendChild(p);</script>";

    /// Whether what the browser drew of a timeline (`drawn`, from [`PROBE`]) shows `v`'s
    /// state for `cause`, worked out from the state itself and not from the layout: one
    /// element per request in the drawn window, each with its fate's class (the
    /// violation's lists for the undecided writes; else issued before the cut or not),
    /// the cut line after every request the state issued and before every other, lost
    /// writes filled unlike surviving ones, and the cause's data and bitmap writes
    /// picked out. Every discrepancy, or `Ok`.
    pub(crate) fn check_drawn(
        drawn: &Value,
        around: &Around,
        v: &Violation,
        cause: Cause,
    ) -> Result<(), String> {
        let mut bad = Vec::new();
        let (from, to) = (
            drawn["from"].as_u64().unwrap_or(0),
            drawn["to"].as_u64().unwrap_or(0),
        );
        let cuts = drawn["cut"].as_array().cloned().unwrap_or_default();
        if cuts.len() != 1 {
            return Err(format!("{} cut lines drawn", cuts.len()));
        }
        let cut = cuts[0].as_f64().unwrap_or(f64::NAN);
        let items = drawn["items"].as_array().cloned().unwrap_or_default();
        let listed =
            |m: &BTreeMap<String, Vec<String>>, r: &str| m.values().flatten().any(|x| x == r);
        let e = v.explained.iter().find(|e| e.cause == cause);
        let data = e.and_then(|e| e.data.as_ref()).map(|s| &s.request);
        let bitmap = e.and_then(|e| e.bitmap.as_ref()).map(|s| &s.request);
        let mut fills: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        let mut expected = 0;
        for t in &around.requests {
            if t.issued_us > to || t.completed_us.is_some_and(|c| c < from) {
                continue;
            }
            expected += 1;
            let r = &t.request;
            let found: Vec<&Value> = items.iter().filter(|i| i["request"] == **r).collect();
            let [i] = found[..] else {
                bad.push(format!("{r}: drawn {} times", found.len()));
                continue;
            };
            let classes: BTreeSet<&str> = i["classes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str())
                .collect();
            let fate = if t.flush {
                if t.issued_before_cut {
                    "issued"
                } else {
                    "unissued"
                }
            } else if listed(&v.lost, r) {
                "lost"
            } else if listed(&v.survived, r) {
                "kept"
            } else if t.issued_before_cut {
                "durable"
            } else {
                "unissued"
            };
            let shown: Vec<&str> = ["durable", "kept", "lost", "issued", "unissued"]
                .into_iter()
                .filter(|c| classes.contains(c))
                .collect();
            if shown != [fate] {
                bad.push(format!("{r}: drawn {shown:?}, the state says {fate}"));
            }
            if classes.contains("survived") != matches!(fate, "durable" | "kept") {
                bad.push(format!("{r}: {classes:?} says survived wrongly ({fate})"));
            }
            for (p, class) in [(data, "picked-data"), (bitmap, "picked-bitmap")] {
                if (p == Some(r)) != classes.contains(class) {
                    bad.push(format!("{r}: {class} is {}", classes.contains(class)));
                }
            }
            let (left, right) = (i["left"].as_f64().unwrap(), i["right"].as_f64().unwrap());
            if t.issued_before_cut && left > cut + SLACK {
                bad.push(format!(
                    "{r}: issued before the cut, drawn from {left:.1} right of the cut at {cut:.1}"
                ));
            }
            if !t.issued_before_cut && left < cut - SLACK {
                bad.push(format!(
                    "{r}: issued after the cut, drawn from {left:.1} left of the cut at {cut:.1}"
                ));
            }
            if t.completed_before_cut && right > cut + MIN_BAR + SLACK {
                bad.push(format!(
                    "{r}: completed before the cut, drawn to {right:.1} past the cut at {cut:.1}"
                ));
            }
            if !t.flush {
                let side = match fate {
                    "lost" => "lost",
                    "unissued" => "unissued",
                    _ => "survived",
                };
                fills
                    .entry(side)
                    .or_default()
                    .insert(i["fill"].as_str().unwrap_or("").to_string());
            }
        }
        if items.len() != expected {
            bad.push(format!(
                "{} requests drawn, {expected} in the window",
                items.len()
            ));
        }
        let empty = BTreeSet::new();
        let fill = |side| fills.get(side).unwrap_or(&empty);
        for (a, b) in [
            ("lost", "survived"),
            ("lost", "unissued"),
            ("survived", "unissued"),
        ] {
            let both: Vec<&String> = fill(a).intersection(fill(b)).collect();
            if !both.is_empty() {
                bad.push(format!("{a} and {b} writes share the fill {both:?}"));
            }
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(bad.join("\n"))
        }
    }

    #[test]
    fn the_browser_draws_each_request_of_the_state_on_its_side_of_the_cut() {
        let (around, mut v) = durability();
        let run = tempfile::tempdir().unwrap();
        let case = result("raid1-file-bitmap-power-loss-volatile", Verdict::Xfail, 7);
        std::fs::create_dir(run.path().join(case.dir_name())).unwrap();
        // The violation as the power-loss stage writes it, with the requests around it.
        v.around = Some(around.clone());
        std::fs::write(
            run.path().join(case.dir_name()).join("power-loss.json"),
            serde_json::to_vec(&json!({
                "model": "volatile_cache",
                "states_by_cause": { "durability": 7 },
                "first_by_cause": { "durability": v },
            }))
            .unwrap(),
        )
        .unwrap();
        let results = [case, result("smoke", Verdict::Pass, 2)];
        let timelines = timelines(run.path(), &results);
        assert!(
            timelines[0].contains("(7 unsafe states)"),
            "{}",
            timelines[0]
        );
        assert_eq!(timelines[1], "", "no power-loss.json, no timeline");
        let page = render("run", &results, &[], &timelines);

        // The same layout broken three ways, drawn beside it: the check must see each.
        let good = layout(&around, &v, Cause::Durability, "good");
        let mut lost_as_kept = Layout {
            id: "lost-as-kept".into(),
            ..good.clone()
        };
        for it in &mut lost_as_kept.items {
            if it.request == "m1 #4 write 2048+8" {
                it.fate = Fate::Kept;
            }
        }
        let cut_moved = Layout {
            id: "cut-moved".into(),
            cut_x: good.x(1950),
            ..good.clone()
        };
        let mut unpicked = Layout {
            id: "unpicked".into(),
            ..good.clone()
        };
        for it in &mut unpicked.items {
            if it.picked == Some(Picked::Bitmap) {
                it.picked = None;
            }
        }
        let broken: String = [&lost_as_kept, &cut_moved, &unpicked]
            .iter()
            .map(|l| svg(l))
            .collect();
        let page = page.replace("</body>", &format!("{broken}</body>"));

        let drawn: Value = serde_json::from_str(&drawn_by_chromium(&page, PROBE)).unwrap();
        let page_id = "tl0-durability";
        let f = &drawn[page_id];
        assert_eq!(f["items"].as_array().map(|a| a.len()), Some(6), "{drawn}");
        check_drawn(f, &around, &v, Cause::Durability).unwrap_or_else(|e| {
            panic!("the page's timeline:\n{e}\n{f}");
        });
        // The cut lies between the copy issued before it (m1 #4) and the FUA write
        // issued after it (m0 #5).
        let edge = |r: &str| {
            f["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["request"] == r)
                .map(|i| i["left"].as_f64().unwrap())
                .unwrap()
        };
        let cut = f["cut"][0].as_f64().unwrap();
        assert!(
            edge("m1 #4 write 2048+8") < cut && cut < edge("m0 #5 write 8192+8"),
            "{f}"
        );

        for (id, says) in [
            (
                "lost-as-kept",
                "m1 #4 write 2048+8: drawn [\"kept\"], the state says lost",
            ),
            (
                "cut-moved",
                "m1 #4 write 2048+8: issued before the cut, drawn from",
            ),
            ("unpicked", "fs #1 write 16520+8: picked-bitmap is false"),
        ] {
            let e = check_drawn(&drawn[id], &around, &v, Cause::Durability)
                .expect_err(&format!("{id} passed: {}", drawn[id]));
            assert!(e.contains(says), "{id}: {e}");
        }
    }
}
