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
    })
}

fn kernel_options(k: &flags::KernelFlags) -> xtask::bench::Options {
    use xtask::kernel::KernelSpec;
    xtask::bench::Options {
        kernel: match (&k.kernel, build_spec(&k.build)) {
            (Some(path), _) => KernelSpec::BzImage {
                path: path.clone(),
                modules: k.modules.clone(),
            },
            (None, Some(spec)) => KernelSpec::Build(spec),
            (None, None) => KernelSpec::Debian,
        },
        accel: k.host.accel,
        install: !k.host.no_install,
        restore: !k.host.cold_boot,
    }
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
) -> anyhow::Result<xtask::bench::Options> {
    use xtask::kernel::KernelSpec;
    let kernel = match KernelSpec::from_arg(arg, c.config_base, &c.configs)? {
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
    let base = compare_side(&c, "base", &c.base, &c.base_modules)?;
    let patched = compare_side(&c, "patched", &c.patched, &c.patched_modules)?;
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
    let result = match cli.command {
        flags::Cmd::Compare(c) => compare(c),
        flags::Cmd::Run(r) => xtask::cli::run::run(xtask::cli::run::RunArgs {
            filters: r.select.filters(),
            cases: r.select.cases,
            list: r.list,
            bench: kernel_options(&r.kernel),
            seed: r.seed,
            jobs: r.jobs,
            results: r.results,
            repeat: r.repeat,
            format: r.format,
        }),
        flags::Cmd::Bench(b) => xtask::cli::bench::run(xtask::cli::bench::BenchArgs {
            options: kernel_options(&b.kernel),
            case: b.case,
            boots: b.boots,
            seed: b.seed,
            results: b.results,
        }),
        flags::Cmd::Setup(k) => xtask::cli::setup::run(&kernel_options(&k)),
        flags::Cmd::Exec(e) => xtask::cli::exec::run(&kernel_options(&e.kernel), &e.command),
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
        flags::Cmd::PowerLoss(flags::PowerLossCmd::Write(w)) => {
            xtask::cli::power_loss::write(&w.case_dir, w.violation, &w.out)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(xtask::result::exit::CANNOT_TEST)
        }
    }
}
