//! Field paths and field sets in the Kubernetes `managedFields` `fieldsV1`
//! encoding.
//!
//! The encoding follows `sigs.k8s.io/structured-merge-diff` (`fieldpath/serialize.go`
//! and `fieldpath/serialize-pe.go`): every key of the JSON object is a path element
//! (`f:<field name>`, `k:<json object of list-map keys>`, `v:<json value>`,
//! `i:<index>`), an empty object `{}` marks a leaf member, and the special key `.`
//! marks a node that is itself a member while also having children.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::lists::ListSemantics;
use crate::value::{cmp_values, item_key, pointer_escape};

/// A Kubernetes group and kind (`group` is `""` for the core group).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupKind {
    /// API group, `""` for the core group (`v1`).
    pub group: String,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
}

impl GroupKind {
    /// Builds a group/kind from its parts.
    pub fn new(group: impl Into<String>, kind: impl Into<String>) -> Self {
        GroupKind {
            group: group.into(),
            kind: kind.into(),
        }
    }

    /// Reads the group and kind from an object's `apiVersion` and `kind`
    /// (`apps/v1` gives group `apps`, `v1` gives the core group `""`).
    /// Missing fields give empty strings.
    pub fn of(object: &Value) -> Self {
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let group = match api_version.rsplit_once('/') {
            Some((group, _)) => group,
            None => "",
        };
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
        GroupKind::new(group, kind)
    }
}

impl fmt::Display for GroupKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            write!(f, "{}", self.kind)
        } else {
            write!(f, "{}.{}", self.kind, self.group)
        }
    }
}

