//! A QMP client for the few commands the bench sends (quit, stop, cont, I/O throttling,
//! migration, and `getfd`, which carries a descriptor with it).
//! QMP is one JSON object per line; the crates that wrap it bring an async runtime or a
//! generated schema the bench does not need.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, IoSlice, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Reads the greeting and enters command mode.
    pub fn handshake(stream: UnixStream, timeout: Duration) -> Result<Self> {
        stream.set_read_timeout(Some(timeout))?;
        let writer = stream.try_clone()?;
        let mut qmp = Self {
            reader: BufReader::new(stream),
            writer,
        };
        let greeting = qmp.read_message().context("QMP greeting")?;
        if greeting.get("QMP").is_none() {
            bail!("unexpected QMP greeting: {greeting}");
        }
        qmp.execute("qmp_capabilities", json!({}))?;
        Ok(qmp)
    }

    fn read_message(&mut self) -> Result<Value> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            bail!("QMP connection closed");
        }
        serde_json::from_str(&line).with_context(|| format!("QMP sent {line:?}"))
    }

    /// Runs one command and returns its `return` value; events that arrive meanwhile are
    /// skipped.
    pub fn execute(&mut self, command: &str, arguments: Value) -> Result<Value> {
        let msg = json!({ "execute": command, "arguments": arguments });
        writeln!(self.writer, "{msg}")?;
        self.reply(command)
    }

    /// Hands `fd` to QEMU under `name` (QMP `getfd`: the descriptor travels with the
    /// command as SCM_RIGHTS), for a later command to name it (`fd:NAME`).
    pub fn send_fd(&mut self, name: &str, fd: impl AsFd) -> Result<()> {
        use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
        let msg = format!(
            "{}\n",
            json!({ "execute": "getfd", "arguments": { "fdname": name } })
        );
        let fds = [fd.as_fd().as_raw_fd()];
        let sent = sendmsg::<()>(
            self.writer.as_raw_fd(),
            &[IoSlice::new(msg.as_bytes())],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .context("QMP getfd: sendmsg")?;
        anyhow::ensure!(
            sent == msg.len(),
            "QMP getfd: a short send ({sent} of {})",
            msg.len()
        );
        self.reply("getfd").map(|_| ())
    }

    fn reply(&mut self, command: &str) -> Result<Value> {
        loop {
            let reply = self
                .read_message()
                .with_context(|| format!("QMP {command}"))?;
            if let Some(r) = reply.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = reply.get("error") {
                bail!("QMP {command}: {e}");
            }
        }
    }
}
