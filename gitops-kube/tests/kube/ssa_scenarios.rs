//! Server-side apply fidelity: one list of scenarios (appliers, updaters,
//! removals, keyed and set lists, nested maps, atomic maps, explicit nulls,
//! duplicate keys, conflicts, forced applies) run on the `MemoryRuntime` and
//! on `KubeTarget` against the real API server, which must agree: the same
//! stored object (server metadata and unowned server defaults aside), the
//! same managedFields per manager, the same conflicts.
//!
//! Applies go through `Target::apply`; updates (what `kubectl edit`,
//! `kubectl scale` and controllers do) are whole-object writes with a field
//! manager: a `PUT` on the server, `MemoryRuntime::update` in memory.
//! After every successful apply `gitops_diff::compare(applied, result)` must
//! be empty on both runtimes.

use std::collections::BTreeMap;

use async_trait::async_trait;
use gitops_core::{ApplyOptions, MemoryRuntime, Object, ObjectKey, Target, TargetError, TargetExt};
use gitops_kube::KubeTarget;
use gitops_kube::testing::TestCluster;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use serde_json::{Map, Value, json};

/// One write.
#[derive(Clone, Debug)]
enum Step {
    /// A server-side apply of `object` (namespace filled in).
    Apply {
        manager: &'static str,
        force: bool,
        object: Value,
    },
    /// An update: the live object (or, when there is none, the
    /// `apiVersion`/`kind`/`metadata` of the patch) with an RFC 7386 merge
    /// patch applied, written whole.
    Update { manager: &'static str, patch: Value },
}

/// How two runtimes' objects are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Compare {
    /// The whole object (kinds without server defaults: ConfigMaps, custom
    /// resources without defaults).
    Exact,
    /// What memory stores must be there on the server, and every owned
    /// field must be equal (the server adds unowned defaults).
    OwnedAndSubset,
}

struct Scenario {
    name: &'static str,
    compare: Compare,
    steps: Vec<Step>,
}

fn apply(manager: &'static str, object: Value) -> Step {
    Step::Apply {
        manager,
        force: false,
        object,
    }
}

fn force(manager: &'static str, object: Value) -> Step {
    Step::Apply {
        manager,
        force: true,
        object,
    }
}

fn update(manager: &'static str, patch: Value) -> Step {
    Step::Update { manager, patch }
}

fn cm(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data})
}

fn cm_meta(metadata: Value, data: Value) -> Value {
    let mut m = metadata;
    m["name"] = json!("c");
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": m, "data": data})
}

fn deploy(spec_pod: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"app": "d"}},
            "template": {"metadata": {"labels": {"app": "d"}}, "spec": spec_pod}}})
}

fn containers(items: Value) -> Value {
    deploy(json!({"containers": items}))
}

fn netpol(selector: Value) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "p"}, "spec": {"podSelector": selector}})
}

const GROUP: &str = "ssa.gitops.example";

fn crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("probes.{GROUP}")},
        "spec": {"group": GROUP, "scope": "Namespaced",
            "names": {"plural": "probes", "singular": "probe", "kind": "Probe", "listKind": "ProbeList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {
                        "nested": {"type": "object", "properties": {
                            "inner": {"type": "object", "properties": {
                                "a": {"type": "string"}, "b": {"type": "string"}}},
                            "c": {"type": "string"}}},
                        "tags": {"type": "array", "x-kubernetes-list-type": "set",
                            "items": {"type": "string"}},
                        "items": {"type": "array", "x-kubernetes-list-type": "map",
                            "x-kubernetes-list-map-keys": ["name"],
                            "items": {"type": "object", "required": ["name"], "properties": {
                                "name": {"type": "string"}, "value": {"type": "string"},
                                "extra": {"type": "string"}}}},
                        "selector": {"type": "object", "x-kubernetes-map-type": "atomic",
                            "additionalProperties": {"type": "string"}},
                        "opt": {"type": "string", "nullable": true},
                        "free": {"type": "object", "additionalProperties": {
                            "type": "object", "properties": {
                                "x": {"type": "string"}, "y": {"type": "string"}}}}
                    }}
                }}}}]}
    })
}

