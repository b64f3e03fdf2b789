//! Duplicate keys in associative lists and duplicate values in sets.
//!
//! The API server refuses an object whose associative list (`x-kubernetes-
//! list-type: map`) has two items with the same key (two `env` entries named
//! `A`, two container ports `80/TCP`), or whose set (`x-kubernetes-list-type:
//! set`) has a value twice. A manifest with such a list can never be applied
//! and, compared item by key, never converges: [`duplicate_list_keys`] finds
//! them so they can be refused before anything is sent.

use std::collections::HashMap;
use std::fmt;

use serde_json::{Map, Number, Value};

use crate::fieldset::GroupKind;
use crate::lists::{ListSemantics, ListType};
use crate::value::push_escaped;

/// A key (or set value) found more than once in one list of an object.
///
/// ```
/// use gitops_diff::{duplicate_list_keys, BuiltinLists, GroupKind};
/// use serde_json::json;
///
/// let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
///     "spec": {"containers": [{"name": "app", "ports": [
///         {"containerPort": 80}, {"containerPort": 80, "protocol": "TCP"}]}]}});
/// let found = duplicate_list_keys(&GroupKind::new("", "Pod"), &pod, &BuiltinLists);
/// assert_eq!(found.len(), 1);
/// assert_eq!(found[0].pointer, "/spec/containers/0/ports");
/// assert_eq!(found[0].key, "containerPort=80,protocol=TCP");
/// assert_eq!(found[0].indices, [0, 1]);
/// assert_eq!(
///     found[0].to_string(),
///     "list /spec/containers/0/ports has the key containerPort=80,protocol=TCP more than once (items 0, 1)"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DuplicateListKey {
    /// The JSON pointer (RFC 6901) of the list in the object.
    pub pointer: String,
    /// The duplicated key as a person reads it: `field=value` pairs in the
    /// order of the list's key fields, key defaults applied
    /// (`containerPort=80,protocol=TCP`); for a set, the value itself.
    /// Strings are written bare unless they hold characters that would make
    /// the text ambiguous, then JSON-quoted.
    pub key: String,
    /// The 0-based positions in the list of every item with that key (at
    /// least two, ascending).
    pub indices: Vec<usize>,
}

impl fmt::Display for DuplicateListKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "list {} has the key {} more than once (items ",
            self.pointer, self.key
        )?;
        for (n, i) in self.indices.iter().enumerate() {
            if n > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{i}")?;
        }
        f.write_str(")")
    }
}

/// Every duplicated key in the associative lists, and every duplicated value
/// in the sets, of `object`, in document order (one entry per list and key).
///
/// Each list whose type `lists` gives as [`ListType::Map`] is checked by its
/// key fields, with [`ListSemantics::key_default`] filling in omitted key
/// fields as the API server does (a port without `protocol` is a `TCP`
/// port); items with none of the key fields, and `null` items, are not
/// compared. Each [`ListType::Set`] is checked by value. Values compare as
/// the diff compares them: `80` and `80.0` are the same number. Lists nested
/// anywhere are checked, also inside atomic lists.
pub fn duplicate_list_keys(
    gk: &GroupKind,
    object: &Value,
    lists: &dyn ListSemantics,
) -> Vec<DuplicateListKey> {
    let mut walker = Walker {
        gk,
        lists,
        names: Vec::new(),
        path: Vec::new(),
        found: Vec::new(),
    };
    walker.walk(object);
    walker.found
}

/// A step of the path walked: a field or a list position.
enum Step<'a> {
    Field(&'a str),
    Index(usize),
}

struct Walker<'a, 'o> {
    gk: &'o GroupKind,
    lists: &'o dyn ListSemantics,
    names: Vec<&'a str>,
    /// The path walked; written out as a pointer only for a finding.
    path: Vec<Step<'a>>,
    found: Vec<DuplicateListKey>,
}

