//! The SIGKILL crash, recorded: the first load's writes (`blklogwrites`) and the guest's
//! request trace, so that each chunk the kill leaves divergent with a clear bit is
//! explained by the power-loss judge's causes (`powercut::explore::explain_killed`).
//!
//! A SIGKILL ends the guest before it could hand over a trace kept in its memory, so the
//! trace streams out while the load runs: `cat trace_pipe` into a virtio-serial port
//! whose bytes QEMU writes to a host file (`vm::qemu::TRACE_PORT`). Right before the kill
//! a marker goes through the stream and the host waits to see it, so that at most the
//! last few requests are missing; the judge reads a log cut short by the kill up to its
//! last whole entry, and a request the stream did not carry is one it cannot explain.

use super::images::Readings;
use super::Scenario;
use crate::check::{self, Check};
use crate::poll::{self, Pace, Probe};
use crate::powercut::explore::{self, Explanation};
use crate::powercut::files::{self, Loaded};
use crate::powercut::view::DiskViews;
use crate::result::Failure;
use crate::vm::{guest, qemu, Vm};
use anyhow::Context;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a recorded boot keeps for the judge after the kill.
pub struct KillRecording {
    pub boot: u32,
    recorded: Vec<String>,
    bases: Vec<PathBuf>,
    devs: Vec<(u32, u32)>,
    stream: PathBuf,
    marks: u32,
}

impl Scenario<'_, '_> {
    /// The settled array in a boot whose disks are recorded and whose trace streams out:
    /// on the fast path the prepared images are the bases and boot 1 is recorded; else
    /// boot 1 creates and settles the array, stops it, and boot 2 is recorded. Returns
    /// the VM and how long the bitmap took to be clean.
    pub fn boot_recorded(&mut self) -> Result<(Vm, std::time::Duration, KillRecording), Failure> {
        let recorded = self.recorded_disks();
        let (boot, bases, mut vm, settle) = match self.prepared_images() {
            Some(images) => {
                self.copy_prepared(&images).map_err(Failure::Bench)?;
                let bases = self.copy_bases(&recorded)?;
                let logged = self.logged_disks(&recorded, None)?;
                let mut vm = self.boot_with(1, logged)?;
                self.phase("boot 1 (recorded)");
                self.stream_trace(&mut vm)?;
                let settle = self.assemble_prepared(&mut vm)?;
                (1, bases, vm, settle)
            }
            None => {
                let (mut vm, settle) = self.boot_settled()?;
                self.stop_array(&mut vm)?;
                vm.quit(Duration::from_secs(60)).map_err(Failure::Bench)?;
                self.phase("settle and stop");
                let bases = self.copy_bases(&recorded)?;
                let logged = self.logged_disks(&recorded, None)?;
                let mut vm = self.boot_with(2, logged)?;
                self.phase("boot 2 (recorded)");
                self.stream_trace(&mut vm)?;
                self.assemble(&mut vm, &self.members())?;
                self.wait_in_sync(&mut vm, Duration::from_secs(60))?;
                self.phase("assemble (recorded)");
                (2, bases, vm, settle)
            }
        };
        let devs = self.dev_numbers(&mut vm, &recorded)?;
        let stream = qemu::guest_trace_path(&self.console_path(boot));
        Ok((
            vm,
            settle,
            KillRecording {
                boot,
                recorded,
                bases,
                devs,
                stream,
                marks: 0,
            },
        ))
    }

    /// Starts the request trace and the unplug probe, streamed to the trace port. Called
    /// before the array is assembled: a request in flight when the trace begins would
    /// complete unissued.
    fn stream_trace(&mut self, vm: &mut Vm) -> Result<(), Failure> {
        self.probe_unplugs(vm)?;
        self.sh(
            vm,
            &super::recorder::trace_on(16384),
            super::recorder::TRACE_ON_LIMIT,
        )?;
        let port = self.sh(
            vm,
            &format!(
                "for p in /sys/class/virtio-ports/*; do [ \"$(cat $p/name)\" = {} ] && basename $p; done",
                qemu::TRACE_PORT
            ),
            10,
        )?;
        let port = port.trim();
        if port.is_empty() {
            return Err(Failure::Bench(anyhow::anyhow!(
                "the guest has no virtio port named {}",
                qemu::TRACE_PORT
            )));
        }
        guest::spawn(
            vm,
            &format!("cat /sys/kernel/tracing/trace_pipe > /dev/{port}"),
        )
        .map_err(Failure::Bench)?;
        Ok(())
    }

