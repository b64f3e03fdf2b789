//! Quickstart: render a small in-memory snapshot of manifests into the
//! desired state and print it (keys and where each object was declared).
//!
//! `cargo run --example quickstart`

use gitops_core::render::{RenderOptions, Renderer};
use gitops_core::{Revision, Snapshot};

const NAMESPACE: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: shop
"#;

const WEB: &str = r#"# The web front end: a Deployment and its Service in one file.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  selector: {app: web}
  ports:
  - port: 80
"#;

const CONFIG: &str = r#"{
  "apiVersion": "v1",
  "kind": "ConfigMap",
  "metadata": {"name": "web-config"},
  "data": {"GREETING": "hello"}
}
"#;

const CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
---
apiVersion: example.com/v1
kind: WidgetList
items:
- apiVersion: example.com/v1
  kind: Widget
  metadata: {name: blue}
  spec: {color: blue}
- apiVersion: example.com/v1
  kind: Widget
  metadata: {name: red}
  spec: {color: red}
"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let snapshot = Snapshot::from_files([
        ("README.md", "# shop environment\n"),
        ("namespace.yaml", NAMESPACE),
        ("web.yaml", WEB),
        ("config.json", CONFIG),
        ("widgets.yaml", CRD),
    ])
    .with_revision(Revision {
        id: "0000000000000000000000000000000000000001".into(),
        message: "Quickstart revision".into(),
        ..Revision::default()
    });

    // Objects without a namespace land in `shop`.
    let mut renderer = Renderer::new(RenderOptions::default().with_default_namespace("shop"))?;
    let desired = renderer.render(&snapshot)?;

    if let Some(rev) = desired.revision() {
        println!("revision {} ({})", rev.short_id(), rev.summary());
    }
    for path in ["README.md"] {
        if let Some(reason) = renderer.skip_reason(&snapshot, path) {
            println!("skipped {path}: {reason}");
        }
    }
    println!("{} objects:", desired.len());
    for (key, object) in desired.iter() {
        println!("  {key:<60} from {}", object.provenance);
    }
    let stats = renderer.stats();
    println!(
        "{} files ({} skipped), {} documents, {} parsed, {} from cache",
        stats.files, stats.skipped, stats.documents, stats.parsed, stats.reused
    );

    // Rendering the same snapshot again reuses every parsed file.
    renderer.render(&snapshot)?;
    println!(
        "re-render: {} parsed, {} from cache",
        renderer.stats().parsed,
        renderer.stats().reused
    );

    // A broken revision yields every error, and no desired state.
    let broken = Snapshot::from_files([
        (
            "bad.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n",
        ),
        ("dup.yaml", NAMESPACE),
        ("namespace.yaml", NAMESPACE),
    ]);
    if let Err(errors) = renderer.render(&broken) {
        println!(
            "a broken revision is refused ({} errors):\n{errors}",
            errors.len()
        );
    }
    Ok(())
}
