//! Legacy `vars:`: `$(NAME)` in the `varReference` fields becomes a field of another object.

use serde_json::Value;

use crate::fieldspec::{FieldSpec, apply_specs};
use crate::kustomization::{field, str_field};
use crate::resource::{Gvk, Resource};

/// Resolves `vars` (each `{name, objref, fieldref}`) in all resources.
pub fn apply(res: &mut [Resource], vars: &[Value], specs: &[FieldSpec]) -> Result<(), String> {
    let mut values: Vec<(String, String)> = Vec::new();
    for v in vars {
        let name = str_field(v, "name").unwrap_or_default();
        let objref = field(v, "objref").cloned().unwrap_or(Value::Null);
        let gvk = Gvk::from_api_version(
            &str_field(&objref, "apiVersion").unwrap_or_default(),
            &str_field(&objref, "kind").unwrap_or_default(),
        );
        let oname = str_field(&objref, "name").unwrap_or_default();
        let ons = str_field(&objref, "namespace").unwrap_or_default();
        let fpath = field(v, "fieldref")
            .and_then(|f| str_field(f, "fieldpath").or_else(|| str_field(f, "fieldPath")))
            .unwrap_or_else(|| "metadata.name".into());
        let hits: Vec<&Resource> = res
            .iter()
            .filter(|r| {
                std::iter::once(r.cur_id())
                    .chain(r.prev.iter().cloned())
                    .any(|id| {
                        id.gvk.is_selected(&gvk)
                            && id.name == oname
                            && (ons.is_empty() || id.namespace == ons)
                    })
            })
            .collect();
        let r = match hits.as_slice() {
            [one] => *one,
            [] => {
                return Err(format!(
                    "var `{name}` cannot be mapped to a field in the set of known resources"
                ));
            }
            _ => return Err(format!("var `{name}` matches more than one resource")),
        };
        let segs = super::replacements::split_field_path(&fpath);
        let mut cur = &r.obj;
        for s in &segs {
            let next = match (cur, s.parse::<usize>()) {
                (Value::Array(a), Ok(i)) => a.get(i),
                _ => cur.get(s.trim_start_matches('[').trim_end_matches(']')),
            };
            cur = next.ok_or_else(|| {
                format!("var `{name}`: field `{fpath}` not found in {}", r.cur_id())
            })?;
        }
        values.push((
            name,
            crate::kustomization::scalar_string(cur).unwrap_or_default(),
        ));
    }
    if values.is_empty() {
        return Ok(());
    }
    // Expands the vars in `s`; whether that changed it.
    let expand = |s: &mut String| -> bool {
        let mut out = s.clone();
        for (k, v) in &values {
            out = out.replace(&format!("$({k})"), v);
        }
        if out == *s {
            false
        } else {
            *s = out;
            true
        }
    };
    for r in res.iter_mut() {
        let id = r.cur_id();
        let mut changed = false;
        apply_specs(specs, &id, &mut r.obj, &mut |v: &mut Value| match v {
            Value::String(s) => changed |= expand(s),
            Value::Array(a) => {
                for x in a {
                    if let Value::String(s) = x {
                        changed |= expand(s);
                    }
                }
            }
            Value::Object(m) => {
                for x in m.values_mut() {
                    if let Value::String(s) = x {
                        changed |= expand(s);
                    }
                }
            }
            _ => {}
        });
        r.changed |= changed;
    }
    Ok(())
}
