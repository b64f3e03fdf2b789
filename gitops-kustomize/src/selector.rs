//! Selecting resources: patch targets, replacement sources and targets.

use regex::Regex;
use serde_json::Value;

use crate::kustomization::str_field;
use crate::resource::{Gvk, Resource};

/// A target selector (`group`, `version`, `kind`, `name`, `namespace`,
/// `labelSelector`, `annotationSelector`); names and namespaces are
/// anchored regular expressions, as in kustomize.
#[derive(Clone, Debug, Default)]
pub struct Selector {
    /// Group, version, kind (empty fields match anything).
    pub gvk: Gvk,
    /// Name pattern.
    pub name: Option<Regex>,
    /// Namespace pattern.
    pub namespace: Option<Regex>,
    /// Label selector.
    pub labels: Option<LabelSelector>,
    /// Annotation selector.
    pub annotations: Option<LabelSelector>,
}

fn anchored(p: &str) -> Result<Regex, String> {
    Regex::new(&format!("^(?:{p})$")).map_err(|e| format!("invalid pattern `{p}`: {e}"))
}

impl Selector {
    /// Reads a selector map.
    pub fn from_value(v: &Value) -> Result<Self, String> {
        let gvk = Gvk {
            group: str_field(v, "group").unwrap_or_default(),
            version: str_field(v, "version").unwrap_or_default(),
            kind: str_field(v, "kind").unwrap_or_default(),
        };
        let name = str_field(v, "name")
            .filter(|s| !s.is_empty())
            .map(|s| anchored(&s))
            .transpose()?;
        let namespace = str_field(v, "namespace")
            .filter(|s| !s.is_empty())
            .map(|s| anchored(&s))
            .transpose()?;
        let labels = str_field(v, "labelSelector")
            .filter(|s| !s.is_empty())
            .map(|s| LabelSelector::parse(&s))
            .transpose()?;
        let annotations = str_field(v, "annotationSelector")
            .filter(|s| !s.is_empty())
            .map(|s| LabelSelector::parse(&s))
            .transpose()?;
        Ok(Self {
            gvk,
            name,
            namespace,
            labels,
            annotations,
        })
    }

    /// Whether `r` is selected (by its original or its current name and namespace).
    pub fn matches(&self, r: &Resource) -> bool {
        let cur = r.cur_id();
        let org = r.org_id();
        if let Some(ns) = &self.namespace
            && !ns.is_match(org.effective_namespace())
            && !ns.is_match(cur.effective_namespace())
        {
            return false;
        }
        if let Some(n) = &self.name
            && !n.is_match(&org.name)
            && !n.is_match(&cur.name)
        {
            return false;
        }
        if !cur.gvk.is_selected(&self.gvk) {
            return false;
        }
        if let Some(ls) = &self.labels
            && !ls.matches(r.meta_map("labels"))
        {
            return false;
        }
        if let Some(ls) = &self.annotations
            && !ls.matches(r.meta_map("annotations"))
        {
            return false;
        }
        true
    }
}

/// One requirement of a label selector.
#[derive(Clone, Debug)]
enum Req {
    Eq(String, String),
    Ne(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A Kubernetes label selector in its string form (`a=b,c!=d,e in (f,g),!h`).
#[derive(Clone, Debug)]
pub struct LabelSelector(Vec<Req>);

fn split_top(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => {
                depth += 1;
                cur.push(c)
            }
            ')' => {
                depth -= 1;
                cur.push(c)
            }
            ',' if depth == 0 => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn set_of(s: &str) -> Result<Vec<String>, String> {
    let inner = s
        .trim()
        .strip_prefix('(')
        .and_then(|x| x.strip_suffix(')'))
        .ok_or_else(|| format!("expected `(values)` in `{s}`"))?;
    Ok(inner.split(',').map(|x| x.trim().to_owned()).collect())
}

impl LabelSelector {
    /// Parses the string form.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for part in split_top(s) {
            let r = if let Some(k) = part.strip_prefix('!') {
                Req::NotExists(k.trim().to_owned())
            } else if let Some((k, v)) = part.split_once("!=") {
                Req::Ne(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once("==") {
                Req::Eq(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once('=') {
                Req::Eq(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once(" notin ") {
                Req::NotIn(k.trim().into(), set_of(v)?)
            } else if let Some((k, v)) = part.split_once(" in ") {
                Req::In(k.trim().into(), set_of(v)?)
            } else {
                Req::Exists(part.trim().to_owned())
            };
            reqs.push(r);
        }
        Ok(Self(reqs))
    }

    /// Whether a label map satisfies every requirement.
    pub fn matches(&self, labels: Option<&serde_json::Map<String, Value>>) -> bool {
        let get = |k: &str| {
            labels
                .and_then(|m| m.get(k))
                .and_then(crate::kustomization::scalar_string)
        };
        self.0.iter().all(|r| match r {
            Req::Eq(k, v) => get(k).as_deref() == Some(v.as_str()),
            Req::Ne(k, v) => get(k).as_deref() != Some(v.as_str()),
            Req::In(k, vs) => get(k).is_some_and(|x| vs.contains(&x)),
            Req::NotIn(k, vs) => get(k).is_none_or(|x| !vs.contains(&x)),
            Req::Exists(k) => get(k).is_some(),
            Req::NotExists(k) => get(k).is_none(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selector_forms() {
        let m = json!({"app": "web", "tier": "fe"});
        let m = m.as_object();
        assert!(LabelSelector::parse("app=web,tier in (fe, be)").is_ok_and(|s| s.matches(m)));
        assert!(LabelSelector::parse("app!=web").is_ok_and(|s| !s.matches(m)));
        assert!(LabelSelector::parse("!missing,app").is_ok_and(|s| s.matches(m)));
    }

    #[test]
    fn names_are_anchored_patterns() {
        let s = Selector::from_value(&json!({"kind": "Deployment", "name": "web.*"}));
        let s = s.unwrap_or_default();
        let r = Resource::new(
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web-1"}}),
            crate::origin::Origin::new("x", 0),
        );
        assert!(s.matches(&r));
        let r2 = Resource::new(
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "my-web"}}),
            crate::origin::Origin::new("x", 0),
        );
        assert!(!s.matches(&r2));
    }
}
