//! A seeded random-input loop for the renderer and for `gitops_diff::compare`
//! (cargo-fuzz needs a nightly toolchain; this runs on stable).
//!
//! ```text
//! GITOPS_FUZZ_SECONDS=30 GITOPS_FUZZ_SEED=42 cargo run --release -p gitops-fuzz
//! ```
//!
//! Inputs are real manifests of the corpus (`../shared/corpus`, or
//! `GITOPS_FUZZ_CORPUS`; a few built-in manifests when it is missing),
//! mutated three ways: raw bytes (flips, insertions, deletions, splices),
//! YAML tokens (anchors, aliases, brackets, document markers, tags, merge
//! keys, deep nesting, odd scalars, duplicated and re-indented lines), and
//! values (a parsed manifest's lists duplicated, keys removed or retyped,
//! then written out as YAML or JSON). Each input is rendered as a `.yaml`
//! and a `.json` file; objects and mutated values are compared with
//! `compare` (`compare(x, x)` of a rendered object must be empty).
//!
//! It fails (exit code 1, the input written to `target/fuzz-failures/`) on
//! any panic, even one the renderer catches, and on an input that takes
//! longer than `GITOPS_FUZZ_MAX_MS` (default 2000 ms; a 4 MiB file renders
//! in well under a second). It runs `GITOPS_FUZZ_SECONDS` (default 30)
//! and prints the seed (`GITOPS_FUZZ_SEED`, default from the clock) so a
//! failure can be replayed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "a test harness: failing loudly is its job"
)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gitops_core::Snapshot;
use gitops_core::{RenderOptions, Renderer};
use gitops_diff::{BuiltinLists, DiffOptions, FieldSet, GroupKind, compare};
use serde_json::{Value, json};

/// splitmix64: a reproducible stream from the printed seed (no dependency
/// needed for that).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

const TOKENS: &[&str] = &[
    "&a ",
    "*a",
    "&b ",
    "*b",
    "*undefined",
    "<<: *a\n",
    "[",
    "]",
    "{",
    "}",
    ", ",
    ": ",
    "- ",
    "? ",
    "---\n",
    "...\n",
    "!tag ",
    "!!str ",
    "!!binary ",
    "|\n",
    ">-\n",
    "\"\\u0000\"",
    "'",
    "\"",
    "#",
    "\t",
    "\r\n",
    "%YAML 1.1\n---\n",
    "%TAG ! tag:x,2000:\n",
    ".nan",
    ".inf",
    "1e999",
    "0x1F",
    "0o17",
    "~",
    "yes",
    "null",
    "123456789012345678901234567890",
    "\u{feff}",
    "\u{1b}[31m",
    "\n  ",
    "\n    - name: x\n",
    "name: a\n",
    "containerPort: 80\n",
];

const SEEDS: &[&str] = &[
    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, labels: &l {app: web}}\nspec:\n  selector: {matchLabels: *l}\n  template:\n    metadata: {labels: *l}\n    spec:\n      containers:\n      - name: app\n        image: web:1\n        env: [{name: A, value: '1'}]\n        ports: [{containerPort: 80}]\n",
    "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  ports: [{port: 80, targetPort: 8080}]\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n",
    "{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": [{\"apiVersion\": \"v1\", \"kind\": \"Secret\", \"metadata\": {\"name\": \"s\"}, \"stringData\": {\"k\": \"v\"}}]}",
];

fn load_corpus(dir: &Path, out: &mut Vec<Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            load_corpus(&p, out);
        } else if matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) && let Ok(data) = std::fs::read(&p)
            && data.len() < 256 * 1024
        {
            out.push(data);
        }
    }
}

fn mutate_bytes(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8]) {
    for _ in 0..=rng.below(8) {
        let at = rng.below(data.len() + 1);
        match rng.below(6) {
            0 if !data.is_empty() => {
                let i = at.min(data.len() - 1);
                data[i] ^= 1 << rng.below(8);
            }
            1 => data.insert(at, rng.next() as u8),
            2 if at < data.len() => {
                let end = (at + rng.below(16)).min(data.len());
                data.drain(at..end);
            }
            3 => {
                let from = rng.below(other.len() + 1);
                let end = (from + rng.below(64)).min(other.len());
                let chunk = other[from..end].to_vec();
                data.splice(at..at, chunk);
            }
            4 => data.truncate(at),
            _ => {
                let end = (at + rng.below(32)).min(data.len());
                let chunk = data[at..end].to_vec();
                data.splice(at..at, chunk);
            }
        }
    }
}

