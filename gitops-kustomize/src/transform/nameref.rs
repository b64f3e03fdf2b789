//! Name references: after renames (prefix, suffix, namespace, generator
//! hash), fields that name another object are rewritten to its new name,
//! following the `nameReference` table and kustomize's candidate rules.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::fieldspec::{FieldSpec, NameRef, visit};
use crate::resource::{Gvk, ResId, Resource};

/// A referral chosen for one field: its current name and namespace.
struct Referral {
    name: String,
    namespace: String,
}

struct Ctx<'a> {
    all: &'a [Resource],
    referrer: &'a Resource,
    referrer_id: ResId,
    target: &'a Gvk,
    path: &'a str,
    role_ref: Option<Gvk>,
    /// Indices of resources the referrer may refer to.
    subset: Vec<usize>,
}

fn prev_selected(r: &Resource, gvk: &Gvk) -> bool {
    r.prev.iter().any(|p| p.gvk.is_selected(gvk))
}

impl Ctx<'_> {
    fn select(
        &self,
        old: &str,
        cands: &[usize],
        with_ns: bool,
    ) -> Result<Option<Referral>, String> {
        let mut c: Vec<&Resource> = cands
            .iter()
            .filter_map(|i| self.all.get(*i))
            .filter(|r| r.prev.iter().any(|p| p.name == old))
            .filter(|r| prev_selected(r, self.target))
            .filter(|r| self.role_ref.as_ref().is_none_or(|g| prev_selected(r, g)))
            .collect();
        if !self.referrer_id.gvk.is_cluster_scoped() {
            c.retain(|r| {
                let id = r.cur_id();
                id.gvk.is_cluster_scoped()
                    || id.gvk.kind == "ServiceAccount"
                    || id.effective_namespace() == self.referrer_id.effective_namespace()
            });
        }
        if c.len() > 1 {
            c.retain(|r| {
                r.prefixes == self.referrer.prefixes && r.suffixes == self.referrer.suffixes
            });
        }
        let Some(first) = c.first() else {
            return Ok(None);
        };
        let same = c
            .iter()
            .all(|r| r.name() == first.name() && (!with_ns || r.namespace() == first.namespace()));
        if c.len() > 1 && !same {
            let ids: Vec<String> = c.iter().map(|r| r.cur_id().to_string()).collect();
            return Err(format!(
                "{} field `{}` refers to `{old}`, which matches several objects: {}",
                self.referrer_id,
                self.path,
                ids.join(", ")
            ));
        }
        Ok(Some(Referral {
            name: first.name().to_owned(),
            namespace: first.namespace().to_owned(),
        }))
    }

    /// Rewrites a name; whether it changed.
    fn set_scalar(&self, v: &mut Value, errs: &mut Vec<String>) -> bool {
        let Some(old) = v.as_str() else { return false };
        match self.select(old, &self.subset, false) {
            Ok(Some(r)) if r.name != old => {
                *v = Value::String(r.name);
                true
            }
            Ok(_) => false,
            Err(e) => {
                errs.push(e);
                false
            }
        }
    }

    /// Rewrites a `name` (and `namespace`) map; whether it changed.
    fn set_map(&self, v: &mut Value, errs: &mut Vec<String>) -> bool {
        let Some(m) = v.as_object_mut() else {
            return false;
        };
        let Some(old) = m.get("name").and_then(Value::as_str).map(str::to_owned) else {
            return false;
        };
        let cands: Vec<usize> = match m.get("namespace").and_then(Value::as_str) {
            None => self.subset.clone(),
            Some(ns) => {
                let eff = |n: &str| {
                    if n.is_empty() {
                        "default".to_owned()
                    } else {
                        n.to_owned()
                    }
                };
                let ns = eff(ns);
                let by_org: Vec<usize> = self
                    .subset
                    .iter()
                    .copied()
                    .filter(|i| {
                        self.all
                            .get(*i)
                            .is_some_and(|r| eff(&r.org_id().namespace) == ns)
                    })
                    .collect();
                if by_org.is_empty() {
                    self.subset
                        .iter()
                        .copied()
                        .filter(|i| self.all.get(*i).is_some_and(|r| eff(r.namespace()) == ns))
                        .collect()
                } else {
                    by_org
                }
            }
        };
        match self.select(&old, &cands, true) {
            Ok(Some(r)) => {
                if r.name == old && r.namespace.is_empty() {
                    return false;
                }
                let mut changed = r.name != old;
                m.insert("name".into(), Value::String(r.name));
                if !r.namespace.is_empty() {
                    changed |=
                        m.get("namespace").and_then(Value::as_str) != Some(r.namespace.as_str());
                    m.insert("namespace".into(), Value::String(r.namespace));
                }
                changed
            }
            Ok(None) => false,
            Err(e) => {
                errs.push(e);
                false
            }
        }
    }
}

