//! Whether the commands the bench runs on the host are shown. A person running the bench
//! reads the bench's own lines: a `$ cp --sparse=always ...` among the case lines is noise
//! to them, and useful only when asking what the bench did (`--verbose`). What the
//! commands themselves say goes to the log of their step, never to the terminal.

use std::io::Write;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once, from `--verbose`, before anything runs.
static VERBOSE: AtomicBool = AtomicBool::new(false);

pub fn set_verbose(on: bool) {
    VERBOSE.store(on, Ordering::Relaxed);
}

pub fn verbose() -> bool {
    VERBOSE.load(Ordering::Relaxed)
}

/// An xshell command about to run, echoed under `--verbose` whichever way it runs (xshell
/// echoes only `run`, and always unless told otherwise).
pub fn sh(cmd: xshell::Cmd<'_>) -> xshell::Cmd<'_> {
    sh_to(&mut std::io::stderr().lock(), verbose(), cmd)
}

fn sh_to<'a>(out: &mut impl Write, verbose: bool, cmd: xshell::Cmd<'a>) -> xshell::Cmd<'a> {
    if verbose {
        // A closed stderr is no reason to stop a run.
        let _ = writeln!(out, "$ {cmd}");
    }
    cmd.quiet()
}

/// Echoes `cmd` to stderr under `--verbose`, as xshell echoes its own; call it just
/// before the command runs.
pub fn command(cmd: &Command) {
    // A closed stderr is no reason to stop a run.
    let _ = echo_to(&mut std::io::stderr().lock(), verbose(), cmd);
}

/// The echo of `cmd` on `out` when `verbose`: `$ program args`, each quoted when the
/// shell would need it.
pub fn echo_to(out: &mut impl Write, verbose: bool, cmd: &Command) -> std::io::Result<()> {
    if verbose {
        writeln!(out, "$ {}", line(cmd))?;
    }
    Ok(())
}

/// `cmd` as a shell line.
pub fn line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| quote(&a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_is_echoed_only_when_verbose() {
        let mut cmd = Command::new("cp");
        cmd.args(["--sparse=always", "a disk.img", "b.img"]);
        let echoed = |verbose| {
            let mut out = Vec::new();
            echo_to(&mut out, verbose, &cmd).unwrap();
            String::from_utf8(out).unwrap()
        };
        assert_eq!(echoed(false), "");
        assert_eq!(echoed(true), "$ cp --sparse=always 'a disk.img' b.img\n");
    }

    #[test]
    fn quoting_keeps_a_line_the_shell_would_run_as_it_was() {
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("Dir::Cache=/var/x"), "Dir::Cache=/var/x");
    }

    /// xshell commands follow the same switch, echoed once: xshell's own echo is off (its
    /// `Debug` is the only view of that).
    #[test]
    fn xshell_commands_are_echoed_only_when_verbose_and_only_once() {
        let shell = xshell::Shell::new().unwrap();
        let echoed = |verbose| {
            let mut out = Vec::new();
            let cmd = sh_to(
                &mut out,
                verbose,
                xshell::cmd!(shell, "cp --sparse=always a b"),
            );
            (String::from_utf8(out).unwrap(), format!("{cmd:?}"))
        };
        let (quiet, cmd) = echoed(false);
        assert_eq!(quiet, "");
        assert!(cmd.contains("quiet: true"), "{cmd}");
        let (loud, cmd) = echoed(true);
        assert_eq!(loud, "$ cp --sparse=always a b\n");
        assert!(cmd.contains("quiet: true"), "{cmd}");
    }
}
