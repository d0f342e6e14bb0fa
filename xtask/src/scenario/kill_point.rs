//! The kill point of a load: when a SIGKILL is sure to leave the members apart. Read from
//! the guest (`/sys/block/*/stat`, `inflight`: the lagging member behind its mirror on
//! data) and, last, from QEMU (`query-blockstats`: the writes it still holds back), with
//! the writers' liveness; a wait that cannot end says why.

use super::workload::WORKLOAD_PID;
use super::Scenario;
use crate::case::{CrashPoint, CrashSpec};
use crate::check;
use crate::poll::{self, Pace, Probe};
use crate::result::Failure;
use crate::vm::{guest, Vm};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How a wait for the kill point ended, when it did not reach it.
enum Missed {
    Failed(Failure),
    /// The writers are gone (their state, as `/proc` last showed it).
    Gone(String),
    Deadline(String),
}

impl Scenario<'_, '_> {
    /// What every block device of the guest, and every drive of QEMU, has written so far:
    /// the kill point's baseline, read before the load starts.
    pub fn block_stats(&self, vm: &mut Vm) -> Result<BlockStats, Failure> {
        let mut stats = BlockStats::parse(&self.sh(vm, BlockStats::CMD, 10)?);
        stats.host = HostWrites::read(vm)?;
        Ok(stats)
    }

    /// Bytes md0 has written since assembly.
    pub fn md_written(&self, vm: &mut Vm) -> Result<u64, Failure> {
        let stats = BlockStats::parse(&self.sh(vm, "grep -H . /sys/block/md0/stat", 10)?);
        Ok(stats.written_since(&BlockStats::default(), "md0") * 512)
    }

    /// Waits for the kill point: bytes written to md0, or time since the load started;
    /// then, with a throttled member, until a SIGKILL must leave the members apart.
    /// `start` is [`Scenario::block_stats`] from before the load, `workload` the
    /// writers' spawn id. Returns the bytes md0 wrote.
    pub fn wait_kill_point(
        &mut self,
        vm: &mut Vm,
        crash: &CrashSpec,
        start: &BlockStats,
        workload: u32,
    ) -> Result<u64, Failure> {
        let started = Instant::now();
        // No wait outlives the case's VM time.
        let limit = Duration::from_secs(300).min(self.plan.vm.timeout);
        // While writing, the kill waits until the lagging member is behind on data: only
        // its queued writes are lost, so only then can the members differ (a slow guest
        // may never outrun the throttle, and would crash with nothing to judge).
        let lagging = crash
            .throttle
            .as_ref()
            .filter(|_| crash.at == CrashPoint::Writing)
            .map(|t| {
                let peer = mirror_peer(self.array.level, &self.array.members, &t.disk)
                    .map(|p| (dev_name(&self.dev(p)), self.drive_id(p)));
                (dev_name(&self.dev(&t.disk)), self.drive_id(&t.disk), peer)
            });
        let max_io = crash.workload.max_io.0;
        let mut cmd = match &lagging {
            Some((name, ..)) => format!("{} /sys/block/{name}/inflight", BlockStats::CMD),
            None => BlockStats::CMD.to_string(),
        };
        cmd.push_str(&format!(
            "; echo \"writers: $(grep ^State: /proc/$(cat {WORKLOAD_PID})/status 2>/dev/null)\""
        ));
        // md0's writes at the last two looks: a load still writing at the deadline is no
        // stuck kernel, whatever sysrq w would show blocked on the throttled disk.
        let mut md0_seen = [0, 0];
        let waited = poll::until(
            limit,
            Pace::ms(50, 250),
            || {
                let text = self.sh(vm, &cmd, 10).map_err(Missed::Failed)?;
                if let Some(state) = writers_gone(&text) {
                    return Err(Missed::Gone(state));
                }
                let now = BlockStats::parse(&text);
                let written = now.written_since(start, "md0") * 512;
                md0_seen = [md0_seen[1], written];
                let due = match (crash.after_written, crash.after_time) {
                    (Some(bytes), _) => written >= bytes.0,
                    (None, Some(t)) => started.elapsed() >= t,
                    (None, None) => true,
                };
                let mut lag = lagging.as_ref().map(|(name, _, peer)| {
                    lag_at(start, &now, name, peer.as_ref().map(|(p, _)| p.as_str()))
                });
                // The first condition of the kill point not met yet, as a deadline says it.
                let mut waiting_for = if !due {
                    Some(format!("the workload wrote only {written} bytes"))
                } else if let Some(Err(why)) = &lag {
                    Some(why.clone())
                } else if !self.pressure_ok(vm, crash).map_err(Missed::Failed)? {
                    Some("the writers' cgroup never reached memory pressure (no memory.high/max event, no memory stall)".to_string())
                } else {
                    None
                };
                // Last, as close to the kill as it gets: QEMU's own count, which a busy
                // host can put ahead of what the guest has seen complete.
                if let (None, Some((_, drive, Some((_, peer_drive)))), Some(Ok(guest))) =
                    (&waiting_for, &lagging, &lag)
                {
                    let host = HostWrites::read(vm).map_err(Missed::Failed)?;
                    match host_lag(&start.host, &host, drive, peer_drive, max_io) {
                        Ok(seen) => {
                            let mut both = guest.clone();
                            both["host"] = seen;
                            lag = Some(Ok(both));
                        }
                        Err(why) => waiting_for = Some(why),
                    }
                }
                let Some(why) = waiting_for else {
                    return Ok(Probe::Done((written, lag.and_then(Result::ok))));
                };
                if let Some(status) = vm.exited() {
                    return Err(Missed::Failed(Failure::Case(format!(
                        "QEMU exited ({status}) during the workload"
                    ))));
                }
                Ok(Probe::Pending(why))
            },
            Missed::Deadline,
        );
        match waited {
            Ok((written, lag)) => {
                if let Some(lag) = lag {
                    self.note_figure("lag_at_kill_point", lag);
                }
                Ok(written)
            }
            Err(Missed::Failed(f)) => Err(f),
            Err(Missed::Gone(state)) => Err(self.writers_ended(vm, workload, &state)),
            Err(Missed::Deadline(why)) => {
                let why = format!("{why} in {limit:?} (deadline passed)");
                if md0_seen[1] > md0_seen[0] {
                    let detail = format!(
                        "the load was still writing ({} bytes to md0 at the last look)",
                        md0_seen[1]
                    );
                    Err(self.unreached(why, Some(detail), vm.console_tail(10)))
                } else {
                    Err(self.stalled(vm, why))
                }
            }
        }
    }

