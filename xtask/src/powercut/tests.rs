//! The power-cut pipeline on recordings built in the test: two mirror members `m0`, `m1`
//! of 16 chunks of 4 KiB, and a bitmap file in block 1 of a disk `fs`.

use super::explore::{explore, Bounds, Cause, Report};
use super::judge::{ArrayLayout, BitmapPlace};
use super::materialize::write_state;
use super::model::DiskModel;
use super::recording::{assemble, DiskLog, Recording};
use super::view::DiskViews;
use crate::logs::request_trace::{RqEvent, RqOp};
use crate::ondisk::bitmap::{encode, Bitmap, BitmapSuper};
use crate::ondisk::chunk_state::ChunkEncoding;
use crate::ondisk::ext4::FileMap;
use crate::ondisk::log_writes::{self, LOG_FLUSH_FLAG};
use crate::ondisk::redundancy::{self, Geometry};
use std::path::PathBuf;

const CHUNK: u64 = 4096;
const CHUNKS: u64 = 16;
const DISKS: [&str; 3] = ["m0", "m1", "fs"];

/// A recording made up: requests issued and completed in the order the test calls.
#[derive(Default)]
struct Sim {
    trace: Vec<RqEvent>,
    /// Per disk, the log's entries in completion order.
    logs: [Vec<(u64, u64, Vec<u8>)>; 3],
    issued: Vec<(usize, RqOp, u64, Vec<u8>)>,
    /// Sectors before the members' data (their superblocks').
    data_offset: u64,
    /// The bitmap's kind: bits, or the lockless bitmap's states.
    encoding: ChunkEncoding,
}

impl Sim {
    fn event(&mut self, id: usize, issue: bool) {
        let (disk, op, sector, data) = self.issued[id].clone();
        self.trace.push(RqEvent {
            dev: (253, disk as u32 * 16),
            op,
            issue,
            sector,
            sectors: data.len() as u64 / 512,
            fua: false,
            error: 0,
            time: self.trace.len() as f64,
            pid: 100 + id as u32,
        });
    }
    fn write(&mut self, disk: usize, sector: u64, data: Vec<u8>) -> usize {
        self.issued.push((disk, RqOp::Write, sector, data));
        self.event(self.issued.len() - 1, true);
        self.issued.len() - 1
    }
    fn flush(&mut self, disk: usize) -> usize {
        self.issued.push((disk, RqOp::Flush, 0, vec![]));
        self.event(self.issued.len() - 1, true);
        self.issued.len() - 1
    }
    fn complete(&mut self, id: usize) {
        self.event(id, false);
        let (disk, op, sector, data) = self.issued[id].clone();
        let flags = if op == RqOp::Flush { LOG_FLUSH_FLAG } else { 0 };
        self.logs[disk].push((sector, flags, data));
    }
    /// The bitmap block with `dirty` set (Dirty, every other chunk Clean, for the
    /// lockless bitmap).
    fn bitmap_write(&mut self, dirty: &[u64]) -> usize {
        self.write(2, 8, bitmap_block_of(self.encoding, dirty))
    }
    fn data_write(&mut self, member: usize, chunk: u64) -> usize {
        self.write(
            member,
            self.data_offset + chunk * CHUNK / 512,
            vec![0xaa; CHUNK as usize],
        )
    }

    /// Chunk `chunk`'s bit written and completed, then its data on m0 and on m1, one
    /// after the other: the order md promises.
    fn bit_then_both_copies(&mut self, chunk: u64) {
        let b = self.bitmap_write(&[chunk]);
        self.complete(b);
        for member in 0..2 {
            let d = self.data_write(member, chunk);
            self.complete(d);
        }
    }

    fn recording(&self) -> Recording {
        assemble(self.disk_logs(), &self.trace, 0).unwrap()
    }

    /// The recording of a load a SIGKILL ended: what never completed was never logged.
    fn killed(&self) -> Recording {
        super::recording::assemble_killed(self.disk_logs(), &self.trace).unwrap()
    }

    fn disk_logs(&self) -> Vec<DiskLog> {
        DISKS
            .iter()
            .enumerate()
            .map(|(d, name)| {
                let n = self.logs[d].len() as u64;
                let bytes = log_writes::encode(512, n, &self.logs[d]);
                DiskLog::new(name, (253, d as u32 * 16), bytes).unwrap()
            })
            .collect()
    }
}

fn bitmap_block_of(encoding: ChunkEncoding, dirty: &[u64]) -> Vec<u8> {
    let mut b = match encoding {
        ChunkEncoding::Bits => {
            let sb = BitmapSuper::new_v4([7; 16], CHUNKS * CHUNK / 512, CHUNK as u32, 5);
            encode(&sb, &[dirty.to_vec()]).unwrap()
        }
        ChunkEncoding::States => {
            // BitClean everywhere but the BitDirty chunks; chunksize in sectors.
            let states: Vec<u8> = (0..CHUNKS)
                .map(|c| if dirty.contains(&c) { 2 } else { 1 })
                .collect();
            crate::ondisk::llbitmap::tests::area(CHUNKS * CHUNK / 512, 8, 0, &states)
        }
    };
    b.resize(4096, 0);
    b
}

/// The images from before the recording: identical zeroed members, a clean bitmap.
fn bases(dir: &std::path::Path) -> Vec<PathBuf> {
    bases_of(dir, ChunkEncoding::Bits)
}

fn bases_of(dir: &std::path::Path, encoding: ChunkEncoding) -> Vec<PathBuf> {
    let mut fs = vec![0u8; 8192];
    fs[4096..].copy_from_slice(&bitmap_block_of(encoding, &[]));
    let images = [
        vec![0u8; (CHUNKS * CHUNK) as usize],
        vec![0u8; (CHUNKS * CHUNK) as usize],
        fs,
    ];
    DISKS
        .iter()
        .zip(images)
        .map(|(name, bytes)| {
            let p = dir.join(format!("{name}.img"));
            std::fs::write(&p, bytes).unwrap();
            p
        })
        .collect()
}

