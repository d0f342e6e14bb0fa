//! The QEMU command line, built from small pure functions so that each part is tested
//! without booting anything. Every file on it is handed over open (`vm::handoff`): the
//! functions take the names QEMU is to use for them.

use super::handoff::Handoff;
use super::sandbox;
use crate::host::Accel;
use std::ffi::OsString;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

/// One virtio-blk disk backed by a raw file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    pub name: String,
    pub path: PathBuf,
    /// QEMU's `cache=` mode; `none` (O_DIRECT on the host) unless the host filesystem
    /// cannot do it.
    pub cache: String,
    /// Extra `-drive` options, e.g. `throttling.iops-write=50`.
    pub drive_options: Vec<String>,
    /// A blkdebug rule file: the disk's I/O goes through QEMU's error injector.
    pub blkdebug: Option<PathBuf>,
    /// A write log: every write and flush the disk completes is logged there, with its
    /// data (QEMU's `blklogwrites`, dm-log-writes format), and QEMU's virtio request
    /// merging is off so that each log entry is one request the guest issued.
    pub log: Option<PathBuf>,
    /// Whether the guest sees a volatile write cache (`write back` in
    /// `queue/write_cache`); without one QEMU makes every write durable before it
    /// completes (`cache.writeback=off`).
    pub write_cache: bool,
}

impl Disk {
    /// The raw file `path` as the guest's disk `name`, QEMU caching it as `cache` says,
    /// with a write cache and nothing in between.
    pub fn new(name: &str, path: PathBuf, cache: &str) -> Disk {
        Disk {
            name: name.into(),
            path,
            cache: cache.into(),
            drive_options: vec![],
            blkdebug: None,
            log: None,
            write_cache: true,
        }
    }

    /// A new sparse disk of `size` zero bytes, `dir/<name>.img`, host-cached (what the
    /// guest sees does not depend on the host's caching: both modes present a write cache).
    pub fn zeros(dir: &Path, name: &str, size: u64) -> anyhow::Result<Disk> {
        let path = dir.join(format!("{name}.img"));
        std::fs::File::create(&path)?.set_len(size)?;
        Ok(Disk::new(name, path, "writeback"))
    }
}

#[derive(Debug, Clone)]
pub struct VmConfig {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub cmdline: String,
    pub memory_mib: u64,
    pub cpus: u32,
    pub accel: Accel,
    pub disks: Vec<Disk>,
    pub console_log: PathBuf,
    /// A saved guest (`vm::saved`) to start from instead of booting: QEMU waits for it
    /// (`-incoming defer`) and the VM resumes where the guest was saved.
    pub incoming: Option<PathBuf>,
}

/// The kernel command line every guest gets: the console on the first serial port, and a
/// panic that ends QEMU at once (`panic=-1` reboots, `-no-reboot` turns that into exit).
pub const BASE_CMDLINE: &str = "console=ttyS0 panic=-1 rdinit=/init";

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

pub fn machine_args(cfg: &VmConfig) -> Vec<OsString> {
    let mut a = os(&[
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
        "-nic",
        "none",
    ]);
    a.extend(os(&[
        "-machine",
        "q35",
        "-m",
        &cfg.memory_mib.to_string(),
        "-smp",
        &cfg.cpus.to_string(),
    ]));
    a.extend(accel_args(cfg.accel, cfg.cpus));
    a
}

pub fn accel_args(accel: Accel, cpus: u32) -> Vec<OsString> {
    match accel {
        Accel::Kvm => os(&["-accel", "kvm", "-cpu", "host"]),
        // Multi-threaded TCG races the kernel's cross-CPU code patching (text_poke_bp),
        // seen here as "Oops: int3" in sched_clock_cpu at boot: several vCPUs share one
        // host thread (1.7 s slower per boot here); a single vCPU keeps its own.
        Accel::Tcg if cpus > 1 => os(&["-accel", "tcg,thread=single"]),
        Accel::Tcg => os(&["-accel", "tcg"]),
    }
}

pub fn boot_args(cfg: &VmConfig, h: &Handoff) -> Vec<OsString> {
    let mut a = vec![
        "-kernel".into(),
        h.name(&cfg.kernel),
        "-initrd".into(),
        h.name(&cfg.initrd),
    ];
    a.push("-append".into());
    a.push(format!("{BASE_CMDLINE} {}", cfg.cmdline).trim().into());
    a
}

pub fn console_args(log: &Path, h: &Handoff) -> Vec<OsString> {
    vec![
        "-chardev".into(),
        chardev_path("file,id=console", &h.name(log)),
        "-serial".into(),
        "chardev:console".into(),
    ]
}

/// The name of the guest's port whose bytes land in [`guest_trace_path`]: a guest
/// streams its trace there (`cat trace_pipe > /dev/vportNpM`), so that what it traced up
/// to a SIGKILL of QEMU is on the host, which a trace read through the agent would not be.
pub const TRACE_PORT: &str = "mdbb.trace";

