//! Resident memory per object after a reconcile (issue 14): one process
//! per size, since resident memory is per process. For each size given as
//! an argument (default 10000), commits a generated environment to a
//! `MemorySource`, then reconciles it into a `MemoryRuntime` and prints
//! the growth of resident memory (`/proc/self/statm`) per object, and the
//! peak (`VmHWM` of `/proc/self/status`) per object. What is counted: the
//! reconciler's state and the in-memory runtime's live objects (the
//! source's files are counted out).
//!
//! `cargo bench -p gitops-benches --bench memory -- 10000 100000`
#![allow(clippy::expect_used, reason = "a benchmark stops on a broken setup")]

use futures::executor::block_on;
use gitops_benches::environment;
use gitops_core::{MemoryRuntime, MemorySource, OwnerId, Reconciler, ReconcilerConfig};

/// Resident bytes now (Linux), 0 elsewhere.
fn resident() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Peak resident bytes (Linux), 0 elsewhere.
fn peak() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn measure(n: usize) {
    let source = MemorySource::new();
    {
        let files = environment(n);
        source.commit(
            "main",
            files.iter().map(|(p, d)| (p.clone(), d.as_bytes())),
            "bench",
            "generated",
        );
    }
    let before = resident();
    let runtime = MemoryRuntime::new();
    let config = ReconcilerConfig::new(OwnerId::new("bench").expect("a valid owner"));
    let reconciler = Reconciler::new(source, runtime.clone(), config).expect("valid options");
    let report = block_on(reconciler.reconcile_once("main")).expect("the environment syncs");
    let objects = report.summary.create.max(1);
    let after = resident();
    let per_object = after.saturating_sub(before) as f64 / objects as f64 / 1024.0;
    let peak_per_object = peak().saturating_sub(before) as f64 / objects as f64 / 1024.0;
    println!(
        "memory/{n}: objects={objects} resident_kb_per_object={per_object:.2} peak_kb_per_object={peak_per_object:.2}"
    );
    // Kept alive until measured.
    drop((reconciler, runtime));
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if sizes.is_empty() {
        measure(10_000);
    }
    for n in sizes {
        measure(n);
    }
}
