//! The [`Target`] conformance suite.
//!
//! Call [`run_all`] with the backend and a prefix that is unique for the
//! run (namespaces `PREFIX-…` are created; a shared cluster needs unique
//! names). Objects are plain `v1` ConfigMaps and Namespaces, so the suite
//! runs against any Kubernetes version; [`dependents_of_a_crd`] also creates
//! an `apiextensions.k8s.io/v1` CRD (Kubernetes 1.16 and later).

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::key::ObjectKey;
use crate::object::Object;
use crate::target::{
    ApplyOptions, DeleteOptions, DeleteOutcome, Inventory, LiveRef, OWNER_LABEL, ObserveRequest,
    OwnerId, Target, TargetError, TargetExt,
};

fn obj(v: Value) -> Object {
    Object::new(v).expect("the suite's own objects are valid")
}

fn opts(manager: &str) -> ApplyOptions {
    ApplyOptions::new(manager)
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
    inventory_writes_are_compare_and_swap(t, prefix).await;
    dependents_of_a_namespace(t, prefix).await;
    dependents_of_a_crd(t, prefix).await;
    versions_change_on_every_write(t, prefix).await;
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
    inv.objects_mut().insert(
        ObjectKey::new("apps", "Deployment", Some("shop"), "web"),
        "apps/v1".into(),
    );
    inv.objects_mut()
        .insert(ObjectKey::new("", "Namespace", None, "shop"), "v1".into());
    inv.version = Some(t.write_inventory(&inv).await.expect("write"));
    assert_eq!(
        t.read_inventory(&a).await.expect("read").as_ref(),
        Some(&inv),
        "read returns what was written, with the version write returned"
    );
    assert!(
        t.read_inventory(&b).await.expect("read other").is_none(),
        "owners are independent"
    );
    inv.objects_mut().clear();
    inv.revision = Some("fedcba9876543210".into());
    inv.version = Some(t.write_inventory(&inv).await.expect("overwrite"));
    assert_eq!(
        t.read_inventory(&a).await.expect("read").as_ref(),
        Some(&inv)
    );
}

/// Inventory writes are compare-and-swap on the version read: writing over
/// a version that is no longer stored (or creating one that exists) fails
/// with [`TargetError::InventoryConflict`] and writes nothing.
pub async fn inventory_writes_are_compare_and_swap(t: &dyn Target, prefix: &str) {
    let owner = OwnerId::new(format!("{prefix}-cas")).expect("valid owner id");
    let mut first = Inventory::new(owner.clone());
    first.revision = Some("1111".into());
    let v1 = t.write_inventory(&first).await.expect("create");
    // A second writer that also saw no inventory loses.
    let mut late = Inventory::new(owner.clone());
    late.revision = Some("late".into());
    match t.write_inventory(&late).await {
        Err(TargetError::InventoryConflict { owner: o, expected }) => {
            assert_eq!(o, owner);
            assert_eq!(expected, None);
        }
        other => {
            panic!("creating an existing inventory: expected InventoryConflict, got {other:?}")
        }
    }
    // Two writers read v1; the first wins, the second fails.
    let read = t
        .read_inventory(&owner)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(read.version.as_deref(), Some(v1.as_str()));
    let mut a = read.clone();
    a.revision = Some("2222".into());
    a.objects_mut()
        .insert(ObjectKey::new("", "ConfigMap", Some("x"), "a"), "v1".into());
    let v2 = t.write_inventory(&a).await.expect("first writer");
    assert_ne!(v2, v1, "a write changes the version");
    let mut b = read;
    b.revision = Some("3333".into());
    match t.write_inventory(&b).await {
        Err(e @ TargetError::InventoryConflict { .. }) => {
            assert!(e.to_string().contains(owner.as_str()), "{e}");
        }
        other => panic!("a stale write: expected InventoryConflict, got {other:?}"),
    }
    let stored = t
        .read_inventory(&owner)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(
        stored.revision.as_deref(),
        Some("2222"),
        "the stale write wrote nothing"
    );
    assert_eq!(stored.objects, a.objects);
    assert_eq!(stored.version.as_deref(), Some(v2.as_str()));
}

fn labelled_config_map(ns: &str, name: &str, owner: Option<&str>) -> Object {
    let mut v = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, "labels": {"suite": "conformance"}},
        "data": {"k": "v"},
    });
    if let Some(o) = owner {
        v["metadata"]["labels"][OWNER_LABEL] = json!(o);
    }
    obj(v)
}

