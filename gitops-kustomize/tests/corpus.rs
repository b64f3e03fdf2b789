//! Differential test: every kustomization root of the shared corpus is built
//! with this crate and with `kubectl kustomize` (v5.5); the objects must be
//! equal as multisets of JSON values, and roots kubectl refuses must be
//! refused too.
//!
//! Locally, a missing corpus or kubectl skips with a message; in CI (`CI`
//! set) either is a failure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use gitops_core::Snapshot;
use serde_json::Value;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus")
}

fn in_ci() -> bool {
    std::env::var_os("CI").is_some()
}

/// Reads a directory into a snapshot: regular files only, symlinks not followed.
fn snapshot_of(dir: &Path) -> Snapshot {
    fn walk(base: &Path, dir: &Path, snap: &mut Snapshot) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = rd.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let Ok(ft) = e.file_type() else { continue };
            let p = e.path();
            if ft.is_dir() {
                walk(base, &p, snap);
            } else if ft.is_file()
                && let (Ok(rel), Ok(data)) = (p.strip_prefix(base), std::fs::read(&p))
            {
                let rel = rel.to_string_lossy().replace('\\', "/");
                snap.insert(rel, gitops_core::Blob::from_bytes(data));
            }
        }
    }
    let mut s = Snapshot::new();
    walk(dir, dir, &mut s);
    s
}

fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let sorted: BTreeMap<&String, Value> =
                m.iter().map(|(k, v)| (k, canonical(v))).collect();
            let mut out = serde_json::Map::new();
            for (k, v) in sorted {
                out.insert(k.clone(), v);
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

fn multiset(objs: &[Value]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for o in objs {
        *m.entry(serde_json::to_string(&canonical(o)).unwrap_or_default())
            .or_insert(0) += 1;
    }
    m
}

/// Runs `kubectl kustomize`; with `CORPUS_KUBECTL_CACHE` set (a directory),
/// its outputs are kept there between runs (for iterating locally).
/// Paths where two values differ (at most `limit`).
fn diff_paths(a: &Value, b: &Value, at: String, out: &mut Vec<String>, limit: usize) {
    if out.len() >= limit || a == b {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys()) {
                let (va, vb) = (
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                );
                diff_paths(va, vb, format!("{at}/{k}"), out, limit);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                diff_paths(va, vb, format!("{at}/{i}"), out, limit);
            }
        }
        _ => out.push(format!("{at}: kubectl {} / ours {}", short(a), short(b))),
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 160 {
        format!("{}...", &s[..160])
    } else {
        s
    }
}

fn key_of(v: &Value) -> (Value, Value) {
    (v["kind"].clone(), v["metadata"]["name"].clone())
}

fn kubectl(dir: &Path) -> Option<Result<Vec<Value>, String>> {
    let cache = std::env::var_os("CORPUS_KUBECTL_CACHE").map(PathBuf::from);
    let key = dir.to_string_lossy().replace(['/', '.'], "_");
    let cached = cache
        .as_ref()
        .and_then(|c| std::fs::read_to_string(c.join(&key)).ok());
    let (success, text, stderr) = match cached {
        Some(t) => match t.strip_prefix("ERR\n") {
            Some(e) => (false, String::new(), e.to_owned()),
            None => (true, t, String::new()),
        },
        None => {
            let out = Command::new("kubectl")
                .arg("kustomize")
                .arg(dir)
                .output()
                .ok()?;
            let r = (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            );
            if let Some(c) = &cache {
                let body = if r.0 {
                    r.1.clone()
                } else {
                    format!("ERR\n{}", r.2)
                };
                let _ = std::fs::create_dir_all(c);
                let _ = std::fs::write(c.join(&key), body);
            }
            r
        }
    };
    if !success {
        return Some(Err(stderr));
    }
    Some(parse_documents(&text))
}

/// kubectl's output: YAML documents (string keys only), empty ones skipped.
fn parse_documents(text: &str) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let v: Value = serde::Deserialize::deserialize(doc).map_err(|e| e.to_string())?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

struct Outcome {
    root: String,
    ok: bool,
    buildable: bool,
    detail: String,
}

