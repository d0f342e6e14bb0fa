//! What every VM of a run shares, prepared once: host tools, the kernel, the guest image,
//! the accelerator.

use crate::host::cache::Cache;
use crate::host::{self, Accel};
use crate::image::{self, Image};
use crate::kernel::{self, Kernel, KernelSpec};
use crate::vm::file_bitmap_probe::{self, FileBitmaps};
use crate::vm::{saved, Disk, Vm, VmConfig};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Options {
    pub kernel: KernelSpec,
    pub accel: Option<Accel>,
    /// Install missing host tools with apt-get when root.
    pub install: bool,
    /// Start VMs from a saved guest of their shape (`vm::saved`) instead of booting each.
    pub restore: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            kernel: KernelSpec::Debian(Default::default()),
            accel: None,
            install: true,
            restore: true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Bench {
    pub project: PathBuf,
    pub cache: Cache,
    pub kernel: Kernel,
    /// The kernel's options, read once from its config (when known): what a case's
    /// `requires` is checked against.
    pub kernel_options: Option<BTreeMap<String, crate::kernel::config::Value>>,
    pub image: Image,
    pub accel: Accel,
    pub qemu_version: String,
    /// Whether VMs start from saved guests.
    pub restore: bool,
    /// Whether md takes a bitmap file, probed once per kernel and image when a case
    /// first needs to know ([`Bench::file_bitmap_refusal`]).
    pub file_bitmaps: std::sync::Arc<std::sync::OnceLock<Result<FileBitmaps, String>>>,
}

impl Bench {
    pub fn prepare(opts: &Options) -> Result<Self> {
        let project = host::project_root();
        host::ensure_tools("host tools", host::TOOLS, opts.install)?;
        let cache = Cache::from_env()?;
        let kernel =
            kernel::acquire(&cache, &opts.kernel, opts.install).context("acquire the kernel")?;
        let kernel_options = kernel
            .config
            .as_ref()
            .map(|path| {
                std::fs::read_to_string(path)
                    .map(|text| crate::kernel::config::parse_config(&text))
                    .with_context(|| format!("read the kernel's config {}", path.display()))
            })
            .transpose()?;
        let agent = image::build_agent(&project)?;
        let image =
            image::build(&cache, &project, &kernel, &agent).context("build the guest image")?;
        let accel = match opts.accel {
            Some(a) => a,
            None => host::pick_accel(&cache, &kernel.vmlinuz)?,
        };
        Ok(Self {
            project,
            cache,
            kernel,
            kernel_options,
            image,
            accel,
            qemu_version: host::qemu_version()?,
            restore: opts.restore,
            file_bitmaps: Default::default(),
        })
    }

    /// A VM configuration for this bench's kernel and image.
    pub fn vm_config(
        &self,
        memory_mib: u64,
        cpus: u32,
        disks: Vec<Disk>,
        console_log: PathBuf,
    ) -> VmConfig {
        VmConfig {
            kernel: self.kernel.vmlinuz.clone(),
            initrd: self.image.initramfs.clone(),
            cmdline: String::new(),
            memory_mib,
            cpus,
            accel: self.accel,
            disks,
            console_log,
            incoming: None,
        }
    }

    /// How long a boot may take: TCG is an order of magnitude slower than KVM.
    pub fn boot_limit(&self) -> Duration {
        match self.accel {
            Accel::Kvm => Duration::from_secs(30),
            Accel::Tcg => Duration::from_secs(60),
        }
    }

    /// A VM of `cfg`, ready: restored from the saved guest of its shape (saved first if
    /// there is none), its view of the disks refreshed and checked, or booted cold. A
    /// failure of the restore itself is a [`saved::RestoreFailed`] (see `scenario::boot_failure`).
    pub fn boot(&self, cfg: &VmConfig) -> Result<Vm> {
        if !self.restore {
            return Vm::start(cfg, self.boot_limit());
        }
        let started = std::time::Instant::now();
        let saved = saved::guest(&self.cache, &self.guest_key(), cfg, self.boot_limit())
            .context("the saved guest")?;
        let restored = VmConfig {
            incoming: Some(saved),
            ..cfg.clone()
        };
        let restore = || {
            let mut vm = Vm::start(&restored, self.boot_limit())?;
            saved::refresh_disks(&mut vm, cfg.disks.len(), true)?;
            anyhow::Ok(vm)
        };
        let mut vm = restore().map_err(|e| saved::RestoreFailed(format!("{e:#}")))?;
        // The whole start counts: a first start of a shape includes booting and saving it.
        vm.boot = started.elapsed();
        Ok(vm)
    }

    /// The mdadm a case runs in the guest: the packaged 4.6 where the image carries it
    /// (kernels from 6.18 on), except for a file bitmap, which only the host's 4.2 takes
    /// (`--bitmap=FILE`; mdadm removed it in 4.4).
    pub fn mdadm_for(&self, plan: &crate::case::Plan) -> Mdadm {
        let file_bitmap = plan.bitmap_file;
        match self.image.carried("mdadm-4.6").filter(|_| !file_bitmap) {
            Some(c) => Mdadm {
                label: format!("{} ({})", c.packages[0].version, c.packages[0].suite),
                guest_path: Some(c.guest_path.clone()),
                file_bitmap,
            },
            None => Mdadm {
                label: format!("{} (host)", self.image.host_mdadm()),
                guest_path: None,
                file_bitmap,
            },
        }
    }

    /// Why md refuses a bitmap file on this kernel, if it does: probed in a VM the first
    /// time a case asks, the answer kept in the cache per kernel and image. A probe that
    /// could not run is the bench's error.
    pub fn file_bitmap_refusal(&self) -> Result<Option<String>> {
        // Before 6.18 md registers an array's bitmap operations when it makes the array
        // (mddev_init), so set_bitmap_file() cannot refuse that way: no boot spent there.
        let release = &self.kernel.info.release;
        if !crate::image::packaged::series_at_least(release, (6, 18)) {
            return Ok(None);
        }
        let seen = self.file_bitmaps.get_or_init(|| {
            let key = format!(
                "file-bitmaps-{}",
                &crate::host::cache::sha256_hex(self.guest_key().as_bytes())[..16]
            );
            let probed = self.cache.entry("probes", &key, |dir| {
                let seen = file_bitmap_probe::probe(
                    &self.kernel.vmlinuz,
                    &self.image.initramfs,
                    self.accel,
                    dir,
                )?;
                std::fs::write(dir.join("probe.json"), serde_json::to_vec_pretty(&seen)?)?;
                Ok(())
            });
            probed
                .and_then(|dir| {
                    Ok(serde_json::from_slice(&std::fs::read(
                        dir.join("probe.json"),
                    )?)?)
                })
                .map_err(|e| format!("{e:#}"))
        });
        match seen {
            Ok(FileBitmaps::Taken) => Ok(None),
            Ok(FileBitmaps::Refused(why)) => Ok(Some(why.clone())),
            Err(e) => Err(anyhow::anyhow!("{e}")),
        }
    }

    /// What a saved guest depends on besides its shape.
    pub fn guest_key(&self) -> String {
        // The machine's devices (`vm::qemu::all_args`) must match a saved guest's: the
        // version changes when they do.
        const MACHINE: &str = "machine-2 (trace port)";
        format!(
            "{MACHINE} {} {} {} {}",
            self.kernel.info.vmlinuz_sha256,
            self.image.key,
            self.qemu_version,
            self.accel.as_str()
        )
    }
}

/// The mdadm a case uses: a label for results, and the packaged program's guest path
/// (`None`: the image's own `/usr/sbin/mdadm`, copied from the host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mdadm {
    pub label: String,
    pub guest_path: Option<String>,
    /// The case hands md a bitmap file.
    pub file_bitmap: bool,
}
