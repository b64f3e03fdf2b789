//! Strategic merge patches, with kustomize's list semantics and the
//! `$patch`, `$setElementOrder`, `$retainKeys` and
//! `$deleteFromPrimitiveList` directives.
//!
//! A list merges by key when all its elements are maps carrying one of
//! kustomize's associative keys (kyaml's rule); the key is the Kubernetes
//! merge key of the field when [`gitops_diff::BuiltinLists`] knows it.

use gitops_diff::fieldset::GroupKind;
use gitops_diff::{BuiltinLists, ListSemantics, ListType};
use serde_json::{Map, Value};

/// kyaml's associative keys, in its order of preference.
const ASSOCIATIVE_KEYS: &[&str] = &[
    "mountPath",
    "devicePath",
    "ip",
    "type",
    "topologyKey",
    "name",
    "containerPort",
];

const SET_ORDER: &str = "$setElementOrder/";
const DELETE_PRIMITIVE: &str = "$deleteFromPrimitiveList/";

/// What merging a map produced.
enum Outcome {
    Keep,
    Delete,
}

struct Ctx<'a> {
    gk: &'a GroupKind,
}

/// Applies `patch` to `target`; `Ok(None)` when the patch deletes the object.
pub fn apply(target: &Value, patch: &Value) -> Result<Option<Value>, String> {
    let gvk = crate::resource::Gvk::from_api_version(
        target
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or(""),
        target.get("kind").and_then(Value::as_str).unwrap_or(""),
    );
    let gk = GroupKind {
        group: gvk.group,
        kind: gvk.kind,
    };
    let ctx = Ctx { gk: &gk };
    let mut out = target.clone();
    let (Value::Object(o), Value::Object(p)) = (&mut out, patch) else {
        return Err("a strategic merge patch is a map".into());
    };
    let mut path = Vec::new();
    match merge_map(&ctx, o, p, &mut path)? {
        Outcome::Delete => Ok(None),
        Outcome::Keep => Ok(Some(out)),
    }
}

fn directive(p: &Map<String, Value>) -> Option<&str> {
    p.get("$patch").and_then(Value::as_str)
}

/// The patch without its directives (for values added as a whole).
fn strip(v: &Value) -> Option<Value> {
    match v {
        Value::Object(m) => {
            if directive(m) == Some("delete") {
                return None;
            }
            let mut out = Map::new();
            for (k, v) in m {
                if k.starts_with('$') {
                    continue;
                }
                if let Some(s) = strip(v) {
                    out.insert(k.clone(), s);
                }
            }
            Some(Value::Object(out))
        }
        Value::Array(a) => Some(Value::Array(
            a.iter()
                .filter(|e| e.as_object().is_none_or(|m| directive(m).is_none()))
                .filter_map(strip)
                .collect(),
        )),
        other => Some(other.clone()),
    }
}

