//! Kernel modules for the guest: found by name in a modules tree, their dependencies read
//! from each module's own `.modinfo` (Debian's package ships no `modules.dep`; depmod makes
//! it at install time), decompressed, and described by a `modules.dep`/`modules.alias` that
//! busybox's modprobe and the kernel's `request_module` use inside the guest.

use anyhow::{bail, Context, Result};
use object::{Object, ObjectSection};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

/// Module names compare with `-` and `_` equal, as the kernel's do.
pub fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

fn module_name(file_name: &str) -> Option<&str> {
    [".ko.xz", ".ko.zst", ".ko.gz", ".ko"]
        .iter()
        .find_map(|ext| file_name.strip_suffix(ext))
}

/// The modules a tree provides, by normalized name, and the ones built into its kernel.
#[derive(Debug)]
pub struct ModuleTree {
    pub root: PathBuf,
    files: HashMap<String, PathBuf>,
    builtin: BTreeSet<String>,
}

impl ModuleTree {
    pub fn scan(root: &Path) -> Result<Self> {
        let mut files = HashMap::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir).with_context(|| format!("read {}", dir.display()))? {
                let path = entry?.path();
                if path.is_dir() {
                    stack.push(path);
                } else if let Some(name) = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(module_name)
                {
                    files.insert(normalize(name), path);
                }
            }
        }
        let builtin = fs::read_to_string(root.join("modules.builtin"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.rsplit('/').next().and_then(module_name).map(normalize))
            .collect();
        Ok(Self {
            root: root.to_path_buf(),
            files,
            builtin,
        })
    }

    pub fn is_builtin(&self, name: &str) -> bool {
        self.builtin.contains(&normalize(name))
    }
}

/// One module ready for the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    pub name: String,
    /// The file name in the guest: the original name, decompressed (`md-mod.ko`).
    pub file_name: String,
    pub data: Vec<u8>,
    pub depends: Vec<String>,
    pub aliases: Vec<String>,
}

/// The modules `wanted` need, each after everything it depends on. A module built into
/// the kernel is skipped; one that is neither built in nor in the tree is an error.
pub fn resolve(tree: &ModuleTree, wanted: &[String]) -> Result<Vec<Module>> {
    let mut done: BTreeMap<String, Module> = BTreeMap::new();
    let mut order = Vec::new();
    for name in wanted {
        visit(
            tree,
            &normalize(name),
            &mut done,
            &mut order,
            &mut Vec::new(),
        )?;
    }
    Ok(order
        .into_iter()
        .map(|n| done.remove(&n).expect("visited"))
        .collect())
}

fn visit(
    tree: &ModuleTree,
    name: &str,
    done: &mut BTreeMap<String, Module>,
    order: &mut Vec<String>,
    path: &mut Vec<String>,
) -> Result<()> {
    if done.contains_key(name) || tree.is_builtin(name) {
        return Ok(());
    }
    if path.iter().any(|p| p == name) {
        bail!("module dependency cycle: {} -> {name}", path.join(" -> "));
    }
    let Some(file) = tree.files.get(name) else {
        bail!(
            "module {name} is neither in {} nor built in (modules.builtin)",
            tree.root.display()
        );
    };
    let data = decompress(file)?;
    let info = modinfo(&data).with_context(|| format!("{}", file.display()))?;
    let depends: Vec<String> = info
        .iter()
        .filter(|(k, _)| k == "depends")
        .flat_map(|(_, v)| v.split(',').filter(|d| !d.is_empty()).map(normalize))
        .collect();
    path.push(name.to_string());
    for dep in &depends {
        visit(tree, dep, done, order, path)?;
    }
    path.pop();
    let file_name = file
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(module_name)
        .unwrap_or(name);
    done.insert(
        name.to_string(),
        Module {
            name: name.to_string(),
            file_name: format!("{file_name}.ko"),
            data,
            depends,
            aliases: info
                .into_iter()
                .filter(|(k, _)| k == "alias")
                .map(|(_, v)| v)
                .collect(),
        },
    );
    order.push(name.to_string());
    Ok(())
}

pub fn decompress(file: &Path) -> Result<Vec<u8>> {
    let raw = fs::read(file).with_context(|| format!("read {}", file.display()))?;
    let name = file.to_string_lossy();
    if name.ends_with(".ko") {
        return Ok(raw);
    }
    use std::io::Read;
    let mut out = Vec::new();
    if name.ends_with(".ko.xz") {
        lzma_rs::xz_decompress(&mut raw.as_slice(), &mut out)
            .map_err(|e| anyhow::anyhow!("decompress {}: {e:?}", file.display()))?;
        return Ok(out);
    }
    // Fedora, Arch and Ubuntu trees (`CONFIG_MODULE_COMPRESS_ZSTD`, `_GZIP`).
    if name.ends_with(".ko.zst") {
        ruzstd::decoding::StreamingDecoder::new(raw.as_slice())
            .map_err(|e| anyhow::anyhow!("decompress {}: {e}", file.display()))?
            .read_to_end(&mut out)
            .with_context(|| format!("decompress {}", file.display()))?;
        return Ok(out);
    }
    if name.ends_with(".ko.gz") {
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .with_context(|| format!("decompress {}", file.display()))?;
        return Ok(out);
    }
    bail!(
        "{}: unsupported module compression (the bench reads .ko, .ko.xz, .ko.zst and .ko.gz)",
        file.display()
    )
}

