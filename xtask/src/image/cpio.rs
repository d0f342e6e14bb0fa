//! The initramfs as a list of nodes, written as a cpio "newc" archive (the format the
//! kernel unpacks) with the `cpio` crate.

use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::io::{self, Write};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Relative to the root, no leading `/`.
    pub path: String,
    pub kind: NodeKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    Dir,
    Symlink(String),
    File { mode: u32, source: Source },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Host(PathBuf),
    Bytes(Vec<u8>),
}

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;

impl Node {
    pub fn dir(path: &str) -> Self {
        Self {
            path: path.into(),
            kind: NodeKind::Dir,
        }
    }
    pub fn symlink(path: &str, target: &str) -> Self {
        Self {
            path: path.into(),
            kind: NodeKind::Symlink(target.into()),
        }
    }
    pub fn host_file(path: &str, host: PathBuf, mode: u32) -> Self {
        Self {
            path: path.into(),
            kind: NodeKind::File {
                mode,
                source: Source::Host(host),
            },
        }
    }
    pub fn bytes(path: &str, data: Vec<u8>, mode: u32) -> Self {
        Self {
            path: path.into(),
            kind: NodeKind::File {
                mode,
                source: Source::Bytes(data),
            },
        }
    }

    /// Feeds what the archive would hold of this node (content, not host paths) to `h`.
    pub fn hash_into(&self, h: &mut Sha256) {
        h.update(self.path.as_bytes());
        h.update([0]);
        match &self.kind {
            NodeKind::Dir => h.update(b"d"),
            NodeKind::Symlink(t) => {
                h.update(b"l");
                h.update(t.as_bytes());
            }
            NodeKind::File { mode, source } => {
                h.update(b"f");
                h.update(mode.to_le_bytes());
                match source {
                    // An unreadable file hashes as its path; reading it to write the
                    // archive then reports the error.
                    Source::Host(p) => match std::fs::read(p) {
                        Ok(data) => h.update(&data),
                        Err(_) => h.update(p.to_string_lossy().as_bytes()),
                    },
                    Source::Bytes(data) => h.update(data),
                }
            }
        }
        h.update([0]);
    }
}

/// Writes `nodes` as one archive: every directory a node implies, parents before
/// children, then the rest in the given order (a later node of the same path wins).
pub fn write<W: Write>(nodes: &[Node], out: W) -> io::Result<W> {
    let mut dirs = BTreeSet::new();
    let links: BTreeSet<&str> = nodes
        .iter()
        .filter(|n| matches!(n.kind, NodeKind::Symlink(_)))
        .map(|n| n.path.as_str())
        .collect();
    for n in nodes {
        let mut parts: Vec<&str> = n.path.split('/').collect();
        if !matches!(n.kind, NodeKind::Dir) {
            parts.pop();
        }
        for i in 1..=parts.len() {
            let d = parts[..i].join("/");
            if !links.contains(d.as_str()) {
                dirs.insert(d);
            }
        }
    }
    let mut out = out;
    let mut ino = 1u32;
    let mut header = |name: &str, mode: u32| {
        ino += 1;
        cpio::NewcBuilder::new(name).ino(ino).mode(mode).nlink(1)
    };
    for d in &dirs {
        out = header(d, S_IFDIR | 0o755).nlink(2).write(out, 0).finish()?;
    }
    let mut seen = BTreeSet::new();
    for n in nodes.iter().rev() {
        if matches!(n.kind, NodeKind::Dir) || !seen.insert(n.path.as_str()) {
            continue;
        }
        let (mode, data) = match &n.kind {
            NodeKind::Dir => unreachable!(),
            NodeKind::Symlink(t) => (S_IFLNK | 0o777, t.as_bytes().to_vec()),
            NodeKind::File {
                mode,
                source: Source::Bytes(b),
            } => (S_IFREG | mode, b.clone()),
            NodeKind::File {
                mode,
                source: Source::Host(p),
            } => (
                S_IFREG | mode,
                std::fs::read(p)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))?,
            ),
        };
        let size = u32::try_from(data.len())
            .map_err(|_| io::Error::other(format!("{} is over 4 GiB", n.path)))?;
        let mut w = header(&n.path, mode).write(out, size);
        w.write_all(&data)?;
        out = w.finish()?;
    }
    cpio::newc::trailer(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn read_back(archive: &[u8]) -> Vec<(String, u32, Vec<u8>)> {
        let mut entries = Vec::new();
        let mut rest = archive;
        loop {
            let mut r = cpio::NewcReader::new(rest).unwrap();
            if r.entry().is_trailer() {
                return entries;
            }
            let (name, mode) = (r.entry().name().to_string(), r.entry().mode());
            let mut data = Vec::new();
            r.read_to_end(&mut data).unwrap();
            entries.push((name, mode, data));
            rest = r.finish().unwrap();
        }
    }

    #[test]
    fn archive_reads_back_with_implied_parents_first_and_last_node_winning() {
        let nodes = vec![
            Node::symlink("lib", "usr/lib"),
            Node::bytes("usr/lib/modules/6.12/md-mod.ko", b"old".to_vec(), 0o644),
            Node::bytes("init", b"#!/bin/sh\n".to_vec(), 0o755),
            Node::bytes("usr/lib/modules/6.12/md-mod.ko", b"new".to_vec(), 0o644),
            Node::dir("proc"),
        ];
        let archive = write(&nodes, Vec::new()).unwrap();
        assert_eq!(archive.len() % 4, 0);
        let entries = read_back(&archive);
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "proc",
                "usr",
                "usr/lib",
                "usr/lib/modules",
                "usr/lib/modules/6.12",
                "usr/lib/modules/6.12/md-mod.ko",
                "init",
                "lib"
            ]
        );
        let ko = entries.iter().find(|e| e.0.ends_with("md-mod.ko")).unwrap();
        assert_eq!((ko.1, ko.2.as_slice()), (S_IFREG | 0o644, &b"new"[..]));
        let lib = entries.iter().find(|e| e.0 == "lib").unwrap();
        assert_eq!(
            (lib.1, lib.2.as_slice()),
            (S_IFLNK | 0o777, &b"usr/lib"[..])
        );
    }

    #[test]
    fn hash_changes_with_content_not_with_nothing() {
        let h = |n: &Node| {
            let mut s = Sha256::new();
            n.hash_into(&mut s);
            s.finalize()
        };
        let a = Node::bytes("x", b"1".to_vec(), 0o644);
        assert_eq!(h(&a), h(&a.clone()));
        assert_ne!(h(&a), h(&Node::bytes("x", b"2".to_vec(), 0o644)));
        assert_ne!(h(&a), h(&Node::bytes("x", b"1".to_vec(), 0o755)));
    }
}
