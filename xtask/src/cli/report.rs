//! `cargo xtask report`: a finished run's results in the formats other systems take, and
//! one known finding written up for the people who maintain the code.

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

/// `report merge RUN...`: the runs joined into `out` (or a new run directory); exits as
/// the joined run would have.
pub fn merge(runs: &[std::path::PathBuf], out: Option<&Path>) -> Result<u8> {
    use crate::report::merge;
    let parts = runs
        .iter()
        .map(|r| merge::read(r))
        .collect::<Result<Vec<_>>>()?;
    let out = match out {
        Some(dir) => {
            anyhow::ensure!(
                !dir.exists(),
                "{}: exists; the joined run needs a directory of its own",
                dir.display()
            );
            dir.to_path_buf()
        }
        None => crate::report::files::new_run_dir(&crate::host::project_root().join("results"))?,
    };
    let results = match merge::join(&parts, &out, merge::Place::Copy) {
        Ok(r) => r,
        Err(e) => {
            // No half-joined run left behind.
            let _ = std::fs::remove_dir_all(&out);
            return Err(e);
        }
    };
    println!(
        "{}\njoined {} runs into {}",
        crate::report::text::summary(&results),
        parts.len(),
        out.display()
    );
    Ok(exit::exit_code(&results))
}

/// `report finding ID RUN...`: the finding's report from the runs, on stdout or into
/// `out`.
pub fn finding(id: &str, runs: &[std::path::PathBuf], out: Option<&Path>) -> Result<u8> {
    use crate::report::finding;
    let input = finding::load(id, runs, &crate::host::project_root())?;
    let text = finding::render(&input);
    match out {
        Some(path) => {
            std::fs::write(path, &text).with_context(|| format!("write {}", path.display()))?
        }
        None => print!("{text}"),
    }
    Ok(exit::OK)
}
