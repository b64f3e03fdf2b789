//! `namespace:`: sets the namespace of namespaced objects and of the fields
//! in the `namespace` table; binding subjects named `default` follow.

use serde_json::Value;

use crate::fieldspec::{FieldSpec, apply_specs};
use crate::resource::{Resource, assign};

/// Sets `ns` on every resource (only where unset with `unset_only`).
pub fn apply(res: &mut [Resource], ns: &str, specs: &[FieldSpec], unset_only: bool) {
    let specs: Vec<FieldSpec> = specs
        .iter()
        .filter(|fs| fs.path != "metadata/namespace")
        .filter(|fs| {
            !(matches!(fs.gvk.kind.as_str(), "RoleBinding" | "ClusterRoleBinding")
                && fs.path.starts_with("subjects"))
        })
        .cloned()
        .collect();
    let set = |v: &mut Value, changed: &mut bool| {
        let empty = v.as_str().is_none_or(str::is_empty);
        if !unset_only || empty {
            *changed |= assign(v, Value::String(ns.to_owned()));
        }
    };
    for r in res.iter_mut() {
        let mut changed = false;
        r.store_prev();
        let id = r.cur_id();
        if !id.gvk.is_cluster_scoped() && (!unset_only || r.namespace().is_empty()) {
            r.set_namespace(ns);
        }
        if matches!(id.gvk.kind.as_str(), "RoleBinding" | "ClusterRoleBinding")
            && let Some(Value::Array(subjects)) = r.obj.get_mut("subjects")
        {
            for s in subjects {
                if s.get("name").and_then(Value::as_str) == Some("default")
                    && let Some(m) = s.as_object_mut()
                {
                    let cur = m.entry("namespace").or_insert(Value::Null);
                    set(cur, &mut changed);
                }
            }
        }
        apply_specs(&specs, &id, &mut r.obj, &mut |v| set(v, &mut changed));
        r.changed |= changed;
    }
}