fn mutate_text(rng: &mut Rng, text: &str) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for _ in 0..=rng.below(6) {
        let i = rng.below(lines.len() + 1);
        match rng.below(7) {
            0 => {
                // A token inside a line.
                let token = rng.pick(TOKENS).to_string();
                match lines.get_mut(i) {
                    Some(l) => {
                        let mut at = rng.below(l.len() + 1);
                        while !l.is_char_boundary(at) {
                            at -= 1;
                        }
                        l.insert_str(at, &token);
                    }
                    None => lines.push(token),
                }
            }
            1 if i < lines.len() => {
                let l = lines[i].clone();
                lines.insert(i, l);
            }
            2 if i < lines.len() => {
                lines.remove(i);
            }
            3 if i < lines.len() => {
                let indent = " ".repeat(rng.below(5));
                lines[i] = format!("{indent}{}", lines[i]);
            }
            4 => {
                // Deep nesting, up to far past the limit.
                let depth = 1 << rng.below(16);
                let (open, close) = if rng.chance(2) {
                    ("[", "]")
                } else {
                    ("{a: ", "}")
                };
                let balanced = rng.chance(2);
                lines.insert(
                    i.min(lines.len()),
                    format!(
                        "deep: {}{}",
                        open.repeat(depth),
                        if balanced {
                            close.repeat(depth)
                        } else {
                            String::new()
                        }
                    ),
                );
            }
            5 => {
                // An alias fan-out.
                let width = 1 + rng.below(2000);
                let mut s = String::from("x: &a [\"lol\", \"lol\"]\ny: &b [");
                s.push_str(&vec!["*a"; width].join(","));
                s.push_str("]\nz: [");
                s.push_str(&vec!["*b"; width].join(","));
                s.push(']');
                lines.insert(i.min(lines.len()), s);
            }
            _ if lines.len() > 1 => {
                let j = rng.below(lines.len());
                let k = rng.below(lines.len());
                lines.swap(j, k);
            }
            _ => {}
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

fn mutate_value(rng: &mut Rng, v: &mut Value, depth: usize) {
    if depth > 12 {
        return;
    }
    match v {
        Value::Object(m) if !m.is_empty() => {
            let keys: Vec<String> = m.keys().cloned().collect();
            let k = rng.pick(&keys).clone();
            match rng.below(5) {
                0 => {
                    m.remove(&k);
                }
                1 => {
                    let choices = [
                        json!(null),
                        json!(""),
                        json!(0),
                        json!(1.5),
                        json!(false),
                        json!([]),
                        json!({}),
                        json!("80"),
                        json!([{"name": "a"}, {"name": "a"}]),
                    ];
                    let replacement = rng.pick(&choices);
                    m.insert(k, replacement.clone());
                }
                _ => {
                    if let Some(child) = m.get_mut(&k) {
                        mutate_value(rng, child, depth + 1);
                    }
                }
            }
        }
        Value::Array(a) if !a.is_empty() => {
            let i = rng.below(a.len());
            match rng.below(4) {
                0 => {
                    let item = a[i].clone();
                    a.push(item); // a duplicate key
                }
                1 => {
                    a.remove(i);
                }
                _ => mutate_value(rng, &mut a[i], depth + 1),
            }
        }
        _ => {}
    }
}

static PANICKED: AtomicBool = AtomicBool::new(false);

struct Failure(String);

fn fail(input: &[u8], why: String, seed: u64, iteration: u64) -> Failure {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-failures");
    let _ = std::fs::create_dir_all(&dir);
    let file = dir.join(format!("seed-{seed}-iteration-{iteration}.bin"));
    let _ = std::fs::write(&file, input);
    Failure(format!(
        "{why}\n  seed {seed}, iteration {iteration}; input written to {}",
        file.display()
    ))
}

fn diff_options() -> DiffOptions {
    DiffOptions::default()
}

fn check_compare(a: &Value, b: &Value) {
    let lists = BuiltinLists;
    let gk = GroupKind::new(
        a.get("apiVersion")
            .and_then(Value::as_str)
            .and_then(|v| v.split_once('/').map(|(g, _)| g))
            .unwrap_or(""),
        a.get("kind").and_then(Value::as_str).unwrap_or(""),
    );
    let owned = FieldSet::declared_by(b, &lists, &gk);
    let options = diff_options();
    let _ = compare(a, b, None, &options);
    let _ = compare(a, b, Some(&owned), &options);
    if let Ok(d) = compare(a, b, None, &options) {
        let _ = d.json_patch();
        let _ = d.merge_patch();
    }
}

fn run_one(
    rng: &mut Rng,
    corpus: &[Vec<u8>],
    values: &[Value],
    renderer: &mut Renderer,
    seed: u64,
    iteration: u64,
    max: Duration,
) -> Result<(), Failure> {
    let base = rng.pick(corpus).clone();
    let other = rng.pick(corpus);
    let input: Vec<u8> = match rng.below(3) {
        0 => {
            let mut b = base;
            mutate_bytes(rng, &mut b, other);
            b
        }
        1 => mutate_text(rng, &String::from_utf8_lossy(&base)).into_bytes(),
        _ => {
            let mut v = rng.pick(values).clone();
            mutate_value(rng, &mut v, 0);
            if rng.chance(2) {
                serde_json::to_vec(&v).unwrap_or_default()
            } else {
                serde_yaml::to_string(&v).unwrap_or_default().into_bytes()
            }
        }
    };
    let started = Instant::now();
    let snapshot = Snapshot::from_files([("x.yaml", &input), ("x.json", &input)]);
    let rendered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let desired = renderer.render(&snapshot);
        if let Ok(desired) = &desired {
            for (key, object) in desired.iter() {
                let v = object.object.as_value();
                let d = compare(v, v, None, &diff_options());
                match d {
                    Ok(d) if d.is_empty() => {}
                    other => {
                        return Err(format!("compare(x, x) of {key} is not empty: {other:?}"));
                    }
                }
                check_compare(v, rng_value(values, iteration));
            }
        }
        Ok(())
    }));
    let elapsed = started.elapsed();
    match rendered {
        Err(_) => return Err(fail(&input, "panic".into(), seed, iteration)),
        Ok(Err(why)) => return Err(fail(&input, why, seed, iteration)),
        Ok(Ok(())) => {}
    }
    if PANICKED.swap(false, Ordering::SeqCst) {
        return Err(fail(
            &input,
            "a panic inside the renderer (caught there)".into(),
            seed,
            iteration,
        ));
    }
    if elapsed > max {
        return Err(fail(
            &input,
            format!("took {elapsed:?}, over the bound of {max:?}"),
            seed,
            iteration,
        ));
    }
    // compare on mutated values, with each other.
    let mut a = rng.pick(values).clone();
    let mut b = rng.pick(values).clone();
    mutate_value(rng, &mut a, 0);
    mutate_value(rng, &mut b, 0);
    let started = Instant::now();
    let r = std::panic::catch_unwind(|| check_compare(&a, &b));
    if r.is_err() || PANICKED.swap(false, Ordering::SeqCst) {
        let input = serde_json::to_vec(&json!({"desired": a, "live": b})).unwrap_or_default();
        return Err(fail(&input, "panic in compare".into(), seed, iteration));
    }
    if started.elapsed() > max {
        let input = serde_json::to_vec(&json!({"desired": a, "live": b})).unwrap_or_default();
        return Err(fail(&input, "compare too slow".into(), seed, iteration));
    }
    Ok(())
}

