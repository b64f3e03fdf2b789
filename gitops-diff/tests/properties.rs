//! Property tests of the comparison.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gitops_diff::{
    ApplyError, ApplyRequest, BuiltinLists, DiffOptions, FieldSet, GroupKind, UpdateRequest,
    compare, server_side_apply, server_side_update,
};
use proptest::collection::{btree_map, btree_set, vec};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "c", "d"]).prop_map(String::from)
}

fn scalar() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..3).prop_map(|i| json!(i)),
        (-3i64..3).prop_map(|i| json!(i as f64 / 2.0)),
        "[a-b]{0,2}".prop_map(Value::String),
    ]
    .boxed()
}

fn value() -> BoxedStrategy<Value> {
    scalar()
        .prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..3).prop_map(Value::Array),
                btree_map(key(), inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
        .boxed()
}

fn quantity() -> impl Strategy<Value = Value> {
    prop::sample::select(vec![
        json!("500m"),
        json!(0.5),
        json!("1"),
        json!(2),
        json!("1Gi"),
        json!("250m"),
    ])
}

fn container() -> impl Strategy<Value = Map<String, Value>> {
    (
        "[a-b]:[1-2]",
        btree_map(prop::sample::select(vec!["A", "B", "C"]), "[x-y]", 0..3),
        btree_map(
            prop::sample::select(vec![80u16, 443, 8080]),
            prop::sample::select(vec![None, Some("TCP"), Some("UDP")]),
            0..3,
        ),
        vec("[a-b]", 0..3),
        proptest::option::of(quantity()),
        btree_map(key(), value(), 0..2),
    )
        .prop_map(|(image, env, ports, args, cpu, extra)| {
            let mut c = Map::new();
            c.insert("image".into(), json!(image));
            if !env.is_empty() {
                let env: Vec<Value> = env
                    .into_iter()
                    .map(|(n, v)| json!({"name": n, "value": v}))
                    .collect();
                c.insert("env".into(), Value::Array(env));
            }
            if !ports.is_empty() {
                let ports: Vec<Value> = ports
                    .into_iter()
                    .map(|(p, proto)| match proto {
                        Some(proto) => json!({"containerPort": p, "protocol": proto}),
                        None => json!({"containerPort": p}),
                    })
                    .collect();
                c.insert("ports".into(), Value::Array(ports));
            }
            if !args.is_empty() {
                c.insert("args".into(), json!(args));
            }
            if let Some(cpu) = cpu {
                c.insert("resources".into(), json!({"limits": {"cpu": cpu}}));
            }
            for (k, v) in extra {
                c.insert(k, v);
            }
            c
        })
}

/// A Deployment-like object over a small alphabet, so that independently
/// generated objects overlap.
fn object() -> impl Strategy<Value = Value> {
    (
        btree_map(key(), "[x-y]", 0..3),
        btree_set(prop::sample::select(vec!["f1", "f2", "f3"]), 0..3),
        proptest::option::of(0i64..3),
        btree_map(
            prop::sample::select(vec!["app", "side", "init"]),
            container(),
            0..3,
        ),
        btree_map(key(), value(), 0..4),
    )
        .prop_map(|(labels, finalizers, replicas, containers, config)| {
            let containers: Vec<Value> = containers
                .into_iter()
                .map(|(name, mut c)| {
                    c.insert("name".into(), json!(name));
                    Value::Object(c)
                })
                .collect();
            let mut spec = Map::new();
            if let Some(r) = replicas {
                spec.insert("replicas".into(), json!(r));
            }
            spec.insert(
                "template".into(),
                json!({"spec": {"containers": containers}}),
            );
            spec.insert("config".into(), Value::Object(config.into_iter().collect()));
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "d", "labels": labels, "finalizers": finalizers},
                "spec": spec,
            })
        })
}

/// Recursively reverses the key order of every map.
fn reverse_keys(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.reverse();
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), reverse_keys(v)))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(reverse_keys).collect()),
        other => other.clone(),
    }
}

