//! Server-side apply, computed purely (what the in-memory runtime uses to
//! emulate an API server).

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::duplicates::{DuplicateListKey, duplicate_list_keys};
use crate::fieldset::{
    FieldPath, FieldSet, FieldsV1Error, GroupKind, ManagedFieldsEntry, PathElement, managed_fields,
};
use crate::lists::{ListSemantics, ListType, MapType};
use crate::value::{
    canon_eq, fold_secret_string_data, is_builtin_group, is_server_field, is_string_map, item_key,
};

/// One apply request.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct ApplyRequest<'a> {
    /// The live object, `None` to create.
    pub live: Option<&'a Value>,
    /// The applied configuration (a full manifest with `apiVersion`, `kind`,
    /// `metadata.name`).
    pub applied: &'a Value,
    /// The field manager.
    pub manager: &'a str,
    /// Take ownership of conflicting fields instead of failing.
    pub force: bool,
    /// List semantics.
    pub lists: &'a dyn ListSemantics,
    /// Time recorded in the managedFields entry (RFC 3339), if any.
    pub time: Option<&'a str>,
}

impl<'a> ApplyRequest<'a> {
    /// An apply of `applied` by `manager` over `live` (`None`: create), not
    /// forced, without a time.
    pub fn new(
        live: Option<&'a Value>,
        applied: &'a Value,
        manager: &'a str,
        lists: &'a dyn ListSemantics,
    ) -> Self {
        Self {
            live,
            applied,
            manager,
            force: false,
            lists,
            time: None,
        }
    }

    /// Take ownership of conflicting fields instead of failing.
    pub fn force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }

    /// The time recorded in the managedFields entry (RFC 3339).
    pub fn with_time(mut self, time: &'a str) -> Self {
        self.time = Some(time);
        self
    }
}

/// A field another manager owns with a different value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FieldConflict {
    /// The manager owning the field.
    pub manager: String,
    /// The field.
    pub path: FieldPath,
}

impl fmt::Display for FieldConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (owned by {:?})", self.path, self.manager)
    }
}

fn list_conflicts(c: &[FieldConflict]) -> String {
    c.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Errors of [`server_side_apply`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// Fields the applied configuration changes are owned by other managers
    /// (retry with `force` to take them).
    #[error("apply conflicts with other field managers: {}", list_conflicts(.conflicts))]
    Conflict {
        /// The conflicting fields and their managers.
        conflicts: Vec<FieldConflict>,
    },
    /// The applied or live value is not a JSON object.
    #[error("the {which} object is not a JSON object")]
    NotAnObject {
        /// `applied` or `live`.
        which: &'static str,
    },
    /// The applied object lacks a required field.
    #[error("the applied object has no {field}")]
    MissingField {
        /// `apiVersion`, `kind` or `metadata.name`.
        field: &'static str,
    },
    /// The applied object does not identify the live object.
    #[error("the applied object's {field} is {applied:?} but the live object's is {live:?}")]
    Mismatch {
        /// `kind`, `metadata.name` or `metadata.namespace`.
        field: &'static str,
        /// The applied value.
        applied: String,
        /// The live value.
        live: String,
    },
    /// An associative list of the applied object has two items with one
    /// key, or a set one value twice (the API server refuses it: the key
    /// would name two items).
    #[error("the applied object is invalid: {duplicate}")]
    DuplicateKey {
        /// The first duplicated key found.
        duplicate: DuplicateListKey,
    },
    /// The result would hold `null` at a field of a custom resource whose
    /// schema does not allow it. A 1.20 API server gets there when an apply
    /// removes every field of a nested map: the map is left `null` (later
    /// versions remove it), and validation refuses the object.
    #[error("the result has null at {path}, which its schema does not allow (not nullable)")]
    NullField {
        /// The field.
        path: FieldPath,
    },
    /// The live object's `metadata.managedFields` could not be read.
    #[error("live object: {0}")]
    ManagedFields(#[from] FieldsV1Error),
}

/// Fields of a written object that a write never changes (the API server
/// keeps the live values): `status` and server-populated metadata.
fn never_written(names: &[&str]) -> bool {
    match names {
        ["status"] => true,
        ["metadata", f] => matches!(
            *f,
            "uid"
                | "resourceVersion"
                | "generation"
                | "creationTimestamp"
                | "managedFields"
                | "selfLink"
                | "deletionTimestamp"
                | "deletionGracePeriodSeconds"
        ),
        _ => false,
    }
}

/// Whether a path is one the API server never records in managedFields
/// (its `stripMeta` step: `apiVersion`, `kind`, the `metadata` node,
/// identity and server-populated metadata; and `status`, which writes to
/// the main resource do not change).
fn stripped(p: &FieldPath) -> bool {
    let names = p.field_names();
    if names.len() == 1 && names[0] == "metadata" && p.0.len() == 1 {
        return true;
    }
    (1..=names.len().min(3)).any(|n| is_server_field(&names[..n]))
}

fn strip(set: FieldSet) -> FieldSet {
    set.iter().filter(|p| !stripped(p)).cloned().collect()
}

/// The fields an apply of `object` records for its manager, as the API
/// server records them (see [`FieldSet::declared_by`]).
pub(crate) fn applied_field_set(
    object: &Value,
    lists: &dyn ListSemantics,
    gk: &GroupKind,
) -> FieldSet {
    let s = Typed { gk, lists };
    strip(s.set_of(object))
}

/// A field set as a tree, for walking a value and a set together.
#[derive(Default, Debug)]
struct Tree<'s> {
    member: bool,
    children: BTreeMap<&'s PathElement, Tree<'s>>,
}

impl<'s> Tree<'s> {
    fn of(set: &'s FieldSet) -> Self {
        let mut root = Tree::default();
        for p in set.iter() {
            let mut node = &mut root;
            for pe in &p.0 {
                node = node.children.entry(pe).or_default();
            }
            node.member = true;
        }
        root
    }
}

/// The differences between two versions of an object, as structured-merge-
/// diff's `Compare` reports them: leaves and inner nodes (maps, granular
/// lists, list items) that appear are `added`, that disappear `removed`;
/// leaves whose value changes `modified`.
#[derive(Default, Debug)]
struct Comparison {
    added: Vec<FieldPath>,
    modified: Vec<FieldPath>,
    removed: Vec<FieldPath>,
}

/// A list item's path element.
fn item_element(
    s: &Typed<'_>,
    item: &Value,
    lt: &ListType,
    index: usize,
    names: &[&str],
) -> PathElement {
    match lt {
        ListType::Set => PathElement::Value(item.clone()),
        ListType::Map(keys) => match item_key(item, keys, s.lists, s.gk, names) {
            Some(k) => PathElement::Key(k),
            None => PathElement::Index(index),
        },
        ListType::Atomic => PathElement::Index(index),
    }
}

/// Schema knowledge for one object: its group/kind and list/map semantics.
struct Typed<'r> {
    gk: &'r GroupKind,
    lists: &'r dyn ListSemantics,
}

