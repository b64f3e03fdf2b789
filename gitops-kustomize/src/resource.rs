//! Resources as kustomize tracks them: the object plus its id history.

use serde_json::{Map, Value};

use crate::origin::Origin;

/// Group, version, kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gvk {
    /// API group (empty for the core group).
    pub group: String,
    /// API version.
    pub version: String,
    /// Kind.
    pub kind: String,
}

impl Gvk {
    /// Splits an `apiVersion` and takes a kind.
    pub fn from_api_version(api_version: &str, kind: &str) -> Self {
        let (group, version) = match api_version.rsplit_once('/') {
            Some((g, v)) => (g.to_owned(), v.to_owned()),
            None => (String::new(), api_version.to_owned()),
        };
        Self {
            group,
            version,
            kind: kind.to_owned(),
        }
    }

    /// Whether this gvk is selected by `sel` (empty fields of `sel` match anything).
    pub fn is_selected(&self, sel: &Gvk) -> bool {
        (sel.group.is_empty() || sel.group == self.group)
            && (sel.version.is_empty() || sel.version == self.version)
            && (sel.kind.is_empty() || sel.kind == self.kind)
    }

    /// Whether the kind is cluster-scoped per kustomize's built-in schema
    /// (Kubernetes 1.21; kinds it does not know are namespaced).
    pub fn is_cluster_scoped(&self) -> bool {
        CLUSTER_SCOPED.iter().any(|(g, k, vs)| {
            *g == self.group
                && *k == self.kind
                && (vs.is_empty() || vs.contains(&self.version.as_str()))
        })
    }
}

/// Cluster-scoped kinds of kustomize's built-in schema: (group, kind, versions; empty = all).
const CLUSTER_SCOPED: &[(&str, &str, &[&str])] = &[
    ("", "Namespace", &[]),
    ("", "Node", &[]),
    ("", "PersistentVolume", &[]),
    ("", "ComponentStatus", &[]),
    ("rbac.authorization.k8s.io", "ClusterRole", &[]),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding", &[]),
    ("apiextensions.k8s.io", "CustomResourceDefinition", &[]),
    ("storage.k8s.io", "StorageClass", &[]),
    ("storage.k8s.io", "CSIDriver", &[]),
    ("storage.k8s.io", "CSINode", &[]),
    ("storage.k8s.io", "VolumeAttachment", &[]),
    ("scheduling.k8s.io", "PriorityClass", &[]),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
        &[],
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
        &[],
    ),
    ("apiregistration.k8s.io", "APIService", &[]),
    ("certificates.k8s.io", "CertificateSigningRequest", &[]),
    ("networking.k8s.io", "IngressClass", &[]),
    ("node.k8s.io", "RuntimeClass", &[]),
    ("policy", "PodSecurityPolicy", &[]),
    ("authentication.k8s.io", "TokenReview", &[]),
    ("authorization.k8s.io", "SubjectAccessReview", &[]),
    ("authorization.k8s.io", "SelfSubjectAccessReview", &[]),
    ("authorization.k8s.io", "SelfSubjectRulesReview", &[]),
    (
        "flowcontrol.apiserver.k8s.io",
        "FlowSchema",
        &["v1alpha1", "v1beta1"],
    ),
    (
        "flowcontrol.apiserver.k8s.io",
        "PriorityLevelConfiguration",
        &["v1alpha1", "v1beta1"],
    ),
];

/// A resource id: gvk, namespace and name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ResId {
    /// Group, version, kind.
    pub gvk: Gvk,
    /// Name.
    pub name: String,
    /// Namespace (empty when unset).
    pub namespace: String,
}

impl ResId {
    /// The namespace with `""` read as `default` (cluster-scoped kinds have none).
    pub fn effective_namespace(&self) -> &str {
        if self.gvk.is_cluster_scoped() {
            ""
        } else if self.namespace.is_empty() {
            "default"
        } else {
            &self.namespace
        }
    }

    /// kustomize's id equality: same gvk and name, namespaces equal with `""` = `default`.
    pub fn equals(&self, o: &ResId) -> bool {
        self.gvk == o.gvk
            && self.name == o.name
            && self.effective_namespace() == o.effective_namespace()
    }
}

impl std::fmt::Display for ResId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = &self.gvk;
        if g.group.is_empty() {
            write!(f, "{}/{}", g.version, g.kind)?;
        } else {
            write!(f, "{}/{}/{}", g.group, g.version, g.kind)?;
        }
        if self.namespace.is_empty() {
            write!(f, " {}", self.name)
        } else {
            write!(f, " {}/{}", self.namespace, self.name)
        }
    }
}

/// How a generated resource combines with an existing one of the same id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behavior {
    /// A new resource (conflicts are errors).
    Create,
    /// Merged into the existing resource.
    Merge,
    /// Replaces the existing resource.
    Replace,
}

/// A resource in a build.
#[derive(Clone, Debug)]
pub struct Resource {
    /// The object.
    pub obj: Value,
    /// Ids this resource had before its current one (oldest first).
    pub prev: Vec<ResId>,
    /// Name prefixes applied to it (innermost first).
    pub prefixes: Vec<String>,
    /// Name suffixes applied to it.
    pub suffixes: Vec<String>,
    /// Set for generated resources whose name gets a content hash at the end of the build.
    pub needs_hash: bool,
    /// Set for generated resources: how they combine with existing ones.
    pub behavior: Option<Behavior>,
    /// Where it came from and the files that changed it (never in the output object).
    pub origin: Origin,
    /// Set by a transformation that changed the object; the build attributes
    /// the change to a file and clears it (see [`Resource::attribute`]).
    pub changed: bool,
}

