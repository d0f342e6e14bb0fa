//! A file's blocks inside an XFS image, from the host, with `xfs_db` (read-only).
//!
//! XFS numbers blocks per allocation group; `bmap` prints each extent as
//! `startblock N (agno/agbno)`, and the linear block is `agno * agblocks + agbno`. The
//! reader sees what is in place on disk, not what is only in the log: the scenario freezes
//! the filesystem once the bitmap file exists, which writes its metadata home.

use super::ext4::FileMap;
use crate::host::echo;
use anyhow::{bail, Context, Result};
use std::path::Path;
use xshell::{cmd, Shell};

pub fn locate(image: &Path, path: &str) -> Result<FileMap> {
    let sh = Shell::new()?;
    let sb = echo::sh(cmd!(
        sh,
        "xfs_db -r -c sb -c 'print blocksize agblocks' {image}"
    ))
    .read()
    .with_context(|| format!("xfs_db on {}", image.display()))?;
    let block_size = field(&sb, "blocksize").context("xfs_db sb: no blocksize")?;
    let agblocks = field(&sb, "agblocks").context("xfs_db sb: no agblocks")?;
    let path_cmd = format!("path {path}");
    let out = echo::sh(cmd!(
        sh,
        "xfs_db -r -c {path_cmd} -c 'print core.size' -c bmap {image}"
    ))
    .read()
    .with_context(|| format!("xfs_db path {path} on {}", image.display()))?;
    let size = field(&out, "core.size").with_context(|| {
        format!(
            "{path} not found in {} (xfs_db said {out:?})",
            image.display()
        )
    })?;
    let blocks = parse_bmap(&out, agblocks)?;
    if (blocks.len() as u64) * block_size < size {
        bail!(
            "{path} in {}: {} blocks mapped for {size} bytes (a hole or a delayed allocation)",
            image.display(),
            blocks.len()
        );
    }
    Ok(FileMap {
        block_size,
        size,
        blocks,
    })
}

fn field(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(" = ")?;
        (k.trim() == name).then(|| v.trim().parse().ok())?
    })
}

/// Linear block numbers in file order from `bmap` lines such as
/// `data offset 0 startblock 24 (0/24) count 2 flag 0`; a hole is an error.
pub fn parse_bmap(text: &str, agblocks: u64) -> Result<Vec<u64>> {
    let mut blocks = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("data offset ")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let num = |key: &str| -> Result<u64> {
            let i = words
                .iter()
                .position(|w| *w == key)
                .with_context(|| format!("bmap line {line:?}: no {key}"))?;
            words
                .get(i + 1)
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("bmap line {line:?}: bad {key}"))
        };
        let (offset, count) = (num("offset")?, num("count")?);
        let ag = words
            .iter()
            .find(|w| w.starts_with('(') && w.ends_with(')'))
            .and_then(|w| w.trim_matches(|c| c == '(' || c == ')').split_once('/'))
            .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)))
            .with_context(|| format!("bmap line {line:?}: no (agno/agbno)"))?;
        if offset != blocks.len() as u64 {
            bail!("bmap: a hole before file block {offset}");
        }
        let start = ag.0 * agblocks + ag.1;
        blocks.extend(start..start + count);
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extents_in_later_allocation_groups_are_made_linear() {
        let text = "core.size = 20480\n\
                    data offset 0 startblock 8388632 (1/24) count 2 flag 0\n\
                    data offset 2 startblock 100 (0/100) count 3 flag 0\n";
        assert_eq!(
            parse_bmap(text, 20480).unwrap(),
            vec![20504, 20505, 100, 101, 102]
        );
        assert_eq!(field(text, "core.size"), Some(20480));
    }

    #[test]
    fn a_hole_is_refused() {
        let text = "data offset 0 startblock 5 (0/5) count 1 flag 0\n\
                    data offset 3 startblock 9 (0/9) count 1 flag 0\n";
        assert!(parse_bmap(text, 1000)
            .unwrap_err()
            .to_string()
            .contains("hole before file block 3"));
    }
}
