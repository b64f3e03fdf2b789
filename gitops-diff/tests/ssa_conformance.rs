//! Conformance table of the pure server-side apply against the behaviour of
//! `sigs.k8s.io/structured-merge-diff` (`merge/*_test.go`: multiple
//! appliers, appliers and updaters, removals, sets and keyed lists, nested
//! maps, atomic maps, conflicts, forced applies), as a Kubernetes 1.20 API
//! server (structured-merge-diff v4.0) runs it. Every case is data: steps,
//! then the expected object and managedFields per manager; every apply step
//! names its expected outcome. The same behaviours run against a real 1.20
//! API server in gitops-kube's `ssa_scenarios` tests.
//!
//! Where today's structured-merge-diff differs from 1.20, the case says so
//! and follows 1.20.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use gitops_diff::{
    ApplyError, ApplyRequest, CrdLists, DiffOptions, LayeredLists, ListSemantics, UpdateRequest,
    compare, managed_fields, server_side_apply, server_side_update,
};
use serde_json::{Value, json};

/// What an apply must do.
#[derive(Debug)]
enum Outcome {
    /// Succeed.
    Ok,
    /// Fail with these conflicts, `(manager, path)`.
    Conflict(&'static [(&'static str, &'static str)]),
    /// Fail: duplicate entries in an associative list or set.
    Duplicate,
    /// Fail: a field would be `null` where the schema does not allow it.
    Null,
}

#[derive(Debug)]
enum Step {
    Apply {
        manager: &'static str,
        force: bool,
        object: Value,
        outcome: Outcome,
    },
    /// A whole-object write (the live object's body replaced by `object`'s).
    Update {
        manager: &'static str,
        object: Value,
    },
}

struct Case {
    name: &'static str,
    steps: Vec<Step>,
    /// The stored object without `metadata.managedFields`.
    object: Value,
    /// `"manager/Operation" -> fieldsV1`.
    managed: Value,
}

fn apply(manager: &'static str, object: Value) -> Step {
    Step::Apply {
        manager,
        force: false,
        object,
        outcome: Outcome::Ok,
    }
}

fn force(manager: &'static str, object: Value) -> Step {
    Step::Apply {
        manager,
        force: true,
        object,
        outcome: Outcome::Ok,
    }
}

fn refused(manager: &'static str, object: Value, outcome: Outcome) -> Step {
    Step::Apply {
        manager,
        force: false,
        object,
        outcome,
    }
}

fn update(manager: &'static str, object: Value) -> Step {
    Step::Update { manager, object }
}

fn cm(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"}, "data": data})
}

fn cm_labels(labels: Value, data: Value) -> Value {
    let mut v = cm(data);
    v["metadata"]["labels"] = labels;
    v
}

fn crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "probes.ssa.gitops.example"},
        "spec": {"group": "ssa.gitops.example", "scope": "Namespaced",
            "names": {"plural": "probes", "kind": "Probe"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {
                        "nested": {"type": "object", "properties": {
                            "inner": {"type": "object", "properties": {
                                "a": {"type": "string"}, "b": {"type": "string"}}},
                            "c": {"type": "string"}}},
                        "tags": {"type": "array", "x-kubernetes-list-type": "set",
                            "items": {"type": "string"}},
                        "items": {"type": "array", "x-kubernetes-list-type": "map",
                            "x-kubernetes-list-map-keys": ["name"],
                            "items": {"type": "object", "properties": {
                                "name": {"type": "string"}, "value": {"type": "string"},
                                "extra": {"type": "string"}}}},
                        "selector": {"type": "object", "x-kubernetes-map-type": "atomic",
                            "additionalProperties": {"type": "string"}},
                        "opt": {"type": "string", "nullable": true},
                        "free": {"type": "object", "additionalProperties": {
                            "type": "object", "properties": {
                                "x": {"type": "string"}, "y": {"type": "string"}}}}
                    }}}}}}]}
    })
}

fn probe(spec: Value) -> Value {
    json!({"apiVersion": "ssa.gitops.example/v1", "kind": "Probe",
        "metadata": {"name": "p", "namespace": "n"}, "spec": spec})
}