fn layout() -> ArrayLayout {
    ArrayLayout {
        members: vec![0, 1],
        superblocks: false,
        data_offsets: vec![0, 0],
        geometry: Geometry::mirror(2),
        chunk_bytes: CHUNK,
        space: CHUNKS * CHUNK,
        bitmap: BitmapPlace::File {
            disk: 2,
            map: FileMap {
                block_size: 4096,
                size: 4096,
                blocks: vec![1],
            },
        },
        encoding: ChunkEncoding::Bits,
        base_divergent: Default::default(),
    }
}

fn judged(sim: &Sim, model: DiskModel) -> (Report, Recording, tempfile::TempDir) {
    let rec = sim.recording();
    let (report, dir) = judge_model_of(&rec, model, sim.encoding);
    (report, rec, dir)
}

fn judge_recording(rec: &Recording) -> (Report, tempfile::TempDir) {
    judge_model(rec, DiskModel::WriteThrough)
}

fn judge_model(rec: &Recording, model: DiskModel) -> (Report, tempfile::TempDir) {
    judge_model_of(rec, model, ChunkEncoding::Bits)
}

fn judge_model_of(
    rec: &Recording,
    model: DiskModel,
    encoding: ChunkEncoding,
) -> (Report, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let paths = bases_of(dir.path(), encoding);
    let refs: Vec<&std::path::Path> = paths.iter().map(|p| p.as_path()).collect();
    let views = DiskViews::open(rec, &refs).unwrap();
    let bounds = Bounds {
        exact_up_to: 10,
        samples: 8,
        seed: 1,
        remember: true,
    };
    let layout = ArrayLayout {
        encoding,
        ..layout()
    };
    let report = explore(rec, &views, &layout, model, bounds).unwrap();
    (report, dir)
}

/// The lockless bitmap's states judged as md's Reload reads them: a chunk left Clean
/// over members that differ is unsafe, whatever wrote it; Dirty on disk before the data
/// is safe.
mod lockless {
    use super::*;

    fn sim() -> Sim {
        Sim {
            encoding: ChunkEncoding::States,
            ..Sim::default()
        }
    }

    /// The first violation's chunks, and its first chunk's cause with the request that
    /// wrote (or was to write) its state.
    fn first_violation(s: &Sim) -> (Vec<u64>, Cause, Option<String>, Recording) {
        let (r, rec, _d) = judged(s, DiskModel::WriteThrough);
        let first = &r.violations[0];
        let e = &first.explained[0];
        let carrier = e.bitmap.as_ref().map(|b| b.request.clone());
        (first.uncovered.clone(), e.cause, carrier, rec)
    }

    #[test]
    fn a_dirty_state_on_disk_before_the_data_is_safe() {
        let mut s = sim();
        s.bit_then_both_copies(3);
        let (r, _, _d) = judged(&s, DiskModel::WriteThrough);
        assert_eq!(r.unsafe_states, 0, "{r:?}");
        assert!(r.states_checked > 0 && r.safe_states > 0, "{r:?}");
    }

    #[test]
    fn a_chunk_left_clean_over_divergent_members_is_unsafe() {
        let mut s = sim();
        let d0 = s.data_write(0, 3);
        s.complete(d0);
        let d1 = s.data_write(1, 3);
        s.complete(d1);
        let (uncovered, cause, _, _) = first_violation(&s);
        assert_eq!((uncovered, cause), (vec![3], Cause::Unwritten));
    }

    #[test]
    fn a_dirty_state_still_in_flight_when_the_data_went_out_is_ordering() {
        let mut s = sim();
        let b = s.bitmap_write(&[3]);
        let d0 = s.data_write(0, 3);
        s.complete(d0);
        s.complete(b);
        let (uncovered, cause, carrier, rec) = first_violation(&s);
        assert_eq!((uncovered, cause), (vec![3], Cause::Ordering));
        assert_eq!(carrier, Some(rec.describe(0)));
    }

    #[test]
    fn a_clean_state_written_after_the_data_is_cleared() {
        let mut s = sim();
        let b = s.bitmap_write(&[3]);
        s.complete(b);
        let d0 = s.data_write(0, 3);
        s.complete(d0);
        // The daemon's Clean reaches the disk while m1's copy is not written yet.
        let c = s.bitmap_write(&[]);
        s.complete(c);
        let d1 = s.data_write(1, 3);
        s.complete(d1);
        let (uncovered, cause, carrier, rec) = first_violation(&s);
        assert_eq!((uncovered, cause), (vec![3], Cause::Cleared));
        assert_eq!(carrier, Some(rec.describe(2)));
    }
}

#[test]
fn a_data_write_before_its_bitmap_write_completed_is_found_by_write_through() {
    let mut s = Sim::default();
    let b = s.bitmap_write(&[3]);
    let d0 = s.data_write(0, 3);
    s.complete(d0);
    let d1 = s.data_write(1, 3);
    s.complete(d1);
    s.complete(b);
    let (r, rec, _dir) = judged(&s, DiskModel::WriteThrough);
    let first = &r.violations[0];
    // Cut right after m0's data write was issued: it may be on m0, the bitmap write
    // may not be on fs, and m1 has not been written.
    assert_eq!(first.point, 2, "{first:?}");
    assert_eq!(first.after, "issue of m0 #1 write 24+8");
    assert_eq!(first.uncovered, [3]);
    assert_eq!(first.explained[0].cause, Cause::Ordering);
    assert_eq!(first.explained[0].chunk, 3);
    assert_eq!(
        first.explained[0].data.as_ref().unwrap().request,
        rec.describe(1)
    );
    let carrier = first.explained[0].bitmap.as_ref().unwrap();
    assert_eq!(carrier.request, rec.describe(0));
    assert!(carrier.completed_us.unwrap() > first.explained[0].data.as_ref().unwrap().issued_us);
    assert_eq!(first.survived["m0"], [rec.describe(1)]);
    assert_eq!(first.lost["fs"], [rec.describe(0)]);
    assert!(r.crash_points == 7 && r.exact_points == 7, "{r:?}");
    assert_eq!(
        r.unsafe_points, 3,
        "points 2, 3 (m0 durable) and 4 (m1 undecided)"
    );
}

