//! The command line, declared once.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use xtask::host::Accel;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "md-bitmap-bench: does md's write-intent bitmap tell the truth?"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
    /// Echo each command the bench runs on the host (`$ cp --sparse=always ...`).
    #[arg(long, short, global = true)]
    pub verbose: bool,
}

#[derive(clap::Args, Clone)]
pub struct KernelFlags {
    /// The kernel to boot instead of Debian's 6.12 cloud kernel: a bzImage, `debian`,
    /// `debian:6.1`, a kernel tree or TREE@REV. `run` takes it again for more kernels in
    /// one run (results grouped per kernel).
    #[arg(long, value_name = "KERNEL")]
    pub kernel: Vec<String>,
    /// The modules tree of a single bzImage `--kernel` (lib/modules/RELEASE, or a
    /// directory holding one); omit when md, raid1/10/456 and virtio_blk are built in.
    #[arg(long, value_name = "DIR", requires = "kernel")]
    pub modules: Option<PathBuf>,
    #[command(flatten)]
    pub build: BuildFlags,
    #[command(flatten)]
    pub host: HostFlags,
}

/// How the bench uses the host: the accelerator, apt-get, the fast path.
#[derive(clap::Args, Clone)]
pub struct HostFlags {
    /// kvm or tcg; by default KVM when a probe boot shows it works, else TCG.
    #[arg(long, value_enum)]
    pub accel: Option<Accel>,
    /// Never run apt-get; fail with the line to run instead.
    #[arg(long)]
    pub no_install: bool,
    /// Boot every VM and create every array instead of restoring saved guests and
    /// prepared arrays.
    #[arg(long)]
    pub cold_boot: bool,
}

/// A kernel built from source (and cached): see `cargo xtask kernel build`.
#[derive(clap::Args, Clone)]
#[command(group(clap::ArgGroup::new("build_source").args(["tree", "debian_source"])))]
pub struct BuildFlags {
    /// Build this kernel tree (out of tree, as it is on disk) and boot it.
    #[arg(long, value_name = "PATH", conflicts_with = "debian_source")]
    pub tree: Option<PathBuf>,
    /// Build Debian's linux-source-SERIES package (e.g. 6.12) and boot it.
    #[arg(long, value_name = "SERIES")]
    pub debian_source: Option<String>,
    /// Config fragment merged onto the base (repeatable; a file, or a name in
    /// kernel-configs/ such as `debug`); default: kernel-configs/md.config.
    #[arg(long = "config", value_name = "FRAGMENT", requires = "build_source")]
    pub configs: Vec<PathBuf>,
    /// defconfig (+ kvm_guest.config) or tinyconfig (+ kernel-configs/tiny.config).
    #[arg(long, value_enum, default_value_t = xtask::kernel::build::Base::Defconfig, requires = "build_source")]
    pub base: xtask::kernel::build::Base,
    /// Patch applied to the source before the build (repeatable, in order; a plain diff or
    /// a `git format-patch` mail, or the name of a patch in xtask/src/findings/patches/).
    #[arg(long = "patch", value_name = "FILE")]
    pub patches: Vec<PathBuf>,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Run cases (all of cases/ by default) and print a line per case and a summary.
    Run(Run),
    /// Install the host tools, fetch the kernel and build the guest image, then stop.
    Setup(KernelFlags),
    /// Boot a guest and run one shell command in it (for poking at a kernel by hand).
    Exec(Exec),
    /// Print what a bitmap file (as `mdadm -X` does, plus its dirty ranges) or an md
    /// member image or device (superblock summary and internal bitmap) holds.
    Examine(Examine),
    /// Kernels built from source.
    #[command(subcommand)]
    Kernel(KernelCmd),
    /// Time the cold path against the fast one (boots, then a case phase by phase) in one
    /// invocation; writes bench.json.
    Bench(BenchCmd),
    /// Run the same cases with the same seeds on two kernels and show what changed;
    /// exit 1 when the patched kernel regressed.
    Compare(Compare),
    /// A power-loss case's recording, judged again or one of its crash states written out.
    #[command(subcommand)]
    PowerLoss(PowerLossCmd),
    /// Reports of a finished run, for other systems.
    #[command(subcommand)]
    Report(ReportCmd),
}

