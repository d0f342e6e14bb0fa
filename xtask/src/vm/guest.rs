//! What the bench asks of a guest, typed: run a command (once, or until it succeeds),
//! read a file or device, map a file's extents, start and reap background commands. Each
//! returns the one answer its request expects; an agent error or any other answer is an
//! error naming the request.

use super::channel::describe;
use super::Vm;
use crate::poll::{self, Pace, Probe};
use agent::{Extent, Request, Response};
use anyhow::{bail, Result};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(10);

fn call(vm: &mut Vm, req: Request) -> Result<Response> {
    let what = describe(&req);
    match vm.call(&req, LIMIT)? {
        Response::Error { message, .. } => bail!("{what}: {message}"),
        other => Ok(other),
    }
}

pub fn read(vm: &mut Vm, path: &str, offset: u64, len: u64, direct: bool) -> Result<Vec<u8>> {
    match call(
        vm,
        Request::Read {
            path: path.into(),
            offset,
            len,
            direct,
        },
    )? {
        Response::Bytes { data } => Ok(data),
        other => bail!("read {path}: answered {other:?}"),
    }
}

pub fn fiemap(vm: &mut Vm, path: &str) -> Result<Vec<Extent>> {
    match call(vm, Request::Fiemap { path: path.into() })? {
        Response::Extents { extents } => Ok(extents),
        other => bail!("fiemap {path}: answered {other:?}"),
    }
}

/// Starts `cmd` in the background; the id is for [`wait`].
pub fn spawn(vm: &mut Vm, cmd: &str) -> Result<u32> {
    match call(
        vm,
        Request::Spawn {
            cmd: cmd.into(),
            env: vec![],
        },
    )? {
        Response::Spawned { id } => Ok(id),
        other => bail!("spawn `{cmd}`: answered {other:?}"),
    }
}

/// The spawned command's output once it ended, `None` while it still runs.
pub fn wait(vm: &mut Vm, id: u32, limit: Duration) -> Result<Option<agent::RunOutput>> {
    let req = Request::Wait {
        id,
        timeout_ms: limit.as_millis() as u64,
    };
    match vm.call(&req, limit + LIMIT)? {
        Response::Ran(out) => Ok(Some(out)),
        Response::Running { .. } => Ok(None),
        other => bail!("wait for {id}: answered {other:?}"),
    }
}

/// `None` when the open for writing succeeded, else its errno.
pub fn try_open_write(vm: &mut Vm, path: &str) -> Result<Option<i32>> {
    match call(vm, Request::TryOpenWrite { path: path.into() })? {
        Response::Opened { errno } => Ok(errno),
        other => bail!("open {path} for writing: answered {other:?}"),
    }
}

/// Creates (or truncates) `path` with `data` and fsyncs it.
pub fn write(vm: &mut Vm, path: &str, data: &[u8]) -> Result<()> {
    match call(
        vm,
        Request::Write {
            path: path.into(),
            data: data.to_vec(),
        },
    )? {
        Response::Done => Ok(()),
        other => bail!("write {path}: answered {other:?}"),
    }
}

/// Runs `cmd` in the guest; the agent kills it at `limit`, the host gives the agent a
/// margin beyond that before calling the guest hung.
pub fn run(
    vm: &mut Vm,
    cmd: &str,
    env: &[(String, String)],
    limit: Duration,
) -> Result<agent::RunOutput> {
    let req = Request::Run {
        cmd: cmd.into(),
        env: env.to_vec(),
        timeout_ms: limit.as_millis() as u64,
    };
    match vm.call(&req, limit + Duration::from_secs(15))? {
        Response::Ran(out) => Ok(out),
        Response::Error { message, .. } => bail!("agent: {message}"),
        other => bail!("agent answered {other:?}"),
    }
}

/// Runs `cmd` until it exits 0, at most `limit`; the error carries the last output.
pub fn poll_until(
    vm: &mut Vm,
    cmd: &str,
    env: &[(String, String)],
    limit: Duration,
) -> Result<agent::RunOutput> {
    poll_until_showing(vm, cmd, env, limit, &mut |_| {})
}

/// [`poll_until`], handing each answer that is not yet true to `pending` (to show how far
/// the guest got).
pub fn poll_until_showing(
    vm: &mut Vm,
    cmd: &str,
    env: &[(String, String)],
    limit: Duration,
    pending: &mut dyn FnMut(&agent::RunOutput),
) -> Result<agent::RunOutput> {
    let deadline = Instant::now() + limit;
    poll::until(
        limit,
        Pace::ms(50, 500),
        || {
            let left = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_secs(1));
            let out = run(vm, cmd, env, left.min(Duration::from_secs(30)))?;
            Ok(if out.success() {
                Probe::Done(out)
            } else {
                pending(&out);
                Probe::Pending(out)
            })
        },
        |out| {
            anyhow::anyhow!(
                "still not true after {limit:?} (deadline passed): last exit {:?}, stdout {:?}, stderr {:?}",
                out.status,
                out.stdout.trim(),
                out.stderr.trim()
            )
        },
    )
}