fn rng_value(values: &[Value], i: u64) -> &Value {
    &values[(i as usize) % values.len()]
}

fn main() {
    let env = |name: &str| std::env::var(name).ok();
    let seconds: u64 = env("GITOPS_FUZZ_SECONDS")
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let max = Duration::from_millis(
        env("GITOPS_FUZZ_MAX_MS")
            .and_then(|s| s.parse().ok())
            .unwrap_or(2000),
    );
    let seed: u64 = env("GITOPS_FUZZ_SEED")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    let dir = env("GITOPS_FUZZ_CORPUS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"),
        PathBuf::from,
    );
    let mut corpus = Vec::new();
    load_corpus(&dir, &mut corpus);
    let from_corpus = corpus.len();
    corpus.extend(SEEDS.iter().map(|s| s.as_bytes().to_vec()));
    let values: Vec<Value> = corpus
        .iter()
        .filter_map(|d| std::str::from_utf8(d).ok())
        .flat_map(|t| {
            serde_yaml::Deserializer::from_str(t)
                .take(20)
                .filter_map(|doc| serde::Deserialize::deserialize(doc).ok())
                .filter(Value::is_object)
                .collect::<Vec<Value>>()
        })
        .collect();
    println!(
        "fuzz: seed {seed}, {seconds} s, {from_corpus} corpus files from {} (+{} built in), {} values, bound {max:?} per input",
        dir.display(),
        SEEDS.len(),
        values.len()
    );
    // Every panic is a failure, also one the renderer catches and reports.
    std::panic::set_hook(Box::new(|info| {
        PANICKED.store(true, Ordering::SeqCst);
        eprintln!("fuzz: panic: {info}");
    }));
    let mut rng = Rng(seed);
    let mut renderer = Renderer::new(RenderOptions::default()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut iteration = 0u64;
    while Instant::now() < deadline {
        if let Err(Failure(why)) = run_one(
            &mut rng,
            &corpus,
            &values,
            &mut renderer,
            seed,
            iteration,
            max,
        ) {
            eprintln!("fuzz: FAILED: {why}");
            std::process::exit(1);
        }
        iteration += 1;
    }
    println!("fuzz: {iteration} inputs, no panic, none over {max:?}");
}
