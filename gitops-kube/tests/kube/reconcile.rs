//! The core reconciler end to end on a real API server: sync, drift
//! correction, prune after a restart (the inventory lives in the cluster).

use gitops_core::RenderOptions;
use gitops_core::{
    MemorySource, OWNER_LABEL, ObjectKey, OwnerId, Reconciler, ReconcilerConfig, SyncStatus,
    Target, TargetExt,
};
use gitops_kube::KubeTarget;
use gitops_kube::testing::{shared_or_skip, unique_name};
use serde_json::json;

fn config_map(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{v: \"{value}\"}}\n"
    )
}

#[tokio::test]
async fn sync_correct_drift_and_prune_after_restart() {
    let Some(cluster) = shared_or_skip().await else {
        return;
    };
    let ns = cluster.create_namespace("reconcile").await.unwrap();
    let inventory_ns = unique_name("inv");
    let owner = OwnerId::new(unique_name("app")).unwrap();
    let mut config = ReconcilerConfig::new(owner.clone());
    config.render = RenderOptions::default().with_default_namespace(&ns);
    let source = MemorySource::new();
    source.commit(
        "prod",
        [
            ("a.yaml", config_map("a", "1")),
            ("b.yaml", config_map("b", "1")),
            ("c.yaml", config_map("c", "1")),
        ],
        "ada",
        "three config maps",
    );
    let target = || KubeTarget::new(cluster.client()).with_inventory_namespace(&inventory_ns);
    let reconciler = Reconciler::new(source.clone(), target(), config.clone()).unwrap();
    let report = reconciler.reconcile_once("prod").await.unwrap();
    assert_eq!(report.status, SyncStatus::Synced, "{report}");
    let key = |n: &str| ObjectKey::new("", "ConfigMap", Some(&ns), n);
    let live = reconciler.target().get(&key("a")).await.unwrap().unwrap();
    assert_eq!(live["metadata"]["labels"][OWNER_LABEL], owner.as_str());

    // Nothing changed: up to date, no false drift.
    let again = reconciler.reconcile_once("prod").await.unwrap();
    assert_eq!(again.status, SyncStatus::UpToDate, "{again}");

    // Someone edits `b` by hand: the next sync takes it back.
    let edited = gitops_core::Object::new(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "b", "namespace": ns},
        "data": {"v": "hand-edited"}
    }))
    .unwrap();
    let by_hand = gitops_core::ApplyOptions::new("kubectl-edit").force(true);
    reconciler.target().apply(&edited, &by_hand).await.unwrap();
    let fixed = reconciler.reconcile_once("prod").await.unwrap();
    assert_eq!(fixed.status, SyncStatus::Synced, "{fixed}");
    assert!(fixed.drift_corrected.contains(&key("b")), "{fixed}");
    let b = reconciler.target().get(&key("b")).await.unwrap().unwrap();
    assert_eq!(b["data"]["v"], "1");

    // `c` leaves the repository; a new process (fresh target, fresh
    // reconciler) prunes it from the inventory stored in the cluster.
    source.commit(
        "prod",
        [
            ("a.yaml", config_map("a", "2")),
            ("b.yaml", config_map("b", "1")),
        ],
        "ada",
        "drop c",
    );
    let restarted = Reconciler::new(source, target(), config).unwrap();
    let pruned = restarted.reconcile_once("prod").await.unwrap();
    assert_eq!(pruned.status, SyncStatus::Synced, "{pruned}");
    assert!(
        restarted.target().get(&key("c")).await.unwrap().is_none(),
        "c pruned"
    );
    let a = restarted.target().get(&key("a")).await.unwrap().unwrap();
    assert_eq!(a["data"]["v"], "2");
    let inventory = restarted
        .target()
        .read_inventory(&owner)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        inventory.objects.keys().cloned().collect::<Vec<_>>(),
        vec![key("a"), key("b")]
    );
}
