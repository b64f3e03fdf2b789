//! What would a sync change? Plans one revision of an environment
//! repository against a baseline and exits like `terraform plan
//! -detailed-exitcode`: 0 in sync, 2 changes, 1 error (a plan that a sync
//! would refuse, such as an ownership conflict, is an error too).
//!
//! ```sh
//! cargo run --example plan -- --repo DIR --ref REF [--path P]
//!     [--from REF] [--from-path P]
//!     [--live FILE_OR_DIR | --kubeconfig PATH [--context NAME]]
//!     [--owner ID] [--output text|json]
//! ```
//!
//! The baseline is, by the first option given:
//! - `--from REF` / `--from-path P`: a promotion preview, what `--ref` at
//!   `--path` would change where `--from` at `--from-path` is deployed (each
//!   defaults to its counterpart); the baseline is applied to an in-memory
//!   runtime first;
//! - `--live FILE_OR_DIR`: live objects read from YAML or JSON (such as
//!   `kubectl get -o yaml` output), loaded into an in-memory runtime;
//! - `--kubeconfig PATH`: a live cluster, read-only (objects and the
//!   owner's inventory are read; nothing is applied, not even a dry run);
//! - none: an empty runtime (everything is a create).
//!
//! The JSON output (`--output json`) is versioned and documented in
//! examples/README.md.

#[macro_use]
mod common;

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, ValueEnum};
use gitops_core::{
    Action, ApplyOptions, MemoryRuntime, OWNER_LABEL, Object, OwnerId, Plan, Reconciler,
    ReconcilerConfig, RenderStep, Source, Target,
};
use gitops_git::GitSource;
use gitops_kube::KubeTarget;
use gitops_kube::kube;
use gitops_kustomize::Kustomize;
use serde_json::{Value, json};

/// The version of the JSON document printed by `--output json`.
const SCHEMA: &str = "gitops-rs.plan/v1";

/// Exit code: the runtime is in sync with the revision.
const EXIT_IN_SYNC: u8 = 0;
/// Exit code: a sync would change something.
const EXIT_CHANGES: u8 = 2;

/// Plans a revision of a GitOps environment repository against a baseline
/// (nothing, YAML files, a cluster read-only, or another revision/folder).
///
/// Exit status: 0 in sync, 2 changes, 1 error (including a plan a sync
/// would refuse: ownership conflicts, guards).
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// The environment repository: a work tree, its `.git`, or a bare mirror.
    #[arg(long, value_name = "DIR")]
    repo: PathBuf,
    /// The revision to plan: a branch, tag or commit id.
    #[arg(long = "ref", value_name = "REF")]
    reference: String,
    /// The environment's folder in the repository (default: the root).
    #[arg(long, value_name = "P")]
    path: Option<String>,
    /// Promotion preview: the baseline is what this revision deploys.
    #[arg(long, value_name = "REF", conflicts_with_all = ["live", "kubeconfig"])]
    from: Option<String>,
    /// Promotion preview between folders: the baseline's folder (default: --path).
    #[arg(long, value_name = "P", conflicts_with_all = ["live", "kubeconfig"])]
    from_path: Option<String>,
    /// Live objects from a YAML/JSON file, or a folder of them.
    #[arg(long, value_name = "FILE_OR_DIR", conflicts_with = "kubeconfig")]
    live: Option<PathBuf>,
    /// Plan against the cluster of this kubeconfig, read-only.
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (default: its current context).
    #[arg(long, value_name = "NAME", requires = "kubeconfig")]
    context: Option<String>,
    /// The owner whose objects and inventory are "ours".
    #[arg(long, value_name = "ID", default_value = "gitops-plan")]
    owner: String,
    /// The output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Output {
    /// For people: the plan with field-level diffs.
    Text,
    /// For programs: one JSON document (schema in examples/README.md).
    Json,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli: Cli = match common::parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    common::finish(run(cli).await)
}

