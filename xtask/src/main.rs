//! The CLI: parses flags and calls the library. Nothing else lives here.

use clap::Parser;
use std::process::ExitCode;

mod flags;

fn build_spec(b: &flags::BuildFlags) -> Option<xtask::kernel::build::BuildSpec> {
    use xtask::kernel::build::Source;
    let source = match (&b.tree, &b.debian_source) {
        (Some(tree), _) => Source::Tree(tree.clone()),
        (None, Some(series)) => Source::Debian {
            series: series.clone(),
        },
        (None, None) => return None,
    };
    Some(xtask::kernel::build::BuildSpec {
        source,
        base: b.base,
        fragments: b.configs.clone(),
        patches: b.patches.clone(),
    })
}

/// The bench options of every kernel the flags name, in their order (`--kernel`s, then
/// the tree or source build); Debian's 6.12 when they name none.
fn all_kernel_options(k: &flags::KernelFlags) -> anyhow::Result<Vec<xtask::bench::Options>> {
    use xtask::kernel::KernelSpec;
    let mut specs = Vec::new();
    for arg in &k.kernel {
        specs.push(KernelSpec::from_arg(
            arg,
            k.build.base,
            &k.build.configs,
            &k.build.patches,
        )?);
    }
    if let Some(modules) = &k.modules {
        match specs.as_mut_slice() {
            [KernelSpec::BzImage { modules: m, .. }] => *m = Some(modules.clone()),
            _ => anyhow::bail!("--modules goes with a single bzImage --kernel"),
        }
    }
    specs.extend(build_spec(&k.build).map(KernelSpec::Build));
    anyhow::ensure!(
        k.build.patches.is_empty() || !specs.is_empty(),
        "--patch needs a source to patch: --debian-source SERIES, --tree PATH, or --kernel TREE"
    );
    if specs.is_empty() {
        specs.push(KernelSpec::Debian(Default::default()));
    }
    Ok(specs
        .into_iter()
        .map(|kernel| xtask::bench::Options {
            kernel,
            accel: k.host.accel,
            install: !k.host.no_install,
            restore: !k.host.cold_boot,
        })
        .collect())
}

/// The one kernel of a command that boots one.
fn kernel_options(k: &flags::KernelFlags) -> anyhow::Result<xtask::bench::Options> {
    let mut all = all_kernel_options(k)?;
    anyhow::ensure!(
        all.len() == 1,
        "this command boots one kernel; {} given (only `run` takes several)",
        all.len()
    );
    Ok(all.remove(0))
}

fn kernel_build(k: &flags::KernelBuild) -> anyhow::Result<u8> {
    let spec = build_spec(&k.build).expect("clap requires --tree or --debian-source");
    xtask::cli::kernel_build::run(&spec, !k.no_install)
}

/// A KERNEL argument of `compare` as bench options; `side` names it in errors.
fn compare_side(
    c: &flags::Compare,
    side: &str,
    arg: &str,
    modules: &Option<std::path::PathBuf>,
    patches: &[std::path::PathBuf],
) -> anyhow::Result<xtask::bench::Options> {
    use xtask::kernel::KernelSpec;
    let kernel = match KernelSpec::from_arg(arg, c.config_base, &c.configs, patches)? {
        KernelSpec::BzImage { path, .. } => KernelSpec::BzImage {
            path,
            modules: modules.clone(),
        },
        _ if modules.is_some() => anyhow::bail!(
            "--{side}-modules goes with a bzImage; {arg} brings its own modules, if any"
        ),
        other => other,
    };
    Ok(xtask::bench::Options {
        kernel,
        accel: c.host.accel,
        install: !c.host.no_install,
        restore: !c.host.cold_boot,
    })
}

fn compare(c: flags::Compare) -> anyhow::Result<u8> {
    let base = compare_side(&c, "base", &c.base, &c.base_modules, &c.base_patches)?;
    // Without --patched, the patched side is the base with the patches.
    let patched_arg = c.patched.as_deref().unwrap_or(&c.base);
    anyhow::ensure!(
        c.patched.is_some() || !c.patches.is_empty(),
        "compare: give --patched KERNEL, or --patch FILE to compare --base with itself patched"
    );
    let patches: Vec<std::path::PathBuf> = match c.patched {
        Some(_) => c.patches.clone(),
        None => c.base_patches.iter().chain(&c.patches).cloned().collect(),
    };
    let patched = compare_side(&c, "patched", patched_arg, &c.patched_modules, &patches)?;
    xtask::cli::compare::run(xtask::cli::compare::CompareArgs {
        base,
        patched,
        filters: c.select.filters(),
        cases: c.select.cases,
        seed: c.seed,
        repeat: c.repeat,
        jobs: c.jobs,
        results: c.results,
    })
}

fn main() -> ExitCode {
    // A usage error exits 125, not clap's 2: `git bisect run` would take 2 for "bad".
    let cli = match flags::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                xtask::result::exit::CANNOT_TEST
            } else {
                xtask::result::exit::OK
            });
        }
    };
    xtask::host::echo::set_verbose(cli.verbose);
    let result = match cli.command {
        flags::Cmd::Compare(c) => compare(c),
        flags::Cmd::Run(r) => all_kernel_options(&r.kernel).and_then(|kernels| {
            xtask::cli::run::run(xtask::cli::run::RunArgs {
                filters: r.select.filters(),
                cases: r.select.cases,
                list: r.list,
                kernels,
                seed: r.seed,
                jobs: r.jobs,
                results: r.results,
                repeat: r.repeat,
                format: r.format,
            })
        }),
        flags::Cmd::Bench(b) => kernel_options(&b.kernel).and_then(|options| {
            xtask::cli::bench::run(xtask::cli::bench::BenchArgs {
                options,
                case: b.case,
                boots: b.boots,
                seed: b.seed,
                results: b.results,
            })
        }),
        flags::Cmd::Setup(k) => kernel_options(&k).and_then(|o| xtask::cli::setup::run(&o)),
        flags::Cmd::Exec(e) => {
            kernel_options(&e.kernel).and_then(|o| xtask::cli::exec::run(&o, &e.command))
        }
        flags::Cmd::Examine(x) => xtask::cli::examine::run(&x.paths),
        flags::Cmd::Kernel(flags::KernelCmd::Build(k)) => kernel_build(&k),
        flags::Cmd::PowerLoss(flags::PowerLossCmd::Judge(j)) => {
            xtask::cli::power_loss::judge(&xtask::cli::power_loss::JudgeArgs {
                case_dir: j.case_dir,
                model: j.model,
                exact_up_to: j.exact_up_to,
                samples: j.samples,
                seed: j.seed,
            })
        }
        flags::Cmd::Report(flags::ReportCmd::Kcidb { run, out }) => {
            xtask::cli::report::kcidb(&run, out.as_deref())
        }
        flags::Cmd::Report(flags::ReportCmd::Merge { runs, out }) => {
            xtask::cli::report::merge(&runs, out.as_deref())
        }
        flags::Cmd::Report(flags::ReportCmd::Finding { id, runs, out }) => {
            xtask::cli::report::finding(&id, &runs, out.as_deref())
        }
        flags::Cmd::PowerLoss(flags::PowerLossCmd::Write(w)) => {
            xtask::cli::power_loss::write(&w.case_dir, w.violation, &w.out)
        }
    };
    xtask::run::interrupt::yield_to_handler();
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(xtask::result::exit::CANNOT_TEST)
        }
    }
}
