//! Comparison of a desired manifest with a live object, with server-side
//! apply semantics.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::fmt::{self, Write as _};
use std::rc::Rc;
use std::sync::Arc;

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation, RemoveOperation, ReplaceOperation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::fieldset::{
    FieldPath, FieldSet, FieldsV1Error, GroupKind, PathElement, managed_fields, resolve,
};
use crate::lists::{BuiltinLists, ListSemantics, ListType};
use crate::value::{
    canon_eq, cmp_values, fold_secret_string_data, is_empty_like, is_quantity_position,
    is_server_field, item_key, item_key_string, pointer_segments, prune_nulls, push_escaped,
    remove_pointer, scalar_eq, write_canonical, zero_is_omitted,
};

/// Differences to ignore for matching objects (like Argo CD's
/// `ignoreDifferences`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct IgnoreRule {
    /// API group to match (`""` for core); `None` matches any.
    pub group: Option<String>,
    /// Kind to match; `None` matches any.
    pub kind: Option<String>,
    /// RFC 6901 pointers removed from both sides before comparing
    /// (e.g. `/spec/replicas`). A pointer into a list addresses an element
    /// by position; removing an element shifts the positions that the
    /// changes' pointers (taken from live without it) refer to. The empty
    /// pointer ignores the whole object.
    pub json_pointers: Vec<String>,
    /// Field managers whose fields (per the live `managedFields`) are ignored
    /// (e.g. the HPA's `kube-controller-manager` owning `spec.replicas`).
    pub managers: Vec<String>,
}

impl IgnoreRule {
    /// A rule matching every object and ignoring nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only objects of this API group (`""` for core).
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// Only objects of this kind.
    pub fn kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = Some(kind.into());
        self
    }

    /// Ignore the field at this RFC 6901 pointer.
    pub fn pointer(mut self, pointer: impl Into<String>) -> Self {
        self.json_pointers.push(pointer.into());
        self
    }

    /// Ignore the fields this field manager owns.
    pub fn manager(mut self, manager: impl Into<String>) -> Self {
        self.managers.push(manager.into());
        self
    }

    /// Whether the rule applies to objects of this group/kind.
    pub fn matches(&self, gk: &GroupKind) -> bool {
        self.group.as_ref().is_none_or(|g| *g == gk.group)
            && self.kind.as_ref().is_none_or(|k| *k == gk.kind)
    }
}

/// Options of [`compare`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DiffOptions {
    /// List semantics (built-in table by default; layer CRD tables over it
    /// with [`crate::LayeredLists`]).
    pub lists: Arc<dyn ListSemantics>,
    /// Ignore rules.
    pub ignore: Vec<IgnoreRule>,
}

impl DiffOptions {
    /// The built-in list table, no ignore rules.
    pub fn new() -> Self {
        Self::default()
    }

    /// These list semantics.
    pub fn lists(mut self, lists: Arc<dyn ListSemantics>) -> Self {
        self.lists = lists;
        self
    }

    /// One more ignore rule.
    pub fn ignore(mut self, rule: IgnoreRule) -> Self {
        self.ignore.push(rule);
        self
    }
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions {
            lists: Arc::new(BuiltinLists),
            ignore: Vec::new(),
        }
    }
}

/// The kind of a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// The field is absent from live and desired sets it.
    Add,
    /// Live has a different value.
    Replace,
    /// We owned the field before, no longer declare it, and live still has it.
    Remove,
}

/// One field-level difference.
///
/// A change of a secret value ([`Change::sensitive`]: a `Secret`'s `data`)
/// shows masked values in its `Debug` and serialised forms (see
/// [`crate::secrets`]); the fields keep the real values.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct Change {
    /// The field (readable when displayed).
    pub path: FieldPath,
    /// RFC 6901 pointer into live (`/-` appends to a list).
    pub pointer: String,
    /// What changes.
    pub op: Op,
    /// The live value (`None` for `Add`).
    pub before: Option<Value>,
    /// The desired value (`None` for `Remove`).
    pub after: Option<Value>,
    /// The values are secret: masked wherever the change is printed or
    /// serialised.
    pub sensitive: bool,
}

impl Change {
    /// A change (not sensitive).
    pub fn new(
        path: FieldPath,
        pointer: impl Into<String>,
        op: Op,
        before: Option<Value>,
        after: Option<Value>,
    ) -> Self {
        Self {
            path,
            pointer: pointer.into(),
            op,
            before,
            after,
            sensitive: false,
        }
    }

    /// The values as they may be shown: masked when sensitive.
    pub fn shown(&self) -> (Option<Value>, Option<Value>) {
        if self.sensitive {
            crate::secrets::mask_change(self.before.as_ref(), self.after.as_ref())
        } else {
            (self.before.clone(), self.after.clone())
        }
    }
}