async fn run(cli: Cli) -> Result<ExitCode, Box<dyn Error>> {
    let source = GitSource::open(&cli.repo)?;
    let owner = OwnerId::new(cli.owner.clone())?;
    let revision = source.resolve(&cli.reference).await?;
    // Kustomize folders are built natively, other folders read as manifests.
    let kustomize: Arc<dyn RenderStep> = Arc::new(Kustomize::new());
    let mut config = ReconcilerConfig::new(owner.clone()).render_step(Arc::clone(&kustomize));
    config.path = cli.path.clone();

    let (baseline, plan) = if let Some(path) = &cli.kubeconfig {
        let client = kube_client(path, cli.context.as_deref()).await?;
        let reconciler = Reconciler::new(source.clone(), KubeTarget::new(client), config)?;
        let (_, plan) = reconciler.plan(&cli.reference).await?;
        let baseline = json!({"kind": "cluster", "kubeconfig": path, "context": cli.context});
        (baseline, plan)
    } else {
        let runtime = MemoryRuntime::with_system_namespaces();
        let baseline = if cli.from.is_some() || cli.from_path.is_some() {
            let reference = cli.from.clone().unwrap_or_else(|| cli.reference.clone());
            let path = cli.from_path.clone().or_else(|| cli.path.clone());
            let mut from = ReconcilerConfig::new(owner.clone()).render_step(kustomize);
            from.path = path.clone();
            Reconciler::new(source.clone(), runtime.clone(), from)?
                .reconcile_once(&reference)
                .await
                .map_err(|e| format!("the baseline {reference} does not deploy: {e}"))?;
            let commit = source.resolve(&reference).await?.id;
            json!({"kind": "revision", "reference": reference, "commit": commit, "path": path})
        } else if let Some(path) = &cli.live {
            let objects = load_live(&runtime, path, &owner).await?;
            json!({"kind": "live", "path": path, "objects": objects})
        } else {
            json!({"kind": "empty"})
        };
        // A preview shows every deletion, however many.
        config.plan.allow_mass_prune = true;
        let reconciler = Reconciler::new(source.clone(), runtime, config)?;
        let (_, plan) = reconciler.plan(&cli.reference).await?;
        (baseline, plan)
    };

    match cli.output {
        Output::Text => {
            outln!(
                "plan of {} ({}){} against {}\n",
                cli.reference,
                revision.short_id(),
                cli.path
                    .as_deref()
                    .map(|p| format!(" at {p}"))
                    .unwrap_or_default(),
                describe(&baseline)
            )?;
            out!("{plan}")?;
        }
        Output::Json => {
            let doc = to_json(&cli, &revision.id, &baseline, &plan);
            outln!("{}", serde_json::to_string_pretty(&doc)?)?;
        }
    }
    if plan.is_blocked() {
        return Err("a sync of this revision would be refused (see the plan above)".into());
    }
    Ok(ExitCode::from(if plan.is_empty() {
        EXIT_IN_SYNC
    } else {
        EXIT_CHANGES
    }))
}

fn describe(baseline: &Value) -> String {
    let s = |k: &str| baseline[k].as_str().unwrap_or("-").to_owned();
    match baseline["kind"].as_str() {
        Some("cluster") => format!("the cluster of {}", s("kubeconfig")),
        Some("live") => format!("{} live objects from {}", baseline["objects"], s("path")),
        Some("revision") => format!(
            "{} ({}){}",
            s("reference"),
            &s("commit")[..s("commit").len().min(12)],
            baseline["path"]
                .as_str()
                .map(|p| format!(" at {p}"))
                .unwrap_or_default()
        ),
        _ => "an empty runtime".to_owned(),
    }
}

/// The `gitops-rs.plan/v1` document (see examples/README.md).
fn to_json(cli: &Cli, commit: &str, baseline: &Value, plan: &Plan) -> Value {
    let changes: Vec<Value> = plan
        .steps
        .iter()
        .map(|step| {
            let (action, fields) = match &step.action {
                Action::Create => ("create", Vec::new()),
                Action::Update { diff } => (
                    "update",
                    diff.iter()
                        .flat_map(|d| d.changes.iter().map(|c| c.path.to_string()))
                        .collect(),
                ),
                Action::Delete => ("delete", Vec::new()),
                _ => ("other", Vec::new()),
            };
            json!({
                "action": action,
                "apiVersion": step.api_version,
                "kind": step.key.kind,
                "namespace": step.key.namespace,
                "name": step.key.name,
                "fields": fields,
            })
        })
        .collect();
    let problems: Vec<String> = plan
        .conflicts
        .iter()
        .map(ToString::to_string)
        .chain(plan.refusals.iter().map(ToString::to_string))
        .collect();
    let s = plan.summary();
    json!({
        "schema": SCHEMA,
        "revision": {"reference": cli.reference, "commit": commit, "path": cli.path},
        "baseline": baseline,
        "owner": cli.owner,
        "in_sync": plan.is_empty() && !plan.is_blocked(),
        "blocked": plan.is_blocked(),
        "summary": {
            "create": s.create, "update": s.update, "delete": s.delete,
            "unchanged": s.unchanged, "conflicts": s.conflicts, "refusals": s.refusals,
        },
        "changes": changes,
        "problems": problems,
    })
}