impl Typed<'_> {
    fn list(&self, names: &[&str]) -> ListType {
        self.lists
            .list_type(self.gk, names)
            .unwrap_or(ListType::Atomic)
    }

    /// The map type at a position; the object root is a struct.
    fn map(&self, names: &[&str]) -> MapType {
        if names.is_empty() {
            return MapType::Struct;
        }
        self.lists
            .map_type(self.gk, names)
            .unwrap_or(MapType::Struct)
    }

    /// The field set of a value (structured-merge-diff's `ToFieldSet`):
    /// scalars (`null` included), atomic lists and maps, list items, and
    /// the keys of granular maps are members.
    fn field_set<'a>(
        &self,
        v: &'a Value,
        path: &mut Vec<PathElement>,
        names: &mut Vec<&'a str>,
        out: &mut Vec<FieldPath>,
    ) {
        match v {
            Value::Object(m) => {
                let mt = self.map(names);
                if mt == MapType::Atomic {
                    out.push(FieldPath(path.clone()));
                    return;
                }
                for (k, c) in m {
                    names.push(k);
                    path.push(PathElement::Field(k.clone()));
                    self.field_set(c, path, names, out);
                    if mt == MapType::Granular {
                        out.push(FieldPath(path.clone()));
                    }
                    path.pop();
                    names.pop();
                }
            }
            Value::Array(items) => {
                let lt = self.list(names);
                if lt == ListType::Atomic {
                    out.push(FieldPath(path.clone()));
                    return;
                }
                for (i, item) in items.iter().enumerate() {
                    path.push(item_element(self, item, &lt, i, names));
                    if let (ListType::Map(_), Value::Object(_)) = (&lt, item) {
                        self.field_set(item, path, names, out);
                    }
                    out.push(FieldPath(path.clone()));
                    path.pop();
                }
            }
            _ => {
                if !path.is_empty() {
                    out.push(FieldPath(path.clone()));
                }
            }
        }
    }

    fn set_of(&self, v: &Value) -> FieldSet {
        let mut out = Vec::new();
        self.field_set(v, &mut Vec::new(), &mut Vec::new(), &mut out);
        out.into_iter().collect()
    }

    /// Merges `r` (an applied configuration) into `l` (the live value):
    /// structured-merge-diff's `Merge`. Maps merge key by key, granular
    /// lists item by item in the order of [`merge_order`], anything else is
    /// replaced by `r` (an explicit `null` included).
    fn merge<'a>(&self, l: Option<&Value>, r: &'a Value, names: &mut Vec<&'a str>) -> Value {
        match r {
            Value::Object(rm) => {
                if self.map(names) == MapType::Atomic {
                    return r.clone();
                }
                let Some(Value::Object(lm)) = l else {
                    return self.merge_new(r, names);
                };
                let mut out = lm.clone();
                for (k, rv) in rm {
                    names.push(k);
                    if !never_written(names) {
                        let merged = self.merge(lm.get(k), rv, names);
                        out.insert(k.clone(), merged);
                    }
                    names.pop();
                }
                Value::Object(out)
            }
            Value::Array(ra) => {
                let Some(Value::Array(la)) = l else {
                    return r.clone();
                };
                let lt = self.list(names);
                if lt == ListType::Atomic {
                    return r.clone();
                }
                let lpe: Vec<PathElement> = la
                    .iter()
                    .enumerate()
                    .map(|(i, x)| item_element(self, x, &lt, i, names))
                    .collect();
                let rpe: Vec<PathElement> = ra
                    .iter()
                    .enumerate()
                    .map(|(i, x)| item_element(self, x, &lt, i, names))
                    .collect();
                let mut out = Vec::with_capacity(la.len().max(ra.len()));
                for (li, ri) in merge_order(&lpe, &rpe) {
                    let item = match (li, ri) {
                        (Some(li), Some(ri)) => self.merge(Some(&la[li]), &ra[ri], names),
                        (Some(li), None) => la[li].clone(),
                        (None, Some(ri)) => ra[ri].clone(),
                        (None, None) => continue,
                    };
                    out.push(item);
                }
                Value::Array(out)
            }
            _ => r.clone(),
        }
    }

    /// `r` merged into nothing: itself, without the fields a write never
    /// sets.
    fn merge_new<'a>(&self, r: &'a Value, names: &mut Vec<&'a str>) -> Value {
        match r {
            Value::Object(rm) if names.len() < 2 => {
                let mut out = Map::new();
                for (k, v) in rm {
                    names.push(k);
                    if !never_written(names) {
                        out.insert(k.clone(), self.merge_new(v, names));
                    }
                    names.pop();
                }
                Value::Object(out)
            }
            _ => r.clone(),
        }
    }

    /// Removes the members of a field set from a value: structured-merge-
    /// diff's `RemoveItems`. A map or list left empty (or atomic, or empty
    /// to begin with) on the way becomes `null`.
    fn remove<'a>(&self, v: &'a Value, tree: &Tree<'_>, names: &mut Vec<&'a str>) -> Value {
        match v {
            Value::Object(m) => {
                if m.is_empty() || self.map(names) == MapType::Atomic {
                    return Value::Null;
                }
                let mut out = Map::new();
                for (k, c) in m {
                    let pe = PathElement::Field(k.clone());
                    match tree.children.get(&pe) {
                        Some(t) if t.member => {}
                        Some(t) if !t.children.is_empty() => {
                            names.push(k);
                            let kept = self.remove(c, t, names);
                            names.pop();
                            out.insert(k.clone(), kept);
                        }
                        _ => {
                            out.insert(k.clone(), c.clone());
                        }
                    }
                }
                if out.is_empty() {
                    Value::Null
                } else {
                    Value::Object(out)
                }
            }
            Value::Array(items) => {
                let lt = self.list(names);
                if items.is_empty() || lt == ListType::Atomic {
                    return Value::Null;
                }
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let pe = item_element(self, item, &lt, i, names);
                    match tree.children.get(&pe) {
                        Some(t) if t.member => {}
                        Some(t) if !t.children.is_empty() => out.push(self.remove(item, t, names)),
                        _ => out.push(item.clone()),
                    }
                }
                if out.is_empty() {
                    Value::Null
                } else {
                    Value::Array(out)
                }
            }
            other => other.clone(),
        }
    }

    fn remove_set(&self, v: &Value, set: &FieldSet) -> Value {
        if set.is_empty() {
            return v.clone();
        }
        let tree = Tree::of(set);
        self.remove(v, &tree, &mut Vec::new())
    }

    /// Compares two versions of a value (see [`Comparison`]).
    fn compare<'a>(
        &self,
        l: Option<&'a Value>,
        r: Option<&'a Value>,
        path: &mut Vec<PathElement>,
        names: &mut Vec<&'a str>,
        out: &mut Comparison,
    ) {
        let map_like = |v: Option<&Value>| v.is_none_or(Value::is_object);
        let list_like = |v: Option<&Value>| v.is_none_or(Value::is_array);
        let empty = |v: Option<&Value>| match v {
            None => true,
            Some(Value::Object(m)) => m.is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            Some(_) => false,
        };
        let both_empty = empty(l) && empty(r);
        let granular_map = (l.is_some_and(Value::is_object) || r.is_some_and(Value::is_object))
            && map_like(l)
            && map_like(r)
            && self.map(names) != MapType::Atomic
            && !both_empty;
        let granular_list = !granular_map
            && (l.is_some_and(Value::is_array) || r.is_some_and(Value::is_array))
            && list_like(l)
            && list_like(r)
            && !both_empty
            && self.list(names) != ListType::Atomic;
        if granular_map {
            let lm = l.and_then(Value::as_object);
            let rm = r.and_then(Value::as_object);
            let mut keys: Vec<&'a String> = lm.map(|m| m.keys().collect()).unwrap_or_default();
            if let Some(rm) = rm {
                for k in rm.keys() {
                    if !lm.is_some_and(|m| m.contains_key(k)) {
                        keys.push(k);
                    }
                }
            }
            for k in keys {
                names.push(k);
                path.push(PathElement::Field(k.clone()));
                self.compare(
                    lm.and_then(|m| m.get(k)),
                    rm.and_then(|m| m.get(k)),
                    path,
                    names,
                    out,
                );
                path.pop();
                names.pop();
            }
        } else if granular_list {
            let lt = self.list(names);
            let la: &[Value] = l.and_then(Value::as_array).map_or(&[], Vec::as_slice);
            let ra: &[Value] = r.and_then(Value::as_array).map_or(&[], Vec::as_slice);
            let lpe: Vec<PathElement> = la
                .iter()
                .enumerate()
                .map(|(i, x)| item_element(self, x, &lt, i, names))
                .collect();
            let rpe: Vec<PathElement> = ra
                .iter()
                .enumerate()
                .map(|(i, x)| item_element(self, x, &lt, i, names))
                .collect();
            for (i, pe) in lpe.iter().enumerate() {
                let j = rpe.iter().position(|q| q == pe);
                path.push(pe.clone());
                self.compare(Some(&la[i]), j.map(|j| &ra[j]), path, names, out);
                path.pop();
            }
            for (j, pe) in rpe.iter().enumerate() {
                if !lpe.contains(pe) {
                    path.push(pe.clone());
                    self.compare(None, Some(&ra[j]), path, names, out);
                    path.pop();
                }
            }
        } else {
            match (l, r) {
                (None, Some(_)) => out.added.push(FieldPath(path.clone())),
                (Some(_), None) => out.removed.push(FieldPath(path.clone())),
                (Some(a), Some(b)) => {
                    let mut n = names.clone();
                    if !canon_eq(b, a, self.gk, &mut n, false) || a.is_null() != b.is_null() {
                        out.modified.push(FieldPath(path.clone()));
                    }
                }
                (None, None) => {}
            }
            return;
        }
        if !path.is_empty() {
            match (l, r) {
                (None, Some(_)) => out.added.push(FieldPath(path.clone())),
                (Some(_), None) => out.removed.push(FieldPath(path.clone())),
                _ => {}
            }
        }
    }

    fn comparison(&self, l: Option<&Value>, r: &Value) -> Comparison {
        let mut out = Comparison::default();
        self.compare(l, Some(r), &mut Vec::new(), &mut Vec::new(), &mut out);
        out
    }

    /// The first `null` of a custom resource at a field its schema does not
    /// declare `nullable` (the API server's validation refuses it; a
    /// removal that empties a map leaves one, see [`server_side_apply`]).
    fn null_field<'a>(
        &self,
        v: &'a Value,
        path: &mut Vec<PathElement>,
        names: &mut Vec<&'a str>,
    ) -> Option<FieldPath> {
        match v {
            Value::Null => (!path.is_empty() && self.lists.nullable(self.gk, names) == Some(false))
                .then(|| FieldPath(path.clone())),
            Value::Object(m) => m.iter().find_map(|(k, c)| {
                names.push(k);
                path.push(PathElement::Field(k.clone()));
                let found = self.null_field(c, path, names);
                path.pop();
                names.pop();
                found
            }),
            Value::Array(items) => {
                let lt = self.list(names);
                items.iter().enumerate().find_map(|(i, c)| {
                    path.push(item_element(self, c, &lt, i, names));
                    let found = self.null_field(c, path, names);
                    path.pop();
                    found
                })
            }
            _ => None,
        }
    }

    /// What a stored object looks like: built-in kinds go through Go
    /// structs ([`go_round_trip`]); a Secret's `stringData` is folded into
    /// `data`.
    fn store(&self, mut v: Value) -> Value {
        if is_builtin_group(&self.gk.group) {
            go_round_trip(self.gk, &mut v, &mut Vec::new());
        }
        fold_secret_string_data(&mut v);
        v
    }
}