/// Errors reading the `fieldsV1` encoding or `metadata.managedFields`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FieldsV1Error {
    /// A node of the encoding is not a JSON object.
    #[error("fieldsV1: the value at {at} is not an object")]
    NotAnObject {
        /// Readable path of the offending node (`<root>` for the top).
        at: String,
    },
    /// A key is not a valid path element.
    #[error("fieldsV1: invalid path element {key:?} at {at}: {reason}")]
    InvalidKey {
        /// The key as written.
        key: String,
        /// Readable path of the parent node.
        at: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `metadata.managedFields` is malformed.
    #[error("metadata.managedFields[{index}]: {reason}")]
    InvalidManagedFields {
        /// Index of the entry (0 when the list itself is malformed).
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// One step of a [`FieldPath`].
#[derive(Clone, Debug)]
pub enum PathElement {
    /// A field of a map (`f:name`).
    Field(String),
    /// An element of an associative list, selected by its key fields (`k:{...}`),
    /// the key fields sorted by name.
    Key(Map<String, Value>),
    /// An element of a set list, selected by its value (`v:...`).
    Value(Value),
    /// An element of an atomic list, selected by index (`i:N`).
    Index(usize),
}

impl PathElement {
    /// Builds a `Key` element with its fields sorted by name, as the
    /// encoding requires.
    pub fn key(fields: impl IntoIterator<Item = (String, Value)>) -> Self {
        let mut v: Vec<(String, Value)> = fields.into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        PathElement::Key(v.into_iter().collect())
    }

    /// The field name, for `Field` elements.
    pub fn as_field(&self) -> Option<&str> {
        match self {
            PathElement::Field(f) => Some(f),
            _ => None,
        }
    }

    fn rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }

    /// Serializes the element as a `fieldsV1` key (`f:`, `k:`, `v:`, `i:`).
    pub fn to_fields_v1_key(&self) -> String {
        match self {
            PathElement::Field(f) => format!("f:{f}"),
            PathElement::Key(k) => {
                let mut keys: Vec<&String> = k.keys().collect();
                keys.sort();
                let mut sorted = Map::new();
                for key in keys {
                    if let Some(v) = k.get(key) {
                        sorted.insert(key.clone(), v.clone());
                    }
                }
                format!("k:{}", Value::Object(sorted))
            }
            PathElement::Value(v) => format!("v:{v}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses a `fieldsV1` key. `Ok(None)` for a well-formed key of an
    /// unknown type (skipped, as the API server does).
    pub fn from_fields_v1_key(key: &str) -> Result<Option<PathElement>, String> {
        let Some((kind, rest)) = key.split_once(':') else {
            return Err("missing ':' separator".to_string());
        };
        match kind {
            "f" => Ok(Some(PathElement::Field(rest.to_string()))),
            "k" => {
                let map: Map<String, Value> = serde_json::from_str(rest)
                    .map_err(|e| format!("key is not a JSON object: {e}"))?;
                Ok(Some(PathElement::key(map)))
            }
            "v" => {
                let v: Value =
                    serde_json::from_str(rest).map_err(|e| format!("value is not JSON: {e}"))?;
                Ok(Some(PathElement::Value(v)))
            }
            "i" => {
                let i: usize = rest
                    .parse()
                    .map_err(|e| format!("index is not a number: {e}"))?;
                Ok(Some(PathElement::Index(i)))
            }
            k if k.len() == 1 => Ok(None),
            _ => Err("path element type must be one character".to_string()),
        }
    }
}

fn keys_sorted(m: &Map<String, Value>) -> bool {
    let mut prev: Option<&String> = None;
    for k in m.keys() {
        if prev.is_some_and(|p| p >= k) {
            return false;
        }
        prev = Some(k);
    }
    true
}

fn cmp_key_maps(a: &Map<String, Value>, b: &Map<String, Value>) -> Ordering {
    // Keys are normally stored sorted (see `PathElement::key`): compare in
    // place without allocating.
    if keys_sorted(a) && keys_sorted(b) {
        for ((ka, va), (kb, vb)) in a.iter().zip(b.iter()) {
            let c = ka.cmp(kb).then_with(|| cmp_values(va, vb));
            if c != Ordering::Equal {
                return c;
            }
        }
        return a.len().cmp(&b.len());
    }
    let mut ak: Vec<&String> = a.keys().collect();
    let mut bk: Vec<&String> = b.keys().collect();
    ak.sort();
    bk.sort();
    for (ka, kb) in ak.iter().zip(bk.iter()) {
        let c = ka.cmp(kb);
        if c != Ordering::Equal {
            return c;
        }
        let c = match (a.get(*ka), b.get(*kb)) {
            (Some(va), Some(vb)) => cmp_values(va, vb),
            _ => Ordering::Equal,
        };
        if c != Ordering::Equal {
            return c;
        }
    }
    ak.len().cmp(&bk.len())
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => cmp_key_maps(a, b),
            (PathElement::Value(a), PathElement::Value(b)) => cmp_values(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

fn display_scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl fmt::Display for PathElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(k) => {
                let mut keys: Vec<&String> = k.keys().collect();
                keys.sort();
                let parts: Vec<String> = keys
                    .iter()
                    .map(|key| {
                        let v = k.get(*key).map(display_scalar).unwrap_or_default();
                        format!("{key}={v}")
                    })
                    .collect();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(v) => write!(f, "[={}]", display_scalar(v)),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A path from the object root to a field, a list element or a value.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct FieldPath(pub Vec<PathElement>);

impl FieldPath {
    /// Builds a path of field names only (`["spec", "replicas"]`).
    pub fn fields<S: AsRef<str>>(names: &[S]) -> Self {
        FieldPath(
            names
                .iter()
                .map(|n| PathElement::Field(n.as_ref().to_string()))
                .collect(),
        )
    }

    /// Whether `prefix` is a (not necessarily proper) prefix of this path.
    pub fn starts_with(&self, prefix: &FieldPath) -> bool {
        self.0.len() >= prefix.0.len() && self.0[..prefix.0.len()] == prefix.0[..]
    }

    /// The field names of the path, list elements omitted (the form
    /// [`ListSemantics`] takes).
    pub fn field_names(&self) -> Vec<&str> {
        self.0.iter().filter_map(PathElement::as_field).collect()
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return write!(f, "<root>");
        }
        for (i, pe) in self.0.iter().enumerate() {
            match pe {
                PathElement::Field(name) if i == 0 => write!(f, "{name}")?,
                other => write!(f, "{other}")?,
            }
        }
        Ok(())
    }
}

impl Serialize for FieldPath {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl From<Vec<PathElement>> for FieldPath {
    fn from(v: Vec<PathElement>) -> Self {
        FieldPath(v)
    }
}

/// A set of [`FieldPath`]s: the members of a `fieldsV1` tree (leaves, and
/// inner nodes marked with `.`). Serialized as `fieldsV1` JSON.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSet {
    members: BTreeSet<FieldPath>,
}

#[derive(Default)]
struct Node<'a> {
    member: bool,
    children: BTreeMap<&'a PathElement, Node<'a>>,
}

impl Node<'_> {
    /// The node's children as `fieldsV1`; `.` (the node itself is a
    /// member) comes first, as the API server writes it.
    fn to_json(&self, member: bool) -> Value {
        let mut out = Map::new();
        if member && !self.children.is_empty() {
            out.insert(".".to_string(), Value::Object(Map::new()));
        }
        for (pe, child) in &self.children {
            out.insert(pe.to_fields_v1_key(), child.to_json(child.member));
        }
        Value::Object(out)
    }
}

impl FieldSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses the `fieldsV1` encoding (the value of `managedFields[].fieldsV1`).
    pub fn from_fields_v1(v: &Value) -> Result<FieldSet, FieldsV1Error> {
        let mut set = Vec::new();
        let mut path = Vec::new();
        parse_node(v, &mut path, &mut set)?;
        Ok(set.into_iter().collect())
    }

    /// Produces the canonical `fieldsV1` encoding: keys sorted as the API
    /// server sorts them, `.` first. `from_fields_v1(to_fields_v1(s)) == s`.
    pub fn to_fields_v1(&self) -> Value {
        let mut root = Node::default();
        for p in &self.members {
            let mut node = &mut root;
            for pe in &p.0 {
                node = node.children.entry(pe).or_default();
            }
            node.member = true;
        }
        root.to_json(false)
    }

    /// The fields a manifest sets, as the API server records them for an
    /// Apply (structured-merge-diff's `ToFieldSet`): scalars (an explicit
    /// `null` included), atomic lists and maps, list items, and the keys of
    /// granular maps are members; a struct field holding an empty map is
    /// not. `apiVersion`, `kind`, `metadata.name`, `metadata.namespace`,
    /// `status` and server-populated metadata are not recorded.
    pub fn declared_by(object: &Value, lists: &dyn ListSemantics, gk: &GroupKind) -> FieldSet {
        crate::apply::applied_field_set(object, lists, gk)
    }

    /// Inserts a path; returns whether it was new.
    pub fn insert(&mut self, p: FieldPath) -> bool {
        self.members.insert(p)
    }

    /// Removes a path; returns whether it was present.
    pub fn remove(&mut self, p: &FieldPath) -> bool {
        self.members.remove(p)
    }

    /// Paths in either set.
    pub fn union(&self, o: &FieldSet) -> FieldSet {
        FieldSet {
            members: self.members.union(&o.members).cloned().collect(),
        }
    }

    /// Paths in `self` but not in `o`.
    pub fn difference(&self, o: &FieldSet) -> FieldSet {
        FieldSet {
            members: self.members.difference(&o.members).cloned().collect(),
        }
    }

    /// Paths in both sets.
    pub fn intersection(&self, o: &FieldSet) -> FieldSet {
        FieldSet {
            members: self.members.intersection(&o.members).cloned().collect(),
        }
    }

    /// Whether `p` is a member.
    pub fn contains(&self, p: &FieldPath) -> bool {
        self.members.contains(p)
    }

    /// Whether `p` or any path below it is a member.
    pub fn contains_prefix(&self, p: &FieldPath) -> bool {
        self.members
            .range(p.clone()..)
            .next()
            .is_some_and(|m| m.starts_with(p))
    }

    /// Whether any proper or improper prefix of `p` is a member (the field or
    /// one of its ancestors is owned as a whole).
    pub fn covers(&self, p: &FieldPath) -> bool {
        (1..=p.0.len()).any(|n| self.members.contains(&FieldPath(p.0[..n].to_vec())))
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Number of member paths.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Member paths in sorted order.
    pub fn iter(&self) -> impl Iterator<Item = &FieldPath> {
        self.members.iter()
    }
}

impl FromIterator<FieldPath> for FieldSet {
    fn from_iter<T: IntoIterator<Item = FieldPath>>(iter: T) -> Self {
        FieldSet {
            members: iter.into_iter().collect(),
        }
    }
}

impl Serialize for FieldSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_fields_v1().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for FieldSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(deserializer)?;
        FieldSet::from_fields_v1(&v).map_err(serde::de::Error::custom)
    }
}

fn parse_node(
    v: &Value,
    path: &mut Vec<PathElement>,
    set: &mut Vec<FieldPath>,
) -> Result<(), FieldsV1Error> {
    let Value::Object(map) = v else {
        return Err(FieldsV1Error::NotAnObject {
            at: FieldPath(path.clone()).to_string(),
        });
    };
    if map.is_empty() {
        if !path.is_empty() {
            set.push(FieldPath(path.clone()));
        }
        return Ok(());
    }
    for (key, child) in map {
        if key == "." {
            if !path.is_empty() {
                set.push(FieldPath(path.clone()));
            }
            continue;
        }
        let pe =
            PathElement::from_fields_v1_key(key).map_err(|reason| FieldsV1Error::InvalidKey {
                key: key.clone(),
                at: FieldPath(path.clone()).to_string(),
                reason,
            })?;
        let Some(pe) = pe else { continue };
        path.push(pe);
        let r = parse_node(child, path, set);
        path.pop();
        r?;
    }
    Ok(())
}

/// One entry of `metadata.managedFields`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ManagedFieldsEntry {
    /// The field manager.
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// API version the fields were recorded under.
    pub api_version: String,
    /// The fields owned.
    pub fields: FieldSet,
    /// When the entry was last changed (RFC 3339), if recorded.
    pub time: Option<String>,
    /// The subresource (`status`, `scale`), if the write went through one.
    pub subresource: Option<String>,
}

impl ManagedFieldsEntry {
    /// The entry as the API server writes it into `metadata.managedFields`.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("apiVersion".into(), Value::String(self.api_version.clone()));
        m.insert("fieldsType".into(), Value::String("FieldsV1".into()));
        m.insert("fieldsV1".into(), self.fields.to_fields_v1());
        m.insert("manager".into(), Value::String(self.manager.clone()));
        m.insert("operation".into(), Value::String(self.operation.clone()));
        if let Some(s) = &self.subresource {
            m.insert("subresource".into(), Value::String(s.clone()));
        }
        if let Some(t) = &self.time {
            m.insert("time".into(), Value::String(t.clone()));
        }
        Value::Object(m)
    }
}

