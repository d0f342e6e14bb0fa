//! Result files are written whole or not at all.

use anyhow::{Context, Result};
use serde::Serialize;
use std::path::Path;

/// Writes `value` as JSON to `path` through a temporary file and a rename, so a reader
/// never sees half a file.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(value)?)
        .with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("write {}", path.display()))?;
    Ok(())
}