/// List fields of built-in types without `omitempty` (an empty one is
/// stored as `[]`): `PodSpec.containers`, RBAC `rules`, CRD `versions`.
const NOT_OMITTED_LISTS: &[&str] = &["containers", "rules", "versions"];

/// What decoding into a built-in Go type and encoding again does to a
/// value: a `null` entry of a string map becomes `""`, any other `null`
/// field is dropped (`omitempty` pointers, maps and lists), and so are an
/// empty string map and an empty list (`omitempty`; see
/// [`NOT_OMITTED_LISTS`]).
fn go_round_trip(gk: &GroupKind, v: &mut Value, names: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let string_map = !names.is_empty() && is_string_map(gk, &refs);
            if string_map {
                for c in m.values_mut() {
                    if c.is_null() {
                        *c = Value::String(String::new());
                    }
                }
                return;
            }
            m.retain(|k, c| {
                if c.is_null() {
                    return false;
                }
                if c.as_array().is_some_and(Vec::is_empty) {
                    return NOT_OMITTED_LISTS.contains(&k.as_str());
                }
                let mut n: Vec<&str> = refs.clone();
                n.push(k);
                !(c.as_object().is_some_and(Map::is_empty) && is_string_map(gk, &n))
            });
            for (k, c) in m.iter_mut() {
                names.push(k.clone());
                go_round_trip(gk, c, names);
                names.pop();
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|c| go_round_trip(gk, c, names)),
        _ => {}
    }
}

