//! Recording a load, shared by the power-loss scenario and the SIGKILL crash: every disk
//! the array's state lives on (the members, the bitmap file's filesystem) behind QEMU's
//! `blklogwrites` with its image from before copied aside, the guest's request trace with
//! the bitmap's unplugs, and the files (`recording.json`) the judge reads back.

use super::Scenario;
use crate::logs::request_trace;
use crate::powercut::files::{BitmapFile, RecordedDisk, RecordingFiles};
use crate::result::Failure;
use crate::vm::{Disk, Vm};
use std::path::{Path, PathBuf};

/// How long the guest may take to start the trace, in seconds: the ring buffer is
/// allocated there, and 128 MiB of it took over 30 s under TCG with three VMs on two
/// cores (results/2026-12-07T23-06-01Z, two ERRORs).
pub const TRACE_ON_LIMIT: u64 = 180;

/// The guest commands that start the block request trace (issue and completion, one
/// global clock) into a ring buffer of `buffer_kb` per CPU.
pub fn trace_on(buffer_kb: u32) -> String {
    format!(
        "cd /sys/kernel/tracing && echo 0 > tracing_on && echo global > trace_clock && echo {buffer_kb} > buffer_size_kb && echo 1 > events/block/block_rq_issue/enable && echo 1 > events/block/block_rq_complete/enable && echo > trace && echo 1 > tracing_on"
    )
}

impl Scenario<'_, '_> {
    /// The disks a crash touches: the members, and the bitmap file's filesystem.
    pub fn recorded_disks(&self) -> Vec<String> {
        let mut names = self.array.members.clone();
        if self.is_file() && !names.contains(&self.array.bitmap.disk) {
            names.push(self.array.bitmap.disk.clone());
        }
        names
    }

    /// Copies each recorded disk's image aside, before the recorded boot changes it.
    pub fn copy_bases(&self, recorded: &[String]) -> Result<Vec<PathBuf>, Failure> {
        recorded
            .iter()
            .map(|name| {
                let from = self.image(name);
                let to = from.with_extension("base.img");
                super::disks::copy_image(&from, &to).map_err(Failure::Bench)?;
                Ok(to)
            })
            .collect()
    }

    /// The case's disks with the recorded ones behind `blklogwrites` (each log created
    /// empty); `write_cache` overrides what the guest is shown, when given.
    pub fn logged_disks(
        &self,
        recorded: &[String],
        write_cache: Option<bool>,
    ) -> Result<Vec<Disk>, Failure> {
        let disks: Vec<Disk> = self
            .disks
            .iter()
            .map(|d| {
                let mut d = d.clone();
                if let Some(w) = write_cache {
                    d.write_cache = w;
                }
                if recorded.contains(&d.name) {
                    d.log = Some(log_path(&d.path));
                }
                d
            })
            .collect();
        for log in disks.iter().filter_map(|d| d.log.as_ref()) {
            std::fs::File::create(log).map_err(|e| Failure::Bench(e.into()))?;
        }
        Ok(disks)
    }

    /// Puts kprobes on md's `__bitmap_unplug` and `filemap_write_page`, so that the trace
    /// says where each unplug of the bitmap began and where it sent a page, in which task: the judge's evidence that a bitmap write
    /// issued after the data had been taken before it
    /// (`powercut::explore::queued_carrier`). A kernel without the symbol records none;
    /// the figure `unplug_probe` says which.
    pub fn probe_unplugs(&mut self, vm: &mut Vm) -> Result<(), Failure> {
        let probe = |event: &str, symbol: &str| {
            format!("for f in md_mod:{symbol} {symbol}; do echo 'p:mdbb/{event} '$f >> kprobe_events 2>/dev/null && break; done")
        };
        let probed = self.sh(
            vm,
            &format!(
                "cd /sys/kernel/tracing && (modprobe md_mod 2>/dev/null; {}; {}; echo 1 > events/mdbb/enable 2>/dev/null) ; test -e events/mdbb/{} && test -e events/mdbb/{} && echo on || echo off",
                probe(request_trace::UNPLUG_EVENT, "__bitmap_unplug"),
                probe(request_trace::PAGE_WRITE_EVENT, "filemap_write_page"),
                request_trace::UNPLUG_EVENT,
                request_trace::PAGE_WRITE_EVENT,
            ),
            30,
        )?;
        self.note_figure("unplug_probe", probed.trim());
        Ok(())
    }

    /// Each recorded disk's device number in the guest, in `recorded`'s order.
    pub fn dev_numbers(
        &self,
        vm: &mut Vm,
        recorded: &[String],
    ) -> Result<Vec<(u32, u32)>, Failure> {
        recorded
            .iter()
            .map(|name| self.dev_number(vm, name))
            .collect()
    }

    /// Writes `recording.json`: the logs, the bases, the array and its bitmap.
    pub fn write_recording(
        &self,
        recorded: &[String],
        devs: &[(u32, u32)],
        bases: &[PathBuf],
        killed: bool,
    ) -> Result<RecordingFiles, Failure> {
        let files = RecordingFiles {
            disks: recorded
                .iter()
                .zip(devs)
                .zip(bases)
                .map(|((name, &dev), base)| RecordedDisk {
                    name: name.clone(),
                    dev,
                    log: relative(self.case_dir, &log_path(&self.image(name))),
                    base: relative(self.case_dir, base),
                })
                .collect(),
            members: self.array.members.clone(),
            bitmap_file: self.is_file().then(|| BitmapFile {
                disk: self.array.bitmap.disk.clone(),
                fs: self.array.bitmap.fs,
                path: self.array.bitmap.path.clone(),
            }),
            killed,
        };
        files.write(self.case_dir).map_err(Failure::Bench)?;
        Ok(files)
    }
}

fn relative(dir: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(dir).unwrap_or(path).to_path_buf()
}

fn log_path(image: &Path) -> PathBuf {
    image.with_extension("wlog")
}
