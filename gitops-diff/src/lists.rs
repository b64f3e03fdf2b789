//! List semantics: how Kubernetes merges each list (associative by keys,
//! set, or atomic).
//!
//! [`BuiltinLists`] is the table for built-in types. It was built from the
//! `+listType=map` / `+listMapKey=...` / `+listType=set` / `patchMergeKey`
//! markers of `k8s.io/api` (`staging/src/k8s.io/api/core/v1/types.go` for
//! `PodSpec`, `Container`, `EphemeralContainer`, `ServiceSpec`,
//! `ServiceAccount`; `k8s.io/apimachinery/pkg/apis/meta/v1/types.go` for
//! `ObjectMeta`; `admissionregistration/v1/types.go` for webhooks), which the
//! API server publishes as `x-kubernetes-list-type` /
//! `x-kubernetes-list-map-keys` in its OpenAPI. Lists without a marker are
//! atomic (structured-merge-diff treats a `patchMergeKey` without
//! `listType` as a map keyed by it, which the table follows).
//!
//! [`CrdLists`] reads the same extensions from a CRD's
//! `spec.versions[].schema.openAPIV3Schema`.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use crate::fieldset::GroupKind;

/// How a list merges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListType {
    /// Replaced as a whole (`x-kubernetes-list-type: atomic`, the default).
    Atomic,
    /// A set of scalars, merged by value (`x-kubernetes-list-type: set`).
    Set,
    /// An associative list of maps, merged by these key fields
    /// (`x-kubernetes-list-type: map` + `x-kubernetes-list-map-keys`).
    Map(Vec<String>),
}

/// How a map (a JSON object) merges and is recorded in field sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MapType {
    /// A struct with named fields (the default): merged field by field; a
    /// field is a member of a field set only as a leaf.
    Struct,
    /// A granular map with arbitrary keys (`map[string]T`,
    /// `additionalProperties`): merged key by key, and every key is a
    /// member of a field set, also when its value has children.
    Granular,
    /// Replaced whole and owned as one field (`x-kubernetes-map-type:
    /// atomic`, `+structType=atomic` / `+mapType=atomic` on built-ins such
    /// as `LabelSelector`).
    Atomic,
}

/// Supplies list semantics by group/kind and field path.
pub trait ListSemantics: Send + Sync + std::fmt::Debug {
    /// The list type at `path` (field names from the object root, list
    /// indices and keys omitted, e.g. `["spec","template","spec","containers"]`),
    /// `None` if unknown (treated as atomic).
    fn list_type(&self, gk: &GroupKind, path: &[&str]) -> Option<ListType>;

    /// The default of a key field of an associative list at `path`, which the
    /// API server fills in before computing the key (e.g. `protocol: TCP` for
    /// container ports). `None` when the key has no default.
    fn key_default(&self, gk: &GroupKind, path: &[&str], key: &str) -> Option<Value> {
        let _ = (gk, path, key);
        None
    }

    /// The type of the map at `path` (same form as for
    /// [`list_type`](Self::list_type)), `None` if unknown (a struct).
    fn map_type(&self, gk: &GroupKind, path: &[&str]) -> Option<MapType> {
        let _ = (gk, path);
        None
    }

    /// Whether the field at `path` may hold `null` (`nullable: true` in a
    /// CRD's schema); `None` when the schema is unknown.
    fn nullable(&self, gk: &GroupKind, path: &[&str]) -> Option<bool> {
        let _ = (gk, path);
        None
    }
}

/// The Kubernetes built-in list table (see the module docs for its sources).
#[derive(Clone, Copy, Debug, Default)]
pub struct BuiltinLists;

fn map_of(keys: &[&str]) -> Option<ListType> {
    Some(ListType::Map(keys.iter().map(|k| k.to_string()).collect()))
}

/// Where the `PodSpec` sits in a built-in workload kind.
fn pod_spec_root(gk: &GroupKind) -> Option<&'static [&'static str]> {
    match (gk.group.as_str(), gk.kind.as_str()) {
        ("", "Pod") => Some(&["spec"]),
        ("", "PodTemplate") => Some(&["template", "spec"]),
        ("", "ReplicationController")
        | ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet")
        | ("batch", "Job") => Some(&["spec", "template", "spec"]),
        ("batch", "CronJob") => Some(&["spec", "jobTemplate", "spec", "template", "spec"]),
        _ => None,
    }
}

