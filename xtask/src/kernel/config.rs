//! Kernel configuration text: fragments (`tools/testing/selftests/*/config` style), a final
//! `.config`, and the check that every option a fragment asked for took effect.
//!
//! Kconfig drops what it cannot honour without a word: an option whose dependencies are off,
//! or a name it does not know (a typo), is simply absent from the final `.config`. A bench
//! that trusts its fragment then tests a kernel it did not ask for, so every requested line
//! is compared with the result and the ones that did not apply are named.

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// One option's value as Kconfig writes it: `y`, `m`, `n` (`# CONFIG_X is not set`), or
/// the literal text after `=` for strings, numbers and hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Yes,
    Module,
    No,
    Other(String),
}

impl Value {
    fn parse(text: &str) -> Self {
        match text {
            "y" => Value::Yes,
            "m" => Value::Module,
            "n" => Value::No,
            other => Value::Other(other.to_string()),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Yes => f.write_str("y"),
            Value::Module => f.write_str("m"),
            Value::No => f.write_str("n"),
            Value::Other(s) => f.write_str(s),
        }
    }
}

/// A requested option and the fragment line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub name: String,
    pub value: Value,
    /// `path:line`, for messages.
    pub origin: String,
    /// The fragment said (`# mdbb: absent from newer trees`) that newer trees dropped the
    /// symbol: a tree that does not declare it is not a typo, while one that does must
    /// still take the value.
    pub may_be_undeclared: bool,
}

/// The comment that marks the next option of a fragment as one newer trees dropped.
pub const UNDECLARED_IN_NEWER: &str = "# mdbb: absent from newer trees";

/// The options of one fragment, in file order.
pub fn parse_fragment(origin: &str, text: &str) -> Result<Vec<Request>> {
    let mut out = Vec::new();
    let mut may_be_undeclared = false;
    for (i, line) in text.lines().enumerate() {
        let at = format!("{origin}:{}", i + 1);
        if line.trim_start().starts_with(UNDECLARED_IN_NEWER) {
            may_be_undeclared = true;
            continue;
        }
        match parse_line(line) {
            Line::Option(name, value) => out.push(Request {
                name,
                value,
                origin: at,
                may_be_undeclared: std::mem::take(&mut may_be_undeclared),
            }),
            Line::Blank => {}
            Line::Malformed => bail!(
                "{at}: `{}` is neither CONFIG_NAME=VALUE nor `# CONFIG_NAME is not set`",
                line.trim()
            ),
        }
    }
    Ok(out)
}

pub fn read_fragment(path: &Path) -> Result<Vec<Request>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("config fragment {}", path.display()))?;
    parse_fragment(&path.display().to_string(), &text)
}

enum Line {
    Option(String, Value),
    Blank,
    Malformed,
}

fn parse_line(line: &str) -> Line {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix("# CONFIG_") {
        return match rest.strip_suffix(" is not set") {
            Some(name) if is_symbol(name) => Line::Option(name.to_string(), Value::No),
            // Any other comment, including one that merely starts with a symbol name.
            _ => Line::Blank,
        };
    }
    if line.is_empty() || line.starts_with('#') {
        return Line::Blank;
    }
    match line
        .strip_prefix("CONFIG_")
        .and_then(|rest| rest.split_once('='))
    {
        Some((name, value)) if is_symbol(name) && !value.is_empty() => {
            Line::Option(name.to_string(), Value::parse(value))
        }
        _ => Line::Malformed,
    }
}

fn is_symbol(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The options (`CONFIG_X` names) that `config` has neither built in nor as a module.
pub fn unset<'a>(options: &'a [String], config: &BTreeMap<String, Value>) -> Vec<&'a str> {
    options
        .iter()
        .filter(|o| {
            let name = o.strip_prefix("CONFIG_").unwrap_or(o);
            !matches!(config.get(name), Some(Value::Yes | Value::Module))
        })
        .map(String::as_str)
        .collect()
}

/// A final `.config`: every symbol Kconfig wrote, with its value (`n` for "is not set").
/// A symbol that is absent was not visible in this configuration at all.
pub fn parse_config(text: &str) -> BTreeMap<String, Value> {
    text.lines()
        .filter_map(|l| match parse_line(l) {
            Line::Option(name, value) => Some((name, value)),
            _ => None,
        })
        .collect()
}

