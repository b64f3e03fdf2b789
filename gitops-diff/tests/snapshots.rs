//! Snapshots of rendered diffs for realistic objects.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use gitops_diff::{
    CrdLists, DiffOptions, FieldSet, GroupKind, LayeredLists, ObjectDiff, compare, owned_by,
};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

/// The change list, one change per line.
fn changes_text(diff: &ObjectDiff) -> String {
    let show = |v: &Option<Value>| v.as_ref().map_or("-".to_string(), Value::to_string);
    diff.changes
        .iter()
        .map(|c| {
            format!(
                "{:?} {} ({}): {} -> {}\n",
                c.op,
                c.path,
                c.pointer,
                show(&c.before),
                show(&c.after)
            )
        })
        .collect()
}

fn report(diff: &ObjectDiff, live: &Value) -> String {
    format!(
        "## changes\n{}\n## json patch\n{}\n\n## merge patch\n{}\n\n## unified diff\n{}",
        changes_text(diff),
        serde_json::to_string_pretty(&diff.json_patch()).unwrap(),
        serde_json::to_string_pretty(&diff.merge_patch()).unwrap(),
        diff.render(live, false)
    )
}

fn converges(
    desired: &Value,
    live: &Value,
    prev: Option<&FieldSet>,
    diff: &ObjectDiff,
    opts: &DiffOptions,
) {
    let mut patched = live.clone();
    json_patch::patch(&mut patched, &diff.json_patch()).unwrap();
    let again = compare(desired, &patched, prev, opts).unwrap();
    assert!(again.is_empty(), "after JSON patch: {:#?}", again.changes);
    let mut merged = live.clone();
    json_patch::merge(&mut merged, &diff.merge_patch());
    let again = compare(desired, &merged, prev, opts).unwrap();
    assert!(again.is_empty(), "after merge patch: {:#?}", again.changes);
}

#[test]
fn deployment_with_server_defaults() {
    let desired = fixture("deployment.desired.yaml");
    let live = fixture("deployment.live.yaml");
    let opts = DiffOptions::default();
    let prev = owned_by(&live, "gitops-rs").unwrap().unwrap();
    let diff = compare(&desired, &live, Some(&prev), &opts).unwrap();
    insta::assert_snapshot!("deployment", report(&diff, &live));
    converges(&desired, &live, Some(&prev), &diff, &opts);
    // Without the previous field set there are no removals.
    let diff = compare(&desired, &live, None, &opts).unwrap();
    assert_eq!(diff.changes.len(), 2, "{}", changes_text(&diff));
    // The field set the manifest declares, as managedFields would record it.
    let declared = FieldSet::declared_by(&desired, &*opts.lists, &GroupKind::of(&desired));
    insta::assert_snapshot!(
        "deployment_declared_fields",
        serde_yaml::to_string(&declared.to_fields_v1()).unwrap()
    );
}

#[test]
fn deployment_with_colour() {
    let desired = fixture("deployment.desired.yaml");
    let live = fixture("deployment.live.yaml");
    let diff = compare(&desired, &live, None, &DiffOptions::default()).unwrap();
    let text = diff.render(&live, true);
    assert!(
        text.contains("\x1b[31m-        image: registry.example.com/shop/web:1.4.1\x1b[0m"),
        "{text}"
    );
    assert!(!diff.render(&live, false).contains('\x1b'));
}

#[test]
fn service_with_cluster_ip() {
    let desired = fixture("service.desired.yaml");
    let live = fixture("service.live.yaml");
    let opts = DiffOptions::default();
    let diff = compare(&desired, &live, None, &opts).unwrap();
    insta::assert_snapshot!("service", report(&diff, &live));
    converges(&desired, &live, None, &diff, &opts);
}

#[test]
fn custom_resource_with_status() {
    let crd = fixture("widget.crd.yaml");
    let desired = fixture("widget.desired.yaml");
    let live = fixture("widget.live.yaml");
    let lists = LayeredLists::new(vec![Arc::new(CrdLists::from_crd(&crd).unwrap())]);
    let opts = DiffOptions::new().lists(Arc::new(lists));
    let diff = compare(&desired, &live, None, &opts).unwrap();
    insta::assert_snapshot!("widget", report(&diff, &live));
    converges(&desired, &live, None, &diff, &opts);
    // With the built-in table only, the gears list is atomic: order differs,
    // so the whole list is reported.
    let plain = compare(&desired, &live, None, &DiffOptions::default()).unwrap();
    assert_eq!(plain.changes.len(), 2, "{}", changes_text(&plain));
}
