//! Policies: what a source may declare, checked before anything is applied.
//!
//! A [`Policy`] bounds the blast radius of a repository: which kinds it may
//! declare, in which namespaces, whether cluster-scoped objects are allowed,
//! how many objects, whether its commits must be signed, whether container
//! images must be pinned by digest (a hermetic deployment cannot use a
//! moving tag), and whether plain `Secret`s may live in Git. Every violation
//! is reported at once, each with the file and document that caused it; the
//! reconciler applies nothing when there is any.
//!
//! ```
//! use gitops_core::policy::{KindPattern, Policy, Rule};
//! use gitops_core::{render, RenderOptions, Snapshot};
//! let snap = Snapshot::from_files([("s.yaml",
//!     "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: kube-system}\n")]);
//! let desired = render(&snap, &RenderOptions::default()).unwrap();
//! let policy = Policy::new()
//!     .allowed_namespaces(vec!["shop".into()])
//!     .forbid_secrets(true);
//! let violations = policy.check(&desired);
//! let rules: Vec<Rule> = violations.iter().map(|v| v.rule).collect();
//! assert_eq!(rules, [Rule::Namespace, Rule::Secret]);
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::desired::{DesiredState, Provenance};
use crate::key::{GroupKind, ObjectKey};
use crate::scope::Scope;

/// A group/kind pattern; `*` matches anything in that part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindPattern {
    /// API group (`""` for core) or `*`.
    pub group: String,
    /// Kind or `*`.
    pub kind: String,
}

impl KindPattern {
    /// A pattern.
    pub fn new(group: impl Into<String>, kind: impl Into<String>) -> Self {
        Self {
            group: group.into(),
            kind: kind.into(),
        }
    }

    /// Whether it matches a kind.
    pub fn matches(&self, gk: &GroupKind) -> bool {
        (self.group == "*" || self.group == gk.group) && (self.kind == "*" || self.kind == gk.kind)
    }
}

/// Limits on what a source may declare. The default allows everything.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Policy {
    /// If set, only kinds matching one of these are allowed.
    pub allowed_kinds: Option<Vec<KindPattern>>,
    /// Kinds never allowed (checked after `allowed_kinds`).
    pub denied_kinds: Vec<KindPattern>,
    /// If set, namespaced objects must be in one of these namespaces.
    pub allowed_namespaces: Option<Vec<String>>,
    /// Whether cluster-scoped objects (Namespaces, ClusterRoles, CRDs, ...)
    /// may be declared.
    pub allow_cluster_scoped: bool,
    /// At most this many objects.
    pub max_objects: Option<usize>,
    /// The revision must carry a trusted signature.
    pub require_signature: bool,
    /// Every container image must be pinned by digest (`@sha256:…`).
    pub require_image_digests: bool,
    /// No `v1` `Secret` objects in Git (use sealed or external secrets).
    pub forbid_secrets: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            allowed_kinds: None,
            denied_kinds: Vec::new(),
            allowed_namespaces: None,
            allow_cluster_scoped: true,
            max_objects: None,
            require_signature: false,
            require_image_digests: false,
            forbid_secrets: false,
        }
    }
}

/// Which rule a [`Violation`] breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Rule {
    /// `allowed_kinds` / `denied_kinds`.
    Kind,
    /// `allowed_namespaces`.
    Namespace,
    /// `allow_cluster_scoped`.
    ClusterScoped,
    /// `max_objects`.
    ObjectCount,
    /// `require_signature`.
    Signature,
    /// `require_image_digests`.
    ImageDigest,
    /// `forbid_secrets`.
    Secret,
}

/// One broken rule, with the object and place that broke it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Violation {
    /// The rule.
    pub rule: Rule,
    /// The object at fault, if the rule is about one object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<ObjectKey>,
    /// Where it is declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.provenance {
            write!(f, "{p}: ")?;
        }
        if let Some(k) = &self.key {
            write!(f, "{k}: ")?;
        }
        write!(f, "{} ({:?} rule)", self.message, self.rule)
    }
}

/// Whether an image reference is pinned by a SHA-256 digest.
///
/// ```
/// use gitops_core::policy::is_pinned;
/// assert!(is_pinned(&format!("nginx@sha256:{}", "a".repeat(64))));
/// assert!(!is_pinned("nginx:1.25"));
/// assert!(!is_pinned("nginx@sha256:short"));
/// ```
pub fn is_pinned(image: &str) -> bool {
    image.rsplit_once("@sha256:").is_some_and(|(name, digest)| {
        !name.is_empty()
            && digest.len() == 64
            && digest
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    })
}

