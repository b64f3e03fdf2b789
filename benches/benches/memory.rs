//! Resident memory per object after a reconcile (issue 14): one process
//! per measurement, since resident memory is per process. For each size
//! given as an argument (default 10000), commits a generated environment
//! to a `MemorySource` (counted out), then:
//! - `reconcile` (default): reconciles it into a `MemoryRuntime` and prints
//!   the growth of resident memory (`/proc/self/statm`) per object, and of
//!   the peak (`VmHWM` of `/proc/self/status`): the reconciler's state and
//!   the in-memory runtime's live objects;
//! - `runtime`: applies the same objects straight to a `MemoryRuntime`
//!   (built before the baseline) and prints the same: what the in-memory
//!   stand-in for the API server holds, which a real agent does not.
//!
//! `cargo bench -p gitops-benches --bench memory -- 10000` and
//! `cargo bench -p gitops-benches --bench memory -- runtime 10000`
#![allow(clippy::expect_used, reason = "a benchmark stops on a broken setup")]

use futures::executor::block_on;
use gitops_benches::environment;
use gitops_core::{
    ApplyOptions, LiveState, MemoryRuntime, MemorySource, OWNER_LABEL, OwnerId, PlanOptions,
    Reconciler, ReconcilerConfig, SourceExt, Target, plan, render,
};

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

fn source(n: usize) -> MemorySource {
    let source = MemorySource::new();
    let files = environment(n);
    source.commit(
        "main",
        files.iter().map(|(p, d)| (p.clone(), d.as_bytes())),
        "bench",
        "generated",
    );
    source
}

fn print(what: &str, n: usize, objects: usize, before: u64) {
    let objects = objects.max(1);
    let per_object = resident().saturating_sub(before) as f64 / objects as f64 / 1024.0;
    let peak_per_object = peak().saturating_sub(before) as f64 / objects as f64 / 1024.0;
    println!(
        "memory/{what}/{n}: objects={objects} resident_kb_per_object={per_object:.2} peak_kb_per_object={peak_per_object:.2}"
    );
}

fn reconcile(n: usize) {
    let source = source(n);
    let before = resident();
    let runtime = MemoryRuntime::new();
    let config = ReconcilerConfig::new(OwnerId::new("bench").expect("a valid owner"));
    let reconciler = Reconciler::new(source, runtime.clone(), config).expect("valid options");
    let report = block_on(reconciler.reconcile_once("main")).expect("the environment syncs");
    print("reconcile", n, report.summary.create, before);
    drop((reconciler, runtime));
}

fn runtime(n: usize) {
    let source = source(n);
    let owner = OwnerId::new("bench").expect("a valid owner");
    let objects: Vec<_> = {
        let snapshot = block_on(source.snapshot_of("main", None)).expect("a snapshot");
        let desired = render(&snapshot, &Default::default()).expect("it renders");
        let planned = plan(&desired, &LiveState::default(), &PlanOptions::new(owner));
        planned
            .steps
            .into_iter()
            .filter_map(|s| s.object)
            .inspect(|o| debug_assert!(o.label(OWNER_LABEL).is_some()))
            .collect()
    };
    let before = resident();
    let runtime = MemoryRuntime::new();
    let options = ApplyOptions::default();
    for o in &objects {
        block_on(runtime.apply(o, &options)).expect("applied");
    }
    print("runtime", n, objects.len(), before);
    drop(runtime);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    if sizes.is_empty() {
        sizes.push(10_000);
    }
    let only_runtime = args.iter().any(|a| a == "runtime");
    for n in sizes {
        if only_runtime {
            runtime(n);
        } else {
            reconcile(n);
        }
    }
}
