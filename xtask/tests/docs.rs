//! The README and the pages in `xtask/docs/`, checked by machine (no VM): every relative
//! link names a file that exists (and a heading, when it has an anchor into a page), every
//! backticked repository path names a file that exists, the README stays a front door of
//! at most 250 lines, and every `cargo xtask` command shown in a code block exists with
//! its flags; one with a selection of cases resolves it with `run --list`. A failure names
//! the file and the line.

mod common;

use common::shell_words;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

const README_MAX_LINES: usize = 250;

/// Backticked paths under these are checked; anything else in backticks (a path inside
/// the guest, `results/<run>`, a file of a result directory) is not a repository path.
const REPO_PREFIXES: &[&str] = &[
    "xtask/",
    "cases/",
    "images/",
    "kernel-configs/",
    ".github/",
    ".ci/",
    ".config/",
    ".cargo/",
];

fn root() -> PathBuf {
    xtask::host::project_root()
}

/// README.md and every markdown page under xtask/docs/, as paths relative to the root.
fn pages() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "md") {
                out.push(p);
            }
        }
    }
    let root = root();
    let mut out = vec![root.join("README.md")];
    walk(&root.join("xtask/docs"), &mut out);
    out.into_iter()
        .map(|p| p.strip_prefix(&root).unwrap().to_path_buf())
        .collect()
}

fn read(page: &Path) -> String {
    let path = root().join(page);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A markdown page split into prose (with its line numbers) and fenced code blocks.
struct Page {
    /// Lines outside code fences: (line number, text).
    prose: Vec<(usize, String)>,
    /// Lines inside code fences: (line number, text).
    code: Vec<(usize, String)>,
}

fn page(name: &Path) -> Page {
    let mut prose = Vec::new();
    let mut code = Vec::new();
    let mut fenced = false;
    for (i, line) in read(name).lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        let entry = (i + 1, line.to_string());
        if fenced {
            code.push(entry);
        } else {
            prose.push(entry);
        }
    }
    Page { prose, code }
}

/// The `[text](target)` and `![alt](target)` links of a line's prose (inline code left
/// out).
fn links(line: &str) -> Vec<String> {
    let text = without_code_spans(line);
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("](") {
        let after = &rest[i + 2..];
        let Some(end) = after.find(')') else { break };
        out.push(after[..end].trim().to_string());
        rest = &after[end + 1..];
    }
    out
}

fn without_code_spans(line: &str) -> String {
    line.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
        .map(|(_, s)| s)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The inline code spans of a page's prose, with the line each starts on. A span may
/// run over a line break, as a wrapped command does.
fn code_spans(p: &Page) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for (n, line) in &p.prose {
        for (i, piece) in line.split('`').enumerate() {
            if i > 0 {
                // A backtick between the previous piece and this one.
                match open.take() {
                    Some(span) => out.push(span),
                    None => open = Some((*n, String::new())),
                }
            }
            if let Some((_, span)) = open.as_mut() {
                if i == 0 {
                    span.push(' ');
                }
                span.push_str(piece);
            }
        }
        if line.trim().is_empty() {
            // A span never runs over a paragraph's end: an unpaired backtick is text.
            open = None;
        }
    }
    out
}

/// GitHub's anchor for a heading: lower case, punctuation but `-` and `_` dropped, spaces
/// to `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(p: &Page) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for (_, line) in &p.prose {
        let t = line.trim_start();
        if !t.starts_with('#') {
            continue;
        }
        let heading = t.trim_start_matches('#');
        if !heading.starts_with(' ') {
            continue;
        }
        let base = slug(&heading.replace('`', ""));
        let n = seen.entry(base.clone()).or_default();
        out.insert(if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        *n += 1;
    }
    out
}

/// `dir/../x` made plain, without touching the filesystem.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

#[test]
fn every_relative_link_names_a_file_and_a_heading_that_exist() {
    let root = root();
    let mut checked = 0;
    let mut broken = Vec::new();
    for name in pages() {
        let p = page(&name);
        for (n, line) in &p.prose {
            for target in links(line) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                checked += 1;
                let (file, anchor) = match target.split_once('#') {
                    Some((f, a)) => (f, Some(a)),
                    None => (target.as_str(), None),
                };
                let dest = if file.is_empty() {
                    name.clone()
                } else {
                    normalize(&name.parent().unwrap().join(file))
                };
                if !root.join(&dest).exists() {
                    broken.push(format!(
                        "{}:{n}: link `{target}`: {} does not exist",
                        name.display(),
                        dest.display()
                    ));
                    continue;
                }
                if let Some(anchor) = anchor {
                    if dest.extension().is_some_and(|x| x == "md")
                        && !anchors(&page(&dest)).contains(anchor)
                    {
                        broken.push(format!(
                            "{}:{n}: link `{target}`: {} has no heading #{anchor}",
                            name.display(),
                            dest.display()
                        ));
                    }
                }
            }
        }
    }
    assert!(checked > 50, "the parser found only {checked} links");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// A backticked span that is a path in the repository: one of `REPO_PREFIXES`, no