fn probe(spec: Value) -> Value {
    json!({"apiVersion": format!("{GROUP}/v1"), "kind": "Probe", "metadata": {"name": "p"}, "spec": spec})
}

/// The shared scenarios (representative cases of structured-merge-diff's
/// `merge/*_test.go`, on real kinds).
fn scenarios() -> Vec<Scenario> {
    use Compare::{Exact, OwnedAndSubset};
    vec![
        Scenario {
            name: "appliers share a field; one stops applying it",
            compare: Exact,
            steps: vec![
                apply("alice", cm(json!({"a": "1", "b": "x"}))),
                apply("bob", cm(json!({"b": "x"}))),
                apply("alice", cm(json!({"a": "1"}))),
                apply("bob", cm(json!({}))),
            ],
        },
        Scenario {
            name: "conflict, then forced apply takes ownership",
            compare: Exact,
            steps: vec![
                apply("alice", cm(json!({"a": "1", "b": "2"}))),
                apply("bob", cm(json!({"a": "9"}))),
                force("bob", cm(json!({"a": "9"}))),
                apply("alice", cm(json!({"b": "2"}))),
            ],
        },
        Scenario {
            name: "an update takes a changed field; the applier conflicts, then forces",
            compare: Exact,
            steps: vec![
                apply("alice", cm(json!({"a": "1", "b": "2"}))),
                update("editor", json!({"data": {"b": "3", "c": "new"}})),
                apply("alice", cm(json!({"a": "1", "b": "2"}))),
                force("alice", cm(json!({"a": "1", "b": "2"}))),
                apply("alice", cm(json!({"a": "1"}))),
            ],
        },
        Scenario {
            name: "an updater's field survives the applier dropping it",
            compare: Exact,
            steps: vec![
                apply("alice", cm(json!({"a": "1", "b": "2"}))),
                update("editor", json!({"data": {"b": "3"}})),
                apply("alice", cm(json!({"a": "1"}))),
                update("editor", json!({"data": {"b": null}})),
            ],
        },
        Scenario {
            name: "a field an applier and an updater both own stays when the applier drops it",
            compare: Exact,
            steps: vec![
                apply("alice", cm(json!({"a": "1", "b": "2"}))),
                update("editor", json!({"data": {"b": "3"}})),
                apply("alice", cm(json!({"a": "1", "b": "3"}))),
                apply("alice", cm(json!({"a": "1"}))),
            ],
        },
        Scenario {
            name: "empty maps and explicit nulls in built-in kinds",
            compare: Exact,
            steps: vec![
                apply(
                    "alice",
                    cm_meta(json!({"annotations": {}, "labels": {"x": "1"}}), json!({})),
                ),
                apply("alice", cm_meta(json!({"labels": {}}), json!({"a": null}))),
                apply("alice", cm(json!({"a": "1"}))),
            ],
        },
        Scenario {
            name: "created by an update (kubectl create), then an applier conflicts",
            compare: Exact,
            steps: vec![
                update(
                    "creator",
                    cm_meta(json!({"labels": {"x": "1"}}), json!({"a": "1"})),
                ),
                apply("alice", cm(json!({"a": "2"}))),
                apply("alice", cm(json!({"a": "1", "b": "2"}))),
            ],
        },
        Scenario {
            name: "an update removes an applied field",
            compare: Exact,
            steps: vec![
                apply("alice", cm(json!({"a": "1", "b": "2"}))),
                update("editor", json!({"data": {"b": null}})),
                apply("alice", cm(json!({"a": "1", "b": "2"}))),
            ],
        },
        Scenario {
            name: "labels added by an update, removed by the applier",
            compare: Exact,
            steps: vec![
                apply(
                    "alice",
                    cm_meta(
                        json!({"labels": {"app": "x", "tier": "web"}}),
                        json!({"a": "1"}),
                    ),
                ),
                update("labeler", json!({"metadata": {"labels": {"team": "t"}}})),
                apply("alice", cm_meta(json!({}), json!({"a": "1"}))),
            ],
        },
        Scenario {
            name: "a keyed item left without its key (other manager owns only a field in it)",
            compare: OwnedAndSubset,
            steps: vec![
                apply(
                    "alice",
                    containers(
                        json!([{"name": "app", "image": "a:1"}, {"name": "side", "image": "s:1"}]),
                    ),
                ),
                update(
                    "editor",
                    json!({"spec": {"template": {"spec": {"containers": [
                        {"name": "app", "image": "a:1"},
                        {"name": "side", "image": "s:1", "workingDir": "/w"}]}}}}),
                ),
                apply(
                    "alice",
                    containers(json!([{"name": "app", "image": "a:1"}])),
                ),
            ],
        },
        Scenario {
            name: "a keyed item another applier also owns stays",
            compare: OwnedAndSubset,
            steps: vec![
                apply(
                    "alice",
                    containers(
                        json!([{"name": "app", "image": "a:1"}, {"name": "side", "image": "s:1", "args": ["x"]}]),
                    ),
                ),
                force("bob", containers(json!([{"name": "side", "image": "s:2"}]))),
                apply(
                    "alice",
                    containers(json!([{"name": "app", "image": "a:1"}])),
                ),
            ],
        },
        Scenario {
            name: "keyed list order follows the applier",
            compare: OwnedAndSubset,
            steps: vec![
                apply(
                    "alice",
                    containers(json!([{"name": "a", "image": "i"}, {"name": "c", "image": "i"}])),
                ),
                apply(
                    "alice",
                    containers(json!([
                        {"name": "a", "image": "i"}, {"name": "b", "image": "i"},
                        {"name": "c", "image": "i"}, {"name": "d", "image": "i"}])),
                ),
                apply(
                    "alice",
                    containers(json!([
                        {"name": "d", "image": "i"}, {"name": "c", "image": "i"},
                        {"name": "b", "image": "i"}, {"name": "a", "image": "i"}])),
                ),
            ],
        },
        Scenario {
            name: "nested map emptied by removal",
            compare: OwnedAndSubset,
            steps: vec![
                apply(
                    "alice",
                    deploy(json!({"containers": [{"name": "app", "image": "i"}],
                        "nodeSelector": {"disk": "ssd"}})),
                ),
                apply("alice", containers(json!([{"name": "app", "image": "i"}]))),
            ],
        },
        Scenario {
            name: "duplicate keys in an applied keyed list fail",
            compare: OwnedAndSubset,
            steps: vec![apply(
                "alice",
                containers(json!([{"name": "app", "image": "i",
                    "ports": [{"containerPort": 80}, {"containerPort": 80, "protocol": "TCP"}]}])),
            )],
        },
        Scenario {
            name: "a label selector is replaced whole",
            compare: OwnedAndSubset,
            steps: vec![
                apply(
                    "alice",
                    netpol(json!({"matchLabels": {"app": "a", "tier": "t"}})),
                ),
                apply("bob", netpol(json!({"matchLabels": {"app": "a"}}))),
                force("bob", netpol(json!({"matchLabels": {"app": "a"}}))),
                apply(
                    "alice",
                    netpol(json!({"matchLabels": {"app": "a", "tier": "t"}})),
                ),
            ],
        },
        Scenario {
            name: "atomic structs and maps of a pod spec and a service",
            compare: OwnedAndSubset,
            steps: vec![
                apply(
                    "alice",
                    deploy(json!({
                        "imagePullSecrets": [{"name": "reg"}],
                        "containers": [{"name": "app", "image": "i", "env": [
                            {"name": "E", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}]}],
                        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                            {"nodeSelectorTerms": [{"matchExpressions": [
                                {"key": "disk", "operator": "In", "values": ["ssd"]}]}]}}}})),
                ),
                apply(
                    "alice",
                    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                        "spec": {"selector": {"app": "a", "tier": "t"},
                            "ports": [{"port": 80, "protocol": "TCP"}]}}),
                ),
                apply(
                    "bob",
                    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                        "spec": {"selector": {"app": "a"}}}),
                ),
            ],
        },
        Scenario {
            name: "replicas scaled by an updater, then dropped and re-applied",
            compare: OwnedAndSubset,
            steps: vec![
                apply("alice", {
                    let mut d = containers(json!([{"name": "app", "image": "i"}]));
                    d["spec"]["replicas"] = json!(2);
                    d
                }),
                update("scaler", json!({"spec": {"replicas": 5}})),
                apply("alice", containers(json!([{"name": "app", "image": "i"}]))),
                apply("alice", {
                    let mut d = containers(json!([{"name": "app", "image": "i"}]));
                    d["spec"]["replicas"] = json!(3);
                    d
                }),
            ],
        },
        Scenario {
            name: "custom resource: nested maps, sets, keyed lists",
            compare: Exact,
            steps: vec![
                apply(
                    "alice",
                    probe(json!({"nested": {"inner": {"a": "1"}, "c": "c"},
                        "tags": ["x", "z"],
                        "items": [{"name": "a", "value": "1"}, {"name": "c", "value": "3"}]})),
                ),
                apply(
                    "bob",
                    probe(json!({"tags": ["y"], "items": [{"name": "b", "value": "2"}]})),
                ),
                apply(
                    "alice",
                    probe(
                        json!({"nested": {"inner": {"a": "1"}}, "tags": ["w", "x", "z"],
                        "items": [{"name": "c", "value": "3"}, {"name": "a", "value": "1"}]}),
                    ),
                ),
                apply(
                    "alice",
                    probe(json!({"tags": ["x"], "nested": {"inner": {"b": "2"}}})),
                ),
            ],
        },
        Scenario {
            // Structured-merge-diff v4.0 leaves a map it empties `null`
            // (later versions remove it); validation refuses that.
            name: "custom resource: a nested map emptied by a removal is refused (1.20)",
            compare: Exact,
            steps: vec![
                apply(
                    "alice",
                    probe(json!({"nested": {"inner": {"a": "1"}, "c": "c"}})),
                ),
                apply("alice", probe(json!({"nested": {"c": "c"}}))),
                apply("alice", probe(json!({"nested": {"c": "d"}, "tags": ["t"]}))),
            ],
        },
        Scenario {
            name: "custom resource: sets with two appliers",
            compare: Exact,
            steps: vec![
                apply("alice", probe(json!({"tags": ["a", "b"]}))),
                apply("bob", probe(json!({"tags": ["c", "b"]}))),
                apply("alice", probe(json!({"tags": ["a"]}))),
                apply("bob", probe(json!({"tags": ["b"]}))),
            ],
        },
        Scenario {
            name: "custom resource: a keyed item left without its key",
            compare: Exact,
            steps: vec![
                apply(
                    "alice",
                    probe(
                        json!({"items": [{"name": "a", "value": "1"}, {"name": "b", "value": "2"}]}),
                    ),
                ),
                update(
                    "editor",
                    json!({"spec": {"items": [{"name": "a", "value": "1"}, {"name": "b", "value": "2", "extra": "e"}]}}),
                ),
                apply(
                    "alice",
                    probe(json!({"items": [{"name": "a", "value": "1"}]})),
                ),
            ],
        },
        Scenario {
            name: "custom resource: atomic map, map of structs, explicit null",
            compare: Exact,
            steps: vec![
                apply(
                    "alice",
                    probe(
                        json!({"selector": {"a": "1", "b": "2"}, "free": {"k": {"x": "1"}},
                        "opt": null}),
                    ),
                ),
                apply("bob", probe(json!({"selector": {"a": "1"}}))),
                force(
                    "bob",
                    probe(json!({"selector": {"a": "1"}, "free": {"k": {"y": "2"}}})),
                ),
                apply("alice", probe(json!({"opt": "set"}))),
                apply("alice", probe(json!({}))),
            ],
        },
    ]
}