impl fmt::Debug for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (before, after) = self.shown();
        f.debug_struct("Change")
            .field("path", &self.path)
            .field("pointer", &self.pointer)
            .field("op", &self.op)
            .field("before", &before)
            .field("after", &after)
            .field("sensitive", &self.sensitive)
            .finish()
    }
}

impl Serialize for Change {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let (before, after) = self.shown();
        let mut st = serializer.serialize_struct("Change", 6)?;
        st.serialize_field("path", &self.path)?;
        st.serialize_field("pointer", &self.pointer)?;
        st.serialize_field("op", &self.op)?;
        st.serialize_field("before", &before)?;
        st.serialize_field("after", &after)?;
        if self.sensitive {
            st.serialize_field("sensitive", &true)?;
        } else {
            st.skip_field("sensitive")?;
        }
        st.end()
    }
}

/// The differences between a desired manifest and a live object, in a
/// stable order (sorted by field path).
#[derive(Clone, Default, PartialEq, Serialize)]
pub struct ObjectDiff {
    /// The changes, sorted by path.
    pub changes: Vec<Change>,
    /// RFC 7386 merge patch, computed with the changes (lists need the
    /// whole live list, which the changes alone do not carry).
    #[serde(skip)]
    merge: Option<Value>,
    /// The kind, when it holds secrets ([`ObjectDiff::render`] masks them).
    #[serde(skip)]
    secret_kind: Option<GroupKind>,
}

/// Errors of [`compare`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DiffError {
    /// The desired or live value is not a JSON object.
    #[error("the {which} object is not a JSON object")]
    NotAnObject {
        /// `desired` or `live`.
        which: &'static str,
    },
    /// The live object's `metadata.managedFields` could not be read.
    #[error("live {gk} object: {source}")]
    ManagedFields {
        /// The object's group/kind.
        gk: String,
        /// The parse error.
        source: FieldsV1Error,
    },
    /// An ignore rule has an invalid JSON pointer.
    #[error("ignore rule for {gk}: invalid JSON pointer {pointer:?} (must start with '/')")]
    InvalidPointer {
        /// The object's group/kind.
        gk: String,
        /// The pointer as written.
        pointer: String,
    },
    /// The computed patch did not apply to live (a bug; reported, not hidden).
    #[error(
        "internal error: the computed JSON Patch does not apply to the live {gk} object: {reason}"
    )]
    Patch {
        /// The object's group/kind.
        gk: String,
        /// The patch error.
        reason: String,
    },
}

fn to_pointer_buf(p: &str) -> PointerBuf {
    PointerBuf::from_tokens(pointer_segments(p))
}

fn cmp_pointers(a: &str, b: &str) -> Ordering {
    let sa = pointer_segments(a);
    let sb = pointer_segments(b);
    for (x, y) in sa.iter().zip(sb.iter()) {
        let c = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(i), Ok(j)) => i.cmp(&j),
            _ => x.cmp(y),
        };
        if c != Ordering::Equal {
            return c;
        }
    }
    sa.len().cmp(&sb.len())
}

impl fmt::Debug for ObjectDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ObjectDiff");
        d.field("changes", &self.changes);
        match &self.secret_kind {
            // The merge patch holds the values in clear.
            Some(gk) => d.field("merge", &"(masked)").field("secret_kind", gk),
            None => d.field("merge", &self.merge),
        };
        d.finish()
    }
}

impl ObjectDiff {
    /// Builds a diff from changes (sorted here). Its merge patch is derived
    /// from the changes alone: list elements are not expressible, so prefer
    /// the diff [`compare`] returns.
    pub fn from_changes(mut changes: Vec<Change>) -> Self {
        changes.sort_by(|a, b| a.path.cmp(&b.path).then(a.op.cmp(&b.op)));
        ObjectDiff {
            changes,
            merge: None,
            secret_kind: None,
        }
    }

    /// Marks the secret values of an object of kind `gk` as sensitive
    /// (done by [`compare`]; for diffs built with
    /// [`from_changes`](Self::from_changes)).
    pub fn mask_secrets(&mut self, gk: &GroupKind) {
        if !crate::secrets::is_secret_kind(gk) {
            return;
        }
        self.secret_kind = Some(gk.clone());
        for c in &mut self.changes {
            c.sensitive |= crate::secrets::is_secret_pointer(gk, &c.pointer);
        }
    }

    /// Opt-in: print and serialise secret values in clear (for a user who
    /// asked for them explicitly).
    pub fn reveal_secrets(&mut self) {
        self.secret_kind = None;
        for c in &mut self.changes {
            c.sensitive = false;
        }
    }

    /// Whether there is no difference.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Number of changes.
    pub fn len(&self) -> usize {
        self.changes.len()
    }

