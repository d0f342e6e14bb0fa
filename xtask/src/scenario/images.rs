//! The readings of a case's disk images once its VM is gone: the bitmap as md left it on
//! disk, and the chunks where the members disagree. The readings are functions of the
//! images' bytes ([`bitmap_of_member`], [`judge`]); [`Scenario::read_images`] only finds
//! the images and keeps the bitmap beside the result.

use super::Scenario;
use crate::case::Filesystem;
use crate::ondisk::bitmap::Bitmap;
use crate::ondisk::llbitmap::{LlBitmap, BITMAP_MAJOR_LOCKLESS};
use crate::ondisk::redundancy::{self, Geometry};
use crate::ondisk::{self, ext4, xfs};
use anyhow::{Context, Result};
use std::io::{Read, Seek};

/// What the host reads from the images after a VM is gone.
pub struct Readings {
    pub bitmap: Bitmap,
    pub divergent: Vec<u64>,
    /// Bytes of bitmap space judged.
    pub bytes_compared: u64,
    /// Sectors.
    pub data_offsets: Vec<u64>,
    pub geometry: Geometry,
    /// For the lockless bitmap, how many chunks are in each state (`dirty`, `clean`, ...):
    /// the bitmap's own account, where `bitmap` keeps only what a reload resyncs.
    pub llbitmap_states: Option<std::collections::BTreeMap<&'static str, u64>>,
}

/// Decodes the bitmap and judges the members (each with the name its errors give) over the
/// bitmap space it covers, in its chunks.
pub fn judge<R: Read + Seek>(
    bitmap: &[u8],
    members: Vec<(String, R)>,
    superblocks: bool,
) -> Result<Readings> {
    judge_with(Bitmap::decode(bitmap)?, members, superblocks)
}

/// Judges the members over the space and in the chunks of a bitmap already decoded.
pub fn judge_with<R: Read + Seek>(
    bitmap: Bitmap,
    members: Vec<(String, R)>,
    superblocks: bool,
) -> Result<Readings> {
    let judged = redundancy::judge_members(
        members,
        superblocks,
        bitmap.sb.sync_size * 512,
        bitmap.chunk_bytes(),
    )?;
    Ok(Readings {
        bitmap,
        divergent: judged.divergence.chunks,
        bytes_compared: judged.divergence.bytes_compared,
        data_offsets: judged.data_offsets,
        geometry: judged.geometry,
        llbitmap_states: None,
    })
}

impl Scenario<'_, '_> {
    /// Reads the members' superblocks and data, and the bitmap (out of the filesystem
    /// image for a file, out of the first member for an internal one). The bitmap's bytes
    /// are kept as `bitmap-<label>.bin` beside the result.
    pub fn read_images(&self, label: &str) -> Result<Readings> {
        let (bytes, source) = if self.is_file() {
            let fs_image = self.image(&self.array.bitmap.disk);
            let map = match self.array.bitmap.fs {
                Filesystem::Ext4 => ext4::locate(&fs_image, &self.array.bitmap.path)?,
                Filesystem::Xfs => xfs::locate(&fs_image, &self.array.bitmap.path)?,
            };
            (ext4::read(&fs_image, &map)?, fs_image)
        } else {
            // The control: the bitmap md keeps inside the first member.
            let image = self.image(&self.array.members[0]);
            let mut f =
                std::fs::File::open(&image).with_context(|| format!("open {}", image.display()))?;
            (ondisk::bitmap::internal_bitmap(&mut f)?.1, image)
        };
        std::fs::write(self.case_dir.join(format!("bitmap-{label}.bin")), &bytes)?;
        let mut readings = judge(&bytes, self.member_images()?, !self.array.build)
            .with_context(|| format!("judge the images (bitmap read from {})", source.display()))?;
        if readings.bitmap.sb.version == BITMAP_MAJOR_LOCKLESS {
            readings.llbitmap_states = Some(LlBitmap::decode(&bytes)?.census());
        }
        Ok(readings)
    }

    /// The members judged over the space and chunks of `bitmap`, whatever the bitmap on
    /// disk is now (a file md refused, say).
    pub fn read_members_with(&self, bitmap: &Bitmap) -> Result<Readings> {
        judge_with(bitmap.clone(), self.member_images()?, !self.array.build)
    }

    /// Each member's md superblock as its image holds it, by member name; a member whose
    /// superblock cannot be read is left out (what it explains, it explains without it).
    pub fn member_superblocks(&self) -> Vec<(String, ondisk::superblock::MdSuper)> {
        self.array
            .members
            .iter()
            .filter_map(|m| {
                let mut f = std::fs::File::open(self.image(m)).ok()?;
                let size = f.metadata().ok()?.len();
                let (_, sb) = ondisk::superblock::read_from(&mut f, size).ok()?;
                Some((m.clone(), sb))
            })
            .collect()
    }

    fn member_images(&self) -> Result<Vec<(String, std::fs::File)>> {
        self.array
            .members
            .iter()
            .map(|m| {
                let path = self.image(m);
                std::fs::File::open(&path)
                    .with_context(|| format!("open {}", path.display()))
                    .map(|f| (path.display().to_string(), f))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ondisk::bitmap::{encode, BitmapSuper};
    use std::io::Cursor;

    /// A valid version-4 bitmap of `chunks` chunks of 4 KiB.
    fn bitmap(chunks: u64, dirty: &[u64]) -> Vec<u8> {
        let sb = BitmapSuper::new_v4([7; 16], chunks * 8, 4096, 5);
        encode(&sb, &[dirty.to_vec()]).expect("encodes")
    }

    fn mirror(len: usize, flip_at: Option<usize>) -> Vec<(String, Cursor<Vec<u8>>)> {
        let a = vec![7u8; len];
        let mut b = a.clone();
        if let Some(at) = flip_at {
            b[at] ^= 1;
        }
        vec![("m0".into(), Cursor::new(a)), ("m1".into(), Cursor::new(b))]
    }

    #[test]
    fn a_superblockless_mirror_is_judged_over_the_bitmaps_space() {
        let r = judge(
            &bitmap(16, &[2]),
            mirror(16 * 4096, Some(2 * 4096 + 5)),
            false,
        )
        .unwrap();
        assert_eq!(r.divergent, [2]);
        assert_eq!(r.bytes_compared, 16 * 4096);
        assert_eq!(r.bitmap.dirty_chunks(0), [2]);
        assert_eq!(r.data_offsets, [0, 0]);
        let same = judge(&bitmap(16, &[]), mirror(16 * 4096, None), false).unwrap();
        assert!(same.divergent.is_empty());
    }

    #[test]
    fn a_damaged_bitmap_or_a_member_without_superblock_is_an_error() {
        let mut bad = bitmap(16, &[]);
        bad[0] ^= 0xff;
        assert!(judge(&bad, mirror(16 * 4096, None), false).is_err());
        let Err(e) = judge(&bitmap(16, &[]), mirror(16 * 4096, None), true) else {
            panic!("a member without a superblock was judged");
        };
        assert!(format!("{e:#}").contains("md superblock of m0"), "{e:#}");
        assert!(ondisk::bitmap::internal_bitmap(&mut Cursor::new(vec![0u8; 1 << 20])).is_err());
    }
}
