//! `cargo xtask exec`: boot, run one command, print its output.

use crate::bench::{Bench, Options};
use crate::result::exit;
use crate::vm::guest;
use anyhow::Result;
use std::time::Duration;

pub fn run(opts: &Options, cmd: &str) -> Result<u8> {
    let bench = Bench::prepare(opts)?;
    let dir = tempfile::Builder::new()
        .prefix(&crate::host::owner::temp_prefix("exec-"))
        .tempdir()?;
    let cfg = bench.vm_config(512, 2, vec![], dir.path().join("console.log"));
    let mut vm = bench.boot(&cfg)?;
    eprintln!(
        "booted in {:.2}s (guest uptime {:.2}s)",
        vm.boot.as_secs_f64(),
        vm.guest_uptime_ms as f64 / 1000.0
    );
    let out = guest::run(&mut vm, cmd, &[], Duration::from_secs(300))?;
    print!("{}", out.stdout);
    eprint!("{}", out.stderr);
    vm.quit(Duration::from_secs(10))?;
    Ok(out.status.map(|s| s as u8).unwrap_or(exit::CASE_FAILED))
}
