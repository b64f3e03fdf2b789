//! The examples as command-line tools: `--help`, argument errors, exit
//! codes, the `plan` contract (text and JSON) and closed pipes. Runs the
//! example binaries `cargo test` builds beside this test binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const EXAMPLES: &[&str] = &[
    "quickstart",
    "plan",
    "audit",
    "verify",
    "controller",
    "render",
];

/// target/debug/examples/NAME, next to target/debug/deps/<this test>.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("examples");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} not built (cargo test builds the examples)",
        path.display()
    );
    path
}

fn run(name: &str, args: &[&str]) -> Output {
    Command::new(example(name))
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_is_on_stdout_with_exit_0() {
    for name in EXAMPLES {
        let out = run(name, &["--help"]);
        assert_eq!(out.status.code(), Some(0), "{name} --help");
        assert!(
            text(&out.stdout).contains("Usage:"),
            "{name}: {}",
            text(&out.stdout)
        );
        assert!(out.stderr.is_empty(), "{name}: {}", text(&out.stderr));
    }
}

#[test]
fn a_bad_argument_is_an_error_on_stderr_with_exit_1() {
    for name in EXAMPLES {
        let out = run(name, &["--no-such-option"]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert!(out.stdout.is_empty(), "{name}: {}", text(&out.stdout));
        assert!(
            text(&out.stderr).contains("error:"),
            "{name}: {}",
            text(&out.stderr)
        );
    }
}

/// Runs git in `dir` as "Dev", with no user or system configuration.
fn git_in(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=Dev", "-c", "user.email=dev@example.com"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// A repository with `prod` (two replicas) and `dev` (three) branches.
fn repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| git_in(dir.path(), args);
    git(&["init", "-q", "-b", "prod"]);
    std::fs::write(dir.path().join("app.yaml"), app(2, false)).unwrap();
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "two replicas"]);
    git(&["checkout", "-q", "-b", "dev"]);
    std::fs::write(dir.path().join("app.yaml"), app(3, false)).unwrap();
    git(&["commit", "-q", "-am", "three replicas"]);
    dir
}

fn app(replicas: u32, owned: bool) -> String {
    let labels = if owned {
        "\n  labels: {gitops-rs.io/owner: gitops-plan}"
    } else {
        ""
    };
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: default{labels}\n\
         spec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    \
         metadata: {{labels: {{app: web}}}}\n    spec: {{containers: [{{name: web, image: 'nginx:1.27'}}]}}\n"
    )
}

fn plan(repo: &Path, args: &[&str]) -> Output {
    let mut all = vec!["--repo", repo.to_str().unwrap()];
    all.extend_from_slice(args);
    run("plan", &all)
}

