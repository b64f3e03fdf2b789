//! Git source benchmarks on a generated repository of 10,000 manifests
//! (built at bench start with `git fast-import` in a temp dir).
//!
//! `git_snapshot_10k`, side by side on the same commit:
//! - `git_cli`: `git ls-tree -r -z` + `git cat-file --batch`, building the
//!   same `Snapshot` (what a CLI-driven tool without a checkout pays);
//! - `gitsource_cold`: a new `GitSource` (fresh caches) per snapshot;
//! - `gitsource_warm_blobs`: blob cache warm, tree-listing cache disabled;
//! - `gitsource_warm`: both caches warm.
//!
//! `git_incremental_10k`: a chain of commits each changing 1 of the 10,000
//! files; every iteration moves to the next commit.
//! - `full_reload_render`: new `GitSource` + new `Renderer`, snapshot + render;
//! - `incremental_reload_render`: the same warm source and renderer,
//!   snapshot + render of the next commit;
//! - `incremental_snapshot`: snapshot of the next commit only (warm);
//! - `snapshot_incremental_api`: `GitSource::snapshot_incremental` from the
//!   previous snapshot.
//!
//! `git_snapshot_deep_10k`: the same 10,000 files after 200 commits that
//! each edit 250 of them, repacked as `git gc --aggressive` or a Git server
//! packs it (`git repack -adf --depth=50 --window=250`: delta chains up to
//! 50, checked with `git verify-pack -v` at start), side by side:
//! - `git_cli`: `git ls-tree -r -z` + `git cat-file --batch`;
//! - `gitsource_cold`: a new `GitSource` (fresh caches) per snapshot.
//!
//! `cargo bench -p gitops-benches --bench git -- --warm-up-time 1 --measurement-time 3`
//! (one group: `cargo bench -p gitops-benches --bench git -- git_snapshot_deep`)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use gitops_core::{Blob, BlobId, Revision, Snapshot};
use gitops_core::{RenderOptions, Renderer};
use gitops_git::{GitSource, GitSourceOptions};

const FILES: usize = 10_000;
const CHAIN: usize = 1_500;
/// History of the deep-delta repository: commits, files changed by each.
const DEEP_COMMITS: usize = 200;
const DEEP_PER_COMMIT: usize = 250;

fn manifest(i: usize, rev: usize) -> String {
    let app = format!("app-{i:05}");
    let ns = format!("team-{:02}", i % 20);
    match i % 2 {
        0 => format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {app}\n  namespace: {ns}\n  labels: {{app.kubernetes.io/name: {app}, tier: backend}}\nspec:\n  replicas: 3\n  selector:\n    matchLabels: {{app.kubernetes.io/name: {app}}}\n  template:\n    metadata:\n      labels: {{app.kubernetes.io/name: {app}}}\n    spec:\n      containers:\n      - name: server\n        image: registry.example.com/{app}:v1.{rev}.0\n        ports:\n        - {{containerPort: 8080, name: http}}\n        resources:\n          requests: {{cpu: 100m, memory: 64Mi}}\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {app}\n  namespace: {ns}\nspec:\n  selector: {{app.kubernetes.io/name: {app}}}\n  ports:\n  - {{name: http, port: 80, targetPort: 8080}}\n"
        ),
        _ => format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {app}-config\n  namespace: {ns}\ndata:\n  revision: \"{rev}\"\n  LOG_FORMAT: json\n"
        ),
    }
}

fn path_of(i: usize) -> String {
    format!("envs/prod/team-{:02}/{}/app-{i:05}.yaml", i % 20, i % 7)
}

fn git(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1");
    cmd
}

/// A bare repository: commit 0 with all files, then `commits` commits each
/// changing `per_commit` files. Returns the commit ids, oldest first.
fn build_repo(dir: &Path, commits: usize, per_commit: usize) -> Vec<String> {
    let ok = git(dir)
        .args(["init", "-q", "--bare"])
        .status()
        .expect("git init");
    assert!(ok.success());
    let mut stream = Vec::new();
    let commit = |stream: &mut Vec<u8>,
                  n: usize,
                  files: &mut dyn Iterator<Item = (String, String)>| {
        let msg = format!("commit {n}");
        write!(
            stream,
            "commit refs/heads/main\nmark :{}\ncommitter Bench <bench@example.com> {} +0000\ndata {}\n{msg}\n",
            n + 1,
            1_700_000_000 + n,
            msg.len()
        )
        .expect("write");
        for (path, text) in files {
            write!(
                stream,
                "M 100644 inline {path}\ndata {}\n{text}\n",
                text.len()
            )
            .expect("write");
        }
    };
    commit(
        &mut stream,
        0,
        &mut (0..FILES).map(|i| (path_of(i), manifest(i, 0))),
    );
    for n in 1..=commits {
        commit(
            &mut stream,
            n,
            &mut (0..per_commit).map(|k| {
                let i = (n * 7919 + k * 13) % FILES;
                (path_of(i), manifest(i, n))
            }),
        );
    }
    let mut child = git(dir)
        .args([
            "fast-import",
            "--quiet",
            &format!("--export-marks={}", dir.join("marks").display()),
        ])
        .stdin(Stdio::piped())
        .spawn()
        .expect("git fast-import");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&stream)
        .expect("feed fast-import");
    assert!(child.wait().expect("fast-import").success());
    let marks = std::fs::read_to_string(dir.join("marks")).expect("marks");
    let mut ids: Vec<(usize, String)> = marks
        .lines()
        .filter_map(|l| {
            let (mark, id) = l.split_once(' ')?;
            Some((mark.trim_start_matches(':').parse().ok()?, id.to_owned()))
        })
        .collect();
    ids.sort();
    ids.into_iter().map(|(_, id)| id).collect()
}

