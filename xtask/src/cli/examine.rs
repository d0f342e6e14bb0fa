//! `cargo xtask examine PATH`: what a bitmap file or an md member holds, read on the host.
//!
//! A bitmap file (it starts with "bitm") gets exactly what `mdadm -X PATH` prints
//! ([`Bitmap::mdadm_x_report`]), then its dirty chunks as merged ranges and the bytes of the
//! array's data area they cover. A member image or device gets a short summary of its md
//! v1.x superblock and, when the array has an internal bitmap, the same bitmap report for
//! the bitmap stored on the member.
//!
//! Layout of the output for a member (the bitmap part is the same for a bitmap file):
//!
//! ```text
//!       Superblock : md 1.2 at sector 8
//!       Array UUID : 11223344:55667788:99aabbcc:ddeeff00
//!       Raid Level : raid1
//!     Raid Devices : 2
//!           Events : 21
//!      Data Offset : 2048 sectors
//!        Data Size : 129024 sectors
//!      Device Role : Active device 1
//!  Internal Bitmap : 8 sectors from superblock (sector 16)
//!
//!         Filename : disk.img            <- from here to the Dirty lines: mdadm -X
//!            Magic : 6d746962
//! ...
//!           Bitmap : 1008 bits (chunks), 16 dirty (1.6%)
//!     Dirty chunks : 50-65
//!      Dirty bytes : 3276800..4325376 (1048576 bytes)
//! ```
//!
//! Byte ranges are half-open offsets into the array's data area (for a member, add
//! `Data Offset` sectors to find them on the member). A clustered bitmap has one
//! `Dirty chunks` and one `Dirty bytes` line per node, each starting `node N:`.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{anyhow, Context, Result};

use crate::check::ranges;
use crate::ondisk::bitmap::{Bitmap, BitmapSuper, BITMAP_MAGIC, BITMAP_SUPER_LEN};
use crate::ondisk::superblock::{self, DevRole, MdSuper, SuperVersion};

/// `cargo xtask examine PATH...`: each path's report, a blank line between them. Given
/// a bitmap file and members of its array together, also what md would make of the file
/// at assembly; the status is 1 when md would refuse it.
pub fn run(paths: &[std::path::PathBuf]) -> Result<u8> {
    let mut bitmaps = Vec::new();
    let mut members = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let (text, found) = read(path)?;
        print!("{}{text}", if i > 0 { "\n" } else { "" });
        match found {
            Found::BitmapFile(b) => bitmaps.push((path.display().to_string(), b)),
            Found::Member(sb) => members.push(sb),
        }
    }
    let mut refused = false;
    if let Some(member) = members.iter().max_by_key(|m| m.events) {
        for (name, b) in &bitmaps {
            println!();
            for v in against_array(b, member) {
                refused |= v.refused;
                println!("{name}: {}", v.text);
            }
        }
    }
    Ok(if refused {
        crate::result::exit::CASE_FAILED
    } else {
        crate::result::exit::OK
    })
}

/// What md would make of a bitmap file, told against the array's superblock.
pub struct Judgement {
    pub refused: bool,
    pub text: String,
}

/// md_bitmap_read_sb's checks of a file against its array (6.12): the UUID must match
/// (else the file is refused), events behind the array's force a full recovery, and a
/// sync size that disagrees is rewritten from the array.
pub fn against_array(b: &Bitmap, array: &MdSuper) -> Vec<Judgement> {
    let mut out = Vec::new();
    if b.sb.uuid != array.set_uuid {
        out.push(Judgement {
            refused: true,
            text: format!(
                "md refuses it: bitmap superblock UUID mismatch (the file's {}, the array's {})",
                mdadm_uuid(&b.sb.uuid),
                mdadm_uuid(&array.set_uuid)
            ),
        });
        return out;
    }
    if b.sb.events < array.events {
        out.push(Judgement {
            refused: false,
            text: format!(
                "md recovers in full: the file is out of date (events {} < the array's {})",
                b.sb.events, array.events
            ),
        });
    }
    // resync_max_sectors is the member size for these levels (raid10's is the array's).
    if matches!(array.level, 1 | 4 | 5 | 6) && b.sb.sync_size != array.size {
        out.push(Judgement {
            refused: false,
            text: format!(
                "sync_size {} sectors disagrees with the array's {} (md rewrites it and keeps the bits)",
                b.sb.sync_size, array.size
            ),
        });
    }
    if out.is_empty() {
        out.push(Judgement {
            refused: false,
            text: "md takes it and trusts its bits (UUID and events match the array)".into(),
        });
    }
    out
}

