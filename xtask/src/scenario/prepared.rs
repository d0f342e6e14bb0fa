//! Prepared arrays: the created, resynced, clean array of a geometry, made once and kept
//! in the cache as disk images, then copied (sparsely) into each case of that geometry,
//! so that a case starts from an assembled clean array in seconds instead of mkfs,
//! `mdadm --create` and a whole initial resync. Part of the fast path: a cold bench
//! (`--cold-boot`) creates every array itself. Arrays whose making is what a case tests
//! (`grow`, `build`) are always made in the case.

use super::Scenario;
use crate::check;
use crate::result::events::Events;
use crate::result::record::Record;
use crate::result::{CaseResult, Failure};
use crate::vm::{Disk, Vm};
use anyhow::Result;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

impl Scenario<'_, '_> {
    /// Boot 1 with a settled array: the prepared one when the fast path has it (made
    /// first if it is not in the cache yet), else created and settled in this boot.
    /// Returns the VM and how long the bitmap took to be clean.
    pub fn boot_settled(&mut self) -> Result<(Vm, Duration), Failure> {
        if let Some(images) = self.prepared_images() {
            let copied = self.copy_prepared(&images).map_err(Failure::Bench);
            if copied.is_ok() {
                let mut vm = self.boot(1)?;
                self.phase("boot 1");
                let settle = self.assemble_prepared(&mut vm)?;
                return Ok((vm, settle));
            }
            copied?;
        }
        let mut vm = self.boot(1)?;
        self.phase("boot 1");
        let settle = self.create_settled_array(&mut vm)?;
        Ok((vm, settle))
    }

    fn uses_prepared(&self) -> bool {
        self.bench.restore && !self.array.build && !self.array.bitmap.grow
    }

    /// The cache entry of this case's geometry, made now if missing; `None` off the fast
    /// path, or when making it failed (the case then creates the array itself, and judges
    /// what went wrong there).
    pub(super) fn prepared_images(&mut self) -> Option<PathBuf> {
        if !self.uses_prepared() {
            return None;
        }
        let key = key(&self.bench.guest_key(), self);
        let made = self
            .bench
            .cache
            .entry("arrays", &key, |dir| self.prepare(dir));
        match made {
            Ok(dir) => Some(dir),
            Err(e) => {
                self.note_figure("prepared_array_failed", format!("{e:#}"));
                None
            }
        }
    }

    /// Makes the geometry's array in `dir`: zero disks of the case's sizes, a boot, the
    /// array created and settled as a case would, stopped cleanly.
    fn prepare(&self, dir: &Path) -> Result<()> {
        let disks = self
            .plan
            .disks
            .iter()
            .map(|d| Disk::zeros(dir, &d.name, d.size))
            .collect::<Result<Vec<_>>>()?;
        let events = Events::new(vec![]);
        let mut rec = Record::new(
            CaseResult::scratch("prepared array", self.bench.kernel.info.clone()),
            self.plan,
            dir,
            &events,
        );
        let mut s = Scenario {
            bench: self.bench,
            plan: self.plan,
            array: self.array,
            case_dir: dir,
            disks: &disks,
            rec: &mut rec,
            stalls: Default::default(),
        };
        let failed = |f: Failure| match f {
            Failure::Case(why) => anyhow::anyhow!(why),
            Failure::Bench(e) => e,
        };
        let mut vm = s.boot(1).map_err(failed)?;
        s.create_settled_array(&mut vm).map_err(failed)?;
        s.stop_array(&mut vm).map_err(failed)?;
        vm.quit(Duration::from_secs(30))?;
        Ok(())
    }

    /// The prepared images of the array's disks over this case's (new, zero) ones.
    pub(super) fn copy_prepared(&self, images: &Path) -> Result<()> {
        let mut names: Vec<&String> = self.array.members.iter().collect();
        if self.is_file() {
            names.push(&self.array.bitmap.disk);
        }
        for name in names {
            let from = images.join(format!("{name}.img"));
            let to = self.image(name);
            super::disks::copy_image(&from, &to)?;
        }
        Ok(())
    }

    /// Assembles the prepared array in boot 1 and checks it is what was prepared: in
    /// sync, its bitmap clean, with the case's daemon period.
    pub(super) fn assemble_prepared(&mut self, vm: &mut Vm) -> Result<Duration, Failure> {
        let started = Instant::now();
        self.assemble(vm, &self.members())?;
        self.wait_in_sync(vm, Duration::from_secs(60))?;
        self.check_daemon_sleep(vm)?;
        match self.wait_bitmap_clean(vm, Duration::from_secs(30)) {
            Ok(_) => self.add(check::initial_bitmap_clean(Ok(started.elapsed()))),
            Err(Failure::Case(why)) => {
                self.add(check::initial_bitmap_clean(Err(why)));
                self.verdict()?;
            }
            Err(e) => return Err(e),
        }
        self.phase("assemble the prepared array");
        Ok(started.elapsed())
    }
}

/// The cache key of a case's array geometry: what the saved guest depends on, the array
/// spec, the disks (names and sizes) and the VM's shape.
fn key(guest: &str, s: &Scenario) -> String {
    let mut h = Sha256::new();
    h.update(guest.as_bytes());
    h.update(serde_json::to_vec(s.array).unwrap_or_default());
    for d in &s.plan.disks {
        h.update(format!("\0{}:{}", d.name, d.size));
    }
    h.update(format!("\0{}:{}", s.plan.vm.memory.0, s.plan.vm.cpus));
    hex::encode(&h.finalize()[..12])
}
