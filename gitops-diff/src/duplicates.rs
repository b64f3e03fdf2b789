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
use std::hash::{DefaultHasher, Hash, Hasher};

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
    // Deep enough for most manifests without regrowing.
    let mut walker = Walker {
        gk,
        lists,
        names: Vec::with_capacity(16),
        path: Vec::with_capacity(16),
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
        if !self.may_repeat(items, keys.as_deref()) {
            return;
        }
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

    /// Whether two items of the list may have the same key: whether two
    /// hashes of their keys are equal. Equal keys hash alike ([`hash_key`],
    /// [`hash_normal`]), so a list whose hashes all differ repeats nothing,
    /// and most lists are passed without building any key text.
    fn may_repeat(&self, items: &[Value], keys: Option<&[String]>) -> bool {
        const INLINE: usize = 16;
        let mut inline = [0u64; INLINE];
        let mut spilled = Vec::new();
        let hashes: &mut [u64] = if items.len() <= INLINE {
            &mut inline
        } else {
            spilled.resize(items.len(), 0);
            &mut spilled
        };
        let mut n = 0;
        for item in items.iter().filter(|item| !item.is_null()) {
            let hash = match keys {
                Some(keys) => self.hash_key(item, keys),
                None => Some(hash_of(item)),
            };
            if let (Some(hash), Some(slot)) = (hash, hashes.get_mut(n)) {
                *slot = hash;
                n += 1;
            }
        }
        let hashes = &mut hashes[..n];
        hashes.sort_unstable();
        hashes.windows(2).any(|w| w[0] == w[1])
    }

    /// A hash of the key [`map_key`](Self::map_key) gives the item, equal
    /// for equal keys; `None` when it gives none.
    fn hash_key(&self, item: &Value, keys: &[String]) -> Option<u64> {
        let m = item.as_object()?;
        let mut hasher = DefaultHasher::new();
        let mut any = false;
        for k in keys {
            match m.get(k.as_str()) {
                Some(v) if !v.is_null() => {
                    k.hash(&mut hasher);
                    hash_normal(v, &mut hasher);
                }
                _ => {
                    let Some(v) = self.lists.key_default(self.gk, &self.names, k) else {
                        continue;
                    };
                    k.hash(&mut hasher);
                    hash_normal(&v, &mut hasher);
                }
            }
            any = true;
        }
        any.then(|| hasher.finish())
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

/// [`hash_normal`] of one value.
fn hash_of(v: &Value) -> u64 {
    let mut hasher = DefaultHasher::new();
    hash_normal(v, &mut hasher);
    hasher.finish()
}

/// Hashes `v` so that values with the same [`canonical`] text hash alike:
/// numbers as [`normal_number`] makes them, a mapping's entries in any
/// order.
fn hash_normal(v: &Value, h: &mut DefaultHasher) {
    match v {
        Value::Null => h.write_u8(0),
        Value::Bool(b) => {
            h.write_u8(1);
            b.hash(h);
        }
        Value::Number(n) => {
            let n = normal_number(n);
            if let Some(i) = n.as_i64() {
                h.write_u8(2);
                i.hash(h);
            } else if let Some(u) = n.as_u64() {
                h.write_u8(3);
                u.hash(h);
            } else {
                h.write_u8(4);
                n.as_f64().map(f64::to_bits).hash(h);
            }
        }
        Value::String(s) => {
            h.write_u8(5);
            s.hash(h);
        }
        Value::Array(a) => {
            h.write_u8(6);
            h.write_usize(a.len());
            for item in a {
                hash_normal(item, h);
            }
        }
        Value::Object(m) => {
            h.write_u8(7);
            h.write_usize(m.len());
            // Order-independent: the entries' own hashes, summed.
            let mut sum = 0u64;
            for (k, v) in m {
                let mut entry = DefaultHasher::new();
                k.hash(&mut entry);
                hash_normal(v, &mut entry);
                sum = sum.wrapping_add(entry.finish());
            }
            h.write_u64(sum);
        }
    }
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
    use proptest::prelude::*;
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

    /// Values that often equal each other by the diff's rules while
    /// differing as written: integral floats, reordered mappings.
    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (0i64..3).prop_map(|n| json!(n)),
            (0i64..3).prop_map(|n| json!(n as f64)),
            Just(json!(0.5)),
            Just(json!(-0.0)),
            prop::sample::select(vec!["a", "b", "80"]).prop_map(|s| json!(s)),
        ];
        leaf.prop_recursive(3, 16, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(vec!["x", "y", "z"]), inner), 0..3)
                    .prop_map(|entries| {
                        Value::Object(
                            entries
                                .into_iter()
                                .map(|(k, v)| (k.to_owned(), v))
                                .collect(),
                        )
                    }),
            ]
        })
    }

    /// A mapping with its entries in reverse order.
    fn reordered(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .rev()
                    .map(|(k, v)| (k.clone(), reordered(v)))
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(reordered).collect()),
            other => other.clone(),
        }
    }

    proptest::proptest! {
        /// The filter's law: values with the same canonical text hash alike,
        /// so a list whose hashes all differ has no duplicate.
        #[test]
        fn equal_values_hash_alike(a in value(), b in value()) {
            if canonical(&a) == canonical(&b) {
                proptest::prop_assert_eq!(hash_of(&a), hash_of(&b));
            }
            proptest::prop_assert_eq!(hash_of(&a), hash_of(&reordered(&a)));
        }

        /// With the filter, findings are those of grouping every item by its
        /// canonical key text: env lists (keyed by name, values free) and
        /// finalizers (a set).
        #[test]
        fn findings_are_those_of_the_key_texts(
            env in prop::collection::vec(
                (proptest::option::of(value()), value()), 0..8),
            // Not lists: a list in a list is checked as a list of its own.
            finalizers in prop::collection::vec(value().prop_filter("not a list", |v| !v.is_array()), 0..8),
        ) {
            let env: Vec<Value> = env
                .into_iter()
                .map(|(name, v)| match name {
                    Some(name) => json!({"name": name, "value": v}),
                    None => json!({"value": v}),
                })
                .collect();
            let d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "finalizers": finalizers.clone()},
                "spec": {"template": {"spec": {"containers": [{"name": "c", "env": env.clone()}]}}}});
            let found = duplicate_list_keys(&GroupKind::new("apps", "Deployment"), &d, &BuiltinLists);
            let expected = |items: &[Value], key: &dyn Fn(&Value) -> Option<String>| {
                let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
                for (i, item) in items.iter().enumerate().filter(|(_, v)| !v.is_null()) {
                    let Some(k) = key(item) else { continue };
                    match groups.iter_mut().find(|(g, _)| *g == k) {
                        Some((_, indices)) => indices.push(i),
                        None => groups.push((k, vec![i])),
                    }
                }
                groups.into_iter().filter(|(_, i)| i.len() > 1).map(|(_, i)| i).collect::<Vec<_>>()
            };
            let mut want = expected(&finalizers, &|v| Some(canonical(v)));
            want.extend(expected(&env, &|v| {
                v.get("name").filter(|n| !n.is_null()).map(canonical)
            }));
            let got: Vec<Vec<usize>> = found.into_iter().map(|f| f.indices).collect();
            proptest::prop_assert_eq!(got, want);
        }
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