/// What a path holds.
enum Found {
    BitmapFile(Bitmap),
    Member(MdSuper),
}

/// The report for one path: a bitmap file or an md member (image file or block device).
/// The error names the path and why it is neither.
pub fn examine(path: &Path) -> Result<String> {
    read(path).map(|(text, _)| text)
}

fn read(path: &Path) -> Result<(String, Found)> {
    let shown = path.display().to_string();
    let mut file = File::open(path).with_context(|| format!("{shown}: open"))?;
    // A block device's metadata says 0 bytes; seeking to the end gives its size.
    let size = file
        .seek(SeekFrom::End(0))
        .with_context(|| format!("{shown}: find its size"))?;
    let head = read_at(&mut file, 0, 4).with_context(|| format!("{shown}: read"))?;

    let mut bitmap_err = None;
    if head == BITMAP_MAGIC.to_le_bytes() {
        match read_bitmap(&mut file, 0, size) {
            Ok(bm) => return Ok((bitmap_report(&bm, &shown), Found::BitmapFile(bm))),
            // A 1.0 member's data area starts at byte 0 and could begin with "bitm":
            // look for a superblock before giving up.
            Err(e) => bitmap_err = Some(e),
        }
    }
    let (version, sb) = match superblock::read_from(&mut file, size) {
        Ok(found) => found,
        Err(e) => {
            return Err(match bitmap_err {
                Some(b) => anyhow!(
                    "{shown}: starts with the bitmap magic \"bitm\" but is not a bitmap md \
                     would read ({b:#}), and holds no md superblock either ({e})"
                ),
                None => anyhow!(
                    "{shown}: neither a bitmap file (magic {:#010x} at byte 0, a bitmap's is \
                     {BITMAP_MAGIC:#010x}) nor an md member ({e})",
                    u32::from_le_bytes(
                        [head.as_slice(), &[0; 4]].concat()[..4]
                            .try_into()
                            .expect("4 bytes")
                    )
                ),
            })
        }
    };
    let mut out = member_summary(version, &sb);
    match sb.bitmap_sector() {
        None => out.push_str("  Internal Bitmap : none\n"),
        Some(sector) => {
            let at = sector
                .checked_mul(512)
                .ok_or_else(|| anyhow!("{shown}: bitmap sector {sector} is past any device"))?;
            let bm = read_bitmap(&mut file, at, size).with_context(|| {
                format!("{shown}: the md {version} superblock names an internal bitmap at sector {sector}")
            })?;
            out.push('\n');
            out.push_str(&bitmap_report(&bm, &shown));
        }
    }
    Ok((out, Found::Member(sb)))
}

/// `mdadm -X`'s text for `bm` with `filename`, then the dirty chunks and bytes.
pub fn bitmap_report(bm: &Bitmap, filename: &str) -> String {
    let mut out = bm.mdadm_x_report(filename);
    let clustered = bm.node_count() > 1;
    for node in 0..bm.node_count() {
        let prefix = if clustered {
            format!("node {node}: ")
        } else {
            String::new()
        };
        let chunks = bm.dirty_chunks(node);
        let chunk_text = if chunks.is_empty() {
            "none".to_string()
        } else {
            ranges(chunks)
        };
        let bytes = bm.dirty_byte_ranges(node);
        let total: u64 = bytes.iter().map(|r| r.end - r.start).sum();
        let byte_text = if bytes.is_empty() {
            "none".to_string()
        } else {
            let list: Vec<String> = bytes
                .iter()
                .map(|r| format!("{}..{}", r.start, r.end))
                .collect();
            format!("{} ({total} bytes)", list.join(", "))
        };
        let _ = writeln!(out, "    Dirty chunks : {prefix}{chunk_text}");
        let _ = writeln!(out, "     Dirty bytes : {prefix}{byte_text}");
    }
    out
}

