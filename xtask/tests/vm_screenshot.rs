//! The README's screenshot of `index.html` comes from a real run: this test runs a crash
//! case and `smoke` on the default kernel, has headless Chromium draw the run's page,
//! and checks the picture is a page-sized PNG. With `MDBB_UPDATE_DOCS=1` it writes the
//! picture over `xtask/docs/index-html.png` (as syzkaller's report tests take `-update`),
//! so the picture in the docs is always one this test made.

mod common;

use common::{only_run, xtask_cli};
use std::path::Path;

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 800;

/// Width and height from a PNG's IHDR chunk, after checking the signature.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(
        bytes.len() > 24 && bytes.starts_with(b"\x89PNG\r\n\x1a\n") && &bytes[12..16] == b"IHDR",
        "not a PNG ({} bytes)",
        bytes.len()
    );
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

#[test]
fn the_docs_screenshot_is_drawn_from_a_real_run() {
    let results = tempfile::tempdir().unwrap();
    let (code, out) = xtask_cli(&[
        "run",
        "raid1-file-bitmap-crash",
        "smoke",
        "--seed",
        "7",
        "--no-install",
        "--results",
        results.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    let run = only_run(results.path());
    let page = std::fs::read_to_string(run.join("index.html")).unwrap();
    assert!(
        page.contains("raid1-file-bitmap-crash") && page.contains("smoke"),
        "both cases on the page"
    );
    let shot = results.path().join("index-html.png");
    let status = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg(format!("--window-size={WIDTH},{HEIGHT}"))
        .arg(format!(
            "--user-data-dir={}",
            results.path().join("profile").display()
        ))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", run.join("index.html").display()))
        .output()
        .expect("chromium (apt-get install chromium; CI installs it)");
    let bytes = std::fs::read(&shot).unwrap_or_else(|e| {
        panic!(
            "chromium drew no {}: {e}\n{}",
            shot.display(),
            String::from_utf8_lossy(&status.stderr)
        )
    });
    assert_eq!(png_size(&bytes), (WIDTH, HEIGHT));
    // A page with a chunk map and two cases is far from one flat colour, which PNG
    // would compress to almost nothing.
    assert!(bytes.len() > 20_000, "{} bytes: a blank page?", bytes.len());
    if std::env::var_os("MDBB_UPDATE_DOCS").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/index-html.png");
        std::fs::write(&docs, &bytes).unwrap();
    }
}
