//! `patches`, `patchesStrategicMerge`, `patchesJson6902` and the patch
//! transformer configs: strategic merge or JSON 6902, by target or by id.

use serde_json::Value;

use crate::resource::{Gvk, ResId, Resource};
use crate::selector::Selector;

/// A parsed patch.
#[derive(Clone, Debug)]
pub enum Patch {
    /// Strategic merge documents.
    StrategicMerge(Vec<Value>),
    /// A JSON 6902 operation list.
    Json6902(json_patch::Patch),
}

/// Parses patch text: a YAML/JSON list is JSON 6902, maps are strategic merge.
pub fn parse(file: &str, text: &str) -> Result<Patch, String> {
    let docs = crate::loader::parse_documents(file, text.as_bytes()).map_err(|e| e.to_string())?;
    if let [Value::Array(_)] = docs.as_slice() {
        let ops = docs.into_iter().next().unwrap_or_default();
        let p: json_patch::Patch =
            serde_json::from_value(ops).map_err(|e| format!("invalid JSON 6902 patch: {e}"))?;
        return Ok(Patch::Json6902(p));
    }
    if docs.iter().any(|d| !d.is_object()) {
        return Err("a patch is either one JSON 6902 list or strategic merge maps".into());
    }
    Ok(Patch::StrategicMerge(docs))
}

/// Parses a JSON 6902 patch only.
pub fn parse_json6902(file: &str, text: &str) -> Result<Patch, String> {
    let docs = crate::loader::parse_documents(file, text.as_bytes()).map_err(|e| e.to_string())?;
    let ops = docs.into_iter().next().unwrap_or(Value::Array(Vec::new()));
    let p: json_patch::Patch =
        serde_json::from_value(ops).map_err(|e| format!("invalid JSON 6902 patch: {e}"))?;
    Ok(Patch::Json6902(p))
}

fn patch_id(p: &Value) -> ResId {
    let s = |path: &[&str]| crate::resource::str_at(p, path).unwrap_or("").to_owned();
    ResId {
        gvk: Gvk::from_api_version(&s(&["apiVersion"]), &s(&["kind"])),
        name: s(&["metadata", "name"]),
        namespace: s(&["metadata", "namespace"]),
    }
}

/// Applies one strategic merge document; name, namespace and kind stay
/// what they were (as in kustomize's `ApplySmPatch`). `Ok(false)` when the
/// patch deletes the resource.
fn smp_one(r: &mut Resource, p: &Value) -> Result<bool, String> {
    let (name, ns) = (r.name().to_owned(), r.namespace().to_owned());
    let kind = r.obj.get("kind").cloned();
    match super::smp::apply(&r.obj, p)? {
        Some(v) => {
            let was_changed = r.changed;
            let old = std::mem::replace(&mut r.obj, v);
            r.set_name(&name);
            if ns.is_empty() {
                r.metadata_mut().remove("namespace");
            } else {
                r.set_namespace(&ns);
            }
            if let (Some(k), Some(m)) = (kind, r.obj.as_object_mut()) {
                m.insert("kind".into(), k);
            }
            r.changed = was_changed || r.obj != old;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Applies a patch; returns the resources it selected none of as an error.
pub fn apply(
    res: &mut Vec<Resource>,
    patch: &Patch,
    target: Option<&Selector>,
) -> Result<(), String> {
    match (patch, target) {
        (Patch::Json6902(_), None) => Err("a JSON 6902 patch needs a `target`".into()),
        (Patch::Json6902(ops), Some(sel)) => {
            for r in res.iter_mut().filter(|r| sel.matches(r)) {
                let before = r.cur_id();
                let mut obj = r.obj.clone();
                json_patch::patch(&mut obj, ops)
                    .map_err(|e| format!("applying JSON 6902 patch to {before}: {e}"))?;
                if obj != r.obj {
                    r.obj = obj;
                    r.changed = true;
                }
                if r.cur_id() != before {
                    r.prev.push(before);
                }
            }
            Ok(())
        }
        (Patch::StrategicMerge(docs), Some(sel)) => {
            for doc in docs {
                let mut keep = Vec::with_capacity(res.len());
                for mut r in std::mem::take(res) {
                    if sel.matches(&r) {
                        let mut p = doc.clone();
                        if let Some(m) = p.as_object_mut() {
                            m.insert(
                                "apiVersion".into(),
                                r.obj.get("apiVersion").cloned().unwrap_or(Value::Null),
                            );
                            m.insert(
                                "kind".into(),
                                r.obj.get("kind").cloned().unwrap_or(Value::Null),
                            );
                            let meta = crate::resource::ensure_obj(
                                m.entry("metadata").or_insert(Value::Null),
                            );
                            meta.insert("name".into(), Value::String(r.name().to_owned()));
                            if r.namespace().is_empty() {
                                meta.remove("namespace");
                            } else {
                                meta.insert(
                                    "namespace".into(),
                                    Value::String(r.namespace().to_owned()),
                                );
                            }
                        }
                        if !smp_one(&mut r, &p)? {
                            continue;
                        }
                    }
                    keep.push(r);
                }
                *res = keep;
            }
            Ok(())
        }
        (Patch::StrategicMerge(docs), None) => {
            for doc in docs {
                let id = patch_id(doc);
                let hits: Vec<usize> = res
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.matches_any_id(&id))
                    .map(|(i, _)| i)
                    .collect();
                match hits.as_slice() {
                    [i] => {
                        let i = *i;
                        let keep = match res.get_mut(i) {
                            Some(r) => smp_one(r, doc)?,
                            None => true,
                        };
                        if !keep {
                            res.remove(i);
                        }
                    }
                    [] => return Err(format!("no resource matches strategic merge patch {id}")),
                    _ => {
                        return Err(format!(
                            "multiple resources match strategic merge patch {id}"
                        ));
                    }
                }
            }
            Ok(())
        }
    }
}
