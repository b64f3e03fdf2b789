//! Canonical values: ordering, quantities, numbers, emptiness, and the
//! fields the API server populates.

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

use crate::fieldset::GroupKind;
use crate::lists::ListSemantics;

/// The annotation `kubectl apply` (client-side) writes; never drift.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Server-populated metadata fields (never drift, never recorded as owned).
const SERVER_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// Whether a path of field names (from the root) is one the diff never
/// compares: `apiVersion`, `kind`, `status`, identity and server-populated
/// metadata, the last-applied annotation.
pub fn is_server_field(names: &[&str]) -> bool {
    match names {
        ["apiVersion"] | ["kind"] | ["status"] => true,
        ["metadata", f] => SERVER_METADATA.contains(f),
        ["metadata", "annotations", a] => *a == LAST_APPLIED_ANNOTATION,
        _ => false,
    }
}

/// Escapes one JSON pointer segment (RFC 6901).
pub fn pointer_escape(s: &str) -> String {
    if s.contains(['~', '/']) {
        s.replace('~', "~0").replace('/', "~1")
    } else {
        s.to_string()
    }
}

/// Appends `/` and the escaped segment to a pointer being built.
pub fn push_escaped(ptr: &mut String, s: &str) {
    ptr.push('/');
    if s.contains(['~', '/']) {
        ptr.push_str(&pointer_escape(s));
    } else {
        ptr.push_str(s);
    }
}

/// Writes a canonical text form of a value, equal for values that
/// [`cmp_values`] finds equal (`1` and `1.0` alike), for hashing.
pub fn write_canonical(out: &mut String, v: &Value) {
    use std::fmt::Write;
    match v {
        Value::Number(n) => match as_i128(n) {
            Some(i) => {
                let _ = write!(out, "{i}");
            }
            None => {
                let _ = write!(out, "{n}");
            }
        },
        Value::String(s) => {
            out.push('"');
            out.push_str(s);
            out.push('"');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for k in keys {
                out.push_str(k);
                out.push(':');
                if let Some(x) = m.get(k) {
                    write_canonical(out, x);
                }
                out.push(',');
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for x in a {
                write_canonical(out, x);
                out.push(',');
            }
            out.push(']');
        }
        other => {
            let _ = write!(out, "{other}");
        }
    }
}

/// A hashable canonical form of an associative-list item's key (see
/// [`item_key`]); `sorted_keys` must be sorted. `None` when [`item_key`]
/// would give `None`.
pub fn item_key_string(
    item: &Value,
    sorted_keys: &[String],
    lists: &dyn ListSemantics,
    gk: &GroupKind,
    names: &[&str],
) -> Option<String> {
    let m = item.as_object()?;
    let mut out = String::new();
    let mut any = false;
    for k in sorted_keys {
        match m.get(k.as_str()) {
            Some(v) if !v.is_null() => {
                out.push_str(k);
                out.push('=');
                write_canonical(&mut out, v);
                out.push('\u{0}');
                any = true;
            }
            _ => {
                if let Some(d) = lists.key_default(gk, names, k) {
                    out.push_str(k);
                    out.push('=');
                    write_canonical(&mut out, &d);
                    out.push('\u{0}');
                    any = true;
                }
            }
        }
    }
    any.then_some(out)
}

/// Removes the value an RFC 6901 pointer names, if present (map entries
/// keep the order of the others; list items shift down). A pointer that
/// names nothing changes nothing.
pub fn remove_pointer(v: &mut Value, pointer: &str) {
    let segs = pointer_segments(pointer);
    let Some((last, parents)) = segs.split_last() else {
        return;
    };
    let mut cur = v;
    for s in parents {
        let next = match cur {
            Value::Object(m) => m.get_mut(s),
            Value::Array(a) => s.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    match cur {
        Value::Object(m) => {
            m.shift_remove(last);
        }
        Value::Array(a) => {
            if let Ok(i) = last.parse::<usize>()
                && i < a.len()
            {
                a.remove(i);
            }
        }
        _ => {}
    }
}

/// Splits an RFC 6901 pointer into its unescaped segments.
pub fn pointer_segments(p: &str) -> Vec<String> {
    if p.is_empty() {
        return Vec::new();
    }
    p.split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect()
}

fn type_rank(v: &Value) -> u8 {
    match v {
        Value::Number(_) => 0,
        Value::String(_) => 1,
        Value::Bool(_) => 2,
        Value::Array(_) => 3,
        Value::Object(_) => 4,
        Value::Null => 5,
    }
}

fn cmp_numbers(a: &Number, b: &Number) -> Ordering {
    match (as_i128(a), as_i128(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => {
            let x = a.as_f64().unwrap_or(f64::NAN);
            let y = b.as_f64().unwrap_or(f64::NAN);
            x.total_cmp(&y)
        }
    }
}

fn as_i128(n: &Number) -> Option<i128> {
    if let Some(i) = n.as_i64() {
        return Some(i128::from(i));
    }
    if let Some(u) = n.as_u64() {
        return Some(i128::from(u));
    }
    let f = n.as_f64()?;
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        // exact for integral floats in this range
        #[allow(clippy::cast_possible_truncation)]
        return Some(f as i128);
    }
    None
}

/// A total order on JSON values, as structured-merge-diff orders them:
/// numbers (compared numerically, `1 == 1.0`), strings, booleans, lists,
/// maps, null.
pub fn cmp_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => cmp_numbers(x, y),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y.iter()) {
                let c = cmp_values(p, q);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut xk: Vec<&String> = x.keys().collect();
            let mut yk: Vec<&String> = y.keys().collect();
            xk.sort();
            yk.sort();
            for (p, q) in xk.iter().zip(yk.iter()) {
                let c = p.cmp(q);
                if c != Ordering::Equal {
                    return c;
                }
                if let (Some(pv), Some(qv)) = (x.get(*p), y.get(*q)) {
                    let c = cmp_values(pv, qv);
                    if c != Ordering::Equal {
                        return c;
                    }
                }
            }
            xk.len().cmp(&yk.len())
        }
        (Value::Null, Value::Null) => Ordering::Equal,
        _ => type_rank(a).cmp(&type_rank(b)),
    }
}