/// The `key=value` strings of a module's `.modinfo` section.
pub fn modinfo(elf: &[u8]) -> Result<Vec<(String, String)>> {
    let file = object::File::parse(elf).context("not an ELF module")?;
    let section = file
        .section_by_name(".modinfo")
        .context("no .modinfo section")?;
    let data = section.data()?;
    Ok(data
        .split(|&b| b == 0)
        .filter_map(|kv| {
            let kv = std::str::from_utf8(kv).ok()?;
            let (k, v) = kv.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect())
}

/// `modules.dep`: each module with all it depends on, the ones to load first last, as
/// depmod writes it and modprobe reads it.
pub fn modules_dep(modules: &[Module]) -> String {
    let by_name: HashMap<&str, &Module> = modules.iter().map(|m| (m.name.as_str(), m)).collect();
    let mut text = String::new();
    for m in modules {
        let mut all = Vec::new();
        let mut stack: Vec<&str> = m.depends.iter().map(String::as_str).collect();
        while let Some(d) = stack.pop() {
            if let Some(dep) = by_name.get(d) {
                if !all.contains(&dep.name.as_str()) {
                    all.push(dep.name.as_str());
                    stack.extend(dep.depends.iter().map(String::as_str));
                }
            }
        }
        // `modules` is in load order; modprobe loads the listed dependencies from the end.
        let position = |n: &str| modules.iter().position(|x| x.name == n).unwrap_or(0);
        all.sort_by_key(|n| std::cmp::Reverse(position(n)));
        let deps: Vec<String> = all.iter().map(|n| by_name[n].file_name.clone()).collect();
        text.push_str(&format!("{}: {}\n", m.file_name, deps.join(" ")).replace(": \n", ":\n"));
    }
    text
}

pub fn modules_alias(modules: &[Module]) -> String {
    modules
        .iter()
        .flat_map(|m| {
            m.aliases
                .iter()
                .map(move |a| format!("alias {a} {}\n", m.name))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(name: &str, depends: &[&str]) -> Module {
        Module {
            name: normalize(name),
            file_name: format!("{name}.ko"),
            data: vec![],
            depends: depends.iter().map(|d| normalize(d)).collect(),
            aliases: vec![format!("md-{name}")],
        }
    }

    #[test]
    fn zstd_and_gzip_modules_decompress_and_others_are_named() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let elf: Vec<u8> = (0..5000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        let zst = dir.path().join("raid1.ko.zst");
        std::fs::write(
            &zst,
            ruzstd::encoding::compress_to_vec(
                elf.as_slice(),
                ruzstd::encoding::CompressionLevel::Fastest,
            ),
        )
        .unwrap();
        assert_eq!(decompress(&zst).unwrap(), elf);
        let gz = dir.path().join("md-mod.ko.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&elf).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        assert_eq!(decompress(&gz).unwrap(), elf);
        std::fs::write(dir.path().join("bad.ko.zst"), b"not zstd").unwrap();
        let e = decompress(&dir.path().join("bad.ko.zst")).unwrap_err();
        assert!(format!("{e:#}").contains("bad.ko.zst"), "{e:#}");
        std::fs::write(dir.path().join("x.ko.lz4"), b"").unwrap();
        let e = decompress(&dir.path().join("x.ko.lz4")).unwrap_err();
        assert!(
            e.to_string().contains("unsupported module compression"),
            "{e}"
        );
        assert_eq!(module_name("raid1.ko.zst"), Some("raid1"));
        assert_eq!(module_name("md-mod.ko.gz"), Some("md-mod"));
    }

    #[test]
    fn modules_dep_lists_transitive_dependencies_load_last_first() {
        let mods = [
            module("md-mod", &[]),
            module("xor", &[]),
            module("async_xor", &["xor"]),
            module("raid456", &["async_xor", "md_mod"]),
        ];
        let dep = modules_dep(&mods);
        assert_eq!(
            dep,
            "md-mod.ko:\nxor.ko:\nasync_xor.ko: xor.ko\nraid456.ko: async_xor.ko xor.ko md-mod.ko\n"
        );
        assert!(modules_alias(&mods).contains("alias md-raid456 raid456\n"));
    }

    /// A module-shaped ELF: only a `.modinfo` section, which is all `modinfo` reads.
    fn fake_ko(info: &[&str]) -> Vec<u8> {
        use object::write::Object;
        let mut obj = Object::new(
            object::BinaryFormat::Elf,
            object::Architecture::X86_64,
            object::Endianness::Little,
        );
        let s = obj.add_section(
            vec![],
            b".modinfo".to_vec(),
            object::SectionKind::ReadOnlyData,
        );
        let mut data = Vec::new();
        for kv in info {
            data.extend_from_slice(kv.as_bytes());
            data.push(0);
        }
        obj.append_section_data(s, &data, 1);
        obj.write().unwrap()
    }

    #[test]
    fn resolve_orders_dependencies_first_skips_builtins_and_names_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path();
        fs::create_dir_all(t.join("kernel/drivers/md")).unwrap();
        fs::write(
            t.join("kernel/drivers/md/raid1.ko"),
            fake_ko(&["alias=md-level-1", "depends=md-mod,crc"]),
        )
        .unwrap();
        fs::write(
            t.join("kernel/drivers/md/md-mod.ko"),
            fake_ko(&["depends="]),
        )
        .unwrap();
        fs::write(t.join("modules.builtin"), "kernel/lib/crc.ko\n").unwrap();
        let tree = ModuleTree::scan(t).unwrap();

        let mods = resolve(&tree, &["raid1".into()]).unwrap();
        let names: Vec<_> = mods.iter().map(|m| m.file_name.as_str()).collect();
        assert_eq!(names, ["md-mod.ko", "raid1.ko"]);
        assert_eq!(mods[1].aliases, ["md-level-1"]);

        let err = resolve(&tree, &["raid10".into()]).unwrap_err().to_string();
        assert!(err.contains("module raid10 is neither in"), "{err}");
    }
}