fn lists() -> Arc<dyn ListSemantics> {
    Arc::new(LayeredLists::new(vec![Arc::new(
        CrdLists::from_crd(&crd()).unwrap(),
    )]))
}

#[allow(clippy::too_many_lines)]
fn cases() -> Vec<Case> {
    vec![
        // leaf_test: an applier stops applying a field it alone owns.
        Case {
            name: "one applier removes a field",
            steps: vec![
                apply("m1", cm(json!({"a": "1", "b": "2"}))),
                apply("m1", cm(json!({"a": "1"}))),
            ],
            object: cm(json!({"a": "1"})),
            managed: json!({"m1/Apply": {"f:data": {"f:a": {}}}}),
        },
        // multiple_appliers_test: a field two appliers own stays when one
        // stops applying it, and goes when the last one does.
        Case {
            name: "shared field survives until its last applier drops it",
            steps: vec![
                apply("m1", cm(json!({"a": "1", "b": "x"}))),
                apply("m2", cm(json!({"b": "x"}))),
                apply("m1", cm(json!({"a": "1"}))),
                apply("m2", cm(json!({}))),
            ],
            object: cm(json!({"a": "1"})),
            managed: json!({"m1/Apply": {"f:data": {"f:a": {}}}}),
        },
        // conflict_test: another value is a conflict; force takes the field.
        Case {
            name: "conflict, then forced apply",
            steps: vec![
                apply("m1", cm(json!({"a": "1", "b": "2"}))),
                refused(
                    "m2",
                    cm(json!({"a": "9"})),
                    Outcome::Conflict(&[("m1", "data.a")]),
                ),
                force("m2", cm(json!({"a": "9"}))),
                apply("m1", cm(json!({"b": "2"}))),
            ],
            object: cm(json!({"a": "9", "b": "2"})),
            managed: json!({
                "m1/Apply": {"f:data": {"f:b": {}}},
                "m2/Apply": {"f:data": {"f:a": {}}}
            }),
        },
        // update_test: an updater takes what it changes; the applier then
        // conflicts, forces, and removes what it alone owns.
        Case {
            name: "applier and updater",
            steps: vec![
                apply("m1", cm(json!({"a": "1", "b": "2"}))),
                update("u", cm(json!({"a": "1", "b": "3", "c": "new"}))),
                refused(
                    "m1",
                    cm(json!({"a": "1", "b": "2"})),
                    Outcome::Conflict(&[("u", "data.b")]),
                ),
                force("m1", cm(json!({"a": "1", "b": "2"}))),
                apply("m1", cm(json!({"a": "1"}))),
            ],
            object: cm(json!({"a": "1", "c": "new"})),
            managed: json!({
                "m1/Apply": {"f:data": {"f:a": {}}},
                "u/Update": {"f:data": {"f:c": {}}}
            }),
        },
        // A field an applier and an updater both own is not removed when the
        // applier drops it (1.20 adds back what updaters own, too).
        Case {
            name: "updater-owned field is kept",
            steps: vec![
                apply("m1", cm(json!({"a": "1", "b": "2"}))),
                update("u", cm(json!({"a": "1", "b": "3"}))),
                apply("m1", cm(json!({"a": "1", "b": "3"}))),
                apply("m1", cm(json!({"a": "1"}))),
            ],
            object: cm(json!({"a": "1", "b": "3"})),
            managed: json!({
                "m1/Apply": {"f:data": {"f:a": {}}},
                "u/Update": {"f:data": {"f:b": {}}}
            }),
        },
        // An update that removes a field takes it from its applier.
        Case {
            name: "update removes an applied field",
            steps: vec![
                apply("m1", cm(json!({"a": "1", "b": "2"}))),
                update("u", cm(json!({"a": "1"}))),
            ],
            object: cm(json!({"a": "1"})),
            managed: json!({"m1/Apply": {"f:data": {"f:a": {}}}}),
        },
        // An update that creates the object owns what it created, inner
        // nodes included (`kubectl create`).
        Case {
            name: "create by update",
            steps: vec![
                update("u", cm_labels(json!({"x": "1"}), json!({"a": "1"}))),
                refused(
                    "m1",
                    cm(json!({"a": "2"})),
                    Outcome::Conflict(&[("u", "data.a")]),
                ),
            ],
            object: cm_labels(json!({"x": "1"}), json!({"a": "1"})),
            managed: json!({"u/Update": {
                "f:data": {".": {}, "f:a": {}},
                "f:metadata": {"f:labels": {".": {}, "f:x": {}}}
            }}),
        },
        // A map emptied by a removal goes (a built-in kind drops the null
        // structured-merge-diff leaves); an empty map in a struct field is
        // not recorded, and an explicit null in a string map is stored "".
        Case {
            name: "nested maps of a built-in kind",
            steps: vec![
                apply("m1", cm_labels(json!({"x": "1"}), json!({"a": "1"}))),
                apply("m1", cm_labels(json!({}), json!({"a": null}))),
            ],
            object: cm(json!({"a": ""})),
            managed: json!({"m1/Apply": {"f:data": {"f:a": {}}}}),
        },
        // set_test: sets merge by value; 1.20 keeps the live order and
        // appends (today's structured-merge-diff follows the applied order).
        Case {
            name: "sets with two appliers",
            steps: vec![
                apply("m1", probe(json!({"tags": ["a", "b"]}))),
                apply("m2", probe(json!({"tags": ["c", "b"]}))),
                apply("m1", probe(json!({"tags": ["a"]}))),
            ],
            object: probe(json!({"tags": ["a", "b", "c"]})),
            managed: json!({
                "m1/Apply": {"f:spec": {"f:tags": {"v:\"a\"": {}}}},
                "m2/Apply": {"f:spec": {"f:tags": {"v:\"b\"": {}, "v:\"c\"": {}}}}
            }),
        },
        // Keyed list order: 1.20 keeps the live order and appends new items;
        // reordering the manifest changes nothing (today's reference stores
        // [a, b, c, d]).
        Case {
            name: "keyed list order",
            steps: vec![
                apply(
                    "m1",
                    probe(json!({"items": [{"name": "a"}, {"name": "c"}]})),
                ),
                apply(
                    "m1",
                    probe(
                        json!({"items": [{"name": "a"}, {"name": "b"}, {"name": "c"}, {"name": "d"}]}),
                    ),
                ),
                apply(
                    "m1",
                    probe(
                        json!({"items": [{"name": "d"}, {"name": "c"}, {"name": "b"}, {"name": "a"}]}),
                    ),
                ),
            ],
            object: probe(
                json!({"items": [{"name": "a"}, {"name": "c"}, {"name": "b"}, {"name": "d"}]}),
            ),
            managed: json!({"m1/Apply": {"f:spec": {"f:items": {
                "k:{\"name\":\"a\"}": {".": {}, "f:name": {}},
                "k:{\"name\":\"b\"}": {".": {}, "f:name": {}},
                "k:{\"name\":\"c\"}": {".": {}, "f:name": {}},
                "k:{\"name\":\"d\"}": {".": {}, "f:name": {}}
            }}}}),
        },
        // multiple_appliers_test (nested type): an item another applier
        // owns (key included) stays with that applier's fields.
        Case {
            name: "keyed item kept by another applier",
            steps: vec![
                apply(
                    "m1",
                    probe(
                        json!({"items": [{"name": "a", "value": "1"}, {"name": "b", "value": "2", "extra": "x"}]}),
                    ),
                ),
                force("m2", probe(json!({"items": [{"name": "b", "value": "3"}]}))),
                apply("m1", probe(json!({"items": [{"name": "a", "value": "1"}]}))),
            ],
            object: probe(
                json!({"items": [{"name": "a", "value": "1"}, {"name": "b", "value": "3"}]}),
            ),
            managed: json!({
                "m1/Apply": {"f:spec": {"f:items": {"k:{\"name\":\"a\"}": {".": {}, "f:name": {}, "f:value": {}}}}},
                "m2/Apply": {"f:spec": {"f:items": {"k:{\"name\":\"b\"}": {".": {}, "f:name": {}, "f:value": {}}}}}
            }),
        },
        // An item whose other owner owns only a field in it (not its key)
        // goes whole, and the other owner's ownership of it too.
        Case {
            name: "keyed item left without its key",
            steps: vec![
                apply(
                    "m1",
                    probe(
                        json!({"items": [{"name": "a", "value": "1"}, {"name": "b", "value": "2"}]}),
                    ),
                ),
                update(
                    "u",
                    probe(
                        json!({"items": [{"name": "a", "value": "1"}, {"name": "b", "value": "2", "extra": "e"}]}),
                    ),
                ),
                apply("m1", probe(json!({"items": [{"name": "a", "value": "1"}]}))),
            ],
            object: probe(json!({"items": [{"name": "a", "value": "1"}]})),
            managed: json!({
                "m1/Apply": {"f:spec": {"f:items": {"k:{\"name\":\"a\"}": {".": {}, "f:name": {}, "f:value": {}}}}}
            }),
        },
        // Atomic maps are replaced whole and conflict whole.
        Case {
            name: "atomic map",
            steps: vec![
                apply("m1", probe(json!({"selector": {"a": "1", "b": "2"}}))),
                refused(
                    "m2",
                    probe(json!({"selector": {"a": "1"}})),
                    Outcome::Conflict(&[("m1", "spec.selector")]),
                ),
                force("m2", probe(json!({"selector": {"a": "1"}}))),
            ],
            object: probe(json!({"selector": {"a": "1"}})),
            managed: json!({"m2/Apply": {"f:spec": {"f:selector": {}}}}),
        },
        // Keys of a granular map are members even with children; an
        // explicit null is stored and owned (nullable field).
        Case {
            name: "map of structs and explicit null",
            steps: vec![
                apply("m1", probe(json!({"free": {"k": {"x": "1"}}, "opt": null}))),
                apply("m2", probe(json!({"free": {"k": {"y": "2"}}}))),
            ],
            object: probe(json!({"free": {"k": {"x": "1", "y": "2"}}, "opt": null})),
            managed: json!({
                "m1/Apply": {"f:spec": {"f:free": {"f:k": {".": {}, "f:x": {}}}, "f:opt": {}}},
                "m2/Apply": {"f:spec": {"f:free": {"f:k": {".": {}, "f:y": {}}}}}
            }),
        },
        // 1.20 leaves a map an apply empties `null`, which a custom
        // resource's validation refuses (today's reference removes it).
        Case {
            name: "nested map emptied in a custom resource",
            steps: vec![
                apply(
                    "m1",
                    probe(json!({"nested": {"inner": {"a": "1"}, "c": "c"}})),
                ),
                refused("m1", probe(json!({"nested": {"c": "c"}})), Outcome::Null),
            ],
            object: probe(json!({"nested": {"inner": {"a": "1"}, "c": "c"}})),
            managed: json!({"m1/Apply": {"f:spec": {"f:nested": {"f:c": {}, "f:inner": {"f:a": {}}}}}}),
        },
        // Duplicate keys or set values in an applied list are refused.
        Case {
            name: "duplicates",
            steps: vec![
                refused(
                    "m1",
                    probe(json!({"items": [{"name": "a"}, {"name": "a", "value": "2"}]})),
                    Outcome::Duplicate,
                ),
                refused("m1", probe(json!({"tags": ["x", "x"]})), Outcome::Duplicate),
                refused(
                    "m1",
                    json!({"apiVersion": "apps/v1", "kind": "Deployment",
                        "metadata": {"name": "d", "namespace": "n"},
                        "spec": {"template": {"spec": {"containers": [{"name": "app",
                            "ports": [{"containerPort": 80}, {"containerPort": 80, "protocol": "TCP"}]}]}}}}),
                    Outcome::Duplicate,
                ),
            ],
            object: Value::Null,
            managed: json!({}),
        },
    ]
}

