//! Feature tests: each builds a small tree and checks the output or the errors.

use gitops_core::Snapshot;
use serde_json::{Value, json};

fn build(files: &[(&str, &str)], root: &str) -> Result<Vec<Value>, String> {
    let snap = Snapshot::from_files(files.iter().map(|(p, d)| (*p, *d)));
    gitops_kustomize::build(&snap, root).map_err(|e| e.to_string())
}

fn find<'a>(objs: &'a [Value], kind: &str) -> &'a Value {
    objs.iter()
        .find(|o| o["kind"] == kind)
        .unwrap_or(&Value::Null)
}

const DEPLOY: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      serviceAccountName: runner
      containers:
      - name: app
        image: nginx:1.0
        envFrom:
        - configMapRef:
            name: settings
";

#[test]
fn generator_hash_prefix_and_reference_rewriting() {
    let objs = build(
        &[
            ("base/kustomization.yaml", "resources: [deploy.yaml]\nconfigMapGenerator:\n- name: settings\n  literals: [foo=bar]\n"),
            ("base/deploy.yaml", DEPLOY),
            ("prod/kustomization.yaml", "resources: [../base]\nnamePrefix: prod-\nnamespace: live\n"),
        ],
        "prod",
    )
    .unwrap_or_default();
    let cm = find(&objs, "ConfigMap");
    // The hash does not depend on the name (kustomize hashes an empty name).
    assert_eq!(cm["metadata"]["name"], "prod-settings-798k5k7g9f");
    assert_eq!(cm["metadata"]["namespace"], "live");
    let d = find(&objs, "Deployment");
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["name"],
        "prod-settings-798k5k7g9f"
    );
    assert_eq!(d["metadata"]["name"], "prod-web");
}

#[test]
fn generator_options_disable_hash_and_add_labels() {
    let objs = build(
        &[(
            "kustomization.yaml",
            "generatorOptions:\n  disableNameSuffixHash: true\n  labels: {team: a}\nsecretGenerator:\n- name: s\n  literals: [k=v]\n",
        )],
        "",
    )
    .unwrap_or_default();
    assert_eq!(
        objs,
        vec![
            json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                    "metadata": {"name": "s", "labels": {"team": "a"}}, "data": {"k": "dg=="}})
        ]
    );
}

#[test]
fn common_labels_reach_selectors_labels_do_not() {
    let objs = build(
        &[
            (
                "kustomization.yaml",
                "resources: [d.yaml]\ncommonLabels: {tier: fe}\nlabels:\n- pairs: {owner: me}\n",
            ),
            ("d.yaml", DEPLOY),
        ],
        "",
    )
    .unwrap_or_default();
    let d = find(&objs, "Deployment");
    assert_eq!(
        d["spec"]["selector"]["matchLabels"],
        json!({"app": "web", "tier": "fe"})
    );
    assert_eq!(
        d["metadata"]["labels"],
        json!({"tier": "fe", "owner": "me"})
    );
    assert_eq!(
        d["spec"]["template"]["metadata"]["labels"],
        json!({"app": "web", "tier": "fe"})
    );
}

#[test]
fn images_and_replicas() {
    let objs = build(
        &[
            (
                "kustomization.yaml",
                "resources: [d.yaml]\nimages:\n- name: nginx\n  newName: reg/nginx\n  newTag: \"2.0\"\nreplicas:\n- name: web\n  count: 3\n",
            ),
            ("d.yaml", DEPLOY),
        ],
        "",
    )
    .unwrap_or_default();
    let d = find(&objs, "Deployment");
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "reg/nginx:2.0"
    );
    assert_eq!(d["spec"]["replicas"], 3);
}

#[test]
fn patches_strategic_json6902_and_components() {
    let objs = build(
        &[
            ("app/kustomization.yaml", "resources: [d.yaml]\ncomponents: [../comp]\npatches:\n- target: {kind: Deployment, name: w.*}\n  patch: '[{\"op\": \"add\", \"path\": \"/spec/paused\", \"value\": true}]'\n"),
            ("app/d.yaml", DEPLOY),
            ("comp/kustomization.yaml", "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\npatches:\n- path: p.yaml\n"),
            ("comp/p.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: sidecar\n        image: envoy\n"),
        ],
        "app",
    )
    .unwrap_or_default();
    let d = find(&objs, "Deployment");
    assert_eq!(d["spec"]["paused"], true);
    let names: Vec<&Value> = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .map(|a| a.iter().map(|c| &c["name"]).collect())
        .unwrap_or_default();
    // kustomize puts the elements a patch names first.
    assert_eq!(names, [&json!("sidecar"), &json!("app")]);
}

