//! Which kinds are namespaced and which are cluster-scoped.
//!
//! Built-in kinds come from a table ([`KindRegistry::builtin`]) written from
//! the Kubernetes API reference (`kubectl api-resources` of v1.33 plus the
//! kinds earlier releases served, such as `extensions/v1beta1`). Custom kinds
//! come from the `CustomResourceDefinition`s of the same desired state
//! (`spec.group`, `spec.names.kind`, `spec.scope`) or from kinds a caller
//! registers for CRDs installed by other means. A kind found in none of these
//! is reported, never guessed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::key::GroupKind;
use crate::object::Object;

/// Where objects of a kind live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// Objects live in a namespace.
    Namespaced,
    /// Objects have no namespace.
    Cluster,
}

/// Where the registry learned about a kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KindOrigin {
    /// The built-in table.
    Builtin,
    /// A `CustomResourceDefinition` with this name.
    Crd(String),
    /// Registered by the caller.
    Registered,
}

/// What the registry knows about one kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindInfo {
    /// Namespaced or cluster-scoped.
    pub scope: Scope,
    /// Where this came from.
    pub origin: KindOrigin,
}

/// The error returned by [`KindRegistry::add_crd`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CrdError {
    /// A field a CRD needs is missing or not a string.
    #[error("CustomResourceDefinition {crd}: missing or invalid `{field}`")]
    MissingField {
        /// The CRD's name.
        crd: String,
        /// The field.
        field: &'static str,
    },
    /// `spec.scope` is neither `Namespaced` nor `Cluster`.
    #[error(
        "CustomResourceDefinition {crd}: spec.scope must be Namespaced or Cluster, not {scope:?}"
    )]
    InvalidScope {
        /// The CRD's name.
        crd: String,
        /// The value found.
        scope: String,
    },
    /// The CRD's name is not `<plural>.<group>`.
    #[error(
        "CustomResourceDefinition {crd}: metadata.name must be `{expected}` (spec.names.plural + \".\" + spec.group)"
    )]
    NameMismatch {
        /// The CRD's name.
        crd: String,
        /// The name the API server requires.
        expected: String,
    },
    /// The CRD redefines a built-in kind.
    #[error("CustomResourceDefinition {crd} defines {kind}, which is a built-in kind")]
    Builtin {
        /// The CRD's name.
        crd: String,
        /// The kind.
        kind: GroupKind,
    },
}

/// A table of kinds and their scope.
///
/// ```
/// use gitops_core::{GroupKind, KindRegistry, Scope};
/// let reg = KindRegistry::builtin();
/// assert_eq!(reg.scope(&GroupKind::new("", "Namespace")), Some(Scope::Cluster));
/// assert_eq!(reg.scope(&GroupKind::new("apps", "Deployment")), Some(Scope::Namespaced));
/// assert_eq!(reg.scope(&GroupKind::new("example.com", "Widget")), None);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindRegistry {
    #[serde(with = "kinds_as_list")]
    kinds: BTreeMap<GroupKind, KindInfo>,
}

/// JSON maps need string keys: kinds are written as a list.
mod kinds_as_list {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::KindInfo;
    use crate::key::GroupKind;

    #[derive(Serialize, Deserialize)]
    struct Entry {
        #[serde(flatten)]
        kind: GroupKind,
        #[serde(flatten)]
        info: KindInfo,
    }

    pub fn serialize<S: Serializer>(
        map: &BTreeMap<GroupKind, KindInfo>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.iter().map(|(k, i)| Entry {
            kind: k.clone(),
            info: i.clone(),
        }))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<GroupKind, KindInfo>, D::Error> {
        let list: Vec<Entry> = Vec::deserialize(d)?;
        Ok(list.into_iter().map(|e| (e.kind, e.info)).collect())
    }
}

