//! The bytes of a crash state without building its images: each disk's image from before
//! the recording, with the surviving writes laid over it in the order the disk completed
//! them (a later write to a sector wins only if it survives).

use super::recording::Recording;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Granularity of the index from disk bytes to the writes that cover them.
const BLOCK: u64 = 4096;

/// Which requests survive in the state being read.
pub type Survives<'a> = &'a dyn Fn(usize) -> bool;

pub struct DiskViews<'r> {
    pub rec: &'r Recording,
    bases: Vec<File>,
    pub sizes: Vec<u64>,
    /// Per disk: block -> writes touching it, in the disk's completion order.
    index: Vec<HashMap<u64, Vec<usize>>>,
}

impl<'r> DiskViews<'r> {
    /// `bases[i]` is disk `i`'s image from before the recording began.
    pub fn open(rec: &'r Recording, bases: &[&Path]) -> anyhow::Result<Self> {
        use anyhow::Context;
        let files = bases
            .iter()
            .map(|p| File::open(p).with_context(|| format!("open {}", p.display())))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let sizes = files
            .iter()
            .map(|f| f.metadata().map(|m| m.len()))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Self::new(rec, files, sizes))
    }

    pub fn new(rec: &'r Recording, bases: Vec<File>, sizes: Vec<u64>) -> Self {
        let mut index = vec![HashMap::<u64, Vec<usize>>::new(); rec.disks.len()];
        let mut order: Vec<usize> = (0..rec.requests.len())
            .filter(|&r| rec.requests[r].sectors > 0)
            .collect();
        order.sort_by_key(|&r| (rec.requests[r].disk, rec.requests[r].log_index));
        for r in order {
            let q = &rec.requests[r];
            let b = q.bytes();
            for block in b.start / BLOCK..b.end.div_ceil(BLOCK) {
                index[q.disk].entry(block).or_default().push(r);
            }
        }
        Self {
            rec,
            bases,
            sizes,
            index,
        }
    }

    /// The writes that touch `len` bytes at `off` of `disk`, ascending, without repeats.
    pub fn touching(&self, disk: usize, off: u64, len: u64) -> Vec<usize> {
        let mut out: Vec<usize> = (off / BLOCK..(off + len).div_ceil(BLOCK))
            .filter_map(|b| self.index[disk].get(&b))
            .flatten()
            .copied()
            .filter(|&r| {
                let b = self.rec.requests[r].bytes();
                b.start < off + len && off < b.end
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Fills `buf` with the state's bytes of `disk` at `off`.
    pub fn read(
        &self,
        disk: usize,
        off: u64,
        buf: &mut [u8],
        survives: Survives,
    ) -> io::Result<()> {
        let end = off + buf.len() as u64;
        let have = self.sizes[disk].saturating_sub(off).min(buf.len() as u64) as usize;
        self.bases[disk].read_exact_at(&mut buf[..have], off)?;
        buf[have..].fill(0);
        for block in off / BLOCK..end.div_ceil(BLOCK) {
            let Some(writes) = self.index[disk].get(&block) else {
                continue;
            };
            let (lo, hi) = ((block * BLOCK).max(off), ((block + 1) * BLOCK).min(end));
            // The newest survivor covering the whole piece hides every write before it.
            let from = writes
                .iter()
                .rposition(|&r| {
                    let b = self.rec.requests[r].bytes();
                    b.start <= lo && hi <= b.end && survives(r)
                })
                .unwrap_or(0);
            for &r in writes[from..].iter().filter(|&&r| survives(r)) {
                let q = &self.rec.requests[r];
                let b = q.bytes();
                let (s, e) = (b.start.max(lo), b.end.min(hi));
                if s >= e {
                    continue;
                }
                let data = self.rec.data(q);
                buf[(s - off) as usize..(e - off) as usize]
                    .copy_from_slice(&data[(s - b.start) as usize..(e - b.start) as usize]);
            }
        }
        Ok(())
    }

    /// What decides one byte across states that differ only in the `undecided` writes,
    /// every other write surviving or not as `survives` says: in each, the newest
    /// surviving write that covers it, else the image from before the recording.
    pub fn byte_fate(
        &self,
        disk: usize,
        at: u64,
        undecided: Survives,
        survives: Survives,
    ) -> ByteFate {
        let mut fate = ByteFate {
            undecided: Vec::new(),
            otherwise: None,
        };
        for &r in self.index[disk]
            .get(&(at / BLOCK))
            .into_iter()
            .flatten()
            .rev()
        {
            let q = &self.rec.requests[r];
            let b = q.bytes();
            if !b.contains(&at) {
                continue;
            }
            let byte = self.rec.data(q)[(at - b.start) as usize];
            if undecided(r) {
                fate.undecided.push((r, byte));
            } else if survives(r) {
                fate.otherwise = Some(byte);
                break;
            }
        }
        fate
    }

    /// One byte of `disk`'s image from before the recording.
    pub fn base_byte(&self, disk: usize, at: u64) -> io::Result<u8> {
        let mut one = [0u8];
        self.bases[disk].read_exact_at(&mut one, at)?;
        Ok(one[0])
    }

    /// A reader of the whole state of `disk`, for the decoders that take one.
    pub fn reader<'v>(&'v self, disk: usize, survives: Survives<'v>) -> StateReader<'v, 'r> {
        StateReader {
            views: self,
            disk,
            survives,
            pos: 0,
        }
    }
}

/// One byte of the states of a crash point: [`DiskViews::byte_fate`].
#[derive(Debug, Clone)]
pub struct ByteFate {
    /// The undecided writes covering the byte, newest first, each with the byte it
    /// carries; only those newer than the newest decided survivor.
    undecided: Vec<(usize, u8)>,
    /// The byte when none of them survives; `None`: the image's from before the
    /// recording.
    otherwise: Option<u8>,
}

impl ByteFate {
    /// Whether the image from before the recording shows when none of the undecided
    /// writes survives.
    pub fn shows_base(&self) -> bool {
        self.otherwise.is_none()
    }

    /// The byte in the state `survives` describes; `None`: the image's from before the
    /// recording.
    pub fn byte(&self, survives: Survives) -> Option<u8> {
        self.undecided
            .iter()
            .find(|&&(r, _)| survives(r))
            .map_or(self.otherwise, |&(_, b)| Some(b))
    }
}

pub struct StateReader<'v, 'r> {
    views: &'v DiskViews<'r>,
    disk: usize,
    survives: Survives<'v>,
    pos: u64,
}

impl Read for StateReader<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let size = self.views.sizes[self.disk];
        let n = (size.saturating_sub(self.pos)).min(buf.len() as u64) as usize;
        self.views
            .read(self.disk, self.pos, &mut buf[..n], self.survives)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for StateReader<'_, '_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let size = self.views.sizes[self.disk] as i128;
        let new = match to {
            SeekFrom::Start(n) => n as i128,
            SeekFrom::End(d) => size + d as i128,
            SeekFrom::Current(d) => self.pos as i128 + d as i128,
        };
        if new < 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "seek before 0"));
        }
        self.pos = new as u64;
        Ok(self.pos)
    }
}