/// The order of a merged granular list, as pairs of (live index, applied
/// index): the live order, then the items only the applied list has, in
/// its order. This is what the 1.20 API server (structured-merge-diff
/// v4.0) does; later versions follow the applied order instead.
fn merge_order(lhs: &[PathElement], rhs: &[PathElement]) -> Vec<(Option<usize>, Option<usize>)> {
    let mut out: Vec<(Option<usize>, Option<usize>)> = lhs
        .iter()
        .enumerate()
        .map(|(i, pe)| (Some(i), rhs.iter().position(|q| q == pe)))
        .collect();
    for (j, pe) in rhs.iter().enumerate() {
        if !lhs.contains(pe) {
            out.push((None, Some(j)));
        }
    }
    out
}

fn str_at<'v>(v: &'v Value, pointer: &str) -> Option<&'v str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// Checks what every write needs: objects, `apiVersion`, `kind`, a name,
/// and that `live` is the same object.
fn check_identity<'v>(
    object: &'v Value,
    live: Option<&Value>,
) -> Result<(&'v str, &'v str), ApplyError> {
    if !object.is_object() {
        return Err(ApplyError::NotAnObject { which: "applied" });
    }
    let api_version = str_at(object, "/apiVersion").ok_or(ApplyError::MissingField {
        field: "apiVersion",
    })?;
    let kind = str_at(object, "/kind").ok_or(ApplyError::MissingField { field: "kind" })?;
    let name = str_at(object, "/metadata/name").ok_or(ApplyError::MissingField {
        field: "metadata.name",
    })?;
    if let Some(live) = live {
        if !live.is_object() {
            return Err(ApplyError::NotAnObject { which: "live" });
        }
        for (field, ptr, a) in [
            ("kind", "/kind", kind),
            ("metadata.name", "/metadata/name", name),
        ] {
            let l = str_at(live, ptr);
            if l.is_some_and(|l| l != a) {
                return Err(ApplyError::Mismatch {
                    field,
                    applied: a.to_string(),
                    live: l.unwrap_or_default().to_string(),
                });
            }
        }
    }
    Ok((api_version, kind))
}

