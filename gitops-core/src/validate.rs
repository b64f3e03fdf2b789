//! Kubernetes name and label syntax, as the API server validates it.
//!
//! The rules follow `k8s.io/apimachinery/pkg/util/validation` and the
//! per-kind choices of `k8s.io/kubernetes/pkg/apis/*/validation`:
//!
//! | rule | kinds |
//! |---|---|
//! | [`NameRule::Dns1123Label`] (≤ 63, `[a-z0-9]([-a-z0-9]*[a-z0-9])?`) | `Namespace` |
//! | [`NameRule::Dns1035Label`] (≤ 63, starts with a letter) | `Service` |
//! | [`NameRule::PathSegment`] (not `.`/`..`, no `/` or `%`) | `Role`, `ClusterRole`, `RoleBinding`, `ClusterRoleBinding` (RBAC names such as `system:aggregate-to-view`) |
//! | [`NameRule::Dns1123Subdomain`] (≤ 253, dot-separated labels) | every other kind, custom resources included |

use std::fmt;

use serde::{Deserialize, Serialize};

/// Which syntax a kind's `metadata.name` must follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NameRule {
    /// RFC 1123 subdomain: at most 253 characters, lowercase alphanumerics, `-` and `.`.
    Dns1123Subdomain,
    /// RFC 1123 label: at most 63 characters, lowercase alphanumerics and `-`.
    Dns1123Label,
    /// RFC 1035 label: an RFC 1123 label that starts with a letter.
    Dns1035Label,
    /// A URL path segment: anything but `.`, `..`, or text containing `/` or `%`.
    PathSegment,
}

impl NameRule {
    /// The rule the API server applies to names of the given group and kind.
    pub fn for_kind(group: &str, kind: &str) -> Self {
        match (group, kind) {
            ("", "Namespace") => Self::Dns1123Label,
            ("", "Service") => Self::Dns1035Label,
            (
                "rbac.authorization.k8s.io",
                "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding",
            ) => Self::PathSegment,
            _ => Self::Dns1123Subdomain,
        }
    }

    /// Checks `name` against this rule; the error says what is wrong.
    pub fn check(self, name: &str) -> Result<(), String> {
        match self {
            Self::Dns1123Subdomain => dns1123_subdomain(name),
            Self::Dns1123Label => dns1123_label(name),
            Self::Dns1035Label => dns1035_label(name),
            Self::PathSegment => path_segment(name),
        }
    }
}

impl fmt::Display for NameRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Dns1123Subdomain => "RFC 1123 subdomain",
            Self::Dns1123Label => "RFC 1123 label",
            Self::Dns1035Label => "RFC 1035 label",
            Self::PathSegment => "path segment",
        })
    }
}

/// Checked on bytes: the bytes of a character beyond ASCII are never
/// ASCII, so they fail every check here as the character would.
fn is_lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// RFC 1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub fn dns1123_label(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > 63 {
        return Err(format!(
            "must be no more than 63 characters (has {})",
            s.len()
        ));
    }
    if !s.bytes().all(|c| is_lower_alnum(c) || c == b'-') {
        return Err("must consist of lower case alphanumeric characters or '-'".into());
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err("must start and end with an alphanumeric character".into());
    }
    Ok(())
}

/// RFC 1035 label: an RFC 1123 label starting with a letter.
pub fn dns1035_label(s: &str) -> Result<(), String> {
    dns1123_label(s)?;
    if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err("must start with a lowercase letter".into());
    }
    Ok(())
}

/// RFC 1123 subdomain: dot-separated RFC 1123 labels, at most 253 characters.
pub fn dns1123_subdomain(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > 253 {
        return Err(format!(
            "must be no more than 253 characters (has {})",
            s.len()
        ));
    }
    // Every dot-separated part is not empty, of `[a-z0-9-]`, and starts and
    // ends with `[a-z0-9]`: so a `.` has one of those on each side, and a
    // `-` is neither first nor last.
    let b = s.as_bytes();
    let last = b.len() - 1;
    let lower_alnum_at = |i: usize| b.get(i).copied().is_some_and(is_lower_alnum);
    let ok = b.iter().enumerate().all(|(i, &c)| match c {
        b'.' => i > 0 && lower_alnum_at(i - 1) && lower_alnum_at(i + 1),
        b'-' => i > 0 && i < last,
        c => is_lower_alnum(c),
    });
    if !ok {
        return Err("must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character".into());
    }
    Ok(())
}

