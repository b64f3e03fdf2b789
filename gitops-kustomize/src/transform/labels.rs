//! `commonLabels`, `labels`, `commonAnnotations` and the Label/Annotations
//! transformers: set string pairs in the maps at the table's fields.

use serde_json::{Map, Value};

use crate::fieldspec::{FieldSpec, apply_specs};
use crate::resource::Resource;

/// Sets `pairs` in the maps at `specs`.
pub fn apply(res: &mut [Resource], pairs: &[(String, String)], specs: &[FieldSpec]) {
    if pairs.is_empty() {
        return;
    }
    for r in res.iter_mut() {
        let id = r.cur_id();
        let mut changed = false;
        apply_specs(specs, &id, &mut r.obj, &mut |v: &mut Value| {
            if v.is_null() {
                *v = Value::Object(Map::new());
            }
            if let Value::Object(m) = v {
                for (k, val) in pairs {
                    if m.get(k).and_then(Value::as_str) != Some(val.as_str()) {
                        m.insert(k.clone(), Value::String(val.clone()));
                        changed = true;
                    }
                }
            }
        });
        r.changed |= changed;
    }
}