/// Whether two key maps (of `k:` path elements) are equal.
pub fn key_maps_equal(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    a.len() == b.len()
        && a.iter().all(|(k, v)| {
            b.get(k)
                .is_some_and(|w| cmp_values(v, w) == Ordering::Equal)
        })
}

/// The key of an associative-list item: its key fields, with the defaults
/// `lists` knows for missing ones (e.g. `protocol: TCP` for ports). `None`
/// when the item is not a map or has none of the key fields.
pub fn item_key(
    item: &Value,
    keys: &[String],
    lists: &dyn ListSemantics,
    gk: &GroupKind,
    names: &[&str],
) -> Option<Map<String, Value>> {
    let m = item.as_object()?;
    let mut sorted: Vec<&String> = keys.iter().collect();
    sorted.sort();
    let mut out = Map::new();
    for k in sorted {
        match m.get(k.as_str()) {
            Some(v) if !v.is_null() => {
                out.insert(k.clone(), v.clone());
            }
            _ => {
                if let Some(d) = lists.key_default(gk, names, k) {
                    out.insert(k.clone(), d);
                }
            }
        }
    }
    if out.is_empty() { None } else { Some(out) }
}

/// Whether a value is equivalent to an absent field: `null`, an empty map or
/// list, or a map whose every value is itself empty (the API server drops
/// `omitempty` fields).
pub fn is_empty_like(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.values().all(is_empty_like),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Removes `null` values from maps, and maps left empty by that
/// (recursively): the form the API server stores. A map that was empty to
/// begin with is kept. `None` when nothing is left.
pub fn prune_value(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Object(m) if m.is_empty() => Some(Value::Object(Map::new())),
        Value::Object(m) => {
            let out: Map<String, Value> = m
                .iter()
                .filter_map(|(k, v)| prune_value(v).map(|v| (k.clone(), v)))
                .collect();
            if out.is_empty() {
                None
            } else {
                Some(Value::Object(out))
            }
        }
        Value::Array(a) => Some(Value::Array(
            a.iter()
                .map(|x| prune_value(x).unwrap_or(Value::Null))
                .collect(),
        )),
        other => Some(other.clone()),
    }
}

