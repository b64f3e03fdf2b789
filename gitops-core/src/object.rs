//! [`Object`]: a validated Kubernetes manifest.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::key::{ApiVersionError, GroupKind, GroupVersion, ObjectKey};
use crate::validate::{self, NameRule};

/// Why a manifest is not a valid Kubernetes object.
///
/// Each variant names the field at fault; the renderer adds the file and
/// document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ObjectError {
    /// The document is not a mapping (for example a bare string or list).
    #[error("the document is not a mapping but {found}")]
    NotAMapping {
        /// What was found instead (`a string`, `a list`, ...).
        found: &'static str,
    },
    /// A required field is absent or empty.
    #[error("missing required field `{field}`")]
    MissingField {
        /// Dotted path of the field, such as `metadata.name`.
        field: &'static str,
    },
    /// A field has the wrong JSON type.
    #[error("field `{field}` must be {expected}")]
    WrongType {
        /// Dotted path of the field.
        field: String,
        /// The expected type (`a string`, `a mapping of strings`, ...).
        expected: &'static str,
    },
    /// `apiVersion` is not `version` or `group/version`.
    #[error(transparent)]
    InvalidApiVersion(#[from] ApiVersionError),
    /// `kind` is not a valid kind name.
    #[error("invalid kind {kind:?}: must start with a letter and contain only letters and digits")]
    InvalidKind {
        /// The kind given.
        kind: String,
    },
    /// `metadata.name` breaks the naming rule of its kind.
    #[error("invalid metadata.name {name:?} for kind {kind} ({rule}): {reason}")]
    InvalidName {
        /// Kind of the object.
        kind: String,
        /// The name given.
        name: String,
        /// The rule that applies to this kind.
        rule: NameRule,
        /// What is wrong.
        reason: String,
    },
    /// `metadata.namespace` is not an RFC 1123 label.
    #[error("invalid metadata.namespace {namespace:?}: {reason}")]
    InvalidNamespace {
        /// The namespace given.
        namespace: String,
        /// What is wrong.
        reason: String,
    },
    /// A label key is not a qualified name.
    #[error("invalid label key {key:?}: {reason}")]
    InvalidLabelKey {
        /// The key given.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A label value is not valid.
    #[error("invalid value {value:?} for label {key:?}: {reason}")]
    InvalidLabelValue {
        /// The label key.
        key: String,
        /// The value given.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// An annotation key is not a qualified name.
    #[error("invalid annotation key {key:?}: {reason}")]
    InvalidAnnotationKey {
        /// The key given.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

/// A validated Kubernetes object: a JSON mapping with a valid `apiVersion`,
/// `kind`, `metadata.name`, optional valid `metadata.namespace`, and valid
/// labels and annotation keys.
///
/// ```
/// use gitops_core::Object;
/// use serde_json::json;
/// let o = Object::new(json!({
///     "apiVersion": "apps/v1", "kind": "Deployment",
///     "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
///     "spec": {"replicas": 2}
/// })).unwrap();
/// assert_eq!(o.key().to_string(), "Deployment.apps/shop/web");
/// assert_eq!(o.labels().get("app").map(String::as_str), Some("web"));
/// assert!(Object::new(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}})).is_err());
/// ```
///
/// `Debug` masks a Secret's values (see [`gitops_diff::secrets`]);
/// serialisation does not (it is how the object is sent to a runtime).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub struct Object {
    // Shared: cloning an object (the renderer's cache, plans, reports) is a
    // reference-count bump; the setters copy on write.
    inner: Arc<Inner>,
}

impl fmt::Debug for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = gitops_diff::secrets::mask_object(&self.key().group_kind(), self.as_value());
        f.debug_struct("Object")
            .field("key", self.key())
            .field("value", &value)
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Inner {
    value: Value,
    key: ObjectKey,
    group_version: GroupVersion,
    // Read for every object of every plan: kept beside the value, whose
    // nested maps cost several cache misses per lookup.
    /// `apiVersion` as written.
    api_version: String,
    /// The annotations of this toolkit ([`OWN_PREFIX`]), in
    /// `metadata.annotations` order.
    own_annotations: Vec<(String, String)>,
}

/// The prefix of the annotations this toolkit reads (sync wave, prune).
const OWN_PREFIX: &str = "gitops-rs.io/";

/// Mappings up to this many entries are searched entry by entry rather
/// than by hash ([`field`]).
const SCANNED_FIELDS: usize = 8;

/// `map[name]`. The fields of a manifest's top level and metadata are few:
/// comparing their names in order costs less than hashing `name`.
fn field<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if map.len() <= SCANNED_FIELDS {
        map.iter().find_map(|(k, v)| (k == name).then_some(v))
    } else {
        map.get(name)
    }
}

/// The annotations of `meta` whose key starts with [`OWN_PREFIX`].
fn own_annotations(meta: &Map<String, Value>) -> Vec<(String, String)> {
    field(meta, "annotations")
        .and_then(Value::as_object)
        .map(|a| {
            a.iter()
                .filter(|(k, _)| k.starts_with(OWN_PREFIX))
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn str_field<'a>(
    map: &'a Map<String, Value>,
    name: &'static str,
    path: &'static str,
) -> Result<Option<&'a str>, ObjectError> {
    match field(map, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ObjectError::WrongType {
            field: path.to_owned(),
            expected: "a string",
        }),
    }
}

fn string_map<'a>(
    meta: &'a Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'a Map<String, Value>>, ObjectError> {
    match field(meta, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => {
            for (k, v) in m {
                if !v.is_string() {
                    return Err(ObjectError::WrongType {
                        field: format!("metadata.{name}.{k}"),
                        expected: "a string",
                    });
                }
            }
            Ok(Some(m))
        }
        Some(_) => Err(ObjectError::WrongType {
            field: format!("metadata.{name}"),
            expected: "a mapping of strings",
        }),
    }
}

impl Object {
    /// Validates a manifest and wraps it.
    pub fn new(value: Value) -> Result<Self, ObjectError> {
        let map = value.as_object().ok_or(ObjectError::NotAMapping {
            found: type_name(&value),
        })?;
        let api_version =
            str_field(map, "apiVersion", "apiVersion")?.ok_or(ObjectError::MissingField {
                field: "apiVersion",
            })?;
        let group_version = GroupVersion::parse(api_version)?;
        let kind =
            str_field(map, "kind", "kind")?.ok_or(ObjectError::MissingField { field: "kind" })?;
        if !kind.starts_with(|c: char| c.is_ascii_alphabetic())
            || !kind.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(ObjectError::InvalidKind {
                kind: kind.to_owned(),
            });
        }
        let meta = match field(map, "metadata") {
            None | Some(Value::Null) => {
                return Err(ObjectError::MissingField { field: "metadata" });
            }
            Some(Value::Object(m)) => m,
            Some(_) => {
                return Err(ObjectError::WrongType {
                    field: "metadata".into(),
                    expected: "a mapping",
                });
            }
        };
        let name = str_field(meta, "name", "metadata.name")?.ok_or(ObjectError::MissingField {
            field: "metadata.name",
        })?;
        let rule = NameRule::for_kind(&group_version.group, kind);
        rule.check(name)
            .map_err(|reason| ObjectError::InvalidName {
                kind: kind.to_owned(),
                name: name.to_owned(),
                rule,
                reason,
            })?;
        let namespace = str_field(meta, "namespace", "metadata.namespace")?;
        if let Some(ns) = namespace {
            validate::dns1123_label(ns).map_err(|reason| ObjectError::InvalidNamespace {
                namespace: ns.to_owned(),
                reason,
            })?;
        }
        if let Some(labels) = string_map(meta, "labels")? {
            for (k, v) in labels {
                validate::qualified_name(k).map_err(|reason| ObjectError::InvalidLabelKey {
                    key: k.clone(),
                    reason,
                })?;
                let v = v.as_str().unwrap_or_default();
                validate::label_value(v).map_err(|reason| ObjectError::InvalidLabelValue {
                    key: k.clone(),
                    value: v.to_owned(),
                    reason,
                })?;
            }
        }
        if let Some(annotations) = string_map(meta, "annotations")? {
            for k in annotations.keys() {
                validate::qualified_name(k).map_err(|reason| {
                    ObjectError::InvalidAnnotationKey {
                        key: k.clone(),
                        reason,
                    }
                })?;
            }
        }
        let key = ObjectKey::new(group_version.group.clone(), kind, namespace, name);
        let api_version = api_version.to_owned();
        let own_annotations = own_annotations(meta);
        Ok(Self {
            inner: Arc::new(Inner {
                value,
                key,
                group_version,
                api_version,
                own_annotations,
            }),
        })
    }

    /// The object's identity.
    pub fn key(&self) -> &ObjectKey {
        &self.inner.key
    }

    /// Group and kind.
    pub fn group_kind(&self) -> GroupKind {
        self.inner.key.group_kind()
    }

    /// The parsed `apiVersion`.
    pub fn group_version(&self) -> &GroupVersion {
        &self.inner.group_version
    }

    /// The `apiVersion` string as written.
    pub fn api_version(&self) -> &str {
        &self.inner.api_version
    }

    /// `kind`.
    pub fn kind(&self) -> &str {
        &self.inner.key.kind
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        &self.inner.key.name
    }

    /// `metadata.namespace`, if set.
    pub fn namespace(&self) -> Option<&str> {
        self.inner.key.namespace.as_deref()
    }

    fn meta_map(&self, field: &str) -> BTreeMap<String, String> {
        self.inner
            .value
            .get("metadata")
            .and_then(|m| m.get(field))
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `metadata.labels`.
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.meta_map("labels")
    }

    /// `metadata.annotations`.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        self.meta_map("annotations")
    }

    /// One label's value.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.inner
            .value
            .get("metadata")?
            .get("labels")?
            .get(key)?
            .as_str()
    }

    /// One annotation's value.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        if key.starts_with(OWN_PREFIX) {
            return self
                .inner
                .own_annotations
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str());
        }
        self.inner
            .value
            .get("metadata")?
            .get("annotations")?
            .get(key)?
            .as_str()
    }

    /// The whole manifest.
    pub fn as_value(&self) -> &Value {
        &self.inner.value
    }

    /// The manifest, consuming the object.
    pub fn into_value(self) -> Value {
        Arc::try_unwrap(self.inner)
            .map(|i| i.value)
            .unwrap_or_else(|shared| shared.value.clone())
    }

    fn metadata_mut(&mut self) -> &mut Map<String, Value> {
        let root = match &mut Arc::make_mut(&mut self.inner).value {
            Value::Object(m) => m,
            // `new` only accepts mappings, and nothing replaces the root.
            other => {
                *other = Value::Object(Map::new());
                match other {
                    Value::Object(m) => m,
                    _ => unreachable!("just assigned a mapping"),
                }
            }
        };
        let meta = root
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if !meta.is_object() {
            *meta = Value::Object(Map::new());
        }
        match meta {
            Value::Object(m) => m,
            _ => unreachable!("just made a mapping"),
        }
    }

    /// Sets or clears `metadata.namespace`; the key follows.
    ///
    /// The namespace must be a valid RFC 1123 label.
    pub fn set_namespace(&mut self, namespace: Option<&str>) -> Result<(), ObjectError> {
        match namespace {
            Some(ns) => {
                validate::dns1123_label(ns).map_err(|reason| ObjectError::InvalidNamespace {
                    namespace: ns.to_owned(),
                    reason,
                })?;
                self.metadata_mut()
                    .insert("namespace".into(), Value::String(ns.to_owned()));
            }
            None => {
                self.metadata_mut().remove("namespace");
            }
        }
        Arc::make_mut(&mut self.inner).key.namespace = namespace.map(str::to_owned);
        Ok(())
    }

    /// Sets one label (key and value must be valid).
    pub fn set_label(&mut self, key: &str, value: &str) -> Result<(), ObjectError> {
        validate::qualified_name(key).map_err(|reason| ObjectError::InvalidLabelKey {
            key: key.to_owned(),
            reason,
        })?;
        validate::label_value(value).map_err(|reason| ObjectError::InvalidLabelValue {
            key: key.to_owned(),
            value: value.to_owned(),
            reason,
        })?;
        if self.label(key) == Some(value) {
            // Already set: no copy of a shared object.
            return Ok(());
        }
        let meta = self.metadata_mut();
        let labels = meta
            .entry("labels")
            .or_insert_with(|| Value::Object(Map::new()));
        if !labels.is_object() {
            *labels = Value::Object(Map::new());
        }
        if let Value::Object(l) = labels {
            if l.contains_key(key) {
                l.insert(key.to_owned(), Value::String(value.to_owned()));
            } else {
                // One entry larger, exactly: a map grown in place keeps up
                // to twice the room it needs, and objects are kept.
                let mut grown = Map::with_capacity(l.len() + 1);
                grown.extend(std::mem::take(l));
                grown.insert(key.to_owned(), Value::String(value.to_owned()));
                *l = grown;
            }
        }
        Ok(())
    }

    /// Sets one annotation (the key must be valid).
    pub fn set_annotation(&mut self, key: &str, value: &str) -> Result<(), ObjectError> {
        validate::qualified_name(key).map_err(|reason| ObjectError::InvalidAnnotationKey {
            key: key.to_owned(),
            reason,
        })?;
        let meta = self.metadata_mut();
        let ann = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if !ann.is_object() {
            *ann = Value::Object(Map::new());
        }
        if let Value::Object(a) = ann {
            a.insert(key.to_owned(), Value::String(value.to_owned()));
        }
        if key.starts_with(OWN_PREFIX) {
            let inner = Arc::make_mut(&mut self.inner);
            if let Some(meta) = inner.value.get("metadata").and_then(Value::as_object) {
                inner.own_annotations = own_annotations(meta);
            }
        }
        Ok(())
    }
}

