//! Proptest strategies and helpers for property-based tests of GitOps
//! pipelines (cargo feature `proptest`).
//!
//! The generators produce small, valid environments on purpose: a few
//! namespaces, a few names per kind, so that random runs collide, update,
//! rename and prune the same objects again and again. Everything the
//! project's own planner laws use is here, so a user's suite can state its
//! own laws about its own pipeline in a few lines:
//!
//! ```
//! use gitops_core::strategies::{assert_converged, environment, live_edits, apply_edits};
//! use gitops_core::{MemoryRuntime, MemorySource, OwnerId, Reconciler, ReconcilerConfig};
//! use proptest::prelude::*;
//!
//! proptest! {
//!     #![proptest_config(ProptestConfig::with_cases(8))]
//!     #[cfg_attr(test, test)] // in your suite: #[test]
//!     fn converges_after_hand_edits(env in environment(), edits in live_edits(3)) {
//!         futures::executor::block_on(async {
//!             let (source, runtime) = (MemorySource::new(), MemoryRuntime::new());
//!             let mut config = ReconcilerConfig::new(OwnerId::new("team").unwrap());
//!             config.plan.allow_empty = true; // a generated environment may be empty
//!             let reconciler = Reconciler::new(source.clone(), runtime.clone(), config).unwrap();
//!             env.commit(&source, "main", "first");
//!             reconciler.reconcile_once("main").await.unwrap();
//!             apply_edits(&runtime, &edits).await;
//!             assert_converged(&reconciler, "main").await
//!         })?;
//!     }
//! }
//! # converges_after_hand_edits();
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fmt;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Value, json};

use crate::desired::{DesiredObject, DesiredState, Provenance};
use crate::key::ObjectKey;
use crate::memory::runtime::MemoryRuntime;
use crate::memory::source::MemorySource;
use crate::object::Object;
use crate::reconcile::Reconciler;
use crate::source::Source;
use crate::target::{ApplyOptions, DeleteOptions, OWNER_LABEL, Target, TargetExt};

/// The namespaces generated objects live in.
pub const NAMESPACES: [&str; 3] = ["alpha", "beta", "gamma"];

/// The custom resource kind generated objects may include (its CRD is added
/// to the environment whenever one of its objects is).
pub const WIDGET_CRD: &str = "widgets.example.com";

/// One generated object, before it becomes a manifest. The small index
/// ranges make collisions between runs likely on purpose.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ObjectSpec {
    /// A ConfigMap with one data entry.
    ConfigMap {
        /// Index into [`NAMESPACES`].
        namespace: usize,
        /// Name index.
        name: usize,
        /// Data value.
        value: u8,
    },
    /// A Secret with one data entry.
    Secret {
        /// Index into [`NAMESPACES`].
        namespace: usize,
        /// Name index.
        name: usize,
        /// Data value.
        value: u8,
    },
    /// A Deployment of one container.
    Deployment {
        /// Index into [`NAMESPACES`].
        namespace: usize,
        /// Name index.
        name: usize,
        /// Replicas.
        replicas: u8,
        /// Image tag index.
        image: u8,
    },
    /// A Service with one port.
    Service {
        /// Index into [`NAMESPACES`].
        namespace: usize,
        /// Name index.
        name: usize,
        /// Port multiplier (port = 80 × this).
        port: u16,
    },
    /// A cluster-scoped ClusterRole.
    ClusterRole {
        /// Name index.
        name: usize,
    },
    /// A custom resource of [`WIDGET_CRD`].
    Widget {
        /// Index into [`NAMESPACES`].
        namespace: usize,
        /// Name index.
        name: usize,
        /// `spec.size`.
        size: u8,
    },
}