/// The superblock lines, in mdadm --examine's words where it has them.
fn member_summary(version: SuperVersion, sb: &MdSuper) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "       Superblock : md {version} at sector {}",
        sb.super_offset
    );
    let _ = writeln!(out, "       Array UUID : {}", mdadm_uuid(&sb.set_uuid));
    if !sb.set_name.is_empty() {
        let _ = writeln!(out, "             Name : {}", sb.set_name);
    }
    let _ = writeln!(out, "       Raid Level : {}", level_name(sb.level));
    let _ = writeln!(out, "     Raid Devices : {}", sb.raid_disks);
    let _ = writeln!(out, "           Events : {}", sb.events);
    let _ = writeln!(out, "      Data Offset : {} sectors", sb.data_offset);
    let _ = writeln!(out, "        Data Size : {} sectors", sb.data_size);
    let _ = writeln!(out, "      Device Role : {}", role_name(sb.role()));
    if let (Some(offset), Some(sector)) = (sb.bitmap_offset, sb.bitmap_sector()) {
        let _ = writeln!(
            out,
            "  Internal Bitmap : {offset} sectors from superblock (sector {sector})"
        );
    }
    out
}

/// 16 bytes in on-disk order, a colon every 4: how mdadm prints a 1.x array UUID.
fn mdadm_uuid(uuid: &[u8; 16]) -> String {
    uuid.chunks(4)
        .map(hex::encode)
        .collect::<Vec<_>>()
        .join(":")
}

/// mdadm's names for `level` (maps.c `pers`).
fn level_name(level: i32) -> String {
    match level {
        -4 => "multipath".into(),
        -5 => "faulty".into(),
        -1 => "linear".into(),
        0 | 1 | 4 | 5 | 6 | 10 => format!("raid{level}"),
        other => format!("unknown level {other}"),
    }
}

fn role_name(role: DevRole) -> String {
    match role {
        DevRole::Active(slot) => format!("Active device {slot}"),
        DevRole::Spare => "spare".into(),
        DevRole::Faulty => "faulty".into(),
        DevRole::Journal => "Journal".into(),
        DevRole::Reserved(raw) => format!("reserved role {raw:#06x}"),
    }
}

/// The bitmap whose superblock starts at byte `at`: the superblock, then as many bytes as
/// it says the bitmap needs.
fn read_bitmap(file: &mut File, at: u64, size: u64) -> Result<Bitmap> {
    let head = read_at(file, at, BITMAP_SUPER_LEN as u64)?;
    let sb = BitmapSuper::decode(&head)?;
    let need = sb.required_len()?;
    if at.saturating_add(need) > size {
        anyhow::bail!(
            "the bitmap needs {need} bytes from byte {at}, but only {} are there",
            size.saturating_sub(at)
        );
    }
    let bytes = read_at(file, at, need)?;
    Ok(Bitmap::decode(&bytes)?)
}

