//! A recording on disk, as a case leaves it: `recording.json` names each disk's device
//! number, log and image from before the recording, and where the array and its bitmap
//! are; beside it `rq-trace.txt`. The case judges from these files, and so do
//! `cargo xtask power-loss judge` and `write` later: one way in for both.

use super::judge::{ArrayLayout, BitmapPlace};
use super::recording::{self, DiskLog, Recording};
use crate::case::Filesystem;
use crate::logs::request_trace::{self, RqEvent, RqOp};
use crate::ondisk::bitmap::{internal_bitmap, Bitmap};
use crate::ondisk::log_writes::{self, LOG_FLUSH_FLAG};
use crate::ondisk::{ext4, redundancy, xfs};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const FILE: &str = "recording.json";
pub const TRACE: &str = "rq-trace.txt";
/// The trace marker written when the load starts: crash points begin there.
pub const LOAD_MARK: &str = "md-bitmap-bench: load";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordedDisk {
    pub name: String,
    pub dev: (u32, u32),
    /// Relative to the case directory.
    pub log: PathBuf,
    pub base: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BitmapFile {
    pub disk: String,
    pub fs: Filesystem,
    pub path: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordingFiles {
    pub disks: Vec<RecordedDisk>,
    /// Member disk names, in role order.
    pub members: Vec<String>,
    /// The bitmap file; `None` for an internal bitmap.
    pub bitmap_file: Option<BitmapFile>,
    /// A load a SIGKILL ended (a crash case): one state, the logged writes, and no power
    /// cut to explore.
    #[serde(default)]
    pub killed: bool,
}

/// A recording read back: the joined order, where the array lies, the images it starts
/// from.
pub struct Loaded {
    pub rec: Recording,
    pub layout: ArrayLayout,
    pub bases: Vec<PathBuf>,
}

impl RecordingFiles {
    pub fn write(&self, case_dir: &Path) -> Result<()> {
        let path = case_dir.join(FILE);
        std::fs::write(&path, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("write {}", path.display()))
    }

    pub fn read(case_dir: &Path) -> Result<Self> {
        let path = case_dir.join(FILE);
        let text = std::fs::read(&path).with_context(|| {
            format!(
                "read {} (a power-loss case directory whose disks were kept)",
                path.display()
            )
        })?;
        serde_json::from_slice(&text).with_context(|| format!("parse {}", path.display()))
    }

    /// Joins logs and trace and reads the array's layout from the images before the
    /// recording.
    pub fn load(&self, case_dir: &Path) -> Result<Loaded> {
        let rec = self.recording(case_dir)?;
        let bases: Vec<PathBuf> = self.disks.iter().map(|d| case_dir.join(&d.base)).collect();
        let layout = self.layout(&rec, &bases)?;
        Ok(Loaded { rec, layout, bases })
    }

    /// Joins logs and trace, without reading the images: what a report needs of a
    /// recording.
    pub fn recording(&self, case_dir: &Path) -> Result<Recording> {
        let disks = self
            .disks
            .iter()
            .map(|d| {
                let path = case_dir.join(&d.log);
                let bytes =
                    std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
                DiskLog::new(&d.name, d.dev, bytes)
                    .with_context(|| format!("decode {}", path.display()))
            })
            .collect::<Result<Vec<_>>>()?;
        self.assemble(case_dir, |_| disks)
    }

    /// The recording's order and times from the guest's trace alone, every write's data
    /// zeros: what a report draws once the logs are gone (a CI shard leaves them out, a
    /// full disk's sweep deletes them; the trace is small and stays). The requests are
    /// numbered as with the logs: every write the trace saw complete must be logged (it
    /// is an error otherwise), and a flush is in the order whether QEMU logged it or not,
    /// so logs made of the trace's own completions keep the same requests.
    pub fn timing(&self, case_dir: &Path) -> Result<Recording> {
        self.assemble(case_dir, |events| {
            self.disks
                .iter()
                .map(|d| {
                    let entries: Vec<(u64, u64, Vec<u8>)> = events
                        .iter()
                        .filter(|e| e.dev == d.dev && !e.issue && e.error == 0)
                        .filter_map(|e| match e.op {
                            RqOp::Write if e.sectors > 0 => {
                                Some((e.sector, 0, vec![0; e.sectors as usize * 512]))
                            }
                            RqOp::Flush => Some((0, LOG_FLUSH_FLAG, Vec::new())),
                            _ => None,
                        })
                        .collect();
                    let log = log_writes::encode(512, entries.len() as u64, &entries);
                    DiskLog::new(&d.name, d.dev, log).expect("a log in the format")
                })
                .collect()
        })
    }

    /// Reads the trace and joins it with the logs `disks` gives for its events.
    fn assemble(
        &self,
        case_dir: &Path,
        disks: impl FnOnce(&[RqEvent]) -> Vec<DiskLog>,
    ) -> Result<Recording> {
        let trace_path = case_dir.join(TRACE);
        let trace = std::fs::read_to_string(&trace_path)
            .with_context(|| format!("read {}", trace_path.display()))?;
        let (events, bad) = request_trace::parse(&trace);
        anyhow::ensure!(
            bad.is_empty(),
            "{}: {} lines of the guest's request trace do not parse, the first: {:?}",
            trace_path.display(),
            bad.len(),
            bad.first()
        );
        let start = if self.killed {
            0
        } else {
            recording::marker_position(&trace, LOAD_MARK).with_context(|| {
                format!(
                    "{}: the load's marker is not in the trace",
                    trace_path.display()
                )
            })?
        };
        let disks = disks(&events);
        let mut rec = if self.killed {
            recording::assemble_killed(disks, &events)?
        } else {
            recording::assemble(disks, &events, start)?
        };
        rec.set_unplugs(&request_trace::unplug_starts(&trace));
        rec.set_page_writes(&request_trace::page_writes(&trace));
        Ok(rec)
    }

    fn layout(&self, rec: &Recording, bases: &[PathBuf]) -> Result<ArrayLayout> {
        let index = |name: &str| {
            rec.disk_index(name)
                .with_context(|| format!("{name} is not a recorded disk"))
        };
        let members = self
            .members
            .iter()
            .map(|m| index(m))
            .collect::<Result<Vec<_>>>()?;
        let (bitmap, bytes) = match &self.bitmap_file {
            Some(b) => {
                let disk = index(&b.disk)?;
                let map = match b.fs {
                    Filesystem::Ext4 => ext4::locate(&bases[disk], &b.path)?,
                    Filesystem::Xfs => xfs::locate(&bases[disk], &b.path)?,
                };
                let bytes = ext4::read(&bases[disk], &map)?;
                (BitmapPlace::File { disk, map }, bytes)
            }
            None => {
                let disk = members[0];
                let mut f = std::fs::File::open(&bases[disk])
                    .with_context(|| format!("open {}", bases[disk].display()))?;
                let (offset, bytes) = internal_bitmap(&mut f)
                    .with_context(|| format!("the bitmap in {}", bases[disk].display()))?;
                (BitmapPlace::Internal { disk, offset }, bytes)
            }
        };
        let bm = Bitmap::decode(&bytes).context("the bitmap before the recording")?;
        let paths: Vec<PathBuf> = members.iter().map(|&m| bases[m].clone()).collect();
        let space = bm.sb.sync_size * 512;
        let judged = redundancy::judge_images(&paths, true, space, bm.chunk_bytes())?;
        Ok(ArrayLayout {
            members,
            superblocks: true,
            data_offsets: judged.data_offsets.iter().map(|o| o * 512).collect(),
            geometry: judged.geometry,
            chunk_bytes: bm.chunk_bytes(),
            space,
            bitmap,
            encoding: bm.sb.encoding(),
            base_divergent: judged.divergence.chunks.into_iter().collect(),
        })
    }
}
