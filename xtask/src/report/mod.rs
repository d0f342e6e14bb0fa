//! The consumers of the runner's events: what a person reads on the terminal, the result
//! files, and the comparison of two kernels.

pub mod compare;
pub mod consoles;
pub mod files;
pub mod html;
pub mod junit;
pub mod kcidb;
pub mod ktap;
pub mod terminal;
pub mod text;
