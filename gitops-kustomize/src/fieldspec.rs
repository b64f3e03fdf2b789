//! Field specs: which fields of which kinds a transformer touches, as data.
//!
//! The default tables ([`TransformerConfig::builtin`]) follow kustomize's
//! `api/konfig/builtinpluginconsts`; a kustomization's `configurations:`
//! files extend them with the same YAML shape.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};

use crate::resource::{Gvk, ResId};

/// A field of the objects of some kinds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct FieldSpec {
    /// Which objects (empty fields match anything).
    pub gvk: Gvk,
    /// The path, `/`-separated (`\/` escapes a slash; `[]` marks a list, lists are also crossed implicitly).
    pub path: String,
    /// Whether a missing field is created.
    pub create: bool,
}

impl FieldSpec {
    /// Reads a field spec from its YAML form (`group`, `version`, `kind`, `path`, `create`).
    pub fn from_value(v: &Value) -> Option<Self> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let path = v.get("path")?.as_str()?.to_owned();
        Some(Self {
            gvk: Gvk {
                group: s("group"),
                version: s("version"),
                kind: s("kind"),
            },
            path,
            create: v.get("create").and_then(Value::as_bool).unwrap_or(false),
        })
    }

    /// The path's segments, with `[]` markers dropped and `\/` unescaped.
    pub fn segments(&self) -> Vec<String> {
        split_path(&self.path)
    }
}

pub(crate) fn split_path(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'/') => {
                cur.push('/');
                chars.next();
            }
            '/' => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|s| s.strip_suffix("[]").map(str::to_owned).unwrap_or(s))
        .filter(|s| !s.is_empty())
        .collect()
}

/// Calls `f` on each value at `segs` under `node`; lists are crossed
/// element by element. With `create`, missing maps are created on the way
/// and a missing leaf is passed as `Null` (for `f` to fill in).
pub fn visit(node: &mut Value, segs: &[String], create: bool, f: &mut dyn FnMut(&mut Value)) {
    let Some((first, rest)) = segs.split_first() else {
        f(node);
        return;
    };
    match node {
        Value::Array(items) => {
            for it in items {
                visit(it, segs, create, f);
            }
        }
        Value::Object(m) => {
            if let Some(child) = m.get_mut(first.as_str()).filter(|c| !c.is_null()) {
                visit(child, rest, create, f);
            } else if create {
                let fresh = if rest.is_empty() {
                    Value::Null
                } else {
                    Value::Object(Map::new())
                };
                m.insert(first.clone(), fresh);
                if let Some(child) = m.get_mut(first.as_str()) {
                    visit(child, rest, create, f);
                }
            }
        }
        _ => {}
    }
}

/// Applies `f` at every field of `specs` selecting `id`'s gvk in `obj`.
pub fn apply_specs(
    specs: &[FieldSpec],
    id: &ResId,
    obj: &mut Value,
    f: &mut dyn FnMut(&mut Value),
) {
    for fs in specs {
        if id.gvk.is_selected(&fs.gvk) {
            visit(obj, &fs.segments(), fs.create, f);
        }
    }
}

/// A kind whose name other objects refer to, and the fields that refer to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameRef {
    /// The referred-to kind.
    pub gvk: Gvk,
    /// The referring fields.
    pub referrers: Vec<FieldSpec>,
}

/// The field-spec tables of all built-in transformers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransformerConfig {
    /// `namePrefix` fields.
    pub name_prefix: Vec<FieldSpec>,
    /// `nameSuffix` fields.
    pub name_suffix: Vec<FieldSpec>,
    /// `namespace` fields.
    pub namespace: Vec<FieldSpec>,
    /// `commonLabels` fields (metadata, selectors, templates).
    pub common_labels: Vec<FieldSpec>,
    /// Pod-template label fields (`labels[].includeTemplates`).
    pub template_labels: Vec<FieldSpec>,
    /// `commonAnnotations` fields.
    pub common_annotations: Vec<FieldSpec>,
    /// Name references.
    pub name_reference: Vec<NameRef>,
    /// Fields where `$(VAR)` is expanded.
    pub var_reference: Vec<FieldSpec>,
    /// Image fields.
    pub images: Vec<FieldSpec>,
    /// Replica count fields.
    pub replicas: Vec<FieldSpec>,
}