const CLUSTER: &[(&str, &[&str])] = &[
    (
        "",
        &["Namespace", "Node", "PersistentVolume", "ComponentStatus"],
    ),
    (
        "rbac.authorization.k8s.io",
        &["ClusterRole", "ClusterRoleBinding"],
    ),
    ("apiextensions.k8s.io", &["CustomResourceDefinition"]),
    (
        "admissionregistration.k8s.io",
        &[
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
            "MutatingAdmissionPolicy",
            "MutatingAdmissionPolicyBinding",
        ],
    ),
    ("apiregistration.k8s.io", &["APIService"]),
    (
        "storage.k8s.io",
        &[
            "StorageClass",
            "VolumeAttachment",
            "CSIDriver",
            "CSINode",
            "VolumeAttributesClass",
        ],
    ),
    ("scheduling.k8s.io", &["PriorityClass"]),
    ("node.k8s.io", &["RuntimeClass"]),
    (
        "certificates.k8s.io",
        &["CertificateSigningRequest", "ClusterTrustBundle"],
    ),
    (
        "flowcontrol.apiserver.k8s.io",
        &["FlowSchema", "PriorityLevelConfiguration"],
    ),
    (
        "networking.k8s.io",
        &["IngressClass", "IPAddress", "ServiceCIDR"],
    ),
    ("policy", &["PodSecurityPolicy"]),
    ("resource.k8s.io", &["DeviceClass", "ResourceSlice"]),
    (
        "authentication.k8s.io",
        &["TokenReview", "SelfSubjectReview"],
    ),
    (
        "authorization.k8s.io",
        &[
            "SubjectAccessReview",
            "SelfSubjectAccessReview",
            "SelfSubjectRulesReview",
        ],
    ),
];

const NAMESPACED: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "ConfigMap",
            "Secret",
            "Service",
            "ServiceAccount",
            "Pod",
            "PodTemplate",
            "ReplicationController",
            "PersistentVolumeClaim",
            "Endpoints",
            "Event",
            "LimitRange",
            "ResourceQuota",
            "Binding",
        ],
    ),
    (
        "apps",
        &[
            "Deployment",
            "StatefulSet",
            "DaemonSet",
            "ReplicaSet",
            "ControllerRevision",
        ],
    ),
    ("batch", &["Job", "CronJob"]),
    ("autoscaling", &["HorizontalPodAutoscaler"]),
    ("policy", &["PodDisruptionBudget"]),
    ("networking.k8s.io", &["Ingress", "NetworkPolicy"]),
    ("rbac.authorization.k8s.io", &["Role", "RoleBinding"]),
    ("discovery.k8s.io", &["EndpointSlice"]),
    ("coordination.k8s.io", &["Lease"]),
    ("events.k8s.io", &["Event"]),
    ("storage.k8s.io", &["CSIStorageCapacity"]),
    (
        "resource.k8s.io",
        &["ResourceClaim", "ResourceClaimTemplate"],
    ),
    (
        "extensions",
        &[
            "Deployment",
            "DaemonSet",
            "ReplicaSet",
            "Ingress",
            "NetworkPolicy",
        ],
    ),
    ("authorization.k8s.io", &["LocalSubjectAccessReview"]),
];

impl KindRegistry {
    /// An empty registry (no kinds at all).
    pub fn empty() -> Self {
        Self::default()
    }

    /// The built-in Kubernetes kinds.
    pub fn builtin() -> Self {
        let mut kinds = BTreeMap::new();
        for (table, scope) in [(CLUSTER, Scope::Cluster), (NAMESPACED, Scope::Namespaced)] {
            for (group, names) in table {
                for kind in *names {
                    kinds.insert(
                        GroupKind::new(*group, *kind),
                        KindInfo {
                            scope,
                            origin: KindOrigin::Builtin,
                        },
                    );
                }
            }
        }
        Self { kinds }
    }

    /// Registers a kind (for CRDs installed outside this desired state).
    pub fn register(&mut self, kind: GroupKind, scope: Scope) -> &mut Self {
        self.kinds.insert(
            kind,
            KindInfo {
                scope,
                origin: KindOrigin::Registered,
            },
        );
        self
    }

    /// Forgets a kind (a CRD was deleted).
    pub fn remove(&mut self, kind: &GroupKind) -> Option<KindInfo> {
        self.kinds.remove(kind)
    }

