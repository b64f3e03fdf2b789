//! `configMapGenerator` / `secretGenerator`: objects built from literals,
//! files and env files, named with a content hash unless told otherwise.

use base64::Engine;
use serde_json::{Map, Value};

use crate::error::Error;
use crate::kustomization::{bool_field, field, str_field, str_list, str_map};
use crate::loader::Files;
use crate::resource::{Behavior, Resource};

/// Where a generator's relative paths resolve.
pub struct GenCtx<'f, 'a> {
    /// Snapshot access.
    pub files: Files<'f>,
    /// The kustomization's directory.
    pub dir: &'a str,
    /// The kustomization file (for errors).
    pub file: &'a str,
}

fn parse_literal(s: &str) -> Option<(String, String)> {
    let (k, v) = s.split_once('=')?;
    let v = if v.len() >= 2
        && ((v.starts_with('"') && v.ends_with('"')) || (v.starts_with('\'') && v.ends_with('\'')))
    {
        &v[1..v.len() - 1]
    } else {
        v
    };
    Some((k.to_owned(), v.to_owned()))
}

fn env_pairs(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for line in text.lines() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once('=') {
            Some((k, v)) => out.push((k.to_owned(), v.to_owned())),
            // kustomize reads a bare key from the process environment; a
            // hermetic build has none, so the value is empty.
            None => out.push((line.to_owned(), String::new())),
        }
    }
    out
}