/// List semantics of the built-ins and the scenarios' CRD.
fn diff_options() -> gitops_diff::DiffOptions {
    let crd = gitops_diff::CrdLists::from_crd(&crd()).unwrap();
    gitops_diff::DiffOptions::new().lists(std::sync::Arc::new(gitops_diff::LayeredLists::new(
        vec![std::sync::Arc::new(crd)],
    )))
}

/// The outcome of one step, normalised for comparison.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    /// The stored object: without server metadata and status, and its
    /// managedFields as `(manager, operation) -> fieldsV1`.
    Stored {
        object: Value,
        managed: BTreeMap<(String, String), Value>,
    },
    /// Conflicts, as `(manager, path)` in the server's notation.
    Conflict(Vec<(String, String)>),
    /// Refused as invalid.
    Invalid,
}

#[async_trait]
trait Runtime: Sync {
    async fn apply(
        &self,
        object: &Object,
        manager: &str,
        force: bool,
    ) -> Result<Value, TargetError>;
    async fn update(&self, object: Value, manager: &str) -> Result<Value, String>;
    async fn get(&self, key: &ObjectKey) -> Option<Value>;
}

struct Memory(MemoryRuntime);

#[async_trait]
impl Runtime for Memory {
    async fn apply(
        &self,
        object: &Object,
        manager: &str,
        force: bool,
    ) -> Result<Value, TargetError> {
        let options = ApplyOptions::new(manager).force(force);
        self.0.apply(object, &options).await
    }