/// The bookkeeping common to applies and updates (structured-merge-diff's
/// `update`): every other manager loses the fields the write removed, and
/// the fields it added or changed, which are conflicts unless `force`.
fn settle_others(
    entries: &mut [ManagedFieldsEntry],
    is_writer: impl Fn(&ManagedFieldsEntry) -> bool,
    cmp: &Comparison,
    force: bool,
) -> Result<(), ApplyError> {
    let changed: FieldSet = cmp.modified.iter().chain(&cmp.added).cloned().collect();
    let removed: FieldSet = cmp.removed.iter().cloned().collect();
    let mut conflicts = Vec::new();
    for e in entries.iter().filter(|e| !is_writer(e)) {
        for p in e.fields.intersection(&changed).iter() {
            conflicts.push(FieldConflict {
                manager: e.manager.clone(),
                path: p.clone(),
            });
        }
    }
    if !conflicts.is_empty() && !force {
        conflicts.sort_by(|a, b| a.manager.cmp(&b.manager).then_with(|| a.path.cmp(&b.path)));
        return Err(ApplyError::Conflict { conflicts });
    }
    for e in entries.iter_mut().filter(|e| !is_writer(e)) {
        e.fields = e.fields.difference(&changed).difference(&removed);
    }
    Ok(())
}

