//! The reconciler end to end on the in-memory backends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use gitops_core::policy::Rule;
use gitops_core::{
    ApplyOptions, DeleteOptions, Fault, FaultyTarget, GroupKind, Inventory, MemoryAudit,
    MemoryRuntime, MemorySource, OWNER_LABEL, Object, ObjectKey, OwnerId, Policy, Reconciler,
    ReconcilerConfig, RenderOptions, Rendering, StepOutcome, SyncStatus, Target, TargetExt,
};
use serde_json::json;

const NS: &str = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n";
const DEPLOY: &str = "apiVersion: apps/v1
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
";
const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: shop\ndata:\n  mode: fast\n";
const CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets, listKind: WidgetList, singular: widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
";
const WIDGET: &str = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\n  namespace: shop\nspec:\n  size: 3\n";

fn owner(s: &str) -> OwnerId {
    OwnerId::new(s).unwrap()
}

fn key(group: &str, kind: &str, ns: Option<&str>, name: &str) -> ObjectKey {
    ObjectKey::new(group, kind, ns, name)
}

struct Setup {
    source: MemorySource,
    runtime: MemoryRuntime,
    audit: Arc<MemoryAudit>,
    reconciler: Reconciler<MemorySource, MemoryRuntime>,
}

fn setup(config: impl FnOnce(&mut ReconcilerConfig)) -> Setup {
    let source = MemorySource::new();
    let runtime = MemoryRuntime::new();
    let audit = Arc::new(MemoryAudit::new());
    let mut c = ReconcilerConfig::new(owner("shop"));
    config(&mut c);
    let reconciler = Reconciler::new(source.clone(), runtime.clone(), c)
        .unwrap()
        .with_audit(audit.clone());
    Setup {
        source,
        runtime,
        audit,
        reconciler,
    }
}