fn compare(root: &str, snap: &Snapshot, rel: &str, disk: &Path) -> Option<Outcome> {
    let expected = kubectl(disk)?;
    let ours = std::panic::catch_unwind(|| gitops_kustomize::build(snap, rel));
    let (ok, detail) = match (&expected, ours) {
        (_, Err(_)) => (false, "PANIC".to_owned()),
        (Ok(exp), Ok(Ok(got))) => {
            let (a, b) = (multiset(exp), multiset(&got));
            if a == b {
                (true, String::new())
            } else {
                let mut paths = Vec::new();
                for e in exp {
                    if got.contains(e) {
                        continue;
                    }
                    match got.iter().find(|g| key_of(g) == key_of(e)) {
                        Some(g) => diff_paths(
                            e,
                            g,
                            format!("{}:{}", e["kind"], e["metadata"]["name"]),
                            &mut paths,
                            6,
                        ),
                        None => {
                            paths.push(format!("missing {} {}", e["kind"], e["metadata"]["name"]))
                        }
                    }
                    if paths.len() >= 6 {
                        break;
                    }
                }
                let missing: Vec<&String> = a.keys().filter(|k| !b.contains_key(*k)).collect();
                let extra: Vec<&String> = b.keys().filter(|k| !a.contains_key(*k)).collect();
                (
                    false,
                    format!(
                        "objects differ ({} expected, {} built)\n    {}\n  kubectl only: {}\n  ours only:    {}",
                        exp.len(),
                        got.len(),
                        paths.join("\n    "),
                        missing.first().map_or("-", |s| s.as_str()),
                        extra.first().map_or("-", |s| s.as_str())
                    ),
                )
            }
        }
        (Ok(_), Ok(Err(e))) => (false, format!("we refused a buildable root: {e}")),
        (Err(_), Ok(Err(_))) => (true, String::new()),
        (Err(k), Ok(Ok(_))) => (
            false,
            format!(
                "kubectl refuses ({}) but we built it",
                k.lines().next().unwrap_or("")
            ),
        ),
    };
    Some(Outcome {
        root: root.to_owned(),
        ok,
        buildable: expected.is_ok(),
        detail,
    })
}

#[test]
fn corpus_matches_kubectl_kustomize() {
    let base = corpus();
    let roots_tsv = base.join("kustomize/roots.tsv");
    let Ok(tsv) = std::fs::read_to_string(&roots_tsv) else {
        assert!(!in_ci(), "CI: corpus missing at {}", roots_tsv.display());
        eprintln!("SKIP: corpus not found at {}", roots_tsv.display());
        return;
    };
    if Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        assert!(!in_ci(), "CI: kubectl is not installed");
        eprintln!("SKIP: kubectl not installed");
        return;
    }
    let filter = std::env::var("CORPUS_FILTER").unwrap_or_default();
    let mut snaps: BTreeMap<String, Snapshot> = BTreeMap::new();
    let mut outcomes = Vec::new();
    for line in tsv.lines().skip(1) {
        let Some(root) = line.split('\t').next() else {
            continue;
        };
        if !root.contains(filter.as_str()) {
            continue;
        }
        let (repo, rel) = root.split_once('/').unwrap_or((root, ""));
        let snap = snaps
            .entry(repo.to_owned())
            .or_insert_with(|| snapshot_of(&base.join("kustomize").join(repo)));
        if let Some(o) = compare(root, snap, rel, &base.join("kustomize").join(root)) {
            outcomes.push(o);
        }
    }
    // Online Boutique: its kustomization and the overlays under tests/.
    let ob = base.join("online-boutique");
    if ob.join("kustomize/kustomization.yaml").is_file()
        && "online-boutique".contains(filter.as_str())
    {
        let snap = snapshot_of(&ob);
        let mut dirs = vec!["kustomize".to_owned()];
        for (p, b) in snap.files() {
            if let Some(d) = p.strip_suffix("/kustomization.yaml") {
                let text = String::from_utf8_lossy(&b.data);
                if d.starts_with("kustomize/tests/") && !text.contains("kind: Component") {
                    dirs.push(d.to_owned());
                }
            }
        }
        for d in dirs {
            if let Some(o) = compare(&format!("online-boutique/{d}"), &snap, &d, &ob.join(&d)) {
                outcomes.push(o);
            }
        }
    }
    let buildable = outcomes.iter().filter(|o| o.buildable).count();
    let passed_buildable = outcomes.iter().filter(|o| o.buildable && o.ok).count();
    let refused = outcomes.len() - buildable;
    let refused_ok = outcomes.iter().filter(|o| !o.buildable && o.ok).count();
    for o in outcomes.iter().filter(|o| !o.ok) {
        eprintln!("FAIL {}: {}", o.root, o.detail);
    }
    let rate = if buildable == 0 {
        1.0
    } else {
        passed_buildable as f64 / buildable as f64
    };
    eprintln!(
        "corpus: {passed_buildable}/{buildable} buildable roots identical to kubectl kustomize ({:.1}%), {refused_ok}/{refused} refused roots refused",
        rate * 100.0
    );
    assert!(
        outcomes.iter().all(|o| o.detail != "PANIC"),
        "a root panicked"
    );
    if filter.is_empty() {
        assert!(
            rate >= MIN_RATE,
            "pass rate {rate:.3} fell below {MIN_RATE}"
        );
        assert_eq!(
            refused_ok, refused,
            "every root kubectl refuses must be refused"
        );
    }
}

/// The pass rate reached on the corpus (135/135 buildable roots at the time of writing).
const MIN_RATE: f64 = 1.0;

type Built = Result<Vec<(Value, gitops_kustomize::Origin)>, String>;

fn uncached(snap: &Snapshot, roots: &[String]) -> Vec<Built> {
    roots
        .iter()
        .map(|r| gitops_kustomize::build_with_origins(snap, r).map_err(|e| e.to_string()))
        .collect()
}

fn cached(k: &gitops_kustomize::Kustomize, snap: &Snapshot, roots: &[String]) -> Vec<Built> {
    roots
        .iter()
        .map(|r| k.build_with_origins(snap, r).map_err(|e| e.to_string()))
        .collect()
}

