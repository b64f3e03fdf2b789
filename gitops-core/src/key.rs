//! Object identity: [`ObjectKey`], [`GroupVersion`] and [`GroupKind`].

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// An API group and kind (shared with `gitops-diff`, whose field sets and
/// list semantics are keyed by it).
pub use gitops_diff::GroupKind;

/// An `apiVersion` split into its group and version.
///
/// ```
/// use gitops_core::GroupVersion;
/// let gv = GroupVersion::parse("apps/v1").unwrap();
/// assert_eq!((gv.group.as_str(), gv.version.as_str()), ("apps", "v1"));
/// let core = GroupVersion::parse("v1").unwrap();
/// assert_eq!((core.group.as_str(), core.version.as_str()), ("", "v1"));
/// assert!(GroupVersion::parse("a/b/c").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GroupVersion {
    /// API group, `""` for the core group.
    pub group: String,
    /// Version, for example `v1` or `v1alpha1`.
    pub version: String,
}

/// The error returned by [`GroupVersion::parse`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid apiVersion {api_version:?}: {reason}")]
pub struct ApiVersionError {
    /// The value that was given.
    pub api_version: String,
    /// Why it is not valid.
    pub reason: &'static str,
}

impl GroupVersion {
    /// Parses `v1`, `apps/v1` or `example.com/v1alpha1`.
    pub fn parse(api_version: &str) -> Result<Self, ApiVersionError> {
        let err = |reason| ApiVersionError {
            api_version: api_version.to_owned(),
            reason,
        };
        if api_version.is_empty() {
            return Err(err("it is empty"));
        }
        let (group, version) = match api_version.split_once('/') {
            None => ("", api_version),
            Some((g, v)) => {
                if g.is_empty() {
                    return Err(err("the group before '/' is empty"));
                }
                if v.contains('/') {
                    return Err(err("it has more than one '/'"));
                }
                if crate::validate::dns1123_subdomain(g).is_err() {
                    return Err(err("the group is not a DNS subdomain"));
                }
                (g, v)
            }
        };
        if version.is_empty() {
            return Err(err("the version after '/' is empty"));
        }
        if crate::validate::dns1123_label(version).is_err() {
            return Err(err("the version is not a lowercase DNS label"));
        }
        Ok(Self {
            group: group.to_owned(),
            version: version.to_owned(),
        })
    }

    /// The `apiVersion` string again (`v1`, `apps/v1`).
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

impl fmt::Display for GroupVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.api_version())
    }
}

/// The identity of an object: group, kind, namespace and name.
///
/// The API version is deliberately not part of it: the same object is served
/// under several versions (`apps/v1beta1` and `apps/v1` Deployments are one
/// object). Keys order by group, kind, namespace (cluster-scoped first) and
/// name, which gives every collection keyed by them a deterministic order.
///
/// A key is shared: its [fields](KeyFields) are read through it
/// (`key.name`), and cloning it counts a reference instead of copying four
/// strings. Every collection of a sync (the desired state, the plan, the
/// inventory, the records of what is in sync) holds the same keys, and two
/// clones of one key compare equal without reading their text. Changing a
/// field of a key that is shared copies it first (copy on write).
///
/// ```
/// use gitops_core::ObjectKey;
/// let key = ObjectKey::new("apps", "Deployment", Some("shop"), "web");
/// let copy = key.clone(); // a reference count, not four strings
/// assert_eq!(copy, key);
/// assert_eq!((key.kind.as_str(), key.namespace.as_deref()), ("Deployment", Some("shop")));
/// let mut renamed = key.clone();
/// renamed.name = "api".to_owned(); // copies the shared fields first
/// assert_eq!((key.name.as_str(), renamed.name.as_str()), ("web", "api"));
/// ```
#[derive(Clone)]
pub struct ObjectKey(Arc<KeyFields>);

/// The fields of an [`ObjectKey`], which reads them (`key.name`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct KeyFields {
    /// API group, `""` for the core group.
    pub group: String,
    /// Kind, for example `Deployment`.
    pub kind: String,
    /// Namespace; `None` for cluster-scoped objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Object name.
    pub name: String,
}

impl ObjectKey {
    /// Builds a key; pass `None` as namespace for cluster-scoped objects.
    pub fn new(
        group: impl Into<String>,
        kind: impl Into<String>,
        namespace: Option<&str>,
        name: impl Into<String>,
    ) -> Self {
        Self::from(KeyFields {
            group: group.into(),
            kind: kind.into(),
            namespace: namespace.map(str::to_owned),
            name: name.into(),
        })
    }

    /// The group and kind of this key.
    pub fn group_kind(&self) -> GroupKind {
        GroupKind::new(self.group.clone(), self.kind.clone())
    }

    /// Whether this key names an object of the given group and kind.
    pub fn is(&self, group: &str, kind: &str) -> bool {
        self.group == group && self.kind == kind
    }