/// A URL path segment: not `.` or `..`, and without `/` or `%`.
pub fn path_segment(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s == "." || s == ".." {
        return Err(format!("may not be '{s}'"));
    }
    if s.contains('/') || s.contains('%') {
        return Err("may not contain '/' or '%'".into());
    }
    Ok(())
}

fn qualified_name_part(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("name part must not be empty".into());
    }
    if s.len() > 63 {
        return Err(format!(
            "name part must be no more than 63 characters (has {})",
            s.len()
        ));
    }
    let ok_inner = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.';
    let b = s.as_bytes();
    if !b.iter().all(|&c| ok_inner(c))
        || !b.first().is_some_and(u8::is_ascii_alphanumeric)
        || !b.last().is_some_and(u8::is_ascii_alphanumeric)
    {
        return Err("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character".into());
    }
    Ok(())
}

/// A qualified name, the syntax of label and annotation keys:
/// an optional DNS-subdomain prefix and `/`, then a name of at most 63
/// characters (`[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`).
pub fn qualified_name(s: &str) -> Result<(), String> {
    match s.split_once('/') {
        None => qualified_name_part(s),
        Some((prefix, name)) => {
            if name.contains('/') {
                return Err("may contain at most one '/'".into());
            }
            dns1123_subdomain(prefix).map_err(|e| format!("prefix {e}"))?;
            qualified_name_part(name)
        }
    }
}

/// A label value: empty, or at most 63 characters of the qualified-name-part syntax.
pub fn label_value(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Ok(());
    }
    if s.len() > 63 {
        return Err(format!(
            "must be no more than 63 characters (has {})",
            s.len()
        ));
    }
    qualified_name_part(s).map_err(|e| e.replacen("name part ", "", 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The byte scans accept exactly what the definitions by parts and
        /// characters accept.
        #[test]
        fn byte_scans_are_the_definitions(s in "[ab0.\\-_A/é]{0,8}") {
            let lower = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
            let label = |p: &str| !p.is_empty()
                && p.chars().all(|c| lower(c) || c == '-')
                && !p.starts_with('-')
                && !p.ends_with('-');
            let subdomain = !s.is_empty() && s.split('.').all(label);
            proptest::prop_assert_eq!(dns1123_subdomain(&s).is_ok(), subdomain);
            proptest::prop_assert_eq!(dns1123_label(&s).is_ok(), label(&s));
            let alnum = |c: char| c.is_ascii_alphanumeric();
            let part = !s.is_empty()
                && s.chars().all(|c| alnum(c) || matches!(c, '-' | '_' | '.'))
                && s.starts_with(alnum)
                && s.ends_with(alnum);
            proptest::prop_assert_eq!(qualified_name_part(&s).is_ok(), part);
        }
    }

    #[test]
    fn names_by_kind() {
        assert!(NameRule::for_kind("", "Namespace").check("shop").is_ok());
        assert!(NameRule::for_kind("", "Namespace").check("a.b").is_err());
        assert!(NameRule::for_kind("", "Service").check("1web").is_err());
        assert!(
            NameRule::for_kind("", "ConfigMap")
                .check("1web.conf")
                .is_ok()
        );
        assert!(NameRule::for_kind("", "ConfigMap").check("Web").is_err());
        let rbac = NameRule::for_kind("rbac.authorization.k8s.io", "ClusterRole");
        assert!(rbac.check("system:aggregate-to-view").is_ok());
        assert!(rbac.check("a/b").is_err());
        assert!(rbac.check("..").is_err());
        assert!(dns1123_subdomain(&"a".repeat(254)).is_err());
        assert!(dns1123_label(&"a".repeat(64)).is_err());
    }

    #[test]
    fn labels() {
        for ok in ["app", "app.kubernetes.io/name", "a_b-c.d", "example.com/X"] {
            assert!(qualified_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a/", "/a", "a/b/c", "UPPER.com/x", "a b"] {
            assert!(qualified_name(bad).is_err(), "{bad}");
        }
        assert!(label_value("").is_ok());
        assert!(label_value("v1.2_3-x").is_ok());
        assert!(label_value("-x").is_err());
        assert!(label_value(&"x".repeat(64)).is_err());
    }
}
