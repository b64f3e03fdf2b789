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
    let rule = |group: &str, kind: &str| {
        DiffOptions::new().ignore(
            IgnoreRule::new()
                .group(group)
                .kind(kind)
                .pointer("/spec/replicas"),
        )
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
    let opts = DiffOptions::new().lists(Arc::new(LayeredLists::new(vec![Arc::new(
        CrdLists::from_crd(&crd).unwrap(),
    )])));
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
    let req = |live, applied, manager, force| {
        ApplyRequest::new(live, applied, manager, &BuiltinLists).force(force)
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

/// Before Kubernetes 1.21 the kube target sends `protocol: TCP` for ports
/// that omit it, so our manager owns `protocol`; the manifest does not
/// declare it. The item still matches by its defaulted key: no removal.
#[test]
fn owned_list_key_field_at_its_default_is_not_a_removal() {
    let svc = |ports: Value| {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
               "spec": {"ports": ports}})
    };
    let d = svc(json!([{"port": 80}]));
    let sent = svc(json!([{"port": 80, "protocol": "TCP"}]));
    let l = sent.clone();
    let prev = declared(&sent);
    assert!(
        prev.iter()
            .any(|p| p.to_string() == "spec.ports[port=80,protocol=TCP].protocol")
    );
    let out = compare(&d, &l, Some(&prev), &DiffOptions::default()).unwrap();
    assert!(out.is_empty(), "{:#?}", out.changes);

    // Same for container ports in a pod template.
    let deploy = |ports: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
               "spec": {"template": {"spec": {"containers": [{"name": "a", "ports": ports}]}}}})
    };
    let sent = deploy(json!([{"containerPort": 8080, "protocol": "TCP"}]));
    let out = compare(
        &deploy(json!([{"containerPort": 8080}])),
        &sent,
        Some(&declared(&sent)),
        &DiffOptions::default(),
    )
    .unwrap();
    assert!(out.is_empty(), "{:#?}", out.changes);

    // A key field at another value is still removed with its item when the
    // desired item no longer matches: UDP owned, desired now (defaulted) TCP.
    let udp = svc(json!([{"port": 80, "protocol": "UDP"}]));
    let out = compare(&d, &udp, Some(&declared(&udp)), &DiffOptions::default()).unwrap();
    let got: Vec<String> = out
        .changes
        .iter()
        .map(|c| format!("{:?} {}", c.op, c.path))
        .collect();
    assert_eq!(
        got,
        [
            "Add spec.ports[port=80,protocol=TCP]",
            "Remove spec.ports[port=80,protocol=UDP]"
        ]
    );

    // A non-key field we owned and no longer declare is still a removal.
    let with_name = svc(json!([{"port": 80, "protocol": "TCP", "name": "http"}]));
    let out = compare(
        &d,
        &with_name,
        Some(&declared(&with_name)),
        &DiffOptions::default(),
    )
    .unwrap();
    let got: Vec<String> = out
        .changes
        .iter()
        .map(|c| format!("{:?} {}", c.op, c.path))
        .collect();
    assert_eq!(got, ["Remove spec.ports[port=80,protocol=TCP].name"]);
}

/// The API server folds `stringData` into `data` (base64) and never stores
/// `stringData`.
#[test]
fn secret_string_data_compares_as_data() {
    let d = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
        "type": "Opaque",
        "data": {"a": "eA==", "b": "b2xk"},
        "stringData": {"b": "new", "c": "hello world"}});
    // What the server stores: stringData wins over data for `b`.
    let l = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
        "type": "Opaque",
        "data": {"a": "eA==", "b": "bmV3", "c": "aGVsbG8gd29ybGQ="}});
    // The server records the applied stringData fields as owned.
    let prev = declared(&d);
    assert!(prev.iter().any(|p| p.to_string() == "stringData.c"));
    let out = compare(&d, &l, Some(&prev), &DiffOptions::default()).unwrap();
    assert!(out.is_empty(), "{:#?}", out.changes);

    // A changed stringData value is drift, on `data`.
    let mut changed = l.clone();
    changed["data"]["c"] = json!("b3RoZXI=");
    let out = compare(&d, &changed, Some(&prev), &DiffOptions::default()).unwrap();
    assert_eq!(out.changes.len(), 1, "{:#?}", out.changes);
    assert_eq!(out.changes[0].op, Op::Replace);
    assert_eq!(out.changes[0].path.to_string(), "data.c");
    assert_eq!(out.changes[0].after, Some(json!("aGVsbG8gd29ybGQ=")));
    let mut patched = changed.clone();
    json_patch::patch(&mut patched, &out.json_patch()).unwrap();
    assert_eq!(patched, l);

    // Ignoring the stringData key, or the data key it folds into, ignores
    // the drift.
    let mut drifted = l.clone();
    drifted["data"]["c"] = json!("b3RoZXI=");
    for pointer in ["/stringData/c", "/data/c"] {
        let opts = DiffOptions::new().ignore(IgnoreRule::new().pointer(pointer));
        let out = compare(&d, &drifted, Some(&prev), &opts).unwrap();
        assert!(out.is_empty(), "{pointer}: {:#?}", out.changes);
    }

    // Only core/v1 Secrets: another kind's stringData is a plain field.
    let mut cr = d.clone();
    cr["apiVersion"] = json!("example.com/v1");
    let mut cr_live = l.clone();
    cr_live["apiVersion"] = json!("example.com/v1");
    assert_eq!(diff(&cr, &cr_live), ["Replace data.b", "Add stringData"]);

    // The in-memory server-side apply stores it the same way.
    let req = ApplyRequest::new(None, &d, "m", &BuiltinLists);
    let applied = server_side_apply(req).unwrap();
    assert_eq!(applied["data"], l["data"]);
    assert!(applied.get("stringData").is_none());
    let owned = gitops_diff::owned_by(&applied, "m").unwrap().unwrap();
    assert_eq!(owned, prev);
    assert!(
        compare(&d, &applied, Some(&owned), &DiffOptions::default())
            .unwrap()
            .is_empty()
    );
}