    async fn update(&self, object: Value, manager: &str) -> Result<Value, String> {
        let object = Object::new(object).map_err(|e| e.to_string())?;
        self.0.update(&object, manager).map_err(|e| e.to_string())
    }

    async fn get(&self, key: &ObjectKey) -> Option<Value> {
        self.0.get(key).await.unwrap()
    }
}

struct Kube {
    target: KubeTarget,
    client: kube::Client,
}

#[async_trait]
impl Runtime for Kube {
    async fn apply(
        &self,
        object: &Object,
        manager: &str,
        force: bool,
    ) -> Result<Value, TargetError> {
        let options = ApplyOptions::new(manager).force(force);
        self.target.apply(object, &options).await
    }

    async fn update(&self, object: Value, manager: &str) -> Result<Value, String> {
        let (group, version) = match object["apiVersion"].as_str().unwrap().rsplit_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (
                String::new(),
                object["apiVersion"].as_str().unwrap().to_string(),
            ),
        };
        let kind = object["kind"].as_str().unwrap();
        let gvk = GroupVersionKind::gvk(&group, &version, kind);
        let ar = ApiResource::from_gvk(&gvk);
        let ns = object["metadata"]["namespace"]
            .as_str()
            .unwrap()
            .to_string();
        let name = object["metadata"]["name"].as_str().unwrap().to_string();
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), &ns, &ar);
        let pp = PostParams {
            field_manager: Some(manager.to_string()),
            ..PostParams::default()
        };
        let body: DynamicObject = serde_json::from_value(object.clone()).unwrap();
        let written = if object.pointer("/metadata/resourceVersion").is_some() {
            api.replace(&name, &pp, &body).await
        } else {
            api.create(&pp, &body).await
        };
        written
            .map(|o| serde_json::to_value(o).unwrap())
            .map_err(|e| e.to_string())
    }

    async fn get(&self, key: &ObjectKey) -> Option<Value> {
        self.target.get(key).await.unwrap()
    }
}