#[tokio::test]
async fn full_loop_then_drift_is_corrected_and_reported() {
    let s = setup(|_| {});
    s.source.commit(
        "prod",
        [("ns.yaml", NS), ("web.yaml", DEPLOY), ("cm.yaml", CM)],
        "ada",
        "ship web",
    );
    let report = s.reconciler.reconcile_once("prod").await.unwrap();
    assert_eq!(report.status, SyncStatus::Synced);
    assert_eq!(report.summary.create, 3);
    assert_eq!(report.revision.as_ref().unwrap().author.name, "ada");
    let order: Vec<String> = report.steps.iter().map(|s| s.key.to_string()).collect();
    assert_eq!(
        order,
        [
            "Namespace/shop",
            "ConfigMap/shop/settings",
            "Deployment.apps/shop/web"
        ],
        "namespace first, config before workloads"
    );
    assert!(report.drift_corrected.is_empty());
    let dep = key("apps", "Deployment", Some("shop"), "web");
    let live = s.runtime.get(&dep).await.unwrap().unwrap();
    assert_eq!(live["metadata"]["labels"][OWNER_LABEL], "shop");

    // Someone scales the deployment by hand.
    let edit = Object::new(json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"}, "spec": {"replicas": 7}}))
    .unwrap();
    s.runtime
        .apply(&edit, &ApplyOptions::new("kubectl").force(true))
        .await
        .unwrap();
    // ...and deletes the ConfigMap.
    s.runtime
        .delete(
            &key("", "ConfigMap", Some("shop"), "settings"),
            &DeleteOptions::default(),
        )
        .await
        .unwrap();

    let report = s.reconciler.reconcile_once("prod").await.unwrap();
    assert_eq!(report.status, SyncStatus::Synced);
    let mut drift: Vec<String> = report
        .drift_corrected
        .iter()
        .map(ToString::to_string)
        .collect();
    drift.sort();
    assert_eq!(
        drift,
        ["ConfigMap/shop/settings", "Deployment.apps/shop/web"]
    );
    let update = report.steps.iter().find(|s| s.key == dep).unwrap();
    assert_eq!(update.changes, ["spec.replicas"]);
    let live = s.runtime.get(&dep).await.unwrap().unwrap();
    assert_eq!(live["spec"]["replicas"], 2, "drift corrected");

    let report = s.reconciler.reconcile_once("prod").await.unwrap();
    assert_eq!(report.status, SyncStatus::UpToDate);
    assert_eq!(s.audit.records().len(), 3, "every sync is audited");
}

#[tokio::test]
async fn crd_and_custom_resources_in_one_revision() {
    // Dropping 2 of 3 objects is over the default mass-prune guard.
    let s = setup(|c| c.plan.allow_mass_prune = true);
    s.source.commit(
        "prod",
        [
            ("a-widget.yaml", WIDGET),
            ("crd.yaml", CRD),
            ("ns.yaml", NS),
        ],
        "ada",
        "widgets",
    );
    let report = s.reconciler.reconcile_once("prod").await.unwrap();
    let order: Vec<String> = report.steps.iter().map(|s| s.key.to_string()).collect();
    assert_eq!(
        order,
        [
            "Namespace/shop",
            "CustomResourceDefinition.apiextensions.k8s.io/widgets.example.com",
            "Widget.example.com/shop/w1"
        ]
    );
    // Removing both: the custom resource is deleted before its CRD.
    s.source
        .commit("prod", [("ns.yaml", NS)], "ada", "drop widgets");
    let report = s.reconciler.reconcile_once("prod").await.unwrap();
    let deletes: Vec<String> = report
        .steps
        .iter()
        .filter(|s| s.action == gitops_core::StepAction::Delete)
        .map(|s| s.key.to_string())
        .collect();
    assert_eq!(
        deletes,
        [
            "Widget.example.com/shop/w1",
            "CustomResourceDefinition.apiextensions.k8s.io/widgets.example.com"
        ]
    );
}

#[tokio::test]
async fn a_render_error_applies_nothing_and_names_the_file() {
    let s = setup(|_| {});
    s.source.commit(
        "prod",
        [
            ("ns.yaml", NS),
            (
                "bad.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name, namespace: shop}\n",
            ),
        ],
        "mallory",
        "oops",
    );
    let err = s.reconciler.reconcile_once("prod").await.unwrap_err();
    assert_eq!(err.report.status, SyncStatus::RenderFailed);
    assert!(
        err.report.errors[0].message.starts_with("bad.yaml#0"),
        "{:?}",
        err.report.errors
    );
    assert!(s.runtime.is_empty(), "nothing applied");
    assert_eq!(s.audit.records().len(), 1, "the failure is audited");
}

#[tokio::test]
async fn policy_violations_apply_nothing() {
    let s = setup(|c| {
        c.policy = Policy::new()
            .require_image_digests(true)
            .allowed_namespaces(vec!["shop".into()])
            .allow_cluster_scoped(false)
    });
    s.source
        .commit("prod", [("ns.yaml", NS), ("web.yaml", DEPLOY)], "ada", "x");
    let err = s.reconciler.reconcile_once("prod").await.unwrap_err();
    assert_eq!(err.report.status, SyncStatus::PolicyViolated);
    let rules: Vec<Rule> = err
        .report
        .policy_violations
        .iter()
        .map(|v| v.rule)
        .collect();
    assert_eq!(rules, [Rule::ClusterScoped, Rule::ImageDigest]);
    assert_eq!(
        err.report.policy_violations[1]
            .provenance
            .as_ref()
            .unwrap()
            .path,
        "web.yaml"
    );
    assert!(s.runtime.is_empty());
}

#[tokio::test]
async fn objects_of_another_owner_block_the_sync_unless_adopted() {
    let s = setup(|_| {});
    let ns = Object::new(json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "shop", "labels": {OWNER_LABEL: "billing"}}}))
    .unwrap();
    s.runtime
        .apply(&ns, &ApplyOptions::default())
        .await
        .unwrap();
    s.source
        .commit("prod", [("ns.yaml", NS), ("cm.yaml", CM)], "ada", "x");
    let err = s.reconciler.reconcile_once("prod").await.unwrap_err();
    assert_eq!(err.report.status, SyncStatus::Blocked);
    assert!(
        err.report.errors[0]
            .message
            .contains("owned by \"billing\""),
        "{:?}",
        err.report.errors
    );
    assert_eq!(s.runtime.len(), 1, "nothing applied");

    let adopt = setup(|c| c.plan.allow_adoption = true);
    adopt
        .runtime
        .apply(&ns, &ApplyOptions::default())
        .await
        .unwrap();
    adopt
        .source
        .commit("prod", [("ns.yaml", NS), ("cm.yaml", CM)], "ada", "x");
    let report = adopt.reconciler.reconcile_once("prod").await.unwrap();
    assert_eq!(report.status, SyncStatus::Synced);
    let live = adopt.runtime.get(ns.key()).await.unwrap().unwrap();
    assert_eq!(live["metadata"]["labels"][OWNER_LABEL], "shop");
}