/// Go's `omitempty`: built-in types do not store a `false`, `0` or `""`.
#[test]
fn declared_zero_values_of_builtin_kinds_are_not_drift() {
    let deploy = |mount: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "grafana"},
            "spec": {"template": {"spec": {
                "automountServiceAccountToken": false,
                "containers": [{"name": "grafana", "volumeMounts": [mount],
                    "securityContext": {"readOnlyRootFilesystem": false}}],
                "tolerations": [{"key": "k", "operator": "Exists", "tolerationSeconds": 0, "value": ""}]}}}})
    };
    let d =
        deploy(json!({"mountPath": "/data", "name": "storage", "readOnly": false, "subPath": ""}));
    let mut l = deploy(json!({"mountPath": "/data", "name": "storage"}));
    l["spec"]["template"]["spec"]["containers"][0]["securityContext"] = json!({});
    l["spec"]["template"]["spec"]["tolerations"] = json!([{"key": "k", "operator": "Exists"}]);
    let prev = declared(&d);
    let out = compare(&d, &l, Some(&prev), &DiffOptions::default()).unwrap();
    assert!(out.is_empty(), "{:#?}", out.changes);

    // A non-zero value, or a live value that differs, is still drift.
    let mut d2 = d.clone();
    d2["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]["readOnly"] = json!(true);
    assert_eq!(
        diff(&d2, &l),
        ["Add spec.template.spec.containers[name=grafana].volumeMounts[mountPath=/data].readOnly"]
    );
    let mut l2 = l.clone();
    l2["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]["readOnly"] = json!(true);
    assert_eq!(
        diff(&d, &l2),
        [
            "Replace spec.template.spec.containers[name=grafana].volumeMounts[mountPath=/data].readOnly"
        ]
    );

    // Custom resources store what they are given: strict there, including
    // CRD groups under k8s.io.
    for api_version in ["monitoring.coreos.com/v1", "gateway.networking.k8s.io/v1"] {
        let cr = json!({"apiVersion": api_version, "kind": "Thing", "metadata": {"name": "t"},
            "spec": {"enabled": false, "count": 0, "name": ""}});
        let cr_live = json!({"apiVersion": api_version, "kind": "Thing", "metadata": {"name": "t"},
            "spec": {}});
        assert_eq!(
            diff(&cr, &cr_live),
            ["Add spec.count", "Add spec.enabled", "Add spec.name"],
            "{api_version}"
        );
    }

    // Core group too.
    let cm_d = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "immutable": false});
    let cm_l = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
    assert!(diff(&cm_d, &cm_l).is_empty());

    // Map entries are stored even when empty (omitempty is for struct
    // fields): an empty label, nodeSelector or data value must be there.
    let cm_d = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "labels": {"role": ""}}, "data": {"empty": ""}});
    let cm_l = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "labels": {"app": "x"}}, "data": {"other": "y"}});
    assert_eq!(
        diff(&cm_d, &cm_l),
        ["Add data.empty", "Add metadata.labels.role"]
    );
    let mut d3 = d.clone();
    d3["spec"]["template"]["spec"]["nodeSelector"] =
        json!({"node-role.kubernetes.io/control-plane": ""});
    let mut l3 = l.clone();
    l3["spec"]["template"]["spec"]["nodeSelector"] = json!({"kubernetes.io/os": "linux"});
    assert_eq!(
        diff(&d3, &l3),
        ["Add spec.template.spec.nodeSelector.node-role.kubernetes.io/control-plane"]
    );

    // The JSON Patch and the merge patch still converge.
    let mut d4 = d3.clone();
    d4["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]["readOnly"] = json!(true);
    let out = compare(&d4, &l3, Some(&declared(&d4)), &DiffOptions::default()).unwrap();
    assert_eq!(out.changes.len(), 2, "{:#?}", out.changes);
    let mut patched = l3.clone();
    json_patch::patch(&mut patched, &out.json_patch()).unwrap();
    assert!(diff(&d4, &patched).is_empty());
    let mut merged = l3.clone();
    json_patch::merge(&mut merged, &out.merge_patch());
    assert!(diff(&d4, &merged).is_empty());
}
