//! One QEMU process: started with its files and sockets handed over open, sandboxed and
//! unprivileged, owned by a guard that kills it on every path out (also when the bench
//! itself dies: `PR_SET_PDEATHSIG`), with every wait bounded and watching for QEMU's own
//! death.

pub mod channel;
pub mod file_bitmap_probe;
pub mod guest;
pub mod handoff;
pub mod qemu;
pub mod qmp;
pub mod sandbox;
pub mod saved;

use crate::poll::{self, Pace, Probe};
use crate::vm::channel::{Channel, ChannelError};
use agent::{Request, Response};
use anyhow::{bail, Context, Result};
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use qemu::{Disk, VmConfig};

pub struct Vm {
    child: Child,
    qmp: qmp::Qmp,
    channel: Channel,
    console_log: PathBuf,
    stderr_log: PathBuf,
    /// From spawning QEMU to the agent's first answer.
    pub boot: Duration,
    /// The guest's uptime when the agent first answered.
    pub guest_uptime_ms: u64,
    pub kernel_release: String,
}

impl Vm {
    /// Starts QEMU and waits, at most `limit`, until the agent answers.
    pub fn start(cfg: &VmConfig, limit: Duration) -> Result<Vm> {
        let started = Instant::now();
        let (qmp_ours, qmp_theirs) = UnixStream::pair().context("socket pair for QMP")?;
        let (agent_ours, agent_theirs) = UnixStream::pair().context("socket pair for the agent")?;
        let mut handoff = qemu::hand_over(cfg)?;
        let qmp_fd = handoff.socket(qmp_theirs.into());
        let agent_fd = handoff.socket(agent_theirs.into());
        let keep = handoff.raw_fds();
        let jail = sandbox::jail();
        let stderr_log = cfg.console_log.with_extension("qemu-stderr");
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args(qemu::all_args(cfg, &handoff, qmp_fd, agent_fd))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_log).context("create qemu.stderr")?);
        // SAFETY: fcntl, setgroups, setres[ug]id and prctl are async-signal-safe. The death
        // signal is armed after the change of user, which would clear it: it ties QEMU's
        // life to the thread that started it, so a bench killed by any signal leaves no
        // QEMU behind.
        unsafe {
            cmd.pre_exec(move || {
                handoff::keep_across_exec(&keep)?;
                if let Some(j) = &jail {
                    j.enter()?;
                }
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        crate::host::echo::command(&cmd);
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("qemu-system-x86_64 not found: install the Debian package qemu-system-x86")
            }
            Err(e) => return Err(e).context("start qemu-system-x86_64"),
        };
        // QEMU's ends of the sockets close here with the rest of what it was handed: its
        // exit is then an end of file on ours.
        drop(handoff);
        let deadline = started + limit;
        let mut guard = Partial {
            child: Some(child),
            stderr_log: stderr_log.clone(),
            console_log: cfg.console_log.clone(),
        };
        let qmp = guard.handshake(qmp_ours, deadline)?;
        let agent_stream = agent_ours;
        let mut qmp = qmp;
        if let Some(saved) = &cfg.incoming {
            saved::load(&mut qmp, saved, deadline)?;
        }
        let mut vm = Vm {
            child: guard.child.take().expect("child present"),
            qmp,
            channel: Channel::new(agent_stream)?,
            console_log: cfg.console_log.clone(),
            stderr_log,
            boot: Duration::ZERO,
            guest_uptime_ms: 0,
            kernel_release: String::new(),
        };
        let left = deadline.saturating_duration_since(Instant::now());
        match vm.call(&Request::Hello, left) {
            Ok(Response::Hello {
                version,
                uptime_ms,
                kernel_release,
            }) => {
                if version != agent::PROTOCOL_VERSION {
                    bail!(
                        "guest agent speaks protocol {version}, the host {}: stale image?",
                        agent::PROTOCOL_VERSION
                    );
                }
                vm.boot = started.elapsed();
                vm.guest_uptime_ms = uptime_ms;
                vm.kernel_release = kernel_release;
                Ok(vm)
            }
            Ok(other) => bail!("guest agent answered hello with {other:?}"),
            Err(e) => Err(e).context(format!("guest never became ready\n{}", vm.console_tail(30))),
        }
    }

    /// One request to the agent, at most `limit` long, ended early if QEMU dies.
    pub fn call(&mut self, req: &Request, limit: Duration) -> Result<Response, ChannelError> {
        let child = &mut self.child;
        let stderr_log = &self.stderr_log;
        let result = self.channel.call(req, limit, || match child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "QEMU exited ({status}) {}",
                read_tail(stderr_log, 5)
            )),
            Err(e) => Err(format!("QEMU: {e}")),
        });
        match result {
            // The channel closes as QEMU exits: say that QEMU exited, which is the news.
            Err(ChannelError::Closed { request }) => {
                match self.wait_exit_status(Duration::from_secs(5)) {
                    Some(status) => Err(ChannelError::Dead(format!(
                        "QEMU exited ({status}) during {request} {}",
                        read_tail(&self.stderr_log, 5)
                    ))),
                    None => Err(ChannelError::Closed { request }),
                }
            }
            other => other,
        }
    }

    /// Polls for QEMU's exit, at most `limit`; whether it exited.
    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        self.wait_exit_status(limit).is_some()
    }

    fn wait_exit_status(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        wait_for_exit(&mut self.child, limit)
    }

    pub fn qmp(&mut self) -> &mut qmp::Qmp {
        &mut self.qmp
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, as a power cut of the host process: whatever QEMU completed is in the
    /// host page cache, whatever the guest had in flight is lost.
    pub fn kill(mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// Saves the running guest to `file` (QMP `stop`, then a migration into the file) and
    /// ends QEMU; `vm::saved` starts VMs from the file.
    pub fn save(mut self, file: &Path, limit: Duration) -> Result<()> {
        saved::store(&mut self.qmp, file, Instant::now() + limit)?;
        self.quit(limit)
    }

    /// A clean end: QMP `quit` (QEMU drains and flushes the disks), then wait for exit.
    pub fn quit(mut self, limit: Duration) -> Result<()> {
        let _ = self.qmp.execute("quit", serde_json::json!({}));
        if !self.wait_exit(limit) {
            bail!("QEMU did not exit within {limit:?} of QMP quit");
        }
        Ok(())
    }

    /// Whether QEMU still runs; after its own exit (a guest panic with `panic=-1`, say),
    /// the exit status.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn console_tail(&self, lines: usize) -> String {
        read_tail(&self.console_log, lines)
    }

    pub fn console_log(&self) -> &Path {
        &self.console_log
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// QEMU before it became a [`Vm`]: killed if start-up fails at any step.
struct Partial {
    child: Option<Child>,
    stderr_log: PathBuf,
    console_log: PathBuf,
}

impl Partial {
    /// QMP's greeting, awaited until `deadline`; QEMU's exit before it is reported with
    /// what QEMU and the guest printed.
    fn handshake(&mut self, stream: UnixStream, deadline: Instant) -> Result<qmp::Qmp> {
        let limit = deadline.saturating_duration_since(Instant::now());
        match qmp::Qmp::handshake(stream, limit.max(Duration::from_millis(1))) {
            Ok(q) => Ok(q),
            Err(e) => {
                let child = self.child.as_mut().expect("child present");
                // QEMU's exit closes the socket a moment before the exit can be reaped.
                let exited = wait_for_exit(child, Duration::from_secs(2));
                match exited {
                    Some(status) => bail!(
                        "QEMU exited ({status}) before its QMP greeting:\n{}{}",
                        read_tail(&self.stderr_log, 20),
                        read_tail(&self.console_log, 20)
                    ),
                    None => Err(e.context(format!("QMP handshake (boot deadline {limit:?})"))),
                }
            }
        }
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Polls for `child`'s exit, at most `limit`; its status if it exited.
fn wait_for_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    poll::until(
        limit,
        Pace::ms(5, 100),
        || {
            Ok::<_, ()>(match child.try_wait() {
                Ok(Some(status)) => Probe::Done(status),
                _ => Probe::Pending(()),
            })
        },
        |()| (),
    )
    .ok()
}

/// The last `lines` lines of a log, for error messages.
pub fn read_tail(path: &Path, lines: usize) -> String {
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let mut bytes = Vec::new();
        let _ = f.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    all[start..].iter().map(|l| format!("  | {l}\n")).collect()
}
