//! `cargo xtask kernel build`: build a kernel (or find it in the cache) and print where its
//! bzImage, modules, config and build log are.

use crate::host::cache::Cache;
use crate::kernel::build::{self, BuildSpec};
use crate::result::exit;
use anyhow::Result;

pub fn run(spec: &BuildSpec, install: bool) -> Result<u8> {
    super::on_interrupt()?;
    let cache = Cache::from_env()?;
    let b = build::build(&cache, &crate::host::project_root(), spec, install)?;
    println!("bzImage  {}", b.bzimage.display());
    match &b.modules {
        Some(m) => println!("modules  {}", m.display()),
        None => println!("modules  none (everything is built in)"),
    }
    println!("release  {}", b.release);
    println!("config   {}", b.config.display());
    println!("log      {}", b.log.display());
    Ok(exit::OK)
}