/// Where the guest's trace port is written: beside the console log.
pub fn guest_trace_path(console_log: &Path) -> PathBuf {
    console_log.with_extension("guest-trace")
}

pub fn trace_port_args(console_log: &Path, h: &Handoff) -> Vec<OsString> {
    vec![
        "-chardev".into(),
        chardev_path("file,id=gtrace", &h.name(&guest_trace_path(console_log))),
        "-device".into(),
        format!("virtserialport,bus=vser.0,chardev=gtrace,name={TRACE_PORT}").into(),
    ]
}

/// QMP and the agent port are sockets connected before QEMU starts (one end of a socket
/// pair each), so nothing waits for QEMU to connect and no socket file exists.
pub fn control_args(qmp: RawFd, agent: RawFd) -> Vec<OsString> {
    vec![
        "-chardev".into(),
        format!("socket,id=qmp,fd={qmp}").into(),
        "-mon".into(),
        "chardev=qmp,mode=control".into(),
        "-device".into(),
        "virtio-serial-pci,id=vser".into(),
        "-chardev".into(),
        format!("socket,id=agent,fd={agent}").into(),
        "-device".into(),
        format!(
            "virtserialport,bus=vser.0,chardev=agent,name={}",
            agent::PORT_NAME
        )
        .into(),
    ]
}

fn chardev_path(prefix: &str, path: &std::ffi::OsStr) -> OsString {
    let mut s = OsString::from(format!("{prefix},path="));
    s.push(escape_commas(path));
    s
}

/// QEMU option values escape a comma by doubling it.
fn escape_commas(p: &std::ffi::OsStr) -> OsString {
    OsString::from(p.to_string_lossy().replace(',', ",,"))
}

/// The VM's name is its console log's path: QEMU's command line names no file, and this
/// is how people (and the tests) tell which case a QEMU process belongs to.
pub fn name_args(console_log: &Path) -> Vec<OsString> {
    let mut name = OsString::from("guest=");
    name.push(escape_commas(console_log.as_os_str()));
    vec!["-name".into(), name]
}

pub fn drive_args(disks: &[Disk], h: &Handoff) -> Vec<OsString> {
    let mut a = Vec::new();
    for (i, d) in disks.iter().enumerate() {
        let mut drive = match (&d.blkdebug, &d.log) {
            (_, Some(log)) => {
                let mut s = OsString::from("driver=blklogwrites,file.driver=file,file.filename=");
                s.push(escape_commas(&h.name(&d.path)));
                s.push(",log.driver=file,log.filename=");
                s.push(escape_commas(&h.name(log)));
                s.push(",log-sector-size=512");
                s
            }
            // raw over blkdebug over the file: raw fires the write_aio/read_aio events
            // that blkdebug's rules key on.
            (Some(rules), None) => {
                let mut s = OsString::from("driver=raw,file.driver=blkdebug,file.config=");
                s.push(escape_commas(&h.name(rules)));
                s.push(",file.image.filename=");
                s.push(escape_commas(&h.name(&d.path)));
                s
            }
            (None, None) => {
                let mut s = OsString::from("file=");
                s.push(escape_commas(&h.name(&d.path)));
                s.push(",format=raw");
                s
            }
        };
        drive.push(format!(
            ",if=none,id=drive{i},cache={},aio=threads",
            cache_mode(&d.cache, d.write_cache)
        ));
        for o in &d.drive_options {
            drive.push(format!(",{o}"));
        }
        a.push("-drive".into());
        a.push(drive);
        a.push("-device".into());
        // The serial shows in the guest as /sys/block/vdX/serial.
        let merging = if d.log.is_some() {
            ",request-merging=off"
        } else {
            ""
        };
        a.push(format!("virtio-blk-pci,drive=drive{i},serial={}{merging}", d.name).into());
    }
    a
}

/// The host cache mode with the guest's write cache taken away when asked: the same host
/// caching, with QEMU flushing each write before it completes it.
fn cache_mode(mode: &str, write_cache: bool) -> &str {
    match (mode, write_cache) {
        (_, true) => mode,
        ("none", false) => "directsync",
        (_, false) => "writethrough",
    }
}

/// Opens every file `cfg` names, for QEMU to take by descriptor.
pub fn hand_over(cfg: &VmConfig) -> anyhow::Result<Handoff> {
    let mut h = Handoff::default();
    h.input(&cfg.kernel)?;
    h.input(&cfg.initrd)?;
    h.output(&cfg.console_log)?;
    h.output(&guest_trace_path(&cfg.console_log))?;
    for d in &cfg.disks {
        h.image(&d.path)?;
        if let Some(log) = &d.log {
            h.image(log)?;
        }
        if let Some(rules) = &d.blkdebug {
            h.input(rules)?;
        }
    }
    Ok(h)
}

