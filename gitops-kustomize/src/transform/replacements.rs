//! `replacements:`: copy a field of one object into fields of others.

use serde_json::{Map, Value};

use crate::kustomization::{bool_field, field, str_field};
use crate::resource::{Gvk, ResId, Resource};
use crate::selector::LabelSelector;

/// An id selector with exact names (as replacements use).
#[derive(Clone, Debug, Default)]
struct IdSel {
    gvk: Gvk,
    name: String,
    namespace: String,
    labels: Option<LabelSelector>,
    annotations: Option<LabelSelector>,
}

impl IdSel {
    fn from_value(v: &Value) -> Result<Self, String> {
        let ls = |k: &str| {
            str_field(v, k)
                .filter(|s| !s.is_empty())
                .map(|s| LabelSelector::parse(&s))
                .transpose()
        };
        Ok(Self {
            gvk: Gvk {
                group: str_field(v, "group").unwrap_or_default(),
                version: str_field(v, "version").unwrap_or_default(),
                kind: str_field(v, "kind").unwrap_or_default(),
            },
            name: str_field(v, "name").unwrap_or_default(),
            namespace: str_field(v, "namespace").unwrap_or_default(),
            labels: ls("labelSelector")?,
            annotations: ls("annotationSelector")?,
        })
    }

    fn id_selected(&self, id: &ResId) -> bool {
        id.gvk.is_selected(&self.gvk)
            && (self.name.is_empty() || self.name == id.name)
            && (self.namespace.is_empty() || self.namespace == id.namespace)
    }

    fn matches(&self, r: &Resource) -> bool {
        let ids_ok = std::iter::once(r.cur_id())
            .chain(r.prev.iter().cloned())
            .any(|id| self.id_selected(&id));
        ids_ok
            && self
                .labels
                .as_ref()
                .is_none_or(|l| l.matches(r.meta_map("labels")))
            && self
                .annotations
                .as_ref()
                .is_none_or(|l| l.matches(r.meta_map("annotations")))
    }
}

/// Splits a field path on dots outside brackets.
pub fn split_field_path(p: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0;
    for c in p.chars() {
        match c {
            '[' => {
                depth += 1;
                cur.push(c)
            }
            ']' => {
                depth -= 1;
                cur.push(c)
            }
            '.' if depth == 0 => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    // `a[k=v]` is `a` then `[k=v]`.
    let mut res = Vec::new();
    for s in out {
        if let Some(i) = s.find('[').filter(|i| *i > 0 && s.ends_with(']')) {
            res.push(s[..i].to_owned());
            res.push(s[i..].to_owned());
        } else if !s.is_empty() {
            res.push(s);
        }
    }
    res
}

fn get<'a>(v: &'a Value, segs: &[String]) -> Option<&'a Value> {
    let Some((first, rest)) = segs.split_first() else {
        return Some(v);
    };
    let next = if let Some(inner) = first.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        match inner.split_once('=') {
            Some((k, val)) => v.as_array()?.iter().find(|e| {
                e.get(k)
                    .and_then(crate::kustomization::scalar_string)
                    .as_deref()
                    == Some(val)
            })?,
            None => v.get(inner)?,
        }
    } else if let (Value::Array(a), Ok(i)) = (v, first.parse::<usize>()) {
        a.get(i)?
    } else {
        v.get(first.as_str())?
    };
    get(next, rest)
}

/// Calls `f` on every node at `segs` (`*` visits all elements), creating maps with `create`.
fn visit_mut(
    v: &mut Value,
    segs: &[String],
    create: bool,
    f: &mut dyn FnMut(&mut Value) -> Result<(), String>,
) -> Result<(), String> {
    let Some((first, rest)) = segs.split_first() else {
        return f(v);
    };
    if first == "*" {
        if let Value::Array(a) = v {
            for e in a {
                visit_mut(e, rest, create, f)?;
            }
        }
        return Ok(());
    }
    if let Some(inner) = first.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        return match inner.split_once('=') {
            Some((k, val)) => {
                if let Value::Array(a) = v {
                    let mut found = false;
                    for e in a.iter_mut() {
                        if e.get(k)
                            .and_then(crate::kustomization::scalar_string)
                            .as_deref()
                            == Some(val)
                        {
                            found = true;
                            visit_mut(e, rest, create, f)?;
                        }
                    }
                    if !found && create {
                        let mut m = Map::new();
                        m.insert(k.to_owned(), Value::String(val.to_owned()));
                        a.push(Value::Object(m));
                        if let Some(e) = a.last_mut() {
                            visit_mut(e, rest, create, f)?;
                        }
                    }
                }
                Ok(())
            }
            None => step_field(v, inner, rest, create, f),
        };
    }
    if let (Value::Array(a), Ok(i)) = (&mut *v, first.parse::<usize>()) {
        if let Some(e) = a.get_mut(i) {
            return visit_mut(e, rest, create, f);
        }
        return Ok(());
    }
    step_field(v, first, rest, create, f)
}

