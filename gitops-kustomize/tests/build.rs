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

const SERVICE: &str = "apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - port: 80
";

/// A base (Deployment and Service in one file, a ConfigMap generator) and
/// an overlay with a patch file and an image change.
fn overlay_tree() -> Snapshot {
    Snapshot::from_files([
        (
            "base/kustomization.yaml",
            "resources: [deploy.yaml, svc.yaml]\nconfigMapGenerator:\n- name: settings\n  literals: [a=b]\n",
        ),
        ("base/deploy.yaml", DEPLOY),
        ("base/svc.yaml", &format!("---\n---\n{SERVICE}")),
        (
            "overlay/kustomization.yaml",
            "resources: [../base]\npatches:\n- path: patch.yaml\nimages:\n- name: nginx\n  newTag: \"2.0\"\n",
        ),
        (
            "overlay/patch.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 3\n",
        ),
    ])
}

fn origin_of<'a>(
    built: &'a [(Value, gitops_kustomize::Origin)],
    kind: &str,
) -> &'a gitops_kustomize::Origin {
    built
        .iter()
        .find(|(o, _)| o["kind"] == kind)
        .map(|(_, origin)| origin)
        .unwrap_or_else(|| panic!("no {kind}"))
}

#[test]
fn origins_name_the_file_and_the_files_that_changed_each_object() {
    let snap = overlay_tree();
    let built = gitops_kustomize::build_with_origins(&snap, "overlay").unwrap_or_default();
    // The same objects as `build`.
    let objs: Vec<Value> = built.iter().map(|(o, _)| o.clone()).collect();
    assert_eq!(
        Ok(objs),
        gitops_kustomize::build(&snap, "overlay").map_err(|e| e.to_string())
    );

    let d = origin_of(&built, "Deployment");
    assert_eq!(
        (d.path.as_str(), d.document, d.item),
        ("base/deploy.yaml", 0, None)
    );
    // In the order applied: patches run before images.
    assert_eq!(
        d.transformed_by,
        ["overlay/patch.yaml", "overlay/kustomization.yaml"]
    );
    // The Service is neither patched nor has an image: untouched. Its
    // document index counts the empty document before it.
    let s = origin_of(&built, "Service");
    assert_eq!((s.path.as_str(), s.document), ("base/svc.yaml", 1));
    assert!(s.transformed_by.is_empty(), "{:?}", s.transformed_by);
    // Generated: the kustomization holding the generator; the content hash
    // is added by the root's build.
    let c = origin_of(&built, "ConfigMap");
    assert_eq!(
        c.to_string(),
        "base/kustomization.yaml (configMapGenerator) via overlay/kustomization.yaml"
    );
}

/// A repository of `n` overlays over 5 bases and a common base.
fn fleet(n: usize) -> Vec<(String, String)> {
    let mut files = vec![
        (
            "bases/common/kustomization.yaml".to_owned(),
            "resources: [ns.yaml]\n".to_owned(),
        ),
        (
            "bases/common/ns.yaml".to_owned(),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: common\n".to_owned(),
        ),
    ];
    for b in 0..5 {
        files.push((
            format!("bases/app{b}/kustomization.yaml"),
            "resources: [deploy.yaml, svc.yaml]\nconfigMapGenerator:\n- name: settings\n  literals: [a=b]\n".to_owned(),
        ));
        files.push((format!("bases/app{b}/deploy.yaml"), DEPLOY.to_owned()));
        files.push((format!("bases/app{b}/svc.yaml"), SERVICE.to_owned()));
    }
    for o in 0..n {
        files.push((
            format!("overlays/o{o}/kustomization.yaml"),
            format!(
                "resources: [../../bases/app{}, ../../bases/common]\nnamePrefix: o{o}-\nnamespace: ns{o}\npatches:\n- path: patch.yaml\n",
                o % 5
            ),
        ));
        files.push((
            format!("overlays/o{o}/patch.yaml"),
            format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: {}\n", o % 3 + 1),
        ));
    }
    files
}

fn render_all(
    k: &gitops_kustomize::Kustomize,
    snap: &Snapshot,
    n: usize,
) -> Vec<Result<Vec<(Value, gitops_kustomize::Origin)>, String>> {
    (0..n)
        .map(|o| {
            k.build_with_origins(snap, &format!("overlays/o{o}"))
                .map_err(|e| e.to_string())
        })
        .collect()
}

fn uncached(
    snap: &Snapshot,
    n: usize,
) -> Vec<Result<Vec<(Value, gitops_kustomize::Origin)>, String>> {
    (0..n)
        .map(|o| {
            gitops_kustomize::build_with_origins(snap, &format!("overlays/o{o}"))
                .map_err(|e| e.to_string())
        })
        .collect()
}