impl ObjectSpec {
    /// The namespace, for namespaced kinds.
    pub fn namespace(&self) -> Option<&'static str> {
        match self {
            Self::ConfigMap { namespace, .. }
            | Self::Secret { namespace, .. }
            | Self::Deployment { namespace, .. }
            | Self::Service { namespace, .. }
            | Self::Widget { namespace, .. } => Some(NAMESPACES[namespace % NAMESPACES.len()]),
            Self::ClusterRole { .. } => None,
        }
    }

    /// The manifest, in the given wave, with extra labels.
    pub fn manifest(&self, wave: i8, labels: &BTreeMap<String, String>) -> Value {
        let mut metadata = json!({"annotations": {"gitops-rs.io/wave": wave.to_string()}});
        if !labels.is_empty() {
            metadata["labels"] = json!(labels);
        }
        if let Some(ns) = self.namespace() {
            metadata["namespace"] = json!(ns);
        }
        let (api_version, kind, name, body) = match self {
            Self::ConfigMap { name, value, .. } => (
                "v1",
                "ConfigMap",
                format!("cm{name}"),
                json!({"data": {"v": value.to_string()}}),
            ),
            Self::Secret { name, value, .. } => (
                "v1",
                "Secret",
                format!("secret{name}"),
                json!({"type": "Opaque", "stringData": {"password": format!("pw-{value}")}}),
            ),
            Self::Deployment {
                name,
                replicas,
                image,
                ..
            } => (
                "apps/v1",
                "Deployment",
                format!("d{name}"),
                json!({"spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "x"}},
                    "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [
                        {"name": "app", "image": format!("img:{image}"),
                         "resources": {"limits": {"cpu": "0.5"}}}]}}}}),
            ),
            Self::Service { name, port, .. } => (
                "v1",
                "Service",
                format!("s{name}"),
                json!({"spec": {"selector": {"app": "x"},
                    "ports": [{"port": 80 * u32::from(*port), "targetPort": 8080}]}}),
            ),
            Self::ClusterRole { name } => (
                "rbac.authorization.k8s.io/v1",
                "ClusterRole",
                format!("role:{name}"),
                json!({"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}),
            ),
            Self::Widget { name, size, .. } => (
                "example.com/v1",
                "Widget",
                format!("w{name}"),
                json!({"spec": {"size": size}}),
            ),
        };
        metadata["name"] = json!(name);
        let mut m = json!({"apiVersion": api_version, "kind": kind, "metadata": metadata});
        if let (Value::Object(m), Value::Object(body)) = (&mut m, body) {
            m.extend(body);
        }
        m
    }
}

/// Any [`ObjectSpec`].
pub fn object_spec() -> impl Strategy<Value = ObjectSpec> {
    prop_oneof![
        (0..3usize, 0..3usize, any::<u8>()).prop_map(|(namespace, name, value)| {
            ObjectSpec::ConfigMap {
                namespace,
                name,
                value,
            }
        }),
        (0..3usize, 0..2usize, any::<u8>()).prop_map(|(namespace, name, value)| {
            ObjectSpec::Secret {
                namespace,
                name,
                value,
            }
        }),
        (0..3usize, 0..2usize, 0..4u8, 0..3u8).prop_map(|(namespace, name, replicas, image)| {
            ObjectSpec::Deployment {
                namespace,
                name,
                replicas,
                image,
            }
        }),
        (0..3usize, 0..2usize, 1..3u16).prop_map(|(namespace, name, port)| ObjectSpec::Service {
            namespace,
            name,
            port
        }),
        (0..2usize).prop_map(|name| ObjectSpec::ClusterRole { name }),
        (0..3usize, 0..2usize, any::<u8>()).prop_map(|(namespace, name, size)| {
            ObjectSpec::Widget {
                namespace,
                name,
                size,
            }
        }),
    ]
}

/// The manifest of any [`ObjectSpec`], in wave -1, 0 or 1.
pub fn manifest() -> impl Strategy<Value = Value> {
    (object_spec(), -1..2i8).prop_map(|(s, w)| s.manifest(w, &BTreeMap::new()))
}

/// A generated environment: objects with their waves, plus the Namespaces
/// and the CRD they need, and labels shared by every object (as a
/// Kustomize `commonLabels` would add).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Environment {
    /// The objects and their waves.
    pub objects: Vec<(ObjectSpec, i8)>,
    /// Labels on every object.
    pub labels: BTreeMap<String, String>,
}

impl Environment {
    /// An environment of these objects, without shared labels.
    pub fn new(objects: Vec<(ObjectSpec, i8)>) -> Self {
        Self {
            objects,
            labels: BTreeMap::new(),
        }
    }