/// Lists inside a `PodSpec` (path relative to the pod spec).
fn pod_spec_list(rel: &[&str]) -> Option<ListType> {
    match rel {
        ["containers" | "initContainers" | "ephemeralContainers"] => map_of(&["name"]),
        ["volumes"] | ["imagePullSecrets"] | ["schedulingGates"] | ["resourceClaims"] => {
            map_of(&["name"])
        }
        ["hostAliases"] => map_of(&["ip"]),
        ["topologySpreadConstraints"] => map_of(&["topologyKey", "whenUnsatisfiable"]),
        [
            "containers" | "initContainers" | "ephemeralContainers",
            rest @ ..,
        ] => match rest {
            ["ports"] => map_of(&["containerPort", "protocol"]),
            ["env"] => map_of(&["name"]),
            ["volumeMounts"] => map_of(&["mountPath"]),
            ["volumeDevices"] => map_of(&["devicePath"]),
            ["resources", "claims"] => map_of(&["name"]),
            _ => Some(ListType::Atomic),
        },
        ["resources", "claims"] => map_of(&["name"]),
        _ => Some(ListType::Atomic),
    }
}

impl ListSemantics for BuiltinLists {
    fn list_type(&self, gk: &GroupKind, path: &[&str]) -> Option<ListType> {
        // ObjectMeta, at the root and in pod templates.
        match path {
            [.., "metadata", "finalizers"] => return Some(ListType::Set),
            [.., "metadata", "ownerReferences"] => return map_of(&["uid"]),
            [.., "metadata", "managedFields"] => return Some(ListType::Atomic),
            _ => {}
        }
        if let Some(root) = pod_spec_root(gk) {
            if let Some(rel) = path.strip_prefix(root) {
                return pod_spec_list(rel);
            }
            return None;
        }
        match (gk.group.as_str(), gk.kind.as_str(), path) {
            ("", "Service", ["spec", "ports"]) => map_of(&["port", "protocol"]),
            ("", "ServiceAccount", ["secrets"]) => map_of(&["name"]),
            (
                "admissionregistration.k8s.io",
                "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration",
                ["webhooks"],
            ) => map_of(&["name"]),
            _ => None,
        }
    }

    fn map_type(&self, gk: &GroupKind, path: &[&str]) -> Option<MapType> {
        // `metav1.LabelSelector` is `+structType=atomic`.
        let label_selector = match (gk.group.as_str(), gk.kind.as_str(), path) {
            (
                "apps",
                "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet",
                ["spec", "selector"],
            )
            | ("batch", "Job", ["spec", "selector"])
            | ("batch", "CronJob", ["spec", "jobTemplate", "spec", "selector"])
            | ("policy", "PodDisruptionBudget", ["spec", "selector"])
            | ("networking.k8s.io", "NetworkPolicy", ["spec", "podSelector"])
            | ("", "PersistentVolumeClaim", ["spec", "selector"]) => true,
            _ => pod_spec_root(gk)
                .and_then(|root| path.strip_prefix(root))
                .is_some_and(|rel| matches!(rel, ["topologySpreadConstraints", "labelSelector"])),
        };
        // Other `+structType=atomic` markers (`NodeSelector`,
        // `LocalObjectReference`, key selectors) came after Kubernetes
        // 1.20, whose API server merges those structs field by field.
        label_selector.then_some(MapType::Atomic)
    }

    fn key_default(&self, gk: &GroupKind, path: &[&str], key: &str) -> Option<Value> {
        if key != "protocol" {
            return None;
        }
        let is_ports = match (gk.group.as_str(), gk.kind.as_str(), path) {
            ("", "Service", ["spec", "ports"]) => true,
            _ => pod_spec_root(gk)
                .and_then(|root| path.strip_prefix(root))
                .is_some_and(|rel| {
                    matches!(
                        rel,
                        [
                            "containers" | "initContainers" | "ephemeralContainers",
                            "ports"
                        ]
                    )
                }),
        };
        is_ports.then(|| Value::String("TCP".to_string()))
    }
}

