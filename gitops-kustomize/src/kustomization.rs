//! The kustomization file, read field by field.
//!
//! Field names match without regard to case (kustomize decodes with Go's
//! `encoding/json`, which does the same).

use serde_json::{Map, Value};

use crate::error::Error;

/// Looks a field up: exact name first, then without regard to case.
pub fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    let m = v.as_object()?;
    m.get(name)
        .or_else(|| {
            m.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        })
        .filter(|v| !v.is_null())
}

/// A string field.
pub fn str_field(v: &Value, name: &str) -> Option<String> {
    field(v, name).and_then(scalar_string)
}

/// A scalar as a string (`1` → `"1"`), as Go's YAML decoding into strings does.
pub fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A list of strings (a single string is a one-element list).
pub fn str_list(v: &Value, name: &str) -> Vec<String> {
    match field(v, name) {
        Some(Value::Array(a)) => a.iter().filter_map(scalar_string).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// A map of strings.
pub fn str_map(v: &Value, name: &str) -> Vec<(String, String)> {
    match field(v, name) {
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| (k.clone(), scalar_string(v).unwrap_or_default()))
            .collect(),
        _ => Vec::new(),
    }
}

/// A boolean field.
pub fn bool_field(v: &Value, name: &str) -> bool {
    match field(v, name) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    }
}

/// A list field's elements.
pub fn list<'a>(v: &'a Value, name: &str) -> &'a [Value] {
    field(v, name)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// One loaded kustomization.
#[derive(Clone, Debug)]
pub struct Kustomization {
    /// The file it was read from.
    pub file: String,
    /// Its directory.
    pub dir: String,
    /// The document.
    pub doc: Value,
}

/// Fields kustomize knows; anything else is an error, as in `kustomize build`.
const KNOWN_FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "resources",
    "bases",
    "components",
    "namespace",
    "namePrefix",
    "nameSuffix",
    "commonLabels",
    "labels",
    "commonAnnotations",
    "images",
    "replicas",
    "patches",
    "patchesStrategicMerge",
    "patchesJson6902",
    "configMapGenerator",
    "secretGenerator",
    "generatorOptions",
    "replacements",
    "vars",
    "sortOptions",
    "configurations",
    "crds",
    "transformers",
    "generators",
    "validators",
    "openapi",
    "buildMetadata",
    "helmCharts",
    "helmGlobals",
    "helmChartInflationGenerator",
    "imageTags",
];

impl Kustomization {
    /// Parses a kustomization file.
    pub fn parse(file: &str, dir: &str, data: &[u8]) -> Result<Self, Vec<Error>> {
        let docs = crate::loader::parse_documents(file, data).map_err(|e| vec![e])?;
        let doc = match docs.len() {
            0 => Value::Object(Map::new()),
            1 => docs.into_iter().next().unwrap_or_default(),
            _ => {
                return Err(vec![Error::Invalid {
                    file: file.into(),
                    field: "(document)".into(),
                    message: "a kustomization file holds one YAML document".into(),
                }]);
            }
        };
        let Some(m) = doc.as_object() else {
            return Err(vec![Error::Invalid {
                file: file.into(),
                field: "(document)".into(),
                message: "a kustomization is a map".into(),
            }]);
        };
        let mut errs = Vec::new();
        for k in m.keys() {
            if !KNOWN_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(k)) {
                errs.push(Error::Invalid {
                    file: file.into(),
                    field: k.clone(),
                    message: "unknown field".into(),
                });
            }
        }
        if let Some(kind) = str_field(&doc, "kind")
            && kind != "Kustomization"
            && kind != "Component"
        {
            errs.push(Error::Invalid {
                file: file.into(),
                field: "kind".into(),
                message: format!("`{kind}` is neither Kustomization nor Component"),
            });
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        Ok(Self {
            file: file.into(),
            dir: dir.into(),
            doc,
        })
    }

    /// Whether this is a `kind: Component`.
    pub fn is_component(&self) -> bool {
        str_field(&self.doc, "kind").as_deref() == Some("Component")
    }
}