impl TryFrom<Value> for Object {
    type Error = ObjectError;
    fn try_from(value: Value) -> Result<Self, Self::Error> {
        Object::new(value)
    }
}

impl From<Object> for Value {
    fn from(o: Object) -> Self {
        o.into_value()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> ObjectError {
        Object::new(v).unwrap_err()
    }

    #[test]
    fn validation_errors_are_distinct() {
        assert!(matches!(err(json!("x")), ObjectError::NotAMapping { .. }));
        assert!(matches!(
            err(json!({"kind": "ConfigMap", "metadata": {"name": "a"}})),
            ObjectError::MissingField {
                field: "apiVersion"
            }
        ));
        assert!(matches!(
            err(json!({"apiVersion": "v1", "metadata": {"name": "a"}})),
            ObjectError::MissingField { field: "kind" }
        ));
        assert!(matches!(
            err(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}})),
            ObjectError::MissingField {
                field: "metadata.name"
            }
        ));
        assert!(matches!(
            err(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": 3}})),
            ObjectError::WrongType { .. }
        ));
        assert!(matches!(
            err(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "9x"}})),
            ObjectError::InvalidName {
                rule: NameRule::Dns1035Label,
                ..
            }
        ));
        assert!(matches!(
            err(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "labels": {"a b": "x"}}})
            ),
            ObjectError::InvalidLabelKey { .. }
        ));
        assert!(matches!(
            err(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "labels": {"a": "-x"}}})
            ),
            ObjectError::InvalidLabelValue { .. }
        ));
        assert!(matches!(
            err(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "A"}})
            ),
            ObjectError::InvalidNamespace { .. }
        ));
    }

    #[test]
    fn setters_keep_key_in_step() {
        let mut o = Object::new(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}),
        )
        .unwrap();
        o.set_namespace(Some("dev")).unwrap();
        assert_eq!(o.key().namespace.as_deref(), Some("dev"));
        assert_eq!(o.as_value()["metadata"]["namespace"], "dev");
        o.set_label("app.kubernetes.io/managed-by", "gitops")
            .unwrap();
        assert_eq!(o.label("app.kubernetes.io/managed-by"), Some("gitops"));
        assert!(o.set_label("bad key", "x").is_err());
        // The toolkit's own annotations are kept beside the value: in step.
        assert_eq!(o.annotation("gitops-rs.io/wave"), None);
        o.set_annotation("gitops-rs.io/wave", "2").unwrap();
        o.set_annotation("other", "x").unwrap();
        assert_eq!(o.annotation("gitops-rs.io/wave"), Some("2"));
        assert_eq!(o.annotation("other"), Some("x"));
        assert_eq!(o.api_version(), "v1");
        let mut v = o.as_value().clone();
        v["metadata"]["annotations"]["gitops-rs.io/prune"] = "disabled".into();
        v["apiVersion"] = "example.com/v1".into();
        v["kind"] = "Widget".into();
        let w = Object::new(v).unwrap();
        assert_eq!(w.annotation("gitops-rs.io/prune"), Some("disabled"));
        assert_eq!(w.annotation("gitops-rs.io/wave"), Some("2"));
        assert_eq!(w.api_version(), "example.com/v1");
        let back: Object = serde_json::from_value(serde_json::to_value(&o).unwrap()).unwrap();
        assert_eq!(back, o);
    }
}