/// placeholder, no glob, no space.
fn repo_path(span: &str) -> Option<&str> {
    let s = span.trim();
    let plain = !s.is_empty()
        && !s.contains(|c: char| c.is_whitespace() || "<>*{}$|".contains(c))
        && !s.contains("...");
    (plain && REPO_PREFIXES.iter().any(|p| s.starts_with(p))).then_some(s)
}

#[test]
fn every_backticked_repository_path_exists() {
    let root = root();
    let mut checked = 0;
    let mut broken = Vec::new();
    for name in pages() {
        let p = page(&name);
        for (n, span) in code_spans(&p) {
            let Some(path) = repo_path(&span) else {
                continue;
            };
            checked += 1;
            if !root.join(path).exists() {
                broken.push(format!(
                    "{}:{n}: `{path}` does not exist in the repository",
                    name.display()
                ));
            }
        }
    }
    assert!(checked > 30, "the parser found only {checked} paths");
    assert!(broken.is_empty(), "missing paths:\n{}", broken.join("\n"));
}

#[test]
fn the_readme_is_a_front_door_of_at_most_250_lines() {
    let lines = read(Path::new("README.md")).lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines, more than {README_MAX_LINES}: move detail to a page in xtask/docs/"
    );
}

#[test]
fn the_readme_has_a_row_for_every_case_file() {
    let readme = read(Path::new("README.md"));
    let mut missing = Vec::new();
    for e in std::fs::read_dir(root().join("cases")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".yaml") && !readme.contains(&format!("(cases/{name})")) {
            missing.push(name);
        }
    }
    assert!(
        missing.is_empty(),
        "README.md: no row linking cases/{{{}}}",
        missing.join(",")
    );
}

/// A command of a code block: where it is, and its words after `cargo xtask`.
#[derive(Debug)]
struct Shown {
    at: String,
    line: String,
    tokens: Vec<String>,
}

/// Every `cargo xtask ...` line of every code block of the pages, continuation lines
/// (`\` at the end) joined.
fn shown_commands() -> Vec<Shown> {
    let mut out = Vec::new();
    for name in pages() {
        let p = page(&name);
        let mut i = 0;
        while i < p.code.len() {
            let (n, first) = &p.code[i];
            let mut line = first.trim().to_string();
            while line.ends_with('\\') && i + 1 < p.code.len() && p.code[i + 1].0 == p.code[i].0 + 1
            {
                line.pop();
                i += 1;
                line.push(' ');
                line.push_str(p.code[i].1.trim());
            }
            i += 1;
            if let Some(rest) = line.strip_prefix("cargo xtask ") {
                out.push(Shown {
                    at: format!("{}:{n}", name.display()),
                    line: line.clone(),
                    tokens: shell_words(rest),
                });
            }
        }
    }
    out
}

/// What `xtask WORDS --help` says: its subcommands and its flags (with whether each
/// takes a value).
struct Help {
    commands: BTreeSet<String>,
    flags: BTreeMap<String, bool>,
}

fn help(words: &[String]) -> Result<Help, String> {
    let mut args: Vec<&str> = words.iter().map(String::as_str).collect();
    args.push("--help");
    let (code, out, err) = common::xtask(&args);
    if code != 0 {
        return Err(format!(
            "`xtask {}` exits {code}:\n{out}{err}",
            args.join(" ")
        ));
    }
    let mut commands = BTreeSet::new();
    let mut flags = BTreeMap::new();
    let mut in_commands = false;
    for line in out.lines() {
        if line.starts_with("Commands:") {
            in_commands = true;
            continue;
        }
        if !line.starts_with(' ') {
            in_commands = false;
        }
        let t = line.trim_start();
        if in_commands {
            if let Some(c) = t.split_whitespace().next() {
                commands.insert(c.to_string());
            }
        } else if t.starts_with('-') && line.len() - t.len() <= 6 {
            // `  -j, --jobs <JOBS>`, `      --list`: an option's first line; its
            // description, when on the same line, follows two spaces.
            let head = t.split("  ").next().unwrap_or_default();
            let takes_value = head.contains(" <");
            for f in head.split([',', ' ']).filter(|f| f.starts_with('-')) {
                flags.insert(f.to_string(), takes_value);
            }
        }
    }
    Ok(Help { commands, flags })
}

/// The subcommand words a command's tokens start with, and the help of the last one.
fn subcommand(tokens: &[String]) -> Result<(Vec<String>, Help), String> {
    let mut words = Vec::new();
    let mut h = help(&words)?;
    for t in tokens {
        if !h.commands.contains(t) {
            break;
        }
        words.push(t.clone());
        h = help(&words)?;
    }
    if !h.commands.is_empty() {
        let shown = tokens
            .get(words.len())
            .map_or("none".into(), |t| format!("`{t}`"));
        return Err(format!(
            "`xtask {}` has no subcommand {shown}; it has {:?}",
            words.join(" "),
            h.commands
        ));
    }
    Ok((words, h))
}