/// The effective requests of fragments merged in order: a later fragment overrides an
/// earlier one, as `merge_config.sh` does.
pub fn merge_requests(fragments: &[Vec<Request>]) -> Vec<Request> {
    let mut order: Vec<String> = Vec::new();
    let mut by_name: BTreeMap<String, Request> = BTreeMap::new();
    for r in fragments.iter().flatten() {
        if by_name.insert(r.name.clone(), r.clone()).is_none() {
            order.push(r.name.clone());
        }
    }
    order
        .into_iter()
        .map(|n| by_name.remove(&n).unwrap())
        .collect()
}

/// A requested option the final configuration does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub request: Request,
    /// `None`: the symbol is absent from the final `.config` (unknown to Kconfig, or its
    /// dependencies are off).
    pub actual: Option<Value>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.request;
        match &self.actual {
            Some(v) => write!(
                f,
                "CONFIG_{}={} ({}) is {v} in the final .config",
                r.name, r.value, r.origin
            ),
            None => write!(
                f,
                "CONFIG_{}={} ({}) is absent from the final .config",
                r.name, r.value, r.origin
            ),
        }
    }
}

/// The requests that did not take effect. "Not set" is satisfied by an absent symbol too:
/// Kconfig omits a symbol whose dependencies are off, and then it is off.
pub fn unapplied(requested: &[Request], config: &BTreeMap<String, Value>) -> Vec<Mismatch> {
    requested
        .iter()
        .filter_map(|r| {
            let actual = config.get(&r.name);
            let ok = match (&r.value, actual) {
                (Value::No, None) => true,
                (want, Some(got)) => want == got,
                (_, None) => false,
            };
            (!ok).then(|| Mismatch {
                request: r.clone(),
                actual: actual.cloned(),
            })
        })
        .collect()
}

/// Every symbol a tree's Kconfig files declare (`config X`, `menuconfig X`): what tells a
/// typo (no such symbol) from an option whose dependencies are off.
pub fn declared_symbols(tree: &Path) -> Result<std::collections::BTreeSet<String>> {
    let mut symbols = std::collections::BTreeSet::new();
    let mut stack = vec![tree.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("read directory {}", dir.display()))?
        {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let kind = entry.file_type()?;
            if kind.is_dir() && !name.starts_with('.') {
                stack.push(entry.path());
            } else if kind.is_file() && name.starts_with("Kconfig") {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                symbols.extend(text.lines().filter_map(|l| {
                    let l = l.trim_start();
                    let rest = l
                        .strip_prefix("config ")
                        .or_else(|| l.strip_prefix("menuconfig "))?;
                    Some(rest.trim().to_string())
                }));
            }
        }
    }
    Ok(symbols)
}

/// The mismatches that count on a tree declaring `declared`: an option the fragment says
/// newer trees dropped is none when this tree does not declare it.
pub fn counted(
    mismatches: Vec<Mismatch>,
    declared: &std::collections::BTreeSet<String>,
) -> Vec<Mismatch> {
    mismatches
        .into_iter()
        .filter(|m| !m.request.may_be_undeclared || declared.contains(&m.request.name))
        .collect()
}