#[derive(Subcommand)]
pub enum ReportCmd {
    /// The run as KCIDB JSON (schema 5.3): a checkout and a build per kernel, a test per
    /// case and per check.
    Kcidb {
        /// The run's directory (`results/<run>`).
        run: PathBuf,
        /// Write here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// One known finding as a plain-text bug report for the linux-raid list, from
    /// finished runs: what breaks, the kernels that showed it, the command that shows it
    /// again, the request trace around it, and what a patched kernel did.
    Finding {
        /// The finding's id in xtask/src/findings/known.yaml (`unplug-ordering`).
        id: String,
        /// Run directories (`results/<run>`): runs of one or several kernels, or compare
        /// runs (their base/ and patched/ sides).
        #[arg(required = true, value_name = "RUN")]
        runs: Vec<PathBuf>,
        /// Write here instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Join runs (the shards of `run --partition I/N`) into one run directory: every
    /// case's directory, summary.json, results.ktap, junit.xml, index.html.
    Merge {
        /// The runs' directories (`results/<run>`).
        #[arg(required = true, value_name = "RUN")]
        runs: Vec<PathBuf>,
        /// The joined run's directory (default: a new one under results/).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum PowerLossCmd {
    /// Judge every crash state of a recording again (host only, no VM) and print the
    /// figures; exit 1 when a state breaks the rule.
    Judge(PowerLossJudge),
    /// Write the images of one violating state (`power-loss.json`'s violations, from 0)
    /// to a directory, for `examine` or a real assembly.
    Write(PowerLossWrite),
}

#[derive(clap::Args)]
pub struct PowerLossJudge {
    /// The case's result directory (its disks kept: a failed case's always are).
    pub case_dir: PathBuf,
    /// The disk model; the case's by default.
    #[arg(long, value_enum)]
    pub model: Option<xtask::case::DiskModel>,
    #[arg(long)]
    pub exact_up_to: Option<u32>,
    #[arg(long)]
    pub samples: Option<u32>,
    #[arg(long)]
    pub seed: Option<u64>,
}

#[derive(clap::Args)]
pub struct PowerLossWrite {
    pub case_dir: PathBuf,
    /// Which violation of `power-loss.json`.
    #[arg(long, default_value_t = 0)]
    pub violation: usize,
    /// Where the images go (created).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(clap::Args)]
pub struct Compare {
    /// The kernel before the patch: `debian[:SERIES]`, `debian-source:SERIES`, a bzImage,
    /// a kernel tree, or TREE@REV.
    #[arg(long, value_name = "KERNEL")]
    pub base: String,
    /// The kernel with the patch, in the same forms (default: --base with the --patch
    /// files applied).
    #[arg(long, value_name = "KERNEL")]
    pub patched: Option<String>,
    /// Patch applied to the patched side's source (repeatable, in order): `--base
    /// debian-source:6.12 --patch fix.patch` compares a kernel with itself patched.
    #[arg(long = "patch", value_name = "FILE")]
    pub patches: Vec<PathBuf>,
    /// Patch applied to the base side's source (repeatable, in order); without --patched
    /// the patched side gets them too, before its --patch files.
    #[arg(long = "base-patch", value_name = "FILE")]
    pub base_patches: Vec<PathBuf>,
    /// The modules tree of a modular base bzImage.
    #[arg(long, value_name = "DIR")]
    pub base_modules: Option<PathBuf>,
    /// The modules tree of a modular patched bzImage.
    #[arg(long, value_name = "DIR")]
    pub patched_modules: Option<PathBuf>,
    /// Config fragments for kernels built from trees (repeatable).
    #[arg(long = "config", value_name = "FRAGMENT")]
    pub configs: Vec<PathBuf>,
    /// The config base for kernels built from trees.
    #[arg(long, value_enum, default_value_t = xtask::kernel::build::Base::Defconfig)]
    pub config_base: xtask::kernel::build::Base,
    #[command(flatten)]
    pub select: Selection,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run each case N times (fresh seeds, the same on both kernels).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub repeat: u32,
    #[arg(long, short)]
    pub jobs: Option<usize>,
    #[arg(long, value_name = "DIR")]
    pub results: Option<PathBuf>,
    #[command(flatten)]
    pub host: HostFlags,
}

#[derive(Subcommand)]
pub enum KernelCmd {
    /// Build a kernel (or find it in the cache) and print where its bzImage and
    /// modules are.
    Build(KernelBuild),
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["tree", "debian_source"])))]
pub struct KernelBuild {
    #[command(flatten)]
    pub build: BuildFlags,
    /// Never run apt-get; fail with the line to run instead.
    #[arg(long)]
    pub no_install: bool,
}

/// Which cases a run takes.
#[derive(clap::Args)]
pub struct Selection {
    /// Cases by name, as --case takes them (`smoke`, `crash-levels` for every combination,
    /// `crash-levels@raid6-n4-file`, `'*crash*'`), or case files by path; all of cases/
    /// when none.
    pub cases: Vec<String>,
    /// Only this case (a name, matrix combinations included: `crash-levels@raid6-n4-file`),
    /// or the cases a glob names (`'crash-levels@raid6-*'`), among those the positional
    /// arguments chose; repeatable.
    #[arg(long = "case", value_name = "NAME|GLOB")]
    pub filters: Vec<String>,
    /// Leave out the cases this name or glob selects (repeatable).
    #[arg(long, value_name = "NAME|GLOB")]
    pub exclude: Vec<String>,
    /// Only share I of N of the selected cases (by a hash of each name): N CI jobs with
    /// `--partition 1/N` ... `N/N` run every case once.
    #[arg(long, value_name = "I/N", value_parser = parse_partition)]
    pub partition: Option<(u32, u32)>,
}

fn parse_partition(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("{s:?}: give I/N with 1 <= I <= N, e.g. 2/4");
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (u32, u32) = (i.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
    if i == 0 || i > n {
        return Err(bad());
    }
    Ok((i, n))
}

impl Selection {
    pub fn filters(&self) -> xtask::case::select::Filters {
        xtask::case::select::Filters {
            include: self.filters.clone(),
            exclude: self.exclude.clone(),
            partition: self.partition,
        }
    }
}

#[derive(clap::Args)]
pub struct Run {
    #[command(flatten)]
    pub select: Selection,
    #[command(flatten)]
    pub kernel: KernelFlags,
    /// Seed for every random choice; recorded in each result.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Cases run at once; default: as many as the cores hold without slowing a VM.
    #[arg(long, short)]
    pub jobs: Option<usize>,
    /// Where results go (default: results/ of the checkout).
    #[arg(long, value_name = "DIR")]
    pub results: Option<PathBuf>,
    /// Run each case N times with fresh seeds and report the flaky ones.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub repeat: u32,
    /// List the cases (matrix combinations expanded) with what they need; run nothing.
    #[arg(long)]
    pub list: bool,
    /// What stdout shows: human (a line per case, a summary) or ktap (KTAP v1 at the end).
    #[arg(long, value_enum, default_value_t = xtask::cli::run::Format::Human)]
    pub format: xtask::cli::run::Format,
}

#[derive(clap::Args)]
pub struct BenchCmd {
    #[command(flatten)]
    pub kernel: KernelFlags,
    /// The case to time.
    #[arg(
        long = "case",
        value_name = "NAME",
        default_value = "raid1-file-bitmap-crash"
    )]
    pub case: String,
    /// Boots of each kind.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub boots: u32,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, value_name = "DIR")]
    pub results: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct Exec {
    #[command(flatten)]
    pub kernel: KernelFlags,
    /// The shell command to run in the guest.
    pub command: String,
}

#[derive(clap::Args)]
pub struct Examine {
    /// Bitmap files, member disk images or block devices.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}