/// [`prune_value`], with `null` for nothing left.
pub fn prune_nulls(v: &Value) -> Value {
    prune_value(v).unwrap_or(Value::Null)
}

/// Whether a position (field names from the root, list elements omitted)
/// holds a `resource.Quantity` that the API server canonicalises.
pub fn is_quantity_position(gk: &GroupKind, names: &[&str]) -> bool {
    let n = names.len();
    if n >= 3 && names[n - 3] == "resources" && matches!(names[n - 2], "limits" | "requests") {
        return true;
    }
    if n >= 2 && names[n - 2] == "emptyDir" && names[n - 1] == "sizeLimit" {
        return true;
    }
    if n >= 2 && names[n - 2] == "overhead" {
        return true;
    }
    matches!(
        (gk.group.as_str(), gk.kind.as_str(), names),
        ("", "ResourceQuota", ["spec", "hard", _])
            | (
                "",
                "LimitRange",
                [
                    "spec",
                    "limits",
                    "max" | "min" | "default" | "defaultRequest" | "maxLimitRequestRatio",
                    _,
                ],
            )
            | ("", "PersistentVolume", ["spec", "capacity", _])
    )
}

/// A quantity as an exact decimal: `mantissa * 10^exp`, normalised so equal
/// quantities have equal parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    mantissa: i128,
    exp: i32,
}

impl Quantity {
    /// Parses a Kubernetes quantity (`500m`, `0.5`, `1Gi`, `1e3`, `1.5k`).
    /// `None` if it is not one, or too large to represent exactly.
    pub fn parse(s: &str) -> Option<Quantity> {
        let s = s.trim();
        let (neg, rest) = match s.as_bytes().first()? {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, suffix) = rest.split_at(num_end);
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return None;
        }
        let mut mantissa: i128 = 0;
        let mut exp: i32 = 0;
        let mut after_dot = false;
        for c in num.chars() {
            if c == '.' {
                after_dot = true;
                continue;
            }
            let d = i128::from(c.to_digit(10)?);
            mantissa = mantissa.checked_mul(10)?.checked_add(d)?;
            if after_dot {
                exp -= 1;
            }
        }
        let mut binary_pow = 0u32;
        match suffix {
            "" => {}
            "Ki" => binary_pow = 1,
            "Mi" => binary_pow = 2,
            "Gi" => binary_pow = 3,
            "Ti" => binary_pow = 4,
            "Pi" => binary_pow = 5,
            "Ei" => binary_pow = 6,
            "n" => exp -= 9,
            "u" => exp -= 6,
            "m" => exp -= 3,
            "k" => exp += 3,
            "M" => exp += 6,
            "G" => exp += 9,
            "T" => exp += 12,
            "P" => exp += 15,
            "E" => exp += 18,
            other => {
                let e = other.strip_prefix(['e', 'E'])?;
                let e: i32 = e.parse().ok()?;
                if e.abs() > 1000 {
                    return None;
                }
                exp += e;
            }
        }
        if binary_pow > 0 {
            mantissa = mantissa.checked_mul(1024i128.checked_pow(binary_pow)?)?;
        }
        if neg {
            mantissa = -mantissa;
        }
        if mantissa == 0 {
            return Some(Quantity {
                mantissa: 0,
                exp: 0,
            });
        }
        while mantissa % 10 == 0 {
            mantissa /= 10;
            exp += 1;
        }
        Some(Quantity { mantissa, exp })
    }

    /// Parses a JSON string or number as a quantity.
    pub fn from_value(v: &Value) -> Option<Quantity> {
        match v {
            Value::String(s) => Quantity::parse(s),
            Value::Number(n) => Quantity::parse(&n.to_string()),
            _ => None,
        }
    }
}