#[tokio::test]
async fn guards_refuse_empty_revisions_and_mass_prunes() {
    let s = setup(|_| {});
    s.source.commit(
        "prod",
        [("ns.yaml", NS), ("cm.yaml", CM), ("web.yaml", DEPLOY)],
        "ada",
        "x",
    );
    s.reconciler.reconcile_once("prod").await.unwrap();
    s.source
        .commit("prod", [("README.md", "nothing here")], "mallory", "wipe");
    let err = s.reconciler.reconcile_once("prod").await.unwrap_err();
    assert_eq!(err.report.status, SyncStatus::Blocked);
    assert!(
        err.report
            .errors
            .iter()
            .any(|e| e.message.contains("desired state is empty"))
    );
    assert_eq!(s.runtime.len(), 3, "nothing pruned");

    s.source
        .commit("prod", [("ns.yaml", NS)], "mallory", "drop most");
    let err = s.reconciler.reconcile_once("prod").await.unwrap_err();
    assert!(
        err.report
            .errors
            .iter()
            .any(|e| e.message.contains("would prune 2 of 3")),
        "{:?}",
        err.report.errors
    );
    assert_eq!(s.runtime.len(), 3, "nothing pruned");

    let s2 = Reconciler::new(s.source.clone(), s.runtime.clone(), {
        let mut c = ReconcilerConfig::new(owner("shop"));
        c.plan.allow_mass_prune = true;
        c
    })
    .unwrap();
    let report = s2.reconcile_once("prod").await.unwrap();
    assert_eq!(report.summary.delete, 2);
    assert_eq!(s.runtime.len(), 1);
}

#[tokio::test]
async fn prune_needs_both_inventory_and_owner_label() {
    let s = setup(|c| c.plan.allow_mass_prune = true);
    s.source.commit(
        "prod",
        [("ns.yaml", NS), ("cm.yaml", CM), ("web.yaml", DEPLOY)],
        "ada",
        "x",
    );
    s.reconciler.reconcile_once("prod").await.unwrap();
    // Someone relabels the ConfigMap for another owner by hand.
    let relabel = Object::new(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "shop", "labels": {OWNER_LABEL: "other"}}}))
    .unwrap();
    s.runtime
        .apply(&relabel, &ApplyOptions::new("kubectl").force(true))
        .await
        .unwrap();
    // An object carrying our label that the inventory never listed.
    let stray = Object::new(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "stray", "namespace": "shop", "labels": {OWNER_LABEL: "shop"}}}))
    .unwrap();
    s.runtime
        .apply(&stray, &ApplyOptions::default())
        .await
        .unwrap();

    s.source
        .commit("prod", [("ns.yaml", NS)], "ada", "only the namespace");
    let report = s.reconciler.reconcile_once("prod").await.unwrap();
    let deleted: Vec<String> = report
        .steps
        .iter()
        .map(|s| format!("{} {}", s.action, s.key))
        .collect();
    assert_eq!(deleted, ["delete Deployment.apps/shop/web"]);
    let plan = report.plan.unwrap();
    assert_eq!(plan.skipped.len(), 1);
    assert!(plan.skipped[0].reason.contains("owner label is \"other\""));
    assert!(
        s.runtime.get(stray.key()).await.unwrap().is_some(),
        "never prune what the inventory does not list"
    );
    assert!(s.runtime.get(relabel.key()).await.unwrap().is_some());
}