#[test]
fn an_unflushed_bitmap_write_is_found_by_volatile_cache_not_write_through() {
    let mut s = Sim::default();
    s.bit_then_both_copies(3);
    let (wt, _, _d) = judged(&s, DiskModel::WriteThrough);
    assert_eq!(wt.unsafe_states, 0, "{wt:?}");
    assert!(wt.states_checked > 0 && wt.safe_states > 0);
    let (vc, rec, _d) = judged(&s, DiskModel::VolatileCache);
    let first = &vc.violations[0];
    // The bitmap write completed but no flush followed: a cut after m0's data write was
    // issued may keep the data and lose the bit.
    assert_eq!(first.point, 3, "{first:?}");
    assert_eq!(first.after, "issue of m0 #1 write 24+8");
    assert_eq!(first.uncovered, [3]);
    assert_eq!(first.explained[0].cause, Cause::Durability);
    assert_eq!(
        first.explained[0].bitmap.as_ref().unwrap().request,
        rec.describe(0)
    );
    assert_eq!(first.lost["fs"], [rec.describe(0)]);
    assert_eq!(vc.states_by_cause.get(&Cause::Ordering), None, "{vc:?}");
    assert_eq!(vc.states_by_cause[&Cause::Durability], vc.unsafe_states);
}

#[test]
fn a_bitmap_write_flushed_before_the_data_is_safe_under_both_models() {
    let mut s = Sim::default();
    let b = s.bitmap_write(&[3]);
    s.complete(b);
    let f = s.flush(2);
    s.complete(f);
    let d0 = s.data_write(0, 3);
    let d1 = s.data_write(1, 3);
    s.complete(d0);
    s.complete(d1);
    for model in [DiskModel::WriteThrough, DiskModel::VolatileCache] {
        let (r, _, _d) = judged(&s, model);
        assert_eq!(r.unsafe_states, 0, "{model:?}: {r:?}");
        assert!(r.safe_states > 0);
    }
}

#[test]
fn a_violating_state_written_out_is_judged_the_same_from_its_images() {
    let mut s = Sim::default();
    let b = s.bitmap_write(&[3]);
    let d0 = s.data_write(0, 3);
    s.complete(d0);
    s.complete(b);
    let (r, rec, dir) = judged(&s, DiskModel::WriteThrough);
    let v = &r.violations[0];
    let paths = bases(dir.path());
    let refs: Vec<&std::path::Path> = paths.iter().map(|p| p.as_path()).collect();
    let out = dir.path().join("state");
    let images = write_state(
        &rec,
        &refs,
        DiskModel::WriteThrough,
        v.point,
        &v.survivors,
        &out,
    )
    .unwrap();
    let judged = redundancy::judge_images(&images[..2], false, CHUNKS * CHUNK, CHUNK).unwrap();
    assert_eq!(judged.divergence.chunks, [3]);
    let fs = std::fs::read(&images[2]).unwrap();
    let bitmap = Bitmap::decode(&fs[4096..]).unwrap();
    assert!(!bitmap.is_dirty(0, 3), "the state lost the bit");
}

#[test]
fn requests_the_logs_do_not_hold_are_errors_that_name_the_disk_and_entry() {
    let mut s = Sim::default();
    let d0 = s.data_write(0, 3);
    s.complete(d0);
    // m1's log holds a write the guest never issued, before one it did.
    s.logs[1].push((40, 0, vec![1; 512]));
    let d1 = s.data_write(1, 3);
    s.complete(d1);
    let disks: Vec<DiskLog> = DISKS
        .iter()
        .enumerate()
        .map(|(d, name)| {
            let bytes = log_writes::encode(512, s.logs[d].len() as u64, &s.logs[d]);
            DiskLog::new(name, (253, d as u32 * 16), bytes).unwrap()
        })
        .collect();
    let e = assemble(disks, &s.trace, 0).unwrap_err();
    assert_eq!(e.disk, "m1");
    assert!(e.why.contains("log entry 0"), "{e}");
    // After a kill the streamed trace may lack the last moments of one CPU: the same
    // log is read, the write the trace did not show counted.
    let killed = s.killed();
    assert_eq!(killed.figures.log_writes_after_trace, 1);
}

#[test]
fn completions_logged_in_another_order_than_the_guest_saw_are_matched() {
    let mut s = Sim::default();
    let a = s.data_write(0, 1);
    let b = s.data_write(0, 2);
    s.complete(a);
    s.complete(b);
    // QEMU logged b before a.
    s.logs[0].swap(0, 1);
    let rec = s.recording();
    assert_eq!(rec.figures.reordered_matches, 1);
    assert_eq!(rec.requests[0].sector, 8);
    assert_eq!(rec.requests[0].log_index, 1);
    assert_eq!(rec.data(&rec.requests[0]), &[0xaa; 4096][..]);
}

#[test]
fn a_data_write_no_bitmap_write_ever_carried_is_unwritten() {
    let mut s = Sim::default();
    // The bitmap write sets another chunk's bit, never chunk 3's.
    let b = s.bitmap_write(&[5]);
    s.complete(b);
    let d0 = s.data_write(0, 3);
    s.complete(d0);
    let d1 = s.data_write(1, 3);
    s.complete(d1);
    let (r, rec, _d) = judged(&s, DiskModel::WriteThrough);
    let first = &r.violations[0];
    assert_eq!(first.uncovered, [3]);
    assert_eq!(first.explained[0].cause, Cause::Unwritten);
    assert_eq!(first.explained[0].bitmap, None);
    assert_eq!(
        first.explained[0].data.as_ref().unwrap().request,
        rec.describe(1)
    );
    assert_eq!(causes(&r), [&Cause::Unwritten]);
}

