//! The whole loop in one program, on a fresh machine:
//!
//! 1. a temporary environment repository (Git, built with the `git` CLI) with
//!    a `prod` and a `dev` branch and commits by different authors;
//! 2. each branch rendered, planned and applied to its own in-memory
//!    cluster (`MemoryRuntime`), every sync recorded in an audit log;
//! 3. a promotion preview: what merging `dev` into `prod` would change, and
//!    who changed what, when and why;
//! 4. someone scales a Deployment by hand: the next sync corrects the drift
//!    and says so;
//! 5. a broken commit: rendering fails, nothing is applied, the error names
//!    the file and line.
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

const NAMESPACE: &str = "apiVersion: v1
kind: Namespace
metadata:
  name: shop
";

const WEB: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 2
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
  namespace: shop
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
  namespace: shop
data:
  checkout: classic
";

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

/// Builds the environment repository: `prod`, then `dev` ahead of it.
fn build_repository(dir: &Path) -> Result<(), Box<dyn Error>> {
    git(dir, "Ada Lovelace", &["init", "-q", "-b", "prod"])?;
    write(dir, "README.md", "# shop environments\n")?;
    write(dir, "namespace.yaml", NAMESPACE)?;
    write(dir, "apps/web.yaml", WEB)?;
    write(dir, "apps/config.yaml", CONFIG)?;
    git(dir, "Ada Lovelace", &["add", "."])?;
    git(
        dir,
        "Ada Lovelace",
        &[
            "commit",
            "-q",
            "-m",
            "Launch the shop: web front end and its settings",
        ],
    )?;
    git(dir, "Ada Lovelace", &["checkout", "-q", "-b", "dev"])?;
    write(
        dir,
        "apps/web.yaml",
        &WEB.replace("nginx:1.25", "nginx:1.27")
            .replace("replicas: 2", "replicas: 3"),
    )?;
    git(
        dir,
        "Grace Hopper",
        &[
            "commit",
            "-q",
            "-am",
            "web: nginx 1.27, three replicas for the sale",
        ],
    )?;
    write(
        dir,
        "apps/config.yaml",
        &CONFIG.replace("classic", "one-click"),
    )?;
    git(
        dir,
        "Linus Pauling",
        &["commit", "-q", "-am", "Try one-click checkout"],
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
        "environment repository: {} (branches prod, dev)",
        repo.display()
    )?;

    let source = GitSource::open(&repo)?;
    let audit = Arc::new(JsonLinesAudit::open(work.join("audit.jsonl"))?);
    let cluster = |env: &str| -> Result<_, Box<dyn Error>> {
        let runtime = MemoryRuntime::with_system_namespaces();
        let config = ReconcilerConfig::new(OwnerId::new(format!("shop-{env}"))?);
        let reconciler =
            Reconciler::new(source.clone(), runtime.clone(), config)?.with_audit(audit.clone());
        Ok((runtime, reconciler))
    };
    let (prod, prod_sync) = cluster("prod")?;
    let (_dev, dev_sync) = cluster("dev")?;

    // 1. Each environment converges to its branch.
    show("sync prod", &prod_sync.reconcile_once("prod").await?)?;
    show("sync dev", &dev_sync.reconcile_once("dev").await?)?;

    // 2. Promotion preview: what would prod become at dev's revision?
    let (_, plan) = prod_sync.plan("dev").await?;
    outln!("\n== promotion preview: prod at dev's revision")?;
    out!("{plan}")?;
    let from = source.resolve("prod").await?;
    let to = source.resolve("dev").await?;
    outln!("commits it would bring (who, when, why):")?;
    for c in source.history(Some(&from), &to, None)? {
        outln!(
            "  {} {:<14} {} {}",
            c.short_id(),
            c.author.name,
            c.author.time_rfc3339(),
            c.summary()
        )?;
    }

    // 3. Someone scales prod by hand; the next sync takes it back.
    let by_hand = Object::new(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"replicas": 10}
    }))?;
    let kubectl = ApplyOptions::new("kubectl-edit").force(true);
    prod.apply(&by_hand, &kubectl).await?;
    outln!("\n== kubectl scale deployment/web --replicas=10 (by hand, in prod)")?;
    show("sync prod again", &prod_sync.reconcile_once("prod").await?)?;

    // 4. A broken commit on prod applies nothing.
    git(&repo, "Ada Lovelace", &["checkout", "-q", "prod"])?;
    write(
        &repo,
        "apps/config.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Settings_v2\n  namespace: shop\n",
    )?;
    git(&repo, "Mallory", &["commit", "-q", "-am", "quick fix"])?;
    match prod_sync.reconcile_once("prod").await {
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
