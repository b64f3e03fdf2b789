//! Server-side apply, computed purely (what the in-memory runtime uses to
//! emulate an API server).

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::fieldset::{
    FieldPath, FieldSet, FieldsV1Error, GroupKind, ManagedFieldsEntry, managed_fields, resolve,
};
use crate::lists::{ListSemantics, ListType};
use crate::value::{
    canon_eq, cmp_values, fold_secret_string_data, item_key_string, prune_nulls, prune_value,
};

/// One apply request.
#[derive(Clone, Copy, Debug)]
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

/// A field another manager owns with a different value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
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
    /// The live object's `metadata.managedFields` could not be read.
    #[error("live object: {0}")]
    ManagedFields(#[from] FieldsV1Error),
}

/// Fields of the applied object that the apply never writes.
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

struct Merger<'r> {
    gk: &'r GroupKind,
    lists: &'r dyn ListSemantics,
}

impl Merger<'_> {
    fn merge<'a>(&self, target: &mut Value, src: &'a Value, names: &mut Vec<&'a str>) {
        match src {
            Value::Null => {}
            Value::Object(sm) => {
                if !target.is_object() {
                    *target = Value::Object(Map::new());
                }
                let Value::Object(tm) = target else { return };
                for (k, v) in sm {
                    if v.is_null() {
                        continue;
                    }
                    names.push(k);
                    if !never_written(names) {
                        match tm.get_mut(k.as_str()).filter(|t| !t.is_null()) {
                            Some(slot) => self.merge(slot, v, names),
                            None => {
                                if let Some(pv) = prune_value(v) {
                                    tm.insert(k.clone(), pv);
                                }
                            }
                        }
                    }
                    names.pop();
                }
            }
            Value::Array(sa) => {
                let lt = self
                    .lists
                    .list_type(self.gk, names)
                    .unwrap_or(ListType::Atomic);
                let Value::Array(ta) = target else {
                    *target = prune_nulls(src);
                    return;
                };
                match lt {
                    ListType::Atomic => *target = prune_nulls(src),
                    ListType::Set => {
                        for item in sa {
                            if !item.is_null() && !ta.iter().any(|t| cmp_values(t, item).is_eq()) {
                                ta.push(item.clone());
                            }
                        }
                    }
                    ListType::Map(mut keys) => {
                        keys.sort();
                        let mut index: HashMap<String, usize> = HashMap::with_capacity(ta.len());
                        for (j, t) in ta.iter().enumerate() {
                            if let Some(k) = item_key_string(t, &keys, self.lists, self.gk, names) {
                                index.entry(k).or_insert(j);
                            }
                        }
                        for item in sa {
                            if item.is_null() {
                                continue;
                            }
                            let key = item_key_string(item, &keys, self.lists, self.gk, names);
                            match key.as_ref().and_then(|k| index.get(k)).copied() {
                                Some(j) => self.merge(&mut ta[j], item, names),
                                None => {
                                    if let Some(k) = key {
                                        index.insert(k, ta.len());
                                    }
                                    ta.push(prune_nulls(item));
                                }
                            }
                        }
                    }
                }
            }
            scalar => *target = scalar.clone(),
        }
    }
}

