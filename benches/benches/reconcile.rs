//! Reconcile benchmarks (issue 14, "cost proportional to change"): a cold
//! reconcile of ~10,000 generated objects, a no-op resync of the same
//! revision, and a reconcile after a commit that changes one file; all
//! through [`Reconciler::reconcile_once`] with `MemorySource` and
//! `MemoryRuntime`. `GITOPS_BENCH_OBJECTS` sets the size (default 10000).
//!
//! `cargo bench -p gitops-benches --bench reconcile -- --warm-up-time 1 --measurement-time 3`
//! (`benches/goals.sh` prints the ratios.)
#![allow(clippy::expect_used, reason = "a benchmark stops on a broken setup")]

use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use futures::executor::block_on;
use gitops_benches::{environment, manifest};
use gitops_core::{MemoryRuntime, MemorySource, OwnerId, Reconciler, ReconcilerConfig, SyncStatus};

fn objects() -> usize {
    std::env::var("GITOPS_BENCH_OBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

fn config() -> ReconcilerConfig {
    ReconcilerConfig::new(OwnerId::new("bench").expect("a valid owner"))
}

fn reconciler(source: &MemorySource) -> Reconciler<MemorySource, MemoryRuntime> {
    Reconciler::new(source.clone(), MemoryRuntime::new(), config()).expect("valid options")
}

fn commit(source: &MemorySource, files: &[(String, String)]) -> String {
    source.commit(
        "main",
        files.iter().map(|(p, d)| (p.clone(), d.as_bytes())),
        "bench",
        "generated",
    )
}

fn benches(c: &mut Criterion) {
    let n = objects();
    let mut files = environment(n);
    let source = MemorySource::new();
    commit(&source, &files);
    let first = reconciler(&source);
    let report = block_on(first.reconcile_once("main")).expect("the environment syncs");
    let objects = report.summary.create;
    eprintln!("reconcile: {} files, {objects} objects", files.len());
    drop(first);

    let mut group = c.benchmark_group(format!("reconcile/{n}"));
    group.sample_size(10);
    group.bench_function("cold", |b| {
        b.iter_batched(
            || reconciler(&source),
            |r| block_on(r.reconcile_once("main")).map(|r| r.status).ok(),
            BatchSize::PerIteration,
        )
    });

    let warm = reconciler(&source);
    block_on(warm.reconcile_once("main")).expect("the environment syncs");
    group.bench_function("noop", |b| {
        b.iter(|| {
            let report = block_on(warm.reconcile_once("main")).expect("a no-op resync");
            assert_eq!(report.status, SyncStatus::UpToDate);
        })
    });

    // Each iteration commits a change to one file (not timed), then
    // reconciles it.
    let mut rev = 0;
    group.bench_function("one_file_commit", |b| {
        b.iter_batched(
            || {
                rev += 1;
                let i = rev % 3; // a Deployment+Service, a ConfigMap, a Service
                let (path, text) = manifest(i, rev);
                let slot = gitops_benches::NAMESPACES + i;
                debug_assert_eq!(files[slot].0, path);
                files[slot].1 = text;
                commit(&source, &files);
            },
            |()| {
                let report = block_on(warm.reconcile_once("main")).expect("a one-file commit");
                assert_eq!(report.status, SyncStatus::Synced);
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group! {
    name = reconcile_benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(reconcile_benches);
