//! Rendering benchmarks: kube-prometheus (real world, ~5.6 MB) and a
//! generated snapshot of 10,000 manifests.
//!
//! For each input: `serde_yaml_floor` (serde_yaml alone parsing the same
//! bytes into `serde_json::Value`, the floor any YAML renderer pays),
//! `render_cold` (`gitops_core::render`, no cache, files parsed on as
//! many threads as the machine has: the default), `render_cold_1thread`
//! (the same on one thread: what a render costs in CPU),
//! `render_warm` (a `Renderer` re-rendering the same snapshot: every file's
//! parse comes from the cache) and `serde_yaml_kept` (the floor keeping
//! every value until the end, as a renderer keeps its objects: what
//! holding the output costs, for reading the floor's ratio). Throughput is
//! in bytes; objects/s is the printed object count divided by the time.
//!
//! After the criterion benches, `render_paired/generated-10k` prints the
//! goal's ratio (render_cold over the floor) measured in pairs run back to
//! back, the median of 15 ([`paired`]): steadier on a shared machine than
//! the ratio of two criterion medians taken seconds apart;
//! `render_paired_1thread/generated-10k` the same for `render_cold_1thread`.
//!
//! `cargo bench -p gitops-benches --bench render -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gitops_core::{Blob, Snapshot};
use gitops_core::{RenderOptions, Renderer, render};

fn load_dir(root: &Path, dir: &Path, snap: &mut Snapshot) -> std::io::Result<()> {
    let mut entries = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()?;
    entries.sort();
    for p in entries {
        if p.is_dir() {
            load_dir(root, &p, snap)?;
        } else if let Ok(rel) = p.strip_prefix(root) {
            let rel = rel.to_string_lossy().replace('\\', "/");
            snap.insert(rel, Blob::from_bytes(std::fs::read(&p)?));
        }
    }
    Ok(())
}

fn kube_prometheus() -> Option<Snapshot> {
    let root = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/corpus/kube-prometheus/manifests"
    ));
    let mut snap = Snapshot::new();
    match load_dir(&root, &root, &mut snap) {
        Ok(()) if !snap.is_empty() => Some(snap),
        _ => {
            eprintln!("SKIPPED: corpus not found at {}", root.display());
            None
        }
    }
}

/// 10,000 files cycling through a Deployment (with a Service in the same
/// file, as many repositories do), a ConfigMap and a plain Service.
fn generated(n: usize) -> Snapshot {
    let mut snap = Snapshot::new();
    for i in 0..n {
        let app = format!("app-{i:05}");
        let ns = format!("team-{}", i % 20);
        let text = match i % 3 {
            0 => format!(
                r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {app}
  namespace: {ns}
  labels: {{app.kubernetes.io/name: {app}, app.kubernetes.io/part-of: shop, tier: backend}}
  annotations: {{deployment.kubernetes.io/revision: "3"}}
spec:
  replicas: 3
  selector:
    matchLabels: {{app.kubernetes.io/name: {app}}}
  template:
    metadata:
      labels: {{app.kubernetes.io/name: {app}}}
    spec:
      serviceAccountName: {app}
      securityContext: {{runAsNonRoot: true, fsGroup: 1000}}
      containers:
      - name: server
        image: registry.example.com/{app}:v1.{i}.0
        ports:
        - {{containerPort: 8080, name: http}}
        env:
        - {{name: PORT, value: "8080"}}
        - {{name: LOG_LEVEL, value: info}}
        - name: POD_NAME
          valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}
        resources:
          requests: {{cpu: 100m, memory: 64Mi}}
          limits: {{cpu: 200m, memory: 128Mi}}
        readinessProbe:
          httpGet: {{path: /healthz, port: 8080}}
          periodSeconds: 10
---
apiVersion: v1
kind: Service
metadata:
  name: {app}
  namespace: {ns}
spec:
  type: ClusterIP
  selector: {{app.kubernetes.io/name: {app}}}
  ports:
  - {{name: http, port: 80, targetPort: 8080}}
"#
            ),
            1 => format!(
                r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: {app}-config
  namespace: {ns}
  labels: {{app.kubernetes.io/name: {app}}}
data:
  application.properties: |
    server.port=8080
    feature.flags=a,b,c
    cache.ttl=300
  LOG_FORMAT: json
"#
            ),
            _ => format!(
                r#"apiVersion: v1
kind: Service
metadata:
  name: {app}-metrics
  namespace: {ns}
  labels: {{app.kubernetes.io/name: {app}}}
spec:
  selector: {{app.kubernetes.io/name: {app}}}
  ports:
  - {{name: metrics, port: 9090, targetPort: 9090}}
"#
            ),
        };
        snap.insert(
            format!("apps/{ns}/{app}.yaml"),
            Blob::from_bytes(text.into_bytes()),
        );
    }
    snap
}