/// Appends the specs of `from` that `into` lacks, in order (through a set:
/// tables hold hundreds of specs).
fn extend_unique<'a>(into: &mut Vec<FieldSpec>, from: impl IntoIterator<Item = &'a FieldSpec>) {
    let mut seen: HashSet<&FieldSpec> = into.iter().collect();
    let new: Vec<FieldSpec> = from
        .into_iter()
        .filter(|fs| seen.insert(fs))
        .cloned()
        .collect();
    into.extend(new);
}

impl TransformerConfig {
    /// kustomize's default tables, parsed once per process and shared:
    /// every kustomization of a build starts from them.
    pub fn builtin() -> Arc<Self> {
        static BUILTIN: OnceLock<Arc<TransformerConfig>> = OnceLock::new();
        BUILTIN
            .get_or_init(|| {
                let mut c = Self::default();
                // The tables are constants of this crate; they parse.
                if let Ok(v) = serde_yaml::from_str::<Value>(crate::tables::DEFAULTS) {
                    c.merge_value(&v);
                }
                Arc::new(c)
            })
            .clone()
    }

    /// Adds the tables of a `configurations:` document.
    pub fn merge_value(&mut self, v: &Value) {
        let list = |key: &str| -> Vec<FieldSpec> {
            v.get(key)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(FieldSpec::from_value).collect())
                .unwrap_or_default()
        };
        for (key, into) in [
            ("namePrefix", &mut self.name_prefix),
            ("nameSuffix", &mut self.name_suffix),
            ("namespace", &mut self.namespace),
            ("commonLabels", &mut self.common_labels),
            ("templateLabels", &mut self.template_labels),
            ("commonAnnotations", &mut self.common_annotations),
            ("varReference", &mut self.var_reference),
            ("images", &mut self.images),
            ("replicas", &mut self.replicas),
        ] {
            extend_unique(into, &list(key));
        }
        for nr in v
            .get("nameReference")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let s = |k: &str| nr.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            let gvk = Gvk {
                group: s("group"),
                version: s("version"),
                kind: s("kind"),
            };
            let referrers: Vec<FieldSpec> = nr
                .get("fieldSpecs")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(FieldSpec::from_value).collect())
                .unwrap_or_default();
            self.add_name_ref(NameRef { gvk, referrers });
        }
    }

    fn add_name_ref(&mut self, nr: NameRef) {
        if let Some(existing) = self.name_reference.iter_mut().find(|e| e.gvk == nr.gvk) {
            extend_unique(&mut existing.referrers, &nr.referrers);
        } else {
            self.name_reference.push(nr);
        }
    }

    /// Adds all tables of `other`.
    pub fn merge(&mut self, other: &TransformerConfig) {
        // The usual case (both the defaults, or an inner kustomization's
        // tables merged already), without comparing every pair of specs.
        if self == other {
            return;
        }
        for (into, from) in [
            (&mut self.name_prefix, &other.name_prefix),
            (&mut self.name_suffix, &other.name_suffix),
            (&mut self.namespace, &other.namespace),
            (&mut self.common_labels, &other.common_labels),
            (&mut self.template_labels, &other.template_labels),
            (&mut self.common_annotations, &other.common_annotations),
            (&mut self.var_reference, &other.var_reference),
            (&mut self.images, &other.images),
            (&mut self.replicas, &other.replicas),
        ] {
            extend_unique(into, from);
        }
        for nr in &other.name_reference {
            match self.name_reference.iter_mut().find(|e| e.gvk == nr.gvk) {
                Some(existing) => extend_unique(&mut existing.referrers, &nr.referrers),
                None => self.name_reference.push(nr.clone()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_tables_parse() {
        let c = TransformerConfig::builtin();
        assert!(c.common_labels.len() > 20);
        assert!(c.name_reference.iter().any(|n| n.gvk.kind == "ConfigMap"));
        assert_eq!(c.name_prefix.len(), 1);
    }

    #[test]
    fn escaped_slash_is_one_segment() {
        assert_eq!(
            split_path("metadata/annotations/a.io\\/b"),
            ["metadata", "annotations", "a.io/b"]
        );
        assert_eq!(
            split_path("spec/containers[]/image"),
            ["spec", "containers", "image"]
        );
    }

    #[test]
    fn visit_creates_and_crosses_lists() {
        let mut v = serde_json::json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        visit(
            &mut v,
            &split_path("spec/containers/image"),
            false,
            &mut |x| *x = Value::from("no"),
        );
        assert!(v["spec"]["containers"][0].get("image").is_none());
        visit(&mut v, &split_path("spec/selector/app"), true, &mut |x| {
            *x = Value::from("y")
        });
        assert_eq!(v["spec"]["selector"]["app"], "y");
    }
}
