//! Secret values are never printed: the masks every human-readable or
//! serialised output of this workspace applies, as `kubectl diff` does.
//!
//! A core/v1 `Secret`'s `data` and `stringData` values, and its
//! `kubectl.kubernetes.io/last-applied-configuration` annotation (which
//! repeats them), are replaced by [`MASK`]. Where two versions are shown
//! side by side and a value differs, the two sides read `*** (before)` and
//! `*** (after)`, so a reader still sees *that* it changed.
//!
//! The values themselves stay in the data structures ([`Change::before`],
//! [`ObjectDiff::json_patch`]): the program needs them to apply. Showing
//! them is an explicit opt-in ([`ObjectDiff::reveal_secrets`]).
//!
//! ```
//! use gitops_diff::{GroupKind, secrets};
//! use serde_json::json;
//! let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
//!     "data": {"password": "aHVudGVyMg=="}});
//! let masked = secrets::mask_object(&GroupKind::of(&secret), &secret);
//! assert_eq!(masked["data"]["password"], "***");
//! ```
//!
//! [`Change::before`]: crate::Change::before
//! [`ObjectDiff::json_patch`]: crate::ObjectDiff::json_patch
//! [`ObjectDiff::reveal_secrets`]: crate::ObjectDiff::reveal_secrets

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::GroupKind;
use crate::value::LAST_APPLIED_ANNOTATION;

/// What replaces a secret value.
pub const MASK: &str = "***";
/// What replaces the earlier of two different secret values.
pub const MASK_BEFORE: &str = "*** (before)";
/// What replaces the later of two different secret values.
pub const MASK_AFTER: &str = "*** (after)";

const SECRET_MAPS: [&str; 2] = ["data", "stringData"];

/// Whether objects of this kind carry secret values (core/v1 `Secret`).
pub fn is_secret_kind(gk: &GroupKind) -> bool {
    gk.group.is_empty() && gk.kind == "Secret"
}

/// Whether the field at RFC 6901 `pointer` of an object of kind `gk`
/// holds (or contains) a secret value.
pub fn is_secret_pointer(gk: &GroupKind, pointer: &str) -> bool {
    if !is_secret_kind(gk) {
        return false;
    }
    let first = pointer
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("");
    SECRET_MAPS.contains(&first)
        || pointer == "/metadata/annotations"
        || pointer == "/metadata"
        || pointer.is_empty()
        || pointer.starts_with(&format!(
            "/metadata/annotations/{}",
            crate::pointer_escape(LAST_APPLIED_ANNOTATION)
        ))
}

/// A copy of `object` with its secret values masked (the object itself
/// when its kind has none).
pub fn mask_object<'a>(gk: &GroupKind, object: &'a Value) -> Cow<'a, Value> {
    if !is_secret_kind(gk) || !object.is_object() {
        return Cow::Borrowed(object);
    }
    let mut out = object.clone();
    if let Value::Object(m) = &mut out {
        for field in SECRET_MAPS {
            if let Some(Value::Object(entries)) = m.get_mut(field) {
                for v in entries.values_mut() {
                    *v = Value::String(MASK.into());
                }
            }
        }
        if let Some(Value::Object(ann)) = m
            .get_mut("metadata")
            .and_then(|md| md.get_mut("annotations"))
            && let Some(v) = ann.get_mut(LAST_APPLIED_ANNOTATION)
        {
            *v = Value::String(MASK.into());
        }
    }
    Cow::Owned(out)
}

