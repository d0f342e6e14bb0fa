//! Case files: the YAML schema, its errors (file:line:column and the field), validation,
//! and the plan a case expands to. Nothing here runs anything.

pub mod select;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    pub description: String,
    #[serde(default)]
    pub vm: VmSpec,
    pub disks: Vec<DiskSpec>,
    /// `- run: ...` is a one-key map, which serde_norway reads as an enum only through
    /// `singleton_map_recursive`.
    #[serde(default, with = "serde_norway::with::singleton_map_recursive")]
    pub steps: Vec<Step>,
    /// The md array a scenario builds and judges.
    #[serde(default)]
    pub array: Option<ArraySpec>,
    /// Crash the array under a write load, then judge the bitmap from the disk images.
    #[serde(default)]
    pub crash: Option<CrashSpec>,
    /// Read the bitmap file three ways while the array runs and after it stops.
    #[serde(default)]
    pub examination: Option<ExaminationSpec>,
    /// Fail a member with an injected write error, write while it is out, re-add it.
    #[serde(default)]
    pub readd: Option<ReaddSpec>,
    /// Fail the bitmap file's disk under load, crash, and reassemble.
    #[serde(default)]
    pub bitmap_eio: Option<BitmapEioSpec>,
    /// Kernel splats the case causes itself (regular expressions on the title): found,
    /// they are recorded and do not fail the case.
    #[serde(default)]
    pub expect_splats: Vec<String>,
    /// A fixed seed; otherwise each run draws one (and records it).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Expand this case into one case per combination of these array settings.
    #[serde(default)]
    pub matrix: Option<MatrixSpec>,
    /// Kernel options (`CONFIG_FAILSLAB`...) the case needs built in or as modules; on a
    /// kernel without one (or whose config is unknown) the case is skipped, saying which.
    #[serde(default)]
    pub requires: Vec<String>,
}

/// Axes a case file can expand over; each one absent keeps the case's own value. A
/// combination md or the checker cannot run fails the load, naming it, unless listed
/// under `exclude`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixSpec {
    #[serde(default)]
    pub level: Vec<u32>,
    /// How many of `array.members` (the first N) the array uses.
    #[serde(default)]
    pub members: Vec<usize>,
    #[serde(default)]
    pub bitmap: Vec<BitmapKind>,
    #[serde(default)]
    pub chunk: Vec<Size>,
    /// Combinations to leave out: each entry names some axes' values.
    #[serde(default)]
    pub exclude: Vec<MatrixPoint>,
}

/// One combination, or (in `exclude`) a partial one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixPoint {
    #[serde(default)]
    pub level: Option<u32>,
    #[serde(default)]
    pub members: Option<usize>,
    #[serde(default)]
    pub bitmap: Option<BitmapKind>,
    #[serde(default)]
    pub chunk: Option<Size>,
}

impl MatrixPoint {
    /// `raid5-n3-file-64K`: the axes this point sets, in a fixed order.
    pub fn label(&self) -> String {
        let mut parts = Vec::new();
        if let Some(l) = self.level {
            parts.push(format!("raid{l}"));
        }
        if let Some(n) = self.members {
            parts.push(format!("n{n}"));
        }
        if let Some(b) = self.bitmap {
            parts.push(match b {
                BitmapKind::File => "file".into(),
                BitmapKind::Internal => "internal".into(),
            });
        }
        if let Some(c) = self.chunk {
            parts.push(size_label(c.0));
        }
        parts.join("-")
    }

    /// Whether every axis `pattern` names has the same value here.
    fn matches(&self, pattern: &MatrixPoint) -> bool {
        pattern.level.is_none_or(|v| self.level == Some(v))
            && pattern.members.is_none_or(|v| self.members == Some(v))
            && pattern.bitmap.is_none_or(|v| self.bitmap == Some(v))
            && pattern.chunk.is_none_or(|v| self.chunk == Some(v))
    }

    /// Sets this combination's values on `case`; a member count the case's own list
    /// cannot supply is refused (the members are its first `n`).
    fn apply(&self, case: &mut CaseFile) -> Result<(), String> {
        let Some(a) = case.array.as_mut() else {
            return Ok(());
        };
        if let Some(l) = self.level {
            a.level = l;
        }
        if let Some(n) = self.members {
            if n > a.members.len() {
                return Err(format!(
                    "matrix.members {n}: array.members lists only {}",
                    a.members.len()
                ));
            }
            a.members.truncate(n);
        }
        if let Some(b) = self.bitmap {
            a.bitmap.kind = b;
            if b == BitmapKind::Internal {
                a.bitmap.disk.clear();
            }
        }
        if let Some(c) = self.chunk {
            a.bitmap.chunk = c;
        }
        Ok(())
    }
}

fn size_label(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{}M", b >> 20),
        b if b % 1024 == 0 => format!("{}K", b >> 10),
        b => b.to_string(),
    }
}