    /// The scope of a kind, if known.
    pub fn scope(&self, kind: &GroupKind) -> Option<Scope> {
        self.kinds.get(kind).map(|i| i.scope)
    }

    /// What is known of a kind.
    pub fn get(&self, kind: &GroupKind) -> Option<&KindInfo> {
        self.kinds.get(kind)
    }

    /// Whether the kind is one of the built-in table.
    pub fn is_builtin(&self, kind: &GroupKind) -> bool {
        matches!(
            self.kinds.get(kind),
            Some(KindInfo {
                origin: KindOrigin::Builtin,
                ..
            })
        )
    }

    /// All known kinds, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&GroupKind, &KindInfo)> {
        self.kinds.iter()
    }

    /// Learns the kind a `CustomResourceDefinition` object defines (and its
    /// `listKind`), returning it.
    pub fn add_crd(&mut self, crd: &Object) -> Result<GroupKind, CrdError> {
        let (kind, scope, list_kind) = crd_kind(crd)?;
        if self.is_builtin(&kind) {
            return Err(CrdError::Builtin {
                crd: crd.name().to_owned(),
                kind,
            });
        }
        let origin = KindOrigin::Crd(crd.name().to_owned());
        self.kinds.insert(
            kind.clone(),
            KindInfo {
                scope,
                origin: origin.clone(),
            },
        );
        if let Some(list_kind) = list_kind {
            self.kinds
                .entry(GroupKind::new(kind.group.clone(), list_kind))
                .or_insert(KindInfo { scope, origin });
        }
        Ok(kind)
    }
}

/// Reads group/kind, scope and list kind of a `CustomResourceDefinition`.
pub fn crd_kind(crd: &Object) -> Result<(GroupKind, Scope, Option<String>), CrdError> {
    let name = crd.name().to_owned();
    let v = crd.as_value();
    let field = |ptr: &str, field: &'static str| {
        v.pointer(ptr)
            .and_then(|x| x.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or(CrdError::MissingField {
                crd: name.clone(),
                field,
            })
    };
    let group = field("/spec/group", "spec.group")?;
    let kind = field("/spec/names/kind", "spec.names.kind")?;
    let plural = field("/spec/names/plural", "spec.names.plural")?;
    let scope = match field("/spec/scope", "spec.scope")?.as_str() {
        "Namespaced" => Scope::Namespaced,
        "Cluster" => Scope::Cluster,
        other => {
            return Err(CrdError::InvalidScope {
                crd: name,
                scope: other.to_owned(),
            });
        }
    };
    let expected = format!("{plural}.{group}");
    if expected != name {
        return Err(CrdError::NameMismatch {
            crd: name,
            expected,
        });
    }
    let list_kind = v
        .pointer("/spec/names/listKind")
        .and_then(|x| x.as_str())
        .map(str::to_owned);
    Ok((GroupKind::new(group, kind), scope, list_kind))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn crd_defines_a_kind() {
        let crd = Object::new(json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Cluster",
                     "names": {"kind": "Widget", "plural": "widgets", "listKind": "WidgetList"}}
        }))
        .unwrap();
        let mut reg = KindRegistry::builtin();
        let gk = reg.add_crd(&crd).unwrap();
        assert_eq!(reg.scope(&gk), Some(Scope::Cluster));
        assert_eq!(
            reg.scope(&GroupKind::new("example.com", "WidgetList")),
            Some(Scope::Cluster)
        );
        assert!(
            matches!(reg.get(&gk).unwrap().origin, KindOrigin::Crd(ref n) if n == "widgets.example.com")
        );
    }

    #[test]
    fn crd_errors() {
        let bad = Object::new(json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "gadgets.example.com"},
            "spec": {"group": "example.com", "scope": "Cluster", "names": {"kind": "Widget", "plural": "widgets"}}
        }))
        .unwrap();
        assert!(matches!(
            KindRegistry::builtin().add_crd(&bad),
            Err(CrdError::NameMismatch { .. })
        ));
    }
}
