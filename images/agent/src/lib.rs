//! The host-guest protocol of md-bitmap-bench, declared once for both ends.
//!
//! One JSON object per line in each direction over a virtio-serial port named
//! [`PORT_NAME`]. The host sends a [`Request`], the agent answers with exactly one
//! [`Response`]; the host never has two requests outstanding. The serial console is
//! never used for this: it stays a log of what the kernel printed.

use serde::{Deserialize, Serialize};

pub mod workload;

/// The name QEMU gives the virtio-serial port (`virtserialport,name=...`); the agent finds
/// its device by this name under `/sys/class/virtio-ports`.
pub const PORT_NAME: &str = "org.mdbb.agent";

/// Bumped whenever a request or response changes shape; the host refuses a guest that
/// speaks another version, so a stale image is reported rather than misread.
pub const PROTOCOL_VERSION: u32 = 2;

/// The line the agent prints on the console when it serves requests; the host needs it only
/// to explain a boot that never got that far.
pub const READY_BANNER: &str = "mdbb-agent: ready";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Hello,
    /// Run `cmd` with `/bin/sh -c` and wait for it, at most `timeout_ms`.
    Run {
        cmd: String,
        #[serde(default)]
        env: Vec<(String, String)>,
        timeout_ms: u64,
    },
    /// Start `cmd` in the background; answered with [`Response::Spawned`].
    Spawn {
        cmd: String,
        #[serde(default)]
        env: Vec<(String, String)>,
    },
    /// Wait up to `timeout_ms` for a spawned command; [`Response::Running`] if it goes on.
    Wait {
        id: u32,
        timeout_ms: u64,
    },
    /// Read `len` bytes at `offset` of a file or block device, through the page cache
    /// or with `O_DIRECT`. A short answer means end of file.
    Read {
        path: String,
        offset: u64,
        len: u64,
        direct: bool,
    },
    /// The file's extents, from `FS_IOC_FIEMAP`.
    Fiemap {
        path: String,
    },
    /// Create (or truncate) `path` with `data`, and fsync it.
    Write {
        path: String,
        #[serde(with = "b64")]
        data: Vec<u8>,
    },
    /// Hand the file to the array with the `SET_BITMAP_FILE` ioctl, as mdadm does for
    /// `--bitmap=<file>` (the file open read-write, the only writer).
    SetBitmapFile {
        md: String,
        file: String,
    },
    /// Open `path` for writing and close it again: tells whether the kernel refuses it
    /// (md holds its bitmap file with `deny_write_access`, so this is `ETXTBSY`).
    TryOpenWrite {
        path: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Response {
    Hello {
        version: u32,
        /// Guest uptime in milliseconds when the agent answered.
        uptime_ms: u64,
        kernel_release: String,
    },
    Ran(RunOutput),
    Spawned {
        id: u32,
    },
    Running {
        id: u32,
    },
    Bytes {
        #[serde(with = "b64")]
        data: Vec<u8>,
    },
    Extents {
        extents: Vec<Extent>,
    },
    Opened {
        /// `None` when the open succeeded.
        errno: Option<i32>,
    },
    Done,
    Error {
        errno: Option<i32>,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOutput {
    /// Exit status; `None` when the command died of a signal or was killed at its deadline.
    pub status: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub elapsed_ms: u64,
    pub stdout: String,
    pub stderr: String,
}

impl RunOutput {
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }
}

/// One `struct fiemap_extent`, all in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extent {
    pub logical: u64,
    pub physical: u64,
    pub length: u64,
    pub flags: u32,
}

mod b64 {
    use base64::{engine::general_purpose::STANDARD, Engine};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(data))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_responses_round_trip_as_one_line() {
        let req = Request::Read {
            path: "/mnt/bitmap".into(),
            offset: 4096,
            len: 512,
            direct: true,
        };
        let line = serde_json::to_string(&req).unwrap();
        assert!(!line.contains('\n'));
        assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), req);

        let resp = Response::Bytes {
            data: vec![0, 1, 2, 255, b'\n'],
        };
        let line = serde_json::to_string(&resp).unwrap();
        assert!(!line.contains('\n'));
        assert_eq!(serde_json::from_str::<Response>(&line).unwrap(), resp);
    }
}