/// One line naming every mismatch, each a typo or a dependency that is off.
pub fn describe(mismatches: &[Mismatch], declared: &std::collections::BTreeSet<String>) -> String {
    mismatches
        .iter()
        .map(|m| {
            if m.actual.is_none() && !declared.contains(&m.request.name) {
                format!(
                    "CONFIG_{} ({}) is not an option of this tree's Kconfig (a typo?)",
                    m.request.name, m.request.origin
                )
            } else {
                format!("{m} (a dependency is off?)")
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_options_are_those_neither_built_in_nor_modules() {
        let config = parse_config(
            "CONFIG_FAILSLAB=y\nCONFIG_MD=m\n# CONFIG_KASAN is not set\nCONFIG_LOG_BUF_SHIFT=17\n",
        );
        let want: Vec<String> = [
            "CONFIG_FAILSLAB",
            "CONFIG_MD",
            "CONFIG_KASAN",
            "CONFIG_LOG_BUF_SHIFT",
            "CONFIG_NOPE",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            unset(&want, &config),
            ["CONFIG_KASAN", "CONFIG_LOG_BUF_SHIFT", "CONFIG_NOPE"]
        );
    }
    use std::path::PathBuf;

    fn testdata(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/kconfig")
            .join(name)
    }

    fn fragment(name: &str) -> Vec<Request> {
        read_fragment(&testdata(name)).unwrap()
    }

    fn config(name: &str) -> BTreeMap<String, Value> {
        parse_config(&std::fs::read_to_string(testdata(name)).unwrap())
    }

    #[test]
    fn fragment_lines_of_every_kind() {
        let text = "# comment\n\nCONFIG_MD=y\nCONFIG_EXT4_FS=m\n# CONFIG_SMP is not set\n\
                    CONFIG_CMDLINE=\"console=ttyS0 quiet\"\nCONFIG_LOG_BUF_SHIFT=16\n\
                    CONFIG_PAGE_OFFSET=0xC0000000\n# CONFIG_FOO is a thing\n";
        let r = parse_fragment("f", text).unwrap();
        let got: Vec<(&str, String)> = r
            .iter()
            .map(|r| (r.name.as_str(), r.value.to_string()))
            .collect();
        assert_eq!(
            got,
            [
                ("MD", "y".into()),
                ("EXT4_FS", "m".into()),
                ("SMP", "n".into()),
                ("CMDLINE", "\"console=ttyS0 quiet\"".to_string()),
                ("LOG_BUF_SHIFT", "16".into()),
                ("PAGE_OFFSET", "0xC0000000".into()),
            ]
        );
        assert_eq!(r[2].origin, "f:5");
    }

    #[test]
    fn a_malformed_fragment_line_is_named_with_its_line() {
        let err = parse_fragment("md.config", "CONFIG_MD=y\nMD_RAID1=y\n").unwrap_err();
        assert!(
            err.to_string().starts_with("md.config:2: `MD_RAID1=y`"),
            "{err}"
        );
        let err = parse_fragment("f", "CONFIG_MD=\n").unwrap_err();
        assert!(err.to_string().starts_with("f:1:"), "{err}");
    }

    #[test]
    fn later_fragments_override_earlier_ones() {
        let a = parse_fragment("a", "CONFIG_SMP=y\nCONFIG_MD=y\n").unwrap();
        let b = parse_fragment("b", "# CONFIG_SMP is not set\n").unwrap();
        let m = merge_requests(&[a, b]);
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].name.as_str(), &m[0].value), ("SMP", &Value::No));
        assert_eq!(m[0].origin, "b:1");
    }

    /// tinyconfig + tiny.config + md.config, merged with `merge_config.sh -m` and resolved
    /// with `make olddefconfig` in Debian's linux-source-6.12 (6.12.117): all applied.
    #[test]
    fn the_bench_fragments_apply_on_a_tinyconfig_base() {
        let requested = merge_requests(&[fragment("tiny.config"), fragment("md.config")]);
        assert!(requested.len() > 40);
        let final_config = config("tiny-md.final.config");
        let missing = unapplied(&requested, &final_config);
        assert!(missing.is_empty(), "{missing:#?}");
        // A tinyconfig base on x86 is 32-bit until tiny.config says otherwise.
        assert_eq!(final_config.get("64BIT"), Some(&Value::Yes));
    }

    /// The same merge plus a fragment with two typos, an option whose dependency is off
    /// (PVH needs HYPERVISOR_GUEST), and overrides that do apply.
    #[test]
    fn typos_and_unmet_dependencies_are_named_and_nothing_else() {
        let requested = merge_requests(&[
            fragment("tiny.config"),
            fragment("md.config"),
            fragment("typo.config"),
        ]);
        let missing = unapplied(&requested, &config("typo.final.config"));
        let names: Vec<&str> = missing.iter().map(|m| m.request.name.as_str()).collect();
        assert_eq!(names, ["MD_RAID5", "MD_BITMAP_FIEL", "PVH"]);
        assert!(missing.iter().all(|m| m.actual.is_none()));
        assert_eq!(
            missing[0].request.origin,
            format!("{}:2", testdata("typo.config").display())
        );

        let declared: std::collections::BTreeSet<String> =
            ["PVH", "MD_RAID456"].map(String::from).into();
        let line = describe(&missing, &declared);
        assert!(
            line.contains("CONFIG_MD_RAID5 (")
                && line.contains("is not an option of this tree's Kconfig (a typo?)"),
            "{line}"
        );
        assert!(
            line.contains("CONFIG_PVH=y (")
                && line.contains("absent from the final .config (a dependency is off?)"),
            "{line}"
        );
        assert!(!line.contains('\n'));
    }

    /// The options `merge_config.sh` (run without `-m`; the bench runs it with `-m` and
    /// checks the fragments itself, so only this test reads the report) reports in its
    /// "Value requested for CONFIG_X not in final .config" blocks, with the requested and the
    /// actual line as it printed them (the actual line is empty when the symbol is absent).
    /// It compares the base `.config` too, so on a tinyconfig base it also names base symbols
    /// that `olddefconfig` legitimately changed; [`unapplied`] looks at the fragments alone.
    fn parse_merge_report(output: &str) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        let mut lines = output.lines();
        while let Some(line) = lines.next() {
            let Some(name) = line
                .strip_prefix("Value requested for CONFIG_")
                .and_then(|r| r.strip_suffix(" not in final .config"))
            else {
                continue;
            };
            let mut field = |prefix: &str| {
                lines
                    .next()
                    .and_then(|l| l.strip_prefix(prefix))
                    .map(|v| v.trim().to_string())
                    .unwrap_or_default()
            };
            let requested = field("Requested value:");
            let actual = field("Actual value:");
            out.push((name.to_string(), requested, actual));
        }
        out
    }

    /// merge_config.sh's own report on the same merge (run without `-m`, which compares the
    /// base too): it names the fragment's failures, and also base symbols and "not set"
    /// requests that hold but are absent, which [`unapplied`] rightly leaves out.
    #[test]
    fn merge_config_report_agrees_on_the_fragment_failures() {
        let report =
            parse_merge_report(&std::fs::read_to_string(testdata("typo.merge.out")).unwrap());
        let named: Vec<&str> = report.iter().map(|(n, _, _)| n.as_str()).collect();
        for n in ["MD_RAID5", "MD_BITMAP_FIEL", "PVH"] {
            assert!(named.contains(&n), "{n} missing from {named:?}");
        }
        let (_, requested, actual) = report.iter().find(|(n, _, _)| n == "PVH").unwrap();
        assert_eq!((requested.as_str(), actual.as_str()), ("CONFIG_PVH=y", ""));
        // Noise the fragment check must not repeat: a base symbol tinyconfig set for i386,
        // and a "not set" request whose symbol is absent because its menu is off.
        assert!(named.contains(&"X86_32") && named.contains(&"KVM_GUEST"));
        let requested = merge_requests(&[
            fragment("tiny.config"),
            fragment("md.config"),
            fragment("typo.config"),
        ]);
        let ours = unapplied(&requested, &config("typo.final.config"));
        assert!(ours.iter().all(|m| m.request.name != "KVM_GUEST"));
    }
}

#[cfg(test)]
mod undeclared_tests {
    use super::*;

    #[test]
    fn an_option_marked_as_dropped_by_newer_trees_counts_only_where_it_is_declared() {
        let text = format!("{UNDECLARED_IN_NEWER}\nCONFIG_PROC_SYSCTL=y\nCONFIG_SYSCTL=y\n");
        let requests = parse_fragment("tiny.config", &text).unwrap();
        assert!(requests[0].may_be_undeclared);
        assert!(!requests[1].may_be_undeclared, "the mark covers one line");
        let config = parse_config("CONFIG_SYSCTL=y\n");
        let missing = || unapplied(&requests, &config);
        let newer: std::collections::BTreeSet<String> = ["SYSCTL".to_string()].into();
        assert!(counted(missing(), &newer).is_empty());
        let older: std::collections::BTreeSet<String> =
            ["SYSCTL".to_string(), "PROC_SYSCTL".to_string()].into();
        let left = counted(missing(), &older);
        assert_eq!(left.len(), 1, "declared but off is still a mismatch");
        assert_eq!(left[0].request.name, "PROC_SYSCTL");
    }
}