    /// Sends a marker through the trace and waits until the host file holds it: what the
    /// guest traced before now is on the host.
    pub fn sync_trace(&mut self, vm: &mut Vm, r: &mut KillRecording) -> Result<(), Failure> {
        r.marks += 1;
        let mark = format!("md-bitmap-bench: sync {}", r.marks);
        let lost = self.sh(
            vm,
            &format!("echo '{mark}' > /sys/kernel/tracing/trace_marker && cat /sys/kernel/tracing/per_cpu/cpu*/stats | grep -E '^(overrun|dropped events):' | awk '{{s+=$NF}} END {{print s+0}}'"),
            10,
        )?;
        if lost.trim() != "0" {
            return Err(Failure::Bench(anyhow::anyhow!(
                "the guest's trace buffer lost {} events before the kill: the recording is incomplete",
                lost.trim()
            )));
        }
        let limit = Duration::from_secs(10);
        poll::until(
            limit,
            Pace::EAGER,
            || {
                let text = std::fs::read(&r.stream).unwrap_or_default();
                let seen = text.windows(mark.len()).any(|w| w == mark.as_bytes());
                Ok(if seen {
                    Probe::Done(())
                } else {
                    Probe::Pending(text.len())
                })
            },
            |bytes| {
                Failure::Bench(anyhow::anyhow!(
                    "the guest's trace stream did not carry the marker within {limit:?} ({bytes} bytes on the host; deadline passed)"
                ))
            },
        )
    }

    /// After the kill: each of `uncovered` explained from the recording. Keeps the
    /// recording's files in the case directory (`rq-trace.txt`, `recording.json`).
    pub fn explain_kill(
        &mut self,
        r: &KillRecording,
        divergent: &[u64],
        uncovered: &[u64],
    ) -> Result<Vec<Explanation>, Failure> {
        let trace = std::fs::read(&r.stream)
            .with_context(|| format!("read {}", r.stream.display()))
            .map_err(Failure::Bench)?;
        // The stream is cut wherever the kill fell: its last line may be torn.
        let text = String::from_utf8_lossy(&trace);
        let whole = text.rfind('\n').map_or("", |end| &text[..=end]);
        std::fs::write(self.case_dir.join(files::TRACE), whole)
            .map_err(|e| Failure::Bench(e.into()))?;
        let files = self.write_recording(&r.recorded, &r.devs, &r.bases, true)?;
        let Loaded { rec, layout, bases } = files.load(self.case_dir).map_err(Failure::Bench)?;
        self.note_figure("recording", &rec.figures);
        let refs: Vec<&Path> = bases.iter().map(|b| b.as_path()).collect();
        let views = DiskViews::open(&rec, &refs).map_err(Failure::Bench)?;
        let judge = crate::powercut::judge::Judge::new(&views, &layout);
        let explained = explore::explain_killed(&rec, &judge, uncovered);
        // What the recording says of the divergence: a chunk differs where the kill cut
        // off a member write to it.
        let cut_off = divergent
            .iter()
            .filter(|&&c| {
                judge
                    .writes_of_chunk(c)
                    .iter()
                    .any(|&w| !rec.requests[w].logged())
            })
            .count();
        self.note_figure(
            "kill_recording",
            serde_json::json!({ "divergent_chunks": divergent.len(),
                "divergent_with_a_member_write_cut_off": cut_off,
                "uncovered_explained": explained.len() }),
        );
        Ok(explained)
    }
}

impl Scenario<'_, '_> {
    /// The safety rule on the images a crash left, with each uncovered chunk's cause when
    /// the crash was recorded. The recording is read whatever the images show: one that
    /// does not add up is an ERROR now, not on the day a race needs it.
    pub fn safety_explained(
        &mut self,
        before: &Readings,
        dirty: &BTreeSet<u64>,
        recording: Option<&KillRecording>,
    ) -> Result<Check, Failure> {
        let mut safety = check::safety(
            &before.divergent,
            dirty,
            before.bitmap.chunks(),
            before.bytes_compared,
        );
        let Some(r) = recording else {
            return Ok(safety);
        };
        let uncovered = check::uncovered(&before.divergent, |c| dirty.contains(&c));
        let explained = self.explain_kill(r, &before.divergent, &uncovered)?;
        if let (Some(f), serde_json::Value::Object(more)) =
            (safety.figures.as_object_mut(), cause_figures(&explained))
        {
            f.extend(more);
        }
        if !explained.is_empty() {
            let causes: Vec<String> = explained
                .iter()
                .take(3)
                .map(|e| format!("{}: {}", e.cause.as_str(), e.evidence()))
                .collect();
            safety
                .summary
                .push_str(&format!("; read from the recording: {}", causes.join("; ")));
        }
        Ok(safety)
    }
}

/// The figures a safety check carries for the chunks it explained: uncovered chunks per
/// cause, and the first of each cause with its evidence.
pub fn cause_figures(explained: &[Explanation]) -> serde_json::Value {
    let mut by_cause: BTreeMap<&str, u64> = BTreeMap::new();
    let mut evidence: BTreeMap<&str, &Explanation> = BTreeMap::new();
    for e in explained {
        *by_cause.entry(e.cause.as_str()).or_default() += 1;
        evidence.entry(e.cause.as_str()).or_insert(e);
    }
    serde_json::json!({ "chunks_by_cause": by_cause, "evidence": evidence })
}