#[test]
fn a_bit_cleared_after_the_data_went_out_is_cleared_not_ordering() {
    let mut s = Sim::default();
    let b = s.bitmap_write(&[3]);
    s.complete(b);
    let d0 = s.data_write(0, 3);
    let d1 = s.data_write(1, 3);
    s.complete(d0);
    // The daemon clears the bit while m1's copy is still in flight.
    let clear = s.bitmap_write(&[]);
    s.complete(clear);
    s.complete(d1);
    let (r, rec, _d) = judged(&s, DiskModel::WriteThrough);
    let first = &r.violations[0];
    assert_eq!(first.uncovered, [3]);
    assert_eq!(first.explained[0].cause, Cause::Cleared, "{first:?}");
    assert_eq!(
        first.explained[0].bitmap.as_ref().unwrap().request,
        rec.describe(3)
    );
    assert_eq!(causes(&r), [&Cause::Cleared]);
}

#[test]
fn a_bitmap_write_queued_behind_the_page_in_flight_when_the_data_went_out_is_ordering() {
    let mut s = Sim::default();
    // Another unplug's write of the page, without chunk 3's bit, is in flight when the
    // data goes out; the write that sets the bit follows it.
    let busy = s.bitmap_write(&[5]);
    let d0 = s.data_write(0, 3);
    s.complete(busy);
    let carrier = s.bitmap_write(&[3, 5]);
    s.complete(d0);
    s.complete(carrier);
    let (r, rec, _d) = judged(&s, DiskModel::WriteThrough);
    let e = &r.evidence[&Cause::Ordering];
    assert_eq!(e.chunk, 3);
    assert_eq!(e.bitmap.as_ref().unwrap().request, rec.describe(2));
    assert!(
        e.evidence().contains("behind a write of the page"),
        "{}",
        e.evidence()
    );
    assert_eq!(causes(&r), [&Cause::Ordering]);

    // Nothing of the bitmap in flight when the data went out: a bit written only after
    // it is no race.
    let mut s = Sim::default();
    let d0 = s.data_write(0, 3);
    let carrier = s.bitmap_write(&[3]);
    s.complete(d0);
    s.complete(carrier);
    let (r, _, _d) = judged(&s, DiskModel::WriteThrough);
    assert_eq!(causes(&r), [&Cause::Unwritten]);
}

#[test]
fn a_preflush_write_whose_flush_went_out_before_the_data_is_ordering() {
    let mut s = Sim::default();
    // md submits a PREFLUSH bitmap write: its flush goes out and completes, then the
    // data is sent before the block layer issues the write itself.
    let pre = s.flush(2);
    s.complete(pre);
    let d0 = s.data_write(0, 3);
    let carrier = s.bitmap_write(&[3]);
    s.complete(carrier);
    let post = s.flush(2);
    s.complete(post);
    // The flush machinery's empty completion of the original write.
    s.trace.push(RqEvent {
        dev: (253, 32),
        op: RqOp::Write,
        issue: false,
        sector: 8,
        sectors: 0,
        fua: false,
        error: 0,
        time: s.trace.len() as f64,
        pid: 0,
    });
    s.complete(d0);
    let (r, rec, _d) = judged(&s, DiskModel::WriteThrough);
    assert_eq!(causes(&r), [&Cause::Ordering], "{r:?}");
    assert_eq!(
        r.evidence[&Cause::Ordering]
            .bitmap
            .as_ref()
            .unwrap()
            .request,
        rec.describe(carrier_index(&rec))
    );
}

/// The request index of the one write to fs.
fn carrier_index(rec: &Recording) -> usize {
    rec.requests
        .iter()
        .position(|q| q.disk == 2 && q.sectors > 0)
        .unwrap()
}

#[test]
fn a_bitmap_write_from_an_unplug_begun_before_the_data_is_ordering() {
    let mut s = Sim::default();
    let d0 = s.data_write(0, 3);
    let carrier = s.bitmap_write(&[3]);
    s.complete(d0);
    s.complete(carrier);
    let mut rec = s.recording();
    let carrier_pid = 100 + carrier as u32;
    // The carrier's task entered __bitmap_unplug before the data was issued (event 0).
    rec.set_unplugs(&[(0, carrier_pid)]);
    let (r, _) = judge_recording(&rec);
    assert_eq!(causes(&r), [&Cause::Ordering], "{r:?}");
    // Begun only after the data: no evidence of a race.
    rec.set_unplugs(&[(1, carrier_pid)]);
    let (r, _) = judge_recording(&rec);
    assert_eq!(causes(&r), [&Cause::Unwritten]);
    // Another task's unplug proves nothing of this write...
    rec.set_unplugs(&[(0, carrier_pid + 1)]);
    let (r, _) = judge_recording(&rec);
    assert_eq!(causes(&r), [&Cause::Unwritten]);
    // ...unless that task sent the page the write carries (filemap_write_page) and
    // another dispatched it.
    rec.set_page_writes(&[(1, carrier_pid + 1)]);
    let (r, _) = judge_recording(&rec);
    assert_eq!(causes(&r), [&Cause::Ordering]);
    // A sender whose unplug began after the data went out: no race shown.
    rec.set_unplugs(&[(1, carrier_pid + 1)]);
    let (r, _) = judge_recording(&rec);
    assert_eq!(causes(&r), [&Cause::Unwritten]);
}

/// The causes a report counted states of.
fn causes(r: &Report) -> Vec<&Cause> {
    r.states_by_cause.keys().collect()
}