    /// RFC 6902 JSON Patch turning live into desired for the compared
    /// fields: adds and replaces first, then removals (deepest list indices
    /// first, so indices stay valid).
    pub fn json_patch(&self) -> Patch {
        let mut ops = Vec::with_capacity(self.changes.len());
        let mut removes: Vec<&str> = Vec::new();
        for c in &self.changes {
            match c.op {
                Op::Add => ops.push(PatchOperation::Add(AddOperation {
                    path: to_pointer_buf(&c.pointer),
                    value: c.after.clone().unwrap_or(Value::Null),
                })),
                Op::Replace => ops.push(PatchOperation::Replace(ReplaceOperation {
                    path: to_pointer_buf(&c.pointer),
                    value: c.after.clone().unwrap_or(Value::Null),
                })),
                Op::Remove => removes.push(&c.pointer),
            }
        }
        removes.sort_by(|a, b| cmp_pointers(b, a));
        for r in removes {
            ops.push(PatchOperation::Remove(RemoveOperation {
                path: to_pointer_buf(r),
            }));
        }
        Patch(ops)
    }

    /// RFC 7386 merge patch turning live into desired for the compared
    /// fields. A change inside a list sets the whole (patched) list, since
    /// merge patches replace lists.
    pub fn merge_patch(&self) -> Value {
        if let Some(m) = &self.merge {
            return m.clone();
        }
        let mut mp = Value::Object(Map::new());
        for c in &self.changes {
            let segs = pointer_segments(&c.pointer);
            let cut = c
                .path
                .0
                .iter()
                .position(|pe| !matches!(pe, PathElement::Field(_)))
                .unwrap_or(segs.len());
            if cut < segs.len() {
                // Without live we cannot rebuild the list; skip it.
                continue;
            }
            let v = match c.op {
                Op::Remove => Value::Null,
                _ => c.after.clone().unwrap_or(Value::Null),
            };
            set_in(&mut mp, &segs, v);
        }
        mp
    }

    /// A readable YAML unified diff of the object: live (without status and
    /// server-populated metadata) against live with this diff applied.
    /// Empty when there is no change.
    pub fn render(&self, live: &Value, colour: bool) -> String {
        if self.is_empty() {
            return String::new();
        }
        let mut after = live.clone();
        if json_patch::patch(&mut after, &self.json_patch().0).is_err() {
            return String::new();
        }
        let mut before = strip_server_fields(live);
        let mut after = strip_server_fields(&after);
        if let Some(gk) = &self.secret_kind {
            (before, after) = crate::secrets::mask_pair(gk, &before, &after);
        }
        crate::render::unified_diff(&before, &after, "live", "desired", colour)
    }
}

/// A copy of an object without `status`, server-populated metadata and
/// the last-applied annotation (the form shown in diffs).
pub fn strip_server_fields(v: &Value) -> Value {
    let mut out = v.clone();
    if let Value::Object(m) = &mut out {
        m.remove("status");
        if let Some(Value::Object(meta)) = m.get_mut("metadata") {
            meta.retain(|k, _| {
                !is_server_field(&["metadata", k]) || k == "name" || k == "namespace"
            });
            let mut empty = false;
            if let Some(Value::Object(ann)) = meta.get_mut("annotations") {
                ann.retain(|k, _| !is_server_field(&["metadata", "annotations", k]));
                empty = ann.is_empty();
            }
            if empty {
                meta.remove("annotations");
            }
        }
    }
    out
}