#[test]
fn plan_exit_codes_follow_terraform_detailed_exitcode() {
    let repo = repository();
    // Against an empty runtime: everything is a create.
    let out = plan(repo.path(), &["--ref", "prod"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("create"),
        "{}",
        text(&out.stdout)
    );
    // A revision against itself: in sync.
    let out = plan(repo.path(), &["--ref", "prod", "--from", "prod"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // A promotion preview: dev's replicas would change prod.
    let out = plan(repo.path(), &["--ref", "dev", "--from", "prod"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("spec.replicas"),
        "{}",
        text(&out.stdout)
    );
    // An unknown reference is an error, on stderr.
    let out = plan(repo.path(), &["--ref", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("nope"), "{}", text(&out.stderr));
}

#[test]
fn plan_json_is_the_documented_v1_document() {
    let repo = repository();
    let out = plan(
        repo.path(),
        &["--ref", "dev", "--from", "prod", "--output", "json"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["schema"], "gitops-rs.plan/v1");
    assert_eq!(doc["revision"]["reference"], "dev");
    assert_eq!(doc["revision"]["commit"].as_str().unwrap().len(), 40);
    assert_eq!(doc["baseline"]["kind"], "revision");
    assert_eq!(doc["baseline"]["reference"], "prod");
    assert_eq!(doc["in_sync"], false);
    assert_eq!(doc["blocked"], false);
    assert_eq!(doc["summary"]["update"], 1);
    assert_eq!(
        doc["changes"],
        serde_json::json!([{
            "action": "update", "apiVersion": "apps/v1", "kind": "Deployment",
            "namespace": "default", "name": "web", "fields": ["spec.replicas"],
        }])
    );
    assert_eq!(doc["problems"], serde_json::json!([]));
}

#[test]
fn plan_against_live_yaml() {
    let repo = repository();
    let live = tempfile::tempdir().unwrap();
    let file = live.path().join("live.yaml");
    let file = file.to_str().unwrap();

    // What runs is what prod declares, owned by us: in sync.
    std::fs::write(file, app(2, true)).unwrap();
    let out = plan(repo.path(), &["--ref", "prod", "--live", file]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Someone scaled it: a change.
    std::fs::write(file, app(5, true)).unwrap();
    let out = plan(repo.path(), &["--ref", "prod", "--live", file]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    // Not ours (no owner label): a sync would be blocked, an error.
    std::fs::write(file, app(2, false)).unwrap();
    let out = plan(repo.path(), &["--ref", "prod", "--live", file]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("conflict"),
        "{}",
        text(&out.stderr)
    );
    // A broken live file names itself.
    std::fs::write(file, "kind: [").unwrap();
    let out = plan(repo.path(), &["--ref", "prod", "--live", file]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("live.yaml"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn live_and_kubeconfig_are_exclusive() {
    let out = run(
        "plan",
        &[
            "--repo",
            ".",
            "--ref",
            "main",
            "--live",
            "x",
            "--kubeconfig",
            "y",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot be used with"),
        "{}",
        text(&out.stderr)
    );
}

/// `quickstart | head -c 100`: the reader goes away early; the program
/// ends without a panic and with success.
#[test]
fn quickstart_ends_cleanly_on_a_closed_pipe() {
    let mut child = Command::new(example("quickstart"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 100];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // The read end is closed here (dropped above).
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(status.success(), "{status}: {stderr}");
}

/// `plan --kubeconfig` against a real API server (the gitops-kube test
/// harness): it plans, and it is read-only: planning twice finds the same
/// creates, because nothing was applied.
#[tokio::test]
async fn plan_against_a_cluster_is_read_only() {
    let Some(cluster) = gitops_kube::testing::shared_or_skip().await else {
        return;
    };
    let Some(kubeconfig) = cluster.kubeconfig_path() else {
        return; // a cluster from GITOPS_TEST_KUBECONFIG: no file to hand over
    };
    let repo = repository();
    let kubeconfig = kubeconfig.to_str().unwrap().to_owned();
    let args = [
        "--ref",
        "prod",
        "--kubeconfig",
        &kubeconfig,
        "--output",
        "json",
    ];
    for _ in 0..2 {
        let out = plan(repo.path(), &args);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["baseline"]["kind"], "cluster");
        assert_eq!(doc["summary"]["create"], 1, "{doc}");
    }
}

/// A repository of a base and dev/prod overlays (replicas and image per
/// environment), and a plain folder, committed on `main`.
fn overlays() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let file = dir.path().join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    };
    write("base/kustomization.yaml", "resources: [app.yaml]\n");
    write(
        "base/app.yaml",
        &app(1, false).replace("  namespace: default\n", ""),
    );
    for (env, replicas, tag) in [("dev", 1, "1.27"), ("prod", 3, "1.25")] {
        write(
            &format!("overlays/{env}/kustomization.yaml"),
            &format!(
                "resources: [../../base]\ncommonAnnotations: {{env: {env}}}\nreplicas: [{{name: web, count: {replicas}}}]\n\
                 images: [{{name: nginx, newTag: '{tag}'}}]\n"
            ),
        );
    }
    write(
        "plain/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
    );
    git_in(dir.path(), &["init", "-q", "-b", "main"]);
    git_in(dir.path(), &["add", "."]);
    git_in(dir.path(), &["commit", "-q", "-m", "overlays"]);
    dir
}

fn yaml_docs(bytes: &[u8]) -> Vec<Value> {
    let text = text(bytes);
    text.split("\n---\n")
        .map(|d| serde_yaml::from_str(d).unwrap())
        .collect()
}

#[test]
fn render_builds_overlays_plain_folders_and_commits() {
    let repo = overlays();
    let root = repo.path();
    // A kustomization, from the work tree.
    let out = run("render", &[root.join("overlays/prod").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let docs = yaml_docs(&out.stdout);
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["metadata"]["annotations"]["env"], "prod");
    assert_eq!(docs[0]["spec"]["replicas"], 3);
    assert_eq!(
        docs[0]["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.25"
    );
    // A plain folder: validated, namespace defaulted.
    let out = run("render", &[root.join("plain").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        yaml_docs(&out.stdout)[0]["metadata"]["namespace"],
        "default"
    );
    // A folder holding both overlays: each built by Kustomize, and the
    // same Deployment declared twice is an error.
    let out = run("render", &[root.join("overlays").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("Deployment.apps/default/web is declared twice"),
        "{}",
        text(&out.stderr)
    );
    // A commit, not the work tree: dev's image.
    let repo_arg = root.to_str().unwrap();
    let out = run(
        "render",
        &["--repo", repo_arg, "--ref", "main", "overlays/dev"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let docs = yaml_docs(&out.stdout);
    assert_eq!(
        docs[0]["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
    // Errors on stderr, exit 1.
    let out = run("render", &["--repo", repo_arg, "--ref", "main", "nowhere"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("nowhere"),
        "{}",
        text(&out.stderr)
    );
    std::fs::write(
        root.join("overlays/dev/kustomization.yaml"),
        "resources: [missing.yaml]\n",
    )
    .unwrap();
    let out = run("render", &[root.join("overlays/dev").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("overlays/dev/kustomization.yaml"),
        "{}",
        text(&out.stderr)
    );
}

/// `render` leaves unread the files no build can read (outside every
/// kustomization's folder and PATH), but keeps their paths: a reference to
/// one is still refused by the load restrictor, not reported missing, and a
/// folder without a kustomization is still reported as such.
#[test]
fn render_reports_files_outside_the_load_scope_as_a_full_read_would() {
    let dir = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let file = dir.path().join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    };
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n";
    write("shared/cm.yaml", cm);
    write("src/main.go", "package main\n");
    write("app/cm.yaml", cm);
    let root = dir.path().to_str().unwrap();
    let render = |kustomization: &str| {
        write("app/kustomization.yaml", kustomization);
        let app = dir.path().join("app");
        run("render", &["--root", root, app.to_str().unwrap()])
    };
    let out = render("resources: [cm.yaml]\nnamePrefix: p-\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(yaml_docs(&out.stdout)[0]["metadata"]["name"], "p-c");
    for (entry, error) in [
        (
            "../shared/cm.yaml",
            "app/kustomization.yaml: `resources` entry `../shared/cm.yaml`: `shared/cm.yaml` \
             is outside the kustomization root `app` (load restrictor: files must be under the root)",
        ),
        (
            "../shared/nowhere.yaml",
            "app/kustomization.yaml: `resources` entry `../shared/nowhere.yaml`: \
             `shared/nowhere.yaml` does not exist in the snapshot",
        ),
        (
            "../src",
            "src: no kustomization file (expected one of kustomization.yaml, kustomization.yml, Kustomization)",
        ),
    ] {
        let out = render(&format!("resources: [{entry}]\n"));
        assert_eq!(out.status.code(), Some(1), "{entry}: {}", text(&out.stdout));
        assert!(out.stdout.is_empty(), "{entry}");
        assert!(
            text(&out.stderr).contains(error),
            "{entry}: {}",
            text(&out.stderr)
        );
    }
    // A plain folder outside any kustomization reads its own files.
    let shared = dir.path().join("shared");
    let out = run("render", &["--root", root, shared.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(yaml_docs(&out.stdout)[0]["metadata"]["name"], "c");
}

/// A directory as a snapshot with every file read (what `render` reads
/// only in part).
fn full_snapshot(dir: &Path) -> gitops_core::Snapshot {
    fn walk(base: &Path, dir: &Path, snap: &mut gitops_core::Snapshot) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let (ft, p) = (e.file_type().unwrap(), e.path());
            if ft.is_dir() {
                walk(base, &p, snap);
            } else if ft.is_file() {
                let rel = p
                    .strip_prefix(base)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                snap.insert(
                    rel,
                    gitops_core::Blob::from_bytes(std::fs::read(&p).unwrap()),
                );
            }
        }
    }
    let mut snap = gitops_core::Snapshot::new();
    walk(dir, dir, &mut snap);
    snap
}

/// On every root of the shared Kustomize corpus, `render` (which reads
/// only the files a build can read, and prints with its own YAML writer)
/// gives what gitops-kustomize builds from the whole repository: its YAML
/// reads back as the same objects, in the same order; a refused root
/// exits 1 with the same errors.
#[test]
fn render_prints_what_a_full_read_builds_on_the_corpus() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/kustomize");
    let Ok(tsv) = std::fs::read_to_string(corpus.join("roots.tsv")) else {
        assert!(std::env::var_os("CI").is_none(), "CI: corpus missing");
        eprintln!("SKIP: corpus not found at {}", corpus.display());
        return;
    };
    let mut snaps = std::collections::BTreeMap::new();
    let (mut built, mut refused) = (0, 0);
    for line in tsv.lines().skip(1) {
        let root = line.split('\t').next().unwrap();
        if !corpus.join(root).is_dir() {
            continue; // a root kubectl refuses because it is missing
        }
        let (repo, rel) = root.split_once('/').unwrap_or((root, ""));
        let snap = snaps
            .entry(repo.to_owned())
            .or_insert_with(|| full_snapshot(&corpus.join(repo)));
        let repo_dir = corpus.join(repo);
        let out = run(
            "render",
            &[
                "--root",
                repo_dir.to_str().unwrap(),
                corpus.join(root).to_str().unwrap(),
            ],
        );
        match gitops_kustomize::build(snap, rel) {
            Ok(objects) => {
                assert_eq!(out.status.code(), Some(0), "{root}: {}", text(&out.stderr));
                let printed: Vec<Value> = serde_yaml::Deserializer::from_slice(&out.stdout)
                    .map(|d| serde::Deserialize::deserialize(d).unwrap())
                    .filter(|d: &Value| !d.is_null())
                    .collect();
                assert_eq!(printed.len(), objects.len(), "{root}");
                for (p, o) in printed.iter().zip(&objects) {
                    assert!(p == o, "{root}: printed\n{p}\nbuilt\n{o}");
                }
                built += 1;
            }
            Err(e) => {
                assert_eq!(out.status.code(), Some(1), "{root}");
                assert!(out.stdout.is_empty(), "{root}");
                for err in &e.errors {
                    let err = err.to_string();
                    assert!(
                        text(&out.stderr).contains(&err),
                        "{root}: {err}\n{}",
                        text(&out.stderr)
                    );
                }
                refused += 1;
            }
        }
    }
    assert!(
        built > 100 && refused > 0,
        "{built} built, {refused} refused"
    );
}

#[test]
fn plan_previews_a_promotion_between_overlays() {
    let repo = overlays();
    let out = plan(
        repo.path(),
        &[
            "--ref",
            "main",
            "--path",
            "overlays/prod",
            "--output",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["summary"]["create"], 1, "{doc}");
    // dev's overlay where prod's is deployed: replicas and image differ.
    let out = plan(
        repo.path(),
        &[
            "--ref",
            "main",
            "--path",
            "overlays/dev",
            "--from-path",
            "overlays/prod",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("update Deployment.apps/default/web"),
        "{stdout}"
    );
    assert!(stdout.contains("spec.replicas: 3 -> 1"), "{stdout}");
    assert!(
        stdout.contains(r#""nginx:1.25" -> "nginx:1.27""#),
        "{stdout}"
    );
}