/// The kill's one state explained, chunk 3 uncovered.
fn explained_kill(sim: &Sim) -> (super::explore::Explanation, Recording) {
    let dir = tempfile::tempdir().unwrap();
    let rec = sim.killed();
    let paths = bases(dir.path());
    let refs: Vec<&std::path::Path> = paths.iter().map(|p| p.as_path()).collect();
    let views = DiskViews::open(&rec, &refs).unwrap();
    let layout = layout();
    let judge = super::judge::Judge::new(&views, &layout);
    let e = super::explore::explain_killed(&rec, &judge, &[3]);
    (e[0].clone(), rec)
}

#[test]
fn a_kill_that_cut_off_the_bitmap_write_the_data_overtook_is_ordering() {
    let mut s = Sim::default();
    // The bitmap write is issued, the data goes out on both members and completes on
    // m0; the kill finds the bitmap write and m1's copy still in flight.
    let b = s.bitmap_write(&[3]);
    let d0 = s.data_write(0, 3);
    let _d1 = s.data_write(1, 3);
    s.complete(d0);
    let (e, rec) = explained_kill(&s);
    assert_eq!(e.cause, Cause::Ordering, "{e:?}");
    let carrier = e.bitmap.as_ref().unwrap();
    assert_eq!(carrier.request, rec.describe(b));
    assert_eq!(carrier.completed_us, None, "never completed");
    assert!(e.evidence().contains("never completed"), "{}", e.evidence());
}

#[test]
fn a_kill_after_data_no_bitmap_write_carried_is_unwritten() {
    let mut s = Sim::default();
    let d0 = s.data_write(0, 3);
    let _d1 = s.data_write(1, 3);
    s.complete(d0);
    let (e, _) = explained_kill(&s);
    assert_eq!(e.cause, Cause::Unwritten, "{e:?}");
    // A completed bitmap write without the bit, nothing of the page in flight: the same.
    let mut s = Sim::default();
    let b = s.bitmap_write(&[5]);
    s.complete(b);
    let d0 = s.data_write(0, 3);
    let _d1 = s.data_write(1, 3);
    s.complete(d0);
    let (e, _) = explained_kill(&s);
    assert_eq!(e.cause, Cause::Unwritten, "{e:?}");
}

#[test]
fn a_write_completed_past_a_killed_log_s_last_whole_entry_is_counted_not_an_error() {
    let mut s = Sim::default();
    let d0 = s.data_write(0, 3);
    s.complete(d0);
    let d1 = s.data_write(1, 3);
    s.complete(d1);
    // The kill tore m1's entry: the guest saw the write complete, the log lacks it.
    s.logs[1].clear();
    let disks = s.disk_logs();
    assert!(
        assemble(disks, &s.trace, 0).is_err(),
        "a power-loss recording must hold it"
    );
    let rec = s.killed();
    assert_eq!(rec.figures.completed_not_logged, 1);
    assert!(!rec.requests[d1].logged());
}

#[test]
fn a_torn_entry_does_not_hide_the_matches_long_after_it() {
    let mut s = Sim::default();
    let torn = s.data_write(0, 1);
    s.complete(torn);
    // The kill tore the first entry; far more than a match window of writes follow.
    s.logs[0].clear();
    for _ in 0..600 {
        let w = s.data_write(0, 2);
        s.complete(w);
    }
    let rec = s.killed();
    assert_eq!(rec.figures.completed_not_logged, 1, "{:?}", rec.figures);
    assert_eq!(rec.figures.log_writes_after_trace, 0, "{:?}", rec.figures);
    assert_eq!(rec.requests.iter().filter(|q| q.logged()).count(), 600);
}

/// Writes of parts of the members, some over others and completed out of their issue
/// order, so that which of them shows in a page depends on more than which survive.
fn overlapping_writes() -> Sim {
    let mut s = Sim::default();
    let whole = s.write(0, 0, vec![0xaa; 8192]);
    let under = s.write(0, 2, vec![0x55; 1024]);
    s.complete(under);
    s.complete(whole);
    let ids = [
        s.write(1, 0, vec![0xaa; 4096]),
        s.write(1, 8, vec![0xaa; 4096]),
        // The same bytes as m0's over part of the page: what lies under it decides.
        s.write(1, 9, vec![0xaa; 512]),
        s.write(0, 40, vec![0x22; 4096]),
        s.write(1, 40, vec![0x22; 4096]),
        s.write(1, 96, vec![0x33; 2048]),
        s.write(0, 96, vec![0x33; 2048]),
        s.write(0, 0, vec![0xaa; 4096]),
    ];
    for id in ids {
        s.complete(id);
    }
    s
}

