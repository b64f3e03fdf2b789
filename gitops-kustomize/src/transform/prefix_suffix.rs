//! `namePrefix:` / `nameSuffix:` and the `PrefixSuffixTransformer`.

use serde_json::Value;

use crate::fieldspec::{FieldSpec, visit};
use crate::resource::{Gvk, Resource};

/// Kinds whose names never get a prefix or suffix.
fn skipped(g: &Gvk) -> bool {
    g.kind == "CustomResourceDefinition"
        || g.kind == "Namespace"
        || (g.group == "apiregistration.k8s.io" && g.kind == "APIService")
}

/// Adds `prefix` and `suffix` at the fields of `specs`.
pub fn apply(res: &mut [Resource], prefix: &str, suffix: &str, specs: &[FieldSpec]) {
    if prefix.is_empty() && suffix.is_empty() {
        return;
    }
    for r in res.iter_mut() {
        let org = r.org_id();
        if skipped(&org.gvk) {
            continue;
        }
        for fs in specs {
            if !org.gvk.is_selected(&fs.gvk) {
                continue;
            }
            if fs.path == "metadata/name" {
                r.store_prev();
                let name = format!("{prefix}{}{suffix}", r.name());
                r.set_name(&name);
                if !prefix.is_empty() {
                    r.prefixes.push(prefix.to_owned());
                }
                if !suffix.is_empty() {
                    r.suffixes.push(suffix.to_owned());
                }
            } else {
                let mut changed = false;
                visit(
                    &mut r.obj,
                    &fs.segments(),
                    fs.create,
                    &mut |v: &mut Value| {
                        if let Some(s) = v.as_str() {
                            *v = Value::String(format!("{prefix}{s}{suffix}"));
                            changed = true;
                        }
                    },
                );
                r.changed |= changed;
            }
        }
    }
}