/// Errors reading a CustomResourceDefinition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CrdError {
    /// A required field is missing or has the wrong type.
    #[error("CustomResourceDefinition {crd}: {field} is missing or not a {expected}")]
    MissingField {
        /// The CRD's `metadata.name` (or `<unnamed>`).
        crd: String,
        /// The field path.
        field: String,
        /// The expected JSON type.
        expected: &'static str,
    },
    /// `x-kubernetes-list-type` has an unknown value or the map keys are missing.
    #[error("CustomResourceDefinition {crd}: invalid list extension at {path}: {reason}")]
    InvalidListType {
        /// The CRD's `metadata.name`.
        crd: String,
        /// The field path in the schema (dotted).
        path: String,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Clone, Debug, Default)]
struct CrdEntry {
    list_type: Option<ListType>,
    map_type: Option<MapType>,
    nullable: bool,
    defaults: HashMap<String, Value>,
}

/// List semantics read from CustomResourceDefinitions' OpenAPI schemas
/// (`x-kubernetes-list-type`, `x-kubernetes-list-map-keys`, and `default`
/// of key fields). Fields under `additionalProperties` match any key.
#[derive(Clone, Debug, Default)]
pub struct CrdLists {
    // group/kind -> path pattern ("*" matches any map key) -> entry
    kinds: HashMap<GroupKind, Vec<(Vec<String>, CrdEntry)>>,
}

impl CrdLists {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a CRD added describes `gk`: where it does not, the table
    /// answers nothing for `gk`, and layered over [`BuiltinLists`] gives
    /// the built-in answers.
    pub fn describes(&self, gk: &GroupKind) -> bool {
        self.kinds.contains_key(gk)
    }

    /// Builds the table from one CRD object.
    pub fn from_crd(crd: &Value) -> Result<Self, CrdError> {
        let mut s = Self::new();
        s.add_crd(crd)?;
        Ok(s)
    }

    /// Adds the lists of one CRD (all its versions; the first version that
    /// declares a path wins).
    pub fn add_crd(&mut self, crd: &Value) -> Result<(), CrdError> {
        let name = crd
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("<unnamed>")
            .to_string();
        let missing = |field: &str, expected: &'static str| CrdError::MissingField {
            crd: name.clone(),
            field: field.to_string(),
            expected,
        };
        let group = crd
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .ok_or_else(|| missing("spec.group", "string"))?;
        let kind = crd
            .pointer("/spec/names/kind")
            .and_then(Value::as_str)
            .ok_or_else(|| missing("spec.names.kind", "string"))?;
        let versions = crd
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .ok_or_else(|| missing("spec.versions", "list"))?;
        let gk = GroupKind::new(group, kind);
        let mut found: Vec<(Vec<String>, CrdEntry)> = Vec::new();
        for v in versions {
            if let Some(schema) = v.pointer("/schema/openAPIV3Schema") {
                let mut path = Vec::new();
                walk_schema(schema, &mut path, &mut found, &name)?;
            }
        }
        let entries = self.kinds.entry(gk).or_default();
        for (p, e) in found {
            if !entries.iter().any(|(q, _)| *q == p) {
                entries.push((p, e));
            }
        }
        Ok(())
    }

    fn lookup(&self, gk: &GroupKind, path: &[&str]) -> Option<&CrdEntry> {
        let entries = self.kinds.get(gk)?;
        entries
            .iter()
            .find(|(p, _)| {
                p.len() == path.len() && p.iter().zip(path).all(|(a, b)| a == "*" || a == b)
            })
            .map(|(_, e)| e)
    }
}