    /// The files of the environment repository: one JSON manifest per
    /// object, one per Namespace, and the CRD when a Widget is declared.
    /// Later objects with the same key replace earlier ones.
    pub fn files(&self) -> Vec<(String, String)> {
        let mut files: BTreeMap<String, Value> = BTreeMap::new();
        let mut widgets = false;
        for (spec, wave) in &self.objects {
            if let Some(ns) = spec.namespace() {
                files.insert(
                    format!("ns-{ns}.json"),
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns,
                        "annotations": {"gitops-rs.io/wave": "-1"}}}),
                );
            }
            widgets |= matches!(spec, ObjectSpec::Widget { .. });
            let m = spec.manifest(*wave, &self.labels);
            let key = Object::new(m.clone())
                .map(|o| o.key().to_string())
                .unwrap_or_default();
            files.insert(format!("{}.json", key.replace('/', "_")), m);
        }
        if widgets {
            files.insert("crd.json".into(), widget_crd());
        }
        files
            .into_iter()
            .map(|(p, v)| {
                let text = serde_json::to_string_pretty(&v).unwrap_or_default();
                (p, text)
            })
            .collect()
    }

    /// Commits the environment's files to `reference` of `source`; returns
    /// the commit id.
    pub fn commit(&self, source: &MemorySource, reference: &str, message: &str) -> String {
        source.commit(reference, self.files(), "proptest", message)
    }

    /// The desired state the environment declares, without going through
    /// a source or the renderer.
    pub fn desired(&self) -> DesiredState {
        let mut desired = DesiredState::new(None);
        for (path, text) in self.files() {
            let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if let Ok(object) = Object::new(value) {
                let provenance = Provenance::new(path, 0).with_line(Some(1));
                // One object per file: keys are unique.
                let _ = desired.insert(DesiredObject { object, provenance });
            }
        }
        desired
    }
}

/// The CRD of the generated Widgets.
pub fn widget_crd() -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": WIDGET_CRD, "annotations": {"gitops-rs.io/wave": "1"}},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}})
}

/// Environments of up to `max_objects` objects, with or without shared
/// labels.
pub fn environment_of(max_objects: usize) -> impl Strategy<Value = Environment> {
    (
        proptest::collection::vec((object_spec(), -1..2i8), 0..=max_objects),
        proptest::option::of(0..3u8),
    )
        .prop_map(|(objects, label)| {
            let mut labels = BTreeMap::new();
            if let Some(v) = label {
                labels.insert("app.kubernetes.io/part-of".to_string(), format!("shop{v}"));
            }
            Environment { objects, labels }
        })
}

/// Environments of up to eight objects.
pub fn environment() -> impl Strategy<Value = Environment> {
    environment_of(8)
}

/// Any desired state of up to eight objects (with their Namespaces and CRD).
pub fn desired_state() -> impl Strategy<Value = DesiredState> {
    environment().prop_map(|e| e.desired())
}

/// A change made to the runtime by someone other than the reconciler.
/// Indices pick among the stored objects (modulo their number).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LiveEdit {
    /// `kubectl scale`: another manager sets a Deployment's replicas.
    Scale {
        /// Which object.
        index: usize,
        /// The new replica count.
        replicas: u8,
    },
    /// Another manager changes a ConfigMap's data and adds an entry.
    Data {
        /// Which object.
        index: usize,
        /// The new value.
        value: u8,
    },
    /// Another manager adds a label (a field the owner never declared).
    Label {
        /// Which object.
        index: usize,
        /// The label value.
        value: u8,
    },
    /// `kubectl edit` or a controller: an Update (a full-object write, not
    /// an apply) by [`UPDATER`] that changes a ConfigMap's value or a
    /// Deployment's replicas; the updater then owns what it changed.
    Update {
        /// Which object.
        index: usize,
        /// The new value.
        value: u8,
    },
    /// Someone deletes the object.
    Delete {
        /// Which object.
        index: usize,
    },
}

/// The manager of the applies [`apply_edits`] makes.
pub const EDITOR: &str = "kubectl";

/// The manager of the updates [`apply_edits`] makes.
pub const UPDATER: &str = "kubectl-edit";

/// Any [`LiveEdit`].
pub fn live_edit() -> impl Strategy<Value = LiveEdit> {
    prop_oneof![
        (any::<usize>(), any::<u8>())
            .prop_map(|(index, replicas)| LiveEdit::Scale { index, replicas }),
        (any::<usize>(), any::<u8>()).prop_map(|(index, value)| LiveEdit::Data { index, value }),
        (any::<usize>(), any::<u8>()).prop_map(|(index, value)| LiveEdit::Label { index, value }),
        (any::<usize>(), any::<u8>()).prop_map(|(index, value)| LiveEdit::Update { index, value }),
        any::<usize>().prop_map(|index| LiveEdit::Delete { index }),
    ]
}

/// Up to `max` edits.
pub fn live_edits(max: usize) -> impl Strategy<Value = Vec<LiveEdit>> {
    proptest::collection::vec(live_edit(), 0..=max)
}

