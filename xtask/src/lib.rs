//! md-bitmap-bench: the host-side orchestrator. `main.rs` is only the CLI; every step of
//! case file -> plan -> VM runs -> disk images -> verdicts -> results lives here, callable
//! from tests without the CLI (`main.rs` and `flags.rs` are the binary). The modules in the
//! order of the flow; each uses only the ones above it:
//!
//! - `host`, `poll`: the machine (tools, cache, accelerator) and the one way to wait.
//! - `findings`: the kernel findings the bench knows, as data, and how a result's causes
//!   are attributed to them.
//! - `case`: case files, their validation and matrix, the plans.
//! - `kernel`, `image`: the kernel to boot and the guest image.
//! - `vm`: QEMU, QMP and the guest agent; `bench`: what every VM of a run shares.
//! - `ondisk`, `logs`: readings of disk images and of what the guest printed.
//! - `check`: each verdict, a pure function of readings.
//! - `powercut`: crash states computed from write logs, each judged by `check`'s rule.
//! - `result`: what a case leaves, and the events that announce it.
//! - `scenario`: what a case does in its VMs, step by step.
//! - `run`: the scheduler: plans in, events out.
//! - `report`: consumers of the events: the terminal, result files, comparisons.
//! - `cli`: one file per subcommand.

pub mod host;
pub mod poll;

pub mod findings;

pub mod case;

pub mod image;
pub mod kernel;

pub mod bench;
pub mod vm;

pub mod logs;
pub mod ondisk;

pub mod check;

pub mod powercut;

pub mod result;

pub mod scenario;

pub mod run;

pub mod report;

pub mod cli;