/// serde_yaml alone: every document of every file to `serde_json::Value`
/// (documents split at `---` lines, as `serde_yaml::from_str` reads one).
fn serde_yaml_floor(snap: &Snapshot) -> usize {
    let mut docs = 0;
    for (_, blob) in snap.files() {
        let Ok(text) = std::str::from_utf8(&blob.data) else {
            continue;
        };
        for doc in text.split("\n---\n") {
            if let Ok(v) = serde_yaml::from_str::<serde_json::Value>(doc) {
                black_box(v);
                docs += 1;
            }
        }
    }
    docs
}

/// [`serde_yaml_floor`] keeping every value until the end, as a renderer
/// keeps its objects: not the goal's floor, but what holding the output
/// costs on top of it (values built in memory that is not reused while
/// hot, and dropped at once), for reading the ratio.
fn serde_yaml_kept(snap: &Snapshot) -> usize {
    let mut kept = Vec::new();
    for (_, blob) in snap.files() {
        let Ok(text) = std::str::from_utf8(&blob.data) else {
            continue;
        };
        for doc in text.split("\n---\n") {
            if let Ok(v) = serde_yaml::from_str::<serde_json::Value>(doc) {
                kept.push(v);
            }
        }
    }
    black_box(&kept);
    kept.len()
}

fn bench_snapshot(c: &mut Criterion, name: &str, snap: &Snapshot) {
    let options = RenderOptions::default();
    let objects = match render(snap, &options) {
        Ok(d) => d.len(),
        Err(e) => {
            eprintln!("SKIPPED {name}: the snapshot does not render:\n{e}");
            return;
        }
    };
    let bytes = snap.total_bytes();
    eprintln!(
        "{name}: {} files, {:.2} MB, {objects} objects",
        snap.len(),
        bytes as f64 / 1e6
    );
    let mut group = c.benchmark_group(format!("render/{name}"));
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("serde_yaml_floor", |b| {
        b.iter(|| serde_yaml_floor(black_box(snap)))
    });
    group.bench_function("render_cold", |b| {
        b.iter(|| render(black_box(snap), &options).map(|d| d.len()))
    });
    let one_thread = RenderOptions::default().with_parse_threads(1);
    group.bench_function("render_cold_1thread", |b| {
        b.iter(|| render(black_box(snap), &one_thread).map(|d| d.len()))
    });
    if let Ok(mut renderer) = Renderer::new(options.clone()) {
        let _ = renderer.render(snap);
        group.bench_function("render_warm", |b| {
            b.iter(|| renderer.render(black_box(snap)).map(|d| d.len()))
        });
    }
    group.bench_function("serde_yaml_kept", |b| {
        b.iter(|| serde_yaml_kept(black_box(snap)))
    });
    group.finish();
}

/// Rounds of [`paired`].
const PAIRS: usize = 15;

/// The goal's ratio measured in pairs: the floor and `render_cold` (its
/// output dropped, as the bench drops it) one right after the other,
/// [`PAIRS`] times, and the median of the pairs' ratios. Criterion measures
/// the two in separate windows of seconds, and on a shared machine the
/// speed drifts between windows by more than the effect measured; a pair
/// sees the same machine. Printed as one `render_paired/` line (which
/// `benches/goals.sh` reads).
fn paired(label: &str, name: &str, snap: &Snapshot, options: &RenderOptions) {
    let time = |f: &mut dyn FnMut()| {
        let start = std::time::Instant::now();
        f();
        start.elapsed().as_secs_f64() * 1e3
    };
    // One of each first, to warm caches and the allocator.
    black_box(serde_yaml_floor(snap));
    drop(black_box(render(snap, options)));
    let mut pairs: Vec<(f64, f64)> = (0..PAIRS)
        .map(|_| {
            let floor = time(&mut || {
                black_box(serde_yaml_floor(black_box(snap)));
            });
            let cold = time(&mut || drop(black_box(render(black_box(snap), options))));
            (floor, cold)
        })
        .collect();
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut ratios: Vec<f64> = pairs.iter().map(|(f, r)| r / f).collect();
    let ratio = median(&mut ratios);
    let mut floors: Vec<f64> = pairs.iter().map(|p| p.0).collect();
    let mut colds: Vec<f64> = pairs.drain(..).map(|p| p.1).collect();
    println!(
        "{label}/{name}: pairs={PAIRS} floor_ms={:.1} render_cold_ms={:.1} ratio={ratio:.3} ratio_min={:.3} ratio_max={:.3}",
        median(&mut floors),
        median(&mut colds),
        ratios[0],
        ratios[ratios.len() - 1],
    );
}

fn benches(c: &mut Criterion) {
    if let Some(snap) = kube_prometheus() {
        bench_snapshot(c, "kube-prometheus", &snap);
    }
    let generated = generated(10_000);
    bench_snapshot(c, "generated-10k", &generated);
    // Only where criterion's filter (the first free argument) would run
    // the generated bench.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    if filter.is_none_or(|f| "render/generated-10k/render_cold".contains(&f)) {
        let default = RenderOptions::default();
        paired("render_paired", "generated-10k", &generated, &default);
        let one_thread = RenderOptions::default().with_parse_threads(1);
        paired(
            "render_paired_1thread",
            "generated-10k",
            &generated,
            &one_thread,
        );
    }
}

criterion_group! {
    name = render_benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(render_benches);