fn walk_schema(
    schema: &Value,
    path: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, CrdEntry)>,
    crd: &str,
) -> Result<(), CrdError> {
    let Some(obj) = schema.as_object() else {
        return Ok(());
    };
    let is_array =
        obj.get("type").and_then(Value::as_str) == Some("array") || obj.contains_key("items");
    if is_array {
        let invalid = |reason: &str| CrdError::InvalidListType {
            crd: crd.to_string(),
            path: path.join("."),
            reason: reason.to_string(),
        };
        let lt = match obj.get("x-kubernetes-list-type").and_then(Value::as_str) {
            None | Some("atomic") => ListType::Atomic,
            Some("set") => ListType::Set,
            Some("map") => {
                let keys: Vec<String> = obj
                    .get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default();
                if keys.is_empty() {
                    return Err(invalid("list-type map without x-kubernetes-list-map-keys"));
                }
                ListType::Map(keys)
            }
            Some(other) => return Err(invalid(&format!("unknown list type {other:?}"))),
        };
        let mut defaults = HashMap::new();
        if let ListType::Map(keys) = &lt {
            for k in keys {
                if let Some(d) = obj
                    .get("items")
                    .and_then(|i| i.get("properties"))
                    .and_then(|p| p.get(k))
                    .and_then(|p| p.get("default"))
                {
                    defaults.insert(k.clone(), d.clone());
                }
            }
        }
        out.push((
            path.clone(),
            CrdEntry {
                list_type: Some(lt),
                map_type: None,
                nullable: obj.get("nullable") == Some(&Value::Bool(true)),
                defaults,
            },
        ));
        if let Some(items) = obj.get("items") {
            walk_schema(items, path, out, crd)?;
        }
        return Ok(());
    }
    if obj.get("nullable") == Some(&Value::Bool(true)) && !path.is_empty() {
        match out.iter_mut().find(|(p, _)| p == path) {
            Some((_, e)) => e.nullable = true,
            None => out.push((
                path.clone(),
                CrdEntry {
                    nullable: true,
                    ..CrdEntry::default()
                },
            )),
        }
    }
    let is_object = obj.get("type").and_then(Value::as_str) == Some("object")
        || obj.contains_key("properties")
        || obj.contains_key("additionalProperties");
    if is_object && !path.is_empty() {
        let map_type = match obj.get("x-kubernetes-map-type").and_then(Value::as_str) {
            Some("atomic") => Some(MapType::Atomic),
            Some("granular") | None
                if obj
                    .get("additionalProperties")
                    .is_some_and(Value::is_object) =>
            {
                Some(MapType::Granular)
            }
            _ => None,
        };
        if let Some((_, e)) = out.iter_mut().find(|(p, _)| p == path) {
            e.map_type = e.map_type.or(map_type);
        } else if map_type.is_some() {
            out.push((
                path.clone(),
                CrdEntry {
                    list_type: None,
                    map_type,
                    nullable: false,
                    defaults: HashMap::new(),
                },
            ));
        }
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (k, sub) in props {
            path.push(k.clone());
            walk_schema(sub, path, out, crd)?;
            path.pop();
        }
    }
    if let Some(ap) = obj.get("additionalProperties")
        && ap.is_object()
    {
        path.push("*".to_string());
        walk_schema(ap, path, out, crd)?;
        path.pop();
    }
    for combinator in ["allOf", "anyOf", "oneOf"] {
        if let Some(alts) = obj.get(combinator).and_then(Value::as_array) {
            for alt in alts {
                walk_schema(alt, path, out, crd)?;
            }
        }
    }
    Ok(())
}

impl ListSemantics for CrdLists {
    fn list_type(&self, gk: &GroupKind, path: &[&str]) -> Option<ListType> {
        self.lookup(gk, path).and_then(|e| e.list_type.clone())
    }

    fn key_default(&self, gk: &GroupKind, path: &[&str], key: &str) -> Option<Value> {
        self.lookup(gk, path)
            .and_then(|e| e.defaults.get(key).cloned())
    }

    fn map_type(&self, gk: &GroupKind, path: &[&str]) -> Option<MapType> {
        self.lookup(gk, path).and_then(|e| e.map_type)
    }

    fn nullable(&self, gk: &GroupKind, path: &[&str]) -> Option<bool> {
        self.kinds.get(gk)?;
        Some(self.lookup(gk, path).is_some_and(|e| e.nullable))
    }
}

/// Several sources of list semantics: the first that answers wins, then
/// [`BuiltinLists`].
#[derive(Clone, Debug, Default)]
pub struct LayeredLists(pub Vec<Arc<dyn ListSemantics>>);

impl LayeredLists {
    /// Layers the given sources over the built-in table.
    pub fn new(layers: Vec<Arc<dyn ListSemantics>>) -> Self {
        LayeredLists(layers)
    }

    /// Adds a layer (consulted after the existing ones).
    pub fn push(&mut self, layer: Arc<dyn ListSemantics>) {
        self.0.push(layer);
    }
}

impl ListSemantics for LayeredLists {
    fn list_type(&self, gk: &GroupKind, path: &[&str]) -> Option<ListType> {
        self.0
            .iter()
            .find_map(|l| l.list_type(gk, path))
            .or_else(|| BuiltinLists.list_type(gk, path))
    }

    fn key_default(&self, gk: &GroupKind, path: &[&str], key: &str) -> Option<Value> {
        self.0
            .iter()
            .find_map(|l| l.key_default(gk, path, key))
            .or_else(|| BuiltinLists.key_default(gk, path, key))
    }

