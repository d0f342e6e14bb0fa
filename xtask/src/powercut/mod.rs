//! Power-loss crash states, computed from a recording instead of left by a kill: every
//! write and flush of a case's disks in one order (`recording`), what each disk model lets
//! a power cut keep (`model`), the bytes of a state without building its images (`view`),
//! one state judged (`judge`), every crash point and its states (`explore`), a state written
//! out as images (`materialize`), a recording's files (`files`), and the requests around a
//! violation's cut that its timeline draws (`around`).

pub mod around;
pub mod explore;
pub mod files;
pub mod judge;
pub mod materialize;
pub mod model;
pub mod recording;
pub mod view;

#[cfg(test)]
mod tests;