/// Masks two versions of one object for a side-by-side display: equal
/// secret values read [`MASK`] on both sides, different ones
/// [`MASK_BEFORE`] and [`MASK_AFTER`].
pub fn mask_pair(gk: &GroupKind, before: &Value, after: &Value) -> (Value, Value) {
    let (mut b, mut a) = (
        mask_object(gk, before).into_owned(),
        mask_object(gk, after).into_owned(),
    );
    if !is_secret_kind(gk) {
        return (b, a);
    }
    for field in SECRET_MAPS {
        let (Some(bm), Some(am)) = (
            before.get(field).and_then(Value::as_object),
            after.get(field).and_then(Value::as_object),
        ) else {
            continue;
        };
        for (k, bv) in bm {
            if am.get(k).is_some_and(|av| av != bv) {
                set(&mut b, field, k, MASK_BEFORE);
                set(&mut a, field, k, MASK_AFTER);
            }
        }
    }
    (b, a)
}

fn set(v: &mut Value, field: &str, key: &str, text: &str) {
    if let Some(Value::Object(m)) = v.get_mut(field) {
        m.insert(key.to_owned(), Value::String(text.to_owned()));
    }
}

/// Masks one value shown for a secret field (a whole `data` map keeps its
/// keys and loses its values).
pub fn mask_value(value: &Value, text: &str) -> Value {
    match value {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, _)| (k.clone(), Value::String(text.to_owned())))
                .collect::<Map<_, _>>(),
        ),
        _ => Value::String(text.to_owned()),
    }
}

/// The two sides of one changed secret field, masked: both [`MASK`] when
/// equal (or one is absent), else [`MASK_BEFORE`] and [`MASK_AFTER`].
pub fn mask_change(
    before: Option<&Value>,
    after: Option<&Value>,
) -> (Option<Value>, Option<Value>) {
    let differ = matches!((before, after), (Some(b), Some(a)) if a != b);
    let (tb, ta) = if differ {
        (MASK_BEFORE, MASK_AFTER)
    } else {
        (MASK, MASK)
    };
    (
        before.map(|v| mask_value(v, tb)),
        after.map(|v| mask_value(v, ta)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secret(data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "annotations": {LAST_APPLIED_ANNOTATION: "{\"data\":{\"p\":\"eA==\"}}"}},
            "data": data, "stringData": {"plain": "hunter2"}})
    }

    #[test]
    fn masks_secrets_only() {
        let gk = GroupKind::new("", "Secret");
        let s = secret(json!({"p": "eA=="}));
        let m = mask_object(&gk, &s);
        assert_eq!(m["data"]["p"], MASK);
        assert_eq!(m["stringData"]["plain"], MASK);
        assert_eq!(m["metadata"]["annotations"][LAST_APPLIED_ANNOTATION], MASK);
        assert!(!m.to_string().contains("hunter2"));
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"p": "x"}});
        assert_eq!(mask_object(&GroupKind::of(&cm), &cm).as_ref(), &cm);
        // A CRD kind named Secret in another group is not a core Secret.
        assert!(!is_secret_kind(&GroupKind::new("example.com", "Secret")));
    }

    #[test]
    fn pairs_show_what_changed() {
        let gk = GroupKind::new("", "Secret");
        let (b, a) = mask_pair(
            &gk,
            &secret(json!({"p": "eA==", "q": "eQ=="})),
            &secret(json!({"p": "eg==", "q": "eQ=="})),
        );
        assert_eq!(
            (b["data"]["p"].as_str(), a["data"]["p"].as_str()),
            (Some(MASK_BEFORE), Some(MASK_AFTER))
        );
        assert_eq!(
            (b["data"]["q"].as_str(), a["data"]["q"].as_str()),
            (Some(MASK), Some(MASK))
        );
        assert_eq!(
            mask_change(Some(&json!("a")), Some(&json!("b"))),
            (Some(json!(MASK_BEFORE)), Some(json!(MASK_AFTER)))
        );
        assert_eq!(
            mask_change(None, Some(&json!({"k": "v"}))),
            (None, Some(json!({"k": MASK})))
        );
        assert!(is_secret_pointer(&gk, "/data/p"));
        assert!(is_secret_pointer(&gk, "/stringData"));
        assert!(!is_secret_pointer(&gk, "/type"));
        assert!(!is_secret_pointer(&gk, "/metadata/labels/app"));
    }
}