    /// The writers ended before the kill point. One that saw an error from md0 says so
    /// and exits: `writers_alive` fails (FAIL). Killed by a signal (the OOM killer of a
    /// case's memory limit, say), they could not load the array: the case could not
    /// judge (ERROR), with the console's tail.
    fn writers_ended(&mut self, vm: &mut Vm, workload: u32, state: &str) -> Failure {
        let out = match guest::wait(vm, workload, Duration::from_secs(10)) {
            Ok(out) => out,
            Err(e) => return Failure::Bench(e.context("the writers' end")),
        };
        let console = vm.console_tail(10);
        match out {
            Some(out) if out.signal.is_none() => {
                let c = check::writers_alive(Some((out.status, out.stderr)));
                let summary = format!("{}: {}", c.name, c.summary);
                self.add(c);
                Failure::Case(format!("{summary}\n{console}"))
            }
            Some(out) => {
                let why = format!(
                    "the writers were killed by signal {} before the kill point",
                    out.signal.unwrap_or_default()
                );
                self.unreached(why, None, console)
            }
            None => {
                let why = format!("the writers ended before the kill point ({state})");
                self.unreached(why, None, console)
            }
        }
    }
}

/// The guest's block devices at one moment, as the kill point reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockStats {
    /// Sectors written (`stat` field 7), by device name (`md0`, `vdb`).
    written: BTreeMap<String, u64>,
    /// Writes in flight (`inflight`'s second field), by device name, where read.
    inflight_writes: BTreeMap<String, u64>,
    /// QEMU's side, where read.
    pub host: HostWrites,
}

/// QEMU's own count of each drive's completed writes (QMP `query-blockstats`): bytes and
/// operations by drive id (`drive1`). A write counts once QEMU has it back from the
/// host's file, before the guest hears of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostWrites(BTreeMap<String, (u64, u64)>);

impl HostWrites {
    pub fn read(vm: &mut Vm) -> Result<HostWrites, Failure> {
        let reply = vm
            .qmp()
            .execute("query-blockstats", serde_json::json!({}))
            .map_err(Failure::Bench)?;
        Ok(HostWrites::parse(&reply))
    }

    pub fn parse(reply: &serde_json::Value) -> HostWrites {
        let drives = reply.as_array().map(Vec::as_slice).unwrap_or_default();
        HostWrites(
            drives
                .iter()
                .filter_map(|d| {
                    let stats = &d["stats"];
                    Some((
                        d["device"].as_str().filter(|n| !n.is_empty())?.to_string(),
                        (
                            stats["wr_bytes"].as_u64()?,
                            stats["wr_operations"].as_u64()?,
                        ),
                    ))
                })
                .collect(),
        )
    }