impl MatrixSpec {
    /// Every combination of the axes given, minus the excluded ones, in file order.
    pub fn points(&self) -> Vec<MatrixPoint> {
        fn axis<T: Copy>(v: &[T]) -> Vec<Option<T>> {
            if v.is_empty() {
                vec![None]
            } else {
                v.iter().copied().map(Some).collect()
            }
        }
        let mut out = Vec::new();
        for level in axis(&self.level) {
            for members in axis(&self.members) {
                for bitmap in axis(&self.bitmap) {
                    for chunk in axis(&self.chunk) {
                        let p = MatrixPoint {
                            level,
                            members,
                            bitmap,
                            chunk,
                        };
                        if !self.exclude.iter().any(|x| p.matches(x)) {
                            out.push(p);
                        }
                    }
                }
            }
        }
        out
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmSpec {
    #[serde(default = "default_memory")]
    pub memory: Size,
    #[serde(default = "default_cpus")]
    pub cpus: u32,
    /// The whole case, boot included, must end within this.
    #[serde(default = "default_timeout", with = "humantime_serde_compat")]
    pub timeout: Duration,
}

impl Default for VmSpec {
    fn default() -> Self {
        Self {
            memory: default_memory(),
            cpus: default_cpus(),
            timeout: default_timeout(),
        }
    }
}

fn default_memory() -> Size {
    Size(512 << 20)
}
fn default_cpus() -> u32 {
    2
}
fn default_timeout() -> Duration {
    Duration::from_secs(300)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskSpec {
    pub name: String,
    pub size: Size,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Run a shell command in the guest; it must succeed (or end as `expect_status` says).
    Run(RunStep),
    /// Run a command until it succeeds, polling, at most `timeout`.
    WaitFor(WaitStep),
}

#[derive(Debug, Clone, Serialize)]
pub struct RunStep {
    pub cmd: String,
    pub timeout: Duration,
    pub expect_status: i32,
    /// Regular expressions stdout must match, each.
    pub expect_stdout: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunStepMap {
    cmd: String,
    #[serde(default = "default_step_timeout", with = "humantime_serde_compat")]
    timeout: Duration,
    #[serde(default)]
    expect_status: i32,
    #[serde(default)]
    expect_stdout: Vec<String>,
}

fn default_step_timeout() -> Duration {
    Duration::from_secs(60)
}

impl From<RunStepMap> for RunStep {
    fn from(m: RunStepMap) -> Self {
        Self {
            cmd: m.cmd,
            timeout: m.timeout,
            expect_status: m.expect_status,
            expect_stdout: m.expect_stdout,
        }
    }
}

/// `run: "cmd"` or `run: {cmd: ..., timeout: ..., ...}`, keeping the map form's own
/// errors (an untagged enum would replace them with "did not match any variant").
impl<'de> Deserialize<'de> for RunStep {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RunStep;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a shell command, or a map with `cmd`")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<RunStep, E> {
                Ok(RunStep {
                    cmd: s.to_string(),
                    timeout: default_step_timeout(),
                    expect_status: 0,
                    expect_stdout: vec![],
                })
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(self, m: M) -> Result<RunStep, M::Error> {
                RunStepMap::deserialize(serde::de::value::MapAccessDeserializer::new(m))
                    .map(Into::into)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitStep {
    pub cmd: String,
    #[serde(default = "default_step_timeout", with = "humantime_serde_compat")]
    pub timeout: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArraySpec {
    /// 1, 10 (near layout), 5 or 6 (left-symmetric).
    pub level: u32,
    /// Disk names, in role order.
    pub members: Vec<String>,
    pub bitmap: BitmapSpec,
    /// `mdadm --build`: no superblocks, so the bitmap file is all md keeps of the array
    /// (mdadm's old 05r1-re-add-nosuper). RAID1 with a file bitmap only.
    #[serde(default)]
    pub build: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BitmapSpec {
    /// `file` (the subject) or `internal` (the control: md writes it into the members,
    /// with PREFLUSH|FUA, where a file bitmap gets neither).
    #[serde(default)]
    pub kind: BitmapKind,
    /// The disk holding the filesystem the bitmap file lives on (`file` only).
    #[serde(default)]
    pub disk: String,
    /// The file's path inside that filesystem.
    #[serde(default = "default_bitmap_path")]
    pub path: String,
    pub chunk: Size,
    /// The filesystem the bitmap file lives on (`file` only).
    #[serde(default)]
    pub fs: Filesystem,
    /// Create the array without a bitmap and add this one to it, running, with
    /// `mdadm --grow --bitmap=` (mdadm's old 05r1-grow-external).
    #[serde(default)]
    pub grow: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BitmapKind {
    #[default]
    File,
    Internal,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Filesystem {
    #[default]
    Ext4,
    Xfs,
}

fn default_bitmap_path() -> String {
    "/bitmap".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrashSpec {
    #[serde(default)]
    pub mode: CrashMode,
    #[serde(default)]
    pub workload: WorkloadSpec,
    /// Slows one member's writes (QMP `block_set_io_throttle`) while the load runs, so
    /// that the kill finds it behind its mirror: without this, QEMU completes a write on
    /// both members microseconds apart and a kill almost never leaves them different.
    #[serde(default)]
    pub throttle: Option<ThrottleSpec>,
    /// Squeeze the writers' memory while the load runs.
    #[serde(default)]
    pub pressure: Option<PressureSpec>,
    /// When to kill QEMU: after the array has written this much...
    #[serde(default)]
    pub after_written: Option<Size>,
    /// ...or this long after the load started.
    #[serde(default, with = "opt_duration")]
    pub after_time: Option<Duration>,
    /// The moment the crash hits (`writing` by default).
    #[serde(default)]
    pub at: CrashPoint,
    /// Crash-reboot cycles on the same disks, each judged before the next.
    #[serde(default = "default_cycles")]
    pub cycles: u32,
    /// Fault injection (a debug kernel's debugfs knobs) while the load runs.
    #[serde(default)]
    pub faults: Option<FaultSpec>,
}

/// The kernel's fault injectors, armed just before the load starts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// When the injectors are armed.
    #[serde(default)]
    pub during: FaultPhase,
    /// Slab allocations fail (`/sys/kernel/debug/failslab`).
    #[serde(default)]
    pub failslab: Option<FailAttr>,
    /// Page allocations fail (`/sys/kernel/debug/fail_page_alloc`).
    #[serde(default)]
    pub fail_page_alloc: Option<FailAttr>,
    /// Requests to one disk fail (`/sys/block/<dev>/make-it-fail`).
    #[serde(default)]
    pub fail_make_request: Option<FailRequest>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultPhase {
    /// While the writers load the array, until the crash.
    #[default]
    Load,
    /// From the assembly after the crash until the resync is done: md's allocations
    /// for the resync (its buffer pool, in `md0_resync`) can fail, and md must still
    /// finish a resync that covers the bitmap.
    Resync,
}

/// The attributes every injector has (Documentation/fault-injection).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailAttr {
    /// Percent of the eligible calls that fail.
    pub probability: u32,
    #[serde(default = "default_interval")]
    pub interval: u32,
    /// How many failures at most (-1: no limit).
    #[serde(default = "default_times")]
    pub times: i64,
    /// Fail sleeping (GFP_NOIO, GFP_KERNEL) allocations too: `ignore-gfp-wait=N`.
    #[serde(default = "default_true")]
    pub fail_sleeping: bool,
    /// Whose allocations fail (`task-filter`, with `make-it-fail` set on those tasks).
    #[serde(default)]
    pub tasks: FailTasks,
    /// fail_page_alloc only: spare allocations below this order.
    #[serde(default)]
    pub min_order: u32,
    /// Bytes of allocations spared before the first failure (`space`; for
    /// fail_page_alloc, whose budget counts pages, in pages of 4 KiB): lets the writers
    /// exec and start, or md fork its threads, before allocations can fail.
    #[serde(default = "no_space")]
    pub space: Size,
    /// failslab only: fail only these slab caches (`cache-filter`, e.g. `kmalloc-4k`,
    /// where md's bitmap counter pages come from).
    #[serde(default)]
    pub caches: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailTasks {
    /// md's own threads (`md0_raid1`...): the bitmap's writeout and the daemon; the
    /// writers themselves must then see no error.
    #[default]
    Md,
    /// The writers' threads: their whole write path, VFS and block layer included, so an
    /// ENOMEM can reach them legitimately.
    Writers,
    /// Every task (no `task-filter`).
    All,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailRequest {
    pub disk: String,
    pub probability: u32,
    #[serde(default = "default_times")]
    pub times: i64,
}

fn no_space() -> Size {
    Size(0)
}

fn default_interval() -> u32 {
    1
}
fn default_times() -> i64 {
    -1
}

impl FaultSpec {
    /// The kernel options the armed injectors need.
    pub fn requires(&self) -> Vec<String> {
        let mut out = vec!["CONFIG_FAULT_INJECTION_DEBUG_FS".to_string()];
        if self.failslab.is_some() {
            out.push("CONFIG_FAILSLAB".into());
        }
        if self.fail_page_alloc.is_some() {
            out.push("CONFIG_FAIL_PAGE_ALLOC".into());
        }
        if self.fail_make_request.is_some() {
            out.extend(FailRequest::requires());
        }
        out.sort();
        out.dedup();
        out
    }
}

impl FailRequest {
    /// The kernel options fail_make_request needs.
    pub fn requires() -> Vec<String> {
        vec![
            "CONFIG_FAULT_INJECTION_DEBUG_FS".into(),
            "CONFIG_FAIL_MAKE_REQUEST".into(),
        ]
    }
}

fn default_cycles() -> u32 {
    1
}

/// Where in the array's life the crash falls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrashPoint {
    /// At the kill point, while the writers write.
    #[default]
    Writing,
    /// The writers stop at the kill point, and the crash comes as soon as the bitmap
    /// daemon has cleared some bits while others are still dirty.
    Clearing,
    /// The crash at the kill point, then a second one halfway through the resync that
    /// the next assembly starts; the third boot must finish it from the bitmap.
    Resync,
}

impl CrashPoint {
    /// What the images hold at this point, beyond what the crash mode lets through.
    pub fn survives(self) -> &'static str {
        match self {
            CrashPoint::Writing => "the writers' completed writes; the lagging member's queued ones are lost",
            CrashPoint::Clearing => "every write of the stopped writers, bits the daemon cleared so far; only the trickle's one write can be in flight",
            CrashPoint::Resync => "the resync's writes up to the second kill, and the resync position md checkpointed in the superblocks",
        }
    }
}

/// Memory pressure through a cgroup v2 the writers run in, with the page cache of the
/// bitmap's filesystem kept dirty beside them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PressureSpec {
    /// `memory.max` of the writers' cgroup.
    #[serde(default)]
    pub memory_max: Option<Size>,
    /// `memory.high` of the writers' cgroup.
    #[serde(default)]
    pub memory_high: Option<Size>,
    /// Buffered writes of this much to a file on the bitmap's filesystem, in the cgroup.
    #[serde(default)]
    pub dirtier: Option<Size>,
    /// Ask the writers' cgroup to reclaim this much, again and again (`memory.reclaim`).
    #[serde(default)]
    pub reclaim: Option<Size>,
    /// A process outside the cgroup holding and touching this much memory, squeezing the
    /// whole guest.
    #[serde(default)]
    pub hog: Option<Size>,
    /// `vm.dirty_ratio` / `vm.dirty_background_ratio` while it runs: high, so dirty pages
    /// pile up instead of being written back early.
    #[serde(default = "default_dirty_ratio")]
    pub dirty_ratio: u32,
    #[serde(default = "default_dirty_background_ratio")]
    pub dirty_background_ratio: u32,
}

fn default_dirty_ratio() -> u32 {
    80
}
fn default_dirty_background_ratio() -> u32 {
    60
}

/// How the array goes down, and so what can have reached the disk images.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrashMode {
    /// SIGKILL of QEMU: writes QEMU completed are in the images, the rest are lost.
    #[default]
    Sigkill,
    /// A guest kernel panic (`echo c > /proc/sysrq-trigger`): the guest stops at once;
    /// what it had submitted, QEMU completes before it exits.
    Panic,
    /// QMP `quit`: QEMU drains and flushes every disk first.
    QmpQuit,
}

impl CrashMode {
    pub fn survives(self) -> &'static str {
        match self {
            CrashMode::Sigkill => "every write QEMU had completed is in the images; writes still queued in QEMU (the throttled member's) are lost",
            CrashMode::Panic => "the guest stops mid-flight; writes it had submitted are completed by QEMU before it exits, the rest never leave the guest",
            CrashMode::QmpQuit => "QEMU drains and flushes every queued write first: the members can only differ by writes the guest never submitted",
        }
    }

    /// Whether this mode can be counted on to leave the members different.
    pub fn leaves_divergence(self) -> bool {
        self == CrashMode::Sigkill
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    #[serde(default = "default_writers")]
    pub writers: u32,
    #[serde(default = "default_min_io")]
    pub min_io: Size,
    #[serde(default = "default_max_io")]
    pub max_io: Size,
    #[serde(default = "default_true")]
    pub direct: bool,
    /// Write only the first this-many bytes of the array (default: all of it).
    #[serde(default)]
    pub span: Option<Size>,
}

impl Default for WorkloadSpec {
    fn default() -> Self {
        Self {
            writers: default_writers(),
            min_io: default_min_io(),
            max_io: default_max_io(),
            direct: true,
            span: None,
        }
    }
}

fn default_writers() -> u32 {
    8
}
fn default_min_io() -> Size {
    Size(4096)
}
fn default_max_io() -> Size {
    Size(256 << 10)
}
fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BitmapEioSpec {
    /// The load, the lagging member and the kill point, as in a crash case.
    pub crash: CrashSpec,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReaddSpec {
    /// The member whose disk returns EIO once on a write to `chunk`.
    pub fail: String,
    /// The array chunk (in bitmap chunks) whose first write fails on that member.
    pub chunk: u64,
    /// Where the EIO comes from.
    #[serde(default)]
    pub via: EioSource,
    /// The load run while the member is out.
    #[serde(default)]
    pub workload: WorkloadSpec,
    /// How much the array writes while the member is out.
    pub written: Size,
}

/// How a member's write comes to fail.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EioSource {
    /// The disk itself: QEMU's blkdebug answers the write to the chunk with EIO, as a
    /// failing drive would; the guest's block layer sees a completed request with an error.
    #[default]
    Blkdebug,
    /// The guest's block layer: fail_make_request (debug kernel) fails the member's next
    /// bio at submission, before it reaches a queue; the first may be md's superblock
    /// write rather than the data.
    FailMakeRequest,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExaminationSpec {
    /// How many times the file is read three ways while the load runs.
    #[serde(default = "default_samples")]
    pub samples: u32,
    #[serde(default)]
    pub workload: WorkloadSpec,
    /// What opening the bitmap file for writing while the array runs must do.
    #[serde(default)]
    pub write_open: WriteOpen,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteOpen {
    /// ETXTBSY, as with `deny_write_access` on the file.
    #[default]
    Refused,
    /// The open succeeds.
    Allowed,
}

fn default_samples() -> u32 {
    12
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleSpec {
    pub disk: String,
    pub iops_write: u64,
}

mod opt_duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("duration {text:?}: {e}")))
    }
}

/// A byte count written as `256MiB`, `64M`, `1G`, `4096`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

impl Size {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: u64 = num.parse().map_err(|_| {
            format!("size {s:?}: expected a number with an optional unit (K, M, G, KiB, MiB, GiB)")
        })?;
        let shift = match unit.trim() {
            "" | "B" => 0,
            "K" | "KiB" | "k" => 10,
            "M" | "MiB" => 20,
            "G" | "GiB" => 30,
            other => {
                return Err(format!(
                    "size {s:?}: unknown unit {other:?} (K, M, G, KiB, MiB, GiB)"
                ))
            }
        };
        n.checked_shl(shift)
            .filter(|v| v >> shift == n)
            .map(Size)
            .ok_or_else(|| format!("size {s:?} is too large"))
    }
}

impl Serialize for Size {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size such as 256MiB")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Size, E> {
                Size::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// Durations as humantime text (`30s`, `2m`) in case files and results.
mod humantime_serde_compat {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .map_err(|e| serde::de::Error::custom(format!("duration {text:?}: {e}")))
    }
}

/// A case file that does not load: where, which field, what.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct CaseError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// Starts with the field's path (`steps[2].run.timeout: ...`) below the top level.
    pub message: String,
}

pub fn parse(file: &Path, text: &str) -> Result<CaseFile, CaseError> {
    // serde_norway's message already starts with the field path (`steps[0].run: ...`)
    // and ends with the location, which goes in front instead.
    serde_norway::from_str(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((1, 1));
        let message = e.to_string();
        let message = match message.rfind(" at line ") {
            Some(i) => message[..i].to_string(),
            None => message,
        };
        CaseError {
            file: file.to_path_buf(),
            line,
            column,
            message,
        }
    })
}

/// A case ready to run: validated, with its disks placed and its seed drawn.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub name: String,
    /// The result directory's name: the case's name, with `.N` for the Nth repeat.
    pub run_name: String,
    pub file: PathBuf,
    pub description: String,
    pub seed: u64,
    pub vm: VmSpec,
    pub disks: Vec<PlannedDisk>,
    pub steps: Vec<Step>,
    pub array: Option<ArraySpec>,
    pub crash: Option<CrashSpec>,
    pub examination: Option<ExaminationSpec>,
    pub readd: Option<ReaddSpec>,
    pub bitmap_eio: Option<BitmapEioSpec>,
    pub expect_splats: Vec<String>,
    /// Kernel options the case needs (its own `requires` and what its faults need).
    pub requires: Vec<String>,
    /// Keep the disk images of a passing run too (a failing run always keeps them).
    pub keep_disks: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlannedDisk {
    pub name: String,
    pub size: u64,
    /// The guest device: disks are attached in the order the case lists them.
    pub device: String,
}

impl Plan {
    /// `DISK_<name>=/dev/vdX` for every disk, given to every guest command.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .disks
            .iter()
            .map(|d| (format!("DISK_{}", d.name), d.device.clone()))
            .collect();
        env.push(("SEED".into(), self.seed.to_string()));
        env
    }
}

/// The plans of a case file: one, or one per matrix combination (`name@raid5-file`).
pub fn load(file: &Path, seed: Option<u64>) -> Result<Vec<Plan>> {
    let text =
        std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let case = parse(file, &text)?;
    expand(file, case, seed)
}

/// Plans every combination of the case's matrix (or the case itself when it has none).
pub fn expand(file: &Path, mut case: CaseFile, seed: Option<u64>) -> Result<Vec<Plan>> {
    let Some(matrix) = case.matrix.take() else {
        return Ok(vec![plan(file, case, seed)?]);
    };
    if case.array.is_none() {
        bail!(
            "{}: matrix: expands array settings; the case has no array",
            file.display()
        );
    }
    let points = matrix.points();
    if points.is_empty() {
        bail!("{}: matrix: every combination is excluded", file.display());
    }
    let stem = stem(file);
    points
        .iter()
        .map(|p| {
            let mut variant = case.clone();
            let label = p.label();
            p.apply(&mut variant)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))
                .and_then(|_| plan_named(file, format!("{stem}@{label}"), variant, seed))
                .map_err(|e| {
                    anyhow::anyhow!(
                        "{:#} (matrix combination {label}; leave it out with matrix.exclude)",
                        e
                    )
                })
        })
        .collect()
}

fn stem(file: &Path) -> String {
    file.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub fn plan(file: &Path, case: CaseFile, seed: Option<u64>) -> Result<Plan> {
    plan_named(file, stem(file), case, seed)
}

fn plan_named(file: &Path, name: String, case: CaseFile, seed: Option<u64>) -> Result<Plan> {
    let at = |what: String| anyhow::anyhow!("{}: {what}", file.display());
    if case.disks.len() > 26 {
        return Err(at(format!(
            "{} disks; at most 26 (vda..vdz)",
            case.disks.len()
        )));
    }
    let mut disks = Vec::new();
    for (i, d) in case.disks.iter().enumerate() {
        if d.name.is_empty()
            || !d
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(at(format!(
                "disks[{i}].name {:?}: use letters, digits and _",
                d.name
            )));
        }
        if disks.iter().any(|p: &PlannedDisk| p.name == d.name) {
            return Err(at(format!("disks[{i}].name {:?} appears twice", d.name)));
        }
        if d.size.0 < 1 << 20 || d.size.0 % 512 != 0 {
            return Err(at(format!(
                "disks[{i}].size {}: at least 1 MiB, in whole sectors",
                d.size.0
            )));
        }
        disks.push(PlannedDisk {
            name: d.name.clone(),
            size: d.size.0,
            device: format!("/dev/vd{}", (b'a' + i as u8) as char),
        });
    }
    if case.vm.memory.0 < 128 << 20 {
        return Err(at(format!(
            "vm.memory {} MiB: the guest needs at least 128 MiB",
            case.vm.memory.0 >> 20
        )));
    }
    if case.vm.cpus == 0 {
        return Err(at("vm.cpus: at least 1".into()));
    }
    for (i, s) in case.steps.iter().enumerate() {
        if let Step::Run(r) = s {
            for re in &r.expect_stdout {
                if let Err(e) = regex::Regex::new(re) {
                    return Err(at(format!("steps[{i}].run.expect_stdout {re:?}: {e}")));
                }
            }
        }
    }
    let disk = |what: &str, name: &str| -> Result<usize> {
        disks
            .iter()
            .position(|d| d.name == name)
            .ok_or_else(|| at(format!("{what} {name:?} is not one of the disks")))
    };
    if case.matrix.is_some() {
        return Err(at("matrix: expand the case with case::expand".into()));
    }
    if let Some(a) = &case.array {
        if let Err(why) = array_shape(a) {
            return Err(at(why));
        }
        for m in &a.members {
            disk("array.members:", m)?;
        }
        match a.bitmap.kind {
            BitmapKind::File => {
                disk("array.bitmap.disk", &a.bitmap.disk)?;
                if a.members.contains(&a.bitmap.disk) {
                    return Err(at(
                        "array.bitmap.disk: the bitmap file cannot live on a member".into(),
                    ));
                }
            }
            BitmapKind::Internal if !a.bitmap.disk.is_empty() => {
                return Err(at(
                    "array.bitmap.disk: an internal bitmap lives in the members, not on a disk"
                        .into(),
                ));
            }
            BitmapKind::Internal => {}
        }
        let chunk = a.bitmap.chunk.0;
        if !chunk.is_power_of_two() || chunk < 4096 {
            return Err(at(format!(
                "array.bitmap.chunk {chunk}: a power of two of at least 4 KiB"
            )));
        }
    }
    if let Some(c) = &case.crash {
        if case.array.is_none() {
            return Err(at("crash: needs an array".into()));
        }
        if c.after_written.is_none() == c.after_time.is_none() {
            return Err(at(
                "crash: give exactly one of after_written and after_time".into(),
            ));
        }
        if let Some(t) = &c.throttle {
            disk("crash.throttle.disk", &t.disk)?;
        }
        if c.cycles == 0 || c.cycles > 20 {
            return Err(at(format!("crash.cycles {}: 1 to 20", c.cycles)));
        }
        if let Some(p) = &c.pressure {
            if p.memory_max.is_none()
                && p.memory_high.is_none()
                && p.dirtier.is_none()
                && p.reclaim.is_none()
                && p.hog.is_none()
            {
                return Err(at(
                    "crash.pressure: set memory_max, memory_high, dirtier, reclaim or hog".into(),
                ));
            }
            if p.hog.is_some_and(|h| h.0 >= case.vm.memory.0 / 4 * 3) {
                return Err(at(format!(
                    "crash.pressure.hog: under three quarters of vm.memory ({} MiB), or the guest OOMs",
                    case.vm.memory.0 >> 20
                )));
            }
            if p.memory_max.is_some_and(|m| m.0 < 4 << 20) {
                return Err(at(
                    "crash.pressure.memory_max: below 4 MiB the writers cannot even start".into(),
                ));
            }
            if p.dirty_ratio > 100 || p.dirty_background_ratio > p.dirty_ratio {
                return Err(at(
                    "crash.pressure: dirty_background_ratio <= dirty_ratio <= 100".into(),
                ));
            }
        }
        let w = &c.workload;
        if w.min_io.0 == 0
            || w.min_io.0 % 4096 != 0
            || w.max_io.0 % 4096 != 0
            || w.min_io.0 > w.max_io.0
            || w.writers == 0
        {
            return Err(at("crash.workload: min_io <= max_io, both whole 4 KiB blocks, and at least one writer".into()));
        }
    }
    for (i, re) in case.expect_splats.iter().enumerate() {
        if let Err(e) = regex::Regex::new(re) {
            return Err(at(format!("expect_splats[{i}] {re:?}: {e}")));
        }
    }
    if let Some(e) = &case.examination {
        if case.array.is_none() || case.crash.is_some() {
            return Err(at(
                "examination: needs an array, and no crash in the same case".into(),
            ));
        }
        if case
            .array
            .as_ref()
            .is_some_and(|a| a.bitmap.kind != BitmapKind::File)
        {
            return Err(at(
                "examination: examines a bitmap file; array.bitmap.kind must be file".into(),
            ));
        }
        if e.samples == 0 {
            return Err(at("examination.samples: at least 1".into()));
        }
    }
    if let Some(r) = &case.readd {
        let a = case
            .array
            .as_ref()
            .ok_or_else(|| at("readd: needs an array".into()))?;
        if case.crash.is_some() || case.examination.is_some() {
            return Err(at("readd: one scenario per case".into()));
        }
        if !a.members.contains(&r.fail) {
            return Err(at(format!("readd.fail {:?} is not a member", r.fail)));
        }
    }
    if let Some(b) = &case.bitmap_eio {
        let a = case
            .array
            .as_ref()
            .ok_or_else(|| at("bitmap_eio: needs an array".into()))?;
        if a.bitmap.kind != BitmapKind::File {
            return Err(at(
                "bitmap_eio: fails the disk of a bitmap file; array.bitmap.kind must be file"
                    .into(),
            ));
        }
        if b.crash.after_written.is_none() == b.crash.after_time.is_none() {
            return Err(at(
                "bitmap_eio.crash: give exactly one of after_written and after_time".into(),
            ));
        }
    }
    let mut requires = case.requires.clone();
    if case
        .readd
        .as_ref()
        .is_some_and(|r| r.via == EioSource::FailMakeRequest)
    {
        requires.extend(FailRequest::requires());
    }
    if let Some(f) = case.crash.as_ref().and_then(|c| c.faults.as_ref()) {
        requires.extend(f.requires());
        if let Some(r) = &f.fail_make_request {
            disk("crash.faults.fail_make_request.disk", &r.disk)?;
            if r.probability > 100 {
                return Err(at(
                    "crash.faults.fail_make_request: probability 0..=100".into()
                ));
            }
        }
        if f.during == FaultPhase::Resync
            && [&f.failslab, &f.fail_page_alloc]
                .into_iter()
                .flatten()
                .any(|a| a.tasks == FailTasks::Writers)
        {
            return Err(at(
                "crash.faults: during resync there are no writers to fail; tasks md or all".into(),
            ));
        }
        for (name, a) in [
            ("failslab", &f.failslab),
            ("fail_page_alloc", &f.fail_page_alloc),
        ] {
            if a.as_ref()
                .is_some_and(|a| a.probability > 100 || a.interval == 0)
            {
                return Err(at(format!(
                    "crash.faults.{name}: probability 0..=100 and interval at least 1"
                )));
            }
        }
    }
    requires.sort();
    requires.dedup();
    if let Some(bad) = requires.iter().find(|o| {
        !o.starts_with("CONFIG_")
            || !o[7..]
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    }) {
        return Err(at(format!(
            "requires: {bad:?} is not a kernel option name (CONFIG_ in capitals)"
        )));
    }
    let scenarios = [
        case.crash.is_some(),
        case.examination.is_some(),
        case.readd.is_some(),
        case.bitmap_eio.is_some(),
    ];
    if scenarios.iter().filter(|s| **s).count() > 1 {
        return Err(at(
            "crash, examination, readd, bitmap_eio: one scenario per case".into(),
        ));
    }
    if case.steps.is_empty() && !scenarios.contains(&true) {
        bail!("{}: no steps and no scenario", file.display());
    }
    Ok(Plan {
        run_name: name.clone(),
        name,
        file: file.to_path_buf(),
        description: case.description,
        seed: seed.or(case.seed).unwrap_or_else(random_seed),
        vm: case.vm,
        disks,
        steps: case.steps,
        array: case.array,
        crash: case.crash,
        examination: case.examination,
        readd: case.readd,
        bitmap_eio: case.bitmap_eio,
        expect_splats: case.expect_splats,
        requires,
        keep_disks: false,
    })
}

/// Level, member count and bitmap options that md and the checker can both handle.
fn array_shape(a: &ArraySpec) -> Result<(), String> {
    let n = a.members.len();
    let least = match a.level {
        1 | 10 => 2,
        5 => 3,
        6 => 4,
        other => {
            return Err(format!(
                "array.level {other}: the bench judges RAID1, RAID10, RAID5 and RAID6"
            ))
        }
    };
    if n < least {
        return Err(format!(
            "array.members: RAID{} needs at least {least} members, the case gives {n}",
            a.level
        ));
    }
    if a.build && (a.level != 1 || a.bitmap.kind != BitmapKind::File || a.bitmap.grow) {
        return Err(
            "array.build: an array without superblocks is judged as RAID1 with a bitmap file given at build time"
                .into(),
        );
    }
    Ok(())
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.finish() >> 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(Path::new("cases/x.yaml"), text)
            .unwrap_err()
            .to_string()
    }

