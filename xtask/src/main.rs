//! The CLI: parses flags and calls the library. Nothing else lives here.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod flags {
    use super::*;
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
    }

    #[derive(clap::Args, Clone)]
    pub struct KernelFlags {
        /// A bzImage to boot instead of Debian's 6.12 cloud kernel.
        #[arg(long, value_name = "BZIMAGE")]
        pub kernel: Option<PathBuf>,
        /// Its modules tree (lib/modules/RELEASE, or a directory holding one); omit when
        /// md, raid1/10/456 and virtio_blk are built in.
        #[arg(long, value_name = "DIR", requires = "kernel")]
        pub modules: Option<PathBuf>,
        /// kvm or tcg; by default KVM when a probe boot shows it works, else TCG.
        #[arg(long, value_enum)]
        pub accel: Option<Accel>,
        /// Never run apt-get; fail with the line to run instead.
        #[arg(long)]
        pub no_install: bool,
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
    }

    #[derive(clap::Args)]
    pub struct Run {
        /// Case files or names (`smoke` for cases/smoke.yaml); all of cases/ when none.
        pub cases: Vec<String>,
        /// Only cases whose name contains this (repeatable).
        #[arg(long = "case", value_name = "FILTER")]
        pub filters: Vec<String>,
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
}

fn kernel_options(k: &flags::KernelFlags) -> xtask::bench::Options {
    xtask::bench::Options {
        kernel: match &k.kernel {
            Some(path) => xtask::kernel::KernelSpec::BzImage {
                path: path.clone(),
                modules: k.modules.clone(),
            },
            None => xtask::kernel::KernelSpec::Debian,
        },
        accel: k.accel,
        install: !k.no_install,
    }
}

fn main() -> ExitCode {
    let cli = flags::Cli::parse();
    let result = match cli.command {
        flags::Cmd::Run(r) => xtask::run::cli(xtask::run::RunArgs {
            cases: r.cases,
            filters: r.filters,
            bench: kernel_options(&r.kernel),
            seed: r.seed,
            jobs: r.jobs,
            results: r.results,
            repeat: r.repeat,
        }),
        flags::Cmd::Setup(k) => xtask::bench::Bench::prepare(&kernel_options(&k)).map(|b| {
            println!(
                "kernel  {} ({})",
                b.kernel.vmlinuz.display(),
                b.kernel.info.release
            );
            println!("image   {}", b.image.initramfs.display());
            println!("accel   {}", b.accel.as_str());
            xtask::exit::OK
        }),
        flags::Cmd::Exec(e) => xtask::run::exec(&kernel_options(&e.kernel), &e.command),
        flags::Cmd::Examine(x) => x
            .paths
            .iter()
            .enumerate()
            .try_for_each(|(i, path)| {
                let text = xtask::examine::examine(path)?;
                print!("{}{text}", if i > 0 { "\n" } else { "" });
                Ok(())
            })
            .map(|()| xtask::exit::OK),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(xtask::exit::CANNOT_TEST)
        }
    }
}
