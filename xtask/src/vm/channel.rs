//! The host side of the agent protocol: one request, one response, each awaited with a
//! deadline while something else (the VM) is asked whether it is still alive. It knows
//! nothing of QEMU: the caller says what "alive" means.

use agent::{Request, Response};
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("no answer from the guest agent to {request} within {limit:?}")]
    Deadline { request: String, limit: Duration },
    #[error("the guest agent's channel closed while waiting for {request}")]
    Closed { request: String },
    #[error("{0}")]
    Dead(String),
    #[error("guest channel: {0}")]
    Io(#[from] io::Error),
    #[error("the guest agent sent {line:?}: {source}")]
    Garbled {
        line: String,
        source: serde_json::Error,
    },
}

pub struct Channel {
    stream: UnixStream,
    pending: Vec<u8>,
}

/// How often a wait looks at the VM between reads.
const SLICE: Duration = Duration::from_millis(100);

impl Channel {
    pub fn new(stream: UnixStream) -> io::Result<Self> {
        stream.set_read_timeout(Some(SLICE))?;
        Ok(Self {
            stream,
            pending: Vec::new(),
        })
    }

    /// Sends `req` and waits at most `limit` for its answer; `alive` is called between
    /// slices of the wait and ends it early with its error (QEMU died, say).
    pub fn call(
        &mut self,
        req: &Request,
        limit: Duration,
        mut alive: impl FnMut() -> Result<(), String>,
    ) -> Result<Response, ChannelError> {
        let mut line = serde_json::to_vec(req).expect("requests serialize");
        line.push(b'\n');
        self.stream.write_all(&line)?;
        let what = describe(req);
        let deadline = Instant::now() + limit;
        let mut buf = [0u8; 64 * 1024];
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                let text = String::from_utf8_lossy(&line).trim().to_string();
                return serde_json::from_str(&text)
                    .map_err(|source| ChannelError::Garbled { line: text, source });
            }
            match self.stream.read(&mut buf) {
                Ok(0) => return Err(ChannelError::Closed { request: what }),
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    alive().map_err(ChannelError::Dead)?;
                    if Instant::now() > deadline {
                        return Err(ChannelError::Deadline {
                            request: what,
                            limit,
                        });
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// A short name of a request for messages (a command is cut, data is never shown).
pub fn describe(req: &Request) -> String {
    let cut = |s: &str| {
        let s: String = s.chars().take(80).collect();
        s
    };
    match req {
        Request::Hello => "hello".into(),
        Request::Run { cmd, .. } => format!("run `{}`", cut(cmd)),
        Request::Spawn { cmd, .. } => format!("spawn `{}`", cut(cmd)),
        Request::Wait { id, .. } => format!("wait for command {id}"),
        Request::Read {
            path,
            offset,
            len,
            direct,
        } => {
            format!(
                "read {path} [{offset}, +{len}){}",
                if *direct { " O_DIRECT" } else { "" }
            )
        }
        Request::Fiemap { path } => format!("fiemap {path}"),
        Request::TryOpenWrite { path } => format!("open {path} for writing"),
        Request::Write { path, data } => format!("write {} bytes to {path}", data.len()),
        Request::SetBitmapFile { md, file } => format!("SET_BITMAP_FILE {file} on {md}"),
    }
}