/// A chunk judged page by page, each page by the writes that show in it, agrees with the
/// chunk read whole, whichever writes survive, for every layout of two members, with the
/// judgements remembered or not.
#[test]
fn a_chunk_judged_by_the_writes_showing_in_its_pages_agrees_with_the_chunk_read_whole() {
    let rec = overlapping_writes().recording();
    let dir = tempfile::tempdir().unwrap();
    let mut paths = bases(dir.path());
    // m1 differs before the recording in a page no write touches (chunk 1) and under a
    // write that both members may take (chunk 3).
    let mut m1 = vec![0u8; (CHUNKS * CHUNK) as usize];
    m1[6 * 4096 + 100] = 1;
    m1[12 * 4096 + 1000] = 1;
    paths[1] = dir.path().join("m1-differs.img");
    std::fs::write(&paths[1], m1).unwrap();
    let refs: Vec<&std::path::Path> = paths.iter().map(|p| p.as_path()).collect();
    let views = DiskViews::open(&rec, &refs).unwrap();
    let chunk_bytes = 4 * CHUNK;
    let chunks = CHUNKS * CHUNK / chunk_bytes;
    let parity = redundancy::Layout::Parity {
        raid6: false,
        chunk: 8192,
    };
    let near = redundancy::Layout::Near {
        copies: 2,
        chunk: 8192,
    };
    for geometry in [
        Geometry::mirror(2),
        Geometry {
            layout: parity,
            members: 2,
        },
        Geometry {
            layout: near,
            members: 2,
        },
    ] {
        let mut base: Vec<std::fs::File> = refs[..2]
            .iter()
            .map(|p| std::fs::File::open(p).unwrap())
            .collect();
        let space = CHUNKS * CHUNK;
        let base_divergent = geometry
            .inconsistent(&mut base, &[0, 0], space, chunk_bytes)
            .unwrap()
            .chunks;
        assert_eq!(base_divergent, [1, 3], "{geometry:?}");
        let layout = ArrayLayout {
            geometry,
            chunk_bytes,
            base_divergent: base_divergent.into_iter().collect(),
            ..layout()
        };
        for remember in [true, false] {
            let mut judge = super::judge::Judge::new(&views, &layout);
            judge.remember = remember;
            // Every set of survivors twice: judged, then remembered.
            for set in (0..1u32 << rec.requests.len()).chain(0..1 << rec.requests.len()) {
                let survives = |r: usize| set >> r & 1 == 1;
                for c in 0..chunks {
                    let mut readers: Vec<_> = [0, 1].map(|d| views.reader(d, &survives)).into();
                    let whole = geometry
                        .inconsistent_in(
                            &mut readers,
                            &[0, 0],
                            space,
                            chunk_bytes,
                            c * chunk_bytes..(c + 1) * chunk_bytes,
                        )
                        .unwrap()
                        .chunks
                        .contains(&c);
                    assert_eq!(
                        judge.chunk_divergent(c, &survives).unwrap(),
                        whole,
                        "{geometry:?}, chunk {c}, survivors {set:#b}, remember {remember}"
                    );
                }
            }
        }
    }
}

/// Remembering judgements, and listing them by which undecided writes survive from one
/// crash point to the next, changes how fast the states are judged, not what is found.
#[test]
fn remembering_changes_nothing_but_the_time() {
    let mut s = overlapping_writes();
    // Bits and data in flight together, a flush now and then: states sampled and judged
    // every way.
    for round in 0..4u64 {
        let b = s.bitmap_write(&[round, round + 4]);
        let d0 = s.data_write(0, round);
        let d1 = s.data_write(1, round + 4);
        s.complete(d0);
        s.complete(b);
        if round % 2 == 1 {
            let f = s.flush(2);
            s.complete(f);
        }
        s.complete(d1);
        let clear = s.bitmap_write(&[]);
        s.complete(clear);
    }
    let rec = s.recording();
    let dir = tempfile::tempdir().unwrap();
    let paths = bases(dir.path());
    let refs: Vec<&std::path::Path> = paths.iter().map(|p| p.as_path()).collect();
    let views = DiskViews::open(&rec, &refs).unwrap();
    for model in [DiskModel::WriteThrough, DiskModel::VolatileCache] {
        let judged = |remember| {
            let bounds = Bounds {
                exact_up_to: 3,
                samples: 16,
                seed: 7,
                remember,
            };
            explore(&rec, &views, &layout(), model, bounds).unwrap()
        };
        let (with, without) = (judged(true), judged(false));
        assert!(with.unsafe_states > 0 && with.exact_points < with.crash_points);
        assert!(with.chunk_judgements_remembered > 0, "{with:?}");
        assert_eq!(without.chunk_judgements_remembered, 0);
        let figures = |r: &Report| {
            (
                r.crash_points,
                r.states_checked,
                r.safe_states,
                r.full_recovery_states,
                r.refused_states,
                r.unsafe_states,
                r.unsafe_points,
                r.states_by_cause.clone(),
            )
        };
        assert_eq!(figures(&with), figures(&without), "{model:?}");
        assert_eq!(with.violations, without.violations, "{model:?}");
        assert_eq!(with.evidence, without.evidence, "{model:?}");
    }
}

/// The members with v1.2 superblocks (data at 1 MiB), and a bitmap at `events`.
mod superblocks {
    use super::*;
    use crate::ondisk::superblock::testing::{encode as encode_sb, raid1_member};
    use crate::ondisk::superblock::SuperVersion;

    const DATA: u64 = 2048;
    const DEV: u64 = DATA * 512 + CHUNKS * CHUNK;
    const CLEAN: u64 = u64::MAX;

    fn member_sb(role: u32, events: u64, resync_offset: u64) -> Vec<u8> {
        let mut sb = raid1_member(SuperVersion::V1_2, DEV);
        sb.dev_number = role;
        sb.events = events;
        sb.resync_offset = resync_offset;
        let mut b = encode_sb(&sb);
        b.resize(4096, 0);
        b
    }

    fn bitmap_at(encoding: ChunkEncoding, dirty: &[u64], events: u64) -> Vec<u8> {
        let mut b = match encoding {
            ChunkEncoding::Bits => {
                let mut sb = BitmapSuper::new_v4([7; 16], CHUNKS * CHUNK / 512, CHUNK as u32, 5);
                sb.events = events;
                sb.events_cleared = events;
                encode(&sb, &[dirty.to_vec()]).unwrap()
            }
            ChunkEncoding::States => {
                let states: Vec<u8> = (0..CHUNKS)
                    .map(|c| if dirty.contains(&c) { 2 } else { 1 })
                    .collect();
                crate::ondisk::llbitmap::tests::area(CHUNKS * CHUNK / 512, 8, events, &states)
            }
        };
        b.resize(4096, 0);
        b
    }

    /// Members at `events` and dirty (resync offset 0), a clean bitmap at the higher.
    fn judge(sim: &Sim, events: [u64; 2]) -> (Report, Recording, tempfile::TempDir) {
        judge_of(sim, events, ChunkEncoding::Bits)
    }

