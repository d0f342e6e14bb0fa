//! Readings of the text a guest prints: kernel splats and injected faults on the console,
//! the sysrq report of blocked tasks, the block-layer traces, md's messages.

pub mod block_trace;
pub mod blocked;
pub mod kmsg;
pub mod request_trace;
pub mod splat;