/// RFC 7386 merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else { return };
    for (k, v) in p {
        if v.is_null() {
            t.shift_remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

fn with_namespace(mut v: Value, ns: &str) -> Value {
    if v["kind"] != "CustomResourceDefinition" {
        v["metadata"]["namespace"] = json!(ns);
    }
    v
}

/// The server's notation of a path (`.spec.items[name="a"].value`) in ours
/// (`spec.items[name=a].value`), for paths from the two runtimes to compare.
fn normalise_path(p: &str) -> String {
    let p = p.strip_prefix('.').unwrap_or(p);
    let mut out = String::new();
    let mut rest = p;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find(']') else {
            break;
        };
        let inner = &rest[open + 1..open + close];
        out.push('[');
        let parts: Vec<String> = inner
            .split(',')
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => {
                    let v = match serde_json::from_str::<Value>(v) {
                        Ok(Value::String(s)) => s,
                        _ => v.to_string(),
                    };
                    format!("{k}={v}")
                }
                None => kv.to_string(),
            })
            .collect();
        out.push_str(&parts.join(","));
        out.push(']');
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

fn normalise(v: &Value) -> (Value, BTreeMap<(String, String), Value>) {
    let mut object = v.clone();
    let mut managed = BTreeMap::new();
    if let Some(Value::Object(m)) = object.get_mut("metadata") {
        for f in [
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "selfLink",
        ] {
            m.shift_remove(f);
        }
        if let Some(Value::Array(entries)) = m.shift_remove("managedFields") {
            for e in entries {
                managed.insert(
                    (
                        e["manager"].as_str().unwrap_or_default().to_string(),
                        e["operation"].as_str().unwrap_or_default().to_string(),
                    ),
                    e["fieldsV1"].clone(),
                );
            }
        }
    }
    if let Some(m) = object.as_object_mut() {
        m.shift_remove("status");
    }
    (object, managed)
}

fn outcome(result: Result<Value, TargetError>) -> Outcome {
    match result {
        Ok(v) => {
            let (object, managed) = normalise(&v);
            Outcome::Stored { object, managed }
        }
        Err(TargetError::Conflict { conflicts, .. }) => {
            let mut c: Vec<(String, String)> = conflicts
                .into_iter()
                .flat_map(|oc| {
                    let m = oc.manager.clone();
                    oc.fields
                        .into_iter()
                        .map(move |f| (m.clone(), normalise_path(&f)))
                })
                .collect();
            c.sort();
            Outcome::Conflict(c)
        }
        Err(TargetError::Invalid { .. }) => Outcome::Invalid,
        Err(other) => panic!("unexpected error: {other}"),
    }
}

async fn run(rt: &dyn Runtime, ns: &str, scenario: &Scenario) -> Vec<Outcome> {
    let mut out = Vec::new();
    for step in &scenario.steps {
        let o = match step {
            Step::Apply {
                manager,
                force,
                object,
            } => {
                let object = with_namespace(object.clone(), ns);
                let obj = Object::new(object.clone()).unwrap();
                let result = rt.apply(&obj, manager, *force).await;
                if let Ok(live) = &result {
                    let diff = gitops_diff::compare(&object, live, None, &diff_options()).unwrap();
                    assert!(
                        diff.is_empty(),
                        "{}: compare(applied, result) after {manager}'s apply: {:?}",
                        scenario.name,
                        diff.changes
                    );
                }
                outcome(result)
            }
            Step::Update { manager, patch } => {
                let patch = with_namespace(patch.clone(), ns);
                let mut live = last_object(&out).unwrap_or_else(|| patch.clone());
                // The live object as the runtime holds it (with its metadata).
                if let Some(full) = live_of(rt, &live).await {
                    live = full;
                }
                if let Some(m) = live.pointer_mut("/metadata").and_then(Value::as_object_mut) {
                    m.shift_remove("managedFields");
                }
                merge_patch(&mut live, &patch);
                match rt.update(live, manager).await {
                    Ok(v) => {
                        let (object, managed) = normalise(&v);
                        Outcome::Stored { object, managed }
                    }
                    Err(e) => panic!("{}: update by {manager} failed: {e}", scenario.name),
                }
            }
        };
        out.push(o);
    }
    out
}

fn last_object(out: &[Outcome]) -> Option<Value> {
    out.iter().rev().find_map(|o| match o {
        Outcome::Stored { object, .. } => Some(object.clone()),
        _ => None,
    })
}

async fn live_of(rt: &dyn Runtime, object: &Value) -> Option<Value> {
    let o = Object::new(object.clone()).ok()?;
    rt.get(o.key()).await
}

/// Owned leaves equal, and everything memory stores is on the server.
fn subset(mem: &Value, kube: &Value) -> bool {
    match (mem, kube) {
        (Value::Object(m), Value::Object(k)) => m
            .iter()
            .all(|(key, v)| k.get(key).is_some_and(|kv| subset(v, kv))),
        (Value::Array(m), Value::Array(k)) => {
            m.len() == k.len() && m.iter().zip(k).all(|(a, b)| subset(a, b))
        }
        _ => mem == kube,
    }
}

fn agree(compare: Compare, mem: &Outcome, kube: &Outcome) -> bool {
    match (mem, kube) {
        (
            Outcome::Stored {
                object: mo,
                managed: mm,
            },
            Outcome::Stored {
                object: ko,
                managed: km,
            },
        ) => {
            mm == km
                && match compare {
                    Compare::Exact => mo == ko,
                    Compare::OwnedAndSubset => subset(mo, ko) && owned_equal(mo, ko, mm),
                }
        }
        (a, b) => a == b,
    }
}

/// Every owned field has the same value on both sides.
fn owned_equal(mem: &Value, kube: &Value, managed: &BTreeMap<(String, String), Value>) -> bool {
    let lists = diff_options().lists;
    let lists = lists.as_ref();
    let gk = gitops_diff::GroupKind::of(mem);
    managed.values().all(|fields| {
        let Ok(set) = gitops_diff::FieldSet::from_fields_v1(fields) else {
            return false;
        };
        set.iter().all(|p| {
            let a = gitops_diff::resolve(mem, p, lists, &gk).map(|(_, v)| v);
            let b = gitops_diff::resolve(kube, p, lists, &gk).map(|(_, v)| v);
            match (a, b) {
                // Inner nodes (list items, map keys): present on both sides
                // (their owned children are compared on their own).
                (Some(Value::Object(_)), Some(Value::Object(_))) => true,
                _ => a == b,
            }
        })
    })
}

async fn memory_runtime(ns: &str) -> Memory {
    let rt = MemoryRuntime::with_system_namespaces();
    let nsobj =
        Object::new(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
            .unwrap();
    rt.apply(&nsobj, &ApplyOptions::default()).await.unwrap();
    rt.apply(&Object::new(crd()).unwrap(), &ApplyOptions::default())
        .await
        .unwrap();
    Memory(rt)
}

async fn kube_runtime(cluster: &TestCluster) -> Kube {
    let target = KubeTarget::new(cluster.client());
    target
        .apply(&Object::new(crd()).unwrap(), &ApplyOptions::default())
        .await
        .unwrap();
    Kube {
        target,
        client: cluster.client(),
    }
}

#[tokio::test]
async fn memory_runtime_and_api_server_agree_on_server_side_apply() {
    let Some(cluster) = gitops_kube::testing::shared_or_skip().await else {
        return;
    };
    let kube = kube_runtime(cluster).await;
    let mut disagreements = Vec::new();
    for scenario in scenarios() {
        let ns = cluster.create_namespace("ssa").await.unwrap();
        let mem = memory_runtime(&ns).await;
        let on_kube = run(&kube, &ns, &scenario).await;
        let on_memory = run(&mem, &ns, &scenario).await;
        for (i, (m, k)) in on_memory.iter().zip(&on_kube).enumerate() {
            if !agree(scenario.compare, m, k) {
                disagreements.push(format!(
                    "{} / step {}:\n  memory: {}\n  server: {}",
                    scenario.name,
                    i + 1,
                    show(m),
                    show(k)
                ));
            }
        }
        if std::env::var_os("SSA_SCENARIOS_PRINT").is_some() {
            println!("== {}", scenario.name);
            for (i, k) in on_kube.iter().enumerate() {
                println!("  server step {}: {}", i + 1, show(k));
            }
        }
    }
    assert!(
        disagreements.is_empty(),
        "the runtimes disagree:\n{}",
        disagreements.join("\n")
    );
}

fn show(o: &Outcome) -> String {
    match o {
        Outcome::Stored { object, managed } => {
            let m: BTreeMap<String, &Value> = managed
                .iter()
                .map(|((m, op), v)| (format!("{m}/{op}"), v))
                .collect();
            format!(
                "{} managed={}",
                object,
                serde_json::to_string(&m).unwrap_or_default()
            )
        }
        other => format!("{other:?}"),
    }
}
