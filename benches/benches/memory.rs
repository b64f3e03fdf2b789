//! Resident memory per object after a reconcile (issue 14): one process
//! per measurement, since resident memory is per process. For each size
//! given as an argument (default 10000), commits a generated environment
//! to a `MemorySource` (counted out), then:
//! - `reconcile` (default): reconciles it into a `MemoryRuntime` and prints,
//!   per object, the growth of resident memory (`/proc/self/statm`), of its
//!   peak (`VmHWM` of `/proc/self/status`), and of the heap: bytes live now
//!   and at the peak, counted exactly by the allocator; then the heap still
//!   live once the report is dropped (what the reconciler keeps between
//!   syncs, with the runtime's objects);
//! - `runtime`: applies the same objects straight to a `MemoryRuntime`
//!   (built before the baseline) and prints the same: what the in-memory
//!   stand-in for the API server holds, which a real agent does not. Its
//!   heap bytes are exact whatever the allocator reused, so the agent's own
//!   share of a reconcile is its figure less the runtime's heap. The
//!   inventory is not written here: the in-memory runtime shares the
//!   inventory the reconciler keeps (a real agent holds its own, read from
//!   the server), so it is counted once, in the agent's share.
//!
//! `cargo bench -p gitops-benches --bench memory -- 10000` and
//! `cargo bench -p gitops-benches --bench memory -- runtime 10000`
#![allow(clippy::expect_used, reason = "a benchmark stops on a broken setup")]

use futures::executor::block_on;
use gitops_benches::environment;
use peak_alloc::PeakAlloc;

use gitops_core::{
    ApplyOptions, LiveState, MemoryRuntime, MemorySource, OWNER_LABEL, OwnerId, PlanOptions,
    Reconciler, ReconcilerConfig, SourceExt, Target, plan, render,
};

// Counts live heap bytes and their peak exactly (a thin wrapper of the
// system allocator, whose figures do not depend on what it reuses).
#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

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

/// `source(n)`, built on another thread: glibc's malloc gives it its own
/// arena, so what building frees is not there for the measured code to
/// reuse, and the resident growth measured is all the measured code's.
fn source_apart(n: usize) -> MemorySource {
    std::thread::spawn(move || source(n))
        .join()
        .expect("the source is built")
}

/// The figures at a baseline.
struct Baseline {
    resident: u64,
    heap: usize,
}

impl Baseline {
    fn now() -> Self {
        HEAP.reset_peak_usage();
        Self {
            resident: resident(),
            heap: HEAP.current_usage(),
        }
    }
}

fn kb_per(bytes: usize, objects: usize) -> f64 {
    bytes as f64 / objects.max(1) as f64 / 1024.0
}

fn print(what: &str, n: usize, objects: usize, before: &Baseline) -> String {
    let grown = |now: u64| usize::try_from(now.saturating_sub(before.resident)).unwrap_or(0);
    format!(
        "memory/{what}/{n}: objects={objects} resident_kb_per_object={:.2} peak_kb_per_object={:.2} heap_kb_per_object={:.2} peak_heap_kb_per_object={:.2}",
        kb_per(grown(resident()), objects),
        kb_per(grown(peak()), objects),
        kb_per(HEAP.current_usage().saturating_sub(before.heap), objects),
        kb_per(HEAP.peak_usage().saturating_sub(before.heap), objects),
    )
}

fn reconcile(n: usize) {
    let source = source_apart(n);
    let before = Baseline::now();
    let runtime = MemoryRuntime::new();
    let config = ReconcilerConfig::new(OwnerId::new("bench").expect("a valid owner"));
    let reconciler = Reconciler::new(source, runtime.clone(), config).expect("valid options");
    let report = block_on(reconciler.reconcile_once("main")).expect("the environment syncs");
    let objects = report.summary.create;
    let line = print("reconcile", n, objects, &before);
    drop(report);
    let kept = kb_per(HEAP.current_usage().saturating_sub(before.heap), objects);
    println!("{line} kept_heap_kb_per_object={kept:.2}");
    drop((reconciler, runtime));
}

fn runtime(n: usize) {
    // Built on another thread, as in `source_apart`.
    let objects: Vec<_> = std::thread::spawn(move || {
        let source = source(n);
        let owner = OwnerId::new("bench").expect("a valid owner");
        let snapshot = block_on(source.snapshot_of("main", None)).expect("a snapshot");
        let desired = render(&snapshot, &Default::default()).expect("it renders");
        let planned = plan(&desired, &LiveState::default(), &PlanOptions::new(owner));
        planned
            .steps
            .into_iter()
            .filter_map(|s| s.object)
            .inspect(|o| debug_assert!(o.label(OWNER_LABEL).is_some()))
            .collect()
    })
    .join()
    .expect("the objects are built");
    let before = Baseline::now();
    let runtime = MemoryRuntime::new();
    let options = ApplyOptions::default();
    for o in &objects {
        block_on(runtime.apply(o, &options)).expect("applied");
    }
    println!("{}", print("runtime", n, objects.len(), &before));
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
