//! In-memory backends: [`MemorySource`](source::MemorySource),
//! [`MemoryRuntime`](runtime::MemoryRuntime), and the fault-injecting
//! [`FaultyTarget`](faults::FaultyTarget) wrapper.

pub mod faults;
pub mod runtime;
pub mod source;
mod update;