/// Every container image of an object, with a readable location
/// (containers, init containers and ephemeral containers of any pod
/// template, wherever it is nested).
pub fn images(object: &Value) -> Vec<(String, String)> {
    fn walk(v: &Value, path: &mut Vec<String>, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    if matches!(
                        k.as_str(),
                        "containers" | "initContainers" | "ephemeralContainers"
                    ) && let Value::Array(items) = child
                    {
                        for c in items {
                            let name = c.get("name").and_then(Value::as_str).unwrap_or("?");
                            let image = c.get("image").and_then(Value::as_str).unwrap_or("");
                            out.push((
                                format!("{}{k}[name={name}].image", prefix(path)),
                                image.to_owned(),
                            ));
                        }
                        continue;
                    }
                    if k == "status" && path.is_empty() {
                        continue;
                    }
                    path.push(k.clone());
                    walk(child, path, out);
                    path.pop();
                }
            }
            Value::Array(items) => {
                for item in items {
                    walk(item, path, out);
                }
            }
            _ => {}
        }
    }
    fn prefix(path: &[String]) -> String {
        path.iter().map(|p| format!("{p}.")).collect()
    }
    let mut out = Vec::new();
    walk(object, &mut Vec::new(), &mut out);
    out
}

impl Policy {
    /// The default policy: everything allowed, nothing required.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only kinds matching one of these are allowed.
    pub fn allowed_kinds(mut self, kinds: Vec<KindPattern>) -> Self {
        self.allowed_kinds = Some(kinds);
        self
    }

    /// Kinds never allowed.
    pub fn denied_kinds(mut self, kinds: Vec<KindPattern>) -> Self {
        self.denied_kinds = kinds;
        self
    }

    /// Namespaced objects must be in one of these namespaces.
    pub fn allowed_namespaces(mut self, namespaces: Vec<String>) -> Self {
        self.allowed_namespaces = Some(namespaces);
        self
    }

    /// Whether cluster-scoped objects may be declared.
    pub fn allow_cluster_scoped(mut self, allow: bool) -> Self {
        self.allow_cluster_scoped = allow;
        self
    }

    /// At most this many objects.
    pub fn max_objects(mut self, max: usize) -> Self {
        self.max_objects = Some(max);
        self
    }

    /// The revision must carry a trusted signature.
    pub fn require_signature(mut self, require: bool) -> Self {
        self.require_signature = require;
        self
    }

    /// Every container image must be pinned by digest.
    pub fn require_image_digests(mut self, require: bool) -> Self {
        self.require_image_digests = require;
        self
    }

    /// No `v1` `Secret` objects in Git.
    pub fn forbid_secrets(mut self, forbid: bool) -> Self {
        self.forbid_secrets = forbid;
        self
    }

    /// Checks what a plan would delete: the kind and namespace rules bound
    /// prunes as they bound applies (a kind denied today must not be deleted
    /// by a revision that stops declaring it).
    pub fn check_plan(&self, plan: &crate::plan::Plan) -> Vec<Violation> {
        let mut out = Vec::new();
        for step in plan
            .steps
            .iter()
            .filter(|s| matches!(s.action, crate::plan::Action::Delete))
        {
            let key = &step.key;
            let gk = key.group_kind();
            let v = |rule, message: String| Violation {
                rule,
                key: Some(key.clone()),
                provenance: None,
                message: format!("prune: {message}"),
            };
            if let Some(allowed) = &self.allowed_kinds
                && !allowed.iter().any(|p| p.matches(&gk))
            {
                out.push(v(
                    Rule::Kind,
                    format!("kind {gk} is not in the allowed kinds"),
                ));
            }
            if self.denied_kinds.iter().any(|p| p.matches(&gk)) {
                out.push(v(Rule::Kind, format!("kind {gk} is denied")));
            }
            if let Some(allowed) = &self.allowed_namespaces {
                let ns = if key.is("", "Namespace") {
                    Some(&key.name)
                } else {
                    key.namespace.as_ref()
                };
                if let Some(ns) = ns
                    && !allowed.iter().any(|a| a == ns)
                {
                    out.push(v(Rule::Namespace, format!("namespace {ns} is not allowed")));
                }
            }
            if key.namespace.is_none() && !self.allow_cluster_scoped {
                out.push(v(
                    Rule::ClusterScoped,
                    format!("cluster-scoped {gk} objects are not allowed"),
                ));
            }
        }
        out
    }