pub(crate) fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

impl Resource {
    /// A resource from an object read from `origin`.
    pub fn new(obj: Value, origin: Origin) -> Self {
        Self {
            obj,
            prev: Vec::new(),
            prefixes: Vec::new(),
            suffixes: Vec::new(),
            needs_hash: false,
            behavior: None,
            origin,
            changed: false,
        }
    }

    /// Records `file` as having changed the object if a transformation
    /// marked it changed since the last attribution, and clears the mark.
    pub fn attribute(&mut self, file: &str) {
        if std::mem::take(&mut self.changed) {
            self.origin.touched(file);
        }
    }

    /// The object's gvk.
    pub fn gvk(&self) -> Gvk {
        Gvk::from_api_version(
            str_at(&self.obj, &["apiVersion"]).unwrap_or(""),
            str_at(&self.obj, &["kind"]).unwrap_or(""),
        )
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        str_at(&self.obj, &["metadata", "name"]).unwrap_or("")
    }

    /// `metadata.namespace`.
    pub fn namespace(&self) -> &str {
        str_at(&self.obj, &["metadata", "namespace"]).unwrap_or("")
    }

    /// The current id.
    pub fn cur_id(&self) -> ResId {
        ResId {
            gvk: self.gvk(),
            name: self.name().to_owned(),
            namespace: self.namespace().to_owned(),
        }
    }

    /// The original id (before any rename).
    pub fn org_id(&self) -> ResId {
        self.prev.first().cloned().unwrap_or_else(|| self.cur_id())
    }

    /// Whether `id` equals this resource's current id ([`ResId::equals`]),
    /// compared in place (no id is built).
    pub fn has_id(&self, id: &ResId) -> bool {
        fn namespace(ns: &str) -> &str {
            if ns.is_empty() { "default" } else { ns }
        }
        let same_group_version = || {
            let api_version = str_at(&self.obj, &["apiVersion"]).unwrap_or("");
            let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
            group == id.gvk.group && version == id.gvk.version
        };
        // The name first: it tells most resources apart.
        self.name() == id.name
            && str_at(&self.obj, &["kind"]).unwrap_or("") == id.gvk.kind
            && same_group_version()
            && (id.gvk.is_cluster_scoped()
                || namespace(self.namespace()) == namespace(&id.namespace))
    }

    /// Whether `id` is this resource's current id or one of its previous ids.
    pub fn matches_any_id(&self, id: &ResId) -> bool {
        self.has_id(id) || self.prev.iter().any(|p| p.equals(id))
    }

    /// Records the current id as a previous id.
    pub fn store_prev(&mut self) {
        let id = self.cur_id();
        self.prev.push(id);
    }

    /// The metadata map, created when missing.
    pub fn metadata_mut(&mut self) -> &mut Map<String, Value> {
        let root = ensure_obj(&mut self.obj);
        ensure_obj(root.entry("metadata").or_insert(Value::Null))
    }

    /// Sets `metadata.name` (marks the resource changed if it was another).
    pub fn set_name(&mut self, name: &str) {
        if self
            .obj
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            != Some(name)
        {
            self.changed = true;
            self.metadata_mut()
                .insert("name".into(), Value::String(name.to_owned()));
        }
    }

    /// Sets `metadata.namespace` (marks the resource changed if it was another).
    pub fn set_namespace(&mut self, ns: &str) {
        if self
            .obj
            .get("metadata")
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            != Some(ns)
        {
            self.changed = true;
            self.metadata_mut()
                .insert("namespace".into(), Value::String(ns.to_owned()));
        }
    }

    /// A label or annotation map entry.
    pub fn meta_map(&self, field: &str) -> Option<&Map<String, Value>> {
        self.obj.get("metadata")?.get(field)?.as_object()
    }
}

/// Sets `slot` to `new`; whether that changed it.
pub(crate) fn assign(slot: &mut Value, new: Value) -> bool {
    if *slot == new {
        false
    } else {
        *slot = new;
        true
    }
}

/// Makes `v` an object (replacing any other value) and returns its map.
pub(crate) fn ensure_obj(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    match v {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_id_is_equality_of_the_current_id() {
        let objs = [
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}),
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "default"}}),
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "x"}}),
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a", "namespace": "x"}}),
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}),
            serde_json::json!({"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "a"}}),
            serde_json::json!({"apiVersion": "v2", "kind": "ConfigMap", "metadata": {"name": "b"}}),
            serde_json::json!({"kind": "ConfigMap", "metadata": {"name": "a"}}),
            serde_json::json!({}),
        ];
        let rs: Vec<Resource> = objs
            .into_iter()
            .map(|o| Resource::new(o, Origin::new("f.yaml", 0)))
            .collect();
        for r in &rs {
            for other in &rs {
                let id = other.cur_id();
                assert_eq!(r.has_id(&id), r.cur_id().equals(&id), "{r:?} / {id}");
            }
        }
    }
}
