//! gitops-diff: server-side-apply aware comparison against plain
//! `serde_json::Value` equality over the same objects (the floor).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gitops_diff::{
    BuiltinLists, CrdLists, DiffOptions, FieldSet, GroupKind, LayeredLists, compare,
};
use serde_json::{Value, json};

/// A large Deployment: 12 containers, each with 40 env vars, ports, mounts.
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

/// What the API server returns for a Deployment: defaults, canonical
/// quantities, status, server metadata, managedFields.
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
    if let Some(pod) = live
        .pointer_mut("/spec/template/spec")
        .and_then(Value::as_object_mut)
    {
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

fn gadget_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {"group": "example.com", "names": {"kind": "Gadget"}, "versions": [{
            "name": "v1", "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "spec": {"type": "object", "properties": {
                    "parts": {"type": "array", "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["id"],
                        "items": {"type": "object", "properties": {
                            "id": {"type": "string"},
                            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                            "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}
                        }}}
                }}
            }}}
        }]}
    })
}

/// A custom resource of about 1 MB of JSON, and its live form with status.
fn one_mb_custom_resource() -> (Value, Value) {
    let parts: Vec<Value> = (0..4800)
        .map(|i| {
            json!({
                "id": format!("part-{i:05}"),
                "weight": i % 97,
                "ratio": (i as f64) / 7.0,
                "labels": {"colour": format!("c{}", i % 13), "size": format!("s{}", i % 5), "batch": format!("b{}", i / 100)},
                "tags": [format!("t{}", i % 3), format!("u{}", i % 11), "common"],
                "notes": format!("generated part number {i} for the one megabyte benchmark resource")
            })
        })
        .collect();
    let desired = json!({
        "apiVersion": "example.com/v1", "kind": "Gadget",
        "metadata": {"name": "huge", "namespace": "bench"},
        "spec": {"parts": parts}
    });
    let mut live = desired.clone();
    live["metadata"]["uid"] = json!("u");
    live["metadata"]["resourceVersion"] = json!("1");
    live["status"] = json!({"phase": "Ready", "observed": 4800});
    (desired, live)
}

/// 10,000 objects (Deployments, Services, ConfigMaps), 1% drifted.
fn fleet() -> Vec<(Value, Value)> {
    (0..10_000)
        .map(|i| {
            let desired = match i % 3 {
                0 => json!({
                    "apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": format!("app-{i}"), "namespace": "fleet", "labels": {"app": format!("app-{i}")}},
                    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": format!("app-{i}")}},
                        "template": {"metadata": {"labels": {"app": format!("app-{i}")}}, "spec": {"containers": [{
                            "name": "main", "image": format!("registry.example.com/app-{i}:1.0.0"),
                            "ports": [{"containerPort": 8080}],
                            "env": [{"name": "MODE", "value": "prod"}, {"name": "ID", "value": format!("{i}")}],
                            "resources": {"limits": {"cpu": 0.5, "memory": "512Mi"}}
                        }]}}}
                }),
                1 => json!({
                    "apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": format!("svc-{i}"), "namespace": "fleet"},
                    "spec": {"selector": {"app": format!("app-{i}")}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
                }),
                _ => json!({
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": format!("cm-{i}"), "namespace": "fleet"},
                    "data": {"a": "1", "b": format!("{i}"), "config.yaml": "key: value\nother: 2\n"}
                }),
            };
            let mut live = if i % 3 == 0 {
                with_server_defaults(&desired, "gitops")
            } else {
                let mut l = desired.clone();
                l["metadata"]["uid"] = json!(format!("uid-{i}"));
                l["metadata"]["resourceVersion"] = json!("7");
                if i % 3 == 1 {
                    l["spec"]["clusterIP"] = json!("10.0.0.1");
                    l["spec"]["type"] = json!("ClusterIP");
                    l["spec"]["ports"][0]["protocol"] = json!("TCP");
                }
                l
            };
            if i % 100 == 0 {
                // 1% drift
                match i % 3 {
                    0 => live["spec"]["template"]["spec"]["containers"][0]["image"] = json!("old:0.9"),
                    1 => live["spec"]["ports"][0]["targetPort"] = json!(9090),
                    _ => live["data"]["a"] = json!("2"),
                }
            }
            (desired, live)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let opts = DiffOptions::default();

    // Large Deployment with server defaults.
    let desired = large_deployment();
    let live = with_server_defaults(&desired, "gitops");
    let prev = gitops_diff::owned_by(&live, "gitops").unwrap();
    let live_copy = live.clone();
    assert!(
        compare(&desired, &live, prev.as_ref(), &opts)
            .unwrap()
            .is_empty()
    );
    let mut g = c.benchmark_group("large_deployment");
    g.throughput(Throughput::Elements(1));
    g.bench_function("compare", |b| {
        b.iter(|| compare(black_box(&desired), black_box(&live), prev.as_ref(), &opts).unwrap())
    });
    g.bench_function("compare_no_prev", |b| {
        b.iter(|| compare(black_box(&desired), black_box(&live), None, &opts).unwrap())
    });
    g.bench_function("value_eq_floor", |b| {
        b.iter(|| black_box(&live) == black_box(&live_copy))
    });
    g.finish();

    // 1 MB custom resource.
    let (desired, live) = one_mb_custom_resource();
    let size = serde_json::to_vec(&desired).unwrap().len();
    eprintln!("custom resource size: {size} bytes");
    let crd_opts = DiffOptions::new().lists(Arc::new(LayeredLists::new(vec![Arc::new(
        CrdLists::from_crd(&gadget_crd()).unwrap(),
    )])));
    let live_copy = live.clone();
    assert!(
        compare(&desired, &live, None, &crd_opts)
            .unwrap()
            .is_empty()
    );
    let mut g = c.benchmark_group("crd_1mb");
    g.throughput(Throughput::Bytes(size as u64));
    g.sample_size(20);
    g.bench_function("compare", |b| {
        b.iter(|| compare(black_box(&desired), black_box(&live), None, &crd_opts).unwrap())
    });
    g.bench_function("value_eq_floor", |b| {
        b.iter(|| black_box(&live) == black_box(&live_copy))
    });
    g.finish();

    // 10,000 objects, 1% drift.
    let objects = fleet();
    let copies: Vec<Value> = objects.iter().map(|(_, l)| l.clone()).collect();
    let prevs: Vec<Option<FieldSet>> = objects
        .iter()
        .map(|(_, l)| gitops_diff::owned_by(l, "gitops").unwrap())
        .collect();
    let drifted = objects
        .iter()
        .zip(&prevs)
        .filter(|((d, l), p)| !compare(d, l, p.as_ref(), &opts).unwrap().is_empty())
        .count();
    assert_eq!(drifted, 100);
    let mut g = c.benchmark_group("fleet_10k_1pct_drift");
    g.throughput(Throughput::Elements(objects.len() as u64));
    g.sample_size(10);
    g.bench_function("compare", |b| {
        b.iter(|| {
            objects
                .iter()
                .zip(&prevs)
                .filter(|((d, l), p)| !compare(d, l, p.as_ref(), &opts).unwrap().is_empty())
                .count()
        })
    });
    g.bench_function("value_eq_floor", |b| {
        b.iter(|| {
            objects
                .iter()
                .zip(&copies)
                .filter(|((_, l), c)| *l != **c)
                .count()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
