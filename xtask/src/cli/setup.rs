//! `cargo xtask setup`: install the tools, fetch the kernel, build the image, then stop.

use crate::bench::{Bench, Options};
use crate::result::exit;
use anyhow::Result;

pub fn run(opts: &Options) -> Result<u8> {
    let b = Bench::prepare(opts)?;
    println!(
        "kernel  {} ({})",
        b.kernel.vmlinuz.display(),
        b.kernel.info.release
    );
    println!("image   {}", b.image.initramfs.display());
    println!("accel   {}", b.accel.as_str());
    Ok(exit::OK)
}
