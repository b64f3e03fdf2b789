//! What makes a no-op resync cheap keeps every guarantee (issue 14): the
//! in-memory runtime's versions, kept beside its objects, always are the
//! objects' `resourceVersion`s; a resync that reuses the last no-op plan
//! and the inventory it wrote plans what a fresh reconciler plans, and sees
//! a change another writer made.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use futures::executor::block_on;
use gitops_core::{
    ApplyOptions, DeleteOptions, Fault, FaultyTarget, MemoryRuntime, MemorySource, Object,
    ObjectKey, ObserveRequest, OwnerId, Reconciler, ReconcilerConfig, RenderOptions, SyncStatus,
    Target, TargetExt,
};
use proptest::prelude::*;
use serde_json::json;

fn namespace(name: &str) -> Object {
    Object::new(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}))
        .unwrap()
}

fn config_map(ns: &str, name: &str, value: u8) -> Object {
    Object::new(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns}, "data": {"k": value.to_string()}}))
    .unwrap()
}

/// One write to the runtime.
#[derive(Debug, Clone)]
enum Op {
    Apply { ns: usize, name: usize, value: u8 },
    Update { ns: usize, name: usize, value: u8 },
    Delete { ns: usize, name: usize },
    DeleteNamespace { ns: usize },
    CreateNamespace { ns: usize },
}

const NAMESPACES: [&str; 2] = ["a", "b"];
const NAMES: [&str; 3] = ["x", "y", "z"];

fn op() -> impl Strategy<Value = Op> {
    let ns = 0..NAMESPACES.len();
    let name = 0..NAMES.len();
    prop_oneof![
        4 => (ns.clone(), name.clone(), 0u8..3).prop_map(|(ns, name, value)| Op::Apply { ns, name, value }),
        2 => (ns.clone(), name.clone(), 0u8..3).prop_map(|(ns, name, value)| Op::Update { ns, name, value }),
        2 => (ns.clone(), name).prop_map(|(ns, name)| Op::Delete { ns, name }),
        1 => ns.clone().prop_map(|ns| Op::DeleteNamespace { ns }),
        2 => ns.prop_map(|ns| Op::CreateNamespace { ns }),
    ]
}

fn all_keys() -> BTreeSet<ObjectKey> {
    let mut keys = BTreeSet::new();
    for ns in NAMESPACES {
        keys.insert(namespace(ns).key().clone());
        for name in NAMES {
            keys.insert(config_map(ns, name, 0).key().clone());
        }
    }
    keys
}

/// Runs one write (through a target that fails some of them); its result
/// does not matter, only that the runtime stays consistent.
fn run(target: &impl Target, runtime: &MemoryRuntime, op: &Op) {
    let options = ApplyOptions::default();
    let _ = match op {
        Op::Apply { ns, name, value } => {
            block_on(target.apply(&config_map(NAMESPACES[*ns], NAMES[*name], *value), &options))
                .map(drop)
        }
        Op::Update { ns, name, value } => runtime
            .update(
                &config_map(NAMESPACES[*ns], NAMES[*name], *value),
                "kubectl-edit",
            )
            .map(drop),
        Op::Delete { ns, name } => block_on(target.delete(
            config_map(NAMESPACES[*ns], NAMES[*name], 0).key(),
            &DeleteOptions::default(),
        ))
        .map(drop),
        Op::DeleteNamespace { ns } => {
            block_on(target.delete(namespace(NAMESPACES[*ns]).key(), &DeleteOptions::default()))
                .map(drop)
        }
        Op::CreateNamespace { ns } => {
            block_on(target.apply(&namespace(NAMESPACES[*ns]), &options)).map(drop)
        }
    };
}