/// Merges generator options: the generator's own win over the kustomization's.
pub fn merged_options(local: Option<&Value>, global: Option<&Value>) -> Value {
    let mut out = Map::new();
    for src in [global, local].into_iter().flatten() {
        for key in ["labels", "annotations"] {
            if let Some(Value::Object(m)) = field(src, key) {
                let e = out.entry(key).or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(em) = e {
                    for (k, v) in m {
                        em.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        for key in ["disableNameSuffixHash", "immutable"] {
            if let Some(v) = field(src, key) {
                out.insert(key.into(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// Builds one generated resource from a generator entry.
pub fn generate(
    ctx: &GenCtx<'_, '_>,
    kind: &str,
    spec: &Value,
    global_options: Option<&Value>,
    field_name: &str,
) -> Result<Resource, Vec<Error>> {
    let invalid = |message: String| Error::Invalid {
        file: ctx.file.into(),
        field: field_name.into(),
        message,
    };
    let mut errs = Vec::new();
    let name = str_field(spec, "name").unwrap_or_default();
    if name.is_empty() {
        errs.push(invalid("a generator needs a `name`".into()));
    }
    let mut pairs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut env_sources = str_list(spec, "envs");
    if let Some(e) = str_field(spec, "env") {
        env_sources.push(e);
    }
    for env in env_sources {
        match ctx.files.read_entry(ctx.dir, ctx.file, field_name, &env) {
            Ok((_, data)) => {
                for (k, v) in env_pairs(&String::from_utf8_lossy(data)) {
                    pairs.push((k, v.into_bytes()));
                }
            }
            Err(e) => errs.push(e),
        }
    }
    for lit in str_list(spec, "literals") {
        match parse_literal(&lit) {
            Some((k, v)) => pairs.push((k, v.into_bytes())),
            None => errs.push(invalid(format!("literal `{lit}` is not `key=value`"))),
        }
    }
    for f in str_list(spec, "files") {
        let (key, path) = match f.split_once('=') {
            Some((k, p)) => (k.to_owned(), p.to_owned()),
            None => (f.rsplit('/').next().unwrap_or(&f).to_owned(), f.clone()),
        };
        match ctx.files.read_entry(ctx.dir, ctx.file, field_name, &path) {
            Ok((_, data)) => pairs.push((key, data.to_vec())),
            Err(e) => errs.push(e),
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for (k, _) in &pairs {
        if !seen.insert(k.clone()) {
            errs.push(invalid(format!("generator `{name}`: duplicate key `{k}`")));
        }
    }
    let behavior = match str_field(spec, "behavior").as_deref() {
        None | Some("") | Some("create") => Behavior::Create,
        Some("merge") => Behavior::Merge,
        Some("replace") => Behavior::Replace,
        Some(other) => {
            errs.push(invalid(format!(
                "generator `{name}`: unknown behavior `{other}`"
            )));
            Behavior::Create
        }
    };
    if !errs.is_empty() {
        return Err(errs);
    }
    let opts = merged_options(field(spec, "options"), global_options);
    let mut meta = Map::new();
    meta.insert("name".into(), Value::String(name.clone()));
    if let Some(ns) = str_field(spec, "namespace").filter(|s| !s.is_empty()) {
        meta.insert("namespace".into(), Value::String(ns));
    }
    for key in ["labels", "annotations"] {
        let m = str_map(&opts, key);
        if !m.is_empty() {
            meta.insert(
                key.into(),
                Value::Object(m.into_iter().map(|(k, v)| (k, Value::String(v))).collect()),
            );
        }
    }
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), "v1".into());
    obj.insert("kind".into(), kind.into());
    obj.insert("metadata".into(), Value::Object(meta));
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut data = Map::new();
    let mut binary = Map::new();
    for (k, v) in pairs {
        if kind == "Secret" {
            data.insert(k, Value::String(b64.encode(&v)));
        } else {
            match String::from_utf8(v) {
                Ok(s) => {
                    data.insert(k, Value::String(s));
                }
                Err(e) => {
                    binary.insert(k, Value::String(b64.encode(e.as_bytes())));
                }
            }
        }
    }
    if !data.is_empty() {
        obj.insert("data".into(), Value::Object(data));
    }
    if !binary.is_empty() {
        obj.insert("binaryData".into(), Value::Object(binary));
    }
    if kind == "Secret" {
        let t = str_field(spec, "type")
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "Opaque".into());
        obj.insert("type".into(), Value::String(t));
    }
    if bool_field(&opts, "immutable") {
        obj.insert("immutable".into(), Value::Bool(true));
    }
    let mut r = Resource::new(
        Value::Object(obj),
        crate::origin::Origin::generated(ctx.file, field_name),
    );
    r.needs_hash = !bool_field(&opts, "disableNameSuffixHash");
    r.behavior = Some(behavior);
    Ok(r)
}

/// Combines a generated resource with an existing one (`merge` / `replace`).
pub fn combine(existing: &mut Resource, spec: Resource, behavior: Behavior) {
    match behavior {
        Behavior::Replace | Behavior::Create => {
            let name = existing.name().to_owned();
            let ns = existing.namespace().to_owned();
            existing.obj = spec.obj;
            existing.set_name(&name);
            if !ns.is_empty() {
                existing.set_namespace(&ns);
            }
        }
        Behavior::Merge => {
            for key in ["data", "binaryData"] {
                if let Some(Value::Object(new)) = spec.obj.get(key) {
                    let root = crate::resource::ensure_obj(&mut existing.obj);
                    let e = root.entry(key).or_insert_with(|| Value::Object(Map::new()));
                    let em = crate::resource::ensure_obj(e);
                    for (k, v) in new {
                        em.insert(k.clone(), v.clone());
                    }
                }
            }
            for key in ["labels", "annotations"] {
                if let Some(Value::Object(new)) = spec.obj.get("metadata").and_then(|m| m.get(key))
                {
                    let meta = existing.metadata_mut();
                    let e = meta.entry(key).or_insert_with(|| Value::Object(Map::new()));
                    let em = crate::resource::ensure_obj(e);
                    for (k, v) in new {
                        em.insert(k.clone(), v.clone());
                    }
                }
            }
            if spec.obj.get("immutable").is_some()
                && let Some(v) = spec.obj.get("immutable")
            {
                crate::resource::ensure_obj(&mut existing.obj)
                    .insert("immutable".into(), v.clone());
            }
        }
    }
    // A merge keeps the existing object's naming (kustomize keeps its
    // hash option); a replacement takes the new one's.
    if behavior != Behavior::Merge {
        existing.needs_hash = spec.needs_hash;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_strip_matching_quotes() {
        assert_eq!(parse_literal("a=\"b c\""), Some(("a".into(), "b c".into())));
        assert_eq!(parse_literal("a=b=c"), Some(("a".into(), "b=c".into())));
        assert_eq!(parse_literal("nokey"), None);
    }

    #[test]
    fn env_file_lines() {
        let p = env_pairs("# c\n\nA=1\n  B=two words\nC\n");
        assert_eq!(
            p,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "two words".into()),
                ("C".into(), String::new())
            ]
        );
    }
}
