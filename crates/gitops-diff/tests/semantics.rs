//! What counts as a difference: canonical values, lists, ownership, ignore rules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use gitops_diff::{
    ApplyError, ApplyRequest, BuiltinLists, CrdLists, DiffError, DiffOptions, FieldPath, FieldSet,
    GroupKind, IgnoreRule, LayeredLists, Op, compare, server_side_apply,
};
use serde_json::{Value, json};

fn diff(d: &Value, l: &Value) -> Vec<String> {
    compare(d, l, None, &DiffOptions::default())
        .unwrap()
        .changes
        .iter()
        .map(|c| format!("{:?} {}", c.op, c.path))
        .collect()
}

fn declared(v: &Value) -> FieldSet {
    FieldSet::declared_by(v, &BuiltinLists, &GroupKind::of(v))
}

#[test]
fn quantities_only_in_quantity_positions() {
    let cm = |v: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"cpu": v}});
    assert_eq!(
        diff(&cm(json!("0.5")), &cm(json!("500m"))),
        ["Replace data.cpu"]
    );
    let quota = |v: Value| {
        json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
               "spec": {"hard": {"requests.memory": v, "pods": "10"}}})
    };
    assert!(diff(&quota(json!("1Gi")), &quota(json!("1024Mi"))).is_empty());
    assert_eq!(diff(&quota(json!("1Gi")), &quota(json!("1G"))).len(), 1);
    let lr = |v: Value| {
        json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "l"},
               "spec": {"limits": [{"type": "Container", "max": {"cpu": v}}]}})
    };
    assert!(diff(&lr(json!(2)), &lr(json!("2000m"))).is_empty());
    let pvc = |v: Value| {
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "p"},
               "spec": {"resources": {"requests": {"storage": v}}}})
    };
    assert!(diff(&pvc(json!("1Gi")), &pvc(json!("1073741824"))).is_empty());
    let pod = |v: Value| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
               "spec": {"containers": [{"name": "a", "resources": {"limits": {"cpu": v}}}]}})
    };
    assert!(diff(&pod(json!("1")), &pod(json!(1))).is_empty());
    assert_eq!(diff(&pod(json!("1")), &pod(json!("1.5"))).len(), 1);
}

#[test]
fn empty_null_and_numbers() {
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "d", "annotations": {}, "labels": null},
    "spec": {"replicas": 3, "template": {"spec": {"securityContext": {}, "containers": [
        {"name": "a", "args": [], "env": null}
    ]}}}});
    let l = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d", "labels": {"x": "y"}},
        "spec": {"replicas": 3.0, "template": {"spec": {"containers": [{"name": "a"}]}}}});
    assert!(diff(&d, &l).is_empty());
}

#[test]
fn sets_and_ports() {
    let d = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "finalizers": ["a"]},
        "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}]}]}});
    let l = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "finalizers": ["b", "a"]},
        "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 53, "protocol": "TCP"}, {"containerPort": 80, "protocol": "TCP"}]}]}});
    assert_eq!(
        diff(&d, &l),
        ["Add spec.containers[name=c].ports[containerPort=53,protocol=UDP]"]
    );
    // We owned finalizer "b" before: now a removal.
    let mut before = d.clone();
    before["metadata"]["finalizers"] = json!(["a", "b"]);
    let prev = declared(&before);
    let out = compare(&d, &l, Some(&prev), &DiffOptions::default()).unwrap();
    let removal = out.changes.iter().find(|c| c.op == Op::Remove).unwrap();
    assert_eq!(removal.path.to_string(), "metadata.finalizers[=b]");
    assert_eq!(removal.pointer, "/metadata/finalizers/0");
}