    const GOOD: &str = "description: d\ndisks:\n  - {name: m0, size: 256MiB}\nsteps:\n  - run: echo hi\n  - run:\n      cmd: true\n      timeout: 5s\n  - wait_for: {cmd: 'test -e /dev/md0', timeout: 10s}\n";

    #[test]
    fn a_good_case_parses_both_run_forms() {
        let c = parse(Path::new("x.yaml"), GOOD).unwrap();
        assert_eq!(c.disks[0].size, Size(256 << 20));
        match (&c.steps[0], &c.steps[1]) {
            (Step::Run(a), Step::Run(b)) => {
                assert_eq!(
                    (a.cmd.as_str(), a.timeout),
                    ("echo hi", Duration::from_secs(60))
                );
                assert_eq!(
                    (b.cmd.as_str(), b.timeout),
                    ("true", Duration::from_secs(5))
                );
            }
            other => panic!("{other:?}"),
        }
        let p = plan(Path::new("cases/x.yaml"), c, Some(7)).unwrap();
        assert_eq!(
            (p.name.as_str(), p.seed, p.disks[0].device.as_str()),
            ("x", 7, "/dev/vda")
        );
    }

    #[test]
    fn an_unknown_key_names_file_line_column_and_field() {
        let e =
            err("description: d\ndisks: []\nsteps:\n  - run:\n      cmd: x\n      timout: 5s\n");
        assert!(
            e.starts_with("cases/x.yaml:6:7: steps[0].run: unknown field `timout`"),
            "{e}"
        );
    }