fn subset_for(all: &[Resource], referrer: &Resource) -> Vec<usize> {
    let rid = referrer.cur_id();
    if rid.gvk.is_cluster_scoped() {
        return (0..all.len()).collect();
    }
    let mut binding_ns = BTreeSet::new();
    if matches!(rid.gvk.kind.as_str(), "RoleBinding" | "ClusterRoleBinding") {
        for s in referrer
            .obj
            .get("subjects")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(ns) = s.get("namespace").and_then(Value::as_str) {
                binding_ns.insert(ns.to_owned());
            }
        }
    }
    all.iter()
        .enumerate()
        .filter(|(_, r)| {
            let id = r.cur_id();
            id.gvk.is_cluster_scoped()
                || id.effective_namespace() == rid.effective_namespace()
                || binding_ns.contains(id.effective_namespace())
        })
        .map(|(i, _)| i)
        .collect()
}

/// What of a referrer the reference rules read: its kind, metadata,
/// `roleRef` and `subjects` (the rest is not looked at, so it is not copied).
fn skeleton(obj: &Value) -> Value {
    let mut m = serde_json::Map::new();
    for k in ["apiVersion", "kind", "metadata", "roleRef", "subjects"] {
        if let Some(v) = obj.get(k) {
            m.insert(k.to_owned(), v.clone());
        }
    }
    Value::Object(m)
}

/// Rewrites all name references; returns messages for ambiguous references.
///
/// Referrers are handled in order, each seeing the others as they are then
/// (earlier referrers already rewritten) and itself as it was before.
pub fn apply(res: &mut [Resource], table: &[NameRef]) -> Vec<String> {
    let mut errs = Vec::new();
    for i in 0..res.len() {
        let Some(r) = res.get(i) else { continue };
        let referrer_id = r.cur_id();
        if !table.iter().any(|nr| {
            nr.referrers
                .iter()
                .any(|fs| referrer_id.gvk.is_selected(&fs.gvk))
        }) {
            continue;
        }
        // The referrer's object is taken out to be edited; what the rules
        // read of it stays in place (unedited) for the others to see.
        let mut obj = match res.get_mut(i) {
            Some(r) => {
                let sk = skeleton(&r.obj);
                std::mem::replace(&mut r.obj, sk)
            }
            None => continue,
        };
        let mut changed = false;
        let all: &[Resource] = res;
        let Some(referrer) = all.get(i) else { continue };
        let subset = subset_for(all, referrer);
        for nr in table {
            for fs in &nr.referrers {
                if !referrer_id.gvk.is_selected(&fs.gvk) {
                    continue;
                }
                let role_ref = if fs.path.ends_with("roleRef/name") {
                    let rr = referrer.obj.get("roleRef");
                    let g = rr.and_then(|r| r.get("apiGroup")).and_then(Value::as_str);
                    let k = rr.and_then(|r| r.get("kind")).and_then(Value::as_str);
                    match (g, k) {
                        (Some(g), Some(k)) => Some(Gvk {
                            group: g.into(),
                            version: String::new(),
                            kind: k.into(),
                        }),
                        _ => None,
                    }
                } else {
                    None
                };
                let ctx = Ctx {
                    all,
                    referrer,
                    referrer_id: referrer_id.clone(),
                    target: &nr.gvk,
                    path: &fs.path,
                    role_ref,
                    subset: subset.clone(),
                };
                let spec = FieldSpec {
                    create: false,
                    ..fs.clone()
                };
                visit(
                    &mut obj,
                    &spec.segments(),
                    false,
                    &mut |v: &mut Value| match v {
                        Value::String(_) => changed |= ctx.set_scalar(v, &mut errs),
                        Value::Object(_) => changed |= ctx.set_map(v, &mut errs),
                        Value::Array(items) => {
                            for it in items {
                                if it.is_string() {
                                    changed |= ctx.set_scalar(it, &mut errs);
                                } else if it.is_object() {
                                    changed |= ctx.set_map(it, &mut errs);
                                }
                            }
                        }
                        _ => {}
                    },
                );
            }
        }
        if let Some(r) = res.get_mut(i) {
            r.changed |= changed;
            r.obj = obj;
        }
    }
    errs
}