#[test]
fn fields_shared_with_other_managers_are_not_removed() {
    let d = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
    let mut l = d.clone();
    l["data"]["b"] = json!("2");
    let prev = FieldSet::from_fields_v1(&json!({"f:data": {"f:a": {}, "f:b": {}}})).unwrap();
    l["metadata"]["managedFields"] = json!([
        {"manager": "gitops", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:data": {"f:a": {}, "f:b": {}}}},
    ]);
    let out = compare(&d, &l, Some(&prev), &DiffOptions::default()).unwrap();
    assert_eq!(out.changes.len(), 1);
    assert_eq!(out.merge_patch(), json!({"data": {"b": null}}));
    l["metadata"]["managedFields"].as_array_mut().unwrap().push(json!(
        {"manager": "kubectl-edit", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:data": {"f:b": {}}}}
    ));
    assert!(
        compare(&d, &l, Some(&prev), &DiffOptions::default())
            .unwrap()
            .is_empty()
    );
    // A broken managedFields is reported when it is needed.
    l["metadata"]["managedFields"] = json!("nope");
    assert!(matches!(
        compare(&d, &l, Some(&prev), &DiffOptions::default()),
        Err(DiffError::ManagedFields { .. })
    ));
}

#[test]
fn ignore_rules_match_group_and_kind() {
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": 1}});
    let mut l = d.clone();
    l["spec"]["replicas"] = json!(4);
    let rule = |group: &str, kind: &str| DiffOptions {
        ignore: vec![IgnoreRule {
            group: Some(group.into()),
            kind: Some(kind.into()),
            json_pointers: vec!["/spec/replicas".into()],
            managers: vec![],
        }],
        ..DiffOptions::default()
    };
    assert!(
        compare(&d, &l, None, &rule("apps", "Deployment"))
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        compare(&d, &l, None, &rule("apps", "StatefulSet"))
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        compare(&d, &l, None, &rule("", "Deployment"))
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn crd_hook_from_schema() {
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "things.example.com"},
    "spec": {"group": "example.com", "names": {"kind": "Thing"}, "versions": [{"name": "v1",
        "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "servers": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["host"],
                        "items": {"type": "object", "properties": {"host": {"type": "string"}, "port": {"type": "integer"}}}}
        }}}}}}]}});
    let d = json!({"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "t"},
        "spec": {"servers": [{"host": "a", "port": 1}, {"host": "b", "port": 2}]}});
    let l = json!({"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "t"},
        "spec": {"servers": [{"host": "b", "port": 2}, {"host": "a", "port": 1, "weight": 5}]},
        "status": {"ready": false}});
    let opts = DiffOptions {
        lists: Arc::new(LayeredLists::new(vec![Arc::new(
            CrdLists::from_crd(&crd).unwrap(),
        )])),
        ignore: vec![],
    };
    assert!(compare(&d, &l, None, &opts).unwrap().is_empty());
    // Without the hook the list is atomic and the order matters.
    assert_eq!(diff(&d, &l), ["Replace spec.servers"]);
}

#[test]
fn change_list_serializes() {
    let d = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
    let l = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "2"}});
    let out = compare(&d, &l, None, &DiffOptions::default()).unwrap();
    assert_eq!(
        serde_json::to_value(&out).unwrap(),
        json!({"changes": [{"path": "data.a", "pointer": "/data/a", "op": "replace", "before": "2", "after": "1"}]})
    );
}

#[test]
fn apply_conflict_names_list_items() {
    let d = |image: &str| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}})
    };
    let a = d("a:1");
    let req = |live, applied, manager, force| ApplyRequest {
        live,
        applied,
        manager,
        force,
        lists: &BuiltinLists,
        time: None,
    };
    let live = server_side_apply(req(None, &a, "alice", false)).unwrap();
    let b = d("a:2");
    let err = server_side_apply(req(Some(&live), &b, "bob", false)).unwrap_err();
    let ApplyError::Conflict { conflicts } = err else {
        panic!()
    };
    assert_eq!(conflicts.len(), 1);
    assert_eq!(
        conflicts[0].path,
        FieldPath::fields(&["spec", "template", "spec", "containers"])
            .0
            .into_iter()
            .chain([
                gitops_diff::PathElement::key([("name".to_string(), json!("app"))]),
                gitops_diff::PathElement::Field("image".into()),
            ])
            .collect::<Vec<_>>()
            .into()
    );
    let forced = server_side_apply(req(Some(&live), &b, "bob", true)).unwrap();
    assert_eq!(
        forced["spec"]["template"]["spec"]["containers"][0]["image"],
        "a:2"
    );
    // alice still owns the container item and its name, not the image.
    let alice = gitops_diff::owned_by(&forced, "alice").unwrap().unwrap();
    assert!(!alice.iter().any(|p| p.to_string().ends_with(".image")));
    assert!(
        alice
            .iter()
            .any(|p| p.to_string().ends_with("[name=app].name"))
    );
}