#[test]
fn a_commit_to_one_overlay_rebuilds_that_overlay_only() {
    let n = 50;
    let files = fleet(n);
    let snap = Snapshot::from_files(files.clone());
    let k = gitops_kustomize::Kustomize::new();
    let cold = render_all(&k, &snap, n);
    assert_eq!(cold, uncached(&snap, n));
    let s0 = k.cache_stats();
    // Each overlay's output and each base once: misses (a root's own
    // directory is not looked up when its output is not reusable); bases
    // reached again are hits.
    assert_eq!(s0.misses, 50 + 5 + 1);
    assert_eq!(s0.hits, 2 * 50 - 5 - 1);

    // The same revision again: every output reused.
    assert_eq!(render_all(&k, &snap, n), cold);
    let s1 = k.cache_stats();
    assert_eq!((s1.hits - s0.hits, s1.misses - s0.misses), (50, 0));

    // A commit changing one overlay's patch file.
    let mut changed = files.clone();
    for (p, d) in &mut changed {
        if p == "overlays/o7/patch.yaml" {
            *d = d.replace("replicas: 2", "replicas: 9");
        }
    }
    let snap2 = Snapshot::from_files(changed);
    let warm = render_all(&k, &snap2, n);
    assert_eq!(warm, uncached(&snap2, n));
    assert_ne!(warm, cold);
    let s2 = k.cache_stats();
    // 49 outputs reused; o7 rebuilt over its two reused bases.
    assert_eq!((s2.hits - s1.hits, s2.misses - s1.misses), (49 + 2, 1));
}

#[test]
fn failed_builds_are_not_reused() {
    let k = gitops_kustomize::Kustomize::new();
    let broken = Snapshot::from_files([
        ("base/kustomization.yaml", "resources: [cm.yaml]\n"),
        ("app/kustomization.yaml", "resources: [../base]\n"),
    ]);
    let first = k
        .build_with_origins(&broken, "app")
        .map_err(|e| e.to_string());
    insta::assert_snapshot!(first.err().unwrap_or_default(), @"base/kustomization.yaml: `resources` entry `cm.yaml`: `base/cm.yaml` does not exist in the snapshot");
    let fixed = Snapshot::from_files([
        ("base/kustomization.yaml", "resources: [cm.yaml]\n"),
        (
            "base/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
        ),
        ("app/kustomization.yaml", "resources: [../base]\n"),
    ]);
    assert_eq!(
        k.build_with_origins(&fixed, "app").map(|o| o.len()).ok(),
        Some(1)
    );
    // Broken again: the error again, not the reused result.
    assert!(k.build_with_origins(&broken, "app").is_err());
    // A second kustomization file where only one was: absent files are part of the trace.
    let two = Snapshot::from_files([
        ("base/kustomization.yaml", "resources: [cm.yaml]\n"),
        ("base/kustomization.yml", "resources: [cm.yaml]\n"),
        (
            "base/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
        ),
        ("app/kustomization.yaml", "resources: [../base]\n"),
    ]);
    let e = k.build_with_origins(&two, "app").map_err(|e| e.to_string());
    assert_eq!(
        e.err().as_deref(),
        Some("base: found multiple kustomization files")
    );
}

#[test]
fn a_reused_result_does_not_hide_a_cycle() {
    let snap = Snapshot::from_files([
        ("x/kustomization.yaml", "resources: [../d]\n"),
        ("d/kustomization.yaml", "resources: [cm.yaml]\n"),
        (
            "d/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
        ),
        ("d/app/kustomization.yaml", "resources: [../../x]\n"),
    ]);
    let expected = gitops_kustomize::build(&snap, "d/app").map_err(|e| e.to_string());
    insta::assert_snapshot!(expected.clone().err().unwrap_or_default(), @"x/kustomization.yaml: `resources` entry `../d`: cycle: `d` contains a kustomization being built");
    let k = gitops_kustomize::Kustomize::new();
    // `x` (which includes `d`) is built and kept first...
    assert!(k.build_with_origins(&snap, "x").is_ok());
    // ...and not reused inside `d/app`, where it closes a cycle.
    let got = k
        .build_with_origins(&snap, "d/app")
        .map(|o| o.into_iter().map(|(v, _)| v).collect::<Vec<_>>())
        .map_err(|e| e.to_string());
    assert_eq!(got, expected);
}

#[test]
fn build_metadata_is_refused_rather_than_ignored() {
    let err = build(
        &[
            (
                "kustomization.yaml",
                "resources: [cm.yaml]\nbuildMetadata: [originAnnotations, managedByLabel]\n",
            ),
            (
                "cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
            ),
        ],
        "",
    )
    .err()
    .unwrap_or_default();
    insta::assert_snapshot!(err, @"kustomization.yaml: `buildMetadata`: not supported: `originAnnotations`, `managedByLabel` (this build writes no build annotations or labels; `build_with_origins` gives each object's origin)");
}