fn set_in(root: &mut Value, segs: &[String], v: Value) {
    let mut cur = root;
    for (i, s) in segs.iter().enumerate() {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Value::Object(m) = cur else { return };
        if i + 1 == segs.len() {
            m.insert(s.clone(), v);
            return;
        }
        cur = m
            .entry(s.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

/// `null`, or a non-empty map of only such values: declares nothing.
fn all_null(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => !m.is_empty() && m.values().all(all_null),
        _ => false,
    }
}

enum Seg<'a> {
    Field(&'a str),
    /// An associative-list item; its key is built only when a change is recorded.
    Item(&'a Value, Rc<[String]>),
    Value(&'a Value),
    Index(usize),
}

struct Walker<'a, 'o> {
    gk: &'o GroupKind,
    lists: &'o dyn ListSemantics,
    ignored: Option<&'o FieldSet>,
    segs: Vec<Seg<'a>>,
    names: Vec<&'a str>,
    ptr: String,
    changes: Vec<Change>,
}

impl<'a> Walker<'a, '_> {
    fn field_path(&self) -> FieldPath {
        let mut fields = 0;
        FieldPath(
            self.segs
                .iter()
                .map(|s| match s {
                    Seg::Field(f) => {
                        fields += 1;
                        PathElement::Field((*f).to_string())
                    }
                    Seg::Item(item, keys) => {
                        let names = &self.names[..fields.min(self.names.len())];
                        match item_key(item, keys, self.lists, self.gk, names) {
                            Some(k) => PathElement::Key(k),
                            None => PathElement::Index(0),
                        }
                    }
                    Seg::Value(v) => PathElement::Value((*v).clone()),
                    Seg::Index(i) => PathElement::Index(*i),
                })
                .collect(),
        )
    }

    fn record(&mut self, op: Op, pointer: String, before: Option<&Value>, after: Option<&Value>) {
        let path = self.field_path();
        self.changes.push(Change::new(
            path,
            pointer,
            op,
            before.cloned(),
            after.map(prune_nulls),
        ));
    }

    fn walk_map(&mut self, dm: &'a Map<String, Value>, lm: &Map<String, Value>) {
        for (k, dv) in dm {
            if dv.is_null() {
                continue;
            }
            self.names.push(k);
            if is_server_field(&self.names) {
                self.names.pop();
                continue;
            }
            let len = self.ptr.len();
            push_escaped(&mut self.ptr, k);
            self.segs.push(Seg::Field(k));
            self.walk(dv, lm.get(k));
            self.segs.pop();
            self.ptr.truncate(len);
            self.names.pop();
        }
    }

    fn walk(&mut self, d: &'a Value, l: Option<&Value>) {
        if let Some(ign) = self.ignored
            && ign.contains(&self.field_path())
        {
            return;
        }
        if all_null(d) {
            // Declares nothing (like `null`): not compared.
            return;
        }
        let l = l.filter(|v| !v.is_null());
        match (d, l) {
            (Value::Null, _) => {}
            (Value::Object(dm), Some(Value::Object(lm))) => self.walk_map(dm, lm),
            (Value::Array(da), Some(Value::Array(la))) => self.walk_list(d, da, l, la),
            (_, None) => {
                // Empty values, and zero scalars of built-in kinds (Go
                // `omitempty`), are what the server stores as absent.
                let stored_absent = is_empty_like(d) || zero_is_omitted(self.gk, &self.names, d);
                if !stored_absent {
                    self.record(Op::Add, self.ptr.clone(), None, Some(d));
                }
            }
            (Value::Object(_) | Value::Array(_), Some(lv)) => {
                if !is_empty_like(d) || !is_empty_like(lv) {
                    self.record(Op::Replace, self.ptr.clone(), Some(lv), Some(d));
                }
            }
            (_, Some(lv)) => {
                let q = is_quantity_position(self.gk, &self.names);
                if !scalar_eq(d, lv, q) {
                    self.record(Op::Replace, self.ptr.clone(), Some(lv), Some(d));
                }
            }
        }
    }

    fn walk_list(&mut self, d: &'a Value, da: &'a [Value], l: Option<&Value>, la: &[Value]) {
        let lt = self
            .lists
            .list_type(self.gk, &self.names)
            .unwrap_or(ListType::Atomic);
        match lt {
            ListType::Atomic => {
                let Some(lv) = l else { return };
                if !canon_eq(d, lv, self.gk, &mut self.names, true) {
                    self.record(Op::Replace, self.ptr.clone(), Some(lv), Some(d));
                }
            }
            ListType::Set => {
                // Index live values when the list is not tiny.
                let index: Option<HashSet<String>> = (la.len() > 8).then(|| {
                    la.iter()
                        .map(|x| {
                            let mut s = String::new();
                            write_canonical(&mut s, x);
                            s
                        })
                        .collect()
                });
                for item in da {
                    if item.is_null() {
                        continue;
                    }
                    let present = match &index {
                        Some(index) => {
                            let mut s = String::new();
                            write_canonical(&mut s, item);
                            index.contains(&s)
                        }
                        None => la.iter().any(|x| cmp_values(x, item) == Ordering::Equal),
                    };
                    if !present {
                        self.segs.push(Seg::Value(item));
                        let ptr = format!("{}/-", self.ptr);
                        self.record(Op::Add, ptr, None, Some(item));
                        self.segs.pop();
                    }
                }
            }
            ListType::Map(mut keys) => {
                keys.sort();
                let keys: Rc<[String]> = keys.into();
                let mut index: HashMap<String, usize> = HashMap::with_capacity(la.len());
                for (j, it) in la.iter().enumerate() {
                    if let Some(k) = item_key_string(it, &keys, self.lists, self.gk, &self.names) {
                        index.entry(k).or_insert(j);
                    }
                }
                for (i, item) in da.iter().enumerate() {
                    if item.is_null() {
                        continue;
                    }
                    let len = self.ptr.len();
                    let found = item_key_string(item, &keys, self.lists, self.gk, &self.names)
                        .map(|ks| index.get(&ks).copied());
                    match found {
                        Some(found) => {
                            self.segs.push(Seg::Item(item, Rc::clone(&keys)));
                            match found {
                                Some(j) => {
                                    let _ = write!(self.ptr, "/{j}");
                                    self.walk(item, la.get(j));
                                }
                                None => {
                                    let ptr = format!("{}/-", self.ptr);
                                    self.record(Op::Add, ptr, None, Some(item));
                                }
                            }
                        }
                        None => {
                            // No key fields: fall back to position.
                            self.segs.push(Seg::Index(i));
                            if la.get(i).is_some() {
                                self.ptr.push_str(&format!("/{i}"));
                                self.walk(item, la.get(i));
                            } else {
                                let ptr = format!("{}/-", self.ptr);
                                self.record(Op::Add, ptr, None, Some(item));
                            }
                        }
                    }
                    self.segs.pop();
                    self.ptr.truncate(len);
                }
            }
        }
    }
}

/// Compares a desired manifest with a live object, with server-side-apply
/// semantics.
///
/// * Every field `desired` sets is compared (quantities, numbers, empty
///   values and `null` canonically; associative lists by key, sets by value,
///   atomic lists whole with server defaults inside their elements allowed).
/// * A field in `previously_owned` that `desired` no longer declares and live
///   still has is a removal, unless another field manager in live's
///   `managedFields` also owns it (an entry whose field set equals
///   `previously_owned` is taken to be ours).
///   A key field of an associative-list item that desired omits is not a
///   removal when its owned value is the key default and the desired item
///   matches by that defaulted key (e.g. `protocol: TCP` of a port that
///   omits `protocol`).
/// * A core/v1 Secret's `stringData` is compared as the API server stores
///   it: folded into `data` (base64; `stringData` wins for the same key).
/// * For built-in kinds (the API groups of types compiled into the API
///   server: core, `apps`, `batch`, `policy`, `autoscaling`, the built-in
///   `*.k8s.io` groups, but not CRD groups such as
///   `gateway.networking.k8s.io`), a declared zero scalar (`false`, `0`,
///   `""`) of a struct field equals an absent live field: Go's `omitempty`
///   does not store it. Entries of string maps (labels, annotations,
///   selectors, ConfigMap/Secret data, ...) are stored even when empty, and
///   custom resources store what they are given: there a declared zero
///   must be present.
/// * `status`, server-populated metadata, fields only others set, and server
///   defaults are never drift; ignore rules remove more.
pub fn compare(
    desired: &Value,
    live: &Value,
    previously_owned: Option<&FieldSet>,
    options: &DiffOptions,
) -> Result<ObjectDiff, DiffError> {
    if !desired.is_object() {
        return Err(DiffError::NotAnObject { which: "desired" });
    }
    if !live.is_object() {
        return Err(DiffError::NotAnObject { which: "live" });
    }
    let mut gk = GroupKind::of(desired);
    if gk.kind.is_empty() {
        gk = GroupKind::of(live);
    }
    let lists: &dyn ListSemantics = &*options.lists;
    let rules: Vec<&IgnoreRule> = options.ignore.iter().filter(|r| r.matches(&gk)).collect();

    // JSON-pointer rules: remove those fields from both sides.
    let mut d: Cow<'_, Value> = Cow::Borrowed(desired);
    let mut l: Cow<'_, Value> = Cow::Borrowed(live);
    for r in &rules {
        for p in &r.json_pointers {
            if p.is_empty() {
                return Ok(ObjectDiff::default());
            }
            if !p.starts_with('/') {
                return Err(DiffError::InvalidPointer {
                    gk: gk.to_string(),
                    pointer: p.clone(),
                });
            }
            remove_pointer(d.to_mut(), p);
            remove_pointer(l.to_mut(), p);
        }
    }
    // The API server folds a Secret's `stringData` into `data` and never
    // stores it: compare what it will store. Ignored `stringData` keys are
    // gone by now; ignored `data` keys must not come back from it.
    if gk.group.is_empty() && gk.kind == "Secret" && d.get("stringData").is_some() {
        let mut folded = d.clone().into_owned();
        if fold_secret_string_data(&mut folded) {
            for p in rules.iter().flat_map(|r| &r.json_pointers) {
                if p == "/data" || p.starts_with("/data/") {
                    remove_pointer(&mut folded, p);
                }
            }
            d = Cow::Owned(folded);
        }
    }

    // Manager rules and co-ownership need live managedFields (parsed only
    // when needed).
    let managers: Vec<&str> = rules
        .iter()
        .flat_map(|r| r.managers.iter().map(String::as_str))
        .collect();
    let parse_entries = || {
        managed_fields(live).map_err(|source| DiffError::ManagedFields {
            gk: gk.to_string(),
            source,
        })
    };
    let mut entries = None;
    let ignored: Option<FieldSet> = if managers.is_empty() {
        None
    } else {
        let parsed = parse_entries()?;
        let set = parsed
            .iter()
            .filter(|e| managers.contains(&e.manager.as_str()))
            .fold(FieldSet::new(), |acc, e| acc.union(&e.fields));
        entries = Some(parsed);
        Some(set)
    }
    .filter(|s| !s.is_empty());

    let mut w = Walker {
        gk: &gk,
        lists,
        ignored: ignored.as_ref(),
        segs: Vec::new(),
        names: Vec::new(),
        ptr: String::new(),
        changes: Vec::new(),
    };
    if let (Value::Object(dm), Value::Object(lm)) = (&*d, &*l) {
        w.walk_map(dm, lm);
    }
    let mut changes = w.changes;

    if let Some(prev) = previously_owned {
        let candidates = undeclared(prev, &d, lists, &gk);
        if !candidates.is_empty() {
            let entries = match entries.take() {
                Some(e) => e,
                None => parse_entries()?,
            };
            let others = entries
                .iter()
                .filter(|e| e.fields != *prev)
                .fold(FieldSet::new(), |acc, e| acc.union(&e.fields));
            let mut removed: Vec<&FieldPath> = Vec::new();
            for p in candidates {
                if removed.last().is_some_and(|r| p.starts_with(r))
                    || others.contains_prefix(p)
                    || ignored
                        .as_ref()
                        .is_some_and(|ign| ign.covers(p) || ign.contains_prefix(p))
                {
                    continue;
                }
                if let Some((ptr, v)) = resolve(&l, p, lists, &gk) {
                    changes.push(Change::new(
                        p.clone(),
                        ptr,
                        Op::Remove,
                        Some(v.clone()),
                        None,
                    ));
                    removed.push(p);
                }
            }
        }
    }

    let mut diff = ObjectDiff::from_changes(changes);
    diff.mask_secrets(&gk);
    if !diff.is_empty() {
        diff.merge = Some(build_merge_patch(&diff, &l, &gk)?);
    }
    Ok(diff)
}

/// Whether a desired value declares something (mirrors
/// [`FieldSet::declared_by`]: scalars, an explicit `null`, atomic lists and
/// empty maps are members; maps and associative lists declare what they
/// contain).
fn declares<'a>(
    v: &'a Value,
    lists: &dyn ListSemantics,
    gk: &GroupKind,
    names: &mut Vec<&'a str>,
) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => {
            m.is_empty()
                || m.iter().any(|(k, c)| {
                    names.push(k);
                    let r = !is_server_field(names) && declares(c, lists, gk, names);
                    names.pop();
                    r
                })
        }
        Value::Array(a) => match lists.list_type(gk, names) {
            Some(ListType::Set | ListType::Map(_)) => a.iter().any(|x| !x.is_null()),
            _ => true,
        },
        _ => true,
    }
}