/// Repacks everything as `git gc --aggressive` does (deep delta chains).
fn repack_deep(dir: &Path) {
    let ok = git(dir)
        .args(["repack", "-adf", "-q", "--depth=50", "--window=250"])
        .status()
        .expect("git repack");
    assert!(ok.success());
}

/// `(longest delta chain of the repository, mean chain length of the blobs
/// of `commit`)`, from `git verify-pack -v`.
fn delta_chains(dir: &Path, commit: &str) -> (usize, f64) {
    let mut depth = std::collections::HashMap::new();
    for entry in std::fs::read_dir(dir.join("objects/pack")).expect("packs") {
        let path = entry.expect("pack").path();
        if path.extension().is_none_or(|e| e != "pack") {
            continue;
        }
        let out = git(dir)
            .arg("verify-pack")
            .arg("-v")
            .arg(&path)
            .output()
            .expect("verify-pack");
        assert!(out.status.success());
        // `<id> <type> <size> <size-in-pack> <offset> [<depth> <base-id>]`
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() >= 5 && fields[0].len() == 40 {
                let d = fields.get(5).and_then(|d| d.parse().ok()).unwrap_or(0usize);
                depth.insert(fields[0].to_owned(), d);
            }
        }
    }
    let out = git(dir)
        .args(["ls-tree", "-r", commit])
        .output()
        .expect("ls-tree");
    let blobs: Vec<usize> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .map(|id| depth.get(id).copied().unwrap_or(0))
        .collect();
    let max = depth.values().copied().max().unwrap_or(0);
    (
        max,
        blobs.iter().sum::<usize>() as f64 / blobs.len().max(1) as f64,
    )
}

/// The same snapshot with the git CLI: `ls-tree -r -z` + `cat-file --batch`.
fn git_cli_snapshot(dir: &Path, commit: &str) -> Snapshot {
    let out = git(dir)
        .args(["ls-tree", "-r", "-z", commit])
        .output()
        .expect("ls-tree");
    let mut entries = Vec::new();
    for record in out.stdout.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let text = std::str::from_utf8(record).expect("utf-8");
        let (meta, path) = text.split_once('\t').expect("tab");
        let mut parts = meta.split(' ');
        let (_mode, kind, id) = (parts.next(), parts.next(), parts.next().expect("id"));
        if kind == Some("blob") {
            entries.push((path.to_owned(), id.to_owned()));
        }
    }
    let mut child = git(dir)
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("cat-file");
    let mut stdin = child.stdin.take().expect("stdin");
    let ids: Vec<String> = entries.iter().map(|(_, id)| id.clone()).collect();
    let writer = std::thread::spawn(move || {
        let mut buf = Vec::with_capacity(ids.len() * 41);
        for id in ids {
            buf.extend_from_slice(id.as_bytes());
            buf.push(b'\n');
        }
        stdin.write_all(&buf).expect("write ids");
    });
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    let mut snap = Snapshot::new();
    let mut header = String::new();
    for (path, id) in entries {
        header.clear();
        reader.read_line(&mut header).expect("header");
        let size: usize = header
            .trim_end()
            .rsplit(' ')
            .next()
            .expect("size")
            .parse()
            .expect("size");
        let mut data = vec![0; size + 1];
        reader.read_exact(&mut data).expect("content");
        data.truncate(size);
        snap.insert(path, Blob::with_id(BlobId::from_hex(id), data));
    }
    writer.join().expect("writer");
    assert!(child.wait().expect("cat-file").success());
    snap
}

