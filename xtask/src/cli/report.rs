//! `cargo xtask report`: a finished run's results in the formats other systems take.

use crate::result::exit;
use anyhow::{Context, Result};
use std::path::Path;

/// `report kcidb RUN`: the KCIDB document, on stdout or into `out`.
pub fn kcidb(run: &Path, out: Option<&Path>) -> Result<u8> {
    let doc = crate::report::kcidb::of_run(run)?;
    let text = serde_json::to_string_pretty(&doc)?;
    match out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("write {}", path.display()))?
        }
        None => println!("{text}"),
    }
    Ok(exit::OK)
}