    #[test]
    fn a_bad_value_names_its_field() {
        let e = err("description: d\ndisks:\n  - {name: a, size: 12XB}\nsteps: []\n");
        assert!(e.starts_with("cases/x.yaml:3:"), "{e}");
        assert!(
            e.contains("disks[0].size: size \"12XB\": unknown unit"),
            "{e}"
        );
        let e = err("description: d\ndisks: []\nsteps:\n  - sleep: 5\n");
        assert!(e.contains("steps[0]: unknown variant `sleep`"), "{e}");
        let e = err("description: d\nsteps: [\n");
        assert!(e.starts_with("cases/x.yaml:"), "{e}");
    }

    #[test]
    fn validation_rejects_what_parses_but_cannot_run() {
        let load = |t: &str| {
            plan(
                Path::new("c.yaml"),
                parse(Path::new("c.yaml"), t).unwrap(),
                Some(1),
            )
            .unwrap_err()
            .to_string()
        };
        assert!(load(
            "description: d\ndisks: [{name: a, size: 1M}, {name: a, size: 1M}]\nsteps: [run: x]\n"
        )
        .contains("appears twice"));
        assert!(
            load("description: d\ndisks: [{name: a-b, size: 1M}]\nsteps: [run: x]\n")
                .contains("letters, digits")
        );
        assert!(
            load("description: d\ndisks: []\nvm: {memory: 64M}\nsteps: [run: x]\n")
                .contains("at least 128 MiB")
        );
        assert!(load(
            "description: d\ndisks: []\nsteps: [{run: {cmd: x, expect_stdout: ['(']}}]\n"
        )
        .contains("expect_stdout"));
        let faults = |f: &str| {
            load(&format!("description: d\ndisks: [{{name: a, size: 64M}}, {{name: b, size: 64M}}, {{name: fs, size: 64M}}]\narray: {{level: 1, members: [a, b], bitmap: {{disk: fs, chunk: 64K}}}}\ncrash: {{after_time: 3s, faults: {f}}}\n"))
        };
        assert!(
            faults("{during: resync, failslab: {probability: 5, tasks: writers}}")
                .contains("no writers to fail")
        );
        assert!(faults("{fail_page_alloc: {probability: 101}}").contains("probability 0..=100"));
        assert!(faults("{fail_make_request: {disk: zz, probability: 1}}").contains("zz"));
        assert!(faults("{fail_make_request: {disk: a, probability: 101}}")
            .contains("fail_make_request: probability 0..=100"));
    }