    fn map_type(&self, gk: &GroupKind, path: &[&str]) -> Option<MapType> {
        self.0
            .iter()
            .find_map(|l| l.map_type(gk, path))
            .or_else(|| BuiltinLists.map_type(gk, path))
    }

    fn nullable(&self, gk: &GroupKind, path: &[&str]) -> Option<bool> {
        self.0.iter().find_map(|l| l.nullable(gk, path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builtin_table() {
        let d = GroupKind::new("apps", "Deployment");
        let b = BuiltinLists;
        assert_eq!(
            b.list_type(&d, &["spec", "template", "spec", "containers"]),
            Some(ListType::Map(vec!["name".into()]))
        );
        assert_eq!(
            b.list_type(&d, &["spec", "template", "spec", "containers", "ports"]),
            Some(ListType::Map(vec![
                "containerPort".into(),
                "protocol".into()
            ]))
        );
        assert_eq!(
            b.list_type(&d, &["spec", "template", "spec", "containers", "args"]),
            Some(ListType::Atomic)
        );
        assert_eq!(
            b.key_default(
                &d,
                &["spec", "template", "spec", "containers", "ports"],
                "protocol"
            ),
            Some(json!("TCP"))
        );
        assert_eq!(
            b.list_type(&d, &["metadata", "finalizers"]),
            Some(ListType::Set)
        );
        let cj = GroupKind::new("batch", "CronJob");
        assert_eq!(
            b.list_type(
                &cj,
                &["spec", "jobTemplate", "spec", "template", "spec", "volumes"]
            ),
            Some(ListType::Map(vec!["name".into()]))
        );
        let svc = GroupKind::new("", "Service");
        assert_eq!(
            b.list_type(&svc, &["spec", "ports"]),
            Some(ListType::Map(vec!["port".into(), "protocol".into()]))
        );
        assert_eq!(
            b.key_default(&svc, &["spec", "ports"], "protocol"),
            Some(json!("TCP"))
        );
        assert_eq!(b.list_type(&svc, &["spec", "clusterIPs"]), None);
    }

    fn crd() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "names": {"kind": "Widget"}, "versions": [{
                "name": "v1", "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {
                        "items": {"type": "array", "x-kubernetes-list-type": "map",
                                  "x-kubernetes-list-map-keys": ["id", "zone"],
                                  "items": {"type": "object", "properties": {
                                      "id": {"type": "string"},
                                      "zone": {"type": "string", "default": "a"},
                                      "tags": {"type": "array", "x-kubernetes-list-type": "set",
                                               "items": {"type": "string"}}}}},
                        "plain": {"type": "array", "items": {"type": "string"}},
                        "byName": {"type": "object", "additionalProperties": {
                            "type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}}
                    }}
                }}}
            }]}
        })
    }

    #[test]
    fn crd_lists() {
        let l = CrdLists::from_crd(&crd()).unwrap();
        let gk = GroupKind::new("example.com", "Widget");
        assert_eq!(
            l.list_type(&gk, &["spec", "items"]),
            Some(ListType::Map(vec!["id".into(), "zone".into()]))
        );
        assert_eq!(
            l.key_default(&gk, &["spec", "items"], "zone"),
            Some(json!("a"))
        );
        assert_eq!(
            l.list_type(&gk, &["spec", "items", "tags"]),
            Some(ListType::Set)
        );
        assert_eq!(l.list_type(&gk, &["spec", "plain"]), Some(ListType::Atomic));
        assert_eq!(
            l.list_type(&gk, &["spec", "byName", "x"]),
            Some(ListType::Set)
        );
        assert_eq!(
            l.list_type(&GroupKind::new("x", "Widget"), &["spec", "items"]),
            None
        );
        let layered = LayeredLists::new(vec![Arc::new(l)]);
        assert_eq!(
            layered.list_type(&gk, &["metadata", "finalizers"]),
            Some(ListType::Set)
        );
    }

    #[test]
    fn crd_errors() {
        assert!(matches!(
            CrdLists::from_crd(&json!({"spec": {}})),
            Err(CrdError::MissingField { .. })
        ));
        let mut bad = crd();
        bad["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
            ["plain"]["x-kubernetes-list-type"] = json!("bogus");
        assert!(matches!(
            CrdLists::from_crd(&bad),
            Err(CrdError::InvalidListType { .. })
        ));
    }
}
