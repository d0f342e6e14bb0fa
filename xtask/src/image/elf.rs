//! The shared-library closure of host programs, read from their ELF headers (`PT_INTERP`,
//! `DT_NEEDED`, `DT_RUNPATH`) rather than from `ldd`, so nothing of the host is executed.

use anyhow::{bail, Context, Result};
use object::elf;
use object::read::elf::{Dyn, FileHeader, ProgramHeader};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What the dynamic loader needs to start one ELF file.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Needs {
    pub interpreter: Option<String>,
    pub needed: Vec<String>,
    pub runpath: Vec<String>,
}

pub fn needs(data: &[u8]) -> Result<Needs> {
    let header =
        elf::FileHeader64::<object::Endianness>::parse(data).context("not a 64-bit ELF file")?;
    let endian = header.endian()?;
    let mut needs = Needs::default();
    for ph in header.program_headers(endian, data)? {
        if let Some(interp) = ph.interpreter(endian, data)? {
            needs.interpreter = Some(String::from_utf8_lossy(interp).into_owned());
        }
    }
    let sections = header.sections(endian, data)?;
    if let Some((entries, link)) = sections.dynamic(endian, data)? {
        let strings = sections.strings(endian, data, link)?;
        for d in entries {
            let tag = d.d_tag(endian);
            if tag != elf::DT_NEEDED && tag != elf::DT_RUNPATH && tag != elf::DT_RPATH {
                continue;
            }
            let value = strings
                .get(d.d_val(endian) as u32)
                .map_err(|_| anyhow::anyhow!("bad dynamic string offset"))?;
            let value = String::from_utf8_lossy(value).into_owned();
            if tag == elf::DT_NEEDED {
                needs.needed.push(value);
            } else {
                needs.runpath.extend(value.split(':').map(str::to_string));
            }
        }
    }
    Ok(needs)
}

/// Where the loader of a Debian multiarch system looks when no runpath says otherwise.
pub const DEFAULT_LIBRARY_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
];

/// Every file `programs` need at run time, as guest path -> host file. A guest path keeps
/// the name the loader asks for (`libblkid.so.1`, not the file the symlink points at) in
/// the canonical directory, so it is found through the guest's usrmerge links too.
pub fn closure(programs: &[PathBuf], library_dirs: &[&str]) -> Result<BTreeMap<PathBuf, PathBuf>> {
    let mut files = BTreeMap::new();
    let mut todo: Vec<(PathBuf, PathBuf)> = programs
        .iter()
        .map(|p| Ok((canonical_name(p)?, p.clone())))
        .collect::<Result<_>>()?;
    while let Some((guest, host)) = todo.pop() {
        if files.contains_key(&guest) {
            continue;
        }
        let data = std::fs::read(&host).with_context(|| format!("read {}", host.display()))?;
        let n = needs(&data).with_context(|| format!("{}", host.display()))?;
        if let Some(interp) = &n.interpreter {
            let p = PathBuf::from(interp);
            todo.push((
                canonical_name(&p).with_context(|| format!("interpreter of {}", host.display()))?,
                p,
            ));
        }
        for lib in &n.needed {
            let dirs = n
                .runpath
                .iter()
                .map(String::as_str)
                .chain(library_dirs.iter().copied());
            let Some(found) = dirs.map(|d| Path::new(d).join(lib)).find(|p| p.exists()) else {
                bail!(
                    "{} needs {lib}, found in none of {}",
                    host.display(),
                    library_dirs.join(", ")
                );
            };
            todo.push((canonical_name(&found)?, found));
        }
        files.insert(guest, host);
    }
    Ok(files)
}

