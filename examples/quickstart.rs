//! The whole loop in one program, on a fresh machine:
//!
//! 1. a temporary environment repository (Git, built with the `git` CLI):
//!    one Kustomize base and an overlay per environment (`overlays/dev`,
//!    `overlays/prod`) that sets its namespace, replica count and image, with
//!    commits by different authors;
//! 2. each overlay rendered natively (gitops-kustomize), planned and applied
//!    to its own in-memory cluster (`MemoryRuntime`), every sync recorded in
//!    an audit log;
//! 3. a promotion preview: what a commit moving prod to dev's image would
//!    change in prod, where each value comes from, and who changed what,
//!    when and why;
//! 4. someone scales a Deployment by hand: the next sync corrects the drift
//!    and says so;
//! 5. a broken commit: rendering fails, nothing is applied, the error names
//!    the file and entry.
//!
//! ```sh
//! cargo run --example quickstart
//! ```

#[macro_use]
mod common;

use std::error::Error;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::sync::Arc;

use clap::Parser;

use gitops_core::audit::read_log;
use gitops_core::{
    ApplyOptions, JsonLinesAudit, MemoryRuntime, Object, OwnerId, Reconciler, ReconcilerConfig,
    Source, SyncReport, Target,
};
use gitops_git::GitSource;
use gitops_kustomize::Kustomize;

const WEB: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        ports:
        - containerPort: 80
        resources:
          limits: {cpu: 500m, memory: 256Mi}
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 80
";

const CONFIG: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  checkout: classic
";

const BASE: &str = "resources:
- web.yaml
- config.yaml
";

/// An environment's overlay: its namespace, replicas and nginx tag.
fn overlay(env: &str, replicas: u32, tag: &str) -> String {
    format!(
        "namespace: shop-{env}
resources:
- namespace.yaml
- ../../base
replicas:
- name: web
  count: {replicas}
images:
- name: nginx
  newTag: \"{tag}\"
labels:
- pairs: {{env: {env}}}
"
    )
}

fn namespace(env: &str) -> String {
    format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop-{env}\n")
}