#[test]
fn replacements_copy_fields() {
    let objs = build(
        &[
            (
                "kustomization.yaml",
                "resources: [d.yaml, cm.yaml]\nreplacements:\n- source: {kind: ConfigMap, name: src, fieldPath: data.image}\n  targets:\n  - select: {kind: Deployment}\n    fieldPaths:\n    - spec.template.spec.containers.[name=app].image\n",
            ),
            ("d.yaml", DEPLOY),
            ("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: src\ndata:\n  image: busybox\n"),
        ],
        "",
    )
    .unwrap_or_default();
    let d = find(&objs, "Deployment");
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "busybox"
    );
}

#[test]
fn kustomization_field_names_ignore_case() {
    let objs = build(
        &[
            ("Kustomization", "Resources: [cm.yaml]\nnameprefix: x-\n"),
            (
                "cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
            ),
        ],
        "",
    )
    .unwrap_or_default();
    assert_eq!(objs[0]["metadata"]["name"], "x-c");
}

#[test]
fn non_hermetic_and_missing_inputs_are_all_reported() {
    let err = build(
        &[
            (
                "app/kustomization.yaml",
                "resources:\n- https://example.com/x.yaml\n- github.com/org/repo//base?ref=v1\n- missing.yaml\n- ../../outside\n- ../shared.yaml\nhelmCharts:\n- name: redis\ntransformers:\n- plugin.yaml\n",
            ),
            ("app/plugin.yaml", "apiVersion: example.com/v1\nkind: Sed\nmetadata:\n  name: s\n"),
            ("shared.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n"),
        ],
        "app",
    )
    .err()
    .unwrap_or_default();
    insta::assert_snapshot!(err, @r"
    app/kustomization.yaml: `helmCharts`: Helm charts are inflated by running `helm`, which a hermetic build does not do
    app/kustomization.yaml: `resources` entry `https://example.com/x.yaml`: remote resources are not hermetic and are refused
    app/kustomization.yaml: `resources` entry `github.com/org/repo//base?ref=v1`: remote resources are not hermetic and are refused
    app/kustomization.yaml: `resources` entry `missing.yaml`: `app/missing.yaml` does not exist in the snapshot
    app/kustomization.yaml: `resources` entry `../../outside`: the path escapes the snapshot
    app/kustomization.yaml: `resources` entry `../shared.yaml`: `shared.yaml` is outside the kustomization root `app` (load restrictor: files must be under the root)
    app/kustomization.yaml: `transformers`: `example.com/v1` `Sed` (from app/plugin.yaml) is a plugin or KRM function, which a hermetic build does not run
    ");
}

#[test]
fn cycles_conflicts_and_unmatched_patches() {
    let err = build(
        &[
            (
                "a/kustomization.yaml",
                "resources: [../b, cm.yaml, cm2.yaml]\npatchesStrategicMerge: [p.yaml]\n",
            ),
            (
                "a/cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
            ),
            (
                "a/cm2.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
            ),
            (
                "a/p.yaml",
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: nope\n",
            ),
            ("b/kustomization.yaml", "resources: [../a]\n"),
        ],
        "a",
    )
    .err()
    .unwrap_or_default();
    insta::assert_snapshot!(err, @r"
    b/kustomization.yaml: `resources` entry `../a`: cycle: `a` contains a kustomization being built
    a/kustomization.yaml: may not add resource with an already registered id: v1/ConfigMap c
    a/kustomization.yaml: `patchesStrategicMerge`: no resource matches strategic merge patch v1/Secret nope
    ");
}

#[test]
fn missing_kustomization_and_bad_yaml() {
    let err = build(&[("x/a.yaml", "kind: X")], "x")
        .err()
        .unwrap_or_default();
    insta::assert_snapshot!(err, @"x: no kustomization file (expected one of kustomization.yaml, kustomization.yml, Kustomization)");
    let err = build(
        &[
            ("kustomization.yaml", "resources: [a.yaml]\nbogus: 1\n"),
            ("a.yaml", "a: ["),
        ],
        "",
    )
    .err()
    .unwrap_or_default();
    insta::assert_snapshot!(err, @"kustomization.yaml: `bogus`: unknown field");
}