/// Writes the entries (non-empty ones, sorted as the API server sorts
/// them: by operation, time, manager) into `metadata.managedFields`.
fn write_entries(
    result: &mut Value,
    mut entries: Vec<ManagedFieldsEntry>,
    api_version: &str,
    kind: &str,
) {
    entries.retain(|e| !e.fields.is_empty());
    entries.sort_by(|a, b| {
        a.operation
            .cmp(&b.operation)
            .then_with(|| a.time.cmp(&b.time))
            .then_with(|| a.manager.cmp(&b.manager))
            .then_with(|| a.api_version.cmp(&b.api_version))
            .then_with(|| a.subresource.cmp(&b.subresource))
    });
    if let Value::Object(top) = result {
        top.insert("apiVersion".into(), Value::String(api_version.to_string()));
        top.insert("kind".into(), Value::String(kind.to_string()));
        let meta = top
            .entry("metadata".to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(meta) = meta {
            if entries.is_empty() {
                meta.shift_remove("managedFields");
            } else {
                meta.insert(
                    "managedFields".into(),
                    Value::Array(entries.iter().map(ManagedFieldsEntry::to_value).collect()),
                );
            }
        }
    }
}

/// Applies `req.applied` to `req.live` as the API server's server-side apply
/// does (structured-merge-diff's `Updater.Apply`), and returns the new
/// object with updated `metadata.managedFields`.
///
/// 1. The applied configuration is merged into the live object: maps key by
///    key, associative lists by key and sets by value (in the applied
///    order, items only live has kept in place), atomic lists, atomic maps
///    and scalars replaced (an explicit `null` too; built-in kinds then drop
///    it, as their Go types do).
/// 2. What the manager applied last time and no longer applies is removed,
///    unless another manager owns it; a removed list item goes whole (also
///    when another manager owned a field inside it but not the item), and
///    a map or list left empty goes with it.
/// 3. Every other manager loses the fields the apply removed; a field
///    another manager owns that the apply adds or changes is a conflict,
///    unless `force`, which moves it to this manager.
///
/// The manager's `Apply` entry records the applied field set (leaves, list
/// items, keys of granular maps, atomic maps and lists whole). An applied
/// associative list with two items of one key (or a set with one value
/// twice) is refused. `uid`, `resourceVersion`, `generation` and `status`
/// are left alone. A core/v1 Secret's `stringData` is folded into `data`
/// (base64), as the API server stores it.
pub fn server_side_apply(req: ApplyRequest<'_>) -> Result<Value, ApplyError> {
    let applied = req.applied;
    let (api_version, kind) = check_identity(applied, req.live)?;
    let gk = GroupKind::of(applied);
    let s = Typed {
        gk: &gk,
        lists: req.lists,
    };
    if let Some(duplicate) = duplicate_list_keys(&gk, applied, req.lists)
        .into_iter()
        .next()
    {
        return Err(ApplyError::DuplicateKey { duplicate });
    }
    let config_set = strip(s.set_of(applied));
    let mut entries = match req.live {
        Some(l) => managed_fields(l)?,
        None => Vec::new(),
    };
    let is_ours = |e: &ManagedFieldsEntry| {
        e.manager == req.manager && e.operation == "Apply" && e.subresource.is_none()
    };
    let last = entries
        .iter()
        .find(|e| is_ours(e))
        .map(|e| e.fields.clone())
        .unwrap_or_default();

    let empty = Value::Object(Map::new());
    let merged = s.merge(Some(req.live.unwrap_or(&empty)), applied, &mut Vec::new());
    let new = if last.is_empty() {
        merged
    } else {
        // Everything any manager owns after this apply (this one: what it
        // applies now).
        let managed = entries
            .iter()
            .filter(|e| !is_ours(e))
            .fold(config_set.clone(), |acc, e| acc.union(&e.fields));
        let merged_set = s.set_of(&merged);
        let pruned = s.remove_set(&merged, &last);
        let pruned_set = s.set_of(&pruned);
        // Add back what another manager (or this apply) owns...
        let pruned = s.remove_set(&merged, &merged_set.difference(&pruned_set.union(&managed)));
        let pruned_set = s.set_of(&pruned);
        // ...and what this manager did not own last time.
        s.remove_set(
            &merged,
            &merged_set.difference(&pruned_set).intersection(&last),
        )
    };
    let new = s.store(new);
    if let Some(path) = s.null_field(&new, &mut Vec::new(), &mut Vec::new()) {
        return Err(ApplyError::NullField { path });
    }

    if let Some(live) = req.live {
        let cmp = s.comparison(Some(live), &new);
        settle_others(&mut entries, is_ours, &cmp, req.force)?;
    }
    entries.retain(|e| !is_ours(e));
    entries.push(ManagedFieldsEntry {
        manager: req.manager.to_string(),
        operation: "Apply".to_string(),
        api_version: api_version.to_string(),
        fields: config_set,
        time: req.time.map(str::to_string),
        subresource: None,
    });
    let mut result = new;
    write_entries(&mut result, entries, api_version, kind);
    Ok(result)
}

/// One update request: a whole-object write (`PUT`, or a patch other than
/// an apply), as `kubectl edit`, `kubectl scale` and controllers make.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct UpdateRequest<'a> {
    /// The live object, `None` to create.
    pub live: Option<&'a Value>,
    /// The object to store (a full manifest; its `status`, server metadata
    /// and `managedFields` are ignored: the live ones are kept).
    pub object: &'a Value,
    /// The field manager.
    pub manager: &'a str,
    /// List semantics.
    pub lists: &'a dyn ListSemantics,
    /// Time recorded in the managedFields entry (RFC 3339), if any.
    pub time: Option<&'a str>,
}