fn step_field(
    v: &mut Value,
    key: &str,
    rest: &[String],
    create: bool,
    f: &mut dyn FnMut(&mut Value) -> Result<(), String>,
) -> Result<(), String> {
    if v.is_null() && create {
        *v = Value::Object(Map::new());
    }
    let Value::Object(m) = v else { return Ok(()) };
    if !m.contains_key(key) || m.get(key).is_some_and(Value::is_null) {
        if !create {
            return Ok(());
        }
        m.insert(key.to_owned(), Value::Null);
    }
    match m.get_mut(key) {
        Some(child) => visit_mut(child, rest, create, f),
        None => Ok(()),
    }
}

struct Opts {
    delimiter: Option<String>,
    index: i64,
    create: bool,
}

fn opts(v: Option<&Value>) -> Opts {
    let d = v
        .and_then(|o| str_field(o, "delimiter"))
        .filter(|d| !d.is_empty());
    let index = v
        .and_then(|o| field(o, "index"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    Opts {
        delimiter: d,
        index,
        create: v.is_some_and(|o| bool_field(o, "create")),
    }
}

/// Applies one replacement.
pub fn apply(res: &mut [Resource], rep: &Value) -> Result<(), String> {
    let src = field(rep, "source").ok_or("a replacement needs a `source`")?;
    let sel = IdSel::from_value(src)?;
    let hits: Vec<&Resource> = res.iter().filter(|r| sel.matches(r)).collect();
    let source = match hits.as_slice() {
        [one] => *one,
        [] => {
            return Err(format!(
                "nothing selected by the replacement source {}",
                describe(src)
            ));
        }
        _ => {
            return Err(format!(
                "more than one resource selected by the replacement source {}",
                describe(src)
            ));
        }
    };
    let path = str_field(src, "fieldPath").unwrap_or_else(|| "metadata.name".into());
    let mut value = get(&source.obj, &split_field_path(&path))
        .cloned()
        .ok_or_else(|| {
            format!(
                "fieldPath `{path}` is missing for replacement source {}",
                source.cur_id()
            )
        })?;
    let so = opts(field(src, "options"));
    if let Some(d) = &so.delimiter {
        let s = crate::kustomization::scalar_string(&value).unwrap_or_default();
        let parts: Vec<&str> = s.split(d.as_str()).collect();
        let i = usize::try_from(so.index)
            .ok()
            .filter(|i| *i < parts.len())
            .ok_or_else(|| {
                format!(
                    "options.index {} is out of bounds for source value `{s}`",
                    so.index
                )
            })?;
        value = Value::String(parts.get(i).copied().unwrap_or_default().to_owned());
    }
    for t in crate::kustomization::list(rep, "targets") {
        let tsel = IdSel::from_value(field(t, "select").unwrap_or(&Value::Null))?;
        let rejects: Vec<IdSel> = crate::kustomization::list(t, "reject")
            .iter()
            .map(IdSel::from_value)
            .collect::<Result<_, _>>()?;
        let to = opts(field(t, "options"));
        let paths = crate::kustomization::str_list(t, "fieldPaths");
        for r in res.iter_mut() {
            if !tsel.matches(r) || rejects.iter().any(|x| x.matches(r)) {
                continue;
            }
            let mut changed = false;
            for p in &paths {
                let segs = split_field_path(p);
                visit_mut(&mut r.obj, &segs, to.create, &mut |node: &mut Value| {
                    let before = node.clone();
                    match &to.delimiter {
                        None => *node = value.clone(),
                        Some(d) => {
                            let cur = crate::kustomization::scalar_string(node).unwrap_or_default();
                            let mut parts: Vec<String> =
                                cur.split(d.as_str()).map(str::to_owned).collect();
                            let new =
                                crate::kustomization::scalar_string(&value).unwrap_or_default();
                            match usize::try_from(to.index) {
                                Ok(i) if i < parts.len() => {
                                    if let Some(x) = parts.get_mut(i) {
                                        *x = new;
                                    }
                                }
                                Ok(_) => parts.push(new),
                                Err(_) => parts.insert(0, new),
                            }
                            *node = Value::String(parts.join(d));
                        }
                    }
                    changed |= *node != before;
                    Ok(())
                })?;
            }
            r.changed |= changed;
        }
    }
    Ok(())
}

fn describe(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths() {
        assert_eq!(
            split_field_path("spec.containers.[name=a].image"),
            ["spec", "containers", "[name=a]", "image"]
        );
        assert_eq!(
            split_field_path("metadata.annotations.[cert-manager.io/inject-ca-from]"),
            [
                "metadata",
                "annotations",
                "[cert-manager.io/inject-ca-from]"
            ]
        );
        assert_eq!(split_field_path("a.b[x=y].c"), ["a", "b", "[x=y]", "c"]);
    }
}