/// Parses `metadata.managedFields` of a live object (absent gives an empty list).
pub fn managed_fields(live: &Value) -> Result<Vec<ManagedFieldsEntry>, FieldsV1Error> {
    let Some(mf) = live.get("metadata").and_then(|m| m.get("managedFields")) else {
        return Ok(Vec::new());
    };
    if mf.is_null() {
        return Ok(Vec::new());
    }
    let Value::Array(entries) = mf else {
        return Err(FieldsV1Error::InvalidManagedFields {
            index: 0,
            reason: "managedFields is not a list".into(),
        });
    };
    let mut out = Vec::with_capacity(entries.len());
    for (index, e) in entries.iter().enumerate() {
        let bad = |reason: &str| FieldsV1Error::InvalidManagedFields {
            index,
            reason: reason.to_string(),
        };
        let Value::Object(e) = e else {
            return Err(bad("entry is not an object"));
        };
        let s = |k: &str| e.get(k).and_then(Value::as_str).map(str::to_string);
        if let Some(t) = s("fieldsType")
            && t != "FieldsV1"
        {
            return Err(bad(&format!("unsupported fieldsType {t:?}")));
        }
        let fields = match e.get("fieldsV1") {
            None | Some(Value::Null) => FieldSet::new(),
            Some(v) => FieldSet::from_fields_v1(v).map_err(|err| bad(&err.to_string()))?,
        };
        out.push(ManagedFieldsEntry {
            manager: s("manager").unwrap_or_default(),
            operation: s("operation").unwrap_or_default(),
            api_version: s("apiVersion").unwrap_or_default(),
            fields,
            time: s("time"),
            subresource: s("subresource"),
        });
    }
    Ok(out)
}

