//! A host command whose output goes to the log of the step that runs it (apt's warnings,
//! dpkg's notes): kept for whoever asks why a step did what it did, never on the terminal.

use anyhow::{Context, Result};
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

/// Runs `cmd` to its end, its stdout and stderr appended to `log` under a `$ cmd` line;
/// returns them too, for the caller to read or to quote in an error.
pub fn output(cmd: &mut Command, log: &Path) -> Result<Output> {
    super::echo::command(cmd);
    let line = super::echo::line(cmd);
    let out = cmd
        .output()
        .with_context(|| format!("run {}", cmd.get_program().to_string_lossy()))?;
    if let Some(dir) = log.parent() {
        fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("open {}", log.display()))?;
    writeln!(file, "$ {line}")?;
    file.write_all(&out.stdout)?;
    file.write_all(&out.stderr)?;
    writeln!(file, "({})", out.status)?;
    Ok(out)
}

/// The last `n` lines of what a command said, for an error: `stderr`, or `stdout` when
/// stderr is empty.
pub fn tail(out: &Output, n: usize) -> String {
    let text = if out.stderr.iter().all(u8::is_ascii_whitespace) {
        &out.stdout
    } else {
        &out.stderr
    };
    let text = String::from_utf8_lossy(text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_command_says_is_appended_to_its_log_not_printed() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("logs/step.log");
        for word in ["one", "two"] {
            let out = output(
                Command::new("sh").args(["-c", &format!("echo {word}; echo W: warned >&2")]),
                &log,
            )
            .unwrap();
            assert!(out.status.success());
            assert_eq!(tail(&out, 1), "W: warned");
        }
        let text = fs::read_to_string(&log).unwrap();
        assert_eq!(
            text,
            "$ sh -c 'echo one; echo W: warned >&2'\none\nW: warned\n(exit status: 0)\n\
             $ sh -c 'echo two; echo W: warned >&2'\ntwo\nW: warned\n(exit status: 0)\n"
        );
    }
}