    /// Bytes and writes `drive` completed between `start` and this reading.
    fn since(&self, start: &HostWrites, drive: &str) -> (u64, u64) {
        let at = |h: &HostWrites| h.0.get(drive).copied().unwrap_or_default();
        let ((b, o), (b0, o0)) = (at(self), at(start));
        (b.saturating_sub(b0), o.saturating_sub(o0))
    }
}

impl BlockStats {
    /// Every device's `stat`, each line prefixed with its path; `inflight` files may follow.
    pub const CMD: &'static str = "grep -H . /sys/block/*/stat";

    pub fn parse(text: &str) -> BlockStats {
        let mut stats = BlockStats::default();
        for line in text.lines() {
            let Some((path, fields)) = line.split_once(':') else {
                continue;
            };
            let mut parts = path.trim_start_matches("/sys/block/").split('/');
            let (Some(dev), Some(file)) = (parts.next(), parts.next()) else {
                continue;
            };
            let fields: Vec<u64> = fields
                .split_whitespace()
                .map_while(|v| v.parse().ok())
                .collect();
            match (file, fields.as_slice()) {
                ("stat", [_, _, _, _, _, _, sectors, ..]) => {
                    stats.written.insert(dev.to_string(), *sectors);
                }
                ("inflight", [_, writes]) => {
                    stats.inflight_writes.insert(dev.to_string(), *writes);
                }
                _ => {}
            }
        }
        stats
    }

    /// Sectors `dev` wrote between `start` and this reading.
    pub fn written_since(&self, start: &BlockStats, dev: &str) -> u64 {
        let at = |s: &BlockStats| s.written.get(dev).copied().unwrap_or(0);
        at(self).saturating_sub(at(start))
    }
}

/// How far a mirror member must trail its peer before a kill is sure to leave them apart:
/// more than the metadata md may have in flight on it at once (a bitmap page and a
/// superblock, 4 KiB each at most), so at least one data write is among what it lacks.
const LAG_MIN_BYTES: u64 = 64 << 10;

/// Writes the throttled member must have queued at the kill point. The queue drains at
/// the throttle's pace while writers wait on a bitmap update and send nothing new (seen
/// with RAID10's internal bitmap: 197 KiB behind at the last look, identical members
/// after the kill), so a queue of one write may be gone before the kill lands; without
/// a mirror to compare with, more writes than md's metadata (bitmap page, superblock,
/// flush) can be also proves a data write among them.
const MIN_QUEUED_BEHIND_MIRROR: u64 = 2;
const MIN_QUEUED_WITHOUT_MIRROR: u64 = 4;

/// Whether the throttled member `lagging` is behind enough for a kill to leave the
/// members apart: writes queued on it, and against its mirror `peer`, data the peer
/// completed since `start` that `lagging` did not; without a mirror (parity levels),
/// more writes queued than metadata can be. Ok: what it saw, for the result; Err: what
/// it waits for.
fn lag_at(
    start: &BlockStats,
    now: &BlockStats,
    lagging: &str,
    peer: Option<&str>,
) -> Result<serde_json::Value, String> {
    let queued = now.inflight_writes.get(lagging).copied().unwrap_or(0);
    let never = format!("the throttled member {lagging} never");
    let outrun = "(the load does not outrun its throttle)";
    match peer {
        Some(peer) => {
            let behind = now
                .written_since(start, peer)
                .saturating_sub(now.written_since(start, lagging))
                * 512;
            if behind >= LAG_MIN_BYTES && queued >= MIN_QUEUED_BEHIND_MIRROR {
                Ok(serde_json::json!({ "member": lagging, "peer": peer, "behind_bytes": behind, "writes_in_flight": queued }))
            } else {
                Err(format!(
                    "{never} fell {LAG_MIN_BYTES} bytes behind its mirror {peer} with {MIN_QUEUED_BEHIND_MIRROR} writes in flight {outrun}; {behind} bytes and {queued} writes at the last look"
                ))
            }
        }
        None if queued >= MIN_QUEUED_WITHOUT_MIRROR => {
            Ok(serde_json::json!({ "member": lagging, "writes_in_flight": queued }))
        }
        None => Err(format!(
            "{never} had {MIN_QUEUED_WITHOUT_MIRROR} writes in flight {outrun}; {queued} at the last look"
        )),
    }
}