impl<'a> Walker<'a, '_> {
    fn walk(&mut self, v: &'a Value) {
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    if !matches!(child, Value::Object(_) | Value::Array(_)) {
                        continue; // no list below
                    }
                    self.path.push(Step::Field(k));
                    self.names.push(k);
                    self.walk(child);
                    self.names.pop();
                    self.path.pop();
                }
            }
            Value::Array(items) => {
                // One item cannot repeat a key.
                if items.len() > 1 {
                    self.check_list(items);
                }
                for (i, item) in items.iter().enumerate() {
                    if !matches!(item, Value::Object(_) | Value::Array(_)) {
                        continue;
                    }
                    self.path.push(Step::Index(i));
                    self.walk(item);
                    self.path.pop();
                }
            }
            _ => {}
        }
    }

    /// The RFC 6901 pointer of the path walked.
    fn pointer(&self) -> String {
        let mut pointer = String::new();
        for step in &self.path {
            match step {
                Step::Field(k) => push_escaped(&mut pointer, k),
                Step::Index(i) => {
                    pointer.push('/');
                    pointer.push_str(&i.to_string());
                }
            }
        }
        pointer
    }

    fn check_list(&mut self, items: &[Value]) {
        let keys = match self.lists.list_type(self.gk, &self.names) {
            Some(ListType::Map(keys)) => Some(keys),
            Some(ListType::Set) => None,
            Some(ListType::Atomic) | None => return,
        };
        // canonical key -> (readable key, indices), in order of first sight.
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            if item.is_null() {
                continue;
            }
            let key = match &keys {
                Some(keys) => self.map_key(item, keys),
                None => Some(KeyText {
                    canonical: canonical(item),
                    readable: readable(item),
                }),
            };
            let Some(key) = key else { continue };
            match seen.get(&key.canonical) {
                Some(&g) => {
                    if let Some((_, indices)) = groups.get_mut(g) {
                        indices.push(i);
                    }
                }
                None => {
                    seen.insert(key.canonical, groups.len());
                    groups.push((key.readable, vec![i]));
                }
            }
        }
        for (key, indices) in groups {
            if indices.len() > 1 {
                self.found.push(DuplicateListKey {
                    pointer: self.pointer(),
                    key,
                    indices,
                });
            }
        }
    }

    /// The key of a map-list item; `None` when it has none of the key fields
    /// (nor a default for them) or is not a map.
    fn map_key(&self, item: &Value, keys: &[String]) -> Option<KeyText> {
        let m = item.as_object()?;
        let mut parts: Vec<(&str, Value)> = Vec::with_capacity(keys.len());
        for k in keys {
            let v = match m.get(k.as_str()) {
                Some(v) if !v.is_null() => Some(v.clone()),
                _ => self.lists.key_default(self.gk, &self.names, k),
            };
            if let Some(v) = v {
                parts.push((k, v));
            }
        }
        if parts.is_empty() {
            return None;
        }
        let canonical_parts: Vec<Value> = parts
            .iter()
            .map(|(k, v)| Value::Array(vec![Value::String((*k).to_owned()), normalize(v)]))
            .collect();
        let readable_key = parts
            .iter()
            .map(|(k, v)| format!("{k}={}", readable(v)))
            .collect::<Vec<_>>()
            .join(",");
        Some(KeyText {
            canonical: Value::Array(canonical_parts).to_string(),
            readable: readable_key,
        })
    }
}

struct KeyText {
    canonical: String,
    readable: String,
}

/// A text equal for values the diff finds equal (JSON, with integral floats
/// written as integers and object keys sorted).
fn canonical(v: &Value) -> String {
    normalize(v).to_string()
}

fn normalize(v: &Value) -> Value {
    match v {
        Value::Number(n) => Value::Number(normal_number(n)),
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), normalize(v)))
                    .collect::<Map<String, Value>>(),
            )
        }
        other => other.clone(),
    }
}

/// `80.0` → `80` (within the 64-bit integer range); other numbers as they are.
fn normal_number(n: &Number) -> Number {
    if n.is_f64()
        && let Some(f) = n.as_f64()
        && f.fract() == 0.0
    {
        // In range, so the casts are exact.
        let two_63 = 2f64.powi(63);
        if (-two_63..two_63).contains(&f) {
            return Number::from(f as i64);
        }
        if (0.0..2.0 * two_63).contains(&f) {
            return Number::from(f as u64);
        }
    }
    n.clone()
}