/// The roots of `roots.tsv` under `base`, by repository (relative to
/// it); `None` (after a skip notice, or failing in CI) without a corpus.
fn roots_by_repo(base: &Path) -> Option<BTreeMap<String, Vec<String>>> {
    let Ok(tsv) = std::fs::read_to_string(base.join("roots.tsv")) else {
        assert!(!in_ci(), "CI: corpus missing");
        eprintln!("SKIP: corpus not found");
        return None;
    };
    let mut by_repo: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in tsv.lines().skip(1) {
        if let Some(root) = line.split('\t').next() {
            let (repo, rel) = root.split_once('/').unwrap_or((root, ""));
            by_repo
                .entry(repo.to_owned())
                .or_default()
                .push(rel.to_owned());
        }
    }
    Some(by_repo)
}

/// The cache changes nothing: every corpus root gives the same objects,
/// origins and errors cold, warm, after a commit that changes a
/// kustomization file, one that adds a second kustomization file beside one
/// (an absent file becoming present), and after going back.
#[test]
fn corpus_builds_are_the_same_through_the_cache() {
    let base = corpus().join("kustomize");
    let Some(by_repo) = roots_by_repo(&base) else {
        return;
    };
    let k = gitops_kustomize::Kustomize::new();
    let mut compared = 0;
    for (repo, roots) in &by_repo {
        let snap = snapshot_of(&base.join(repo));
        let expected = uncached(&snap, roots);
        assert_eq!(cached(&k, &snap, roots), expected, "{repo}: cold");
        let before = k.cache_stats();
        assert_eq!(cached(&k, &snap, roots), expected, "{repo}: warm");
        let after = k.cache_stats();
        let ok = expected.iter().filter(|e| e.is_ok()).count() as u64;
        assert!(
            after.hits - before.hits >= ok,
            "{repo}: warm builds reuse their outputs"
        );
        compared += 2 * roots.len();

        // Commits: a kustomization file in the middle of the path order
        // changed, then a second kustomization file beside it (an absent
        // file becoming present), then back (on a few roots per repository,
        // to keep the test short).
        let kfiles: Vec<&str> = snap
            .files()
            .map(|(p, _)| p)
            .filter(|p| p.ends_with("kustomization.yaml"))
            .collect();
        let Some(p) = kfiles.get(kfiles.len() / 2).map(|p| (*p).to_owned()) else {
            continue;
        };
        let some: Vec<String> = roots.iter().take(6).cloned().collect();
        let old = snap.get(&p).map(|b| b.data.to_vec()).unwrap_or_default();
        let mut edited = snap.clone();
        let mut new = old.clone();
        new.extend_from_slice(b"\ncommonAnnotations:\n  cache-test: changed\n");
        edited.insert(p.clone(), gitops_core::Blob::from_bytes(new));
        let mut second = snap.clone();
        second.insert(
            p.replace("kustomization.yaml", "kustomization.yml"),
            gitops_core::Blob::from_bytes(old),
        );
        for (what, s) in [("edited", &edited), ("second file", &second)] {
            assert_eq!(
                cached(&k, s, &some),
                uncached(s, &some),
                "{repo}: {p} {what}"
            );
        }
        let back: Vec<Built> = expected.iter().take(6).cloned().collect();
        assert_eq!(cached(&k, &snap, &some), back, "{repo}: {p} back");
        compared += 3 * some.len();
    }
    eprintln!(
        "cache: {compared} builds identical with and without the cache; {:?}",
        k.cache_stats()
    );
}

/// A build reads the bytes of no file outside its [`LoadScope`]: with every
/// such file's bytes replaced by invalid YAML (path kept, null id), every
/// corpus root, buildable or refused, gives the same objects, origins and
/// errors. This is what lets a reader (the `render` example) leave those
/// files unread.
///
/// [`LoadScope`]: gitops_kustomize::LoadScope
#[test]
fn corpus_builds_read_only_their_load_scope() {
    let base = corpus().join("kustomize");
    let Some(by_repo) = roots_by_repo(&base) else {
        return;
    };
    let unread = gitops_core::Blob::with_id(
        gitops_core::BlobId::from_hex("0".repeat(40)),
        b"unread: [\n\t\0".to_vec(),
    );
    let (mut compared, mut left_out) = (0, 0);
    for (repo, roots) in &by_repo {
        let snap = snapshot_of(&base.join(repo));
        let scope = gitops_kustomize::LoadScope::new(snap.files().map(|(p, _)| p));
        let mut scoped = Snapshot::new();
        for (p, b) in snap.files() {
            if scope.contains(p) {
                scoped.insert(p, b.clone());
            } else {
                scoped.insert(p, unread.clone());
                left_out += 1;
            }
        }
        assert_eq!(uncached(&scoped, roots), uncached(&snap, roots), "{repo}");
        compared += roots.len();
    }
    assert!(left_out > 0, "some corpus files are out of scope");
    eprintln!("load scope: {compared} roots identical with {left_out} files left unread");
}