/// The versions recomputed from the stored objects.
fn naive_versions(runtime: &MemoryRuntime) -> BTreeMap<ObjectKey, String> {
    runtime
        .objects()
        .into_iter()
        .filter_map(|(k, v)| {
            let version = v.pointer("/metadata/resourceVersion")?.as_str()?.to_owned();
            Some((k, version))
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// After any writes (some failing), `versions` and `still_at` answer
    /// what the stored objects say, and a version seen before a write of
    /// the object no longer holds.
    #[test]
    fn kept_versions_are_the_objects_resource_versions(
        ops in prop::collection::vec(op(), 1..30),
        fail_every in 2usize..6,
    ) {
        let runtime = MemoryRuntime::new();
        let target = FaultyTarget::new(runtime.clone())
            .with_fault(Fault::FailNthCall { n: fail_every, operation: None });
        let keys = all_keys();
        let request = ObserveRequest::new(keys.clone(), None);
        let mut seen: BTreeMap<ObjectKey, String> = BTreeMap::new();
        for op in &ops {
            run(&target, &runtime, op);
            let naive = naive_versions(&runtime);
            let versions = block_on(runtime.versions(&request)).unwrap().unwrap();
            prop_assert_eq!(&versions, &naive);
            // Recorded versions: the current ones and those seen before.
            let recorded: Vec<(&ObjectKey, &str)> = keys
                .iter()
                .map(|k| {
                    let v = naive.get(k).or(seen.get(k)).map_or("0", String::as_str);
                    (k, v)
                })
                .collect();
            let still = block_on(runtime.still_at(&recorded, None)).unwrap().unwrap();
            let want: Vec<bool> = recorded
                .iter()
                .map(|(k, v)| naive.get(*k).is_some_and(|n| n == v))
                .collect();
            prop_assert_eq!(&still, &want);
            // The default (through `versions`) answers the same.
            let through_versions = block_on(target.still_at(&recorded, None)).unwrap().unwrap();
            prop_assert_eq!(&through_versions, &want);
            // Unsorted, and a few: the same answers.
            let reversed: Vec<(&ObjectKey, &str)> = recorded.iter().rev().copied().collect();
            let mut back = block_on(runtime.still_at(&reversed, None)).unwrap().unwrap();
            back.reverse();
            prop_assert_eq!(&back, &want);
            seen.extend(naive);
        }
    }
}

fn owner() -> OwnerId {
    OwnerId::new("shop").unwrap()
}

fn config() -> ReconcilerConfig {
    ReconcilerConfig::new(owner())
        .render_options(RenderOptions::default().with_default_namespace("shop"))
}

fn commit(source: &MemorySource, values: &[&str]) {
    let mut files = vec![(
        "ns.yaml".to_owned(),
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n".to_owned(),
    )];
    for (i, v) in values.iter().enumerate() {
        files.push((
            format!("cm-{i}.yaml"),
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i}\ndata:\n  k: \"{v}\"\n"
            ),
        ));
    }
    source.commit(
        "main",
        files.iter().map(|(p, d)| (p.clone(), d.as_bytes())),
        "ada",
        "change",
    );
}

#[tokio::test]
async fn a_reused_noop_plan_is_the_plan_a_fresh_reconciler_makes() {
    let source = MemorySource::new();
    commit(&source, &["1", "2", "3"]);
    let runtime = MemoryRuntime::new();
    let warm = Reconciler::new(source.clone(), runtime.clone(), config()).unwrap();
    assert_eq!(
        warm.reconcile_once("main").await.unwrap().status,
        SyncStatus::Synced
    );
    // The first resync plans with every object known in sync; the next
    // ones reuse that plan.
    for _ in 0..3 {
        let report = warm.reconcile_once("main").await.unwrap();
        assert_eq!(report.status, SyncStatus::UpToDate);
        let fresh = Reconciler::new(source.clone(), runtime.clone(), config()).unwrap();
        let (_, plan) = fresh.plan("main").await.unwrap();
        assert_eq!(
            serde_json::to_value(report.plan.as_ref().unwrap()).unwrap(),
            serde_json::to_value(&plan).unwrap()
        );
    }
    // A hand edit is still found, and corrected.
    let key = ObjectKey::new("", "ConfigMap", Some("shop"), "c1");
    let mut live = runtime.get(&key).await.unwrap().unwrap();
    live["data"]["k"] = json!("by hand");
    runtime
        .update(&Object::new(live).unwrap(), "kubectl-edit")
        .unwrap();
    let report = warm.reconcile_once("main").await.unwrap();
    assert_eq!(report.drift_corrected, vec![key.clone()]);
    let live = runtime.get(&key).await.unwrap().unwrap();
    assert_eq!(live["data"]["k"], "2");
}

#[tokio::test]
async fn an_inventory_another_writer_changed_is_read_again() {
    let source = MemorySource::new();
    commit(&source, &["1", "2"]);
    let runtime = MemoryRuntime::new();
    let reconciler = Reconciler::new(source.clone(), runtime.clone(), config()).unwrap();
    reconciler.reconcile_once("main").await.unwrap();
    assert_eq!(
        reconciler.reconcile_once("main").await.unwrap().status,
        SyncStatus::UpToDate
    );
    // Another reconciler of the same owner applied an object and listed it.
    let extra = Object::new(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "extra", "namespace": "shop",
            "labels": {"gitops-rs.io/owner": "shop"}}, "data": {"k": "v"}}))
    .unwrap();
    runtime
        .apply(&extra, &ApplyOptions::default())
        .await
        .unwrap();
    let mut inventory = runtime.read_inventory(&owner()).await.unwrap().unwrap();
    inventory
        .objects_mut()
        .insert(extra.key().clone(), "v1".to_owned());
    runtime.write_inventory(&inventory).await.unwrap();
    // This one reads it again (its own copy is of an older version), and
    // prunes what it does not declare.
    let report = reconciler.reconcile_once("main").await.unwrap();
    assert_eq!(report.status, SyncStatus::Synced);
    assert_eq!(report.summary.delete, 1);
    assert!(runtime.get(extra.key()).await.unwrap().is_none());
    let stored = runtime.read_inventory(&owner()).await.unwrap().unwrap();
    assert!(!stored.contains(extra.key()));
    assert_eq!(
        reconciler.reconcile_once("main").await.unwrap().status,
        SyncStatus::UpToDate
    );
}