fn map_pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            out.push(at.clone());
            for (k, c) in m {
                map_pointers(
                    c,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                map_pointers(c, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Same quantity, another spelling; integers as floats.
fn canonicalise(v: &mut Value, in_cpu: bool) {
    match v {
        Value::Object(m) => {
            for (k, c) in m.iter_mut() {
                canonicalise(c, k == "cpu");
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|c| canonicalise(c, false)),
        Value::Number(n) if !in_cpu => {
            if let Some(i) = n.as_i64() {
                *v = json!(i as f64);
            }
        }
        _ if in_cpu => {
            let new = match &*v {
                Value::String(s) if s == "500m" => json!(0.5),
                Value::Number(n) if n.as_f64() == Some(0.5) => json!("500m"),
                Value::String(s) if s == "1" => json!("1000m"),
                Value::Number(n) if n.as_f64() == Some(2.0) => json!("2"),
                Value::String(s) if s == "1Gi" => json!("1024Mi"),
                Value::String(s) if s == "250m" => json!(0.25),
                other => other.clone(),
            };
            *v = new;
        }
        _ => {}
    }
}

/// What an API server adds: defaults in maps we do not fill, status,
/// server metadata, canonical values.
fn server_defaults(desired: &Value, insertions: &[(usize, usize, Value)], floats: bool) -> Value {
    let mut live = desired.clone();
    let mut maps = Vec::new();
    map_pointers(&live, String::new(), &mut maps);
    let keys = ["x", "y", "protocol", "imagePullPolicy"];
    for (at, k, v) in insertions {
        let ptr = &maps[at % maps.len()];
        let key = keys[k % keys.len()];
        let v = match key {
            "protocol" => json!("TCP"),
            "imagePullPolicy" => json!("IfNotPresent"),
            _ => v.clone(),
        };
        if let Some(Value::Object(m)) = live.pointer_mut(ptr)
            && m.get(key).is_none_or(Value::is_null)
        {
            m.insert(key.to_string(), v);
        }
    }
    live["status"] = json!({"replicas": 3, "conditions": [{"type": "Available"}]});
    live["metadata"]["uid"] = json!("u");
    live["metadata"]["resourceVersion"] = json!("9");
    live["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
    live["metadata"]["annotations"] =
        json!({"kubectl.kubernetes.io/last-applied-configuration": "{}"});
    if floats {
        canonicalise(&mut live, false);
    }
    live
}

fn declared(v: &Value) -> FieldSet {
    FieldSet::declared_by(v, &BuiltinLists, &GroupKind::of(v))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn diff_of_an_object_with_itself_is_empty(x in object(), y in value()) {
        let opts = DiffOptions::default();
        prop_assert!(compare(&x, &x, Some(&declared(&x)), &opts).unwrap().is_empty());
        let wrapped = json!({"apiVersion": "v1", "kind": "Thing", "metadata": {"name": "t"}, "spec": y});
        prop_assert!(compare(&wrapped, &wrapped, Some(&declared(&wrapped)), &opts).unwrap().is_empty());
    }

    #[test]
    fn patches_converge(d in object(), l in object(), p in object()) {
        let opts = DiffOptions::default();
        let prev = declared(&p);
        let diff = compare(&d, &l, Some(&prev), &opts).unwrap();
        let mut patched = l.clone();
        json_patch::patch(&mut patched, &diff.json_patch()).unwrap();
        let again = compare(&d, &patched, Some(&prev), &opts).unwrap();
        prop_assert!(again.is_empty(), "json patch left {:#?}", again.changes);
        let mut merged = l.clone();
        json_patch::merge(&mut merged, &diff.merge_patch());
        let again = compare(&d, &merged, Some(&prev), &opts).unwrap();
        prop_assert!(again.is_empty(), "merge patch left {:#?}", again.changes);
    }

    #[test]
    fn independent_of_key_order(d in object(), l in object(), p in object()) {
        let opts = DiffOptions::default();
        let prev = declared(&p);
        let a = compare(&d, &l, Some(&prev), &opts).unwrap();
        let b = compare(&reverse_keys(&d), &reverse_keys(&l), Some(&prev), &opts).unwrap();
        prop_assert_eq!(a.changes, b.changes);
        prop_assert_eq!(declared(&d), declared(&reverse_keys(&d)));
    }

    #[test]
    fn server_defaulting_is_not_drift(
        d in object(),
        insertions in vec((any::<usize>(), any::<usize>(), value()), 0..8),
        floats in any::<bool>(),
    ) {
        let live = server_defaults(&d, &insertions, floats);
        let opts = DiffOptions::default();
        let diff = compare(&d, &live, Some(&declared(&d)), &opts).unwrap();
        prop_assert!(diff.is_empty(), "{:#?}", diff.changes);
    }

    #[test]
    fn fields_v1_round_trips(d in object()) {
        let s = declared(&d);
        prop_assert_eq!(FieldSet::from_fields_v1(&s.to_fields_v1()).unwrap(), s);
    }

    #[test]
    fn apply_then_diff_is_empty(a in object(), b in object()) {
        // Apply a, then b, with the same manager: the result matches b and the
        // recorded field set is what b declares.
        let first = server_side_apply(ApplyRequest::new(None, &a, "m", &BuiltinLists)).unwrap();
        let second = server_side_apply(ApplyRequest::new(Some(&first), &b, "m", &BuiltinLists)).unwrap();
        let owned = gitops_diff::owned_by(&second, "m").unwrap().unwrap_or_default();
        prop_assert_eq!(&owned, &declared(&b));
        let diff = compare(&b, &second, Some(&owned), &DiffOptions::default()).unwrap();
        prop_assert!(diff.is_empty(), "{:#?}", diff.changes);
        // What a declared before and b does not is gone.
        let prev = declared(&a);
        let diff = compare(&b, &second, Some(&prev), &DiffOptions::default()).unwrap();
        prop_assert!(diff.is_empty(), "removals left: {:#?}", diff.changes);
    }

    #[test]
    fn forced_apply_after_an_update_matches_the_manifest(
        a in object(), u in object(), b in object(), again in any::<bool>(),
    ) {
        // Apply a, let another manager write u whole (an update), apply b
        // with force: the result matches b and records b's field set; with
        // `again`, a second apply of b changes nothing.
        let apply = |live: Option<&Value>, applied: &Value, force: bool| {
            server_side_apply(ApplyRequest::new(live, applied, "m", &BuiltinLists).force(force))
        };
        let Ok(first) = apply(None, &a, false) else {
            return Err(TestCaseError::reject("a has duplicate keys"));
        };
        let updated =
            server_side_update(UpdateRequest::new(Some(&first), &u, "u", &BuiltinLists)).unwrap();
        let second = match apply(Some(&updated), &b, true) {
            Ok(v) => v,
            Err(ApplyError::DuplicateKey { .. }) => {
                return Err(TestCaseError::reject("b has duplicate keys"));
            }
            Err(e) => return Err(TestCaseError::fail(e.to_string())),
        };
        let owned = gitops_diff::owned_by(&second, "m").unwrap().unwrap_or_default();
        prop_assert_eq!(&owned, &declared(&b));
        let diff = compare(&b, &second, Some(&owned), &DiffOptions::default()).unwrap();
        prop_assert!(diff.is_empty(), "{:#?}", diff.changes);
        if again {
            // Applying b again changes no ownership and still matches.
            let third = apply(Some(&second), &b, false).unwrap();
            prop_assert_eq!(
                &third["metadata"]["managedFields"],
                &second["metadata"]["managedFields"]
            );
            let diff = compare(&b, &third, Some(&owned), &DiffOptions::default()).unwrap();
            prop_assert!(diff.is_empty(), "{:#?}", diff.changes);
        }
    }
}