fn benches(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let start = Instant::now();
    let commits = build_repo(dir, CHAIN, 1);
    eprintln!(
        "generated {FILES} files + {CHAIN} one-file commits in {:?}",
        start.elapsed()
    );
    let probe = GitSource::open(dir).expect("open");
    let revs: Vec<Revision> = commits
        .iter()
        .map(|id| probe.resolve_blocking(id).expect("resolve"))
        .collect();
    let base = &revs[0];

    // Sanity: the CLI and GitSource agree.
    let reference = probe.snapshot_blocking(base, None).expect("snapshot");
    assert_eq!(reference.len(), FILES);
    let cli = git_cli_snapshot(dir, &base.id);
    assert!(
        cli.files().eq(reference.files()),
        "the git CLI and GitSource agree"
    );
    eprintln!(
        "snapshot: {} files, {} bytes",
        reference.len(),
        reference.total_bytes()
    );

    let mut g = c.benchmark_group("git_snapshot_10k");
    g.sample_size(10);
    g.bench_function("git_cli", |b| {
        b.iter(|| black_box(git_cli_snapshot(dir, &base.id)))
    });
    g.bench_function("gitsource_cold", |b| {
        b.iter(|| {
            let s = GitSource::open(dir).expect("open");
            black_box(s.snapshot_blocking(base, None).expect("snapshot"))
        })
    });
    let blobs_only =
        GitSource::open_with(dir, GitSourceOptions::default().with_cache(256 << 20, 0))
            .expect("open");
    blobs_only.snapshot_blocking(base, None).expect("warm");
    g.bench_function("gitsource_warm_blobs", |b| {
        b.iter(|| black_box(blobs_only.snapshot_blocking(base, None).expect("snapshot")))
    });
    let warm = GitSource::open(dir).expect("open");
    warm.snapshot_blocking(base, None).expect("warm");
    g.bench_function("gitsource_warm", |b| {
        b.iter(|| black_box(warm.snapshot_blocking(base, None).expect("snapshot")))
    });
    g.finish();

    let mut g = c.benchmark_group("git_incremental_10k");
    g.sample_size(10);
    let last = &revs[revs.len() - 1];
    g.bench_function("full_reload_render", |b| {
        b.iter(|| {
            let s = GitSource::open(dir).expect("open");
            let snap = s.snapshot_blocking(last, None).expect("snapshot");
            let mut r = Renderer::new(RenderOptions::default()).expect("renderer");
            black_box(r.render(&snap).expect("render"))
        })
    });
    {
        let s = GitSource::open(dir).expect("open");
        let mut r = Renderer::new(RenderOptions::default()).expect("renderer");
        r.render(&s.snapshot_blocking(base, None).expect("snapshot"))
            .expect("render");
        let mut idx = 0;
        g.bench_function("incremental_reload_render", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    idx = (idx + 1) % revs.len();
                    let snap = s.snapshot_blocking(&revs[idx], None).expect("snapshot");
                    black_box(r.render(&snap).expect("render"));
                }
                start.elapsed()
            })
        });
        let stats = r.stats();
        eprintln!("renderer, last incremental render: {stats:?}");
    }
    {
        let s = GitSource::open(dir).expect("open");
        s.snapshot_blocking(base, None).expect("snapshot");
        let mut idx = 0;
        g.bench_function("incremental_snapshot", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    idx = (idx + 1) % revs.len();
                    black_box(s.snapshot_blocking(&revs[idx], None).expect("snapshot"));
                }
                start.elapsed()
            })
        });
    }
    {
        let s = GitSource::open(dir).expect("open");
        let mut prev = s.snapshot_blocking(base, None).expect("snapshot");
        let mut idx = 0;
        g.bench_function("snapshot_incremental_api", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let next = (idx + 1) % revs.len();
                    let start = Instant::now();
                    let snap = s
                        .snapshot_incremental(&prev, &revs[idx], &revs[next], None)
                        .expect("snapshot");
                    total += start.elapsed();
                    prev = snap;
                    idx = next;
                }
                total
            })
        });
    }
    g.finish();
}

/// `git_snapshot_deep_10k`: the git CLI and a cold `GitSource` on a
/// repository with deep delta chains.
fn deep_snapshot(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let start = Instant::now();
    let commits = build_repo(dir, DEEP_COMMITS, DEEP_PER_COMMIT);
    repack_deep(dir);
    let tip = commits.last().expect("commits");
    let (longest, mean) = delta_chains(dir, tip);
    eprintln!(
        "generated {FILES} files + {DEEP_COMMITS} commits of {DEEP_PER_COMMIT} files, repacked \
         in {:?}: longest delta chain {longest}, mean chain of the snapshot's blobs {mean:.1}",
        start.elapsed()
    );
    assert!(longest >= 40, "deep delta chains: {longest}");
    let probe = GitSource::open(dir).expect("open");
    let rev = probe.resolve_blocking(tip).expect("resolve");
    let reference = probe.snapshot_blocking(&rev, None).expect("snapshot");
    let cli = git_cli_snapshot(dir, &rev.id);
    assert!(
        cli.files().eq(reference.files()),
        "the git CLI and GitSource agree"
    );
    let mut g = c.benchmark_group("git_snapshot_deep_10k");
    g.sample_size(20);
    g.bench_function("git_cli", |b| {
        b.iter(|| black_box(git_cli_snapshot(dir, &rev.id)))
    });
    g.bench_function("gitsource_cold", |b| {
        b.iter(|| {
            let s = GitSource::open(dir).expect("open");
            black_box(s.snapshot_blocking(&rev, None).expect("snapshot"))
        })
    });
    g.finish();
}

criterion_group!(git_benches, benches, deep_snapshot);
criterion_main!(git_benches);
