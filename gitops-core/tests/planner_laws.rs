//! The planner's laws (DESIGN.md), checked with proptest against the
//! in-memory runtime.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use gitops_core::strategies::{
    NAMESPACES, WIDGET_CRD, apply_edits, converged, environment, live_edits,
};
use gitops_core::{
    Action, DesiredObject, DesiredState, Inventory, LiveState, MemoryRuntime, MemorySource,
    OWNER_LABEL, Object, ObjectKey, OwnerId, PlanOptions, Provenance, Reconciler, ReconcilerConfig,
    plan,
};
use proptest::prelude::*;
use serde_json::{Value, json};

fn config() -> ReconcilerConfig {
    let mut c = ReconcilerConfig::new(OwnerId::new("laws").unwrap());
    c.plan.allow_mass_prune = true;
    c.plan.allow_empty = true;
    c
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
        before in environment(),
        after in environment(),
        edits in live_edits(4),
    ) {
        block_on(async {
            let source = MemorySource::new();
            let rt = MemoryRuntime::new();
            let r = Reconciler::new(source.clone(), rt.clone(), config()).unwrap();
            before.commit(&source, "main", "before");
            r.reconcile_once("main").await.unwrap();
            apply_edits(&rt, &edits).await;
            after.commit(&source, "main", "after");
            let report = r.reconcile_once("main").await.unwrap();
            prop_assert!(report.not_converged.is_empty(), "{report}");
            if let Err(e) = converged(&r, "main").await {
                prop_assert!(false, "{e}");
            }
            // Nothing of ours is left that the environment does not declare.
            let desired = after.desired();
            for key in rt.owned_by(&OwnerId::new("laws").unwrap()).keys() {
                prop_assert!(desired.contains(key), "{key} lingers");
            }
            Ok(())
        })?;
    }

    /// Law 2: the same inputs, inserted in any order, give a byte-identical plan.
    #[test]
    fn determinism(env in environment(), seed in any::<u64>()) {
        let objs: Vec<(String, Value)> = env.files()
            .into_iter()
            .map(|(p, t)| (p, serde_json::from_str(&t).unwrap()))
            .collect();
        let build = |order: &[usize]| {
            let mut d = DesiredState::new(None);
            for &i in order {
                let (p, v) = &objs[i];
                d.insert(DesiredObject {
                    object: Object::new(v.clone()).unwrap(),
                    provenance: Provenance::new(p.clone(), 0).with_line(Some(1)),
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
        before in environment(),
        after in environment(),
    ) {
        block_on(async {
            let source = MemorySource::new();
            let rt = MemoryRuntime::new();
            let r = Reconciler::new(source.clone(), rt.clone(), config()).unwrap();
            before.commit(&source, "main", "before");
            r.reconcile_once("main").await.unwrap();
            after.commit(&source, "main", "after");
            let (_, p) = r.plan("main").await.unwrap();
            let pos: BTreeMap<&ObjectKey, usize> = p.steps.iter().enumerate().map(|(i, s)| (&s.key, i)).collect();
            let first_delete = p.steps.iter().position(|s| s.action == Action::Delete).unwrap_or(p.steps.len());
            for (i, s) in p.steps.iter().enumerate() {
                let deleting = s.action == Action::Delete;
                prop_assert_eq!(deleting, i >= first_delete, "deletions come last");
                let ns_key = s.key.namespace.as_ref().map(|ns| ObjectKey::new("", "Namespace", None, ns.clone()));
                let crd_key = (s.key.group == "example.com").then(|| ObjectKey::new("apiextensions.k8s.io", "CustomResourceDefinition", None, WIDGET_CRD));
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
                inv.objects_mut().insert(k, "v1".into());
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
