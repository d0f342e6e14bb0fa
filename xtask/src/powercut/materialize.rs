//! A crash state written out as disk images, so that `examine` and a real assembly can be
//! run on it: the images from before the recording with the state's surviving writes laid
//! over them in each disk's completion order.

use super::model::{DiskModel, Fate, Walker};
use super::recording::Recording;
use anyhow::{Context, Result};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Writes `<out>/<disk>.img` for every disk: `bases[i]` with what survives a cut after
/// `point` events under `model`, keeping of the undecided writes only `survivors`.
/// Returns the images' paths.
pub fn write_state(
    rec: &Recording,
    bases: &[&Path],
    model: DiskModel,
    point: usize,
    survivors: &[usize],
    out: &Path,
) -> Result<Vec<PathBuf>> {
    let mut walker = Walker::new(rec, model);
    while walker.applied() < point.min(rec.events.len()) {
        walker.step();
    }
    std::fs::create_dir_all(out).with_context(|| format!("create {}", out.display()))?;
    let mut paths = Vec::new();
    for (d, disk) in rec.disks.iter().enumerate() {
        let path = out.join(format!("{}.img", disk.name));
        std::fs::copy(bases[d], &path)
            .with_context(|| format!("copy {} to {}", bases[d].display(), path.display()))?;
        let mut f = std::fs::OpenOptions::new().write(true).open(&path)?;
        let mut writes: Vec<usize> = (0..rec.requests.len())
            .filter(|&r| rec.requests[r].disk == d && rec.requests[r].sectors > 0)
            .filter(|&r| match walker.fate(r) {
                Fate::Durable => true,
                Fate::Maybe => survivors.contains(&r),
                Fate::Absent => false,
            })
            .collect();
        writes.sort_by_key(|&r| rec.requests[r].log_index);
        for r in writes {
            let q = &rec.requests[r];
            f.seek(SeekFrom::Start(q.sector * 512))?;
            f.write_all(rec.data(q))?;
        }
        f.sync_all()?;
        paths.push(path);
    }
    Ok(paths)
}