/// The dependents of a Namespace are the objects in it, each with its owner
/// label; objects elsewhere are not; a ConfigMap and a missing object
/// cascade nothing.
pub async fn dependents_of_a_namespace(t: &dyn Target, prefix: &str) {
    let ns = format!("{prefix}-cascade");
    let other_ns = format!("{prefix}-cascade-other");
    ensure_namespace(t, &ns).await;
    ensure_namespace(t, &other_ns).await;
    let ours = labelled_config_map(&ns, "ours", Some("team-a"));
    let theirs = labelled_config_map(&ns, "theirs", Some("team-b"));
    let nobody = labelled_config_map(&ns, "nobody", None);
    let elsewhere = labelled_config_map(&other_ns, "elsewhere", Some("team-a"));
    for o in [&ours, &theirs, &nobody, &elsewhere] {
        t.apply(o, &opts("suite")).await.expect("apply");
    }
    let ns_key = ObjectKey::new("", "Namespace", None, ns.clone());
    let found: BTreeSet<LiveRef> = t
        .dependents(&ns_key)
        .await
        .expect("dependents")
        .into_iter()
        .collect();
    for (o, owner) in [
        (&ours, Some("team-a")),
        (&theirs, Some("team-b")),
        (&nobody, None),
    ] {
        let expected = LiveRef::new(o.key().clone(), owner.map(str::to_owned));
        assert!(found.contains(&expected), "{expected} in {found:?}");
    }
    assert!(
        found
            .iter()
            .all(|d| d.key.namespace.as_deref() == Some(ns.as_str())),
        "only objects in the namespace: {found:?}"
    );
    assert!(
        t.dependents(ours.key())
            .await
            .expect("dependents")
            .is_empty(),
        "a ConfigMap cascades nothing"
    );
    let missing = ObjectKey::new("", "Namespace", None, format!("{prefix}-cascade-none"));
    assert!(
        t.dependents(&missing).await.expect("dependents").is_empty(),
        "a missing object cascades nothing"
    );
}

/// The dependents of a CRD are its custom resources in every namespace.
pub async fn dependents_of_a_crd(t: &dyn Target, prefix: &str) {
    let group = format!("{prefix}.conformance.gitops-rs.io");
    let crd = obj(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("gadgets.{group}")},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "listKind": "GadgetList"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                }}}
            }]
        }
    }));
    t.apply(&crd, &opts("suite")).await.expect("apply the CRD");
    let gadget = |ns: &str, name: &str, owner: &str| {
        obj(json!({
            "apiVersion": format!("{group}/v1"), "kind": "Gadget",
            "metadata": {"name": name, "namespace": ns, "labels": {OWNER_LABEL: owner}},
            "spec": {}
        }))
    };
    let (ns_a, ns_b) = (format!("{prefix}-gadgets-a"), format!("{prefix}-gadgets-b"));
    ensure_namespace(t, &ns_a).await;
    ensure_namespace(t, &ns_b).await;
    let one = gadget(&ns_a, "one", "team-a");
    let two = gadget(&ns_b, "two", "team-b");
    for o in [&one, &two] {
        t.apply(o, &opts("suite"))
            .await
            .expect("apply a custom resource");
    }
    let found: BTreeSet<LiveRef> = t
        .dependents(crd.key())
        .await
        .expect("dependents")
        .into_iter()
        .collect();
    let expected = BTreeSet::from([
        LiveRef::new(one.key().clone(), Some("team-a".into())),
        LiveRef::new(two.key().clone(), Some("team-b".into())),
    ]);
    assert_eq!(found, expected, "every custom resource, in every namespace");
}

/// When the backend reports versions ([`Target::versions`]): each is the
/// `resourceVersion` observe returns, absent objects are left out, and
/// every write changes it (another manager's too). A backend that reports
/// none passes.
pub async fn versions_change_on_every_write(t: &dyn Target, prefix: &str) {
    let ns = format!("{prefix}-versions");
    ensure_namespace(t, &ns).await;
    let cm = config_map(&ns, "v", json!({"a": "1"}));
    let missing = ObjectKey::new("", "ConfigMap", Some(&ns), "absent");
    let request = ObserveRequest {
        keys: BTreeSet::from([cm.key().clone(), missing.clone()]),
        owner: None,
    };
    t.apply(&cm, &opts("suite")).await.expect("apply");
    let Some(first) = t.versions(&request).await.expect("versions") else {
        return;
    };
    assert!(!first.contains_key(&missing), "absent objects are left out");
    let live = t.get(cm.key()).await.expect("get").expect("applied");
    assert_eq!(
        first.get(cm.key()).map(String::as_str),
        live.pointer("/metadata/resourceVersion")
            .and_then(Value::as_str),
        "the version is the observed resourceVersion"
    );
    let changed = config_map(&ns, "v", json!({"a": "2"}));
    t.apply(&changed, &opts("suite"))
        .await
        .expect("apply a change");
    let second = t
        .versions(&request)
        .await
        .expect("versions")
        .unwrap_or_default();
    assert_ne!(
        first.get(cm.key()),
        second.get(cm.key()),
        "a write changes the version"
    );
    let other = config_map(&ns, "v", json!({"b": "1"}));
    t.apply(&other, &opts("suite-other"))
        .await
        .expect("another manager's apply");
    let third = t
        .versions(&request)
        .await
        .expect("versions")
        .unwrap_or_default();
    assert_ne!(
        second.get(cm.key()),
        third.get(cm.key()),
        "any manager's write changes it"
    );
    t.delete(cm.key(), &DeleteOptions::default())
        .await
        .expect("delete");
    let gone = t
        .versions(&request)
        .await
        .expect("versions")
        .unwrap_or_default();
    assert!(
        !gone.contains_key(cm.key()),
        "a deleted object has no version"
    );
}
