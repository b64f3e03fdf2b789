#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Integration tests of `gitops_core::render`.

use std::path::{Path, PathBuf};

use gitops_core::{
    Blob, BlobId, DesiredState, GroupKind, ObjectError, ObjectKey, Revision, Scope, Snapshot,
    SpecialEntry,
};
use gitops_core::{
    MemoryRuntime, MemorySource, OwnerId, Reconciler, ReconcilerConfig, Source, SourceError,
    SyncStatus,
};
use gitops_core::{
    RenderError, RenderErrors, RenderOptions, Renderer, Rendering, SkipReason, render, skip_reason,
    skip_reason_in,
};
use insta::assert_snapshot;
use proptest::prelude::*;
use serde_json::{Value, json};

fn snap(files: &[(&str, &str)]) -> Snapshot {
    Snapshot::from_files(files.iter().map(|(p, d)| (*p, *d)))
}

fn ok(files: &[(&str, &str)]) -> DesiredState {
    match render(&snap(files), &RenderOptions::default()) {
        Ok(d) => d,
        Err(e) => panic!("render failed:\n{e}"),
    }
}

fn errs(files: &[(&str, &str)]) -> RenderErrors {
    render(&snap(files), &RenderOptions::default()).expect_err("render should fail")
}

fn listing(d: &DesiredState) -> String {
    d.iter()
        .map(|(k, o)| format!("{k} <- {}", o.provenance))
        .collect::<Vec<_>>()
        .join("\n")
}

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ";

// ---------------------------------------------------------------- basics

#[test]
fn multi_document_yaml_with_empty_documents_and_provenance() {
    let d = ok(&[(
        "app.yaml",
        "# leading comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\n# only a comment\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\n...\n",
    )]);
    assert_snapshot!(listing(&d), @r"
    ConfigMap/default/a <- app.yaml#0 (line 2)
    Deployment.apps/shop/web <- app.yaml#3 (line 9)
    ");
}

#[test]
fn document_lines_survive_block_scalars_and_crlf() {
    let d = ok(&[
        (
            "script.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  s: |\n    ---\n    not a document\n    ...\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n",
        ),
        (
            "crlf.yaml",
            "apiVersion: v1\r\nkind: ConfigMap\r\nmetadata: {name: c}\r\n---\r\napiVersion: v1\r\nkind: ConfigMap\r\nmetadata: {name: d}\r\n",
        ),
    ]);
    assert_snapshot!(listing(&d), @r"
    ConfigMap/default/a <- script.yaml#0 (line 1)
    ConfigMap/default/b <- script.yaml#1 (line 9)
    ConfigMap/default/c <- crlf.yaml#0 (line 1)
    ConfigMap/default/d <- crlf.yaml#1 (line 4)
    ");
    let a = d
        .get(&ObjectKey::new("", "ConfigMap", Some("default"), "a"))
        .unwrap();
    assert_eq!(
        a.object.as_value()["data"]["s"],
        "---\nnot a document\n...\n"
    );
}

#[test]
fn json_files_are_rendered() {
    let d = ok(&[(
        "x/cm.json",
        r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "j", "namespace": "n"}, "data": {"k": "v"}}"#,
    )]);
    assert_snapshot!(listing(&d), @"ConfigMap/n/j <- x/cm.json#0 (line 1)");
    let o = &d
        .get(&ObjectKey::new("", "ConfigMap", Some("n"), "j"))
        .unwrap()
        .object;
    assert_eq!(o.as_value()["data"]["k"], "v");
}