fn managed_of(v: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for e in managed_fields(v).unwrap() {
        out.insert(
            format!("{}/{}", e.manager, e.operation),
            e.fields.to_fields_v1(),
        );
    }
    Value::Object(out)
}

fn without_managed_fields(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.shift_remove("managedFields");
    }
    v
}

#[test]
fn conformance_table() {
    let lists = lists();
    let options = DiffOptions::new().lists(Arc::clone(&lists));
    for case in cases() {
        let mut live: Option<Value> = None;
        for (i, step) in case.steps.iter().enumerate() {
            let at = format!("{} / step {}", case.name, i + 1);
            match step {
                Step::Apply {
                    manager,
                    force,
                    object,
                    outcome,
                } => {
                    let result = server_side_apply(
                        ApplyRequest::new(live.as_ref(), object, manager, lists.as_ref())
                            .force(*force),
                    );
                    match (outcome, result) {
                        (Outcome::Ok, Ok(v)) => {
                            let diff = compare(object, &v, None, &options).unwrap();
                            assert!(diff.is_empty(), "{at}: compare: {:?}", diff.changes);
                            live = Some(v);
                        }
                        (Outcome::Conflict(expected), Err(ApplyError::Conflict { conflicts })) => {
                            let got: Vec<(String, String)> = conflicts
                                .iter()
                                .map(|c| (c.manager.clone(), c.path.to_string()))
                                .collect();
                            let want: Vec<(String, String)> = expected
                                .iter()
                                .map(|(m, p)| ((*m).to_string(), (*p).to_string()))
                                .collect();
                            assert_eq!(got, want, "{at}");
                        }
                        (Outcome::Duplicate, Err(ApplyError::DuplicateKey { .. }))
                        | (Outcome::Null, Err(ApplyError::NullField { .. })) => {}
                        (outcome, result) => {
                            panic!("{at}: expected {outcome:?}, got {result:?}")
                        }
                    }
                }
                Step::Update { manager, object } => {
                    let v = server_side_update(UpdateRequest::new(
                        live.as_ref(),
                        object,
                        manager,
                        lists.as_ref(),
                    ))
                    .unwrap_or_else(|e| panic!("{at}: {e}"));
                    live = Some(v);
                }
            }
        }
        let stored = live.as_ref().map(without_managed_fields);
        assert_eq!(
            stored.unwrap_or(Value::Null),
            case.object,
            "{}: object",
            case.name
        );
        let managed = live.as_ref().map_or(json!({}), managed_of);
        let by_manager: BTreeMap<String, Value> = serde_json::from_value(managed.clone()).unwrap();
        let want: BTreeMap<String, Value> = serde_json::from_value(case.managed.clone()).unwrap();
        assert_eq!(by_manager, want, "{}: managedFields {managed}", case.name);
    }
}

/// An update that changes nothing records nothing; one that changes a
/// field keeps the manager's earlier fields (structured-merge-diff merges
/// an updater's fields across its updates).
#[test]
fn updates_accumulate_per_manager() {
    let lists = lists();
    let v1 = server_side_update(UpdateRequest::new(
        None,
        &cm(json!({"a": "1"})),
        "u",
        lists.as_ref(),
    ))
    .unwrap();
    let same = server_side_update(UpdateRequest::new(
        Some(&v1),
        &cm(json!({"a": "1"})),
        "other",
        lists.as_ref(),
    ))
    .unwrap();
    assert_eq!(managed_of(&same), managed_of(&v1));
    let v2 = server_side_update(
        UpdateRequest::new(
            Some(&v1),
            &cm(json!({"a": "1", "b": "2"})),
            "u",
            lists.as_ref(),
        )
        .with_time("2026-01-01T00:00:01Z"),
    )
    .unwrap();
    assert_eq!(
        managed_of(&v2),
        json!({"u/Update": {"f:data": {".": {}, "f:a": {}, "f:b": {}}}})
    );
    assert_eq!(
        v2["metadata"]["managedFields"][0]["time"],
        "2026-01-01T00:00:01Z"
    );
}
