//! The planner's laws (DESIGN.md), checked with proptest against the
//! in-memory runtime.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use gitops_core::{
    Action, ApplyOptions, DeleteOptions, DesiredObject, DesiredState, Inventory, LiveState,
    MemoryRuntime, MemorySource, OWNER_LABEL, Object, ObjectKey, OwnerId, PlanOptions, Provenance,
    Reconciler, ReconcilerConfig, Target, plan,
};
use proptest::prelude::*;
use serde_json::{Value, json};

const NAMESPACES: [&str; 3] = ["alpha", "beta", "gamma"];

#[derive(Clone, Debug)]
enum Spec {
    ConfigMap {
        ns: usize,
        name: usize,
        value: u8,
    },
    Deployment {
        ns: usize,
        name: usize,
        replicas: u8,
        image: u8,
    },
    Service {
        ns: usize,
        name: usize,
        port: u16,
    },
    ClusterRole {
        name: usize,
    },
    Widget {
        ns: usize,
        name: usize,
        size: u8,
    },
}

fn spec() -> impl Strategy<Value = (Spec, i8)> {
    let s = prop_oneof![
        (0..3usize, 0..3usize, any::<u8>()).prop_map(|(ns, name, value)| Spec::ConfigMap {
            ns,
            name,
            value
        }),
        (0..3usize, 0..2usize, 0..4u8, 0..3u8).prop_map(|(ns, name, replicas, image)| {
            Spec::Deployment {
                ns,
                name,
                replicas,
                image,
            }
        }),
        (0..3usize, 0..2usize, 1..3u16).prop_map(|(ns, name, port)| Spec::Service {
            ns,
            name,
            port
        }),
        (0..2usize).prop_map(|name| Spec::ClusterRole { name }),
        (0..3usize, 0..2usize, any::<u8>()).prop_map(|(ns, name, size)| Spec::Widget {
            ns,
            name,
            size
        }),
    ];
    (s, -1..2i8)
}

fn manifest(spec: &Spec, wave: i8) -> Value {
    let ann = json!({"gitops-rs.io/wave": wave.to_string()});
    match spec {
        Spec::ConfigMap { ns, name, value } => json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("cm{name}"), "namespace": NAMESPACES[*ns], "annotations": ann},
            "data": {"v": value.to_string()}}),
        Spec::Deployment {
            ns,
            name,
            replicas,
            image,
        } => json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": format!("d{name}"), "namespace": NAMESPACES[*ns], "annotations": ann},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "x"}},
                "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [
                    {"name": "app", "image": format!("img:{image}"), "resources": {"limits": {"cpu": "0.5"}}}]}}}}),
        Spec::Service { ns, name, port } => json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": format!("s{name}"), "namespace": NAMESPACES[*ns], "annotations": ann},
            "spec": {"selector": {"app": "x"}, "ports": [{"port": 80 * port, "targetPort": 8080}]}}),
        Spec::ClusterRole { name } => {
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": format!("role:{name}"), "annotations": ann},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]})
        }
        Spec::Widget { ns, name, size } => json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": format!("w{name}"), "namespace": NAMESPACES[*ns], "annotations": ann},
            "spec": {"size": size}}),
    }
}

fn crd() -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com", "annotations": {"gitops-rs.io/wave": "1"}},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}})
}

/// The files of a repository declaring `specs` (plus the namespaces and the
/// CRD they need), one object per file.
fn files(specs: &[(Spec, i8)]) -> Vec<(String, String)> {
    let mut objects: BTreeMap<String, Value> = BTreeMap::new();
    let mut widgets = false;
    for (s, w) in specs {
        let m = manifest(s, *w);
        if let Some(ns) = m.pointer("/metadata/namespace").and_then(Value::as_str) {
            objects.insert(
                format!("ns-{ns}.json"),
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns,
                    "annotations": {"gitops-rs.io/wave": "-1"}}}),
            );
        }
        widgets |= matches!(s, Spec::Widget { .. });
        let o = Object::new(m.clone()).unwrap();
        objects.insert(format!("{}.json", o.key().to_string().replace('/', "_")), m);
    }
    if widgets {
        objects.insert("crd.json".into(), crd());
    }
    objects
        .into_iter()
        .map(|(p, v)| (p, serde_json::to_string_pretty(&v).unwrap()))
        .collect()
}