async fn kube_client(path: &Path, context: Option<&str>) -> Result<kube::Client, Box<dyn Error>> {
    use kube::config::{KubeConfigOptions, Kubeconfig};
    let kubeconfig =
        Kubeconfig::read_from(path).map_err(|e| format!("kubeconfig {}: {e}", path.display()))?;
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options).await?;
    Ok(kube::Client::try_from(config)?)
}

/// Loads live objects from `path` (a file, or every `.yaml`/`.yml`/`.json`
/// file under a folder, in name order) into `runtime`; returns how many.
///
/// Documents may be multi-document YAML, `List`s, and `kubectl get -o yaml`
/// output (status and server metadata are dropped). Namespaces that objects
/// are in but that the files do not list are assumed to exist.
async fn load_live(
    runtime: &MemoryRuntime,
    path: &Path,
    owner: &OwnerId,
) -> Result<usize, Box<dyn Error>> {
    let mut files = Vec::new();
    collect_files(path, &mut files)?;
    let mut objects = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("live file {}: {e}", file.display()))?;
        for (index, document) in serde_yaml::Deserializer::from_str(&text).enumerate() {
            let at = || format!("live file {}, document {}", file.display(), index + 1);
            let value: Value =
                serde::Deserialize::deserialize(document).map_err(|e| format!("{}: {e}", at()))?;
            let items = match value {
                Value::Null => continue,
                Value::Object(ref m)
                    if m.get("kind")
                        .and_then(Value::as_str)
                        .is_some_and(|k| k.ends_with("List"))
                        && m.get("items").is_some_and(Value::is_array) =>
                {
                    m["items"].as_array().cloned().unwrap_or_default()
                }
                other => vec![other],
            };
            for item in items {
                let object = Object::new(gitops_diff::strip_server_fields(&item))
                    .map_err(|e| format!("{}: {e}", at()))?;
                objects.push(object);
            }
        }
    }
    // Namespaces first, then CRDs, then the rest: the order an API server needs.
    let rank = |o: &Object| match (o.key().group.as_str(), o.key().kind.as_str()) {
        ("", "Namespace") => 0,
        ("apiextensions.k8s.io", "CustomResourceDefinition") => 1,
        _ => 2,
    };
    objects.sort_by_key(rank);
    let mut namespaces: std::collections::BTreeSet<String> = runtime
        .objects()
        .keys()
        .chain(objects.iter().map(Object::key))
        .filter(|k| k.group.is_empty() && k.kind == "Namespace")
        .map(|k| k.name.clone())
        .collect();
    let options = ApplyOptions::new("live").force(true);
    for object in &objects {
        if let Some(ns) = &object.key().namespace
            && namespaces.insert(ns.clone())
        {
            let namespace = Object::new(json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns, "labels": {OWNER_LABEL: owner.as_str()}},
            }))?;
            runtime.apply(&namespace, &options).await?;
        }
        runtime
            .apply(object, &options)
            .await
            .map_err(|e| format!("live object {}: {e}", object.key()))?;
    }
    Ok(objects.len())
}

fn collect_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), Box<dyn Error>> {
    let meta = std::fs::metadata(path).map_err(|e| format!("live path {}: {e}", path.display()))?;
    if meta.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| format!("live folder {}: {e}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            collect_files(&entry, out)?;
        } else if entry
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        {
            out.push(entry);
        }
    }
    Ok(())
}