#[tokio::test]
async fn a_failed_step_stops_the_sync_and_keeps_what_was_applied_in_the_inventory() {
    let source = MemorySource::new();
    let runtime = MemoryRuntime::new();
    let faulty = Arc::new(
        FaultyTarget::new(runtime.clone()).with_fault(Fault::FailKind {
            kind: GroupKind::new("", "ConfigMap"),
        }),
    );
    let reconciler = Reconciler::new(
        source.clone(),
        faulty.clone(),
        ReconcilerConfig::new(owner("shop")),
    )
    .unwrap();
    source.commit(
        "prod",
        [("ns.yaml", NS), ("cm.yaml", CM), ("web.yaml", DEPLOY)],
        "ada",
        "x",
    );
    let err = reconciler.reconcile_once("prod").await.unwrap_err();
    assert_eq!(err.report.status, SyncStatus::StepFailed);
    let outcomes: Vec<StepOutcome> = err.report.steps.iter().map(|s| s.outcome).collect();
    assert_eq!(
        outcomes,
        [StepOutcome::Done, StepOutcome::Failed, StepOutcome::NotRun]
    );
    assert_eq!(runtime.len(), 1, "stopped at the first failure");
    let inv: Inventory = runtime
        .read_inventory(&owner("shop"))
        .await
        .unwrap()
        .unwrap();
    let listed: Vec<String> = inv.objects.keys().map(ToString::to_string).collect();
    assert_eq!(
        listed,
        ["ConfigMap/shop/settings", "Namespace/shop"],
        "what was applied, and what was attempted (it may have reached the runtime), is inventoried"
    );
    assert_eq!(
        inv.revision, None,
        "the revision is not recorded as applied"
    );

    faulty.clear_faults();
    let report = reconciler.reconcile_once("prod").await.unwrap();
    assert_eq!(report.status, SyncStatus::Synced);
    assert_eq!(runtime.len(), 3);
}

#[tokio::test]
async fn namespace_deletion_deletes_its_objects() {
    let s = setup(|_| {});
    s.source
        .commit("prod", [("ns.yaml", NS), ("cm.yaml", CM)], "ada", "x");
    s.reconciler.reconcile_once("prod").await.unwrap();
    assert_eq!(s.runtime.len(), 2);
    s.runtime
        .delete(
            &key("", "Namespace", None, "shop"),
            &DeleteOptions::default(),
        )
        .await
        .unwrap();
    assert!(s.runtime.is_empty());
}

