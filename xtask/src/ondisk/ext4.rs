//! A file's bytes inside an ext4 image, read from the host after the VM is gone.
//!
//! After a crash the file's inode may exist only in the journal, so the metadata is read
//! from a copy of the image whose journal `e2fsck` has replayed; the data blocks are read
//! from the image itself, where md wrote them (straight to the device, past the journal).

use crate::host::echo;
use anyhow::{bail, Context, Result};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use xshell::{cmd, Shell};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileMap {
    pub block_size: u64,
    pub size: u64,
    /// Filesystem block numbers, in file order.
    pub blocks: Vec<u64>,
}

impl FileMap {
    /// Byte ranges of the image, merged where blocks are contiguous.
    pub fn extents(&self) -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64)> = Vec::new();
        for &b in &self.blocks {
            let start = b * self.block_size;
            match out.last_mut() {
                Some((s, len)) if *s + *len == start => *len += self.block_size,
                _ => out.push((start, self.block_size)),
            }
        }
        out
    }
}

/// Where `path`'s blocks lie in the ext4 `image`.
pub fn locate(image: &Path, path: &str) -> Result<FileMap> {
    let sh = Shell::new()?;
    let tmp = tempfile::Builder::new()
        .prefix(&crate::host::owner::temp_prefix("ext4-"))
        .tempdir()?;
    let _registered = crate::host::scratch::register(tmp.path());
    let copy = tmp.path().join("fs.img");
    echo::sh(cmd!(sh, "cp --sparse=always {image} {copy}"))
        .run()
        .context("copy the filesystem image")?;
    // 0: clean, 1: errors fixed, 2: fixed, reboot advised; anything above is a failure.
    let out = echo::sh(cmd!(sh, "e2fsck -fy {copy}"))
        .ignore_status()
        .output()?;
    if out.status.code().is_none_or(|c| c > 2) {
        bail!(
            "e2fsck {} failed ({}): {}",
            image.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let debugfs = |request: String| -> Result<String> {
        let out = echo::sh(cmd!(sh, "debugfs -R {request} {copy}"))
            .ignore_stderr()
            .read()?;
        Ok(out)
    };
    let stats = debugfs("stats".into())?;
    let block_size = field(&stats, "Block size:").context("debugfs stats: no block size")?;
    let stat = debugfs(format!("stat {path}"))?;
    let size = stat
        .split_whitespace()
        .skip_while(|w| *w != "Size:")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .with_context(|| {
            format!(
                "{path} not found in {} (debugfs stat said {stat:?})",
                image.display()
            )
        })?;
    let blocks = debugfs(format!("blocks {path}"))?
        .split_whitespace()
        .map(|b| {
            b.parse::<u64>()
                .with_context(|| format!("debugfs blocks {path}: {b:?}"))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(FileMap {
        block_size,
        size,
        blocks,
    })
}

fn field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(name))
        .and_then(|v| v.trim().parse().ok())
}

/// The file's bytes, read from `image` at the blocks of `map`.
pub fn read(image: &Path, map: &FileMap) -> Result<Vec<u8>> {
    let mut f = std::fs::File::open(image).with_context(|| format!("open {}", image.display()))?;
    let mut out = Vec::with_capacity(map.size as usize);
    let mut block = vec![0u8; map.block_size as usize];
    for &b in &map.blocks {
        f.seek(SeekFrom::Start(b * map.block_size))?;
        f.read_exact(&mut block)?;
        out.extend_from_slice(&block);
    }
    out.truncate(map.size as usize);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extents_merge_contiguous_blocks() {
        let m = FileMap {
            block_size: 4096,
            size: 5 * 4096,
            blocks: vec![10, 11, 12, 20, 21],
        };
        assert_eq!(m.extents(), [(40960, 3 * 4096), (81920, 2 * 4096)]);
    }

    /// A real ext4 image made by the host's mke2fs: the file written into it with debugfs
    /// reads back byte for byte through locate + read.
    #[test]
    fn locate_and_read_a_file_in_a_real_ext4_image() {
        let Some(_) = crate::host::find_command("mke2fs") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("fs.img");
        let src = dir.path().join("src");
        let data: Vec<u8> = (0..20000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&src, &data).unwrap();
        let sh = Shell::new().unwrap();
        cmd!(sh, "mke2fs -q -F -t ext4 -b 4096 {img} 16M")
            .run()
            .unwrap();
        let req = format!("write {} bitmap", src.display());
        cmd!(sh, "debugfs -w -R {req} {img}")
            .quiet()
            .ignore_stderr()
            .run()
            .unwrap();
        let map = locate(&img, "/bitmap").unwrap();
        assert_eq!(
            (map.size, map.block_size, map.blocks.len()),
            (20000, 4096, 5)
        );
        assert_eq!(read(&img, &map).unwrap(), data);
        assert!(locate(&img, "/missing")
            .unwrap_err()
            .to_string()
            .contains("not found"));
    }
}
