#![allow(clippy::unwrap_used, clippy::expect_used)]
//! [`RenderOptions::labels`]: labels set on every rendered object, and the
//! reconciler's owner label, set at render time.

use std::collections::BTreeMap;

use gitops_core::{
    BoxError, MemoryRuntime, MemorySource, OWNER_LABEL, Object, ObjectKey, OptionsError, OwnerId,
    PlanOptions, Provenance, Reconciler, ReconcilerConfig, RenderOptions, RenderStep, Renderer,
    Snapshot, StepObject, plan, render,
};
use serde_json::json;

/// Renders a `step/` folder as one ConfigMap, labelled `from: step`.
#[derive(Debug)]
struct OneConfigMap;

impl RenderStep for OneConfigMap {
    fn name(&self) -> &str {
        "one"
    }

    fn handles(&self, _: &Snapshot, dir: &str) -> bool {
        dir == "step"
    }

    fn render(&self, _: &Snapshot, _: &str) -> Result<Vec<StepObject>, BoxError> {
        Ok(vec![StepObject::new(
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "stepped", "namespace": "shop", "labels": {"from": "step"}}}),
            Provenance::new("step/built.yaml", 0),
        )])
    }
}

fn files() -> Snapshot {
    Snapshot::from_files([
        (
            "a.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: shop}\n---\n\
             apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n  namespace: shop\n  \
             labels: {app: web, team: blue}\n",
        ),
        ("step/marker.txt", "what the step renders"),
    ])
}

#[test]
fn labels_are_set_on_every_object_files_and_steps_alike() {
    let options = RenderOptions::default()
        .with_label("team", "red")
        .with_label("example.com/stamp", "1");
    let mut renderer = Renderer::new(options)
        .unwrap()
        .with_step(std::sync::Arc::new(OneConfigMap));
    let desired = renderer.render(&files()).unwrap();
    let labels: Vec<(String, serde_json::Value)> = desired
        .iter()
        .map(|(k, d)| {
            (
                k.name.clone(),
                d.object.as_value()["metadata"]["labels"].clone(),
            )
        })
        .collect();
    assert_eq!(
        labels,
        [
            (
                "a".to_owned(),
                json!({"example.com/stamp": "1", "team": "red"})
            ),
            // A declared value is replaced, the other labels kept in order.
            (
                "b".to_owned(),
                json!({"app": "web", "team": "red", "example.com/stamp": "1"})
            ),
            (
                "stepped".to_owned(),
                json!({"from": "step", "example.com/stamp": "1", "team": "red"})
            ),
        ]
    );
    // The cached parse is labelled too: a second render is the same.
    assert_eq!(renderer.render(&files()).unwrap(), desired);
}

#[test]
fn invalid_labels_are_refused_with_the_options() {
    for (key, value) in [("bad key", "v"), ("k", "not a value!"), ("", "v")] {
        let options = RenderOptions::default().with_label(key, value);
        let err = options.validate().unwrap_err();
        assert!(
            matches!(&err, OptionsError::InvalidLabel { key: k, value: v, .. } if k == key && v == value),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with(&format!("invalid label {key}=")),
            "{err}"
        );
        assert!(Renderer::new(options).is_err());
    }
}

/// The reconciler renders with its owner label: the desired state it plans
/// is labelled, and its plan applies exactly the rendered objects (the
/// planner's own labelling, on a desired state without the label, gives
/// the same objects).
#[tokio::test]
async fn the_reconciler_renders_with_its_owner_label() {
    let source = MemorySource::new();
    let mut files: Vec<(String, Vec<u8>)> = files()
        .files()
        .map(|(p, b)| (p.to_owned(), b.data.to_vec()))
        .collect();
    files.push((
        "ns.yaml".to_owned(),
        b"apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n".to_vec(),
    ));
    let snapshot = Snapshot::from_files(files.clone());
    source.commit("main", files, "ada", "1");
    let owner = OwnerId::new("shop").unwrap();
    let config = ReconcilerConfig::new(owner.clone());
    let reconciler = Reconciler::new(source, MemoryRuntime::new(), config).unwrap();
    let (desired, planned) = reconciler.plan("main").await.unwrap();
    assert_eq!(desired.len(), 3);
    for (_, d) in desired.iter() {
        assert_eq!(d.object.label(OWNER_LABEL), Some("shop"));
    }
    let objects = |plan: &gitops_core::Plan| -> BTreeMap<ObjectKey, Object> {
        plan.steps
            .iter()
            .filter_map(|s| Some((s.key.clone(), s.object.clone()?)))
            .collect()
    };
    let applied = objects(&planned);
    let rendered: BTreeMap<ObjectKey, Object> = desired
        .iter()
        .map(|(k, d)| (k.clone(), d.object.clone()))
        .collect();
    assert_eq!(applied, rendered);
    // What the planner alone makes of the unlabelled render.
    let plain = render(&snapshot, &RenderOptions::default()).unwrap();
    let alone = plan(
        &plain,
        &gitops_core::LiveState::default(),
        &PlanOptions::new(owner),
    );
    assert_eq!(applied, objects(&alone));
}
