//! Plans as a reader sees them (insta snapshots, reviewed by hand).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gitops_core::{
    ApplyOptions, MemoryRuntime, MemorySource, OwnerId, Reconciler, ReconcilerConfig, Target,
};

const V1: &[(&str, &str)] = &[
    (
        "ns.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n",
    ),
    (
        "web.yaml",
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
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
        image: nginx:1.25
        resources:
          limits: {cpu: 500m, memory: 1Gi}
",
    ),
    (
        "old.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: old\n  namespace: shop\ndata:\n  a: b\n",
    ),
    (
        "keep.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: keep\n  namespace: shop\n  annotations:\n    gitops-rs.io/prune: disabled\ndata:\n  a: b\n",
    ),
];

#[tokio::test]
async fn a_plan_reads_well() {
    let source = MemorySource::new();
    let runtime = MemoryRuntime::new();
    let mut config = ReconcilerConfig::new(OwnerId::new("shop").unwrap());
    config.plan.allow_mass_prune = true;
    let r = Reconciler::new(source.clone(), runtime.clone(), config).unwrap();
    source.commit("prod", V1.iter().copied(), "ada", "v1");
    r.reconcile_once("prod").await.unwrap();

    // The server (or another controller) adds defaults we never declared:
    // never drift.
    let defaults = gitops_core::Object::new(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"progressDeadlineSeconds": 600, "revisionHistoryLimit": 10,
                 "template": {"spec": {"restartPolicy": "Always", "dnsPolicy": "ClusterFirst"}}}
    }))
    .unwrap();
    runtime
        .apply(&defaults, &ApplyOptions::new("kube-controller-manager"))
        .await
        .unwrap();

    let v2: Vec<(&str, String)> = vec![
        ("ns.yaml", V1[0].1.to_owned()),
        (
            "web.yaml",
            V1[1]
                .1
                .replace("replicas: 2", "replicas: 3")
                .replace("nginx:1.25", "nginx:1.27")
                .replace("cpu: 500m", "cpu: \"0.5\"")
                .replace("memory: 1Gi", "memory: 1024Mi"),
        ),
        ("api.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  selector: {app: web}\n  ports:\n  - port: 80\n".to_owned()),
    ];
    source.commit(
        "prod",
        v2,
        "bob",
        "v2: scale up, bump nginx, add a service, drop old config",
    );
    let (_, plan) = r.plan("prod").await.unwrap();
    insta::assert_snapshot!("plan_v2", plan.to_string());
}