#[test]
fn lists_are_flattened() {
    let d = ok(&[
        (
            "list.yaml",
            "apiVersion: v1\nkind: List\nmetadata: {}\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: b}\n",
        ),
        (
            "cms.yaml",
            "apiVersion: v1\nkind: ConfigMapList\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: c}\n",
        ),
        ("empty.yaml", "apiVersion: v1\nkind: List\nitems: []\n"),
    ]);
    assert_snapshot!(listing(&d), @r"
    ConfigMap/default/a <- list.yaml#0 items[0] (line 1)
    ConfigMap/default/c <- cms.yaml#0 items[0] (line 1)
    Secret/default/b <- list.yaml#0 items[1] (line 1)
    ");
    let e = errs(&[("bad.yaml", "apiVersion: v1\nkind: List\nitems: {a: 1}\n")]);
    assert!(matches!(e.0[0], RenderError::InvalidList { .. }));
    assert_snapshot!(e, @"bad.yaml#0 (line 1): `items` of List must be a list");
    let e = errs(&[(
        "bad.yaml",
        "apiVersion: v1\nkind: List\nitems:\n- kind: ConfigMap\n",
    )]);
    assert_snapshot!(e, @"bad.yaml#0 items[0] (line 1): missing required field `apiVersion`");
}

#[test]
fn namespaces_are_defaulted_by_scope() {
    let options = RenderOptions::default().with_default_namespace("shop");
    let s = snap(&[
        (
            "ns.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n",
        ),
        (
            "cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
        ),
        (
            "cr.yaml",
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: 'system:x'}\n",
        ),
    ]);
    let d = render(&s, &options).unwrap();
    assert_snapshot!(listing(&d), @r"
    ConfigMap/shop/a <- cm.yaml#0 (line 1)
    Namespace/shop <- ns.yaml#0 (line 1)
    ClusterRole.rbac.authorization.k8s.io/system:x <- cr.yaml#0 (line 1)
    ");
    let cm = d
        .get(&ObjectKey::new("", "ConfigMap", Some("shop"), "a"))
        .unwrap();
    assert_eq!(cm.object.as_value()["metadata"]["namespace"], "shop");
}

#[test]
fn crds_of_the_snapshot_and_registered_kinds_define_scopes() {
    let crd = |plural: &str, kind: &str, scope: &str| {
        format!(
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {{name: {plural}.example.com}}\nspec:\n  group: example.com\n  scope: {scope}\n  names: {{kind: {kind}, plural: {plural}, listKind: {kind}List}}\n"
        )
    };
    let widgets = crd("widgets", "Widget", "Namespaced");
    let realms = crd("realms", "Realm", "Cluster");
    let s = snap(&[
        ("crds/widgets.yaml", &widgets),
        ("crds/realms.yaml", &realms),
        (
            "w.yaml",
            "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n",
        ),
        (
            "r.yaml",
            "apiVersion: example.com/v1\nkind: Realm\nmetadata: {name: r}\n",
        ),
        (
            "g.yaml",
            "apiVersion: other.io/v1\nkind: Gadget\nmetadata: {name: g}\n",
        ),
    ]);
    let options = RenderOptions::default()
        .register_kind(GroupKind::new("other.io", "Gadget"), Scope::Cluster);
    let d = render(&s, &options).unwrap();
    assert_snapshot!(listing(&d), @r"
    CustomResourceDefinition.apiextensions.k8s.io/realms.example.com <- crds/realms.yaml#0 (line 1)
    CustomResourceDefinition.apiextensions.k8s.io/widgets.example.com <- crds/widgets.yaml#0 (line 1)
    Realm.example.com/r <- r.yaml#0 (line 1)
    Widget.example.com/default/w <- w.yaml#0 (line 1)
    Gadget.other.io/g <- g.yaml#0 (line 1)
    ");
    assert_eq!(
        d.kinds().scope(&GroupKind::new("example.com", "Widget")),
        Some(Scope::Namespaced)
    );
    assert_eq!(
        d.kinds().scope(&GroupKind::new("other.io", "Gadget")),
        Some(Scope::Cluster)
    );
    // Without the registration the Gadget is an unknown kind.
    let e = render(&s, &RenderOptions::default()).unwrap_err();
    assert_snapshot!(e, @r#"g.yaml#0 (line 1): unknown kind Gadget.other.io (apiVersion other.io/v1) of "g": not a built-in kind, not defined by a CustomResourceDefinition in this snapshot, not registered in RenderOptions::kinds"#);
}

#[test]
fn revision_is_carried() {
    let rev = Revision::new("0123456789abcdef").with_message("deploy");
    let s = snap(&[(
        "a.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
    )])
    .with_revision(rev.clone());
    let d = render(&s, &RenderOptions::default()).unwrap();
    assert_eq!(d.revision(), Some(&rev));
    assert!(d.kinds().is_builtin(&GroupKind::new("apps", "Deployment")));
}

#[test]
fn numeric_and_boolean_keys_become_strings() {
    let d = ok(&[(
        "a.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  1: one\n  true: yes\n  1.5: x\n",
    )]);
    let o = d.iter().next().unwrap().1;
    assert_eq!(
        o.object.as_value()["data"],
        json!({"1": "one", "true": "yes", "1.5": "x"})
    );
}

// ---------------------------------------------------------------- skip rules

#[test]
fn skip_rules_are_explicit() {
    let cases = [
        "README.md",
        "apps/web.yaml",
        "apps/web.yml",
        "apps/web.json",
        "apps/web.YAML",
        "apps/kustomization.yaml",
        "apps/kustomization.yml",
        "apps/Kustomization",
        ".github/workflows/ci.yaml",
        "apps/.hidden.yaml",
        "chart/Chart.yaml",
        "chart/values.yaml",
        "chart/values-prod.yml",
        "run.sh",
    ];
    let out: Vec<String> = cases
        .iter()
        .map(|p| {
            format!(
                "{p}: {}",
                skip_reason(p).map_or("rendered".to_owned(), |r| r.to_string())
            )
        })
        .collect();
    assert_snapshot!(out.join("\n"), @r"
    README.md: not a .yaml, .yml or .json file
    apps/web.yaml: rendered
    apps/web.yml: rendered
    apps/web.json: rendered
    apps/web.YAML: not a .yaml, .yml or .json file
    apps/kustomization.yaml: a Kustomize kustomization file
    apps/kustomization.yml: a Kustomize kustomization file
    apps/Kustomization: a Kustomize kustomization file
    .github/workflows/ci.yaml: hidden: a folder or file name starts with '.'
    apps/.hidden.yaml: hidden: a folder or file name starts with '.'
    chart/Chart.yaml: Helm chart metadata or values, not a manifest
    chart/values.yaml: Helm chart metadata or values, not a manifest
    chart/values-prod.yml: Helm chart metadata or values, not a manifest
    run.sh: not a .yaml, .yml or .json file
    ");
}

#[test]
fn helm_templates_are_skipped_only_beside_a_chart() {
    let s = snap(&[
        ("Chart.yaml", "name: root"),
        ("templates/a.yaml", "{{ template }}"),
        ("charts/web/Chart.yaml", "name: web"),
        ("charts/web/templates/deploy.yaml", "{{- if .Values.x }}"),
        ("charts/web/templates/sub/svc.yaml", "{{ .Values.y }}"),
        (
            "plain/templates/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: t}\n",
        ),
    ]);
    assert_eq!(
        skip_reason_in(&s, "templates/a.yaml"),
        Some(SkipReason::HelmTemplate {
            chart: String::new()
        })
    );
    assert_eq!(
        skip_reason_in(&s, "charts/web/templates/sub/svc.yaml"),
        Some(SkipReason::HelmTemplate {
            chart: "charts/web".into()
        })
    );
    assert_eq!(skip_reason_in(&s, "plain/templates/cm.yaml"), None);
    let mut r = Renderer::new(RenderOptions::default()).unwrap();
    let d = r.render(&s).unwrap();
    assert_snapshot!(listing(&d), @"ConfigMap/default/t <- plain/templates/cm.yaml#0 (line 1)");
    assert_eq!((r.stats().files, r.stats().skipped), (6, 5));
    assert_snapshot!(
        SkipReason::HelmTemplate { chart: "charts/web".into() }.to_string(),
        @"a template of the Helm chart in charts/web/"
    );
}

#[test]
fn include_and_exclude_globs() {
    let s = snap(&[
        ("apps/a.yaml", &format!("{CM}a\n")),
        ("apps/deep/b.yaml", &format!("{CM}b\n")),
        ("apps/c-test.yaml", &format!("{CM}c\n")),
        ("infra/d.yaml", &format!("{CM}d\n")),
    ]);
    let options = RenderOptions::default()
        .include("apps/**")
        .exclude("**/*-test.yaml");
    let r = Renderer::new(options.clone()).unwrap();
    assert_eq!(
        r.skip_reason(&s, "infra/d.yaml"),
        Some(SkipReason::NotIncluded)
    );
    assert_eq!(
        r.skip_reason(&s, "apps/c-test.yaml"),
        Some(SkipReason::Excluded {
            pattern: "**/*-test.yaml".into()
        })
    );
    let d = render(&s, &options).unwrap();
    assert_snapshot!(listing(&d), @r"
    ConfigMap/default/a <- apps/a.yaml#0 (line 1)
    ConfigMap/default/b <- apps/deep/b.yaml#0 (line 1)
    ");
    // `*` does not cross `/`.
    let d = render(&s, &RenderOptions::default().include("apps/*.yaml")).unwrap();
    assert_eq!(d.len(), 2);
}

#[test]
fn invalid_options_are_refused() {
    let e = Renderer::new(RenderOptions::default().exclude("a/{b")).unwrap_err();
    assert_snapshot!(e, @r#"invalid glob "a/{b": unclosed alternate group; missing '}' (maybe escape '{' with '[{]'?)"#);
    let e = Renderer::new(RenderOptions::default().with_default_namespace("Shop")).unwrap_err();
    assert_snapshot!(e, @r#"invalid default namespace "Shop": must consist of lower case alphanumeric characters or '-'"#);
    let e = render(&Snapshot::new(), &RenderOptions::default().include("[")).unwrap_err();
    assert!(matches!(e.0[0], RenderError::Options(_)));
}

// ---------------------------------------------------------------- errors

#[test]
fn malformed_yaml_names_file_document_line_and_column() {
    let e = errs(&[(
        "apps/web.yaml",
        &format!(
            "{CM}a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [b\n---\n{CM}c\n"
        ),
    )]);
    assert_eq!(e.len(), 1);
    let RenderError::Syntax { at, location, .. } = &e.0[0] else {
        panic!("{e:?}")
    };
    assert_eq!((at.document, at.line), (1, Some(5)));
    // The pre-scan (granit-parser) names the bracket left open.
    assert_eq!(location.map(|l| (l.line, l.column)), Some((9, 9)));
    assert_snapshot!(e, @"apps/web.yaml#1 (line 9, column 9): invalid YAML: unclosed bracket '['");
}

#[test]
fn malformed_json_names_line_and_column() {
    let e = errs(&[("a.json", "{\"apiVersion\": \"v1\",\n  \"kind\": }\n")]);
    assert!(matches!(e.0[0], RenderError::Syntax { .. }));
    assert_snapshot!(e, @"a.json#0 (line 2, column 11): invalid JSON: expected value");
    let e = errs(&[("a.json", "{\"a\": 1}\n{\"b\": 2}\n")]);
    assert_snapshot!(e, @"a.json#0 (line 2, column 1): invalid JSON: trailing characters");
}

#[test]
fn duplicate_objects_name_both_places() {
    let e = errs(&[
        ("b.yaml", &format!("{CM}x\n")),
        (
            "a.yaml",
            &format!("{CM}y\n---\n{CM}x\n  namespace: default\n"),
        ),
    ]);
    assert!(matches!(e.0[0], RenderError::Duplicate(_)));
    assert_snapshot!(e, @"ConfigMap/default/x is declared twice: at a.yaml#1 (line 5) and at b.yaml#0 (line 1)");
}

#[test]
fn object_validation_errors() {
    let e = errs(&[
        ("1-no-kind.yaml", "apiVersion: v1\nmetadata: {name: a}\n"),
        (
            "2-no-name.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {labels: {a: b}}\n",
        ),
        (
            "3-bad-name.yaml",
            "apiVersion: v1\nkind: Service\nmetadata: {name: 9lives}\n",
        ),
        ("4-scalar.yaml", "just a string\n"),
        (
            "5-bad-label.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: {a: -x}}\n",
        ),
        (
            "6-bad-api.yaml",
            "apiVersion: Apps/v1\nkind: Deployment\nmetadata: {name: a}\n",
        ),
    ]);
    assert!(e.iter().all(|e| matches!(e, RenderError::Invalid { .. })));
    assert!(matches!(
        e.0[0],
        RenderError::Invalid {
            source: ObjectError::MissingField { field: "kind" },
            ..
        }
    ));
    assert_snapshot!(e, @r#"
    1-no-kind.yaml#0 (line 1): missing required field `kind`
    2-no-name.yaml#0 (line 1): missing required field `metadata.name`
    3-bad-name.yaml#0 (line 1): invalid metadata.name "9lives" for kind Service (RFC 1035 label): must start with a lowercase letter
    4-scalar.yaml#0 (line 1): the document is not a mapping but a string
    5-bad-label.yaml#0 (line 1): invalid value "-x" for label "a": must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character
    6-bad-api.yaml#0 (line 1): invalid apiVersion "Apps/v1": the group is not a DNS subdomain
    "#);
}

#[test]
fn non_utf8_is_reported_with_position() {
    let mut s = Snapshot::new();
    s.insert(
        "bin.yaml",
        Blob::from_bytes(b"a: 1\nb: \xff\xfe\n".to_vec()),
    );
    let e = render(&s, &RenderOptions::default()).unwrap_err();
    assert!(matches!(e.0[0], RenderError::NotUtf8 { .. }));
    assert_snapshot!(e, @"bin.yaml: not valid UTF-8 (first invalid byte at line 2, column 4)");
}

#[test]
fn files_over_the_size_limit_are_refused() {
    let s = snap(&[(
        "big.yaml",
        &format!("{CM}a\ndata: {{k: '{}'}}\n", "x".repeat(2000)),
    )]);
    let e = render(&s, &RenderOptions::default().with_max_file_bytes(1024)).unwrap_err();
    assert!(matches!(e.0[0], RenderError::TooLarge { .. }));
    assert_snapshot!(e, @"big.yaml: the file has 2065 bytes, over the limit of 1024 bytes (RenderOptions::max_file_bytes)");
    assert!(render(&s, &RenderOptions::default()).is_ok());
}

fn billion_laughs() -> String {
    let mut doc = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol}\nx:\n  a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let mut prev = 'a';
    for c in 'b'..='j' {
        doc.push_str(&format!("  {c}: &{c} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
        prev = c;
    }
    doc
}

#[test]
fn alias_bombs_are_bounded() {
    // 9^10 "lol"s if expanded; the pre-scan computes the expanded size
    // without expanding and refuses it (this test finishes in milliseconds;
    // a hang would be the failure).
    let e = errs(&[("bomb.yaml", &billion_laughs())]);
    assert!(matches!(e.0[0], RenderError::AliasExpansion { .. }), "{e}");
    assert_snapshot!(e, @"bomb.yaml#0 (line 11, column 22): aliases expand the file to 68356905 bytes, over the limit of 67108864 bytes (RenderOptions::max_expanded_bytes); the alias there went over it");
    // Plain anchors and aliases are fine.
    let d = ok(&[(
        "a.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: &l {x: y}, annotations: *l}\n",
    )]);
    assert_eq!(d.iter().next().unwrap().1.object.annotation("x"), Some("y"));
}

#[test]
fn deep_nesting_is_bounded() {
    let e = errs(&[(
        "deep.yaml",
        &format!("{CM}a\ndata: {}\n", "[".repeat(10_000)),
    )]);
    assert!(matches!(e.0[0], RenderError::TooComplex { .. }), "{e}");
    let e = errs(&[("deep.json", &"[".repeat(10_000))]);
    assert!(matches!(e.0[0], RenderError::TooComplex { .. }), "{e}");
}

#[test]
fn duplicate_keys_are_refused() {
    let e = errs(&[(
        "a.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  name: b\n",
    )]);
    assert!(matches!(&e.0[0], RenderError::DuplicateKey { key, .. } if key == "name"));
    assert_snapshot!(e, @r#"a.yaml#0 (line 4, column 3): duplicate key "name""#);
    let e = errs(&[(
        "a.json",
        r#"{"apiVersion": "v1", "kind": "ConfigMap", "kind": "Secret", "metadata": {"name": "a"}}"#,
    )]);
    assert_snapshot!(e, @r#"a.json#0 (line 1, column 48): duplicate key "kind""#);
    // `1` and "1" are the same key once keys are strings.
    let e = errs(&[(
        "a.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {1: a, '1': b}\n",
    )]);
    assert!(matches!(&e.0[0], RenderError::DuplicateKey { key, .. } if key == "1"));
}

/// Small maps find duplicates by comparing keys, large ones by hashing
/// (from the 17th key): both report the first duplicate, at the map's
/// first line as before, whichever key it repeats, and both keep the keys
/// in file order.
#[test]
fn duplicate_keys_are_refused_in_maps_of_any_size() {
    for size in [2, 16, 17, 18, 40, 5000] {
        let keys: Vec<String> = (0..size).map(|i| format!("k{i}")).collect();
        let data: String = keys.iter().map(|k| format!("  {k}: v\n")).collect();
        let head = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n";
        let desired = ok(&[("a.yaml", &format!("{head}{data}"))]);
        let (_, d) = desired.iter().next().unwrap();
        let read: Vec<&String> = d.object.as_value()["data"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(read.len(), size);
        assert!(
            read.iter().zip(&keys).all(|(a, b)| *a == b),
            "order at {size}"
        );
        // The first key repeated at the end, then the last one.
        for repeated in [&keys[0], &keys[size - 1]] {
            let text = format!("{head}{data}  {repeated}: again\n");
            let e = errs(&[("a.yaml", &text)]);
            assert!(
                matches!(&e.0[0], RenderError::DuplicateKey { key, .. } if key == repeated),
                "{size}: {e}"
            );
            assert_eq!(
                e.to_string(),
                format!("a.yaml#0 (line 5, column 3): duplicate key \"{repeated}\""),
            );
        }
    }
}

#[test]
fn unsupported_keys_and_values() {
    let e = errs(&[
        (
            "1.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  ? [x, y]\n  : z\n",
        ),
        (
            "2.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  ~: z\n",
        ),
        (
            "3.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {a: !vault secret}\n",
        ),
        (
            "4.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\nspec: {x: .nan}\n",
        ),
        (
            "5.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: &m {name: a}\nspec:\n  <<: *m\n",
        ),
        (
            "6.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\nspec: {x: 123456789012345678901234567890}\n",
        ),
    ]);
    assert!(matches!(e.0[0], RenderError::UnsupportedKey { .. }));
    assert!(matches!(e.0[2], RenderError::UnsupportedValue { .. }));
    assert_snapshot!(e, @r"
    1.yaml#0 (line 5, column 5): unsupported mapping key: a list
    2.yaml#0 (line 5, column 3): unsupported mapping key: null
    3.yaml#0 (line 4, column 11): unsupported value: the YAML tag !vault (custom tags are not supported)
    4.yaml#0 (line 4, column 11): unsupported value: the number NaN is not finite (JSON has no .nan or .inf)
    5.yaml#0 (line 5, column 3): unsupported value: a YAML merge key `<<` (not supported: write the fields out)
    6.yaml#0 (line 4, column 11): unsupported value: the integer 123456789012345678901234567890 is out of the 64-bit range
    ");
}

#[test]
fn cluster_scoped_objects_must_not_have_a_namespace() {
    let e = errs(&[(
        "ns.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, namespace: shop}\n",
    )]);
    assert!(matches!(
        e.0[0],
        RenderError::NamespaceOnClusterScoped { .. }
    ));
    assert_snapshot!(e, @r#"ns.yaml#0 (line 1): Namespace/shop sets metadata.namespace "shop", but Namespace is cluster-scoped"#);
}

#[test]
fn unknown_kinds_are_reported_not_guessed() {
    let e = errs(&[(
        "w.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n",
    )]);
    let RenderError::UnknownKind { kind, .. } = &e.0[0] else {
        panic!("{e:?}")
    };
    assert_eq!(kind, &GroupKind::new("example.com", "Widget"));
}

#[test]
fn invalid_crds_are_reported() {
    let e = errs(&[(
        "crd.yaml",
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: gadgets.example.com}\nspec:\n  group: example.com\n  scope: Cluster\n  names: {kind: Widget, plural: widgets}\n",
    )]);
    assert!(matches!(e.0[0], RenderError::Crd { .. }));
    assert_snapshot!(e, @r#"crd.yaml#0 (line 1): CustomResourceDefinition gadgets.example.com: metadata.name must be `widgets.example.com` (spec.names.plural + "." + spec.group)"#);
}

#[test]
fn all_errors_of_a_snapshot_are_collected() {
    let e = errs(&[
        (
            "a.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\nkind: ConfigMap\n---\n: :\n  - [\n",
        ),
        ("b.json", "{"),
        (
            "c.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: c, namespace: x}\n",
        ),
        (
            "d.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
        ),
        (
            "e.yaml",
            "apiVersion: nope.io/v1\nkind: Thing\nmetadata: {name: t}\n",
        ),
        ("ok.yaml", &format!("{CM}fine\n")),
    ]);
    assert_eq!(e.len(), 6);
    assert_snapshot!(e, @r#"
    a.yaml#1 (line 4): missing required field `apiVersion`
    a.yaml#2 (line 8, column 5): invalid YAML: unclosed bracket '['
    b.json#0 (line 1, column 1): invalid JSON: EOF while parsing an object
    c.yaml#0 (line 1): Namespace/c sets metadata.namespace "x", but Namespace is cluster-scoped
    ConfigMap/default/a is declared twice: at a.yaml#0 (line 1) and at d.yaml#0 (line 1)
    e.yaml#0 (line 1): unknown kind Thing.nope.io (apiVersion nope.io/v1) of "t": not a built-in kind, not defined by a CustomResourceDefinition in this snapshot, not registered in RenderOptions::kinds
    "#);
}

// ---------------------------------------------------------------- cache

fn many(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            (
                format!("cm/{i:05}.yaml"),
                format!("{CM}cm-{i}\ndata: {{i: '{i}'}}\n"),
            )
        })
        .collect()
}

#[test]
fn renderer_reparses_only_changed_files() {
    let mut files = many(1000);
    let mut r = Renderer::new(RenderOptions::default()).unwrap();
    let first = r.render(&Snapshot::from_files(files.clone())).unwrap();
    assert_eq!(
        (r.stats().parsed, r.stats().reused, r.stats().objects),
        (1000, 0, 1000)
    );
    assert_eq!(r.cache_len(), 1000);

    files[500].1 = format!("{CM}changed\n");
    let second = r.render(&Snapshot::from_files(files.clone())).unwrap();
    assert_eq!((r.stats().parsed, r.stats().reused), (1, 999));
    assert!(second.contains(&ObjectKey::new("", "ConfigMap", Some("default"), "changed")));
    assert_eq!(second.len(), 1000);
    assert_ne!(first, second);
    // The cache follows the last snapshot: the old blob of file 500 is gone.
    assert_eq!(r.cache_len(), 1000);

    // A warm render gives the same state as a cold one.
    let cold = render(
        &Snapshot::from_files(files.clone()),
        &RenderOptions::default(),
    )
    .unwrap();
    let warm = r.render(&Snapshot::from_files(files.clone())).unwrap();
    assert_eq!(cold, warm);
    assert_eq!((r.stats().parsed, r.stats().reused), (0, 1000));

    // Pruned to the last snapshot.
    r.render(&Snapshot::from_files(files[..10].to_vec()))
        .unwrap();
    assert_eq!(r.cache_len(), 10);
}

/// A snapshot over [`PARALLEL_PARSE_MIN_BYTES`](gitops_core::PARALLEL_PARSE_MIN_BYTES)
/// of every kind of file a render meets; with `broken`, also files that
/// fail in each way a file can.
fn mixed(n: usize, broken: bool) -> Vec<(String, String)> {
    let pad = "x".repeat(120);
    (0..n)
        .map(|i| {
            let ns = format!("team-{}", i % 7);
            let text = match i % 5 {
                _ if broken && i % 97 == 13 => format!("{CM}bad-{i}\n  oops: [\n"),
                _ if broken && i % 89 == 5 => {
                    format!("apiVersion: example.com/v1\nkind: Unknown\nmetadata: {{name: u{i}}}\n")
                }
                _ if broken && i % 101 == 7 => format!("{CM}dup\n  namespace: {ns}\n"),
                _ if broken && i % 103 == 3 => "x".repeat(5000),
                // Nesting as deep as the size limit allows, on whichever
                // thread parses it.
                _ if broken && i % 113 == 11 && i % 5 == 2 => "[".repeat(4000),
                _ if broken && i % 113 == 11 => format!("{CM}deep\ndata: {}\n", "[".repeat(4000)),
                // The same bytes at many paths: one blob, parsed once.
                _ if broken && i % 109 == 1 => format!("{CM}shared\n  namespace: n\n"),
                _ if broken && i % 107 == 9 => {
                    format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: n{i}, namespace: {ns}}}\n")
                }
                0 => format!("{CM}cm-{i}\n  namespace: {ns}\ndata: {{pad: {pad}}}\n---\n{CM}cm-{i}-b\ndata: {{i: '{i}'}}\n"),
                1 => format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns-{i}\n  annotations: {{pad: {pad}}}\n"),
                2 => format!("{{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {{\"name\": \"json-{i}\"}}, \"data\": {{\"pad\": \"{pad}\"}}}}"),
                3 => format!("apiVersion: v1\nkind: List\nitems:\n- {{apiVersion: v1, kind: Service, metadata: {{name: s{i}, namespace: {ns}}}, spec: {{ports: [{{port: 80}}]}}}}\n# {pad}\n"),
                _ => format!(
                    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: d{i}, namespace: {ns}}}\nspec:\n  template:\n    spec:\n      containers:\n      - {{name: a, image: 'x:{i}'}}\n# {pad}\n"
                ),
            };
            let ext = if i % 5 == 2 { "json" } else { "yaml" };
            (format!("d{}/f{i:05}.{ext}", i % 13), text)
        })
        .collect()
}

#[test]
fn parsing_on_threads_changes_nothing() {
    for broken in [false, true] {
        let files = mixed(4000, broken);
        let snapshot = Snapshot::from_files(files.clone());
        assert!(snapshot.total_bytes() > gitops_core::PARALLEL_PARSE_MIN_BYTES);
        let options = |threads| {
            RenderOptions::default()
                .with_max_file_bytes(4096)
                .with_label("team", "shop")
                .with_parse_threads(threads)
        };
        let outcome = |threads| {
            let mut r = Renderer::new(options(threads)).unwrap();
            let shown = |res: Result<DesiredState, RenderErrors>| match res {
                Ok(d) => (d.len(), listing(&d), d),
                Err(e) => (0, e.to_string(), DesiredState::default()),
            };
            let cold = shown(r.render(&snapshot));
            let cold_stats = r.stats();
            let warm = shown(r.render(&snapshot));
            (cold, cold_stats, warm, r.stats())
        };
        let one = outcome(1);
        if broken {
            for failure in [
                "unclosed bracket",
                "expected value",
                "over the limit",
                "unknown kind",
                "is cluster-scoped",
                "ConfigMap/team-0/dup is declared twice",
                "ConfigMap/n/shared is declared twice",
                "too deep nesting",
            ] {
                assert!(one.0.1.contains(failure), "{failure}: {}", one.0.1);
            }
        } else {
            assert!(one.0.0 > 4000, "{}", one.0.0);
        }
        assert_eq!(
            (one.1.parsed, one.3.parsed, one.3.reused),
            (one.1.parsed, 0, one.1.parsed + one.1.reused)
        );
        for threads in [0, 2, 3, 8] {
            let other = outcome(threads);
            assert_eq!(other, one, "{threads} threads, broken: {broken}");
        }
    }
}

#[test]
fn cached_errors_keep_their_own_path() {
    let bad = "apiVersion: v1\nkind: ConfigMap\n";
    let mut r = Renderer::new(RenderOptions::default()).unwrap();
    let e = r
        .render(&snap(&[("a.yaml", bad), ("b.yaml", bad)]))
        .unwrap_err();
    assert_eq!((r.stats().parsed, r.stats().reused), (1, 1));
    assert_snapshot!(e, @r"
    a.yaml#0 (line 1): missing required field `metadata`
    b.yaml#0 (line 1): missing required field `metadata`
    ");
    let e = r.render(&snap(&[("c.yaml", bad)])).unwrap_err();
    assert_eq!(r.stats().reused, 1);
    assert_snapshot!(e, @"c.yaml#0 (line 1): missing required field `metadata`");
}

#[test]
fn blob_ids_from_a_store_are_trusted() {
    let mut s = Snapshot::new();
    s.insert(
        "a.yaml",
        Blob::with_id(BlobId::from_hex("ABC"), format!("{CM}a\n").into_bytes()),
    );
    let mut r = Renderer::new(RenderOptions::default()).unwrap();
    r.render(&s).unwrap();
    let mut s2 = Snapshot::new();
    s2.insert(
        "b.yaml",
        Blob::with_id(BlobId::from_hex("abc"), format!("{CM}a\n").into_bytes()),
    );
    r.render(&s2).unwrap();
    assert_eq!(r.stats().reused, 1);
}

// ---------------------------------------------------------------- properties

fn arb_object() -> impl Strategy<Value = Value> {
    let name = "[a-z]([a-z0-9-]{0,20}[a-z0-9])?";
    let ns = "[a-z]([a-z0-9-]{0,10}[a-z0-9])?";
    let label_value = "([A-Za-z0-9]([A-Za-z0-9._-]{0,10}[A-Za-z0-9])?)?";
    let data_value = prop_oneof![
        "\\PC{0,30}".prop_map(Value::String),
        "[ -~\n\t]{0,30}".prop_map(Value::String),
        Just(Value::String("yes".into())),
        Just(Value::String("null".into())),
        Just(Value::String("0x1F".into())),
        Just(Value::String("---".into())),
        Just(Value::String("a: b".into())),
        any::<i64>().prop_map(|i| json!(i)),
        any::<bool>().prop_map(Value::Bool),
        (-1.0e9f64..1.0e9).prop_map(|f| json!(f)),
        Just(Value::Null),
    ];
    (
        name,
        ns,
        proptest::collection::btree_map("[a-z]([a-z0-9.-]{0,8}[a-z0-9])?", label_value, 0..4),
        proptest::collection::btree_map("[A-Za-z0-9._-]{1,12}", data_value, 0..6),
        proptest::collection::vec(any::<u16>(), 0..4),
    )
        .prop_map(|(name, ns, labels, data, ports)| {
            json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": ns, "labels": labels},
                "data": data,
                "spec": {"ports": ports, "nested": [{"a": [1, [2, {}]]}]},
            })
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn objects_round_trip_through_yaml_and_json(value in arb_object()) {
        let yaml = serde_yaml::to_string(&value).unwrap();
        let json_text = serde_json::to_string_pretty(&value).unwrap();
        for (path, text) in [("o.yaml", yaml), ("o.json", json_text)] {
            let d = render(&Snapshot::from_files([(path, text.clone())]), &RenderOptions::default())
                .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            prop_assert_eq!(d.len(), 1);
            let (_, o) = d.iter().next().unwrap();
            prop_assert_eq!(o.object.as_value(), &value, "{}", text);
        }
    }

    #[test]
    fn rendering_ignores_file_order(
        (sorted, permuted) in proptest::collection::btree_map("[a-d]{1,2}/[a-e]{1,3}\\.(yaml|json)", ("[a-f]", 0..3usize), 1..12)
            .prop_flat_map(|m| {
                let v: Vec<_> = m.into_iter().collect();
                (Just(v.clone()), Just(v).prop_shuffle())
            })
    ) {
        // Names from a small set, so duplicate objects (errors) happen as well.
        let text = |path: &str, name: &str, docs: usize| {
            if path.ends_with(".json") {
                format!(r#"{{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {{"name": "{name}"}}}}"#)
            } else {
                (0..=docs).map(|i| format!("{CM}{name}{i}\n")).collect::<Vec<_>>().join("---\n")
            }
        };
        let build = |files: &[(String, (String, usize))]| {
            let mut s = Snapshot::new();
            for (p, (n, d)) in files {
                s.insert(p.clone(), Blob::from_bytes(text(p, n, *d).into_bytes()));
            }
            s
        };
        let mut reversed = sorted.clone();
        reversed.reverse();
        let expected = render(&build(&sorted), &RenderOptions::default());
        prop_assert_eq!(&render(&build(&permuted), &RenderOptions::default()), &expected);
        prop_assert_eq!(&render(&build(&reversed), &RenderOptions::default()), &expected);
        // And with a warm renderer fed in another order.
        let mut r = Renderer::new(RenderOptions::default()).unwrap();
        let _ = r.render(&build(&reversed));
        prop_assert_eq!(&r.render(&build(&permuted)), &expected);
    }

    #[test]
    fn nothing_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut s = Snapshot::new();
        s.insert("x.yaml", Blob::from_bytes(bytes.clone()));
        s.insert("x.json", Blob::from_bytes(bytes));
        let _ = render(&s, &RenderOptions::default());
    }

    #[test]
    fn nothing_panics_on_yaml_like_text(text in "([a-z:{}\\[\\],&*!|>#'\"-]|---|\n|  |: |- |\\.\\.\\.|apiVersion: v1\n|kind: List\n|items:\n){0,60}") {
        let s = Snapshot::from_files([("x.yaml", text.clone()), ("y.json", text)]);
        let _ = render(&s, &RenderOptions::default());
    }
}

// ---------------------------------------------------------------- corpus

fn corpus() -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus"));
    if dir.is_dir() {
        Some(dir)
    } else {
        println!("SKIPPED: corpus not found at {}", dir.display());
        None
    }
}

fn load_dir(root: &Path) -> Snapshot {
    fn walk(root: &Path, dir: &Path, snap: &mut Snapshot) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(root, &p, snap);
            } else {
                let rel = p
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                snap.insert(rel, Blob::from_bytes(std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut snap = Snapshot::new();
    walk(root, root, &mut snap);
    snap
}

fn kind_counts(d: &DesiredState) -> String {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for k in d.keys() {
        *counts.entry(k.kind.clone()).or_default() += 1;
    }
    counts
        .iter()
        .map(|(k, n)| format!("{k}: {n}"))
        .collect::<Vec<_>>()
        .join("\n")
}

// Counts verified independently with Python/PyYAML (BaseLoader, so that
// kube-prometheus's `- =` enum values load): every .yaml/.yml/.json file of
// the folder except kustomization files, every non-empty document, the
// `items` of documents whose kind ends in "List" counted one by one.
// Cross-checked with `grep -c '^kind:'` for Online Boutique (35 objects in
// 11 manifests + kustomization.yaml; 35 in the release file).

#[test]
fn corpus_online_boutique() {
    let Some(root) = corpus() else { return };
    let snap = load_dir(&root.join("online-boutique/kubernetes-manifests"));
    // The folder holds a kustomization: by default a Kustomize folder with
    // no step to build it is refused, so its patches are never deployed.
    let e = render(&snap, &RenderOptions::default()).unwrap_err();
    assert_eq!(e.0.len(), 1);
    assert_eq!(e.0[0].path(), Some("kustomization.yaml"));
    // Read as plain manifests on request.
    let plain = RenderOptions::default().with_rendering(Rendering::Plain);
    let mut r = Renderer::new(plain).unwrap();
    let d = r.render(&snap).unwrap();
    // 13 files: 11 manifests, README.md and kustomization.yaml (skipped).
    assert_eq!((r.stats().files, r.stats().skipped), (13, 2));
    assert_eq!(d.len(), 35);
    assert_snapshot!(kind_counts(&d), @r"
    Deployment: 12
    Service: 12
    ServiceAccount: 11
    ");

    let release =
        std::fs::read(root.join("online-boutique/release-kubernetes-manifests.yaml")).unwrap();
    let d2 = render(
        &Snapshot::from_files([("release.yaml", release)]),
        &RenderOptions::default(),
    )
    .unwrap();
    assert_eq!(d2.len(), 35);
    // The same objects as the per-service files.
    assert_eq!(d.keys().collect::<Vec<_>>(), d2.keys().collect::<Vec<_>>());
}

#[test]
fn corpus_online_boutique_kustomize_files_are_skipped() {
    let Some(root) = corpus() else { return };
    let snap = load_dir(&root.join("online-boutique/kustomize"));
    let r = Renderer::new(RenderOptions::default()).unwrap();
    let kustomizations: Vec<&str> = snap
        .files()
        .map(|(p, _)| p)
        .filter(|p| r.skip_reason(&snap, p) == Some(SkipReason::Kustomization))
        .collect();
    // 1 at the root, base/, 3 under tests/, 15 under components/
    // (`find kustomize -name kustomization.yaml | wc -l` says 20).
    assert_eq!(kustomizations.len(), 20);
    // The base renders as plain manifests when asked, its kustomization.yaml skipped.
    let plain = RenderOptions::default()
        .include("base/**")
        .with_rendering(Rendering::Plain);
    let mut r = Renderer::new(plain).unwrap();
    let d = r.render(&snap).unwrap();
    assert_eq!(d.len(), 35);
    assert_eq!(
        r.skip_reason(&snap, "base/kustomization.yaml"),
        Some(SkipReason::Kustomization)
    );
}

#[test]
fn corpus_kube_prometheus() {
    let Some(root) = corpus() else { return };
    let snap = load_dir(&root.join("kube-prometheus/manifests"));
    let mut r = Renderer::new(RenderOptions::default()).unwrap();
    let d = r.render(&snap).unwrap_or_else(|e| panic!("{e}"));
    // 95 files (84 + 11 under setup/), one document each; 3 of them are
    // Lists (grafana dashboards ConfigMapList, RoleList, RoleBindingList).
    assert_eq!(
        (r.stats().files, r.stats().skipped, r.stats().documents),
        (95, 0, 95)
    );
    assert_eq!(d.len(), 131);
    assert_snapshot!(kind_counts(&d), @r"
    APIService: 1
    Alertmanager: 1
    ClusterRole: 8
    ClusterRoleBinding: 7
    ConfigMap: 36
    CustomResourceDefinition: 10
    DaemonSet: 1
    Deployment: 5
    Namespace: 1
    NetworkPolicy: 8
    PodDisruptionBudget: 3
    Prometheus: 1
    PrometheusRule: 8
    Role: 4
    RoleBinding: 5
    Secret: 3
    Service: 8
    ServiceAccount: 8
    ServiceMonitor: 13
    ");
    // Custom resources found their CRDs in setup/.
    assert_eq!(
        d.kinds()
            .scope(&GroupKind::new("monitoring.coreos.com", "ServiceMonitor")),
        Some(Scope::Namespaced)
    );
}

// ---------------------------------------------------------------- parser safety

#[test]
fn an_alias_to_an_undefined_anchor_is_a_render_error_not_a_panic() {
    // Both panicked inside serde_yaml before the pre-scan.
    let e = errs(&[
        (
            "a.yaml",
            &format!("{CM}a\ndata:\n  base: &base x\n  copy: *bse\n"),
        ),
        ("b.yaml", "<: *a\n"),
        (
            "c.yaml",
            &format!("{CM}c\ndata: {{k: &k v}}\n---\n{CM}d\ndata: {{k: *k}}\n"),
        ),
    ]);
    assert!(matches!(&e.0[0], RenderError::UndefinedAlias { alias, .. } if alias == "bse"));
    assert_snapshot!(e, @r"
    a.yaml#0 (line 7, column 9): the alias *bse refers to no anchor defined before it in the document
    b.yaml#0 (line 1, column 4): the alias *a refers to no anchor defined before it in the document
    c.yaml#1 (line 11, column 11): the alias *k refers to no anchor defined before it in the document
    ");
    // The document before the refused one still renders (c.yaml#0 is not
    // an error above), as before a syntax error.
}

#[test]
fn nesting_is_limited_while_scanning() {
    // 40k levels took 16 s in libyaml; the scan stops at level 129.
    for (path, text) in [
        (
            "flow.yaml",
            format!("{CM}a\ndata: {}\n", "[".repeat(40_000)),
        ),
        (
            "flow-map.yaml",
            format!("{CM}a\ndata: {}\n", "{a: ".repeat(40_000)),
        ),
        (
            "block.yaml",
            (0..200)
                .map(|i| format!("{}- \n", "  ".repeat(i)))
                .collect(),
        ),
        // A file at the default size limit.
        ("big.yaml", "[".repeat(4 * 1024 * 1024 - 1)),
    ] {
        let e = errs(&[(path, &text)]);
        assert!(matches!(e.0[0], RenderError::TooComplex { .. }), "{e}");
    }
    let e = errs(&[(
        "flow.yaml",
        &format!("{CM}a\ndata: {}\n", "[".repeat(40_000)),
    )]);
    assert_snapshot!(e, @"flow.yaml#0 (line 5, column 136): the document is too complex to load (nesting deeper than 128 levels): too many alias expansions or too deep nesting");
    // 127 levels below `data` (128 with the root) are fine.
    let ok_depth = format!(
        "{CM}a\ndata: {{k: {}{}}}\n",
        "[".repeat(126),
        "]".repeat(126)
    );
    assert!(render(&snap(&[("ok.yaml", &ok_depth)]), &RenderOptions::default()).is_ok());
}

/// A file whose aliases expand `copies` times a scalar of `len` bytes.
fn wide_aliases(copies: usize, len: usize) -> String {
    let mut s = format!("{CM}wide\ndata:\n  a: &a {}\n  b: [", "x".repeat(len));
    for i in 0..copies {
        if i > 0 {
            s.push(',');
        }
        s.push_str("*a");
    }
    s.push_str("]\n");
    s
}

#[test]
fn alias_expansion_is_budgeted_relative_and_absolute() {
    // 2000 copies of 1 KiB: 2 MiB expanded from 10 KiB as written.
    let text = wide_aliases(2000, 1024);
    let e = errs(&[("wide.yaml", &text)]);
    assert!(
        matches!(e.0[0], RenderError::AliasExpansion { relative: true, .. }),
        "{e}"
    );
    assert_snapshot!(e, @"wide.yaml#0 (line 7, column 3025): aliases expand the file to 2081311 bytes, over the limit of 1048576 bytes (RenderOptions::max_expansion_ratio times the file's size without alias expansion); the alias there went over it");
    // Raising the ratio lets it through.
    let s = snap(&[("wide.yaml", &text)]);
    let d = render(&s, &RenderOptions::default().with_max_expansion_ratio(1000));
    assert_eq!(d.map(|d| d.len()).ok(), Some(1));
    // The absolute budget applies whatever the ratio.
    let e = render(
        &s,
        &RenderOptions::default()
            .with_max_expansion_ratio(1000)
            .with_max_expanded_bytes(100_000),
    )
    .unwrap_err();
    assert!(
        matches!(
            e.0[0],
            RenderError::AliasExpansion {
                relative: false,
                limit: 100_000,
                ..
            }
        ),
        "{e}"
    );
    // Ordinary use of anchors stays fine.
    ok(&[(
        "a.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: &l {x: y}, annotations: *l}\n",
    )]);
}

#[test]
fn a_one_megabyte_alias_bomb_is_refused_without_expanding() {
    // The shape from the issue (took 42 s and 8.8 GB): nine lists of 1000
    // aliases each to the previous list.
    let mut text = format!("{CM}bomb\nx:\n  a: &a [\"{}\"]\n", "lol".repeat(1000));
    let mut prev = 'a';
    for c in 'b'..='j' {
        text.push_str(&format!("  {c}: &{c} ["));
        text.push_str(&vec![format!("*{prev}"); 20_000].join(","));
        text.push_str("]\n");
        prev = c;
    }
    assert!(text.len() > 500_000);
    let e = errs(&[("bomb.yaml", &text)]);
    assert!(matches!(e.0[0], RenderError::AliasExpansion { .. }), "{e}");
}

// ---------------------------------------------------------------- duplicate list keys

#[test]
fn duplicate_list_keys_are_refused_naming_file_list_and_key() {
    let deploy = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        env: [{name: A, value: '1'}, {name: A, value: '2'}]\n        ports: [{containerPort: 80}, {containerPort: 80, protocol: TCP}, {containerPort: 80, protocol: UDP}]\n";
    let svc = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  ports: [{port: 443, name: a}, {port: 443, name: b}]\n";
    let e = errs(&[("web.yaml", &format!("{deploy}---\n{svc}"))]);
    assert!(
        matches!(&e.0[0], RenderError::DuplicateListKey { duplicate, .. } if duplicate.key == "name=A")
    );
    assert_snapshot!(e, @r"
    web.yaml#0 (line 1): Deployment.apps/default/web: list /spec/template/spec/containers/0/env has the key name=A more than once (items 0, 1)
    web.yaml#0 (line 1): Deployment.apps/default/web: list /spec/template/spec/containers/0/ports has the key containerPort=80,protocol=TCP more than once (items 0, 1)
    web.yaml#1 (line 11): Service/default/web: list /spec/ports has the key port=443,protocol=TCP more than once (items 0, 1)
    ");
}

#[test]
fn duplicate_list_keys_of_custom_resources_follow_their_crd() {
    let crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.example.com}\nspec:\n  group: example.com\n  scope: Namespaced\n  names: {kind: Widget, plural: widgets, listKind: WidgetList}\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n        type: object\n        properties:\n          spec:\n            type: object\n            properties:\n              parts:\n                type: array\n                x-kubernetes-list-type: map\n                x-kubernetes-list-map-keys: [id]\n                items: {type: object, properties: {id: {type: string}}}\n              tags: {type: array, items: {type: string}}\n";
    let w = |parts: &str| {
        format!(
            "apiVersion: example.com/v1\nkind: Widget\nmetadata: {{name: w}}\nspec:\n  parts: {parts}\n  tags: [a, a]\n"
        )
    };
    let e = errs(&[
        ("crd.yaml", crd),
        ("w.yaml", &w("[{id: x}, {id: y}, {id: x}]")),
    ]);
    assert_snapshot!(e, @"w.yaml#0 (line 1): Widget.example.com/default/w: list /spec/parts has the key id=x more than once (items 0, 2)");
    // Atomic lists (`tags`) may repeat values; distinct keys are fine.
    ok(&[("crd.yaml", crd), ("w.yaml", &w("[{id: x}, {id: y}]"))]);
}

// ---------------------------------------------------------------- symlinks

fn with_link(files: &[(&str, &str)], link: &str, target: &str) -> Snapshot {
    let mut s = snap(files);
    s.insert_special(
        link,
        SpecialEntry::Symlink {
            target: target.to_owned(),
        },
    );
    s
}

#[test]
fn symlinks_are_refused_by_default_and_listed_when_skipped() {
    let s = with_link(
        &[("a.yaml", &format!("{CM}a\n"))],
        "apps/b.yaml",
        "../../etc/b.yaml",
    );
    let e = render(&s, &RenderOptions::default()).unwrap_err();
    assert!(matches!(&e.0[0], RenderError::Symlink { path, .. } if path == "apps/b.yaml"));
    assert_snapshot!(e, @r#"apps/b.yaml: a symbolic link (to "../../etc/b.yaml") where manifests are rendered; replace it with the file, or set RenderOptions::skip_symlinks to skip symbolic links"#);
    // A link named like a folder may hold manifests too.
    let folder = with_link(&[("a.yaml", &format!("{CM}a\n"))], "apps", "../shared");
    assert!(render(&folder, &RenderOptions::default()).is_err());
    // Skipped: rendered without it, and listed.
    let d = render(&s, &RenderOptions::default().with_skip_symlinks(true)).unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(
        d.skipped_symlinks().collect::<Vec<_>>(),
        [("apps/b.yaml", "../../etc/b.yaml")]
    );
    // Links the skip rules exclude by name are not manifests either way.
    let hidden = with_link(&[("a.yaml", &format!("{CM}a\n"))], ".github/x.yaml", "y");
    let d = render(&hidden, &RenderOptions::default()).unwrap();
    assert_eq!(d.skipped_symlinks().len(), 0);
}

/// A [`MemorySource`] whose snapshots report some paths as symbolic links
/// (as `gitops-git` does for a tree entry of mode 120000).
#[derive(Debug, Clone)]
struct LinkingSource {
    inner: MemorySource,
    links: Vec<(String, String)>,
}

#[async_trait::async_trait]
impl Source for LinkingSource {
    async fn resolve(&self, reference: &str) -> Result<Revision, SourceError> {
        self.inner.resolve(reference).await
    }
    async fn snapshot(
        &self,
        revision: &Revision,
        path: Option<&str>,
    ) -> Result<Snapshot, SourceError> {
        let mut s = self.inner.snapshot(revision, path).await?;
        for (link, target) in &self.links {
            s.insert_special(
                link.clone(),
                SpecialEntry::Symlink {
                    target: target.clone(),
                },
            );
        }
        Ok(s)
    }
    async fn changed_paths(
        &self,
        from: &Revision,
        to: &Revision,
        path: Option<&str>,
    ) -> Result<Vec<String>, SourceError> {
        self.inner.changed_paths(from, to, path).await
    }
}

#[tokio::test]
async fn a_manifest_replaced_by_a_symlink_fails_the_sync_and_prunes_nothing() {
    let source = MemorySource::new();
    let runtime = MemoryRuntime::new();
    let cm = |n: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {n}, namespace: shop}}\n")
    };
    let ns = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n";
    source.commit(
        "main",
        [
            ("ns.yaml", ns.to_owned()),
            ("a.yaml", cm("a")),
            ("b.yaml", cm("b")),
        ],
        "ada",
        "1",
    );
    let config = || ReconcilerConfig::new(OwnerId::new("shop").unwrap());
    let first = Reconciler::new(source.clone(), runtime.clone(), config()).unwrap();
    first.reconcile_once("main").await.unwrap();
    let before = runtime.objects();
    assert_eq!(before.len(), 3);

    // b.yaml becomes a symbolic link: the tree has no file b.yaml any more.
    source.commit(
        "main",
        [("ns.yaml", ns.to_owned()), ("a.yaml", cm("a"))],
        "mallory",
        "b.yaml -> /etc/b.yaml",
    );
    let linking = LinkingSource {
        inner: source.clone(),
        links: vec![("b.yaml".into(), "/etc/b.yaml".into())],
    };
    let r = Reconciler::new(linking.clone(), runtime.clone(), config()).unwrap();
    let report = r.reconcile_once("main").await.unwrap_err().report;
    assert_eq!(report.status, SyncStatus::RenderFailed);
    assert_snapshot!(report.errors.iter().map(|e| e.message.as_str()).collect::<Vec<_>>().join("\n"), @r#"b.yaml: a symbolic link (to "/etc/b.yaml") where manifests are rendered; replace it with the file, or set RenderOptions::skip_symlinks to skip symbolic links"#);
    assert_eq!(runtime.objects(), before, "nothing pruned");

    // Opting in to skipping: the link is listed in the desired state.
    let mut skipping = config();
    skipping.render = RenderOptions::default().with_skip_symlinks(true);
    let r = Reconciler::new(linking, runtime.clone(), skipping).unwrap();
    let (desired, plan) = r.plan("main").await.unwrap();
    assert_eq!(
        desired.skipped_symlinks().collect::<Vec<_>>(),
        [("b.yaml", "/etc/b.yaml")]
    );
    // The plan says why b's ConfigMap goes away.
    let text = plan.to_string();
    assert!(
        text.contains(r#"? skipped symbolic link "b.yaml" -> "/etc/b.yaml""#),
        "{text}"
    );
    assert!(text.contains("- delete ConfigMap/shop/b"), "{text}");
}

#[test]
fn a_crd_describing_a_built_in_kind_decides_its_lists() {
    // Lists of built-in kinds are checked as their files are read; a CRD of
    // the render that describes the kind is consulted instead.
    let deploy = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      containers: [{name: app}, {name: app}]\n";
    let crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: deployments.apps}\nspec:\n  group: apps\n  scope: Namespaced\n  names: {kind: Deployment, plural: deployments}\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n        type: object\n        properties:\n          spec:\n            type: object\n            properties:\n              template:\n                type: object\n                properties:\n                  spec:\n                    type: object\n                    properties:\n                      containers: {type: array, x-kubernetes-list-type: atomic, items: {type: object}}\n";
    let e = errs(&[("web.yaml", deploy)]);
    assert_snapshot!(e, @"web.yaml#0 (line 1): Deployment.apps/default/web: list /spec/template/spec/containers has the key name=app more than once (items 0, 1)");
    let with_crd = render(
        &snap(&[("crd.yaml", crd), ("web.yaml", deploy)]),
        &RenderOptions::default(),
    );
    // Such a CRD is refused; its list types still decide the Deployment's
    // (atomic here: no duplicate reported).
    assert_snapshot!(format!("{:?}", with_crd.map(|d| d.len()).map_err(|e| e.to_string())), @r#"Err("crd.yaml#0 (line 1): CustomResourceDefinition deployments.apps defines Deployment.apps, which is a built-in kind")"#);
}

#[test]
fn of_three_declarations_each_later_one_is_reported_in_order() {
    let cm = |v: &str| format!("{CM}x\ndata: {{v: '{v}'}}\n");
    let unknown = "apiVersion: nope.io/v1\nkind: Thing\nmetadata: {name: t}\n";
    let files = [
        ("b.yaml", cm("b")),
        ("c.yaml", unknown.to_owned()),
        ("d.yaml", format!("{}---\n{}", cm("d"), cm("d2"))),
        ("e.yaml", unknown.replace("name: t", "name: u")),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
    assert_snapshot!(errs(&files), @r#"
    c.yaml#0 (line 1): unknown kind Thing.nope.io (apiVersion nope.io/v1) of "t": not a built-in kind, not defined by a CustomResourceDefinition in this snapshot, not registered in RenderOptions::kinds
    ConfigMap/default/x is declared twice: at b.yaml#0 (line 1) and at d.yaml#0 (line 1)
    ConfigMap/default/x is declared twice: at b.yaml#0 (line 1) and at d.yaml#1 (line 6)
    e.yaml#0 (line 1): unknown kind Thing.nope.io (apiVersion nope.io/v1) of "u": not a built-in kind, not defined by a CustomResourceDefinition in this snapshot, not registered in RenderOptions::kinds
    "#);
}