/// Equality of two scalars (or any values) with the diff's canonical rules:
/// numbers numerically, quantities canonically in quantity positions.
pub fn scalar_eq(a: &Value, b: &Value, quantity: bool) -> bool {
    if quantity && let (Some(x), Some(y)) = (Quantity::from_value(a), Quantity::from_value(b)) {
        return x == y;
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => cmp_numbers(x, y) == Ordering::Equal,
        _ => a == b,
    }
}

/// Canonical equality of a desired value against a live one.
///
/// Maps: every field desired sets must match; with `lenient` extra live
/// fields are ignored (server defaults), otherwise they must be empty-like.
/// Empty-like values equal absent ones, and so do zero scalars (`false`,
/// `0`, `""`) of built-in kinds' struct fields ([`zero_is_omitted`]). Lists compare element-wise.
pub fn canon_eq<'a>(
    d: &'a Value,
    l: &Value,
    gk: &GroupKind,
    names: &mut Vec<&'a str>,
    lenient: bool,
) -> bool {
    match (d, l) {
        (Value::Object(dm), Value::Object(lm)) => {
            for (k, dv) in dm {
                names.push(k);
                let ok = match lm.get(k) {
                    None => is_empty_like(dv) || zero_is_omitted(gk, names, dv),
                    Some(lv) => {
                        (is_empty_like(dv) && is_empty_like(lv))
                            || canon_eq(dv, lv, gk, names, lenient)
                    }
                };
                names.pop();
                if !ok {
                    return false;
                }
            }
            lenient
                || lm
                    .iter()
                    .all(|(k, lv)| dm.contains_key(k) || is_empty_like(lv))
        }
        (Value::Array(da), Value::Array(la)) => {
            da.len() == la.len()
                && da
                    .iter()
                    .zip(la.iter())
                    .all(|(x, y)| canon_eq(x, y, gk, names, lenient))
        }
        _ => {
            if is_empty_like(d) && is_empty_like(l) {
                return true;
            }
            scalar_eq(d, l, is_quantity_position(gk, names))
        }
    }
}

/// API groups of the types compiled into the API server (and the
/// aggregated `metrics.k8s.io`, `apiregistration.k8s.io`). Objects of these
/// groups round-trip through Go structs whose `omitempty` fields drop zero
/// values. Listed explicitly rather than matched as `*.k8s.io`: CRDs live
/// in such groups too (`gateway.networking.k8s.io`,
/// `snapshot.storage.k8s.io`, ...) and store what they are given.
const BUILTIN_GROUPS: &[&str] = &[
    "",
    "apps",
    "batch",
    "policy",
    "autoscaling",
    "extensions",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "certificates.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "internal.apiserver.k8s.io",
    "metrics.k8s.io",
    "networking.k8s.io",
    "node.k8s.io",
    "rbac.authorization.k8s.io",
    "resource.k8s.io",
    "scheduling.k8s.io",
    "storage.k8s.io",
    "storagemigration.k8s.io",
];

/// Whether objects of this group are built-in types (Go structs in the API
/// server), whose `omitempty` zero values are not stored.
pub fn is_builtin_group(group: &str) -> bool {
    BUILTIN_GROUPS.contains(&group)
}