fn str_at<'v>(v: &'v Value, pointer: &str) -> Option<&'v str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// Applies `req.applied` to `req.live` as the API server's server-side apply
/// does, and returns the new object with updated `metadata.managedFields`.
///
/// Maps merge recursively, associative lists by key, sets by value, atomic
/// lists and scalars are replaced. Fields the manager applied before and no
/// longer applies are removed unless another manager owns them (or
/// something below them). A changed field owned by another manager is a
/// conflict, unless `force`, which moves ownership to this manager.
/// `uid`, `resourceVersion` and `generation` are left alone. A core/v1
/// Secret's `stringData` is folded into `data` (base64), as the API server
/// stores it.
pub fn server_side_apply(req: ApplyRequest<'_>) -> Result<Value, ApplyError> {
    let applied = req.applied;
    if !applied.is_object() {
        return Err(ApplyError::NotAnObject { which: "applied" });
    }
    let api_version = str_at(applied, "/apiVersion").ok_or(ApplyError::MissingField {
        field: "apiVersion",
    })?;
    let kind = str_at(applied, "/kind").ok_or(ApplyError::MissingField { field: "kind" })?;
    let name = str_at(applied, "/metadata/name").ok_or(ApplyError::MissingField {
        field: "metadata.name",
    })?;
    if let Some(live) = req.live {
        if !live.is_object() {
            return Err(ApplyError::NotAnObject { which: "live" });
        }
        for (field, ptr, a) in [
            ("kind", "/kind", Some(kind)),
            ("metadata.name", "/metadata/name", Some(name)),
        ] {
            let l = str_at(live, ptr);
            if l.is_some() && l != a {
                return Err(ApplyError::Mismatch {
                    field,
                    applied: a.unwrap_or_default().to_string(),
                    live: l.unwrap_or_default().to_string(),
                });
            }
        }
    }
    let gk = GroupKind::of(applied);
    let lists = req.lists;
    let mut entries = match req.live {
        Some(l) => managed_fields(l)?,
        None => Vec::new(),
    };
    let is_ours = |e: &ManagedFieldsEntry| {
        e.manager == req.manager && e.operation == "Apply" && e.subresource.is_none()
    };
    let new_set = FieldSet::declared_by(applied, lists, &gk);
    let prev = entries
        .iter()
        .find(|e| is_ours(e))
        .map(|e| e.fields.clone())
        .unwrap_or_default();

    // Conflicts: fields we set to a new value that others own.
    if let Some(live) = req.live {
        let mut conflicts = Vec::new();
        for e in entries.iter().filter(|e| !is_ours(e)) {
            for p in new_set.intersection(&e.fields).iter() {
                if differs(applied, live, p, lists, &gk) {
                    conflicts.push(FieldConflict {
                        manager: e.manager.clone(),
                        path: p.clone(),
                    });
                }
            }
        }
        if !conflicts.is_empty() {
            if !req.force {
                return Err(ApplyError::Conflict { conflicts });
            }
            for e in entries.iter_mut().filter(|e| !is_ours(e)) {
                for c in conflicts.iter().filter(|c| c.manager == e.manager) {
                    e.fields.remove(&c.path);
                }
            }
        }
    }

    // Merge.
    let mut result = req
        .live
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    let merger = Merger { gk: &gk, lists };
    let mut names = Vec::new();
    merger.merge(&mut result, applied, &mut names);

    // Remove what we owned and no longer apply, unless others own it.
    let others = entries
        .iter()
        .filter(|e| !is_ours(e))
        .fold(FieldSet::new(), |acc, e| acc.union(&e.fields));
    let mut removed: Vec<&FieldPath> = Vec::new();
    for p in prev.difference(&new_set).iter() {
        if removed.last().is_some_and(|r| p.starts_with(r))
            || others.contains_prefix(p)
            || new_set.contains_prefix(p)
        {
            continue;
        }
        let replaced_whole = (1..p.0.len()).any(|n| {
            let q = FieldPath(p.0[..n].to_vec());
            new_set.contains(&q)
                && resolve(applied, &q, lists, &gk).is_some_and(|(_, v)| !v.is_object())
        });
        if replaced_whole {
            continue;
        }
        if let Some((ptr, _)) = resolve(&result, p, lists, &gk) {
            crate::value::remove_pointer(&mut result, &ptr);
        }
        // Remember it even if absent, so its descendants are skipped.
        removed.push(p);
    }
    // A Secret's `stringData` is folded into `data` and never stored (the
    // manager still owns the `stringData` fields it applied).
    fold_secret_string_data(&mut result);

    // managedFields.
    let ours = ManagedFieldsEntry {
        manager: req.manager.to_string(),
        operation: "Apply".to_string(),
        api_version: api_version.to_string(),
        fields: new_set,
        time: req.time.map(str::to_string),
        subresource: None,
    };
    let mut out_entries: Vec<Value> = Vec::with_capacity(entries.len() + 1);
    let mut placed = false;
    for e in &entries {
        if is_ours(e) {
            if !ours.fields.is_empty() {
                out_entries.push(ours.to_value());
            }
            placed = true;
        } else if !e.fields.is_empty() {
            out_entries.push(e.to_value());
        }
    }
    if !placed && !ours.fields.is_empty() {
        out_entries.push(ours.to_value());
    }
    if let Value::Object(top) = &mut result {
        top.insert("apiVersion".into(), Value::String(api_version.to_string()));
        top.insert("kind".into(), Value::String(kind.to_string()));
        let meta = top
            .entry("metadata".to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(meta) = meta {
            if out_entries.is_empty() {
                meta.shift_remove("managedFields");
            } else {
                meta.insert("managedFields".into(), Value::Array(out_entries));
            }
        }
    }
    Ok(result)
}

/// Whether the applied value at `p` differs from live (leaves only: maps and
/// associative lists are compared through their children).
fn differs(
    applied: &Value,
    live: &Value,
    p: &FieldPath,
    lists: &dyn ListSemantics,
    gk: &GroupKind,
) -> bool {
    let (Some((_, a)), Some((_, l))) =
        (resolve(applied, p, lists, gk), resolve(live, p, lists, gk))
    else {
        return false;
    };
    if a.is_object() && l.is_object() {
        return false;
    }
    let names: Vec<&str> = p.field_names();
    if a.is_array()
        && l.is_array()
        && !matches!(lists.list_type(gk, &names), None | Some(ListType::Atomic))
    {
        return false;
    }
    let mut names = names;
    !canon_eq(a, l, gk, &mut names, true)
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