/// A value as a person reads it in a key: strings bare when unambiguous.
fn readable(v: &Value) -> String {
    match v {
        Value::String(s)
            if !s.is_empty()
                && !s.chars().any(|c| {
                    c.is_control() || c.is_whitespace() || matches!(c, ',' | '=' | '"')
                }) =>
        {
            s.clone()
        }
        Value::Number(n) => normal_number(n).to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::lists::{BuiltinLists, CrdLists};

    fn deployment(containers: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
               "spec": {"template": {"spec": {"containers": containers}}}})
    }

    fn dups(gk: &GroupKind, v: &Value) -> Vec<String> {
        duplicate_list_keys(gk, v, &BuiltinLists)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn env_names() {
        let d = deployment(json!([{"name": "app", "env": [
            {"name": "A", "value": "1"}, {"name": "B"}, {"name": "A", "value": "2"}, {"name": "A"}]}]));
        assert_eq!(
            dups(&GroupKind::new("apps", "Deployment"), &d),
            [
                "list /spec/template/spec/containers/0/env has the key name=A more than once (items 0, 2, 3)"
            ]
        );
    }

    #[test]
    fn ports_with_protocol_default() {
        let d = deployment(json!([{"name": "app", "ports": [
            {"containerPort": 80}, {"containerPort": 80, "protocol": "UDP"},
            {"containerPort": 80.0, "protocol": "TCP"}, {"containerPort": 81}]}]));
        let found = duplicate_list_keys(&GroupKind::new("apps", "Deployment"), &d, &BuiltinLists);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].pointer, "/spec/template/spec/containers/0/ports");
        assert_eq!(found[0].key, "containerPort=80,protocol=TCP");
        assert_eq!(found[0].indices, [0, 2]);
    }

    #[test]
    fn service_ports_and_containers() {
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"ports": [{"port": 443, "name": "a"}, {"port": 443, "name": "b"}]}});
        assert_eq!(
            dups(&GroupKind::new("", "Service"), &svc),
            ["list /spec/ports has the key port=443,protocol=TCP more than once (items 0, 1)"]
        );
        let d = deployment(json!([{"name": "a"}, {"name": "a"}]));
        assert_eq!(
            dups(&GroupKind::new("apps", "Deployment"), &d),
            ["list /spec/template/spec/containers has the key name=a more than once (items 0, 1)"]
        );
    }

    #[test]
    fn sets_by_value() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "finalizers": ["x/y", "z", "x/y"]}});
        assert_eq!(
            dups(&GroupKind::new("", "ConfigMap"), &cm),
            ["list /metadata/finalizers has the key x/y more than once (items 0, 2)"]
        );
    }

    #[test]
    fn atomic_lists_and_keyless_items_are_not_checked() {
        let d = deployment(json!([{"name": "app", "args": ["a", "a"],
            "env": [{"value": "no name"}, {"value": "no name"}, null, null]}]));
        assert!(dups(&GroupKind::new("apps", "Deployment"), &d).is_empty());
        // Unknown kinds: no semantics, nothing refused.
        let w = json!({"spec": {"containers": [{"name": "a"}, {"name": "a"}]}});
        assert!(dups(&GroupKind::new("example.com", "Widget"), &w).is_empty());
    }

    #[test]
    fn pointers_are_escaped_and_keys_readable() {
        let crd = json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "names": {"kind": "Widget"}, "versions": [{
                "name": "v1", "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {
                        "by/zone": {"type": "object", "additionalProperties": {
                            "type": "array", "x-kubernetes-list-type": "map",
                            "x-kubernetes-list-map-keys": ["id", "zone"],
                            "items": {"type": "object", "properties": {
                                "id": {"type": "string"},
                                "zone": {"type": "string", "default": "a"}}}}}}}}}}}]}});
        let lists = CrdLists::from_crd(&crd).unwrap();
        let w = json!({"spec": {"by/zone": {"x": [
            {"id": "a b"}, {"id": "a b", "zone": "a"}, {"id": "a b", "zone": "b"}]}}});
        let found = duplicate_list_keys(&GroupKind::new("example.com", "Widget"), &w, &lists);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].pointer, "/spec/by~1zone/x");
        assert_eq!(found[0].key, r#"id="a b",zone=a"#);
    }

    #[test]
    fn canonical_numbers() {
        assert_eq!(canonical(&json!(80.0)), canonical(&json!(80)));
        assert_ne!(canonical(&json!(80.5)), canonical(&json!(80)));
        assert_ne!(canonical(&json!("80")), canonical(&json!(80)));
        assert_eq!(
            canonical(&json!({"b": 1, "a": 2.0})),
            canonical(&json!({"a": 2, "b": 1}))
        );
    }
}