/// Runs git in `dir` as `author`, with no user or system configuration.
fn git(dir: &Path, author: &str, args: &[&str]) -> Result<String, Box<dyn Error>> {
    let email = format!(
        "{}@example.com",
        author.split(' ').next().unwrap_or(author).to_lowercase()
    );
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", author)
        .env("GIT_AUTHOR_EMAIL", &email)
        .env("GIT_COMMITTER_NAME", author)
        .env("GIT_COMMITTER_EMAIL", &email)
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn write(dir: &Path, path: &str, text: &str) -> Result<(), Box<dyn Error>> {
    let file = dir.join(path);
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(file, text)?;
    Ok(())
}

/// Builds the environment repository on `main`: a base, a dev and a prod
/// overlay; dev then moves ahead (a new image, a new setting).
fn build_repository(dir: &Path) -> Result<(), Box<dyn Error>> {
    git(dir, "Ada Lovelace", &["init", "-q", "-b", "main"])?;
    write(dir, "README.md", "# shop environments\n")?;
    write(dir, "base/kustomization.yaml", BASE)?;
    write(dir, "base/web.yaml", WEB)?;
    write(dir, "base/config.yaml", CONFIG)?;
    for (env, replicas) in [("dev", 1), ("prod", 3)] {
        write(
            dir,
            &format!("overlays/{env}/namespace.yaml"),
            &namespace(env),
        )?;
        write(
            dir,
            &format!("overlays/{env}/kustomization.yaml"),
            &overlay(env, replicas, "1.25"),
        )?;
    }
    git(dir, "Ada Lovelace", &["add", "."])?;
    git(
        dir,
        "Ada Lovelace",
        &[
            "commit",
            "-q",
            "-m",
            "Launch the shop: web front end and its settings, dev and prod",
        ],
    )?;
    write(
        dir,
        "overlays/dev/kustomization.yaml",
        &overlay("dev", 1, "1.27"),
    )?;
    git(
        dir,
        "Grace Hopper",
        &["commit", "-q", "-am", "dev: try nginx 1.27"],
    )?;
    Ok(())
}

fn show(title: &str, report: &SyncReport) -> std::io::Result<()> {
    outln!("\n== {title}")?;
    out!("{report}")
}

/// The whole GitOps loop on a fresh machine: a temporary Git repository,
/// in-memory clusters, a promotion preview, drift correction, a broken
/// commit that applies nothing, and the audit trail. Needs only `git`.
#[derive(Parser)]
#[command(version)]
struct Cli {}

#[tokio::main]
async fn main() -> ExitCode {
    let _cli: Cli = match common::parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    common::finish(run().await.map(|()| ExitCode::SUCCESS))
}

async fn run() -> Result<(), Box<dyn Error>> {
    // Removed on every way out, a closed pipe included.
    let tmp = common::TempDir::new("gitops-quickstart")?;
    let work = tmp.0.clone();
    let repo = work.join("environments");
    std::fs::create_dir_all(&repo)?;
    build_repository(&repo)?;
    outln!(
        "environment repository: {} (base/, overlays/dev, overlays/prod)",
        repo.display()
    )?;

    let source = GitSource::open(&repo)?;
    let audit = Arc::new(JsonLinesAudit::open(work.join("audit.jsonl"))?);
    let cluster = |env: &str| -> Result<_, Box<dyn Error>> {
        let runtime = MemoryRuntime::with_system_namespaces();
        let config = ReconcilerConfig::new(OwnerId::new(format!("shop-{env}"))?)
            .path(format!("overlays/{env}"))
            .render_step(Arc::new(Kustomize::new()));
        let reconciler =
            Reconciler::new(source.clone(), runtime.clone(), config)?.with_audit(audit.clone());
        Ok((runtime, reconciler))
    };
    let (prod, prod_sync) = cluster("prod")?;
    let (dev, dev_sync) = cluster("dev")?;

    // 1. Each environment converges to its overlay of `main`.
    show(
        "sync dev (overlays/dev)",
        &dev_sync.reconcile_once("main").await?,
    )?;
    show(
        "sync prod (overlays/prod)",
        &prod_sync.reconcile_once("main").await?,
    )?;
    outln!("\n== one base, two environments")?;
    for (env, runtime) in [("dev", &dev), ("prod", &prod)] {
        for (key, web) in runtime.objects() {
            if key.kind == "Deployment" {
                let spec = &web["spec"];
                outln!(
                    "  {env:<5} {key}: {} replicas of {}",
                    spec["replicas"],
                    spec["template"]["spec"]["containers"][0]["image"]
                )?;
            }
        }
    }

    // 2. Promotion as a commit: prod takes dev's image, on a branch to review.
    let before = source.resolve("main").await?;
    git(
        &repo,
        "Grace Hopper",
        &["checkout", "-q", "-b", "promote-web"],
    )?;
    write(
        &repo,
        "overlays/prod/kustomization.yaml",
        &overlay("prod", 3, "1.27"),
    )?;
    git(
        &repo,
        "Grace Hopper",
        &["commit", "-q", "-am", "prod: promote nginx 1.27 from dev"],
    )?;
    let (desired, plan) = prod_sync.plan("promote-web").await?;
    outln!("\n== promotion preview: prod at promote-web")?;
    out!("{plan}")?;
    for (key, object) in desired.iter() {
        if key.kind == "Deployment" {
            outln!("{key} comes from {}", object.provenance)?;
        }
    }
    let to = source.resolve("promote-web").await?;
    outln!("commits it would bring (who, when, why):")?;
    for c in source.history(Some(&before), &to, None)? {
        outln!(
            "  {} {:<14} {} {}",
            c.short_id(),
            c.author.name,
            c.author.time_rfc3339(),
            c.summary()
        )?;
    }
    git(&repo, "Grace Hopper", &["checkout", "-q", "main"])?;
    git(
        &repo,
        "Grace Hopper",
        &["merge", "-q", "--ff-only", "promote-web"],
    )?;
    show(
        "sync prod after the merge",
        &prod_sync.reconcile_once("main").await?,
    )?;

    // 3. Someone scales prod by hand; the next sync takes it back.
    let by_hand = Object::new(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop-prod"},
        "spec": {"replicas": 10}
    }))?;
    let kubectl = ApplyOptions::new("kubectl-edit").force(true);
    prod.apply(&by_hand, &kubectl).await?;
    outln!("\n== kubectl scale deployment/web -n shop-prod --replicas=10 (by hand)")?;
    show("sync prod again", &prod_sync.reconcile_once("main").await?)?;

    // 4. A broken commit applies nothing.
    write(
        &repo,
        "overlays/prod/kustomization.yaml",
        &format!(
            "{}patches:\n- path: more-memory.yaml\n",
            overlay("prod", 3, "1.27")
        ),
    )?;
    git(&repo, "Mallory", &["commit", "-q", "-am", "quick fix"])?;
    match prod_sync.reconcile_once("main").await {
        Ok(report) => show("sync prod (unexpectedly fine)", &report)?,
        Err(e) => show("sync prod: a broken revision applies nothing", &e.report)?,
    }
    let owner = OwnerId::new("shop-prod")?;
    let inventory = prod
        .read_inventory(&owner)
        .await?
        .map(|i| i.objects.len())
        .unwrap_or(0);
    outln!("prod still runs the {inventory} objects of its last good revision")?;

    // 5. The audit trail of every sync.
    outln!("\n== audit log ({})", work.join("audit.jsonl").display())?;
    for r in read_log(work.join("audit.jsonl"))?.records {
        let rev = r.revision.as_ref();
        outln!(
            "  {:<10} {:<14} {:<13} {:<48} drift corrected: {}",
            r.owner,
            rev.map(|r| r.author.name.as_str()).unwrap_or("-"),
            r.status.to_string(),
            rev.map(|r| r.summary.as_str()).unwrap_or("-"),
            r.drift_corrected.len()
        )?;
    }
    drop(tmp);
    Ok(())
}
