//! Prints the history of a runtime's syncs, from a JSON Lines audit log, as
//! a table: when, which revision (author, message, signature), what the plan
//! did, drift corrected, and how it ended.
//!
//! ```sh
//! cargo run --example audit -- /path/to/audit.jsonl
//! cargo run --example audit            # a demo: runs a few syncs first
//! ```

#[macro_use]
mod common;

use std::error::Error;
use std::path::PathBuf;
use std::sync::Arc;

use gitops_core::audit::read_log;
use gitops_core::{
    ApplyOptions, JsonLinesAudit, MemoryRuntime, MemorySource, Object, OwnerId, Reconciler,
    ReconcilerConfig, SignatureVerdict, SyncReport, Target,
};

const NS: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n";
const WEB: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: 'nginx:1.25'}]}\n";

/// Runs a few syncs against an in-memory runtime, logging to `path`.
async fn demo(path: &PathBuf) -> Result<(), Box<dyn Error>> {
    let source = MemorySource::new();
    let runtime = MemoryRuntime::new();
    let sink = Arc::new(JsonLinesAudit::open(path)?);
    let reconciler = Reconciler::new(
        source.clone(),
        runtime.clone(),
        ReconcilerConfig::new(OwnerId::new("shop")?),
    )?
    .with_audit(sink);
    source.commit(
        "prod",
        [("ns.yaml", NS), ("web.yaml", WEB)],
        "Ada Lovelace",
        "Ship the web front end",
    );
    reconciler.reconcile_once("prod").await?;
    let hand_edit = Object::new(
        serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"}, "spec": {"replicas": 9}}),
    )?;
    let kubectl = ApplyOptions::new("kubectl").force(true);
    runtime.apply(&hand_edit, &kubectl).await?;
    reconciler.reconcile_once("prod").await?;
    source.commit(
        "prod",
        [
            ("ns.yaml", NS),
            ("web.yaml", &WEB.replace("nginx:1.25", "nginx:1.27")),
        ],
        "Grace Hopper",
        "Bump nginx to 1.27",
    );
    reconciler.reconcile_once("prod").await?;
    source.commit(
        "prod",
        [("ns.yaml", NS), ("web.yaml", "kind: Deployment\n")],
        "Mallory",
        "Broken edit",
    );
    let _ = reconciler.reconcile_once("prod").await; // refused: recorded, nothing applied
    Ok(())
}

fn signer(v: &SignatureVerdict) -> String {
    match v {
        SignatureVerdict::NotChecked => "-".into(),
        SignatureVerdict::Unsigned => "unsigned".into(),
        SignatureVerdict::Trusted { signer, .. } => signer.clone(),
        SignatureVerdict::Untrusted { .. } => "UNTRUSTED".into(),
        other => format!("{other:?}"),
    }
}

fn row(r: &SyncReport) -> [String; 7] {
    let (rev, author, msg, sig) = match &r.revision {
        Some(rev) => (
            rev.id.get(..10).unwrap_or(&rev.id).to_owned(),
            rev.author.name.clone(),
            rev.summary.clone(),
            signer(&rev.signature),
        ),
        None => ("-".into(), "-".into(), "-".into(), "-".into()),
    };
    let s = &r.summary;
    [
        r.started_at.clone(),
        rev,
        format!("{author}: {msg}"),
        sig,
        format!("+{} ~{} -{}", s.create, s.update, s.delete),
        if r.drift_corrected.is_empty() {
            "-".into()
        } else {
            r.drift_corrected.len().to_string()
        },
        r.status.to_string(),
    ]
}

/// Shows the history of a runtime's syncs from a JSON Lines audit log, as a
/// table. Without a file, runs a small demo first and shows its log.
#[derive(clap::Parser)]
#[command(version)]
struct Cli {
    /// The audit log (JSON Lines, one sync report per line).
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli: Cli = match common::parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    common::finish(run(cli).await.map(|()| std::process::ExitCode::SUCCESS))
}

async fn run(cli: Cli) -> Result<(), Box<dyn Error>> {
    let path = match cli.file {
        Some(p) => p,
        None => {
            let p = std::env::temp_dir()
                .join(format!("gitops-audit-demo-{}.jsonl", std::process::id()));
            let _ = std::fs::remove_file(&p);
            demo(&p).await?;
            outln!("(demo log written to {})\n", p.display())?;
            p
        }
    };
    let log = read_log(&path)?;
    let header = [
        "started",
        "revision",
        "author: message",
        "signer",
        "plan",
        "drift",
        "status",
    ];
    let rows: Vec<[String; 7]> = log.records.iter().map(row).collect();
    let mut width = header.map(str::len);
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(width)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
    };
    outln!("{}", line(&header.map(str::to_owned)))?;
    for r in &rows {
        outln!("{}", line(r))?;
    }
    for r in log.records.iter().filter(|r| !r.errors.is_empty()) {
        outln!("\n{} {}:", r.started_at, r.status)?;
        for e in &r.errors {
            outln!("  {e}")?;
        }
    }
    for (line, e) in &log.unreadable {
        common::warn(format_args!(
            "warning: line {line} of {} is unreadable: {e}",
            path.display()
        ));
    }
    Ok(())
}