/// The path with its directory resolved and its file name kept.
fn canonical_name(p: &Path) -> Result<PathBuf> {
    let dir = p.parent().context("path without a directory")?;
    let name = p.file_name().context("path without a file name")?;
    Ok(dir
        .canonicalize()
        .with_context(|| format!("resolve {}", dir.display()))?
        .join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 with a PT_INTERP segment and a .dynamic/.dynstr pair, built here so
    /// the test depends on no host binary.
    fn tiny_elf(interp: &str, needed: &[&str], runpath: &str) -> Vec<u8> {
        let mut dynstr = vec![0u8];
        let mut add = |s: &str| {
            let at = dynstr.len() as u64;
            dynstr.extend_from_slice(s.as_bytes());
            dynstr.push(0);
            at
        };
        let mut dyns: Vec<(u64, u64)> = needed
            .iter()
            .map(|n| (elf::DT_NEEDED.0 as u64, add(n)))
            .collect();
        dyns.push((elf::DT_RUNPATH.0 as u64, add(runpath)));
        dyns.push((elf::DT_NULL.0 as u64, 0));
        let shstr = b"\0.dynamic\0.dynstr\0.shstrtab\0".to_vec();

        let ehsize = 64u64;
        let phoff = ehsize;
        let interp_off = phoff + 56;
        let interp_bytes = [interp.as_bytes(), b"\0"].concat();
        let dynstr_off = interp_off + interp_bytes.len() as u64;
        let dyn_off = (dynstr_off + dynstr.len() as u64).next_multiple_of(8);
        let shstr_off = dyn_off + 16 * dyns.len() as u64;
        let shoff = (shstr_off + shstr.len() as u64).next_multiple_of(8);

        let mut b = vec![0u8; shoff as usize + 64 * 4];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2; // ELFCLASS64
        b[5] = 1; // little endian
        b[6] = 1;
        let put16 = |b: &mut Vec<u8>, at: u64, v: u16| {
            b[at as usize..at as usize + 2].copy_from_slice(&v.to_le_bytes())
        };
        let put32 = |b: &mut Vec<u8>, at: u64, v: u32| {
            b[at as usize..at as usize + 4].copy_from_slice(&v.to_le_bytes())
        };
        let put64 = |b: &mut Vec<u8>, at: u64, v: u64| {
            b[at as usize..at as usize + 8].copy_from_slice(&v.to_le_bytes())
        };
        put16(&mut b, 16, 3); // ET_DYN
        put16(&mut b, 18, 62); // EM_X86_64
        put32(&mut b, 20, 1);
        put64(&mut b, 32, phoff);
        put64(&mut b, 40, shoff);
        put16(&mut b, 52, 64);
        put16(&mut b, 54, 56);
        put16(&mut b, 56, if interp.is_empty() { 0 } else { 1 });
        put16(&mut b, 58, 64);
        put16(&mut b, 60, 4);
        put16(&mut b, 62, 3);
        // PT_INTERP
        put32(&mut b, phoff, elf::PT_INTERP.0);
        put64(&mut b, phoff + 8, interp_off);
        put64(&mut b, phoff + 32, interp_bytes.len() as u64);
        put64(&mut b, phoff + 40, interp_bytes.len() as u64);
        b[interp_off as usize..dynstr_off as usize].copy_from_slice(&interp_bytes);
        b[dynstr_off as usize..dynstr_off as usize + dynstr.len()].copy_from_slice(&dynstr);
        for (i, (tag, val)) in dyns.iter().enumerate() {
            put64(&mut b, dyn_off + 16 * i as u64, *tag);
            put64(&mut b, dyn_off + 16 * i as u64 + 8, *val);
        }
        b[shstr_off as usize..shstr_off as usize + shstr.len()].copy_from_slice(&shstr);
        // section 1: .dynamic (link -> 2), 2: .dynstr, 3: .shstrtab
        let sec = |b: &mut Vec<u8>,
                   i: u64,
                   name: u32,
                   ty: u32,
                   off: u64,
                   size: u64,
                   link: u32,
                   entsize: u64| {
            let at = shoff + 64 * i;
            put32(b, at, name);
            put32(b, at + 4, ty);
            put64(b, at + 24, off);
            put64(b, at + 32, size);
            put32(b, at + 40, link);
            put64(b, at + 56, entsize);
        };
        sec(
            &mut b,
            1,
            1,
            elf::SHT_DYNAMIC.0,
            dyn_off,
            16 * dyns.len() as u64,
            2,
            16,
        );
        sec(
            &mut b,
            2,
            10,
            elf::SHT_STRTAB.0,
            dynstr_off,
            dynstr.len() as u64,
            0,
            0,
        );
        sec(
            &mut b,
            3,
            18,
            elf::SHT_STRTAB.0,
            shstr_off,
            shstr.len() as u64,
            0,
            0,
        );
        b
    }

    #[test]
    fn needs_reads_interpreter_needed_and_runpath() {
        let data = tiny_elf(
            "/lib64/ld-linux-x86-64.so.2",
            &["libfoo.so.1", "libc.so.6"],
            "/opt/a:/opt/b",
        );
        let n = needs(&data).unwrap();
        assert_eq!(
            n.interpreter.as_deref(),
            Some("/lib64/ld-linux-x86-64.so.2")
        );
        assert_eq!(n.needed, ["libfoo.so.1", "libc.so.6"]);
        assert_eq!(n.runpath, ["/opt/a", "/opt/b"]);
    }

    #[test]
    fn closure_follows_needed_libraries_through_runpath_and_reports_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().canonicalize().unwrap();
        let lib = d.join("lib");
        std::fs::create_dir(&lib).unwrap();
        let ld = lib.join("ld.so");
        std::fs::write(&ld, tiny_elf("", &[], "")).unwrap();
        std::fs::write(lib.join("libb.so.1"), tiny_elf("", &[], "")).unwrap();
        std::fs::write(
            lib.join("liba.so.1"),
            tiny_elf("", &["libb.so.1"], lib.to_str().unwrap()),
        )
        .unwrap();
        let prog = d.join("prog");
        std::fs::write(
            &prog,
            tiny_elf(ld.to_str().unwrap(), &["liba.so.1"], lib.to_str().unwrap()),
        )
        .unwrap();

        let files = closure(std::slice::from_ref(&prog), &[]).unwrap();
        let names: Vec<_> = files
            .keys()
            .map(|p| p.strip_prefix(&d).unwrap().to_str().unwrap().to_string())
            .collect();
        assert_eq!(
            names,
            ["lib/ld.so", "lib/liba.so.1", "lib/libb.so.1", "prog"]
        );

        std::fs::write(
            &prog,
            tiny_elf(ld.to_str().unwrap(), &["libmissing.so.9"], ""),
        )
        .unwrap();
        let err = closure(&[prog], &[]).unwrap_err().to_string();
        assert!(err.contains("needs libmissing.so.9"), "{err}");
    }
}