    fn judge_of(
        sim: &Sim,
        events: [u64; 2],
        encoding: ChunkEncoding,
    ) -> (Report, Recording, tempfile::TempDir) {
        let rec = sim.recording();
        let dir = tempfile::tempdir().unwrap();
        let mut paths = Vec::new();
        for (m, &ev) in events.iter().enumerate() {
            let mut img = vec![0u8; DEV as usize];
            img[4096..8192].copy_from_slice(&member_sb(m as u32, ev, 0));
            let p = dir.path().join(format!("{}.img", DISKS[m]));
            std::fs::write(&p, img).unwrap();
            paths.push(p);
        }
        let mut fs = vec![0u8; 8192];
        fs[4096..].copy_from_slice(&bitmap_at(encoding, &[], events[0].max(events[1])));
        let p = dir.path().join("fs.img");
        std::fs::write(&p, fs).unwrap();
        paths.push(p);
        let refs: Vec<&std::path::Path> = paths.iter().map(|p| p.as_path()).collect();
        let views = DiskViews::open(&rec, &refs).unwrap();
        let layout = ArrayLayout {
            superblocks: true,
            data_offsets: vec![DATA * 512; 2],
            encoding,
            ..layout()
        };
        let bounds = Bounds {
            exact_up_to: 10,
            samples: 8,
            seed: 1,
            remember: true,
        };
        let r = explore(&rec, &views, &layout, DiskModel::WriteThrough, bounds).unwrap();
        (r, rec, dir)
    }

    /// The bit of chunk 3 is on the disk, the data is in flight on both members, and md
    /// rewrites both superblocks with `resync_offset` at event 22.
    fn sim(resync_offset: u64) -> Sim {
        sim_of(resync_offset, ChunkEncoding::Bits)
    }

    fn sim_of(resync_offset: u64, encoding: ChunkEncoding) -> Sim {
        let mut s = Sim {
            data_offset: DATA,
            encoding,
            ..Sim::default()
        };
        let b = s.write(2, 8, bitmap_at(encoding, &[3], 22));
        s.complete(b);
        let d0 = s.data_write(0, 3);
        let d1 = s.data_write(1, 3);
        for m in 0..2 {
            let w = s.write(m, 8, member_sb(m as u32, 22, resync_offset));
            s.complete(w);
        }
        s.complete(d0);
        s.complete(d1);
        s
    }

    #[test]
    fn a_divergent_chunk_under_a_superblock_recorded_clean_is_marked_clean() {
        let (r, rec, _d) = judge(&sim(CLEAN), [21, 21]);
        let v = r
            .violations
            .iter()
            .find(|v| v.explained[0].cause == Cause::MarkedClean)
            .unwrap_or_else(|| panic!("{r:?}"));
        assert_eq!(v.uncovered, [3]);
        let sb = v.explained[0].bitmap.as_ref().unwrap();
        assert!(
            sb.request == rec.describe(3) || sb.request == rec.describe(4),
            "{sb:?}"
        );
        assert_eq!(
            r.states_by_cause.keys().collect::<Vec<_>>(),
            [&Cause::MarkedClean],
            "the bit is set: nothing else is uncovered"
        );
    }

    /// llbitmap_load reloads every chunk and a resync with a bitmap starts at 0
    /// (md_sync_position): the lockless bitmap's Dirty chunk is resynced wherever the
    /// superblock's resync offset stands (seen in a guest: run
    /// results/2026-12-08T00-05-37Z, where the classic rule made this `marked_clean`).
    #[test]
    fn the_lockless_bitmap_resyncs_a_dirty_chunk_under_a_superblock_recorded_clean() {
        let (r, _, _d) = judge_of(
            &sim_of(CLEAN, ChunkEncoding::States),
            [21, 21],
            ChunkEncoding::States,
        );
        assert_eq!(r.unsafe_states, 0, "{r:?}");
        assert!(r.safe_states > 0);
    }

    #[test]
    fn the_same_state_recorded_dirty_is_resynced_by_its_bit() {
        let (r, _, _d) = judge(&sim(0), [21, 21]);
        assert_eq!(r.unsafe_states, 0, "{r:?}");
        assert!(r.safe_states > 0);
    }

    #[test]
    fn a_resync_offset_past_the_chunk_skips_it_and_before_it_resyncs_it() {
        let past = (4 * CHUNK / 512) + 1;
        let (r, _, _d) = judge(&sim(past), [21, 21]);
        assert!(r.states_by_cause.contains_key(&Cause::MarkedClean), "{r:?}");
        let (r, _, _d) = judge(&sim(3 * CHUNK / 512), [21, 21]);
        assert_eq!(r.unsafe_states, 0, "chunk 3 ends past the offset: {r:?}");
    }

    #[test]
    fn a_member_two_events_behind_is_kicked_not_judged_by_its_bits() {
        let mut s = Sim {
            data_offset: DATA,
            ..Sim::default()
        };
        let d = s.data_write(0, 3);
        s.complete(d);
        let (r, _, _d) = judge(&s, [23, 21]);
        assert_eq!(r.unsafe_states, 0, "{r:?}");
        assert_eq!(r.refused_states, r.states_checked, "{r:?}");
    }

    #[test]
    fn a_bitmap_older_than_the_freshest_member_is_a_full_recovery() {
        let mut s = Sim {
            data_offset: DATA,
            ..Sim::default()
        };
        let d = s.data_write(0, 3);
        let w = s.write(0, 8, member_sb(0, 23, 0));
        s.complete(w);
        s.complete(d);
        let (r, _, _d) = judge(&s, [22, 22]);
        assert!(r.full_recovery_states > 0, "{r:?}");
        // Without m0's superblock at event 23 the data has no bit: unsafe, and only then.
        assert!(r.unsafe_states > 0);
        assert!(
            r.violations
                .iter()
                .all(|v| !v.survivors.contains(&w) && v.point <= 2),
            "{r:?}"
        );
    }
}

