//! The planner's shortcut for unchanged objects (compare as declared, label
//! and copy only what differs) gives exactly the plan of the straightforward
//! path, whatever the live objects look like: synced, edited by others,
//! relabelled, with missing, foreign or broken `managedFields`, with or
//! without adoption and ignore rules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gitops_core::strategies::{apply_edits, environment, live_edits};
use gitops_core::{
    MemoryRuntime, MemorySource, OWNER_LABEL, ObserveRequest, OwnerId, PlanOptions, Reconciler,
    ReconcilerConfig, Target, observe_keys, plan, plan_without_shortcuts,
};
use gitops_diff::IgnoreRule;
use proptest::prelude::*;
use serde_json::{Value, json};

/// A change to one observed object, made directly on the live state (what
/// no API server would do, but a planner must survive).
#[derive(Clone, Debug)]
enum Tamper {
    /// The owner label removed.
    Unlabel,
    /// The owner label naming someone else.
    Relabel,
    /// `metadata.labels` not a mapping.
    LabelsNotAMap,
    /// No `managedFields`.
    NoManagedFields,
    /// A `managedFields` entry that does not parse.
    BrokenManagedFields,
    /// Our apply entry owning fields the manifest no longer declares.
    OwnedMore,
    /// Our apply entry owning all of `metadata.labels`.
    OwnedLabels,
    /// A declared label changed.
    LabelValue,
}

fn tamper() -> impl Strategy<Value = Tamper> {
    prop_oneof![
        Just(Tamper::Unlabel),
        Just(Tamper::Relabel),
        Just(Tamper::LabelsNotAMap),
        Just(Tamper::NoManagedFields),
        Just(Tamper::BrokenManagedFields),
        Just(Tamper::OwnedMore),
        Just(Tamper::OwnedLabels),
        Just(Tamper::LabelValue),
    ]
}

/// Sets `value` at the path of mapping keys, making mappings on the way
/// (over anything that is not one).
fn set(root: &mut Value, path: &[&str], value: Value) {
    let mut cur = root;
    for k in path {
        if !cur.is_object() {
            *cur = json!({});
        }
        cur = cur
            .as_object_mut()
            .expect("just made a mapping")
            .entry(*k)
            .or_insert(Value::Null);
    }
    *cur = value;
}

fn ours_mut(live: &mut Value) -> Option<&mut Value> {
    live["metadata"]["managedFields"]
        .as_array_mut()?
        .iter_mut()
        .find(|e| e["manager"] == "gitops-rs" && e["operation"] == "Apply")
}

fn apply_tamper(live: &mut Value, t: &Tamper) {
    let meta = &mut live["metadata"];
    match t {
        Tamper::Unlabel => {
            if let Some(l) = meta["labels"].as_object_mut() {
                l.remove(OWNER_LABEL);
            }
        }
        Tamper::Relabel => set(meta, &["labels", OWNER_LABEL], json!("someone-else")),
        Tamper::LabelsNotAMap => meta["labels"] = json!("x"),
        Tamper::NoManagedFields => {
            if let Some(m) = meta.as_object_mut() {
                m.remove("managedFields");
            }
        }
        Tamper::BrokenManagedFields => {
            if let Some(entries) = meta["managedFields"].as_array_mut() {
                entries.push(json!({"manager": "broken", "operation": "Update",
                    "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": 3}}));
            }
        }
        Tamper::OwnedMore => {
            set(live, &["data", "gone"], json!("still here"));
            set(live, &["spec", "gone"], json!(1));
            set(live, &["metadata", "labels", "gone"], json!("g"));
            if let Some(e) = ours_mut(live) {
                set(e, &["fieldsV1", "f:data", "f:gone"], json!({}));
                set(e, &["fieldsV1", "f:spec", "f:gone"], json!({}));
                set(
                    e,
                    &["fieldsV1", "f:metadata", "f:labels", "f:gone"],
                    json!({}),
                );
            }
        }
        Tamper::OwnedLabels => {
            if let Some(e) = ours_mut(live) {
                set(e, &["fieldsV1", "f:metadata", "f:labels", "."], json!({}));
            }
        }
        Tamper::LabelValue => {
            if let Some(l) = meta["labels"].as_object_mut()
                && let Some((_, v)) = l.iter_mut().find(|(k, _)| *k != OWNER_LABEL)
            {
                *v = json!("changed");
            }
        }
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    futures::executor::block_on(f)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    #[test]
    fn the_shortcut_gives_the_straightforward_plan(
        before in environment(),
        after in environment(),
        edits in live_edits(4),
        tampers in proptest::collection::vec(
            (any::<usize>(), proptest::collection::vec(tamper(), 1..4)),
            0..4,
        ),
        adopt in any::<bool>(),
        ignore in 0..3u8,
        label_desired in any::<bool>(),
    ) {
        let owner = OwnerId::new("laws").unwrap();
        let source = MemorySource::new();
        let rt = MemoryRuntime::new();
        let mut config = ReconcilerConfig::new(owner.clone());
        config.plan.allow_mass_prune = true;
        config.plan.allow_empty = true;
        let r = Reconciler::new(source.clone(), rt.clone(), config).unwrap();
        before.commit(&source, "main", "before");
        block_on(r.reconcile_once("main")).unwrap();
        block_on(apply_edits(&rt, &edits));

        let mut desired = after.desired();
        if label_desired {
            // Manifests that declare the owner label themselves.
            let keys: Vec<_> = desired.keys().cloned().collect();
            for k in keys.iter().step_by(2) {
                if let Some(mut d) = desired.remove(k) {
                    d.object.set_label(OWNER_LABEL, owner.as_str()).unwrap();
                    desired.insert(d).unwrap();
                }
            }
        }
        let inventory = block_on(rt.read_inventory(&owner)).unwrap();
        let keys = observe_keys(&desired, inventory.as_ref());
        let mut live = block_on(rt.observe(&ObserveRequest::new(keys, None))).unwrap();
        live.inventory = inventory;
        let live_keys: Vec<_> = live.objects.keys().cloned().collect();
        if !live_keys.is_empty() {
            for (i, ts) in &tampers {
                let k = &live_keys[i % live_keys.len()];
                if let Some(v) = live.objects.get_mut(k) {
                    for t in ts {
                        apply_tamper(v, t);
                    }
                }
            }
        }

        let mut options = PlanOptions::new(owner)
            .allow_adoption(adopt)
            .allow_mass_prune(true)
            .allow_empty(true);
        match ignore {
            1 => options.diff.ignore.push(IgnoreRule::new().kind("ConfigMap").pointer("/data/v")),
            2 => options.diff.ignore.push(IgnoreRule::new().group("apps").kind("Deployment").manager("kubectl")),
            _ => {}
        }
        let fast = plan(&desired, &live, &options);
        let straight = plan_without_shortcuts(&desired, &live, &options);
        prop_assert_eq!(
            serde_json::to_string(&fast).unwrap(),
            serde_json::to_string(&straight).unwrap()
        );
        prop_assert_eq!(fast.to_string(), straight.to_string());
        prop_assert_eq!(fast, straight);
    }
}