/// The fields `manager` owns through its `Apply` entry (the main resource,
/// not a subresource), `None` if it has none.
pub fn owned_by(live: &Value, manager: &str) -> Result<Option<FieldSet>, FieldsV1Error> {
    Ok(managed_fields(live)?
        .into_iter()
        .find(|e| e.manager == manager && e.operation == "Apply" && e.subresource.is_none())
        .map(|e| e.fields))
}

/// Resolves a field path in a value: the JSON pointer and the value there.
/// `Key` elements match list items by their key fields (missing key fields
/// take their defaults from `lists`).
pub fn resolve<'v>(
    value: &'v Value,
    path: &FieldPath,
    lists: &dyn ListSemantics,
    gk: &GroupKind,
) -> Option<(String, &'v Value)> {
    let mut cur = value;
    let mut ptr = String::new();
    let mut names: Vec<&str> = Vec::new();
    for pe in &path.0 {
        match pe {
            PathElement::Field(f) => {
                cur = cur.as_object()?.get(f)?;
                ptr.push('/');
                ptr.push_str(&pointer_escape(f));
                names.push(f);
            }
            PathElement::Key(k) => {
                let items = cur.as_array()?;
                let keys: Vec<String> = k.keys().cloned().collect();
                let idx = items.iter().position(|it| {
                    item_key(it, &keys, lists, gk, &names)
                        .is_some_and(|ik| crate::value::key_maps_equal(&ik, k))
                })?;
                cur = &items[idx];
                ptr.push_str(&format!("/{idx}"));
            }
            PathElement::Value(v) => {
                let items = cur.as_array()?;
                let idx = items
                    .iter()
                    .position(|it| cmp_values(it, v) == Ordering::Equal)?;
                cur = &items[idx];
                ptr.push_str(&format!("/{idx}"));
            }
            PathElement::Index(i) => {
                cur = cur.as_array()?.get(*i)?;
                ptr.push_str(&format!("/{i}"));
            }
        }
    }
    Some((ptr, cur))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lists::BuiltinLists;
    use serde_json::json;

    #[test]
    fn round_trip_real_managed_fields() {
        let v = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:template": {"f:spec": {"f:containers": {
                    "k:{\"name\":\"nginx\"}": {
                        ".": {},
                        "f:image": {},
                        "f:name": {},
                        "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                            ".": {}, "f:containerPort": {}, "f:protocol": {}
                        }}
                    }
                }}}
            },
            "f:metadata2": {"f:finalizers": {"v:\"a\"": {}}, "f:x": {"i:0": {}}}
        });
        let s = FieldSet::from_fields_v1(&v).unwrap();
        assert!(s.contains(&FieldPath::fields(&["spec", "replicas"])));
        assert!(s.contains(&FieldPath::fields(&["metadata", "labels"])));
        assert!(!s.contains(&FieldPath::fields(&["spec"])));
        let back = s.to_fields_v1();
        assert_eq!(FieldSet::from_fields_v1(&back).unwrap(), s);
        // "." is written first (as a 1.20 API server does), keys sorted
        let text = back.to_string();
        assert!(text.contains(r#""f:labels":{".":{},"f:app":{}}"#), "{text}");
    }

    #[test]
    fn rejects_bad_keys() {
        assert!(FieldSet::from_fields_v1(&json!({"nocolon": {}})).is_err());
        assert!(FieldSet::from_fields_v1(&json!({"k:notjson": {}})).is_err());
        assert!(FieldSet::from_fields_v1(&json!({"i:x": {}})).is_err());
        assert!(FieldSet::from_fields_v1(&json!({"f:a": 1})).is_err());
        assert!(FieldSet::from_fields_v1(&json!([])).is_err());
        // unknown one-letter types are skipped
        assert!(
            FieldSet::from_fields_v1(&json!({"z:a": {}}))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn display_paths() {
        let p = FieldPath(vec![
            PathElement::Field("spec".into()),
            PathElement::Field("containers".into()),
            PathElement::key([("name".to_string(), json!("app"))]),
            PathElement::Field("image".into()),
        ]);
        assert_eq!(p.to_string(), "spec.containers[name=app].image");
        let p = FieldPath(vec![
            PathElement::Field("finalizers".into()),
            PathElement::Value(json!("x")),
        ]);
        assert_eq!(p.to_string(), "finalizers[=x]");
    }

    #[test]
    fn declared_by_records_like_apply() {
        let obj = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "x", "namespace": "ns", "labels": {"app": "x"}, "annotations": {}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [
                {"name": "app", "image": "i", "ports": [{"containerPort": 80}], "args": ["a"]}
            ]}}},
            "status": {"replicas": 1}
        });
        let s = FieldSet::declared_by(&obj, &BuiltinLists, &GroupKind::of(&obj));
        let v = s.to_fields_v1();
        assert_eq!(
            v,
            json!({
                // An empty map in a struct field is not recorded (as a 1.20
                // API server records `annotations: {}`).
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                    "k:{\"name\":\"app\"}": {
                        "f:args": {}, "f:image": {}, "f:name": {},
                        "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                            "f:containerPort": {}, ".": {}
                        }},
                        ".": {}
                    }
                }}}}
            })
        );
    }

    #[test]
    fn managed_fields_and_owned_by() {
        let live = json!({"metadata": {"managedFields": [
            {"manager": "kubectl", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:data": {"f:a": {}}}},
            {"manager": "gitops", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:data": {"f:b": {}}}, "time": "2026-01-01T00:00:00Z"}
        ]}});
        let e = managed_fields(&live).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].time.as_deref(), Some("2026-01-01T00:00:00Z"));
        let o = owned_by(&live, "gitops").unwrap().unwrap();
        assert!(o.contains(&FieldPath::fields(&["data", "b"])));
        assert!(owned_by(&live, "kubectl").unwrap().is_none());
        let bad = json!({"metadata": {"managedFields": [{"manager": "m", "fieldsV1": {"x": {}}}]}});
        assert!(matches!(
            managed_fields(&bad),
            Err(FieldsV1Error::InvalidManagedFields { index: 0, .. })
        ));
    }

    #[test]
    fn serde_as_fields_v1() {
        let s = FieldSet::from_fields_v1(&json!({"f:a": {"f:b": {}}})).unwrap();
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(text, r#"{"f:a":{"f:b":{}}}"#);
        let back: FieldSet = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
    }
}