/// From the kill point's reading, whether the writers are gone: their `/proc` entry
/// missing or a zombie (`writers: State:\tZ (zombie)`); what it showed, if so.
fn writers_gone(text: &str) -> Option<String> {
    let state = text
        .lines()
        .find_map(|l| l.strip_prefix("writers:"))?
        .trim();
    let state = state.strip_prefix("State:").map(str::trim);
    match state {
        Some(s) if !s.starts_with('Z') => None,
        Some(s) => Some(format!("state {s}")),
        None => Some("no process".into()),
    }
}

/// Writes QEMU must still hold back on the throttled drive: the throttle lets one go at a
/// time, which may land before the kill does, and at least two more stay queued.
const MIN_HOST_QUEUED: u64 = 3;

/// Whether QEMU itself still lacks on `drive` what it completed on `peer` since `start`:
/// at least [`MIN_HOST_QUEUED`] writes, and 64 KiB beyond one write of the load's largest
/// (`max_io`) that may be on its way. The guest's view alone misled once on a host running
/// four VMs on two cores: 209 KiB behind with 2 writes in flight as the guest saw it, and
/// identical members after the kill, its completions not yet delivered.
fn host_lag(
    start: &HostWrites,
    now: &HostWrites,
    drive: &str,
    peer: &str,
    max_io: u64,
) -> Result<serde_json::Value, String> {
    let (peer_bytes, peer_ops) = now.since(start, peer);
    let (bytes, ops) = now.since(start, drive);
    let behind = peer_bytes.saturating_sub(bytes);
    let queued = peer_ops.saturating_sub(ops);
    let need = LAG_MIN_BYTES + max_io;
    if behind >= need && queued >= MIN_HOST_QUEUED {
        Ok(serde_json::json!({ "behind_bytes": behind, "writes_behind": queued }))
    } else {
        Err(format!(
            "QEMU never held back {need} bytes and {MIN_HOST_QUEUED} writes of {drive} that {peer} had completed; {behind} bytes and {queued} writes at the last look"
        ))
    }
}

/// The member holding the same data as `disk`, when the level keeps whole copies: any
/// other member of a mirror; RAID10's near-2 partner (member `i ^ 1`, with an even
/// number of members, mdadm's default layout). Parity levels have none.
fn mirror_peer<'m>(level: u32, members: &'m [String], disk: &str) -> Option<&'m str> {
    let i = members.iter().position(|m| m == disk)?;
    match level {
        1 => members.iter().find(|m| *m != disk).map(String::as_str),
        10 if members.len().is_multiple_of(2) => members.get(i ^ 1).map(String::as_str),
        _ => None,
    }
}

