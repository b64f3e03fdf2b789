//! Kustomize repositories end to end: a base with dev and prod overlays
//! (namespace, replicas, image, a patch, a generated ConfigMap with its
//! content hash) reconciled on the real API server and on the in-memory
//! runtime, which must agree; then a change of generated content rolls the
//! hashed name and prunes the old one.

use std::collections::BTreeMap;
use std::sync::Arc;

use gitops_core::{
    MemoryRuntime, MemorySource, ObjectKey, OwnerId, Reconciler, ReconcilerConfig, SyncStatus,
    Target, TargetExt,
};
use gitops_kube::KubeTarget;
use gitops_kube::testing::{shared_or_skip, unique_name};
use gitops_kustomize::Kustomize;
use serde_json::Value;

const BASE: &str = "resources: [web.yaml]
configMapGenerator:
- name: web-settings
  literals: [checkout=classic]
";

const WEB: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        envFrom:
        - configMapRef: {name: web-settings}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
";

const PATCH: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      containers:
      - name: web
        resources: {limits: {memory: 256Mi}}
";

fn overlay(namespace: &str, replicas: u32, tag: &str, checkout: &str) -> String {
    format!(
        "namespace: {namespace}
resources: [../../base]
replicas: [{{name: web, count: {replicas}}}]
images: [{{name: nginx, newTag: \"{tag}\"}}]
patches: [{{path: memory.yaml}}]
configMapGenerator:
- name: web-settings
  behavior: merge
  literals: [checkout={checkout}]
"
    )
}

fn files(dev: &str, prod: &str, prod_checkout: &str) -> Vec<(String, String)> {
    vec![
        ("base/kustomization.yaml".into(), BASE.into()),
        ("base/web.yaml".into(), WEB.into()),
        (
            "overlays/dev/kustomization.yaml".into(),
            overlay(dev, 1, "1.27", "one-click"),
        ),
        ("overlays/dev/memory.yaml".into(), PATCH.into()),
        (
            "overlays/prod/kustomization.yaml".into(),
            overlay(prod, 3, "1.25", prod_checkout),
        ),
        ("overlays/prod/memory.yaml".into(), PATCH.into()),
    ]
}

fn config(owner: &OwnerId, env: &str) -> ReconcilerConfig {
    ReconcilerConfig::new(owner.clone())
        .path(format!("overlays/{env}"))
        .render_step(Arc::new(Kustomize::new()))
}

/// What a test compares between runtimes: each owned object's key with
/// its replicas, image, memory limit and referenced ConfigMap.
fn summary(objects: impl IntoIterator<Item = (ObjectKey, Value)>) -> BTreeMap<String, String> {
    objects
        .into_iter()
        .map(|(k, o)| {
            let c = &o["spec"]["template"]["spec"]["containers"][0];
            let what = if k.kind == "Deployment" {
                format!(
                    "{} x {} mem {} env from {}",
                    o["spec"]["replicas"],
                    c["image"],
                    c["resources"]["limits"]["memory"],
                    c["envFrom"][0]["configMapRef"]["name"]
                )
            } else if k.kind == "ConfigMap" {
                format!("checkout={}", o["data"]["checkout"])
            } else {
                String::new()
            };
            (k.to_string(), what)
        })
        .collect()
}

async fn owned(target: &KubeTarget, keys: &[ObjectKey]) -> Vec<(ObjectKey, Value)> {
    let mut out = Vec::new();
    for k in keys {
        if let Some(o) = target.get(k).await.unwrap() {
            out.push((k.clone(), o));
        }
    }
    out
}

#[tokio::test]
async fn overlays_deploy_like_on_the_memory_runtime_and_roll_generated_names() {
    let Some(cluster) = shared_or_skip().await else {
        return;
    };
    let dev_ns = cluster.create_namespace("kz-dev").await.unwrap();
    let prod_ns = cluster.create_namespace("kz-prod").await.unwrap();
    let inventory_ns = unique_name("inv");
    let source = MemorySource::new();
    source.commit(
        "main",
        files(&dev_ns, &prod_ns, "classic"),
        "ada",
        "dev and prod",
    );

    for (env, ns) in [("dev", &dev_ns), ("prod", &prod_ns)] {
        let owner = OwnerId::new(unique_name(env)).unwrap();
        let target = KubeTarget::new(cluster.client()).with_inventory_namespace(&inventory_ns);
        let server = Reconciler::new(source.clone(), target, config(&owner, env)).unwrap();
        let report = server.reconcile_once("main").await.unwrap();
        assert_eq!(report.status, SyncStatus::Synced, "{env}: {report}");
        // Kustomize output converges on a real server: no false drift.
        let again = server.reconcile_once("main").await.unwrap();
        assert_eq!(again.status, SyncStatus::UpToDate, "{env}: {again}");

        // The in-memory runtime deploys the same thing.
        let memory = MemoryRuntime::with_system_namespaces();
        memory
            .apply(
                &gitops_core::Object::new(serde_json::json!({
                    "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}
                }))
                .unwrap(),
                &gitops_core::ApplyOptions::new("setup"),
            )
            .await
            .unwrap();
        let local = Reconciler::new(source.clone(), memory.clone(), config(&owner, env)).unwrap();
        let report = local.reconcile_once("main").await.unwrap();
        assert_eq!(report.status, SyncStatus::Synced, "{env}: {report}");
        let keys: Vec<ObjectKey> = memory.owned_by(&owner).into_keys().collect();
        assert_eq!(keys.len(), 3, "{keys:?}");
        let on_server = summary(owned(server.target(), &keys).await);
        let in_memory = summary(memory.owned_by(&owner));
        assert_eq!(on_server, in_memory, "{env}");
        let deployment = in_memory
            .iter()
            .find(|(k, _)| k.starts_with("Deployment"))
            .map(|(_, v)| v.clone())
            .unwrap();
        let (replicas, image) = if env == "dev" {
            (1, "nginx:1.27")
        } else {
            (3, "nginx:1.25")
        };
        assert!(
            deployment.starts_with(&format!(
                "{replicas} x \"{image}\" mem \"256Mi\" env from \"web-settings-"
            )),
            "{env}: {deployment}"
        );

        if env == "prod" {
            // New generated content: a new hashed name, referenced by the
            // Deployment; the old ConfigMap is pruned.
            let old: Vec<ObjectKey> = keys
                .iter()
                .filter(|k| k.kind == "ConfigMap")
                .cloned()
                .collect();
            source.commit(
                "main",
                files(&dev_ns, &prod_ns, "one-click"),
                "grace",
                "prod: one-click checkout",
            );
            let report = server.reconcile_once("main").await.unwrap();
            assert_eq!(report.status, SyncStatus::Synced, "{report}");
            assert_eq!(
                (
                    report.summary.create,
                    report.summary.update,
                    report.summary.delete
                ),
                (1, 1, 1),
                "{report}"
            );
            let inventory = server
                .target()
                .read_inventory(&owner)
                .await
                .unwrap()
                .unwrap();
            let listed: Vec<ObjectKey> = inventory.objects.keys().cloned().collect();
            let now = summary(owned(server.target(), &listed).await);
            let cm: Vec<&String> = now.keys().filter(|k| k.starts_with("ConfigMap")).collect();
            assert_eq!(cm.len(), 1);
            assert!(
                old.iter().all(|k| k.to_string() != *cm[0]),
                "{cm:?} {old:?}"
            );
            assert_eq!(now[cm[0]], "checkout=\"one-click\"");
            let name = cm[0].rsplit('/').next().unwrap();
            assert!(
                now.values()
                    .any(|v| v.ends_with(&format!("env from \"{name}\""))),
                "{now:?}"
            );
            for gone in &old {
                assert!(
                    !inventory.objects.contains_key(gone),
                    "{gone} in the inventory"
                );
                let live = server.target().get(gone).await.unwrap();
                assert!(live.is_none(), "{gone} was not pruned");
            }
        }
    }
}