const SELECTION: &[&str] = &["--case", "--exclude", "--partition"];

/// Checks one shown command: its subcommand exists, it knows every flag, and a selection
/// of cases resolves.
fn check_command(c: &Shown) -> Result<(), String> {
    let (words, h) = subcommand(&c.tokens)?;
    let rest = &c.tokens[words.len()..];
    let mut positional = Vec::new();
    let mut selection = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        let t = &rest[i];
        if !t.starts_with('-') {
            positional.push(t.clone());
            i += 1;
            continue;
        }
        let (flag, inline) = match t.split_once('=') {
            Some((f, v)) => (f, Some(v)),
            None => (t.as_str(), None),
        };
        let Some(&takes_value) = h.flags.get(flag) else {
            return Err(format!(
                "{flag} is not a flag of `xtask {}`",
                words.join(" ")
            ));
        };
        let mut taken = vec![t.clone()];
        if takes_value && inline.is_none() {
            i += 1;
            taken.extend(rest.get(i).cloned());
        }
        if SELECTION.contains(&flag) {
            selection.extend(taken);
        }
        i += 1;
    }
    // The selection, resolved as `run --list` resolves it: the whole command for `run`,
    // the same cases for `compare`.
    let list: Vec<String> = match words.as_slice() {
        [w] if w == "run"
            && h.flags.contains_key("--list")
            && !(positional.is_empty() && selection.is_empty()) =>
        {
            let mut a: Vec<String> = c.tokens.clone();
            if !a.iter().any(|t| t == "--list") {
                a.push("--list".into());
            }
            a
        }
        [w] if w == "compare" && !(positional.is_empty() && selection.is_empty()) => {
            let mut a = vec!["run".to_string(), "--list".to_string()];
            a.extend(positional);
            a.extend(selection);
            a
        }
        _ => return Ok(()),
    };
    let args: Vec<&str> = list.iter().map(String::as_str).collect();
    let (code, out, err) = common::xtask_in(&root(), &args);
    if code != 0 || out.trim().is_empty() {
        return Err(format!(
            "its selection does not resolve: `xtask {}` exits {code}:\n{out}{err}",
            args.join(" ")
        ));
    }
    Ok(())
}

#[test]
fn every_cargo_xtask_command_shown_exists_with_its_flags_and_its_selection() {
    let shown = shown_commands();
    // A parser that found nothing would pass everything.
    let readme = shown
        .iter()
        .filter(|c| c.at.starts_with("README.md:"))
        .count();
    assert!(
        readme >= 5,
        "only {readme} commands found in README.md: {shown:#?}"
    );
    let failures: Vec<String> = shown
        .iter()
        .filter_map(|c| {
            check_command(c)
                .err()
                .map(|e| format!("{}: `{}`: {e}", c.at, c.line))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_parsers_see_what_the_pages_hold() {
    assert_eq!(
        shell_words("run --case 'a@*' \"b c\" --x=1  # note"),
        ["run", "--case", "a@*", "b c", "--x=1"]
    );
    assert_eq!(
        links("a [b](c.md#d) `[e](f)` ![g](h.png)"),
        ["c.md#d", "h.png"]
    );
    assert_eq!(
        slug("Verdicts: XFAIL and XPASS"),
        "verdicts-xfail-and-xpass"
    );
    assert_eq!(
        slug("fail_page_alloc and the resync thread"),
        "fail_page_alloc-and-the-resync-thread"
    );
    assert_eq!(repo_path("xtask/src/poll.rs"), Some("xtask/src/poll.rs"));
    assert_eq!(repo_path("results/<run>/<case>"), None);
    assert_eq!(repo_path("/mnt/bitmap"), None);
    let p = Page {
        prose: vec![
            (1, "see `cargo xtask run".into()),
            (2, "--list` and `xtask/`".into()),
        ],
        code: vec![],
    };
    assert_eq!(
        code_spans(&p),
        [(1, "cargo xtask run --list".into()), (2, "xtask/".into())]
    );
    let broken = Shown {
        at: "x.md:1".into(),
        line: "cargo xtask run --no-such-flag".into(),
        tokens: shell_words("run --no-such-flag"),
    };
    let e = check_command(&broken).unwrap_err();
    assert!(e.contains("--no-such-flag"), "{e}");
    let nothing = Shown {
        at: "x.md:1".into(),
        line: "cargo xtask run --case no-such-case".into(),
        tokens: shell_words("run --case no-such-case"),
    };
    assert!(check_command(&nothing).is_err());
    let unknown = Shown {
        at: "x.md:1".into(),
        line: "cargo xtask report nonsense".into(),
        tokens: shell_words("report nonsense"),
    };
    assert!(check_command(&unknown).is_err());
}