fn merge_map(
    ctx: &Ctx<'_>,
    orig: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    path: &mut Vec<String>,
) -> Result<Outcome, String> {
    match directive(patch) {
        Some("delete") => return Ok(Outcome::Delete),
        Some("replace") => {
            if let Some(Value::Object(m)) = strip(&Value::Object(patch.clone())) {
                *orig = m;
            }
            return Ok(Outcome::Keep);
        }
        Some("merge") | None => {}
        Some(other) => return Err(format!("unknown $patch directive `{other}`")),
    }
    for (k, pv) in patch {
        if let Some(field) = k.strip_prefix(DELETE_PRIMITIVE) {
            if let (Some(Value::Array(list)), Value::Array(del)) = (orig.get_mut(field), pv) {
                list.retain(|x| !del.contains(x));
            }
            continue;
        }
        if k.starts_with('$') {
            continue;
        }
        match pv {
            Value::Null => {
                orig.remove(k);
            }
            Value::Object(pm) => {
                path.push(k.clone());
                let existing = orig.get_mut(k);
                match existing {
                    Some(Value::Object(om)) => {
                        if let Outcome::Delete = merge_map(ctx, om, pm, path)? {
                            orig.remove(k);
                        }
                    }
                    _ => match strip(pv) {
                        Some(v) => {
                            orig.insert(k.clone(), v);
                        }
                        None => {
                            orig.remove(k);
                        }
                    },
                }
                path.pop();
            }
            Value::Array(pl) => {
                path.push(k.clone());
                match orig.get_mut(k) {
                    Some(Value::Array(ol)) => merge_list(ctx, ol, pl, path)?,
                    _ => {
                        if let Some(v) = strip(pv) {
                            orig.insert(k.clone(), v);
                        }
                    }
                }
                path.pop();
            }
            scalar => {
                orig.insert(k.clone(), scalar.clone());
            }
        }
    }
    for (k, order) in patch {
        if let (Some(field), Value::Array(order)) = (k.strip_prefix(SET_ORDER), order)
            && let Some(Value::Array(list)) = orig.get_mut(field)
        {
            set_order(list, order);
        }
    }
    if let Some(Value::Array(keep)) = patch.get("$retainKeys") {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        orig.retain(|k, _| keep.contains(&k.as_str()));
    }
    Ok(Outcome::Keep)
}

/// Reorders `list` as `order` says (elements not named keep their place after the named ones).
fn set_order(list: &mut [Value], order: &[Value]) {
    let key = order
        .first()
        .and_then(Value::as_object)
        .and_then(|m| m.keys().next().cloned());
    let pos = |e: &Value| -> usize {
        order
            .iter()
            .position(|o| match &key {
                Some(k) => e.get(k).is_some() && e.get(k) == o.get(k),
                None => e == o,
            })
            .unwrap_or(usize::MAX)
    };
    list.sort_by_key(pos);
}

fn merge_key(ctx: &Ctx<'_>, path: &[String], orig: &[Value], patch: &[Value]) -> Option<String> {
    let all: Vec<&Value> = orig.iter().chain(patch.iter()).collect();
    let elems: Vec<&Map<String, Value>> = all
        .iter()
        .filter_map(|v| v.as_object())
        .filter(|m| !(m.len() == 1 && directive(m).is_some()))
        .collect();
    if elems.is_empty()
        || elems.len()
            != all
                .iter()
                .filter(|v| {
                    !v.as_object()
                        .is_some_and(|m| m.len() == 1 && directive(m).is_some())
                })
                .count()
    {
        return None;
    }
    let refs: Vec<&str> = path.iter().map(String::as_str).collect();
    if let Some(ListType::Map(keys)) = BuiltinLists.list_type(ctx.gk, &refs)
        && let Some(k) = keys.first()
        && elems.iter().all(|m| m.contains_key(k))
    {
        return Some(k.clone());
    }
    if !elems
        .iter()
        .all(|m| ASSOCIATIVE_KEYS.iter().any(|k| m.contains_key(*k)))
    {
        return None;
    }
    ASSOCIATIVE_KEYS
        .iter()
        .find(|k| elems.iter().all(|m| m.contains_key(**k)))
        .map(|k| (*k).to_owned())
}