    /// The fields, copied only when the key is shared.
    pub fn into_fields(self) -> KeyFields {
        Arc::unwrap_or_clone(self.0)
    }

    /// Whether `a` and `b` are clones of one key (then they are equal,
    /// without their text being compared).
    pub fn same(a: &Self, b: &Self) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }
}

impl From<KeyFields> for ObjectKey {
    fn from(fields: KeyFields) -> Self {
        Self(Arc::new(fields))
    }
}

impl std::ops::Deref for ObjectKey {
    type Target = KeyFields;

    fn deref(&self) -> &KeyFields {
        &self.0
    }
}

impl std::ops::DerefMut for ObjectKey {
    /// Copy on write: the fields are copied first when the key is shared.
    fn deref_mut(&mut self) -> &mut KeyFields {
        Arc::make_mut(&mut self.0)
    }
}

impl PartialEq for ObjectKey {
    fn eq(&self, other: &Self) -> bool {
        Self::same(self, other) || *self.0 == *other.0
    }
}

impl Eq for ObjectKey {}

impl PartialOrd for ObjectKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ObjectKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if Self::same(self, other) {
            std::cmp::Ordering::Equal
        } else {
            self.0.cmp(&other.0)
        }
    }
}

impl std::hash::Hash for ObjectKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl fmt::Debug for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectKey")
            .field("group", &self.group)
            .field("kind", &self.kind)
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .finish()
    }
}

impl Serialize for ObjectKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ObjectKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        KeyFields::deserialize(deserializer).map(Self::from)
    }
}

impl fmt::Display for ObjectKey {
    /// `Deployment.apps/shop/web`, `Namespace/shop`, for people: control
    /// characters and bidirectional overrides are
    /// [escaped](crate::escape), so a key cannot forge a line of a plan, a
    /// report or an error.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write as _;
        let f = &mut gitops_diff::escape::EscapeWriter::new(f);
        if self.group.is_empty() {
            write!(f, "{}", self.kind)?;
        } else {
            write!(f, "{}.{}", self.kind, self.group)?;
        }
        if let Some(ns) = &self.namespace {
            write!(f, "/{ns}")?;
        }
        write!(f, "/{}", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_api_versions() {
        let gv = GroupVersion::parse("example.com/v1alpha1").unwrap();
        assert_eq!(gv.group, "example.com");
        assert_eq!(gv.version, "v1alpha1");
        assert_eq!(gv.api_version(), "example.com/v1alpha1");
        for bad in ["", "/v1", "apps/", "a/b/c", "Apps/v1", "apps/V1"] {
            assert!(GroupVersion::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn key_display_and_order() {
        let a = ObjectKey::new("apps", "Deployment", Some("shop"), "web");
        assert_eq!(a.to_string(), "Deployment.apps/shop/web");
        let ns = ObjectKey::new("", "Namespace", None, "shop");
        assert_eq!(ns.to_string(), "Namespace/shop");
        let cluster = ObjectKey::new("apps", "Deployment", None, "zzz");
        assert!(cluster < a, "cluster-scoped keys sort first within a kind");
    }

    #[test]
    fn shared_keys_compare_write_and_read_as_their_fields() {
        let a = ObjectKey::new("apps", "Deployment", Some("shop"), "web");
        let b = ObjectKey::new("apps", "Deployment", Some("shop"), "web");
        assert!(!ObjectKey::same(&a, &b));
        assert_eq!(a, b, "equal text, equal keys");
        let clone = a.clone();
        assert!(ObjectKey::same(&a, &clone));
        // Written as before the key was shared: four fields, no namespace
        // for a cluster-scoped key.
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            serde_json::json!({"group": "apps", "kind": "Deployment", "namespace": "shop", "name": "web"})
        );
        let ns = ObjectKey::new("", "Namespace", None, "shop");
        let text = serde_json::to_string(&ns).unwrap();
        assert_eq!(text, r#"{"group":"","kind":"Namespace","name":"shop"}"#);
        assert_eq!(serde_json::from_str::<ObjectKey>(&text).unwrap(), ns);
        assert_eq!(
            format!("{ns:?}"),
            r#"ObjectKey { group: "", kind: "Namespace", namespace: None, name: "shop" }"#
        );
        // Copy on write: a change leaves the other clones as they were.
        let mut renamed = clone.clone();
        renamed.name = "api".to_owned();
        assert_eq!((clone.name.as_str(), renamed.name.as_str()), ("web", "api"));
        assert!(renamed < a);
        assert_eq!(renamed.clone().into_fields().name, "api");
        // Hashed by the fields, whichever clone.
        let state = std::hash::RandomState::new();
        assert_eq!(
            std::hash::BuildHasher::hash_one(&state, &a),
            std::hash::BuildHasher::hash_one(&state, &b)
        );
    }
}