    /// Checks a desired state (its revision's signature verdict included)
    /// and returns every violation, in a stable order.
    pub fn check(&self, desired: &DesiredState) -> Vec<Violation> {
        let mut out = Vec::new();
        if self.require_signature {
            match desired.revision().map(|r| &r.signature) {
                Some(v) if v.is_trusted() => {}
                v => out.push(Violation {
                    rule: Rule::Signature,
                    key: None,
                    provenance: None,
                    message: format!(
                        "the revision must carry a trusted signature, but verification says {}",
                        match v {
                            None => "nothing (no revision)".to_owned(),
                            Some(v) => serde_json::to_string(v).unwrap_or_default(),
                        }
                    ),
                }),
            }
        }
        if let Some(max) = self.max_objects
            && desired.len() > max
        {
            out.push(Violation {
                rule: Rule::ObjectCount,
                key: None,
                provenance: None,
                message: format!(
                    "{} objects declared, more than the maximum of {max}",
                    desired.len()
                ),
            });
        }
        // No rule that reads objects one by one: none is read.
        let per_object = self.allowed_kinds.is_some()
            || !self.denied_kinds.is_empty()
            || self.allowed_namespaces.is_some()
            || !self.allow_cluster_scoped
            || self.require_image_digests
            || self.forbid_secrets;
        if !per_object {
            return out;
        }
        // Objects come in key order, so those of one kind come together:
        // the kind and its scope are worked out once per kind.
        let mut kind: Option<(GroupKind, Option<Scope>)> = None;
        for (key, d) in desired.iter() {
            let (gk, scope) = match &mut kind {
                Some((gk, scope)) if key.is(&gk.group, &gk.kind) => (&*gk, *scope),
                slot => {
                    let gk = key.group_kind();
                    let scope = desired.kinds().scope(&gk);
                    let (gk, scope) = slot.insert((gk, scope));
                    (&*gk, *scope)
                }
            };
            let v = |rule, message: String| Violation {
                rule,
                key: Some(key.clone()),
                provenance: Some(d.provenance.clone()),
                message,
            };
            if let Some(allowed) = &self.allowed_kinds
                && !allowed.iter().any(|p| p.matches(gk))
            {
                out.push(v(
                    Rule::Kind,
                    format!("kind {gk} is not in the allowed kinds"),
                ));
            }
            if self.denied_kinds.iter().any(|p| p.matches(gk)) {
                out.push(v(Rule::Kind, format!("kind {gk} is denied")));
            }
            if key.is("", "Namespace")
                && let Some(allowed) = &self.allowed_namespaces
                && !allowed.contains(&key.name)
            {
                out.push(v(
                    Rule::Namespace,
                    format!("namespace {} is not allowed", key.name),
                ));
            }
            match (&key.namespace, scope) {
                (Some(ns), _) => {
                    if let Some(allowed) = &self.allowed_namespaces
                        && !allowed.iter().any(|a| a == ns)
                    {
                        out.push(v(Rule::Namespace, format!("namespace {ns} is not allowed")));
                    }
                }
                (None, Some(Scope::Cluster)) | (None, None) => {
                    if !self.allow_cluster_scoped {
                        out.push(v(
                            Rule::ClusterScoped,
                            format!("cluster-scoped {gk} objects are not allowed"),
                        ));
                    }
                }
                (None, Some(Scope::Namespaced)) => {}
            }
            if self.require_image_digests {
                for (path, image) in images(d.object.as_value()) {
                    if !is_pinned(&image) {
                        out.push(v(
                            Rule::ImageDigest,
                            format!("{path} = {image:?} is not pinned by digest (@sha256:...)"),
                        ));
                    }
                }
            }
            if self.forbid_secrets && key.is("", "Secret") {
                out.push(v(
                    Rule::Secret,
                    "plain Secrets are not allowed in Git (use sealed or external secrets)"
                        .to_owned(),
                ));
            }
        }
        out
    }
}