fn merge_list(
    ctx: &Ctx<'_>,
    orig: &mut Vec<Value>,
    patch: &[Value],
    path: &mut Vec<String>,
) -> Result<(), String> {
    if patch
        .iter()
        .any(|e| e.as_object().and_then(directive) == Some("replace"))
    {
        if let Some(Value::Array(a)) = strip(&Value::Array(patch.to_vec())) {
            *orig = a;
        }
        return Ok(());
    }
    let Some(key) = merge_key(ctx, path, orig, patch) else {
        if let Some(Value::Array(a)) = strip(&Value::Array(patch.to_vec())) {
            *orig = a;
        }
        return Ok(());
    };
    // kustomize merges with kyaml's "prepend" direction: the elements the
    // patch names come first, in the patch's order, then the others.
    let mut front: Vec<Value> = Vec::new();
    for pe in patch {
        let Some(pm) = pe.as_object() else { continue };
        let Some(kv) = pm.get(&key) else { continue };
        let idx = orig.iter().position(|o| o.get(&key) == Some(kv));
        let existing = idx.map(|i| orig.remove(i));
        if directive(pm) == Some("delete") {
            continue;
        }
        match existing {
            Some(Value::Object(mut om)) => {
                if let Outcome::Keep = merge_map(ctx, &mut om, pm, path)? {
                    front.push(Value::Object(om));
                }
            }
            Some(other) => front.push(other),
            None => {
                if let Some(v) = strip(pe) {
                    front.push(v);
                }
            }
        }
    }
    front.append(orig);
    *orig = front;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deploy(containers: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
               "spec": {"template": {"spec": {"containers": containers}}}})
    }

    #[test]
    fn merges_containers_by_name() {
        let t = deploy(json!([{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]));
        let p = deploy(json!([{"name": "b", "image": "z"}, {"name": "c", "image": "w"}]));
        let out = apply(&t, &p).ok().flatten().unwrap_or_default();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "b", "image": "z"}, {"name": "c", "image": "w"}, {"name": "a", "image": "x"}])
        );
    }

    #[test]
    fn null_deletes_a_field() {
        let t = json!({"kind": "X", "spec": {"a": 1, "b": 2}});
        let out = apply(&t, &json!({"spec": {"a": null}}))
            .ok()
            .flatten()
            .unwrap_or_default();
        assert_eq!(out["spec"], json!({"b": 2}));
    }

    #[test]
    fn patch_delete_directive_on_element_and_object() {
        let t = deploy(json!([{"name": "a"}, {"name": "b"}]));
        let p = deploy(json!([{"name": "a", "$patch": "delete"}]));
        let out = apply(&t, &p).ok().flatten().unwrap_or_default();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "b"}])
        );
        let whole = json!({"kind": "Deployment", "$patch": "delete"});
        assert!(matches!(apply(&t, &whole), Ok(None)));
    }

    #[test]
    fn patch_replace_directive_on_map_and_list() {
        let t = json!({"kind": "X", "spec": {"a": 1, "b": {"c": 2}}});
        let out = apply(&t, &json!({"spec": {"$patch": "replace", "z": 1}}))
            .ok()
            .flatten();
        assert_eq!(out.unwrap_or_default()["spec"], json!({"z": 1}));
        let t = deploy(json!([{"name": "a"}, {"name": "b"}]));
        let p = deploy(json!([{"$patch": "replace"}, {"name": "c"}]));
        let out = apply(&t, &p).ok().flatten().unwrap_or_default();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "c"}])
        );
    }

    #[test]
    fn set_element_order() {
        let t = deploy(json!([{"name": "a"}, {"name": "b"}]));
        let mut p = deploy(json!([]));
        p["spec"]["template"]["spec"]["$setElementOrder/containers"] =
            json!([{"name": "b"}, {"name": "a"}]);
        let out = apply(&t, &p).ok().flatten().unwrap_or_default();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "b"}, {"name": "a"}])
        );
    }

    #[test]
    fn retain_keys() {
        let t = json!({"kind": "X", "spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
        let p = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
        let out = apply(&t, &p).ok().flatten().unwrap_or_default();
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn delete_from_primitive_list() {
        let t = json!({"kind": "X", "metadata": {"finalizers": ["a", "b", "c"]}});
        let p = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}});
        let out = apply(&t, &p).ok().flatten().unwrap_or_default();
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "c"]));
    }

    #[test]
    fn scalar_lists_are_replaced() {
        let t = deploy(json!([{"name": "a", "args": ["1", "2"]}]));
        let p = deploy(json!([{"name": "a", "args": ["3"]}]));
        let out = apply(&t, &p).ok().flatten().unwrap_or_default();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["args"],
            json!(["3"])
        );
    }
}
