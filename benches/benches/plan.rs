//! Planning benchmarks (issue 14): after a sync of 1,000 and 10,000
//! generated objects (and 100,000 with `GITOPS_BENCH_100K=1`), 1% of the
//! live objects are edited by hand (drift); then, side by side:
//! - `render_cold`: rendering the revision without a cache (the yardstick);
//! - `plan`: [`Reconciler::plan`] of the same revision, as every resync
//!   plans: observe, then plan;
//! - `plan_pure`: the pure [`plan`] function over the whole live state;
//! - `plan_pure_in_sync`: the pure [`plan`] function as the reconciler
//!   calls it on a resync: the drifted objects read, the others known in
//!   sync ([`LiveState::in_sync`](gitops_core::LiveState::in_sync)).
//!
//! `cargo bench -p gitops-benches --bench plan -- --warm-up-time 1 --measurement-time 3`
#![allow(clippy::expect_used, reason = "a benchmark stops on a broken setup")]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use futures::executor::block_on;
use gitops_benches::environment;
use gitops_core::{
    MemoryRuntime, MemorySource, Object, ObserveRequest, OwnerId, Reconciler, ReconcilerConfig,
    RenderOptions, SourceExt, Target, observe_keys, plan, render,
};

fn bench_size(c: &mut Criterion, n: usize) {
    let files = environment(n);
    let source = MemorySource::new();
    source.commit(
        "main",
        files.iter().map(|(p, d)| (p.clone(), d.as_bytes())),
        "bench",
        "generated",
    );
    let runtime = MemoryRuntime::new();
    let config = ReconcilerConfig::new(OwnerId::new("bench").expect("a valid owner"));
    let options = config.plan.clone();
    let reconciler =
        Reconciler::new(source.clone(), runtime.clone(), config).expect("valid options");
    block_on(reconciler.reconcile_once("main")).expect("the environment syncs");
    // 1% drift: ConfigMaps edited by hand.
    let live = runtime.objects();
    let drifted: Vec<_> = live
        .iter()
        .filter(|(k, _)| k.kind == "ConfigMap")
        .take(live.len() / 100)
        .map(|(_, v)| {
            let mut v = v.clone();
            v["data"]["revision"] = "edited by hand".into();
            Object::new(v).expect("a valid object")
        })
        .collect();
    for o in &drifted {
        runtime.update(o, "kubectl-edit").expect("an update");
    }
    let snapshot = block_on(source.snapshot_of("main", None)).expect("a snapshot");
    let (desired, drift_plan) = block_on(reconciler.plan("main")).expect("a plan");
    assert_eq!(drift_plan.steps.len(), drifted.len());
    let inventory = block_on(runtime.read_inventory(&options.owner)).expect("an inventory");
    let keys = observe_keys(&desired, inventory.as_ref());
    let mut full = block_on(runtime.observe(&ObserveRequest::new(keys, None))).expect("observe");
    full.inventory = inventory;
    // What the reconciler hands the planner on a resync: the objects it
    // knows in sync (its records match the runtime's versions) are not
    // read; the drifted ones are.
    let mut in_sync = full.clone();
    let edited: std::collections::BTreeSet<_> = drifted.iter().map(|o| o.key().clone()).collect();
    in_sync
        .objects
        .retain(|k, _| edited.contains(k) || !desired.contains(k));
    in_sync.in_sync = desired
        .keys()
        .filter(|k| !edited.contains(*k))
        .cloned()
        .collect();
    eprintln!(
        "plan/{n}: {} objects, {} drifted",
        desired.len(),
        drifted.len()
    );

    let mut group = c.benchmark_group(format!("plan/{n}"));
    group.sample_size(10);
    let render_options = RenderOptions::default();
    group.bench_function("render_cold", |b| {
        b.iter(|| render(black_box(&snapshot), &render_options).map(|d| d.len()))
    });
    group.bench_function("plan", |b| {
        b.iter(|| {
            block_on(reconciler.plan("main"))
                .map(|(_, p)| p.steps.len())
                .ok()
        })
    });
    group.bench_function("plan_pure", |b| {
        b.iter(|| plan(black_box(&desired), &full, &options).steps.len())
    });
    group.bench_function("plan_pure_in_sync", |b| {
        b.iter(|| plan(black_box(&desired), &in_sync, &options).steps.len())
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    bench_size(c, 1_000);
    bench_size(c, 10_000);
    if std::env::var_os("GITOPS_BENCH_100K").is_some() {
        bench_size(c, 100_000);
    }
}

criterion_group! {
    name = plan_benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(plan_benches);
