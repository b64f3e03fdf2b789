//! The [`Target`] conformance suite.
//!
//! Call [`run_all`] with the backend and a prefix that is unique for the
//! run (namespaces `PREFIX-…` are created; a shared cluster needs unique
//! names). Objects are plain `v1` ConfigMaps and Namespaces, so the suite
//! runs against any Kubernetes version.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::key::ObjectKey;
use crate::object::Object;
use crate::target::{
    ApplyOptions, DeleteOptions, DeleteOutcome, Inventory, ObserveRequest, OwnerId, Target,
    TargetError, TargetExt,
};

fn obj(v: Value) -> Object {
    Object::new(v).expect("the suite's own objects are valid")
}

fn opts(manager: &str) -> ApplyOptions {
    ApplyOptions {
        field_manager: manager.to_owned(),
        force: false,
        dry_run: false,
    }
}

fn namespace(name: &str) -> Object {
    obj(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}))
}

fn config_map(ns: &str, name: &str, data: Value) -> Object {
    obj(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, "labels": {"suite": "conformance"}},
        "data": data,
    }))
}

async fn ensure_namespace(t: &dyn Target, name: &str) {
    t.apply(&namespace(name), &opts("conformance-setup"))
        .await
        .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
}

fn managers(live: &Value) -> Vec<String> {
    live.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|e| e.get("manager").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs every behaviour with namespaces named `{prefix}-…`.
pub async fn run_all(t: &dyn Target, prefix: &str) {
    apply_creates_and_observe_reads(t, prefix).await;
    apply_removes_fields_no_longer_declared(t, prefix).await;
    conflicts_with_other_managers(t, prefix).await;
    dry_run_persists_nothing(t, prefix).await;
    missing_namespace_is_refused(t, prefix).await;
    unknown_kind_is_refused(t, prefix).await;
    delete_and_missing_objects(t, prefix).await;
    inventories_round_trip(t, prefix).await;
}

/// Apply creates an object; observe returns it with server metadata and
/// our field manager in `managedFields`; absent keys are left out.
pub async fn apply_creates_and_observe_reads(t: &dyn Target, prefix: &str) {
    let ns = format!("{prefix}-create");
    ensure_namespace(t, &ns).await;
    let cm = config_map(&ns, "one", json!({"a": "1"}));
    let stored = t.apply(&cm, &opts("suite")).await.expect("apply creates");
    assert_eq!(stored.pointer("/data/a"), Some(&json!("1")));
    let missing = ObjectKey::new("", "ConfigMap", Some(&ns), "absent");
    let live = t
        .observe(&ObserveRequest {
            keys: BTreeSet::from([cm.key().clone(), missing.clone()]),
            owner: None,
        })
        .await
        .expect("observe");
    assert!(live.get(&missing).is_none(), "absent objects are left out");
    let got = live.get(cm.key()).expect("the applied object is observed");
    assert_eq!(got.pointer("/data/a"), Some(&json!("1")));
    for field in ["uid", "resourceVersion", "creationTimestamp"] {
        assert!(
            got.pointer(&format!("/metadata/{field}")).is_some(),
            "the runtime sets metadata.{field}"
        );
    }
    assert!(
        managers(got).contains(&"suite".to_owned()),
        "managedFields name our manager: {got}"
    );
    // Applying the same manifest again changes nothing.
    let again = t.apply(&cm, &opts("suite")).await.expect("re-apply");
    assert_eq!(again.pointer("/data"), got.pointer("/data"));
    assert_eq!(again.pointer("/metadata/uid"), got.pointer("/metadata/uid"));
}

/// A field we applied before and no longer declare is removed.
pub async fn apply_removes_fields_no_longer_declared(t: &dyn Target, prefix: &str) {
    let ns = format!("{prefix}-remove");
    ensure_namespace(t, &ns).await;
    t.apply(
        &config_map(&ns, "cm", json!({"keep": "1", "drop": "2"})),
        &opts("suite"),
    )
    .await
    .expect("first apply");
    let after = t
        .apply(&config_map(&ns, "cm", json!({"keep": "1"})), &opts("suite"))
        .await
        .expect("second apply");
    assert_eq!(
        after.pointer("/data"),
        Some(&json!({"keep": "1"})),
        "{after}"
    );
}

/// A field another manager owns with another value is a conflict naming that
/// manager, unless forced.
pub async fn conflicts_with_other_managers(t: &dyn Target, prefix: &str) {
    let ns = format!("{prefix}-conflict");
    ensure_namespace(t, &ns).await;
    t.apply(
        &config_map(&ns, "shared", json!({"k": "theirs"})),
        &opts("someone-else"),
    )
    .await
    .expect("other manager applies");
    let cm = config_map(&ns, "shared", json!({"k": "ours"}));
    match t.apply(&cm, &opts("suite")).await {
        Err(TargetError::Conflict { key, conflicts }) => {
            assert_eq!(&key, cm.key());
            assert!(
                conflicts.iter().any(|c| c.manager == "someone-else"),
                "the conflict names the other manager: {conflicts:?}"
            );
        }
        other => panic!("expected a Conflict, got {other:?}"),
    }
    let forced = ApplyOptions {
        force: true,
        ..opts("suite")
    };
    let stored = t.apply(&cm, &forced).await.expect("forced apply");
    assert_eq!(stored.pointer("/data/k"), Some(&json!("ours")));
}

/// With `dry_run`, nothing is stored, and errors are still reported.
pub async fn dry_run_persists_nothing(t: &dyn Target, prefix: &str) {
    let ns = format!("{prefix}-dry");
    ensure_namespace(t, &ns).await;
    let dry = ApplyOptions {
        dry_run: true,
        ..opts("suite")
    };
    let cm = config_map(&ns, "dry", json!({"a": "1"}));
    let out = t.apply(&cm, &dry).await.expect("dry-run apply");
    assert_eq!(out.pointer("/data/a"), Some(&json!("1")));
    assert!(
        t.get(cm.key()).await.expect("get").is_none(),
        "dry run stored nothing"
    );
    let orphan = config_map(&format!("{prefix}-no-such-ns"), "x", json!({}));
    assert!(
        t.apply(&orphan, &dry).await.is_err(),
        "dry run still validates"
    );
}

/// A namespaced object in a namespace that does not exist is refused.
pub async fn missing_namespace_is_refused(t: &dyn Target, prefix: &str) {
    let cm = config_map(&format!("{prefix}-absent"), "x", json!({}));
    match t.apply(&cm, &opts("suite")).await {
        Err(TargetError::NamespaceNotFound { namespace, .. }) => {
            assert_eq!(namespace, format!("{prefix}-absent"))
        }
        other => panic!("expected NamespaceNotFound, got {other:?}"),
    }
}

/// A kind the runtime does not serve is [`TargetError::UnknownKind`].
pub async fn unknown_kind_is_refused(t: &dyn Target, prefix: &str) {
    let ns = format!("{prefix}-unknown");
    ensure_namespace(t, &ns).await;
    let widget = obj(json!({
        "apiVersion": "conformance.gitops-rs.io/v1", "kind": "Widget",
        "metadata": {"name": "w", "namespace": ns}, "spec": {}
    }));
    match t.apply(&widget, &opts("suite")).await {
        Err(TargetError::UnknownKind { key, api_version }) => {
            assert_eq!(&key, widget.key());
            assert_eq!(api_version, "conformance.gitops-rs.io/v1");
        }
        other => panic!("expected UnknownKind, got {other:?}"),
    }
}

/// Delete removes an object; deleting a missing one is `NotFound`, not an error.
pub async fn delete_and_missing_objects(t: &dyn Target, prefix: &str) {
    let ns = format!("{prefix}-delete");
    ensure_namespace(t, &ns).await;
    let cm = config_map(&ns, "gone", json!({}));
    t.apply(&cm, &opts("suite")).await.expect("apply");
    let d = DeleteOptions::default();
    assert_eq!(
        t.delete(cm.key(), &d).await.expect("delete"),
        DeleteOutcome::Deleted
    );
    assert!(
        t.get(cm.key()).await.expect("get").is_none(),
        "deleted objects are gone"
    );
    assert_eq!(
        t.delete(cm.key(), &d).await.expect("delete again"),
        DeleteOutcome::NotFound
    );
}

/// Inventories round-trip, per owner.
pub async fn inventories_round_trip(t: &dyn Target, prefix: &str) {
    let a = OwnerId::new(format!("{prefix}-inv-a")).expect("valid owner id");
    let b = OwnerId::new(format!("{prefix}-inv-b")).expect("valid owner id");
    assert!(
        t.read_inventory(&a).await.expect("read").is_none(),
        "no inventory yet"
    );
    let mut inv = Inventory::new(a.clone());
    inv.revision = Some("0123456789abcdef".into());
    inv.objects.insert(
        ObjectKey::new("apps", "Deployment", Some("shop"), "web"),
        "apps/v1".into(),
    );
    inv.objects
        .insert(ObjectKey::new("", "Namespace", None, "shop"), "v1".into());
    t.write_inventory(&inv).await.expect("write");
    assert_eq!(
        t.read_inventory(&a).await.expect("read").as_ref(),
        Some(&inv)
    );
    assert!(
        t.read_inventory(&b).await.expect("read other").is_none(),
        "owners are independent"
    );
    inv.objects.clear();
    inv.revision = Some("fedcba9876543210".into());
    t.write_inventory(&inv).await.expect("overwrite");
    assert_eq!(
        t.read_inventory(&a).await.expect("read").as_ref(),
        Some(&inv)
    );
}
