//! The guest's block layer traced while md resyncs or recovers: what md did is read from
//! the bios the members got, not from md's own account.

use super::images::Readings;
use super::Scenario;
use crate::logs::{block_trace, kmsg};
use crate::result::Failure;
use crate::vm::Vm;
use std::collections::BTreeSet;

impl Scenario<'_, '_> {
    /// Starts recording every bio the members get (`block:block_bio_queue`), so what a
    /// resync or recovery writes is read from the block layer, not from md.
    pub fn start_block_trace(&self, vm: &mut Vm) -> Result<(), Failure> {
        self.sh(
            vm,
            "cd /sys/kernel/tracing && echo 65536 > buffer_size_kb && echo 1 > events/block/block_bio_queue/enable && echo > trace && echo 1 > tracing_on",
            30,
        )
        .map(|_| ())
    }

    /// Stops the trace, keeps it as `<name>-trace.txt`, and returns the bitmap chunks that
    /// md's resync or recovery touched on `members`: everything written, and what md's own
    /// threads read (raid10 and raid5/6 resyncs read every copy and write only what
    /// disagrees, so their reads show the extent of the resync).
    pub fn traced_resync(
        &self,
        vm: &mut Vm,
        members: &[String],
        before: &Readings,
        name: &str,
    ) -> Result<BTreeSet<u64>, Failure> {
        self.sh(vm, "echo 0 > /sys/kernel/tracing/tracing_on", 10)?;
        let trace = self.sh(vm, "cat /sys/kernel/tracing/trace", 60)?;
        std::fs::write(self.case_dir.join(format!("{name}-trace.txt")), &trace)
            .map_err(anyhow::Error::from)?;
        let ios = block_trace::parse(&trace);
        let mut chunks = BTreeSet::new();
        for m in members {
            let index = self
                .array
                .members
                .iter()
                .position(|x| x == m)
                .expect("a member");
            let dev = self.dev_number(vm, m)?;
            chunks.extend(block_trace::resync_chunks(
                &ios,
                dev,
                before.data_offsets[index],
                |off, len| before.geometry.to_bitmap_space(index, off, len),
                before.bitmap.chunk_bytes(),
            ));
        }
        Ok(chunks)
    }

    /// The kernel's full-recovery announcements so far.
    pub fn full_recovery_messages(&self, vm: &mut Vm) -> Result<Vec<String>, Failure> {
        Ok(kmsg::full_recovery_messages(&self.sh(vm, "dmesg", 10)?))
    }
}