pub fn all_args(cfg: &VmConfig, h: &Handoff, qmp: RawFd, agent: RawFd) -> Vec<OsString> {
    let mut a = machine_args(cfg);
    a.extend(sandbox::sandbox_args());
    a.extend(name_args(&cfg.console_log));
    a.extend(h.args().iter().cloned());
    a.extend(boot_args(cfg, h));
    a.extend(console_args(&cfg.console_log, h));
    a.extend(control_args(qmp, agent));
    a.extend(trace_port_args(&cfg.console_log, h));
    a.extend(drive_args(&cfg.disks, h));
    if cfg.incoming.is_some() {
        a.extend(os(&["-incoming", "defer"]));
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(a: Vec<OsString>) -> Vec<String> {
        a.into_iter().map(|s| s.into_string().unwrap()).collect()
    }

    #[test]
    fn drives_escape_commas_and_carry_their_name_as_serial() {
        let disks = [Disk {
            name: "m0".into(),
            path: "/tmp/a,b/m0.img".into(),
            cache: "none".into(),
            drive_options: vec!["throttling.iops-write=50".into()],
            blkdebug: None,
            log: None,
            write_cache: true,
        }];
        assert_eq!(
            strings(drive_args(&disks, &Handoff::default())),
            [
                "-drive",
                "file=/tmp/a,,b/m0.img,format=raw,if=none,id=drive0,cache=none,aio=threads,throttling.iops-write=50",
                "-device",
                "virtio-blk-pci,drive=drive0,serial=m0"
            ]
        );
    }

    #[test]
    fn a_logged_disk_goes_through_blklogwrites_unmerged_and_a_cacheless_one_flushes_each_write() {
        let disks = [Disk {
            name: "m0".into(),
            path: "/tmp/m0.img".into(),
            cache: "none".into(),
            drive_options: vec![],
            blkdebug: None,
            log: Some("/tmp/m0.wlog".into()),
            write_cache: false,
        }];
        assert_eq!(
            strings(drive_args(&disks, &Handoff::default())),
            [
                "-drive",
                "driver=blklogwrites,file.driver=file,file.filename=/tmp/m0.img,log.driver=file,log.filename=/tmp/m0.wlog,log-sector-size=512,if=none,id=drive0,cache=directsync,aio=threads",
                "-device",
                "virtio-blk-pci,drive=drive0,serial=m0,request-merging=off"
            ]
        );
        assert_eq!(cache_mode("writeback", false), "writethrough");
        assert_eq!(cache_mode("none", true), "none");
    }

    #[test]
    fn accel_and_control_args() {
        assert_eq!(
            strings(accel_args(Accel::Tcg, 2)),
            ["-accel", "tcg,thread=single"]
        );
        assert_eq!(strings(accel_args(Accel::Tcg, 1)), ["-accel", "tcg"]);
        assert_eq!(
            strings(accel_args(Accel::Kvm, 4)),
            ["-accel", "kvm", "-cpu", "host"]
        );
        let c = strings(control_args(7, 8));
        assert!(c.contains(&"socket,id=qmp,fd=7".to_string()));
        assert!(c.contains(&"socket,id=agent,fd=8".to_string()));
        assert!(c.contains(&format!(
            "virtserialport,bus=vser.0,chardev=agent,name={}",
            agent::PORT_NAME
        )));
    }

    #[test]
    fn qemu_is_told_of_no_file_by_path_and_runs_sandboxed() {
        let dir = tempfile::tempdir().unwrap();
        let file = |n: &str| {
            let p = dir.path().join(n);
            std::fs::write(&p, b"x").unwrap();
            p
        };
        let mut logged = Disk::new("m0", file("m0.img"), "none");
        logged.log = Some(file("m0.wlog"));
        let mut debugged = Disk::new("m1", file("m1.img"), "none");
        debugged.blkdebug = Some(file("rules.conf"));
        let cfg = VmConfig {
            kernel: file("vmlinuz"),
            initrd: file("initrd"),
            cmdline: String::new(),
            memory_mib: 512,
            cpus: 1,
            accel: Accel::Tcg,
            disks: vec![logged, debugged, Disk::new("fs", file("fs.img"), "none")],
            console_log: dir.path().join("console.log"),
            incoming: None,
        };
        let h = hand_over(&cfg).unwrap();
        let a = strings(all_args(&cfg, &h, 3, 4));
        let here = dir.path().to_string_lossy().into_owned();
        // The fd sets' `opaque=` labels name their files for people; nothing opens them.
        let naming: Vec<&String> = a
            .iter()
            .filter(|s| s.contains(&here) && !s.starts_with("fd="))
            .collect();
        assert_eq!(
            naming,
            [&format!("guest={here}/console.log")],
            "only -name names a path: {a:?}"
        );
        assert!(a
            .windows(2)
            .any(|w| w[0] == "-sandbox" && w[1] == sandbox::SANDBOX));
        assert!(a.windows(2).any(|w| w[0] == "-nic" && w[1] == "none"));
        // Four images of two descriptors each, the console log and the trace port's.
        assert_eq!(a.iter().filter(|s| *s == "-add-fd").count(), 2 * 4 + 2);
        assert!(a.iter().any(
            |s| s.starts_with("virtserialport,") && s.ends_with(&format!("name={TRACE_PORT}"))
        ));
    }
}
