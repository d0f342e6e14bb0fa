//! The guest agent: started by the image's `/init`, it serves the host's requests over
//! the virtio-serial port until the VM dies. It runs as PID 1, so it never exits on an
//! error of its own: every failure becomes a [`Response::Error`] for the host to report.

use agent::{Extent, Request, Response, RunOutput, PORT_NAME, PROTOCOL_VERSION, READY_BANNER};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use agent::workload;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("workload") {
        match workload::parse(&args[1..]) {
            Ok(w) => workload::run(&w),
            Err(e) => {
                eprintln!("agent workload: {e}");
                std::process::exit(2);
            }
        }
    }
    let port = match wait_for_port(Duration::from_secs(30)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("mdbb-agent: {e}");
            // PID 1 must not exit: leave the host's deadline to report the failure.
            loop {
                thread::park();
            }
        }
    };
    println!("{READY_BANNER} on {}", port.display());
    let mut agent = Agent::default();
    loop {
        if let Err(e) = agent.serve(&port) {
            eprintln!("mdbb-agent: {}: {e}", port.display());
        }
        // The port reads EOF while no host is connected: wait for one, with backoff.
        thread::sleep(Duration::from_millis(20)); // poll for a host to connect
    }
}

fn wait_for_port(limit: Duration) -> io::Result<PathBuf> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(dir) = fs::read_dir("/sys/class/virtio-ports") {
            for entry in dir.flatten() {
                let name = fs::read_to_string(entry.path().join("name")).unwrap_or_default();
                if name.trim() == PORT_NAME {
                    return Ok(Path::new("/dev").join(entry.file_name()));
                }
            }
        }
        if Instant::now() > deadline {
            return Err(io::Error::other(format!(
                "no virtio-serial port named {PORT_NAME} within {limit:?}"
            )));
        }
        thread::sleep(Duration::from_millis(10)); // poll until the deadline above
    }
}

#[derive(Default)]
struct Agent {
    next_id: u32,
    spawned: HashMap<u32, Spawned>,
}

struct Spawned {
    child: Child,
    started: Instant,
    out: PathBuf,
    err: PathBuf,
}