#[tokio::test]
async fn reports_serialise_to_json_and_audit_lines_survive_a_torn_write() {
    use std::io::Write;
    let dir = std::env::temp_dir().join(format!("gitops-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("audit.jsonl");
    let _ = std::fs::remove_file(&path);
    let sink = Arc::new(gitops_core::JsonLinesAudit::open(&path).unwrap());
    let source = MemorySource::new();
    let reconciler = Reconciler::new(
        source.clone(),
        MemoryRuntime::new(),
        ReconcilerConfig::new(owner("shop")),
    )
    .unwrap()
    .with_audit(sink);
    source.commit("prod", [("ns.yaml", NS)], "ada", "first");
    reconciler.reconcile_once("prod").await.unwrap();
    reconciler.reconcile_once("prod").await.unwrap();
    // A crash in the middle of a third record.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"{\"owner\":\"shop\",\"sta")
        .unwrap();
    let log = gitops_core::audit::read_log(&path).unwrap();
    assert_eq!(log.records.len(), 2);
    assert_eq!(log.records[0].status, SyncStatus::Synced);
    assert_eq!(log.records[0].revision.as_ref().unwrap().summary, "first");
    assert_eq!(log.records[1].status, SyncStatus::UpToDate);
    assert_eq!(log.unreadable.len(), 1);
    assert_eq!(log.unreadable[0].0, 3);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn model_types_round_trip_through_json() {
    let snap =
        gitops_core::Snapshot::from_files([("ns.yaml", NS), ("crd.yaml", CRD), ("w.yaml", WIDGET)]);
    let desired = gitops_core::render(&snap, &gitops_core::RenderOptions::default()).unwrap();
    let json = serde_json::to_string(&desired).unwrap();
    let back: gitops_core::DesiredState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, desired);
    let mut inv = Inventory::new(owner("shop"));
    inv.objects_mut().insert(
        key("apps", "Deployment", Some("shop"), "web"),
        "apps/v1".into(),
    );
    inv.objects_mut()
        .insert(key("", "Namespace", None, "shop"), "v1".into());
    let json = serde_json::to_value(&inv).unwrap();
    assert_eq!(
        json["objects"][0],
        json!({"group": "", "kind": "Namespace", "name": "shop", "apiVersion": "v1"})
    );
    assert_eq!(serde_json::from_value::<Inventory>(json).unwrap(), inv);
    inv.version = Some("42".into());
    let json = serde_json::to_value(&inv).unwrap();
    assert_eq!(serde_json::from_value::<Inventory>(json).unwrap(), inv);
    // Live state with the cascade of a deletion.
    let mut live = gitops_core::LiveState::default();
    live.dependents.insert(
        key("", "Namespace", None, "shop"),
        vec![gitops_core::LiveRef::new(
            key("", "ConfigMap", Some("shop"), "c"),
            Some("team-b".into()),
        )],
    );
    let json = serde_json::to_value(&live).unwrap();
    assert_eq!(
        json["dependents"][0]["dependents"][0]["owner"],
        json!("team-b")
    );
    assert_eq!(
        serde_json::from_value::<gitops_core::LiveState>(json).unwrap(),
        live
    );
}

#[tokio::test]
async fn waits_for_health_between_waves() {
    use std::time::Duration;
    let wait = gitops_core::HealthWait::new(Duration::from_millis(60), Duration::from_millis(10));
    // Namespaces and ConfigMaps are healthy at once: the sync goes through.
    let s = setup(|c| c.wait_for_health = Some(wait.clone()));
    s.source
        .commit("prod", [("ns.yaml", NS), ("cm.yaml", CM)], "ada", "x");
    assert_eq!(
        s.reconciler.reconcile_once("prod").await.unwrap().status,
        SyncStatus::Synced
    );

    // The in-memory runtime runs no controllers: a Deployment never becomes
    // available, so its wave times out and the next wave is not applied.
    let s = setup(|c| c.wait_for_health = Some(wait));
    let later = CM.replace(
        "metadata:\n",
        "metadata:\n  annotations: {gitops-rs.io/wave: \"1\"}\n",
    );
    s.source.commit(
        "prod",
        [
            ("ns.yaml", NS),
            ("web.yaml", DEPLOY),
            ("cm.yaml", later.as_str()),
        ],
        "ada",
        "x",
    );
    let err = s.reconciler.reconcile_once("prod").await.unwrap_err();
    assert_eq!(err.report.status, SyncStatus::StepFailed);
    assert!(
        err.report
            .errors
            .iter()
            .any(|e| e.message.contains("wave 0 not healthy")
                && e.message.contains("Deployment.apps/shop/web (Progressing")),
        "{:?}",
        err.report.errors
    );
    assert!(
        s.runtime
            .get(&key("", "ConfigMap", Some("shop"), "settings"))
            .await
            .unwrap()
            .is_none()
    );
}

/// The real-world corpus through the whole loop on the in-memory runtime:
/// every object applied in plan order (CRDs before their custom resources),
/// converged, and a second sync finds nothing to do.
#[tokio::test]
async fn real_world_corpus_converges_on_the_memory_runtime() {
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus"));
    if !root.exists() {
        eprintln!("SKIPPED: corpus not found at {}", root.display());
        return;
    }
    for (name, dir) in [
        ("kube-prometheus", root.join("kube-prometheus/manifests")),
        (
            "online-boutique",
            root.join("online-boutique/kubernetes-manifests"),
        ),
    ] {
        let mut files = Vec::new();
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p.strip_prefix(&dir).unwrap().to_string_lossy().into_owned();
                    files.push((rel, std::fs::read(&p).unwrap()));
                }
            }
        }
        let source = MemorySource::new();
        source.commit("main", files, "corpus", name);
        let runtime = MemoryRuntime::with_system_namespaces();
        // Online Boutique's folder holds a kustomization (which leaves the
        // load generator out); this test reads every file as a plain
        // manifest, which must be asked for explicitly.
        let plain = RenderOptions::default().with_rendering(Rendering::Plain);
        let r = Reconciler::new(
            source,
            runtime.clone(),
            ReconcilerConfig::new(owner("corpus")).render_options(plain),
        )
        .unwrap();
        let report = r.reconcile_once("main").await.unwrap();
        assert_eq!(report.status, SyncStatus::Synced, "{name}: {report}");
        assert!(report.summary.create > 30, "{name}: {}", report.summary);
        let again = r.reconcile_once("main").await.unwrap();
        assert_eq!(again.status, SyncStatus::UpToDate, "{name}: {again}");
    }
}