/// Whether a scalar is its type's zero value (`false`, `0`, `""`), which Go
/// does not serialise for an `omitempty` non-pointer field.
pub fn is_zero_scalar(v: &Value) -> bool {
    match v {
        Value::Bool(b) => !b,
        Value::Number(n) => cmp_numbers(n, &Number::from(0)) == Ordering::Equal,
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// Whether a position (field names from the root, list elements omitted)
/// is a map of strings (`map[string]string`), whose entries the API server
/// stores even when empty (`omitempty` applies to struct fields, not map
/// entries): labels, annotations, selectors, ConfigMap and Secret data, ...
pub(crate) fn is_string_map(gk: &GroupKind, names: &[&str]) -> bool {
    if matches!(
        names,
        [
            ..,
            "labels" | "annotations" | "matchLabels" | "nodeSelector"
        ] | [.., "volumeAttributes" | "options" | "parameters"]
    ) {
        return true;
    }
    gk.group.is_empty()
        && matches!(
            (gk.kind.as_str(), names),
            (_, ["data" | "binaryData" | "stringData"])
                | ("Service" | "ReplicationController", ["spec", "selector"])
        )
}

/// Whether a declared value at `names` is one the API server does not store:
/// a zero scalar ([`is_zero_scalar`]) of a built-in kind
/// ([`is_builtin_group`]), outside maps of strings (a struct field with
/// Go's `omitempty`). A conservative reading: unknown map positions are
/// taken as struct fields only when not listed as string maps.
pub fn zero_is_omitted(gk: &GroupKind, names: &[&str], v: &Value) -> bool {
    is_zero_scalar(v)
        && is_builtin_group(&gk.group)
        && !names
            .split_last()
            .is_some_and(|(_, parent)| is_string_map(gk, parent))
}

/// Standard base64 (RFC 4648, with padding), as the API server encodes
/// `[]byte` fields such as `Secret.data`.
pub fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Folds a core/v1 Secret's `stringData` into `data` as the API server does
/// on every write: each string value is base64-encoded into `data` under
/// the same key (replacing a `data` value), and `stringData` is dropped.
/// Non-string values (invalid; the server refuses them) stay in
/// `stringData`. Returns whether the object changed; other kinds are left
/// alone.
pub fn fold_secret_string_data(object: &mut Value) -> bool {
    let gk = GroupKind::of(object);
    if !(gk.group.is_empty() && gk.kind == "Secret") {
        return false;
    }
    let Some(obj) = object.as_object_mut() else {
        return false;
    };
    let Some(Value::Object(string_data)) = obj.get("stringData") else {
        // `null` declares nothing; anything else is left to the server.
        return match obj.get("stringData") {
            Some(Value::Null) => obj.shift_remove("stringData").is_some(),
            _ => false,
        };
    };
    let declared = string_data.len();
    let mut rest = Map::new();
    let mut encoded = Vec::new();
    for (k, v) in string_data {
        match v {
            Value::String(s) => encoded.push((k.clone(), base64_encode(s.as_bytes()))),
            Value::Null => {}
            other => {
                rest.insert(k.clone(), other.clone());
            }
        }
    }
    if !encoded.is_empty() {
        if !matches!(obj.get("data"), Some(Value::Object(_))) {
            obj.insert("data".to_string(), Value::Object(Map::new()));
        }
        if let Some(Value::Object(data)) = obj.get_mut("data") {
            for (k, v) in encoded {
                data.insert(k, Value::String(v));
            }
        }
    }
    if rest.len() == declared {
        return false;
    }
    if rest.is_empty() {
        obj.shift_remove("stringData");
    } else {
        obj.insert("stringData".to_string(), Value::Object(rest));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap()
    }

    #[test]
    fn quantities() {
        assert_eq!(q("0.5"), q("500m"));
        assert_eq!(q(".5"), q("500m"));
        assert_eq!(q("1Gi"), q("1024Mi"));
        assert_eq!(q("1"), q("1000m"));
        assert_eq!(q("1k"), q("1e3"));
        assert_eq!(q("1E3"), q("1000"));
        assert_eq!(q("1.5Gi"), q("1536Mi"));
        assert_eq!(q("0"), q("0m"));
        assert_ne!(q("128974848"), q("129e6"));
        assert_ne!(q("1G"), q("1Gi"));
        assert_ne!(q("100m"), q("100M"));
        assert!(Quantity::parse("abc").is_none());
        assert!(Quantity::parse("1Zi").is_none());
        assert!(Quantity::parse("").is_none());
        assert!(Quantity::parse("1.2.3").is_none());
        assert_eq!(Quantity::from_value(&json!(0.5)), Some(q("500m")));
        assert_eq!(Quantity::from_value(&json!(2)), Some(q("2")));
    }

    #[test]
    fn scalars() {
        assert!(scalar_eq(&json!(1), &json!(1.0), false));
        assert!(!scalar_eq(&json!(8080), &json!("8080"), false));
        assert!(!scalar_eq(&json!("1"), &json!(1), false));
        assert!(scalar_eq(&json!("1"), &json!(1), true));
        assert!(scalar_eq(&json!(0.5), &json!("500m"), true));
        assert!(!scalar_eq(&json!("500m"), &json!("0.5"), false));
    }

    #[test]
    fn server_fields() {
        assert!(is_server_field(&["status"]));
        assert!(is_server_field(&["metadata", "uid"]));
        assert!(is_server_field(&[
            "metadata",
            "annotations",
            LAST_APPLIED_ANNOTATION
        ]));
        assert!(!is_server_field(&["metadata", "labels"]));
        assert!(!is_server_field(&["spec", "status"]));
    }

    #[test]
    fn base64() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(plain.as_bytes()), enc);
        }
        assert_eq!(base64_encode(&[0xfb, 0xff, 0xfe]), "+//+");
    }

    #[test]
    fn secret_string_data_folds_into_data() {
        let mut s = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "data": {"a": "eA==", "b": "eQ=="}, "stringData": {"b": "foo", "c": "bar"}});
        assert!(fold_secret_string_data(&mut s));
        assert_eq!(s["data"], json!({"a": "eA==", "b": "Zm9v", "c": "YmFy"}));
        assert!(s.get("stringData").is_none());
        let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "stringData": {"a": "x"}});
        assert!(!fold_secret_string_data(&mut cm));
        let mut other =
            json!({"apiVersion": "example.com/v1", "kind": "Secret", "stringData": {"a": "x"}});
        assert!(!fold_secret_string_data(&mut other));
        let mut bad = json!({"apiVersion": "v1", "kind": "Secret", "stringData": {"a": 1}});
        assert!(!fold_secret_string_data(&mut bad));
        assert_eq!(
            bad,
            json!({"apiVersion": "v1", "kind": "Secret", "stringData": {"a": 1}})
        );
    }

    #[test]
    fn zero_values_and_groups() {
        for z in [json!(false), json!(0), json!(0.0), json!("")] {
            assert!(is_zero_scalar(&z), "{z}");
        }
        for nz in [
            json!(true),
            json!(1),
            json!("0"),
            json!(null),
            json!({}),
            json!([]),
        ] {
            assert!(!is_zero_scalar(&nz), "{nz}");
        }
        assert!(is_builtin_group(""));
        assert!(is_builtin_group("apps"));
        assert!(is_builtin_group("rbac.authorization.k8s.io"));
        assert!(!is_builtin_group("gateway.networking.k8s.io"));
        assert!(!is_builtin_group("monitoring.coreos.com"));
        let deploy = GroupKind::new("apps", "Deployment");
        let mount = [
            "spec",
            "template",
            "spec",
            "containers",
            "volumeMounts",
            "readOnly",
        ];
        assert!(zero_is_omitted(&deploy, &mount, &json!(false)));
        assert!(!zero_is_omitted(&deploy, &mount, &json!(true)));
        let label = ["spec", "template", "metadata", "labels", "x"];
        assert!(!zero_is_omitted(&deploy, &label, &json!("")));
        let node_selector = ["spec", "template", "spec", "nodeSelector", "role"];
        assert!(!zero_is_omitted(&deploy, &node_selector, &json!("")));
        let cm = GroupKind::new("", "ConfigMap");
        assert!(!zero_is_omitted(&cm, &["data", "empty"], &json!("")));
        assert!(zero_is_omitted(&cm, &["immutable"], &json!(false)));
        let svc = GroupKind::new("", "Service");
        assert!(!zero_is_omitted(
            &svc,
            &["spec", "selector", "app"],
            &json!("")
        ));
        let cr = GroupKind::new("example.com", "Thing");
        assert!(!zero_is_omitted(&cr, &["spec", "enabled"], &json!(false)));
    }

    #[test]
    fn ordering() {
        assert_eq!(cmp_values(&json!(1), &json!(1.0)), Ordering::Equal);
        assert_eq!(cmp_values(&json!(1), &json!("a")), Ordering::Less);
        assert_eq!(
            cmp_values(&json!({"a":1,"b":2}), &json!({"b":2,"a":1})),
            Ordering::Equal
        );
        assert_eq!(pointer_segments("/a~1b/c~0d"), vec!["a/b", "c~d"]);
        assert_eq!(pointer_escape("a/b~"), "a~1b~0");
    }
}