impl Agent {
    fn serve(&mut self, port: &Path) -> io::Result<()> {
        let file = OpenOptions::new().read(true).write(true).open(port)?;
        let mut writer = file.try_clone()?;
        let mut reader = BufReader::new(file);
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            if line.trim().is_empty() {
                continue;
            }
            let response = match serde_json::from_str::<Request>(&line) {
                Ok(req) => self.handle(req),
                Err(e) => error(None, format!("bad request {:?}: {e}", line.trim())),
            };
            let mut text = serde_json::to_string(&response).expect("responses serialize");
            text.push('\n');
            writer.write_all(text.as_bytes())?;
            writer.flush()?;
        }
    }

    fn handle(&mut self, req: Request) -> Response {
        match req {
            Request::Hello => Response::Hello {
                version: PROTOCOL_VERSION,
                uptime_ms: uptime_ms(),
                kernel_release: fs::read_to_string("/proc/sys/kernel/osrelease")
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            },
            Request::Run {
                cmd,
                env,
                timeout_ms,
            } => match self.spawn(&cmd, &env) {
                Ok(id) => self.wait(id, timeout_ms, true),
                Err(e) => io_error(&format!("spawn {cmd:?}"), e),
            },
            Request::Spawn { cmd, env } => match self.spawn(&cmd, &env) {
                Ok(id) => Response::Spawned { id },
                Err(e) => io_error(&format!("spawn {cmd:?}"), e),
            },
            Request::Wait { id, timeout_ms } => self.wait(id, timeout_ms, false),
            Request::Read {
                path,
                offset,
                len,
                direct,
            } => match read_range(&path, offset, len, direct) {
                Ok(data) => Response::Bytes { data },
                Err(e) => io_error(&format!("read {path}"), e),
            },
            Request::Fiemap { path } => match fiemap(&path) {
                Ok(extents) => Response::Extents { extents },
                Err(e) => io_error(&format!("fiemap {path}"), e),
            },
            Request::Write { path, data } => match write_file(&path, &data) {
                Ok(()) => Response::Done,
                Err(e) => io_error(&format!("write {path}"), e),
            },
            Request::SetBitmapFile { md, file } => match set_bitmap_file(&md, &file) {
                Ok(()) => Response::Done,
                Err(e) => io_error(&format!("SET_BITMAP_FILE {file} on {md}"), e),
            },
            Request::TryOpenWrite { path } => match OpenOptions::new().write(true).open(&path) {
                Ok(_) => Response::Opened { errno: None },
                Err(e) => Response::Opened {
                    errno: e.raw_os_error(),
                },
            },
        }
    }

    fn spawn(&mut self, cmd: &str, env: &[(String, String)]) -> io::Result<u32> {
        self.next_id += 1;
        let id = self.next_id;
        // Output goes to files, not pipes, so a chatty command never blocks on a full pipe
        // while nobody reads it.
        let out = PathBuf::from(format!("/tmp/.agent-{id}.out"));
        let err = PathBuf::from(format!("/tmp/.agent-{id}.err"));
        let child = Command::new("/bin/sh")
            .arg("-c")
            .arg(cmd)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(File::create(&out)?)
            .stderr(File::create(&err)?)
            .process_group(0)
            .spawn()?;
        self.spawned.insert(
            id,
            Spawned {
                child,
                started: Instant::now(),
                out,
                err,
            },
        );
        Ok(id)
    }

    /// Waits for a spawned command; `kill_at_deadline` ends it (and its process group)
    /// when the time is up instead of answering that it still runs.
    fn wait(&mut self, id: u32, timeout_ms: u64, kill_at_deadline: bool) -> Response {
        let Some(sp) = self.spawned.get_mut(&id) else {
            return error(None, format!("no spawned command {id}"));
        };
        let deadline = Instant::now() + Duration::from_millis(timeout_ms);
        let mut pause = Duration::from_millis(1);
        let mut timed_out = false;
        let status = loop {
            match sp.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    thread::sleep(pause); // poll with backoff until the deadline
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Ok(None) if kill_at_deadline => {
                    timed_out = true;
                    unsafe { libc::kill(-(sp.child.id() as i32), libc::SIGKILL) };
                    match sp.child.wait() {
                        Ok(status) => break status,
                        Err(e) => return io_error("wait after kill", e),
                    }
                }
                Ok(None) => return Response::Running { id },
                Err(e) => return io_error("wait", e),
            }
        };
        let sp = self.spawned.remove(&id).expect("present above");
        let read = |p: &Path| {
            let text = String::from_utf8_lossy(&fs::read(p).unwrap_or_default()).into_owned();
            let _ = fs::remove_file(p);
            text
        };
        Response::Ran(RunOutput {
            status: status.code(),
            signal: status.signal(),
            timed_out,
            elapsed_ms: sp.started.elapsed().as_millis() as u64,
            stdout: read(&sp.out),
            stderr: read(&sp.err),
        })
    }
}

const DIRECT_ALIGN: usize = 4096;

/// Reads `[offset, offset+len)`; with `direct`, through an aligned bounce buffer that
/// covers the range rounded out to [`DIRECT_ALIGN`], as `O_DIRECT` requires.
fn read_range(path: &str, offset: u64, len: u64, direct: bool) -> io::Result<Vec<u8>> {
    let mut opts = OpenOptions::new();
    opts.read(true);
    if direct {
        opts.custom_flags(libc::O_DIRECT);
    }
    let file = opts.open(path)?;
    let len = usize::try_from(len).map_err(io::Error::other)?;
    if !direct {
        let mut buf = vec![0u8; len];
        let n = read_full_at(&file, &mut buf, offset)?;
        buf.truncate(n);
        return Ok(buf);
    }
    let align = DIRECT_ALIGN as u64;
    let start = offset / align * align;
    let end = (offset + len as u64).div_ceil(align) * align;
    let span = (end - start) as usize;
    let mut bounce = AlignedBuf::new(span.max(DIRECT_ALIGN), DIRECT_ALIGN);
    let n = read_full_at(&file, bounce.as_mut_slice(), start)?;
    let skip = (offset - start) as usize;
    let avail = n.saturating_sub(skip).min(len);
    Ok(bounce.as_mut_slice()[skip..skip + avail].to_vec())
}

fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

struct AlignedBuf {
    ptr: *mut u8,
    layout: std::alloc::Layout,
}

impl AlignedBuf {
    fn new(size: usize, align: usize) -> Self {
        let layout = std::alloc::Layout::from_size_align(size, align).expect("valid layout");
        // SAFETY: size is non-zero (callers pass at least `align`).
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        assert!(
            !ptr.is_null(),
            "out of memory for a {size}-byte read buffer"
        );
        Self { ptr, layout }
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: ptr owns layout.size() initialised bytes for the life of self.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.layout.size()) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in new() with this layout.
        unsafe { std::alloc::dealloc(self.ptr, self.layout) }
    }
}

/// `_IOWR('f', 11, struct fiemap)`
const FS_IOC_FIEMAP: libc::c_ulong = 0xC020_660B;
const FIEMAP_HEADER: usize = 32;
const FIEMAP_EXTENT: usize = 56;
const FIEMAP_EXTENT_LAST: u32 = 0x1;

fn fiemap(path: &str) -> io::Result<Vec<Extent>> {
    let file = File::open(path)?;
    let mut extents = Vec::new();
    let mut start = 0u64;
    const BATCH: usize = 64;
    loop {
        // u64 storage keeps the kernel's struct alignment.
        let mut buf = vec![0u64; (FIEMAP_HEADER + BATCH * FIEMAP_EXTENT) / 8];
        buf[0] = start; // fm_start
        buf[1] = u64::MAX - start; // fm_length
        let bytes: &mut [u8] =
            unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr() as *mut u8, buf.len() * 8) };
        bytes[24..28].copy_from_slice(&(BATCH as u32).to_ne_bytes()); // fm_extent_count
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), FS_IOC_FIEMAP as _, bytes.as_mut_ptr()) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        let mapped = u32::from_ne_bytes(bytes[20..24].try_into().unwrap()) as usize;
        if mapped == 0 {
            return Ok(extents);
        }
        let u64_at = |o: usize| u64::from_ne_bytes(bytes[o..o + 8].try_into().unwrap());
        for i in 0..mapped {
            let base = FIEMAP_HEADER + i * FIEMAP_EXTENT;
            let e = Extent {
                logical: u64_at(base),
                physical: u64_at(base + 8),
                length: u64_at(base + 16),
                flags: u32::from_ne_bytes(bytes[base + 40..base + 44].try_into().unwrap()),
            };
            start = e.logical + e.length;
            extents.push(e);
            if e.flags & FIEMAP_EXTENT_LAST != 0 {
                return Ok(extents);
            }
        }
    }
}

fn write_file(path: &str, data: &[u8]) -> io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(data)?;
    f.sync_all()
}

/// `_IOW(MD_MAJOR, 0x2b, int)` from `include/uapi/linux/raid/md_u.h`.
const SET_BITMAP_FILE: libc::c_ulong = 0x4004_092b;

fn set_bitmap_file(md: &str, file: &str) -> io::Result<()> {
    let md = File::open(md)?;
    let bitmap = OpenOptions::new().read(true).write(true).open(file)?;
    // The kernel takes its own reference to the file; ours can close afterwards.
    let rc = unsafe {
        libc::ioctl(
            md.as_raw_fd(),
            SET_BITMAP_FILE as _,
            bitmap.as_raw_fd() as libc::c_int,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn uptime_ms() -> u64 {
    let mut text = String::new();
    let _ = File::open("/proc/uptime").and_then(|mut f| f.read_to_string(&mut text));
    let secs: f64 = text
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0);
    (secs * 1000.0) as u64
}

fn error(errno: Option<i32>, message: String) -> Response {
    Response::Error { errno, message }
}

fn io_error(what: &str, e: io::Error) -> Response {
    error(e.raw_os_error(), format!("{what}: {e}"))
}
