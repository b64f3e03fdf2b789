//! Kustomize benchmarks (gitops-kustomize).
//!
//! - `kustomize_cold/<root>`: `gitops_kustomize::build` of the 10 largest
//!   roots of the shared corpus (by output: the kueue configurations, 79 to
//!   82 objects and ~1.7 MB of YAML each, mostly CRDs), the repository
//!   already read into a snapshot. Throughput: bytes of the output objects
//!   (as JSON).
//! - `kustomize_incremental/*`: a generated repository of 50 overlays over
//!   5 application bases and a common base (in a snapshot built in memory).
//!   `cold_50` renders all 50 with a fresh `Kustomize` renderer;
//!   `after_one_change_50` renders all 50 with a renderer that has rendered
//!   the previous commit, the new commit changing one overlay's patch file
//!   (the two snapshots alternate, so each iteration is such a commit).
//!   The ratio of the two is printed.
//!
//! `cargo bench -p gitops-benches --bench kustomize -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gitops_core::{Blob, Snapshot};
use gitops_kustomize::Kustomize;

/// The 10 largest corpus roots by output (`kubectl kustomize` bytes), largest first.
const LARGEST_ROOTS: [&str; 10] = [
    "kueue/test/e2e/config/multikueue/extended-shard-0",
    "kueue/config/alpha-enabled",
    "kueue/config/dev",
    "kueue/test/e2e/config/extended",
    "kueue/config/default",
    "kueue/test/e2e/config/multikueue/extended-shard-1",
    "kueue/test/e2e/config/default",
    "kueue/test/e2e/config/baseline",
    "kueue/test/e2e/config/certmanager",
    "kueue/test/e2e/config/multikueue/baseline",
];

fn load_dir(root: &Path, dir: &Path, snap: &mut Snapshot) -> std::io::Result<()> {
    let mut entries = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()?;
    entries.sort();
    for p in entries {
        if p.is_symlink() {
            continue;
        }
        if p.is_dir() {
            load_dir(root, &p, snap)?;
        } else if let Ok(rel) = p.strip_prefix(root) {
            let rel = rel.to_string_lossy().replace('\\', "/");
            snap.insert(rel, Blob::from_bytes(std::fs::read(&p)?));
        }
    }
    Ok(())
}

fn corpus() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/corpus/kustomize"
    ))
}

fn cold(c: &mut Criterion) {
    let mut g = c.benchmark_group("kustomize_cold");
    g.sample_size(10);
    let mut repos: Vec<(String, Snapshot)> = Vec::new();
    for root in LARGEST_ROOTS {
        let (repo, rel) = root.split_once('/').unwrap_or((root, ""));
        if !repos.iter().any(|(r, _)| r == repo) {
            let dir = corpus().join(repo);
            let mut snap = Snapshot::new();
            if load_dir(&dir, &dir, &mut snap).is_err() || snap.is_empty() {
                eprintln!("SKIPPED: corpus not found at {}", dir.display());
                return;
            }
            repos.push((repo.to_owned(), snap));
        }
        let Some((_, snap)) = repos.iter().find(|(r, _)| r == repo) else {
            continue;
        };
        let objects = match gitops_kustomize::build(snap, rel) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("SKIPPED {root}: {e}");
                continue;
            }
        };
        let bytes: usize = objects
            .iter()
            .map(|o| serde_json::to_vec(o).map_or(0, |v| v.len()))
            .sum();
        eprintln!("{root}: {} objects", objects.len());
        g.throughput(Throughput::Bytes(bytes as u64));
        g.bench_with_input(BenchmarkId::from_parameter(root), rel, |b, rel| {
            b.iter(|| black_box(gitops_kustomize::build(snap, rel)))
        });
    }
    g.finish();
}

const DEPLOY: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: app
        image: nginx:1.0
        envFrom:
        - configMapRef:
            name: settings
";

/// 50 overlays (prefix, namespace, labels, image, a patch file) over 5
/// application bases (Deployment, Service, generated ConfigMap) and a
/// common base; `replicas` is overlay 7's patched replica count.
fn fleet(replicas: u32) -> Snapshot {
    let mut files: Vec<(String, String)> = vec![
        (
            "bases/common/kustomization.yaml".into(),
            "resources: [quota.yaml]\n".into(),
        ),
        (
            "bases/common/quota.yaml".into(),
            "apiVersion: v1\nkind: ResourceQuota\nmetadata:\n  name: quota\nspec:\n  hard:\n    pods: \"50\"\n".into(),
        ),
    ];
    for b in 0..5 {
        files.push((
            format!("bases/app{b}/kustomization.yaml"),
            "resources: [deploy.yaml, svc.yaml]\ncommonLabels:\n  app: web\nconfigMapGenerator:\n- name: settings\n  literals: [a=b, c=d]\n".into(),
        ));
        files.push((format!("bases/app{b}/deploy.yaml"), DEPLOY.into()));
        files.push((
            format!("bases/app{b}/svc.yaml"),
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - port: 80\n".into(),
        ));
    }
    for o in 0..50 {
        files.push((
            format!("overlays/o{o}/kustomization.yaml"),
            format!(
                "resources: [../../bases/app{}, ../../bases/common]\nnamePrefix: o{o}-\nnamespace: team-{o}\nlabels:\n- pairs: {{env: o{o}}}\nimages:\n- name: nginx\n  newTag: \"1.{o}\"\npatches:\n- path: patch.yaml\n",
                o % 5
            ),
        ));
        let r = if o == 7 { replicas } else { 2 };
        files.push((
            format!("overlays/o{o}/patch.yaml"),
            format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: {r}\n"),
        ));
    }
    Snapshot::from_files(files)
}

fn render_all(k: &Kustomize, snap: &Snapshot) -> usize {
    (0..50)
        .map(|o| {
            k.build_with_origins(snap, &format!("overlays/o{o}"))
                .map_or(0, |v| v.len())
        })
        .sum()
}

fn incremental(c: &mut Criterion) {
    let commits = [fleet(3), fleet(4)];
    let mut g = c.benchmark_group("kustomize_incremental");
    g.bench_function("cold_50", |b| {
        b.iter(|| black_box(render_all(&Kustomize::new(), &commits[0])))
    });
    let k = Kustomize::new();
    render_all(&k, &commits[0]);
    let mut i = 0;
    g.bench_function("after_one_change_50", |b| {
        b.iter(|| {
            i += 1;
            black_box(render_all(&k, &commits[i % 2]))
        })
    });
    g.finish();

    // The ratio, measured directly (criterion reports each side above).
    let time = |f: &mut dyn FnMut()| {
        let mut best = Duration::MAX;
        for _ in 0..20 {
            let t = Instant::now();
            f();
            best = best.min(t.elapsed());
        }
        best
    };
    let cold = time(&mut || {
        black_box(render_all(&Kustomize::new(), &commits[0]));
    });
    let k = Kustomize::new();
    render_all(&k, &commits[0]);
    let mut i = 0;
    let warm = time(&mut || {
        i += 1;
        black_box(render_all(&k, &commits[i % 2]));
    });
    eprintln!(
        "kustomize_incremental: cold {cold:?}, after one changed overlay file {warm:?}: {:.1}x less ({:?})",
        cold.as_secs_f64() / warm.as_secs_f64().max(1e-9),
        k.cache_stats()
    );
}

criterion_group!(benches, cold, incremental);
criterion_main!(benches);
