//! A GitOps controller: reconciles a Git repository into the cluster of the
//! current kubeconfig, on an interval and whenever an owned object drifts,
//! until ctrl-c.
//!
//! ```text
//! cargo run --example controller -- --repo /path/to/env-repo [--ref main]
//!     [--path apps/shop] [--owner shop] [--namespace shop] [--interval 60]
//!     [--inventory-namespace gitops-system] [--dry-run]
//! ```
//!
//! Logs go through `tracing` (`RUST_LOG=info,gitops_kube=debug` for more).
//! The first ctrl-c lets a running sync finish and stops; a second one stops
//! at once.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use gitops_core::RenderOptions;
use gitops_core::{GroupKind, OwnerId, Reconciler, ReconcilerConfig, SyncReport, Target};
use gitops_git::GitSource;
use gitops_kube::{DriftEvent, DriftStream, KubeTarget};
use tokio::sync::watch;
use tracing::{error, info, warn};

/// A GitOps controller: reconciles a Git repository into the cluster of the
/// current kubeconfig, on an interval and whenever an owned object drifts,
/// until ctrl-c. Logs on stderr (`RUST_LOG=info,gitops_kube=debug`).
#[derive(Debug, clap::Parser)]
#[command(version)]
struct Args {
    /// The environment repository (work tree, `.git` or bare mirror).
    #[arg(long, value_name = "PATH")]
    repo: String,
    /// The reference to follow.
    #[arg(long = "ref", value_name = "REF", default_value = "main")]
    reference: String,
    /// The environment's folder in the repository.
    #[arg(long, value_name = "DIR")]
    path: Option<String>,
    /// The owner id of what this controller applies.
    #[arg(long, value_name = "ID", default_value = "controller")]
    owner: String,
    /// The namespace of manifests that name none.
    #[arg(long, value_name = "NS", default_value = "default")]
    namespace: String,
    /// Where the owner's inventory is kept.
    #[arg(long, value_name = "NS")]
    inventory_namespace: Option<String>,
    /// Seconds between syncs (at least 1).
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    interval: u64,
    /// Plan and dry-run only: change nothing.
    #[arg(long)]
    dry_run: bool,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Args = match common::parse() {
        Ok(args) => args,
        Err(code) => return code,
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            std::process::ExitCode::from(common::EXIT_ERROR)
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let owner = OwnerId::new(args.owner.clone())?;

    let client = gitops_kube::kube::Client::try_default().await?;
    let version = client.apiserver_version().await?;
    info!(server = %version.git_version, repo = %args.repo, reference = %args.reference, %owner, "starting");

    let mut target = KubeTarget::new(client);
    if let Some(ns) = &args.inventory_namespace {
        target = target.with_inventory_namespace(ns);
    }
    // Kustomize folders are built natively, other folders read as manifests.
    let mut config = ReconcilerConfig::new(owner.clone())
        .render_step(std::sync::Arc::new(gitops_kustomize::Kustomize::new()));
    config.path = args.path.clone();
    config.render = RenderOptions::default().with_default_namespace(&args.namespace);
    config.dry_run = if args.dry_run {
        gitops_core::DryRun::Plan
    } else {
        gitops_core::DryRun::Off
    };
    let source = GitSource::open(&args.repo)?;
    let reconciler = Reconciler::new(source, target.clone(), config)?;

    // ctrl-c: the first asks for a graceful stop, the second exits at once.
    let (stop_tx, mut stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            info!("ctrl-c: stopping after the current sync (ctrl-c again to abort)");
            let _ = stop_tx.send(true);
        }
        if tokio::signal::ctrl_c().await.is_ok() {
            warn!("second ctrl-c: aborting");
            std::process::exit(130);
        }
    });

    let mut ticker = tokio::time::interval(Duration::from_secs(args.interval));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate: that is the "start" sync
    let mut drift: Option<Drift> = None;
    let mut reason = "start";
    loop {
        sync(&reconciler, &args.reference, reason).await;
        if *stop_rx.borrow() {
            break;
        }
        // Watch what the owner now has (its inventory may have changed).
        drift = match target.read_inventory(&owner).await {
            Ok(Some(inventory)) => match target.drift_watch_inventory(&inventory).await {
                Ok(stream) => Some(Drift {
                    stream,
                    live: HashSet::new(),
                }),
                Err(e) => {
                    warn!("drift watch unavailable, interval only: {e}");
                    None
                }
            },
            Ok(None) => None,
            Err(e) => {
                warn!("reading the inventory: {e}");
                drift.take()
            }
        };
        reason = tokio::select! {
            _ = stop_rx.changed() => break,
            _ = ticker.tick() => "interval",
            event = next_drift(&mut drift) => {
                match event {
                    DriftEvent::Changed(key) => info!(%key, "drift: changed"),
                    DriftEvent::Deleted(key) => info!(%key, "drift: deleted"),
                    DriftEvent::Resynced(kind) => info!(%kind, "drift watch (re)listed"),
                    other => info!(?other, "drift"),
                }
                // Let a burst of changes settle into one sync.
                tokio::time::sleep(Duration::from_millis(500)).await;
                "drift"
            }
        };
    }
    info!("stopped");
    Ok(())
}

/// A drift watch and the kinds whose watch is already live.
struct Drift {
    stream: DriftStream,
    live: HashSet<GroupKind>,
}

/// The next drift event, skipping the watch's transient errors; pending
/// forever without a watch.
async fn next_drift(drift: &mut Option<Drift>) -> DriftEvent {
    let Some(Drift { stream, live }) = drift else {
        return std::future::pending().await;
    };
    loop {
        match stream.next().await {
            // The first Resynced of a kind is its watch becoming live, not a
            // change; a later one (after a reconnect) may hide changes.
            Some(Ok(DriftEvent::Resynced(kind))) if live.insert(kind.clone()) => continue,
            Some(Ok(event)) => return event,
            Some(Err(e)) => warn!("drift watch: {e}"),
            None => return std::future::pending().await,
        }
    }
}

async fn sync<S: gitops_core::Source, T: Target>(
    reconciler: &Reconciler<S, T>,
    reference: &str,
    reason: &str,
) {
    match reconciler.reconcile_once(reference).await {
        Ok(report) => log_report(reason, &report),
        Err(e) => {
            error!(
                reason,
                status = ?e.report.status,
                phase = %e.phase(),
                transient = e.is_transient(),
                "sync failed"
            );
            for message in &e.report.errors {
                error!("  {message}");
            }
        }
    }
}

fn log_report(reason: &str, report: &SyncReport) {
    let (commit, summary) = report
        .revision
        .as_ref()
        .map(|r| (r.id.as_str(), r.summary.as_str()))
        .unwrap_or_default();
    info!(
        reason,
        commit,
        summary,
        status = ?report.status,
        steps = report.steps.len(),
        drift_corrected = report.drift_corrected.len(),
        duration_ms = report.duration_ms,
        "sync done"
    );
    for key in &report.not_converged {
        warn!(%key, "not converged");
    }
}