/// The paths of `prev` that `desired` no longer declares (neither the path
/// nor anything below it), excluding server fields and paths below a field
/// the desired object now sets whole (a scalar or atomic list). Walks the
/// sorted paths once, reusing the resolution of shared prefixes.
fn undeclared<'p>(
    prev: &'p FieldSet,
    desired: &Value,
    lists: &dyn ListSemantics,
    gk: &GroupKind,
) -> Vec<&'p FieldPath> {
    struct Frame<'d> {
        value: Option<&'d Value>,
        /// The value (at this depth or above) is set whole.
        whole: bool,
        names: usize,
        /// Key index of the list at this depth (key string -> item index).
        index: Option<HashMap<String, usize>>,
    }
    let mut out = Vec::new();
    let mut frames: Vec<Frame<'_>> = vec![Frame {
        value: Some(desired),
        whole: false,
        names: 0,
        index: None,
    }];
    let mut names: Vec<&'p str> = Vec::new();
    let mut last: Option<&'p FieldPath> = None;
    for p in prev.iter() {
        let common = last.map_or(0, |l| {
            l.0.iter().zip(&p.0).take_while(|(a, b)| a == b).count()
        });
        frames.truncate(common + 1);
        names.truncate(frames[common].names);
        for pe in &p.0[common..] {
            let depth = frames.len() - 1;
            let parent_whole = frames[depth].whole;
            let cur = frames[depth].value;
            let next: Option<&Value> = match (cur, pe) {
                (Some(Value::Object(m)), PathElement::Field(f)) => m.get(f),
                (Some(Value::Array(a)), PathElement::Key(k)) => {
                    let frame = &mut frames[depth];
                    let sorted: Vec<String> = {
                        let mut ks: Vec<String> = k.keys().cloned().collect();
                        ks.sort();
                        ks
                    };
                    let index = frame.index.get_or_insert_with(|| {
                        let mut idx = HashMap::with_capacity(a.len());
                        for (j, it) in a.iter().enumerate() {
                            if let Some(ks) = item_key_string(it, &sorted, lists, gk, &names) {
                                idx.entry(ks).or_insert(j);
                            }
                        }
                        idx
                    });
                    let mut ks = String::new();
                    for key in &sorted {
                        if let Some(v) = k.get(key) {
                            ks.push_str(key);
                            ks.push('=');
                            write_canonical(&mut ks, v);
                            ks.push('\u{0}');
                        }
                    }
                    index.get(&ks).and_then(|j| a.get(*j))
                }
                (Some(Value::Array(a)), PathElement::Value(v)) => {
                    a.iter().find(|x| cmp_values(x, v) == Ordering::Equal)
                }
                (Some(Value::Array(a)), PathElement::Index(i)) => a.get(*i),
                _ => None,
            };
            // An explicit `null` declares the field (an apply records and
            // owns it), so it is not a removal.
            if let PathElement::Field(f) = pe {
                names.push(f);
            }
            let whole = parent_whole
                || match next {
                    Some(Value::Object(_)) | None => false,
                    Some(Value::Array(_)) => {
                        matches!(lists.list_type(gk, &names), None | Some(ListType::Atomic))
                    }
                    Some(_) => true,
                };
            frames.push(Frame {
                value: next,
                whole,
                names: names.len(),
                index: None,
            });
        }
        last = Some(p);
        let n = p.0.len();
        if n == 0 || frames[n - 1].whole {
            continue;
        }
        if (1..=names.len()).any(|k| is_server_field(&names[..k])) {
            continue;
        }
        if defaulted_key_field(p, frames[n - 1].value.is_some(), &names, lists, gk) {
            continue;
        }
        let still = match frames[n].value {
            None => false,
            Some(v) => {
                let mut nm = names.clone();
                declares(v, lists, gk, &mut nm)
            }
        };
        if !still {
            out.push(p);
        }
    }
    out
}