fn config() -> ReconcilerConfig {
    let mut c = ReconcilerConfig::new(OwnerId::new("laws").unwrap());
    c.plan.allow_mass_prune = true;
    c.plan.allow_empty = true;
    c
}

#[derive(Clone, Debug)]
enum Edit {
    Scale(usize, u8),
    Delete(usize),
    Data(usize, u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, r)| Edit::Scale(i, r)),
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), any::<u8>()).prop_map(|(i, v)| Edit::Data(i, v)),
    ]
}

async fn manual_edits(rt: &MemoryRuntime, edits: &[Edit]) {
    let keys: Vec<ObjectKey> = rt
        .objects()
        .into_keys()
        .filter(|k| k.kind != "Namespace" && k.kind != "CustomResourceDefinition")
        .collect();
    if keys.is_empty() {
        return;
    }
    let force = ApplyOptions {
        field_manager: "kubectl".into(),
        force: true,
        dry_run: false,
    };
    for e in edits {
        let (i, patch) = match e {
            Edit::Scale(i, r) => (*i, json!({"spec": {"replicas": r}})),
            Edit::Data(i, v) => (
                *i,
                json!({"data": {"v": format!("by-hand-{v}"), "extra": "x"}}),
            ),
            Edit::Delete(i) => {
                let _ = rt
                    .delete(&keys[*i % keys.len()], &DeleteOptions::default())
                    .await;
                continue;
            }
        };
        let k = &keys[i % keys.len()];
        let Some(live) = rt.objects().get(k).cloned() else {
            continue;
        };
        let ok = (k.kind == "Deployment" && patch.get("spec").is_some())
            || (k.kind == "ConfigMap" && patch.get("data").is_some());
        if !ok {
            continue;
        }
        let mut partial = json!({"apiVersion": live["apiVersion"], "kind": live["kind"],
            "metadata": {"name": k.name, "namespace": k.namespace}});
        for (f, v) in patch.as_object().unwrap() {
            partial[f] = v.clone();
        }
        rt.apply(&Object::new(partial).unwrap(), &force)
            .await
            .unwrap();
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    futures::executor::block_on(f)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// Laws 1 and 5: after a sync from any earlier state with any manual
    /// edits, planning again gives no step and every object is unchanged.
    #[test]
    fn convergence_and_minimality(
        before in proptest::collection::vec(spec(), 0..8),
        after in proptest::collection::vec(spec(), 0..8),
        edits in proptest::collection::vec(edit(), 0..4),
    ) {
        block_on(async {
            let source = MemorySource::new();
            let rt = MemoryRuntime::new();
            let r = Reconciler::new(source.clone(), rt.clone(), config()).unwrap();
            source.commit("main", files(&before), "ada", "before");
            r.reconcile_once("main").await.unwrap();
            manual_edits(&rt, &edits).await;
            source.commit("main", files(&after), "bob", "after");
            let report = r.reconcile_once("main").await.unwrap();
            prop_assert!(report.not_converged.is_empty(), "{report}");
            let (desired, again) = r.plan("main").await.unwrap();
            prop_assert!(again.steps.is_empty(), "not converged:\n{again}");
            prop_assert_eq!(again.unchanged.len(), desired.len());
            Ok(())
        })?;
    }

    /// Law 2: the same inputs, inserted in any order, give a byte-identical plan.
    #[test]
    fn determinism(specs in proptest::collection::vec(spec(), 0..10), seed in any::<u64>()) {
        let objs: Vec<(String, Value)> = files(&specs)
            .into_iter()
            .map(|(p, t)| (p, serde_json::from_str(&t).unwrap()))
            .collect();
        let build = |order: &[usize]| {
            let mut d = DesiredState::new(None);
            for &i in order {
                let (p, v) = &objs[i];
                d.insert(DesiredObject {
                    object: Object::new(v.clone()).unwrap(),
                    provenance: Provenance { path: p.clone(), document: 0, line: Some(1), item: None },
                })
                .unwrap();
            }
            d
        };
        let forward: Vec<usize> = (0..objs.len()).collect();
        let mut shuffled = forward.clone();
        let mut x = seed;
        for i in (1..shuffled.len()).rev() {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (x >> 33) as usize % (i + 1));
        }
        let opts = PlanOptions::new(OwnerId::new("laws").unwrap());
        let live = LiveState::default();
        let a = serde_json::to_string(&plan(&build(&forward), &live, &opts)).unwrap();
        let b = serde_json::to_string(&plan(&build(&shuffled), &live, &opts)).unwrap();
        prop_assert_eq!(a, b);
    }

    /// Law 3: Namespaces and CRDs come before their dependents; deletions
    /// come after every apply, in reverse order.
    #[test]
    fn ordering(
        before in proptest::collection::vec(spec(), 0..8),
        after in proptest::collection::vec(spec(), 0..8),
    ) {
        block_on(async {
            let source = MemorySource::new();
            let rt = MemoryRuntime::new();
            let r = Reconciler::new(source.clone(), rt.clone(), config()).unwrap();
            source.commit("main", files(&before), "ada", "before");
            r.reconcile_once("main").await.unwrap();
            source.commit("main", files(&after), "bob", "after");
            let (_, p) = r.plan("main").await.unwrap();
            let pos: BTreeMap<&ObjectKey, usize> = p.steps.iter().enumerate().map(|(i, s)| (&s.key, i)).collect();
            let first_delete = p.steps.iter().position(|s| s.action == Action::Delete).unwrap_or(p.steps.len());
            for (i, s) in p.steps.iter().enumerate() {
                let deleting = s.action == Action::Delete;
                prop_assert_eq!(deleting, i >= first_delete, "deletions come last");
                let ns_key = s.key.namespace.as_ref().map(|ns| ObjectKey::new("", "Namespace", None, ns.clone()));
                let crd_key = (s.key.group == "example.com").then(|| ObjectKey::new("apiextensions.k8s.io", "CustomResourceDefinition", None, "widgets.example.com"));
                for dep in [ns_key, crd_key].into_iter().flatten() {
                    if let Some(&j) = pos.get(&dep) {
                        if deleting {
                            prop_assert!(j > i, "{} deleted before {}", dep, s.key);
                        } else {
                            prop_assert!(j < i, "{} applied after {}", dep, s.key);
                        }
                    }
                }
            }
            Ok(())
        })?;
    }

    /// Law 4: only objects listed in the inventory *and* labelled for the
    /// owner are ever deleted.
    #[test]
    fn prune_safety(
        objects in proptest::collection::vec((0..3usize, 0..6usize, any::<bool>(), 0..3u8), 0..20),
    ) {
        let owner = OwnerId::new("laws").unwrap();
        let mut live = LiveState::default();
        let mut inv = Inventory::new(owner.clone());
        for (ns, name, listed, label) in &objects {
            let k = ObjectKey::new("", "ConfigMap", Some(NAMESPACES[*ns]), format!("c{name}"));
            let labels = match label {
                0 => json!({}),
                1 => json!({OWNER_LABEL: "laws"}),
                _ => json!({OWNER_LABEL: "someone-else"}),
            };
            live.objects.insert(k.clone(), json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": k.name, "namespace": k.namespace, "labels": labels}}));
            if *listed {
                inv.objects.insert(k, "v1".into());
            }
        }
        live.inventory = Some(inv.clone());
        let mut opts = PlanOptions::new(owner);
        opts.allow_mass_prune = true;
        opts.allow_empty = true;
        let p = plan(&DesiredState::new(None), &live, &opts);
        let deleted: BTreeSet<&ObjectKey> = p.steps.iter().filter(|s| s.action == Action::Delete).map(|s| &s.key).collect();
        for k in &deleted {
            prop_assert!(inv.contains(k));
            prop_assert_eq!(live.objects[*k].pointer(&format!("/metadata/labels/{}", OWNER_LABEL.replace('/', "~1"))), Some(&json!("laws")));
        }
        for (k, v) in &live.objects {
            let ours = v.pointer(&format!("/metadata/labels/{}", OWNER_LABEL.replace('/', "~1"))) == Some(&json!("laws"));
            prop_assert_eq!(deleted.contains(k), ours && inv.contains(k), "{}", k);
        }
    }
}
