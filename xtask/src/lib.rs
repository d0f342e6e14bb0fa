//! md-bitmap-bench: the host-side orchestrator. `main.rs` is only the CLI; every step of
//! case file -> plan -> VM runs -> disk images -> verdicts -> results lives here, callable
//! from tests without the CLI.

pub mod bench;
pub mod bitmap_eio;
pub mod cache;
pub mod case;
pub mod check;
pub mod compare;
pub mod crash;
pub mod examination;
pub mod examine;
pub mod exit;
pub mod faults;
pub mod guest;
pub mod host;
pub mod image;
pub mod interrupt;
pub mod kbuild;
pub mod kconfig;
pub mod kernel;
pub mod ondisk;
pub mod readd;
pub mod report;
pub mod run;
pub mod scenario;
pub mod splat;
pub mod stall;
pub mod vm;