/// Up to `len` bytes at `offset`; fewer at the end of the file.
fn read_at(file: &mut File, offset: u64, len: u64) -> Result<Vec<u8>> {
    file.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::new();
    file.take(len).read_to_end(&mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ondisk::bitmap::encode;
    use crate::ondisk::superblock::{MD_FEATURE_BITMAP_OFFSET, MD_SB_MAGIC};

    const UUID: [u8; 16] = *b"\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff\x00";
    const DEV: u64 = 4 << 20;

    /// 1000 chunks of 64 KiB; the last is half a chunk (sync_size is not a multiple).
    fn bitmap_sb() -> BitmapSuper {
        BitmapSuper {
            events: 40,
            events_cleared: 38,
            ..BitmapSuper::new_v4(UUID, 999 * 128 + 64, 65536, 5)
        }
    }

    /// A 1.2 member of `DEV` bytes (minimal copy of superblock.rs's test encoder): the
    /// superblock at sector 8, `bitmap_offset` sectors after it when given, data at 2048.
    fn member(bitmap_offset: Option<i32>, bitmap: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 256 + 2 * 2];
        let p32 = |b: &mut [u8], o: usize, v: u32| b[o..o + 4].copy_from_slice(&v.to_le_bytes());
        let p64 = |b: &mut [u8], o: usize, v: u64| b[o..o + 8].copy_from_slice(&v.to_le_bytes());
        let data_size = DEV / 512 - 2048;
        p32(&mut b, 0, MD_SB_MAGIC);
        p32(&mut b, 4, 1); // major_version
        p32(
            &mut b,
            8,
            bitmap_offset.map_or(0, |_| MD_FEATURE_BITMAP_OFFSET),
        );
        b[16..32].copy_from_slice(&UUID);
        b[32..39].copy_from_slice(b"bench:1");
        p64(&mut b, 64, 1_700_000_000); // ctime
        p32(&mut b, 72, 1); // level
        p64(&mut b, 80, data_size); // size
        p32(&mut b, 92, 2); // raid_disks
        p32(&mut b, 96, bitmap_offset.unwrap_or(0) as u32);
        p64(&mut b, 128, 2048); // data_offset
        p64(&mut b, 136, data_size);
        p64(&mut b, 144, 8); // super_offset
        p32(&mut b, 160, 1); // dev_number
        p64(&mut b, 200, 40); // events
        p64(&mut b, 208, u64::MAX); // resync_offset
        p32(&mut b, 220, 2); // max_dev
        b[256..260].copy_from_slice(&[0, 0, 1, 0]); // dev_roles [0, 1]
        let csum = superblock::calc_sb_1_csum(&b, 2).unwrap();
        p32(&mut b, 216, csum);

        let mut dev = vec![0u8; DEV as usize];
        dev[4096..4096 + b.len()].copy_from_slice(&b);
        if let Some(off) = bitmap_offset {
            let at = ((8 + i64::from(off)) * 512) as usize;
            dev[at..at + bitmap.len()].copy_from_slice(bitmap);
        }
        dev
    }

    fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn bitmap_file_is_mdadm_x_then_dirty_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = encode(&bitmap_sb(), &[vec![3, 4, 5, 6, 7, 12, 999]]).unwrap();
        let path = write(&dir, "bitmap", &bytes);
        let out = examine(&path).unwrap();
        let bm = Bitmap::decode(&bytes).unwrap();
        let mdadm = bm.mdadm_x_report(&path.display().to_string());
        assert!(out.starts_with(&mdadm), "{out}");
        assert!(mdadm.contains("Bitmap : 1000 bits (chunks), 7 dirty (0.7%)"));
        // The last chunk is clipped to sync_size: 999 * 64 KiB + 32 KiB.
        assert_eq!(
            &out[mdadm.len()..],
            "    Dirty chunks : 3-7, 12, 999\n\
             \x20    Dirty bytes : 196608..524288, 786432..851968, 65470464..65503232 \
             (425984 bytes)\n"
        );
    }

    #[test]
    fn clean_bitmap_says_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "b", &encode(&bitmap_sb(), &[]).unwrap());
        let out = examine(&path).unwrap();
        assert!(out.contains("Bitmap : 1000 bits (chunks), 0 dirty (0.0%)\n"));
        assert!(out.ends_with("    Dirty chunks : none\n     Dirty bytes : none\n"));
    }

    #[test]
    fn clustered_bitmap_has_a_line_per_node() {
        let dir = tempfile::tempdir().unwrap();
        let sb = BitmapSuper {
            version: 5,
            nodes: 2,
            cluster_name: "c".into(),
            ..bitmap_sb()
        };
        let path = write(&dir, "b", &encode(&sb, &[vec![0], vec![1, 2]]).unwrap());
        let out = examine(&path).unwrap();
        assert!(out.ends_with(
            "    Dirty chunks : node 0: 0\n\
             \x20    Dirty bytes : node 0: 0..65536 (65536 bytes)\n\
             \x20   Dirty chunks : node 1: 1-2\n\
             \x20    Dirty bytes : node 1: 65536..196608 (131072 bytes)\n"
        ));
    }

    #[test]
    fn member_with_internal_bitmap() {
        let dir = tempfile::tempdir().unwrap();
        let bitmap = encode(&bitmap_sb(), &[vec![50, 51, 52, 60]]).unwrap();
        let path = write(&dir, "vdd.img", &member(Some(8), &bitmap));
        let out = examine(&path).unwrap();
        let shown = path.display().to_string();
        let report = Bitmap::decode(&bitmap).unwrap().mdadm_x_report(&shown);
        let expected = format!(
            "       Superblock : md 1.2 at sector 8\n\
             \x20      Array UUID : 11223344:55667788:99aabbcc:ddeeff00\n\
             \x20            Name : bench:1\n\
             \x20      Raid Level : raid1\n\
             \x20    Raid Devices : 2\n\
             \x20          Events : 40\n\
             \x20     Data Offset : 2048 sectors\n\
             \x20       Data Size : 6144 sectors\n\
             \x20     Device Role : Active device 1\n\
             \x20 Internal Bitmap : 8 sectors from superblock (sector 16)\n\
             \n\
             {report}\
             \x20   Dirty chunks : 50-52, 60\n\
             \x20    Dirty bytes : 3276800..3473408, 3932160..3997696 (262144 bytes)\n"
        );
        assert_eq!(out, expected);
    }

    #[test]
    fn member_without_bitmap() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "vda.img", &member(None, &[]));
        let out = examine(&path).unwrap();
        assert!(out.contains("Device Role : Active device 1\n"), "{out}");
        assert!(out.ends_with("  Internal Bitmap : none\n"), "{out}");
        assert!(!out.contains("Filename"));
    }

    #[test]
    fn member_whose_bitmap_is_damaged_names_the_path_and_sector() {
        let dir = tempfile::tempdir().unwrap();
        let mut bitmap = encode(&bitmap_sb(), &[]).unwrap();
        bitmap[52..56].copy_from_slice(&1000u32.to_le_bytes()); // chunksize
        let path = write(&dir, "vdd.img", &member(Some(8), &bitmap));
        let err = format!("{:#}", examine(&path).unwrap_err());
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("internal bitmap at sector 16"), "{err}");
        assert!(err.contains("not a power of two"), "{err}");
    }

    #[test]
    fn neither_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "zeros.img", &vec![0u8; 1 << 20]);
        let err = format!("{:#}", examine(&path).unwrap_err());
        assert!(
            err.starts_with(&format!("{}: neither a bitmap file", path.display())),
            "{err}"
        );
        assert!(err.contains("no md v1.x superblock found"), "{err}");

        let path = write(
            &dir,
            "short.bitmap",
            &encode(&bitmap_sb(), &[]).unwrap()[..300],
        );
        let err = format!("{:#}", examine(&path).unwrap_err());
        assert!(
            err.contains("short.bitmap: starts with the bitmap magic"),
            "{err}"
        );
        assert!(err.contains("needs 381 bytes"), "{err}");

        let missing = dir.path().join("missing");
        let err = format!("{:#}", examine(&missing).unwrap_err());
        assert!(
            err.contains(&format!("{}: open", missing.display())),
            "{err}"
        );
    }

    #[test]
    fn a_file_is_judged_against_its_array_as_md_would() {
        let dev = member(None, &[]);
        let (_, array) = superblock::read_from(&mut std::io::Cursor::new(&dev), DEV).unwrap();
        let file = |sb: BitmapSuper| Bitmap::decode(&encode(&sb, &[vec![]]).unwrap()).unwrap();
        let own = BitmapSuper {
            sync_size: array.size,
            ..bitmap_sb()
        };
        let said = |sb: BitmapSuper| {
            against_array(&file(sb), &array)
                .into_iter()
                .map(|j| (j.refused, j.text))
                .collect::<Vec<_>>()
        };
        let trusted = said(own.clone());
        assert_eq!(trusted.len(), 1);
        assert!(
            !trusted[0].0 && trusted[0].1.contains("trusts its bits"),
            "{trusted:?}"
        );
        let foreign = said(BitmapSuper {
            uuid: [9; 16],
            ..own.clone()
        });
        assert!(
            foreign[0].0 && foreign[0].1.contains("UUID mismatch"),
            "{foreign:?}"
        );
        let stale = said(BitmapSuper {
            events: 30,
            ..own.clone()
        });
        assert!(
            !stale[0].0 && stale[0].1.contains("events 30 < the array's 40"),
            "{stale:?}"
        );
        let sync = said(BitmapSuper {
            sync_size: array.size / 2,
            ..own
        });
        assert!(
            !sync[0].0 && sync[0].1.contains("disagrees with the array's"),
            "{sync:?}"
        );
    }
}
