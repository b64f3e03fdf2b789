//! The `ValueAddTransformer`: puts a value (by default the kustomization
//! directory's name) into fields, whole or as one segment of a `/` path.

use serde_json::Value;

use crate::fieldspec::{split_path, visit};
use crate::resource::{Resource, assign};
use crate::selector::Selector;

/// One target: which objects, which field, where in the path.
pub struct Target {
    /// Objects (all when `None`).
    pub selector: Option<Selector>,
    /// `/`-separated field path.
    pub field_path: String,
    /// 0: replace the value; n: insert as the n-th `/` segment (1-based).
    pub file_path_position: usize,
}

/// Applies `value` to every target.
pub fn apply(res: &mut [Resource], value: &str, targets: &[Target]) {
    for t in targets {
        let segs = split_path(&t.field_path);
        for r in res.iter_mut() {
            if t.selector.as_ref().is_some_and(|s| !s.matches(r)) {
                continue;
            }
            if t.field_path == "metadata/namespace" && r.gvk().is_cluster_scoped() {
                continue;
            }
            let mut changed = false;
            visit(&mut r.obj, &segs, true, &mut |v: &mut Value| {
                if t.file_path_position == 0 {
                    changed |= assign(v, Value::String(value.to_owned()));
                    return;
                }
                changed = true;
                let cur = v.as_str().unwrap_or("").to_owned();
                let mut parts: Vec<&str> = if cur.is_empty() {
                    Vec::new()
                } else {
                    cur.split('/').collect()
                };
                let at = (t.file_path_position - 1).min(parts.len());
                parts.insert(at, value);
                *v = Value::String(parts.join("/"));
            });
            r.changed |= changed;
        }
    }
}
