//! The YAML schema of a case file, with the defaults a field takes when absent, and the
//! parse that reports a bad file as `file:line:column: field: what`.

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
    /// Crash under load, then assemble with a bitmap file that lies (stale, foreign,
    /// short, corrupt).
    #[serde(default)]
    pub bitmap_lie: Option<BitmapLieSpec>,
    /// Record every write of a load, then judge every crash state a power cut could
    /// leave under a disk model.
    #[serde(default)]
    pub power_loss: Option<PowerLossSpec>,
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
    /// The case's own steps hand md a bitmap file (`mdadm --bitmap=FILE`): on a kernel that
    /// refuses one, it is skipped, saying why. An `array:` with a file bitmap says so itself.
    #[serde(default)]
    pub bitmap_file: bool,
    /// Kernel options (`CONFIG_FAILSLAB`...) the case needs built in or as modules; on a
    /// kernel without one (or whose config is unknown) the case is skipped, saying which.
    #[serde(default)]
    pub requires: Vec<String>,
    /// Known kernel findings (ids in `xtask/src/findings/known.yaml`) the case may show: a
    /// failure whose every cause is one of them is an XFAIL, anything else a FAIL.
    #[serde(default)]
    pub findings: Vec<String>,
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
    /// How the bitmap file lies (a `bitmap_lie` case).
    #[serde(default)]
    pub lie: Vec<Lie>,
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
    #[serde(default)]
    pub lie: Option<Lie>,
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
    /// `file` (the subject), `internal` (the control: md writes it into the members,
    /// with PREFLUSH|FUA, where a file bitmap gets neither) or `lockless` (llbitmap,
    /// Linux 6.18+: a byte of state per chunk in the members; md picks its chunk).
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
    /// The bitmap daemon's period (`mdadm --delay`, whole seconds): bits clear two
    /// periods after a chunk's last write. md's default is 5 s; a case that does not test
    /// the default takes 1 s, so that its waits for clean bits take seconds.
    #[serde(default = "default_daemon_sleep", with = "humantime_serde_compat")]
    pub daemon_sleep: Duration,
}

fn default_daemon_sleep() -> Duration {
    Duration::from_secs(5)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BitmapKind {
    #[default]
    File,
    Internal,
    Lockless,
}

impl BitmapKind {
    /// The name a case file, a matrix label and `needs.bitmaps` give it.
    pub fn as_str(self) -> &'static str {
        match self {
            BitmapKind::File => "file",
            BitmapKind::Internal => "internal",
            BitmapKind::Lockless => "lockless",
        }
    }

    /// Whether md keeps it in the members (internal and lockless).
    pub fn in_members(self) -> bool {
        self != BitmapKind::File
    }

    /// The kernel option md needs for it.
    pub fn requires(self) -> Option<&'static str> {
        (self == BitmapKind::Lockless).then_some("CONFIG_MD_LLBITMAP")
    }
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
    /// Record the load (write logs and the guest's request trace) of a SIGKILL while
    /// writing, so that each chunk the kill leaves uncovered is explained by its cause;
    /// `false` only to measure what the recording costs.
    #[serde(default = "default_true")]
    pub record: bool,
}

impl CrashSpec {
    /// Whether the first crash's load is recorded: a SIGKILL while the writers write.
    pub fn recorded(&self) -> bool {
        self.record && self.mode == CrashMode::Sigkill && self.at == CrashPoint::Writing
    }
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

/// A crash, then the next assembly given a bitmap file that does not tell the array's
/// truth. md may refuse the file or recover in full; it must never trust its bits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BitmapLieSpec {
    /// How the file lies (or the matrix's `lie` axis says).
    #[serde(default)]
    pub lie: Option<Lie>,
    /// What md is expected to do with the file, per lie.
    pub expect: std::collections::BTreeMap<Lie, LieOutcome>,
    /// The load, the lagging member and the kill point, as in a crash case.
    pub crash: CrashSpec,
}

/// How the bitmap file lies at the assembly after the crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lie {
    /// An older copy of itself, taken before the load: its events are behind the array's.
    Stale,
    /// The array was assembled and loaded without it: the file knows nothing of the load.
    Lagging,
    /// Another array's file: another UUID, otherwise valid.
    Foreign,
    /// Truncated inside its bit array.
    ShortBits,
    /// Truncated inside its superblock.
    ShortSuper,
    /// Its magic number damaged.
    BadMagic,
    /// A chunk size that is not a power of two.
    BadChunksize,
    /// A sync size that disagrees with the array's.
    BadSyncSize,
}

impl Lie {
    /// The lie in a case name (`short-bits`).
    pub fn label(self) -> &'static str {
        match self {
            Lie::Stale => "stale",
            Lie::Lagging => "lagging",
            Lie::Foreign => "foreign",
            Lie::ShortBits => "short-bits",
            Lie::ShortSuper => "short-super",
            Lie::BadMagic => "bad-magic",
            Lie::BadChunksize => "bad-chunksize",
            Lie::BadSyncSize => "bad-sync-size",
        }
    }
}

/// What md did with a bitmap file at assembly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LieOutcome {
    /// The assembly failed, or the array runs without the bitmap.
    Refused,
    /// md took the file but announced a full recovery (its bits count for nothing).
    FullRecovery,
    /// md used the file's bits: right only when the lie does not touch them.
    Trusted,
}

impl LieOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            LieOutcome::Refused => "refused",
            LieOutcome::FullRecovery => "full_recovery",
            LieOutcome::Trusted => "trusted",
        }
    }
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

/// What a power cut may keep of a disk's writes (see `powercut::model`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum DiskModel {
    /// A completed write is durable; the guest sees no write cache.
    WriteThrough,
    /// A completed write is durable once a later flush completed; the guest sees a
    /// write-back cache.
    VolatileCache,
}

impl DiskModel {
    pub fn as_str(self) -> &'static str {
        match self {
            DiskModel::WriteThrough => "write_through",
            DiskModel::VolatileCache => "volatile_cache",
        }
    }
}

/// A recorded load and the crash states computed from it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowerLossSpec {
    pub model: DiskModel,
    #[serde(default)]
    pub workload: WorkloadSpec,
    /// Slows one member so that its writes lag its mirror's (more states differ).
    #[serde(default)]
    pub throttle: Option<ThrottleSpec>,
    /// How long the recorded load runs (3 s by default).
    #[serde(default, with = "opt_duration")]
    pub load_for: Option<Duration>,
    /// Record the bitmap daemon clearing the bits after the load, too.
    #[serde(default = "default_true")]
    pub clearing: bool,
    /// Up to this many undecided writes, every subset is judged (at most 16).
    #[serde(default = "default_exact_up_to")]
    pub exact_up_to: u32,
    /// Beyond it, this many seeded subsets per crash point.
    #[serde(default = "default_state_samples")]
    pub samples: u32,
    /// `false` runs the same load without recording and judges nothing: what
    /// `cargo xtask bench` measures the recording's cost against.
    #[serde(default = "default_true")]
    pub record: bool,
}

fn default_exact_up_to() -> u32 {
    8
}

fn default_state_samples() -> u32 {
    16
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