/// `vdb` of `/dev/vdb`.
fn dev_name(dev: &str) -> String {
    dev.trim_start_matches("/dev/").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("m{i}")).collect()
    }

    /// `query-blockstats` as QEMU 7.2 answers it, cut to what is read.
    fn host(d0: (u64, u64), d1: (u64, u64)) -> HostWrites {
        HostWrites::parse(&serde_json::json!([
            {"device": "drive0", "node-name": "#block123", "stats": {"wr_bytes": d0.0, "wr_operations": d0.1, "rd_bytes": 7}},
            {"device": "drive1", "stats": {"wr_bytes": d1.0, "wr_operations": d1.1}},
            {"device": "", "stats": {"wr_bytes": 1, "wr_operations": 1}},
        ]))
    }

    #[test]
    fn qemu_must_hold_back_more_than_one_write_of_the_largest() {
        let start = host((1 << 20, 10), (1 << 20, 10));
        assert_eq!(start.0.len(), 2, "a drive without a name is no member");
        let lag = |start: &HostWrites, now: HostWrites| {
            host_lag(start, &now, "drive1", "drive0", 256 << 10)
        };
        let ok = lag(&start, host((2 << 20, 20), ((2 << 20) - (320 << 10), 17)));
        assert_eq!(
            ok.unwrap(),
            serde_json::json!({"behind_bytes": 327680, "writes_behind": 3})
        );
        // One byte short of 64 KiB beyond a whole write on its way.
        let short = lag(
            &start,
            host((2 << 20, 20), ((2 << 20) - (320 << 10) + 1, 17)),
        );
        assert!(short
            .unwrap_err()
            .contains("327679 bytes and 3 writes at the last look"));
        // Far behind in bytes, but two writes: one may land before the kill.
        assert!(lag(&start, host((4 << 20, 12), (1 << 20, 10))).is_err());
        // What each had written before the load does not count.
        let start = host((0, 0), (1 << 20, 10));
        assert!(lag(&start, host((1 << 20, 10), (1 << 20, 10))).is_ok());
    }

    #[test]
    fn writers_are_gone_when_proc_has_no_live_process() {
        assert_eq!(writers_gone("x\nwriters: State:\tS (sleeping)\n"), None);
        assert_eq!(writers_gone("writers: State:\tD (disk sleep)"), None);
        assert_eq!(
            writers_gone("writers: State:\tZ (zombie)").as_deref(),
            Some("state Z (zombie)")
        );
        assert_eq!(writers_gone("writers: ").as_deref(), Some("no process"));
        assert_eq!(writers_gone("no such line"), None, "not asked");
    }

    #[test]
    fn the_peer_holds_the_same_data() {
        assert_eq!(mirror_peer(1, &members(3), "m1"), Some("m0"));
        assert_eq!(mirror_peer(1, &members(2), "m0"), Some("m1"));
        assert_eq!(mirror_peer(10, &members(4), "m1"), Some("m0"));
        assert_eq!(mirror_peer(10, &members(4), "m2"), Some("m3"));
        assert_eq!(mirror_peer(10, &members(3), "m1"), None, "copies wrap");
        assert_eq!(mirror_peer(5, &members(3), "m1"), None);
        assert_eq!(mirror_peer(6, &members(4), "m1"), None);
        assert_eq!(mirror_peer(1, &members(2), "fs"), None, "not a member");
    }

    /// `grep -H` of 6.12's 17-field `stat`s and an `inflight`, as the guest prints them.
    fn reading(md0: u64, vdb: u64, vdc: u64, inflight: u64) -> BlockStats {
        BlockStats::parse(&format!(
            "/sys/block/md0/stat:     120        0     2200        0     3000        0 {md0:>8}        0        0        0        0        0        0        0        0        0        0\n\
             /sys/block/vdb/stat:     100        0     1800       40     3100        5 {vdb:>8}    12000        0     2000    12040        0        0        0        0        0        0\n\
             /sys/block/vdc/stat:     100        0     1800       40     2900        5 {vdc:>8}    99000        8     9000    99040        0        0        0        0        0        0\n\
             /sys/block/vdc/inflight:        0        {inflight}\n"
        ))
    }

    #[test]
    fn stats_parse_per_device() {
        let r = reading(500, 700, 600, 8);
        assert_eq!(r.written.get("md0"), Some(&500));
        assert_eq!(r.written.get("vdc"), Some(&600));
        assert_eq!(r.inflight_writes.get("vdc"), Some(&8));
        assert_eq!(r.inflight_writes.get("vdb"), None);
        assert_eq!(r.written_since(&reading(100, 0, 0, 0), "md0"), 400);
        assert_eq!(
            BlockStats::parse("garbage\n/sys/block/x/stat: 1 2\n"),
            BlockStats::default()
        );
    }

    #[test]
    fn a_mirror_member_is_behind_only_by_more_than_metadata() {
        let start = reading(0, 1000, 1000, 0);
        // The peer (vdb) wrote 64 KiB more than the throttled vdc since the start.
        let lag = lag_at(&start, &reading(0, 1128, 1000, 2), "vdc", Some("vdb"));
        assert_eq!(lag.unwrap()["behind_bytes"], 65536);
        // 8 KiB behind: a bitmap page and a superblock may be all it lacks.
        let why = lag_at(&start, &reading(0, 1016, 1000, 2), "vdc", Some("vdb")).unwrap_err();
        assert!(
            why.contains("never fell 65536 bytes behind its mirror vdb")
                && why.contains("8192 bytes and 2 writes at the last look"),
            "{why}"
        );
        // Far behind with one write left: it may drain before the kill lands.
        assert!(lag_at(&start, &reading(0, 2000, 1000, 1), "vdc", Some("vdb")).is_err());
        // What each had written before the load does not count.
        let start = reading(0, 1000, 5000, 0);
        assert!(lag_at(&start, &reading(0, 1128, 5000, 2), "vdc", Some("vdb")).is_ok());
        assert!(lag_at(&start, &reading(0, 1128, 5128, 2), "vdc", Some("vdb")).is_err());
    }

    #[test]
    fn without_a_mirror_more_writes_in_flight_than_metadata_will_do() {
        let start = reading(0, 0, 0, 0);
        let lag = lag_at(&start, &reading(0, 0, 0, 4), "vdc", None);
        assert_eq!(lag.unwrap()["writes_in_flight"], 4);
        let why = lag_at(&start, &reading(0, 0, 0, 3), "vdc", None).unwrap_err();
        assert!(why.contains("never had 4 writes in flight"), "{why}");
    }
}