#[test]
fn a_chunk_a_write_after_the_trace_s_end_touched_is_untraced_not_cleared() {
    // The bit set, the data on both members, the bit cleared: all traced. Then m0 gets
    // a write the trace never showed (issued after its last event before the kill).
    let mut s = Sim::default();
    let b = s.bitmap_write(&[3]);
    s.complete(b);
    let d0 = s.data_write(0, 3);
    let d1 = s.data_write(1, 3);
    s.complete(d0);
    s.complete(d1);
    let clear = s.bitmap_write(&[]);
    s.complete(clear);
    let (e, _) = explained_kill(&s);
    assert_ne!(e.cause, Cause::Untraced, "{e:?}");
    s.logs[0].push((3 * CHUNK / 512, 0, vec![0xbb; CHUNK as usize]));
    let (e, rec) = explained_kill(&s);
    assert_eq!(rec.untraced, [(0, 3 * CHUNK / 512, CHUNK / 512)]);
    assert_eq!(e.cause, Cause::Untraced, "{e:?}");
    assert_eq!(e.chunk, 3);
    assert!(
        e.evidence()
            .contains("m0 write 24+8 (logged, never traced)"),
        "{}",
        e.evidence()
    );
}

#[test]
fn the_first_state_of_each_cause_keeps_the_requests_around_its_cut() {
    let mut s = Sim::default();
    s.bit_then_both_copies(3);
    let (vc, rec, _d) = judged(&s, DiskModel::VolatileCache);
    let first = &vc.first_by_cause[&Cause::Durability];
    assert_eq!(first.point, 3, "{first:?}");
    let around = first
        .around
        .as_ref()
        .expect("saved with the first of a cause");
    // The sim's events are a second apart: the data write spans the cut; the bitmap
    // write, long complete, is there as the evidence; m1's write, issued a second after
    // the cut, is not near it.
    let names: Vec<&str> = around.requests.iter().map(|t| t.request.as_str()).collect();
    // Requests 0 and 1: the bitmap write and m0's data write.
    assert_eq!(names, [rec.describe(0), rec.describe(1)]);
    assert_eq!(
        (around.cut_after_us, around.cut_before_us),
        (Some(2_000_000), Some(3_000_000))
    );
    assert_eq!(around.cut_us(), 2_500_000);
    assert!(around.from_us < 2_000_000 && around.to_us > 2_000_000);
    let (bt, dt) = (&around.requests[0], &around.requests[1]);
    assert!(bt.issued_before_cut && bt.completed_before_cut, "{bt:?}");
    assert_eq!((bt.disk.as_str(), bt.issued_us), ("fs", 0));
    assert!(dt.issued_before_cut && !dt.completed_before_cut, "{dt:?}");
    assert_eq!(dt.completed_us, Some(3_000_000));
    assert_eq!(around.members, ["m0", "m1"]);
    assert_eq!(around.bitmap_file.as_deref(), Some("fs"));
    // The list of violations leaves it out: the timeline draws the firsts.
    assert!(vc.violations.iter().all(|v| v.around.is_none()));
    // A violation from a power-loss.json written before reads back without it.
    let mut json = serde_json::to_value(first).unwrap();
    json.as_object_mut().unwrap().remove("around");
    let old: super::explore::Violation = serde_json::from_value(json).unwrap();
    assert_eq!(
        old,
        super::explore::Violation {
            around: None,
            ..first.clone()
        }
    );
}

/// The sim's trace as the guest's ftrace prints it, the load's marker first.
fn trace_text(sim: &Sim) -> String {
    let mut t = format!(
        "  bash-1 [000] .....  0.000000: tracing_mark_write: {}\n",
        super::files::LOAD_MARK
    );
    for e in &sim.trace {
        let flush = e.op == RqOp::Flush;
        let rwbs = if flush { "FF" } else { "WS" };
        let (dev, time) = (format!("{},{}", e.dev.0, e.dev.1), e.time);
        t.push_str(&if e.issue {
            format!(
                "  md-{} [000] .....  {time:.6}: block_rq_issue: {dev} {rwbs} {} () {} + {} none,0,0 [md]\n",
                e.pid,
                e.sectors * 512,
                e.sector,
                e.sectors
            )
        } else {
            format!(
                "  <idle>-0 [000] d.h2.  {time:.6}: block_rq_complete: {dev} {rwbs} () {} + {} none,0,0 [0]\n",
                if flush { u64::MAX } else { e.sector },
                e.sectors
            )
        });
    }
    t
}

#[test]
fn a_recording_s_trace_alone_numbers_and_times_its_requests_as_with_its_logs() {
    let mut s = Sim::default();
    let b = s.bitmap_write(&[3]);
    let d0 = s.data_write(0, 3);
    s.complete(b);
    let f = s.flush(2);
    s.complete(f);
    let d1 = s.data_write(1, 3);
    s.complete(d1);
    s.complete(d0);
    // Issued and never completed: the order ends before it, both ways.
    s.data_write(0, 5);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(super::files::TRACE), trace_text(&s)).unwrap();
    let disks = s
        .disk_logs()
        .into_iter()
        .map(|d| {
            let log = PathBuf::from(format!("{}.wlog", d.name));
            std::fs::write(dir.path().join(&log), &d.bytes).unwrap();
            super::files::RecordedDisk {
                name: d.name,
                dev: d.dev,
                log,
                base: PathBuf::from("unused.img"),
            }
        })
        .collect();
    let files = super::files::RecordingFiles {
        disks,
        members: vec!["m0".into(), "m1".into()],
        bitmap_file: None,
        killed: false,
    };
    let logged = files.recording(dir.path()).unwrap();
    assert_eq!(logged.requests.len(), 4, "{:?}", logged.requests);
    let timed = files.timing(dir.path()).unwrap();
    let order = |rec: &Recording| -> Vec<(String, usize, usize, usize)> {
        (0..rec.requests.len())
            .map(|r| {
                let q = &rec.requests[r];
                (rec.describe(r), q.issued, q.completed, q.acked)
            })
            .collect()
    };
    assert_eq!(order(&timed), order(&logged));
    assert_eq!(timed.events, logged.events);
    assert_eq!(timed.window, logged.window);
    assert_eq!(timed.events[1].time_us, 1_000_000);
}