impl<'a> UpdateRequest<'a> {
    /// An update of `live` (or a create) to `object` by `manager`, with
    /// the given list semantics and no time.
    pub fn new(
        live: Option<&'a Value>,
        object: &'a Value,
        manager: &'a str,
        lists: &'a dyn ListSemantics,
    ) -> Self {
        UpdateRequest {
            live,
            object,
            manager,
            lists,
            time: None,
        }
    }

    /// Records `time` (RFC 3339) in the manager's entry.
    #[must_use]
    pub fn with_time(mut self, time: &'a str) -> Self {
        self.time = Some(time);
        self
    }
}

/// Stores `req.object` over `req.live` as the API server does for an
/// update (structured-merge-diff's `Updater.Update`), and returns the new
/// object with updated `metadata.managedFields`.
///
/// Nothing is merged: the object is written whole. The manager's `Update`
/// entry gains the fields the write added or changed (inner nodes it
/// created included, as `.` members) and loses those it removed; every
/// other manager loses the fields the write added, changed or removed (an
/// update never conflicts). A write that changes nothing leaves the
/// managedFields as they were.
pub fn server_side_update(req: UpdateRequest<'_>) -> Result<Value, ApplyError> {
    let (api_version, kind) = check_identity(req.object, req.live)?;
    let gk = GroupKind::of(req.object);
    let s = Typed {
        gk: &gk,
        lists: req.lists,
    };
    let mut new = req.object.clone();
    if let Value::Object(top) = &mut new {
        top.shift_remove("status");
        if let Some(Value::Object(meta)) = top.get_mut("metadata") {
            meta.retain(|k, _| !never_written(&["metadata", k]));
        }
        if let Some(Value::Object(live)) = req.live {
            if let Some(st) = live.get("status") {
                top.insert("status".into(), st.clone());
            }
            if let (Some(Value::Object(lm)), Some(Value::Object(meta))) =
                (live.get("metadata"), top.get_mut("metadata"))
            {
                for (k, v) in lm {
                    if never_written(&["metadata", k]) {
                        meta.insert(k.clone(), v.clone());
                    }
                }
            }
        }
    }
    let new = s.store(new);
    let mut entries = match req.live {
        Some(l) => managed_fields(l)?,
        None => Vec::new(),
    };
    let is_ours = |e: &ManagedFieldsEntry| {
        e.manager == req.manager
            && e.operation == "Update"
            && e.api_version == api_version
            && e.subresource.is_none()
    };
    let cmp = s.comparison(req.live, &new);
    settle_others(&mut entries, is_ours, &cmp, true)?;
    let changed: FieldSet = strip(cmp.modified.iter().chain(&cmp.added).cloned().collect());
    let removed: FieldSet = cmp.removed.iter().cloned().collect();
    let mut result = new;
    match entries.iter_mut().find(|e| is_ours(e)) {
        Some(e) => {
            let fields = e.fields.union(&changed).difference(&removed);
            if !changed.is_empty() {
                e.time = req.time.map(str::to_string);
            }
            e.fields = fields;
        }
        None => entries.push(ManagedFieldsEntry {
            manager: req.manager.to_string(),
            operation: "Update".to_string(),
            api_version: api_version.to_string(),
            fields: changed,
            time: req.time.map(str::to_string),
            subresource: None,
        }),
    }
    write_entries(&mut result, entries, api_version, kind);
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fieldset::owned_by;
    use crate::lists::BuiltinLists;
    use serde_json::json;

    fn req<'a>(
        live: Option<&'a Value>,
        applied: &'a Value,
        manager: &'a str,
        force: bool,
    ) -> ApplyRequest<'a> {
        ApplyRequest {
            live,
            applied,
            manager,
            force,
            lists: &BuiltinLists,
            time: Some("2026-11-26T00:00:00Z"),
        }
    }

    fn cm(data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"}, "data": data})
    }

    #[test]
    fn create_then_remove_field() {
        let a1 = cm(json!({"a": "1", "b": "2"}));
        let live = server_side_apply(req(None, &a1, "gitops", false)).unwrap();
        assert_eq!(live["data"], json!({"a": "1", "b": "2"}));
        let mf = &live["metadata"]["managedFields"][0];
        assert_eq!(mf["manager"], "gitops");
        assert_eq!(mf["operation"], "Apply");
        assert_eq!(mf["fieldsType"], "FieldsV1");
        assert_eq!(mf["time"], "2026-11-26T00:00:00Z");
        assert_eq!(mf["fieldsV1"], json!({"f:data": {"f:a": {}, "f:b": {}}}));
        let a2 = cm(json!({"a": "1"}));
        let live2 = server_side_apply(req(Some(&live), &a2, "gitops", false)).unwrap();
        assert_eq!(live2["data"], json!({"a": "1"}));
    }

    #[test]
    fn conflicts_and_force() {
        let a1 = cm(json!({"a": "1"}));
        let live = server_side_apply(req(None, &a1, "alice", false)).unwrap();
        // Same value: shared, no conflict.
        let same = server_side_apply(req(Some(&live), &a1, "bob", false)).unwrap();
        assert_eq!(
            same["metadata"]["managedFields"].as_array().unwrap().len(),
            2
        );
        // Different value: conflict.
        let a2 = cm(json!({"a": "2"}));
        let err = server_side_apply(req(Some(&live), &a2, "bob", false)).unwrap_err();
        let ApplyError::Conflict { conflicts } = &err else {
            panic!("{err}")
        };
        assert_eq!(conflicts[0].manager, "alice");
        assert_eq!(conflicts[0].path.to_string(), "data.a");
        assert!(err.to_string().contains("data.a"));
        // Force moves ownership; alice's entry becomes empty and is dropped.
        let forced = server_side_apply(req(Some(&live), &a2, "bob", true)).unwrap();
        assert_eq!(forced["data"]["a"], "2");
        assert!(owned_by(&forced, "alice").unwrap().is_none());
        assert!(owned_by(&forced, "bob").unwrap().is_some());
    }

    #[test]
    fn shared_fields_are_kept() {
        let a1 = cm(json!({"a": "1", "b": "x"}));
        let live = server_side_apply(req(None, &a1, "alice", false)).unwrap();
        let b1 = cm(json!({"b": "x"}));
        let live = server_side_apply(req(Some(&live), &b1, "bob", false)).unwrap();
        // alice stops applying b: bob still owns it, so it stays.
        let a2 = cm(json!({"a": "1"}));
        let live = server_side_apply(req(Some(&live), &a2, "alice", false)).unwrap();
        assert_eq!(live["data"], json!({"a": "1", "b": "x"}));
    }

    #[test]
    fn lists_merge_by_key() {
        let d1 = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "a:1", "ports": [{"containerPort": 80}]},
            {"name": "side", "image": "s:1"}
        ]}}}});
        let mut live = server_side_apply(req(None, &d1, "gitops", false)).unwrap();
        // server defaulting
        live["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"] = json!("TCP");
        live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = json!("Always");
        let d2 = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "a:2", "ports": [{"containerPort": 80, "protocol": "TCP"}]}
        ]}}}});
        let out = server_side_apply(req(Some(&live), &d2, "gitops", false)).unwrap();
        let cs = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0]["image"], "a:2");
        assert_eq!(cs[0]["imagePullPolicy"], "Always");
        assert_eq!(cs[0]["ports"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn merge_order_keeps_live_order_then_appends() {
        let pe = |s: &str| PathElement::Value(json!(s));
        let lhs = [pe("a"), pe("c")];
        let rhs = [pe("a"), pe("b"), pe("c"), pe("d")];
        assert_eq!(
            merge_order(&lhs, &rhs),
            vec![
                (Some(0), Some(0)),
                (Some(1), Some(2)),
                (None, Some(1)),
                (None, Some(3))
            ]
        );
        assert_eq!(merge_order(&rhs[1..2], &[]), vec![(Some(0), None)]);
    }

    #[test]
    fn comparison_reports_inner_nodes_added_and_removed() {
        let gk = GroupKind::new("", "ConfigMap");
        let s = Typed {
            gk: &gk,
            lists: &BuiltinLists,
        };
        let old = cm(json!({"a": "1", "b": "2"}));
        let mut new = cm(json!({"a": "9"}));
        new["metadata"]["labels"] = json!({"x": "1"});
        let c = s.comparison(Some(&old), &new);
        let show = |v: &[FieldPath]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(show(&c.modified), ["data.a"]);
        assert_eq!(show(&c.removed), ["data.b"]);
        assert_eq!(show(&c.added), ["metadata.labels.x", "metadata.labels"]);
    }

    #[test]
    fn remove_leaves_null_for_an_emptied_map() {
        let gk = GroupKind::new("example.com", "Thing");
        let s = Typed {
            gk: &gk,
            lists: &BuiltinLists,
        };
        let v = json!({"spec": {"inner": {"a": "1"}, "c": "c"}});
        let set: FieldSet = [FieldPath::fields(&["spec", "inner", "a"])]
            .into_iter()
            .collect();
        assert_eq!(
            s.remove_set(&v, &set),
            json!({"spec": {"inner": null, "c": "c"}})
        );
    }

    #[test]
    fn errors() {
        let bad = json!({"kind": "ConfigMap"});
        assert!(matches!(
            server_side_apply(req(None, &bad, "m", false)),
            Err(ApplyError::MissingField {
                field: "apiVersion"
            })
        ));
        let a = cm(json!({}));
        let mut other = a.clone();
        other["metadata"]["name"] = json!("other");
        assert!(matches!(
            server_side_apply(req(Some(&other), &a, "m", false)),
            Err(ApplyError::Mismatch { .. })
        ));
        assert!(matches!(
            server_side_apply(req(None, &json!([]), "m", false)),
            Err(ApplyError::NotAnObject { .. })
        ));
    }
}