/// Applies `edits` to the runtime as the manager [`EDITOR`] (forced, as
/// `kubectl` does), skipping edits that do not fit the chosen object's
/// kind. Namespaces and CRDs are never deleted (that is a different law:
/// cascades).
pub async fn apply_edits(runtime: &MemoryRuntime, edits: &[LiveEdit]) {
    let keys: Vec<ObjectKey> = runtime
        .objects()
        .into_keys()
        .filter(|k| k.kind != "Namespace" && k.kind != "CustomResourceDefinition")
        .collect();
    if keys.is_empty() {
        return;
    }
    let force = ApplyOptions::new(EDITOR).force(true);
    for edit in edits {
        let (index, patch) = match edit {
            LiveEdit::Scale { index, replicas } => {
                (*index, json!({"spec": {"replicas": replicas}}))
            }
            LiveEdit::Data { index, value } => (
                *index,
                json!({"data": {"v": format!("by-hand-{value}"), "extra": "x"}}),
            ),
            LiveEdit::Label { index, value } => (
                *index,
                json!({"metadata": {"labels": {"edited-by": format!("hand{value}")}}}),
            ),
            LiveEdit::Update { index, value } => {
                let key = &keys[index % keys.len()];
                let Ok(Some(mut live)) = runtime.get(key).await else {
                    continue;
                };
                let changed = match key.kind.as_str() {
                    "ConfigMap" => {
                        live["data"]["v"] = json!(format!("edited-{value}"));
                        true
                    }
                    "Deployment" => {
                        live["spec"]["replicas"] = json!(value % 5);
                        true
                    }
                    _ => false,
                };
                if changed && let Ok(object) = Object::new(live) {
                    let _ = runtime.update(&object, UPDATER);
                }
                continue;
            }
            LiveEdit::Delete { index } => {
                let _ = runtime
                    .delete(&keys[index % keys.len()], &DeleteOptions::default())
                    .await;
                continue;
            }
        };
        let key = &keys[index % keys.len()];
        let fits = match edit {
            LiveEdit::Scale { .. } => key.kind == "Deployment",
            LiveEdit::Data { .. } => key.kind == "ConfigMap",
            _ => true,
        };
        let Ok(Some(live)) = runtime.get(key).await else {
            continue;
        };
        if !fits {
            continue;
        }
        let mut partial = json!({"apiVersion": live["apiVersion"], "kind": live["kind"],
            "metadata": {"name": key.name}});
        if let Some(ns) = &key.namespace {
            partial["metadata"]["namespace"] = json!(ns);
        }
        merge(&mut partial, &patch);
        if let Ok(object) = Object::new(partial) {
            let _ = runtime.apply(&object, &force).await;
        }
    }
}

fn merge(into: &mut Value, patch: &Value) {
    match (into, patch) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b.clone(),
    }
}

/// Why [`converged`] failed: the plan that still has steps, as text.
#[derive(Debug)]
#[non_exhaustive]
pub struct NotConverged {
    /// The reference planned.
    pub reference: String,
    /// The plan, as text.
    pub plan: String,
}

impl fmt::Display for NotConverged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the runtime has not converged to {}; planning again gives:\n{}",
            self.reference, self.plan
        )
    }
}

impl std::error::Error for NotConverged {}

/// Plans `reference` again and checks that nothing is left to do: no step
/// and every declared object unchanged. Errors (a revision that does not
/// plan) count as not converged.
pub async fn converged<S: Source, T: Target>(
    reconciler: &Reconciler<S, T>,
    reference: &str,
) -> Result<(), NotConverged> {
    match reconciler.plan(reference).await {
        Ok((desired, plan)) if plan.steps.is_empty() && plan.unchanged.len() == desired.len() => {
            Ok(())
        }
        Ok((_, plan)) => Err(NotConverged {
            reference: reference.to_string(),
            plan: plan.to_string(),
        }),
        Err(e) => Err(NotConverged {
            reference: reference.to_string(),
            plan: e.to_string(),
        }),
    }
}

/// [`converged`] for use inside `proptest!`: syncs `reference` once more
/// first (so a test can call it right after its own edits), then fails the
/// test case with the remaining plan.
pub async fn assert_converged<S: Source, T: Target>(
    reconciler: &Reconciler<S, T>,
    reference: &str,
) -> Result<(), TestCaseError> {
    if let Err(e) = reconciler.reconcile_once(reference).await {
        return Err(TestCaseError::fail(format!("sync failed: {e}")));
    }
    converged(reconciler, reference)
        .await
        .map_err(|e| TestCaseError::fail(e.to_string()))
}

/// The owner label value of a stored object, if any.
pub fn owner_of(object: &Value) -> Option<&str> {
    object
        .get("metadata")?
        .get("labels")?
        .get(OWNER_LABEL)?
        .as_str()
}
