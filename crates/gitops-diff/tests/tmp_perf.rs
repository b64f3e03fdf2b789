#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
use gitops_diff::*;
use serde_json::{Value, json};
use std::time::Instant;
fn large_deployment() -> Value {
    let containers: Vec<Value> = (0..12)
        .map(|c| {
            let env: Vec<Value> = (0..40)
                .map(|e| json!({"name": format!("VAR_{e}"), "value": format!("value-{c}-{e}")}))
                .collect();
            let mounts: Vec<Value> = (0..6)
                .map(|m| json!({"name": format!("vol-{m}"), "mountPath": format!("/mnt/{c}/{m}")}))
                .collect();
            json!({
                "name": format!("c{c}"),
                "image": format!("registry.example.com/app/c{c}:1.{c}.0"),
                "args": ["--verbose", format!("--id={c}")],
                "ports": [{"name": "http", "containerPort": 8000 + c}, {"name": "metrics", "containerPort": 9000 + c}],
                "env": env,
                "volumeMounts": mounts,
                "resources": {"requests": {"cpu": 0.25, "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}}
            })
        })
        .collect();
    let volumes: Vec<Value> = (0..6)
        .map(|m| json!({"name": format!("vol-{m}"), "configMap": {"name": format!("cm-{m}")}}))
        .collect();
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "big", "namespace": "bench", "labels": {"app": "big", "tier": "backend"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "big"}},
            "template": {
                "metadata": {"labels": {"app": "big"}},
                "spec": {"containers": containers, "volumes": volumes}
            }
        }
    })
}
fn with_server_defaults(desired: &Value, manager: &str) -> Value {
    let mut live = desired.clone();
    let gk = GroupKind::of(desired);
    let owned = FieldSet::declared_by(desired, &BuiltinLists, &gk);
    let meta = &mut live["metadata"];
    meta["uid"] = json!("8d3c7f8e-0000-4000-8000-000000000000");
    meta["resourceVersion"] = json!("123456");
    meta["generation"] = json!(4);
    meta["creationTimestamp"] = json!("2026-11-01T00:00:00Z");
    meta["managedFields"] = json!([{
        "manager": manager, "operation": "Apply", "apiVersion": "apps/v1",
        "fieldsType": "FieldsV1", "fieldsV1": owned.to_fields_v1(), "time": "2026-11-01T00:00:00Z"
    }]);
    if let Some(spec) = live.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("progressDeadlineSeconds".into(), json!(600));
        spec.insert("revisionHistoryLimit".into(), json!(10));
        spec.insert(
            "strategy".into(),
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}),
        );
    }
    if let Some(pod) = live.pointer_mut("/spec/template/spec").and_then(Value::as_object_mut) {
        pod.insert("dnsPolicy".into(), json!("ClusterFirst"));
        pod.insert("restartPolicy".into(), json!("Always"));
        pod.insert("schedulerName".into(), json!("default-scheduler"));
        pod.insert("securityContext".into(), json!({}));
        pod.insert("terminationGracePeriodSeconds".into(), json!(30));
        if let Some(cs) = pod.get_mut("containers").and_then(Value::as_array_mut) {
            for c in cs {
                c["imagePullPolicy"] = json!("IfNotPresent");
                c["terminationMessagePath"] = json!("/dev/termination-log");
                c["terminationMessagePolicy"] = json!("File");
                if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in ports {
                        p["protocol"] = json!("TCP");
                    }
                }
                if c.pointer("/resources/requests/cpu").is_some() {
                    c["resources"]["requests"]["cpu"] = json!("250m");
                }
                if let Some(probe) = c.get_mut("readinessProbe") {
                    probe["httpGet"]["scheme"] = json!("HTTP");
                    probe["timeoutSeconds"] = json!(1);
                    probe["periodSeconds"] = json!(10);
                    probe["successThreshold"] = json!(1);
                    probe["failureThreshold"] = json!(3);
                }
            }
        }
    }
    live["status"] = json!({"replicas": 3, "readyReplicas": 3, "observedGeneration": 4});
    live
}
#[test]
fn perf() {
    let d = large_deployment();
    let l = with_server_defaults(&d, "gitops");
    let prev = owned_by(&l, "gitops").unwrap().unwrap();
    let gk = GroupKind::of(&d);
    let n = 50;
    let t = Instant::now();
    for _ in 0..n { std::hint::black_box(FieldSet::declared_by(&d, &BuiltinLists, &gk)); }
    eprintln!("declared_by: {:?} ({} paths)", t.elapsed() / n, prev.len());
    let decl = FieldSet::declared_by(&d, &BuiltinLists, &gk);
    let t = Instant::now();
    for _ in 0..n { for p in prev.iter() { std::hint::black_box(decl.contains(p)); } }
    eprintln!("contains all: {:?}", t.elapsed() / n);
    let t = Instant::now();
    for _ in 0..n { for p in prev.iter() { std::hint::black_box(decl.contains_prefix(p)); } }
    eprintln!("contains_prefix all: {:?}", t.elapsed() / n);
    let t = Instant::now();
    for _ in 0..n { std::hint::black_box(compare(&d, &l, Some(&prev), &DiffOptions::default()).unwrap()); }
    eprintln!("compare: {:?}", t.elapsed() / n);
    let t = Instant::now();
    for _ in 0..n { std::hint::black_box(owned_by(&l, "gitops").unwrap()); }
    eprintln!("owned_by: {:?}", t.elapsed() / n);
}