    const MATRIX: &str = "description: d\ndisks: [{name: a, size: 64M}, {name: b, size: 64M}, {name: c, size: 64M}, {name: d, size: 64M}, {name: fs, size: 64M}]\narray: {level: 1, members: [a, b, c, d], bitmap: {disk: fs, chunk: 64K}}\ncrash: {after_time: 3s}\n";

    fn expand_text(text: &str) -> Result<Vec<Plan>> {
        let file = Path::new("cases/m.yaml");
        expand(file, parse(file, text).unwrap(), Some(3))
    }

    #[test]
    fn a_matrix_expands_to_named_cases_minus_the_excluded() {
        let plans = expand_text(&format!(
            "{MATRIX}matrix:\n  level: [1, 6]\n  members: [2, 4]\n  bitmap: [file, internal]\n  chunk: [64K, 1M]\n  exclude:\n    - {{level: 6, members: 2}}\n    - {{level: 1, members: 4, chunk: 1M}}\n"
        ))
        .unwrap();
        let names: Vec<&str> = plans.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "m@raid1-n2-file-64K",
                "m@raid1-n2-file-1M",
                "m@raid1-n2-internal-64K",
                "m@raid1-n2-internal-1M",
                "m@raid1-n4-file-64K",
                "m@raid1-n4-internal-64K",
                "m@raid6-n4-file-64K",
                "m@raid6-n4-file-1M",
                "m@raid6-n4-internal-64K",
                "m@raid6-n4-internal-1M",
            ]
        );
        let p = &plans[9];
        let a = p.array.as_ref().unwrap();
        assert_eq!(
            (a.level, a.members.len(), a.bitmap.kind),
            (6, 4, BitmapKind::Internal)
        );
        assert!(a.bitmap.disk.is_empty(), "an internal bitmap needs no disk");
        assert_eq!(a.bitmap.chunk, Size(1 << 20));
        assert!(plans.iter().all(|p| p.seed == 3));
    }

    #[test]
    fn an_invalid_combination_fails_the_load_and_is_named_with_its_reason() {
        let e = expand_text(&format!(
            "{MATRIX}matrix: {{level: [1, 6], members: [3]}}\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("RAID6 needs at least 4 members, the case gives 3"),
            "{e}"
        );
        assert!(e.contains("matrix combination raid6-n3"), "{e}");
        assert!(e.contains("matrix.exclude"), "{e}");
        let e = expand_text(&format!("{MATRIX}matrix: {{level: [0]}}\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("judges RAID1, RAID10, RAID5 and RAID6"), "{e}");
        let e = expand_text(&format!(
            "{MATRIX}matrix: {{level: [1], exclude: [{{level: 1}}]}}\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("every combination is excluded"), "{e}");
        let e = expand_text(&format!("{MATRIX}matrix: {{members: [6]}}\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("matrix.members 6: array.members lists only 4")
                && e.contains("matrix combination n6"),
            "{e}"
        );
        // Without a matrix the same shapes are refused by the plain load.
        let e = expand_text(
            &MATRIX
                .replace("level: 1", "level: 5")
                .replace("[a, b, c, d]", "[a, b]"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("RAID5 needs at least 3 members"), "{e}");
        let e = expand_text(&MATRIX.replace(
            "bitmap: {disk: fs, chunk: 64K}}",
            "bitmap: {kind: internal, chunk: 64K}, build: true}",
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("array.build"), "{e}");
    }

    #[test]
    fn sizes() {
        assert_eq!(Size::parse("64K"), Ok(Size(65536)));
        assert_eq!(Size::parse("1GiB"), Ok(Size(1 << 30)));
        assert_eq!(Size::parse("4096"), Ok(Size(4096)));
        assert!(Size::parse("M").is_err());
        assert!(Size::parse("99999999999999999G")
            .unwrap_err()
            .contains("too large"));
    }
}