/// Whether `p` is a key field of an associative-list item (`...[k].f`, `f`
/// one of the key's fields) whose value in the key is the key default, and
/// the desired item matched that key (`item_matched`): the desired item
/// omits the field and matches by its defaulted key, so the field is still
/// what desired means (e.g. an owned `protocol: TCP` of a port that omits
/// `protocol`). Removing it would change nothing. `names` are the field
/// names of `p`.
fn defaulted_key_field(
    p: &FieldPath,
    item_matched: bool,
    names: &[&str],
    lists: &dyn ListSemantics,
    gk: &GroupKind,
) -> bool {
    let [.., PathElement::Key(key), PathElement::Field(f)] = p.0.as_slice() else {
        return false;
    };
    let Some((_, list)) = names.split_last() else {
        return false;
    };
    item_matched
        && key.get(f).is_some_and(|v| {
            lists
                .key_default(gk, list, f)
                .is_some_and(|d| cmp_values(&d, v) == Ordering::Equal)
        })
}

fn build_merge_patch(diff: &ObjectDiff, live: &Value, gk: &GroupKind) -> Result<Value, DiffError> {
    let mut patched = live.clone();
    json_patch::patch(&mut patched, &diff.json_patch().0).map_err(|e| DiffError::Patch {
        gk: gk.to_string(),
        reason: e.to_string(),
    })?;
    let mut mp = Value::Object(Map::new());
    for c in &diff.changes {
        let segs = pointer_segments(&c.pointer);
        // The first list on the way down: merge patches replace lists whole.
        let mut cur = live;
        let mut list_at = None;
        for (i, s) in segs.iter().enumerate() {
            if cur.is_array() {
                list_at = Some(i);
                break;
            }
            match cur.get(s.as_str()) {
                Some(n) => cur = n,
                None => break,
            }
        }
        match list_at {
            Some(i) => {
                let prefix = &segs[..i];
                let mut target = &patched;
                for s in prefix {
                    target = target.get(s.as_str()).unwrap_or(&Value::Null);
                }
                set_in(&mut mp, prefix, target.clone());
            }
            None => {
                let v = match c.op {
                    Op::Remove => Value::Null,
                    _ => c.after.clone().unwrap_or(Value::Null),
                };
                set_in(&mut mp, &segs, v);
            }
        }
    }
    Ok(mp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn opts() -> DiffOptions {
        DiffOptions::default()
    }

    fn deploy() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "prod", "labels": {"app": "web"}},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{
                        "name": "app", "image": "web:1",
                        "ports": [{"containerPort": 8080}],
                        "resources": {"limits": {"cpu": 0.5, "memory": "1Gi"}}
                    }]}
                }
            }
        })
    }

    fn live_of(d: &Value) -> Value {
        let mut l = d.clone();
        l["metadata"]["uid"] = json!("u-1");
        l["metadata"]["resourceVersion"] = json!("42");
        l["metadata"]["annotations"] = json!({LAST: "{}"});
        l["status"] = json!({"replicas": 3});
        l["spec"]["strategy"] = json!({"type": "RollingUpdate"});
        let c = &mut l["spec"]["template"]["spec"]["containers"][0];
        c["imagePullPolicy"] = json!("IfNotPresent");
        c["ports"][0]["protocol"] = json!("TCP");
        c["resources"]["limits"]["cpu"] = json!("500m");
        c["resources"]["limits"]["memory"] = json!("1024Mi");
        l
    }
    const LAST: &str = crate::value::LAST_APPLIED_ANNOTATION;

    #[test]
    fn defaults_status_metadata_are_not_drift() {
        let d = deploy();
        let l = live_of(&d);
        let diff = compare(&d, &l, None, &opts()).unwrap();
        assert!(diff.is_empty(), "{:#?}", diff.changes);
    }

    #[test]
    fn changed_image_is_a_replace() {
        let d = deploy();
        let mut l = live_of(&d);
        l["spec"]["template"]["spec"]["containers"][0]["image"] = json!("web:0");
        let diff = compare(&d, &l, None, &opts()).unwrap();
        assert_eq!(diff.changes.len(), 1);
        let c = &diff.changes[0];
        assert_eq!(c.op, Op::Replace);
        assert_eq!(
            c.path.to_string(),
            "spec.template.spec.containers[name=app].image"
        );
        assert_eq!(c.pointer, "/spec/template/spec/containers/0/image");
        let mut c0 = l["spec"]["template"]["spec"]["containers"][0].clone();
        c0["image"] = json!("web:1");
        assert_eq!(
            diff.merge_patch(),
            json!({"spec": {"template": {"spec": {"containers": [c0]}}}})
        );
    }

    #[test]
    fn int_or_string_is_precise() {
        let d = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"ports": [{"port": 80, "targetPort": 8080}]}});
        let mut l = d.clone();
        l["spec"]["ports"][0]["targetPort"] = json!("8080");
        l["spec"]["ports"][0]["protocol"] = json!("TCP");
        let diff = compare(&d, &l, None, &opts()).unwrap();
        assert_eq!(diff.changes.len(), 1);
        assert_eq!(
            diff.changes[0].path.to_string(),
            "spec.ports[port=80,protocol=TCP].targetPort"
        );
    }

    #[test]
    fn removal_of_previously_owned() {
        let d = deploy();
        let mut l = live_of(&d);
        l["metadata"]["labels"]["team"] = json!("a");
        let mut prev_obj = d.clone();
        prev_obj["metadata"]["labels"]["team"] = json!("a");
        let prev = FieldSet::declared_by(&prev_obj, &BuiltinLists, &GroupKind::of(&d));
        let diff = compare(&d, &l, Some(&prev), &opts()).unwrap();
        assert_eq!(diff.changes.len(), 1, "{:#?}", diff.changes);
        assert_eq!(diff.changes[0].op, Op::Remove);
        assert_eq!(diff.changes[0].pointer, "/metadata/labels/team");
        assert_eq!(
            diff.merge_patch(),
            json!({"metadata": {"labels": {"team": null}}})
        );
    }

    #[test]
    fn manager_ignore_rule() {
        let d = deploy();
        let mut l = live_of(&d);
        l["spec"]["replicas"] = json!(7);
        l["metadata"]["managedFields"] = json!([{"manager": "kube-controller-manager",
            "operation": "Update", "subresource": "scale", "apiVersion": "apps/v1",
            "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]);
        assert_eq!(compare(&d, &l, None, &opts()).unwrap().len(), 1);
        let o = DiffOptions {
            ignore: vec![IgnoreRule {
                group: Some("apps".into()),
                kind: Some("Deployment".into()),
                managers: vec!["kube-controller-manager".into()],
                ..Default::default()
            }],
            ..opts()
        };
        assert!(compare(&d, &l, None, &o).unwrap().is_empty());
        let o = DiffOptions {
            ignore: vec![IgnoreRule {
                json_pointers: vec!["/spec/replicas".into()],
                ..Default::default()
            }],
            ..opts()
        };
        assert!(compare(&d, &l, None, &o).unwrap().is_empty());
        let bad = DiffOptions {
            ignore: vec![IgnoreRule {
                json_pointers: vec!["spec".into()],
                ..Default::default()
            }],
            ..opts()
        };
        assert!(matches!(
            compare(&d, &l, None, &bad),
            Err(DiffError::InvalidPointer { .. })
        ));
    }

    #[test]
    fn errors() {
        assert!(matches!(
            compare(&json!(1), &json!({}), None, &opts()),
            Err(DiffError::NotAnObject { which: "desired" })
        ));
        assert!(matches!(
            compare(&json!({}), &json!([]), None, &opts()),
            Err(DiffError::NotAnObject { which: "live" })
        ));
    }

    #[test]
    fn patch_orders_removals() {
        let d = ObjectDiff::from_changes(vec![
            Change::new(FieldPath::fields(&["a"]), "/l/2", Op::Remove, None, None),
            Change::new(FieldPath::fields(&["b"]), "/l/10", Op::Remove, None, None),
        ]);
        let p = serde_json::to_value(d.json_patch()).unwrap();
        assert_eq!(
            p,
            json!([{"op": "remove", "path": "/l/10"}, {"op": "remove", "path": "/l/2"}])
        );
    }
}
