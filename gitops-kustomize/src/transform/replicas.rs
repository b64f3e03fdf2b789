//! `replicas:`: sets the replica count of the named workloads.

use serde_json::Value;

use crate::fieldspec::{FieldSpec, visit};
use crate::resource::{Resource, assign};

/// Sets `count` on resources named `name` (currently or originally); false if none matched.
pub fn apply(res: &mut [Resource], name: &str, count: i64, specs: &[FieldSpec]) -> bool {
    let mut found = false;
    for r in res.iter_mut() {
        if r.name() != name && !r.prev.iter().any(|p| p.name == name) {
            continue;
        }
        let gvk = r.org_id().gvk;
        for fs in specs {
            if gvk.is_selected(&fs.gvk) {
                found = true;
                let mut changed = false;
                visit(
                    &mut r.obj,
                    &fs.segments(),
                    fs.create,
                    &mut |v: &mut Value| {
                        changed |= assign(v, Value::from(count));
                    },
                );
                r.changed |= changed;
                break;
            }
        }
    }
    found
}
