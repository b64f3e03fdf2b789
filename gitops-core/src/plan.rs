//! The planner: a pure function from desired and live state to an ordered
//! [`Plan`].
//!
//! # Laws (checked with proptest in `tests/planner_laws.rs`)
//! 1. Convergence: executing a plan on the in-memory runtime and planning
//!    again gives a plan without steps.
//! 2. Determinism: the same inputs give a byte-identical plan.
//! 3. Ordering: every Namespace and CRD is applied before the objects that
//!    live in it or are of its kind; deletions run after all applies, in the
//!    reverse order.
//! 4. Prune safety: only objects that both the owner's inventory lists and
//!    whose live owner label names the owner are deleted.
//! 5. Minimality: an object whose declared fields match produces no step.
//!
//! # Order
//! Steps are sorted by *wave*, then by kind rank, then by key. The wave is
//! the integer annotation [`WAVE_ANNOTATION`] (default 0), raised so that an
//! object is never in an earlier wave than its Namespace or its CRD. The
//! kind rank is Helm's install order (`pkg/release/util/kind_sorter.go`,
//! `InstallOrder`): Namespace, NetworkPolicy, ResourceQuota, LimitRange,
//! PodSecurityPolicy, PodDisruptionBudget, ServiceAccount, Secret,
//! ConfigMap, StorageClass, PersistentVolume, PersistentVolumeClaim,
//! CustomResourceDefinition, ClusterRole, ClusterRoleBinding, Role,
//! RoleBinding, Service, DaemonSet, Pod, ReplicationController, ReplicaSet,
//! Deployment, HorizontalPodAutoscaler, StatefulSet, Job, CronJob,
//! IngressClass, Ingress, APIService, then webhooks; custom resources come
//! after every built-in kind.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use gitops_diff::escape::EscapeWriter;
use std::sync::Arc;

use gitops_diff::{CrdLists, DiffOptions, LayeredLists, ListSemantics, ObjectDiff, PathElement};
use serde::Serialize;
use serde_json::Value;

use crate::desired::{DesiredState, Provenance};
use crate::key::{GroupKind, ObjectKey};
use crate::object::Object;
use crate::scope::KindRegistry;
use crate::target::{DEFAULT_FIELD_MANAGER, Inventory, LiveRef, LiveState, OWNER_LABEL, OwnerId};

/// Annotation that puts an object in a sync wave (an integer; lower first).
pub const WAVE_ANNOTATION: &str = "gitops-rs.io/wave";
/// Annotation that, set to `disabled`, keeps an object from ever being pruned.
pub const PRUNE_ANNOTATION: &str = "gitops-rs.io/prune";

const INSTALL_ORDER: &[&str] = &[
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// The install rank of a kind: its place in the install order; built-in
/// kinds not in the table come after those in it, custom kinds last.
pub fn kind_rank(gk: &GroupKind, builtin: &KindRegistry) -> usize {
    if builtin.is_builtin(gk) {
        INSTALL_ORDER
            .iter()
            .position(|k| *k == gk.kind)
            .unwrap_or(INSTALL_ORDER.len())
    } else {
        INSTALL_ORDER.len() + 1
    }
}

/// Options of [`plan`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PlanOptions {
    /// Whose plan this is: applied objects get [`OWNER_LABEL`] = owner.
    pub owner: OwnerId,
    /// The server-side-apply field manager (whose `managedFields` say what
    /// we owned before).
    pub field_manager: String,
    /// Delete objects the inventory lists and the desired state no longer
    /// declares.
    pub prune: bool,
    /// Take over existing objects that have no owner label, or whose owner
    /// label names another owner, instead of reporting a conflict that
    /// blocks the sync.
    pub allow_adoption: bool,
    /// Allow a desired state without objects (otherwise refused: an empty
    /// revision is far more often a mistake than an intent).
    pub allow_empty: bool,
    /// Refuse a plan that would prune more than this share (0.0–1.0) of the
    /// inventory (deleting one object is always allowed)...
    pub max_prune_share: f64,
    /// ...unless this is set.
    pub allow_mass_prune: bool,
    /// Inventories of other owners: a desired object another owner lists is
    /// a shared-resource conflict.
    pub other_inventories: Vec<Inventory>,
    /// Comparison options (ignore rules, extra list semantics). The list
    /// semantics of CRDs in the desired state are layered on top.
    pub diff: DiffOptions,
}

impl PlanOptions {
    /// The server-side-apply field manager.
    pub fn field_manager(mut self, manager: impl Into<String>) -> Self {
        self.field_manager = manager.into();
        self
    }

    /// Whether objects no longer declared are pruned.
    pub fn prune(mut self, prune: bool) -> Self {
        self.prune = prune;
        self
    }

    /// Whether existing objects without our owner label are taken over.
    pub fn allow_adoption(mut self, allow: bool) -> Self {
        self.allow_adoption = allow;
        self
    }

    /// Whether an empty desired state is accepted.
    pub fn allow_empty(mut self, allow: bool) -> Self {
        self.allow_empty = allow;
        self
    }

    /// The largest share (0.0–1.0) of the inventory one plan may prune.
    pub fn max_prune_share(mut self, share: f64) -> Self {
        self.max_prune_share = share;
        self
    }

    /// Whether the mass-prune guard is lifted.
    pub fn allow_mass_prune(mut self, allow: bool) -> Self {
        self.allow_mass_prune = allow;
        self
    }

    /// Comparison options.
    pub fn diff_options(mut self, diff: DiffOptions) -> Self {
        self.diff = diff;
        self
    }

    /// Defaults for an owner: prune on, no adoption, empty states refused,
    /// at most half of the inventory pruned at once.
    pub fn new(owner: OwnerId) -> Self {
        Self {
            owner,
            field_manager: DEFAULT_FIELD_MANAGER.to_owned(),
            prune: true,
            allow_adoption: false,
            allow_empty: false,
            max_prune_share: 0.5,
            allow_mass_prune: false,
            other_inventories: Vec::new(),
            diff: DiffOptions::default(),
        }
    }
}

/// What a step does.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// Create an object that does not exist.
    Create,
    /// Update an object whose declared fields differ.
    Update {
        /// The differences (`None` if the live object could not be compared).
        diff: Option<ObjectDiff>,
    },
    /// Delete an object the owner no longer declares (prune).
    Delete,
}

impl Action {
    fn verb(&self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update { .. } => "update",
            Action::Delete => "delete",
        }
    }
}

/// One executable step.
///
/// Serialised (and in `Debug`), a Secret's values are masked (see
/// [`gitops_diff::secrets`]) unless [`Plan::reveal_secrets`] was called.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Step {
    /// The object.
    pub key: ObjectKey,
    /// What to do.
    pub action: Action,
    /// The effective wave.
    pub wave: i64,
    /// The API version to use.
    pub api_version: String,
    /// The manifest to apply (with the owner label), for create and update.
    pub object: Option<Object>,
    /// Where the object is declared.
    pub provenance: Option<Provenance>,
    /// Something a reader should know (adoption of an unlabelled object).
    pub note: Option<String>,
    /// For a deletion: the objects the runtime deletes with this one (the
    /// contents of a Namespace, the custom resources of a CRD), all ours.
    /// The reconciler checks again right before deleting that the cascade
    /// reaches nothing else.
    pub cascade: Vec<ObjectKey>,
    /// Serialise secret values in clear ([`Plan::reveal_secrets`]).
    pub(crate) reveal_secrets: bool,
}

impl Step {
    /// A step without object, provenance, note or cascade (for tools and
    /// tests that build plans by hand; the planner fills them in).
    pub fn new(key: ObjectKey, action: Action, wave: i64, api_version: impl Into<String>) -> Self {
        Self {
            key,
            action,
            wave,
            api_version: api_version.into(),
            object: None,
            provenance: None,
            note: None,
            cascade: Vec::new(),
            reveal_secrets: false,
        }
    }

    /// With the manifest to apply.
    pub fn with_object(mut self, object: Object) -> Self {
        self.object = Some(object);
        self
    }

    /// With where the object is declared.
    pub fn with_provenance(mut self, provenance: Provenance) -> Self {
        self.provenance = Some(provenance);
        self
    }

    /// With a note for the reader.
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }
}

/// How a [`Step`] is serialised: the same fields, the object masked.
#[derive(Serialize)]
struct StepOut<'a> {
    key: &'a ObjectKey,
    #[serde(flatten)]
    action: &'a Action,
    wave: i64,
    api_version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    object: Option<std::borrow::Cow<'a, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    provenance: Option<&'a Provenance>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'a str>,
    #[serde(skip_serializing_if = "<[ObjectKey]>::is_empty")]
    cascade: &'a [ObjectKey],
}

impl Serialize for Step {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        StepOut {
            key: &self.key,
            action: &self.action,
            wave: self.wave,
            api_version: &self.api_version,
            object: self.object.as_ref().map(|o| {
                if self.reveal_secrets {
                    std::borrow::Cow::Borrowed(o.as_value())
                } else {
                    gitops_diff::secrets::mask_object(&self.key.group_kind(), o.as_value())
                }
            }),
            provenance: self.provenance.as_ref(),
            note: self.note.as_deref(),
            cascade: &self.cascade,
        }
        .serialize(serializer)
    }
}

/// Why an object is not touched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Skipped {
    /// The object.
    pub key: ObjectKey,
    /// Why.
    pub reason: String,
}

impl Skipped {
    /// An object left alone, and why.
    pub fn new(key: ObjectKey, reason: impl Into<String>) -> Self {
        Self {
            key,
            reason: reason.into(),
        }
    }
}

impl Conflict {
    /// The object in conflict.
    pub fn key(&self) -> &ObjectKey {
        match self {
            Self::Unmanaged { key, .. }
            | Self::OwnedByOther { key, .. }
            | Self::SharedWith { key, .. } => key,
        }
    }
}

/// A conflict that blocks the sync.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "conflict", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Conflict {
    /// The object exists in the runtime without any owner label: someone
    /// created it by hand or with another tool. Taking it over (and so being
    /// able to prune it later) needs consent: `allow_adoption`.
    Unmanaged {
        /// The object.
        key: ObjectKey,
        /// Where we declare it.
        provenance: Provenance,
    },
    /// The live object carries another owner's label.
    OwnedByOther {
        /// The object.
        key: ObjectKey,
        /// The other owner.
        owner: String,
        /// Where we declare it.
        provenance: Provenance,
    },
    /// Another owner's inventory lists the object too.
    SharedWith {
        /// The object.
        key: ObjectKey,
        /// The other owner.
        owner: OwnerId,
        /// Where we declare it.
        provenance: Provenance,
    },
}

/// A guard or check that refuses the whole plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "refusal", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Refusal {
    /// The desired state has no objects.
    EmptyDesiredState,
    /// The plan would prune too much of the inventory.
    MassPrune {
        /// Objects the plan would delete, counting those the runtime deletes
        /// with them (the contents of a deleted Namespace).
        deletions: usize,
        /// Objects in the inventory.
        inventory: usize,
        /// The configured maximum share.
        max_share: f64,
    },
    /// Deleting an object would delete, through the runtime's cascade,
    /// objects that are not ours (not both in our inventory and labelled
    /// with our owner label): another owner's objects in our Namespace, or
    /// another owner's custom resources of our CRD; or objects of ours
    /// annotated [`PRUNE_ANNOTATION`]`=disabled`.
    ForeignCascade {
        /// The object the plan would delete.
        key: ObjectKey,
        /// The objects its deletion would destroy and that prune may not.
        foreign: Vec<LiveRef>,
    },
    /// The plan options are invalid.
    InvalidOption {
        /// What is wrong.
        message: String,
    },
    /// A namespaced object whose namespace neither the desired state
    /// declares nor the runtime has: applying it would fail, after the
    /// objects before it had been applied.
    MissingNamespace {
        /// The object.
        key: ObjectKey,
        /// The namespace that does not exist.
        namespace: String,
        /// Where the object is declared.
        provenance: Provenance,
    },
    /// An annotation the planner reads has an invalid value.
    InvalidAnnotation {
        /// The object.
        key: ObjectKey,
        /// The annotation.
        annotation: String,
        /// The value found.
        value: String,
        /// Where the object is declared.
        provenance: Provenance,
    },
}

impl Refusal {
    /// The object it is about, if it is about one.
    pub fn key(&self) -> Option<&ObjectKey> {
        match self {
            Self::ForeignCascade { key, .. }
            | Self::MissingNamespace { key, .. }
            | Self::InvalidAnnotation { key, .. } => Some(key),
            Self::EmptyDesiredState | Self::MassPrune { .. } | Self::InvalidOption { .. } => None,
        }
    }
}

impl fmt::Display for Refusal {
    /// For people: user-controlled text is [escaped](crate::escape).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write as _;
        let f = &mut EscapeWriter::new(f);
        match self {
            Refusal::EmptyDesiredState => write!(
                f,
                "the desired state is empty; refusing to prune everything (allow_empty overrides)"
            ),
            Refusal::MassPrune {
                deletions,
                inventory,
                max_share,
            } => write!(
                f,
                "the plan would prune {deletions} of {inventory} inventoried objects, more than {:.0}% (allow_mass_prune overrides)",
                max_share * 100.0
            ),
            Refusal::ForeignCascade { key, foreign } => write!(
                f,
                "{key} is no longer declared, but deleting it would also delete {} object(s) that are not ours (ours: in our inventory and labelled {OWNER_LABEL}) or are annotated {PRUNE_ANNOTATION}=disabled: {}; not pruned (move or remove those objects, or annotate it {PRUNE_ANNOTATION}=disabled)",
                foreign.len(),
                foreign
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Refusal::InvalidOption { message } => write!(f, "invalid plan options: {message}"),
            Refusal::MissingNamespace {
                key,
                namespace,
                provenance,
            } => write!(
                f,
                "{provenance}: {key}: namespace {namespace:?} is neither declared in the revision nor present in the runtime"
            ),
            Refusal::InvalidAnnotation {
                key,
                annotation,
                value,
                provenance,
            } => write!(
                f,
                "{provenance}: {key}: annotation {annotation} must be an integer, not {value:?}"
            ),
        }
    }
}

impl fmt::Display for Conflict {
    /// For people: user-controlled text is [escaped](crate::escape).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write as _;
        let f = &mut EscapeWriter::new(f);
        match self {
            Conflict::Unmanaged { key, provenance } => write!(
                f,
                "{key} (declared at {provenance}) already exists and has no owner label {OWNER_LABEL}; allow_adoption takes it over"
            ),
            Conflict::OwnedByOther {
                key,
                owner,
                provenance,
            } => write!(
                f,
                "{key} (declared at {provenance}) is owned by {owner:?} (label {OWNER_LABEL}); allow_adoption takes it over"
            ),
            Conflict::SharedWith {
                key,
                owner,
                provenance,
            } => write!(
                f,
                "{key} (declared at {provenance}) is also in the inventory of {owner:?}: two owners declare one object"
            ),
        }
    }
}

/// Counts of a plan, for summaries and audit records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct PlanSummary {
    /// Objects to create.
    pub create: usize,
    /// Objects to update.
    pub update: usize,
    /// Objects to delete.
    pub delete: usize,
    /// Objects already in sync.
    pub unchanged: usize,
    /// Objects skipped.
    pub skipped: usize,
    /// Conflicts.
    pub conflicts: usize,
    /// Refusals.
    pub refusals: usize,
}

/// The ordered steps that make the runtime match the desired state, and
/// everything that was decided not to do.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Plan {
    /// Whose plan.
    pub owner: OwnerId,
    /// The revision planned, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Steps in execution order: applies by wave and kind, then deletions
    /// in reverse order.
    pub steps: Vec<Step>,
    /// Objects already in sync, in key order.
    pub unchanged: Vec<ObjectKey>,
    /// Objects deliberately left alone.
    pub skipped: Vec<Skipped>,
    /// Ownership conflicts; any blocks the sync.
    pub conflicts: Vec<Conflict>,
    /// Guard refusals; any blocks the sync.
    pub refusals: Vec<Refusal>,
    /// Symbolic links the renderer skipped (path → target; see
    /// [`RenderOptions::skip_symlinks`](crate::render::RenderOptions::skip_symlinks)):
    /// objects a manifest at such a path declared are pruned.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub skipped_symlinks: BTreeMap<String, String>,
    /// What the owner's inventory lists once every step has succeeded.
    /// Shared with the inventory read when it lists the same.
    #[serde(with = "crate::target::key_map")]
    pub next_inventory: Arc<BTreeMap<ObjectKey, String>>,
}

impl Plan {
    /// An empty plan of `owner` (the planner builds real ones; this is for
    /// tools and tests that assemble plans by hand).
    pub fn new(owner: OwnerId) -> Self {
        Self {
            owner,
            revision: None,
            steps: Vec::new(),
            unchanged: Vec::new(),
            skipped: Vec::new(),
            conflicts: Vec::new(),
            refusals: Vec::new(),
            skipped_symlinks: BTreeMap::new(),
            next_inventory: Arc::default(),
        }
    }

    /// Whether conflicts or refusals forbid executing the plan.
    pub fn is_blocked(&self) -> bool {
        !self.conflicts.is_empty() || !self.refusals.is_empty()
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Opt-in: show secret values in clear in this plan's text and JSON
    /// (by default a Secret's `data`/`stringData` values read `***`, as
    /// `kubectl diff` shows them).
    pub fn reveal_secrets(&mut self) {
        for step in &mut self.steps {
            step.reveal_secrets = true;
            if let Action::Update { diff: Some(d) } = &mut step.action {
                d.reveal_secrets();
            }
        }
    }

    /// Counts.
    pub fn summary(&self) -> PlanSummary {
        let mut s = PlanSummary {
            unchanged: self.unchanged.len(),
            skipped: self.skipped.len(),
            conflicts: self.conflicts.len(),
            refusals: self.refusals.len(),
            ..PlanSummary::default()
        };
        for step in &self.steps {
            match step.action {
                Action::Create => s.create += 1,
                Action::Update { .. } => s.update += 1,
                Action::Delete => s.delete += 1,
            }
        }
        s
    }
}

impl fmt::Display for PlanSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} to create, {} to update, {} to delete, {} unchanged",
            self.create, self.update, self.delete, self.unchanged
        )?;
        if self.skipped > 0 {
            write!(f, ", {} skipped", self.skipped)?;
        }
        if self.conflicts > 0 {
            write!(f, ", {} conflicts", self.conflicts)?;
        }
        if self.refusals > 0 {
            write!(f, ", {} refused", self.refusals)?;
        }
        Ok(())
    }
}

impl fmt::Display for Plan {
    /// A human-readable plan: one line per step, with field changes.
    ///
    /// Every line is [escaped](crate::escape) as a whole: names, paths,
    /// keys, values and messages (all user-controlled) cannot add a line,
    /// move the cursor or reorder the text with control characters, terminal
    /// escape sequences or bidirectional overrides. The only line breaks are
    /// the plan's own, one per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let revision = self
            .revision
            .as_ref()
            .map(|r| format!(" at {}", r.get(..12).unwrap_or(r)))
            .unwrap_or_default();
        line(
            f,
            format_args!("plan for {}{revision}: {}", self.owner, self.summary()),
        )?;
        for r in &self.refusals {
            line(f, format_args!("  x refused: {r}"))?;
        }
        for c in &self.conflicts {
            line(f, format_args!("  ! conflict: {c}"))?;
        }
        for (path, target) in &self.skipped_symlinks {
            line(
                f,
                format_args!("  ? skipped symbolic link {path:?} -> {target:?}"),
            )?;
        }
        for s in &self.steps {
            let sign = match s.action {
                Action::Create => '+',
                Action::Update { .. } => '~',
                Action::Delete => '-',
            };
            let from = s
                .provenance
                .as_ref()
                .map(|p| format!(" from {p}"))
                .unwrap_or_default();
            line(
                f,
                format_args!(
                    "  {sign} {:<6} {} (wave {}){from}",
                    s.action.verb(),
                    s.key,
                    s.wave
                ),
            )?;
            if let Some(n) = &s.note {
                line(f, format_args!("      note: {n}"))?;
            }
            if !s.cascade.is_empty() {
                let keys: Vec<String> = s.cascade.iter().map(ToString::to_string).collect();
                line(
                    f,
                    format_args!("      deletes with it: {}", keys.join(", ")),
                )?;
            }
            if let Action::Update { diff: Some(d) } = &s.action {
                for c in &d.changes {
                    let show = |v: &Option<Value>| {
                        v.as_ref()
                            .map_or_else(|| "(absent)".to_owned(), |v| v.to_string())
                    };
                    let (before, after) = c.shown();
                    line(
                        f,
                        format_args!("      {}: {} -> {}", c.path, show(&before), show(&after)),
                    )?;
                }
            }
        }
        for s in &self.skipped {
            line(f, format_args!("  = skipped {}: {}", s.key, s.reason))?;
        }
        Ok(())
    }
}

/// Writes one line of human-readable text: `args` [escaped](crate::escape)
/// (so it cannot break the line), then the line's newline.
pub(crate) fn line(f: &mut fmt::Formatter<'_>, args: fmt::Arguments<'_>) -> fmt::Result {
    use fmt::Write as _;
    EscapeWriter::new(&mut *f).write_fmt(args)?;
    f.write_char('\n')
}

fn wave_of(object: &Object) -> Result<i64, String> {
    match object.annotation(WAVE_ANNOTATION) {
        None => Ok(0),
        Some(v) => v.trim().parse::<i64>().map_err(|_| v.to_owned()),
    }
}

/// Why a Namespace or CRD no longer declared must still not be deleted:
/// deleting it would delete objects the desired state still declares.
fn still_needed(key: &ObjectKey, live: &Value, desired: &DesiredState) -> Option<String> {
    if key.is("", "Namespace") {
        let n = desired
            .keys()
            .filter(|k| k.namespace.as_deref() == Some(key.name.as_str()))
            .count();
        return (n > 0).then(|| {
            format!("no longer declared, but {n} declared objects live in it; deleting it would delete them")
        });
    }
    if key.is("apiextensions.k8s.io", "CustomResourceDefinition") {
        let gk = Object::new(live.clone())
            .ok()
            .and_then(|o| crate::scope::crd_kind(&o).ok())
            .map(|(gk, _, _)| gk)?;
        let n = desired.keys().filter(|k| k.group_kind() == gk).count();
        return (n > 0).then(|| {
            format!("no longer declared, but {n} declared {gk} objects need it; deleting it would delete them")
        });
    }
    None
}

/// Whether a live object is annotated never to be pruned.
fn is_protected(live: &Value) -> bool {
    live.get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(PRUNE_ANNOTATION))
        .and_then(Value::as_str)
        == Some("disabled")
}

fn live_wave(live: &Value) -> i64 {
    live.get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(WAVE_ANNOTATION))
        .and_then(Value::as_str)
        .and_then(|w| w.trim().parse().ok())
        .unwrap_or(0)
}

fn live_label<'a>(live: &'a Value, label: &str) -> Option<&'a str> {
    live.get("metadata")?.get("labels")?.get(label)?.as_str()
}

/// List semantics for a desired state: its CRDs' schemas over the caller's.
fn lists_for(desired: &DesiredState, base: &Arc<dyn ListSemantics>) -> Arc<dyn ListSemantics> {
    let mut crds = CrdLists::new();
    let mut any = false;
    for (_, d) in desired.of_kind("apiextensions.k8s.io", "CustomResourceDefinition") {
        // An unreadable schema leaves that CRD's lists atomic, which only
        // makes comparison stricter, never silently looser.
        any |= crds.add_crd(d.object.as_value()).is_ok();
    }
    if any {
        Arc::new(LayeredLists::new(vec![Arc::new(crds), base.clone()]))
    } else {
        base.clone()
    }
}

/// Removes from the object to apply the fields an ignore rule says belong to
/// someone else: the rule's JSON pointers, and the plain-field paths owned
/// by ignored managers in the live object (so applying never takes
/// `spec.replicas` back from an autoscaler).
fn strip_ignored(applied: &mut Value, live: Option<&Value>, options: &DiffOptions) {
    let gk = GroupKind::of(applied);
    for rule in options.ignore.iter().filter(|r| r.matches(&gk)) {
        for p in &rule.json_pointers {
            gitops_diff::remove_pointer(applied, p);
        }
        let Some(live) = live else { continue };
        let Ok(entries) = gitops_diff::managed_fields(live) else {
            continue;
        };
        for e in entries
            .iter()
            .filter(|e| rule.managers.contains(&e.manager))
        {
            for path in e.fields.iter() {
                let mut ptr = String::new();
                let plain = path.0.iter().all(|pe| match pe {
                    PathElement::Field(f) => {
                        ptr.push('/');
                        ptr.push_str(&gitops_diff::pointer_escape(f));
                        true
                    }
                    _ => false,
                });
                if plain && !ptr.is_empty() {
                    gitops_diff::remove_pointer(applied, &ptr);
                }
            }
        }
    }
}

/// The keys `inventory` lists that `desired` does not declare, in key
/// order (both maps walked once, side by side).
fn undeclared<'a>(
    desired: &'a DesiredState,
    inventory: &'a Inventory,
) -> impl Iterator<Item = &'a ObjectKey> {
    let mut declared = desired.keys().map(|k| (k, ())).peekable();
    inventory
        .objects
        .keys()
        .filter(move |k| advance_to(&mut declared, k).is_none())
}

/// What a caller of [`plan`] observes: the desired objects, the objects the
/// inventory lists, and the Namespaces the desired objects live in (so the
/// planner can tell a missing namespace from one that exists).
pub fn observe_keys(desired: &DesiredState, inventory: Option<&Inventory>) -> BTreeSet<ObjectKey> {
    observe_keys_except(desired, inventory, &[])
}

/// [`observe_keys`] less `in_sync`: keys of `desired` (the very keys, in
/// key order), told apart by address; the keys left out are not copied.
pub(crate) fn observe_keys_except(
    desired: &DesiredState,
    inventory: Option<&Inventory>,
    in_sync: &[&ObjectKey],
) -> BTreeSet<ObjectKey> {
    let mut keys: Vec<ObjectKey> = Vec::new();
    // Both in key order: one pass, by address.
    let mut skip = in_sync.iter().peekable();
    for k in desired.keys() {
        if skip.next_if(|s| std::ptr::eq(**s, k)).is_none() {
            keys.push(k.clone());
        }
    }
    // The objects' Namespaces, but those in sync (among the in-sync keys,
    // in key order).
    for ns in desired.namespaces() {
        let ns_key = ObjectKey::new("", "Namespace", None, ns);
        if in_sync.binary_search(&&ns_key).is_err() {
            keys.push(ns_key);
        }
    }
    if let Some(inv) = inventory {
        // Those not declared (so not in sync).
        keys.extend(undeclared(desired, inv).cloned());
    }
    keys.into_iter().collect()
}

/// Namespaced objects whose namespace is neither declared nor live (a live
/// Namespace being deleted counts as missing: it accepts no new objects).
fn missing_namespaces(desired: &DesiredState, live: &LiveState) -> Vec<Refusal> {
    let missing = |ns: &str| {
        let ns_key = ObjectKey::new("", "Namespace", None, ns);
        let live_ns = live
            .objects
            .get(&ns_key)
            .filter(|l| l.pointer("/metadata/deletionTimestamp").is_none());
        !desired.contains(&ns_key) && live_ns.is_none()
    };
    // Each namespace is looked up once; the objects are read only when one
    // is missing.
    let missing: BTreeSet<&str> = desired
        .namespaces()
        .into_iter()
        .filter(|ns| missing(ns))
        .collect();
    if missing.is_empty() {
        return Vec::new();
    }
    desired
        .iter()
        .filter_map(|(key, d)| {
            let ns = key.namespace.as_deref().filter(|ns| missing.contains(ns))?;
            Some(Refusal::MissingNamespace {
                key: key.clone(),
                namespace: ns.to_owned(),
                provenance: d.provenance.clone(),
            })
        })
        .collect()
}

/// Advances `iter` (in key order) past the keys before `key`; the value at
/// `key`, if there is one. A merge step: over a whole pass, linear.
pub(crate) fn advance_to<'a, K: Ord + 'a, V>(
    iter: &mut std::iter::Peekable<impl Iterator<Item = (&'a K, V)>>,
    key: &K,
) -> Option<V> {
    while let Some((k, _)) = iter.peek() {
        match (*k).cmp(key) {
            std::cmp::Ordering::Less => {
                iter.next();
            }
            std::cmp::Ordering::Equal => return iter.next().map(|(_, v)| v),
            std::cmp::Ordering::Greater => return None,
        }
    }
    None
}

/// Whether `key` is among `known` (in key order), advancing past it: a
/// merge step. A key of the caller's that is the desired state's own (the
/// same address) is told without comparing strings.
fn known_next<'a>(
    known: &mut std::iter::Peekable<impl Iterator<Item = (&'a ObjectKey, ())>>,
    key: &ObjectKey,
) -> bool {
    known.next_if(|(k, ())| std::ptr::eq(*k, key)).is_some() || advance_to(known, key).is_some()
}

/// Computes the plan that makes `live` match `desired` for `options.owner`.
///
/// `live` holds the observed objects: those [`observe_keys`] lists (the
/// desired ones, the inventory's, and the Namespaces of the desired ones)
/// and the owner's inventory. A namespaced object whose Namespace is
/// neither declared nor in `live` is refused ([`Refusal::MissingNamespace`]).
/// A desired object absent from `live.objects` but listed in
/// [`LiveState::in_sync`] is unchanged, without a comparison.
/// Pure and deterministic.
pub fn plan(desired: &DesiredState, live: &LiveState, options: &PlanOptions) -> Plan {
    let in_sync: Vec<&ObjectKey> = live.in_sync.iter().collect();
    plan_known(desired, live, &in_sync, options)
}

/// [`plan`] with the desired objects known in sync given as `in_sync` (in
/// key order) instead of [`LiveState::in_sync`], which is not read: the
/// reconciler passes the desired state's own keys, which are neither
/// copied nor compared.
pub(crate) fn plan_known<'d>(
    desired: &'d DesiredState,
    live: &'d LiveState,
    in_sync: &[&ObjectKey],
    options: &PlanOptions,
) -> Plan {
    let builtin = KindRegistry::builtin();
    let owner = options.owner.as_str();
    let mut diff_options = DiffOptions::new().lists(lists_for(desired, &options.diff.lists));
    diff_options.ignore.clone_from(&options.diff.ignore);
    let mut refusals = Vec::new();
    let mut conflicts = Vec::new();
    let mut skipped = Vec::new();
    let mut unchanged = Vec::new();
    // Collected (borrowed), then built at once, copied only then.
    let mut next_inventory: Vec<(&'d ObjectKey, &'d str)> = Vec::with_capacity(desired.len());
    // The inventory walked beside the desired objects: the entries they do
    // not declare (prune candidates) fall out of the same pass, and while
    // every desired object goes into the next inventory as the inventory
    // lists it, the next inventory is a copy of it (no sort, no search).
    let mut inventoried = live
        .inventory
        .as_ref()
        .map(|i| i.objects.iter())
        .into_iter()
        .flatten()
        .peekable();
    let mut undeclared: Vec<(&ObjectKey, &String)> = Vec::new();
    let mut same_inventory = live.inventory.is_some();

    // Waves: own annotation, raised to that of the Namespace and the CRD.
    // An object's own wave is kept only when it is not 0 (absent reads 0);
    // those of Namespaces and CRDs are kept whatever they are, since they
    // raise the waves of others. An invalid annotation is refused and
    // counts as absent. Read in the main pass; the waves of the steps are
    // worked out after it.
    let mut own_wave: BTreeMap<&ObjectKey, i64> = BTreeMap::new();
    let mut ns_wave: BTreeMap<&str, i64> = BTreeMap::new();
    let mut crd_wave: BTreeMap<GroupKind, i64> = BTreeMap::new();

    let mut applies: Vec<(i64, usize, Step)> = Vec::new();
    // The desired objects, the live ones and those known in sync are all in
    // key order: one merge pass, no lookups.
    let mut in_sync = in_sync.iter().map(|k| (*k, ())).peekable();
    let mut live_objects = live.objects.iter().peekable();
    for (key, d) in desired.iter() {
        // The inventory's entry of the object, if any, and those before it.
        let listed = loop {
            match inventoried.peek() {
                Some((k, _)) if *k < key => {
                    undeclared.extend(inventoried.next());
                }
                Some((k, _)) if *k == key => break inventoried.next().map(|(_, v)| v),
                _ => break None,
            }
        };
        // Goes into the next inventory with this apiVersion (or not).
        let mut inventory_it =
            |api_version: Option<&'d str>, next: &mut Vec<(&'d ObjectKey, &'d str)>| {
                same_inventory &= listed.map(String::as_str) == api_version;
                if let Some(v) = api_version {
                    next.push((key, v));
                }
            };
        let wave = match wave_of(&d.object) {
            Ok(w) => Some(w),
            Err(value) => {
                refusals.push(Refusal::InvalidAnnotation {
                    key: key.clone(),
                    annotation: WAVE_ANNOTATION.to_owned(),
                    value,
                    provenance: d.provenance.clone(),
                });
                None
            }
        };
        if let Some(w) = wave.filter(|w| *w != 0) {
            own_wave.insert(key, w);
        }
        if key.is("", "Namespace")
            && key.namespace.is_none()
            && let Some(w) = wave
        {
            ns_wave.insert(key.name.as_str(), w);
        }
        if key.is("apiextensions.k8s.io", "CustomResourceDefinition")
            && let Ok((gk, _, _)) = crate::scope::crd_kind(&d.object)
        {
            crd_wave.insert(gk, wave.unwrap_or(0));
        }
        let known_in_sync = known_next(&mut in_sync, key);
        for other in &options.other_inventories {
            if other.owner != options.owner && other.contains(key) {
                conflicts.push(Conflict::SharedWith {
                    key: key.clone(),
                    owner: other.owner.clone(),
                    provenance: d.provenance.clone(),
                });
            }
        }
        let live_obj = advance_to(&mut live_objects, key);
        if live_obj.is_none() && known_in_sync {
            // Known in sync without reading it (see `LiveState::in_sync`).
            inventory_it(Some(d.object.api_version()), &mut next_inventory);
            unchanged.push(key.clone());
            continue;
        }
        let ignored = !diff_options.ignore.is_empty() && {
            let gk = key.group_kind();
            diff_options.ignore.iter().any(|r| r.matches(&gk))
        };
        let stripped = if ignored {
            let mut applied = d.object.as_value().clone();
            strip_ignored(&mut applied, live_obj, &diff_options);
            Object::new(applied)
        } else {
            // No rule to apply: the declared object, already validated.
            Ok(d.object.clone())
        };
        // The owner label goes on after the ignore rules, which must never
        // remove it: without it nothing could ever be pruned.
        let object = match stripped.and_then(|mut o| o.set_label(OWNER_LABEL, owner).map(|()| o)) {
            Ok(o) => o,
            Err(e) => {
                // Keep it inventoried when live: it may carry our label already.
                inventory_it(
                    live_obj.is_some().then(|| d.object.api_version()),
                    &mut next_inventory,
                );
                skipped.push(Skipped {
                    key: key.clone(),
                    reason: format!("ignore rules removed a required field: {e}"),
                });
                continue;
            }
        };
        // The declared apiVersion: the owner label and the ignore rules
        // leave it as it is (without it the object would not be valid).
        inventory_it(Some(d.object.api_version()), &mut next_inventory);
        let mut note = None;
        let action = match live_obj {
            None => Action::Create,
            Some(l) => {
                match live_label(l, OWNER_LABEL) {
                    Some(o) if o != owner => {
                        if options.allow_adoption {
                            note = Some(format!("adopting from owner {o:?}"));
                        } else {
                            conflicts.push(Conflict::OwnedByOther {
                                key: key.clone(),
                                owner: o.to_owned(),
                                provenance: d.provenance.clone(),
                            });
                            continue;
                        }
                    }
                    None => {
                        if options.allow_adoption {
                            note = Some("adopting an object that has no owner label".to_owned());
                        } else {
                            conflicts.push(Conflict::Unmanaged {
                                key: key.clone(),
                                provenance: d.provenance.clone(),
                            });
                            continue;
                        }
                    }
                    Some(_) => {}
                }
                let previously = gitops_diff::owned_by(l, &options.field_manager)
                    .ok()
                    .flatten();
                match gitops_diff::compare(object.as_value(), l, previously.as_ref(), &diff_options)
                {
                    Ok(diff) if diff.is_empty() && note.is_none() => {
                        unchanged.push(key.clone());
                        continue;
                    }
                    Ok(diff) => Action::Update { diff: Some(diff) },
                    Err(e) => {
                        note = Some(format!("live object cannot be compared ({e}); re-applying"));
                        Action::Update { diff: None }
                    }
                }
            }
        };
        let rank = kind_rank(&key.group_kind(), &builtin);
        applies.push((
            0,
            rank,
            Step {
                key: key.clone(),
                action,
                wave: 0,
                api_version: object.api_version().to_owned(),
                provenance: Some(d.provenance.clone()),
                object: Some(object),
                note,
                reveal_secrets: false,
                cascade: Vec::new(),
            },
        ));
    }
    let effective_wave = |key: &ObjectKey| -> i64 {
        let mut w = own_wave.get(key).copied().unwrap_or(0);
        if let Some(nw) = key.namespace.as_deref().and_then(|ns| ns_wave.get(ns)) {
            w = w.max(*nw);
        }
        if !crd_wave.is_empty()
            && let Some(cw) = crd_wave.get(&key.group_kind())
        {
            w = w.max(*cw);
        }
        w
    };

    for (w, _, step) in &mut applies {
        *w = effective_wave(&step.key);
        step.wave = *w;
    }
    applies.sort_by(|a, b| (a.0, a.1, &a.2.key).cmp(&(b.0, b.1, &b.2.key)));

    // Prune: inventory entries no longer declared.
    let mut deletes: Vec<(i64, usize, Step)> = Vec::new();
    let inventory_len = live.inventory.as_ref().map_or(0, |i| i.objects.len());
    undeclared.extend(inventoried);
    same_inventory &= undeclared.is_empty();
    if let Some(inv) = &live.inventory {
        // The undeclared entries and the live objects are in key order: one
        // pass.
        let mut live_objects = live.objects.iter().peekable();
        for (key, api_version) in undeclared {
            let Some(l) = advance_to(&mut live_objects, key) else {
                continue; // already gone: drop it from the inventory
            };
            match live_label(l, OWNER_LABEL) {
                Some(o) if o == owner => {}
                other => {
                    skipped.push(Skipped {
                        key: key.clone(),
                        reason: format!(
                            "listed in the inventory but its owner label is {}; not pruned",
                            other.map_or_else(|| "missing".to_owned(), |o| format!("{o:?}"))
                        ),
                    });
                    continue;
                }
            }
            if let Some(reason) = still_needed(key, l, desired) {
                skipped.push(Skipped {
                    key: key.clone(),
                    reason,
                });
                next_inventory.push((key, api_version));
                continue;
            }
            let protected = is_protected(l);
            if protected || !options.prune {
                skipped.push(Skipped {
                    key: key.clone(),
                    reason: if protected {
                        format!("no longer declared, but annotated {PRUNE_ANNOTATION}=disabled")
                    } else {
                        "no longer declared; prune is off".to_owned()
                    },
                });
                next_inventory.push((key, api_version));
                continue;
            }
            // What the runtime deletes with it must all be ours.
            let mut cascade = Vec::new();
            let mut foreign = Vec::new();
            for d in live.dependents.get(key).into_iter().flatten() {
                if &d.key == key {
                    continue;
                }
                let protected = live.objects.get(&d.key).is_some_and(is_protected);
                if d.owner.as_deref() == Some(owner) && inv.contains(&d.key) && !protected {
                    cascade.push(d.key.clone());
                } else {
                    foreign.push(d.clone());
                }
            }
            if !foreign.is_empty() {
                foreign.sort();
                foreign.dedup();
                refusals.push(Refusal::ForeignCascade {
                    key: key.clone(),
                    foreign,
                });
            }
            cascade.sort();
            cascade.dedup();
            let wave = live_wave(l);
            let rank = kind_rank(&key.group_kind(), &builtin);
            deletes.push((
                wave,
                rank,
                Step {
                    key: key.clone(),
                    action: Action::Delete,
                    wave,
                    api_version: api_version.clone(),
                    object: None,
                    provenance: None,
                    note: None,
                    reveal_secrets: false,
                    cascade,
                },
            ));
        }
    }
    // A deleted object's wave is raised to that of its Namespace and CRD
    // when those go too, so (in reverse) it is deleted before them.
    let delete_wave: BTreeMap<ObjectKey, i64> = deletes
        .iter()
        .map(|(w, _, s)| (s.key.clone(), *w))
        .collect();
    let mut crd_delete_wave: BTreeMap<GroupKind, i64> = BTreeMap::new();
    for (w, _, s) in &deletes {
        if s.key.is("apiextensions.k8s.io", "CustomResourceDefinition") {
            let kind = live
                .objects
                .get(&s.key)
                .and_then(|l| Object::new(l.clone()).ok())
                .and_then(|o| crate::scope::crd_kind(&o).ok());
            if let Some((gk, _, _)) = kind {
                crd_delete_wave.insert(gk, *w);
            }
        }
    }
    for (w, _, s) in &mut deletes {
        if let Some(ns) = &s.key.namespace
            && let Some(nw) = delete_wave.get(&ObjectKey::new("", "Namespace", None, ns.clone()))
        {
            *w = (*w).max(*nw);
        }
        if let Some(cw) = crd_delete_wave.get(&s.key.group_kind()) {
            *w = (*w).max(*cw);
        }
        s.wave = *w;
    }
    deletes.sort_by(|a, b| (b.0, b.1, &b.2.key).cmp(&(a.0, a.1, &a.2.key)));

    if desired.is_empty() && !options.allow_empty {
        refusals.push(Refusal::EmptyDesiredState);
    }
    refusals.extend(missing_namespaces(desired, live));
    if !(0.0..=1.0).contains(&options.max_prune_share) {
        refusals.push(Refusal::InvalidOption {
            message: format!(
                "max_prune_share must be between 0.0 and 1.0, not {}",
                options.max_prune_share
            ),
        });
    } else if !deletes.is_empty() && inventory_len > 0 && !options.allow_mass_prune {
        // Every object gone after the plan counts: the deleted ones and what
        // the runtime deletes with them (a Namespace's contents).
        let gone: BTreeSet<&ObjectKey> = deletes
            .iter()
            .flat_map(|(_, _, s)| std::iter::once(&s.key).chain(&s.cascade))
            .collect();
        // Deleting a single object (a rename in a small app) is never "mass".
        let allowed = (options.max_prune_share * inventory_len as f64).max(1.0);
        if gone.len() as f64 > allowed {
            refusals.push(Refusal::MassPrune {
                deletions: gone.len(),
                inventory: inventory_len,
                max_share: options.max_prune_share,
            });
        }
    }
    let mut seen = BTreeSet::new();
    conflicts.retain(|c| seen.insert(format!("{c:?}")));

    Plan {
        owner: options.owner.clone(),
        revision: desired.revision().map(|r| r.id.clone()),
        steps: applies
            .into_iter()
            .chain(deletes)
            .map(|(_, _, s)| s)
            .collect(),
        unchanged,
        skipped,
        conflicts,
        refusals,
        skipped_symlinks: desired
            .skipped_symlinks()
            .map(|(p, t)| (p.to_owned(), t.to_owned()))
            .collect(),
        next_inventory: match &live.inventory {
            // Every entry as the inventory has it, and no other.
            Some(inv) if same_inventory => Arc::clone(&inv.objects),
            _ => Arc::new(
                next_inventory
                    .into_iter()
                    .map(|(k, v)| (k.clone(), v.to_owned()))
                    .collect(),
            ),
        },
    }
}

/// An object declared by more than one owner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SharedResource {
    /// The object.
    pub key: ObjectKey,
    /// Who declares it, and where.
    pub declared_by: Vec<(OwnerId, Provenance)>,
}

/// Finds objects that several sources declare (two apps silently sharing a
/// resource is a bug waiting to happen: each sync would undo the other's).
pub fn shared_resources(states: &[(&OwnerId, &DesiredState)]) -> Vec<SharedResource> {
    let mut by_key: BTreeMap<&ObjectKey, Vec<(OwnerId, Provenance)>> = BTreeMap::new();
    for (owner, state) in states {
        for (key, d) in state.iter() {
            by_key
                .entry(key)
                .or_default()
                .push(((*owner).clone(), d.provenance.clone()));
        }
    }
    by_key
        .into_iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(k, mut v)| {
            v.sort();
            SharedResource {
                key: k.clone(),
                declared_by: v,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::desired::DesiredState;
    use crate::render::{RenderOptions, Renderer};
    use crate::snapshot::Snapshot;

    fn desired(files: &[(&str, &str)]) -> DesiredState {
        let snapshot = Snapshot::from_files(files.iter().map(|(p, d)| (*p, d.as_bytes().to_vec())));
        Renderer::new(RenderOptions::default())
            .unwrap()
            .render(&snapshot)
            .unwrap()
    }

    fn ours(v: Value) -> Value {
        let mut v = v;
        v["metadata"]["labels"] = serde_json::json!({ OWNER_LABEL: "shop" });
        v
    }

    mod fast_paths {
        use proptest::prelude::*;

        use super::*;
        use crate::desired::{DesiredObject, Provenance};

        /// One desired ConfigMap: (namespace, name), and whether it is live
        /// (ours, or edited: `data` differs), known in sync, inventoried
        /// (with its own apiVersion or another).
        type Spec = ((usize, usize), (Option<bool>, bool, Option<bool>));

        fn spec() -> impl Strategy<Value = Spec> {
            (
                (0..3usize, 0..6usize),
                (
                    prop::option::of(any::<bool>()),
                    any::<bool>(),
                    prop::option::of(any::<bool>()),
                ),
            )
        }

        fn config_map(ns: usize, name: usize, edited: bool) -> Value {
            let mut v = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("c{name}"), "namespace": format!("n{ns}")},
                "data": {"k": "v"}});
            if edited {
                v["data"]["k"] = "edited".into();
            }
            v
        }

        proptest! {
            /// The planner's shortcuts give the plan of the plain ways:
            /// in-sync keys told by address (the desired state's own) as
            /// `LiveState::in_sync` copies of them; the next inventory
            /// copied from the inventory when they are the same, as built
            /// entry by entry (an inventory entry of an object already
            /// gone, which is dropped, makes it take the second way).
            #[test]
            fn shortcuts_agree_with_the_plain_ways(
                specs in prop::collection::vec(spec(), 0..24),
                extra in prop::option::of((0..3usize, 6..9usize)),
            ) {
                let owner = OwnerId::new("shop").unwrap();
                let mut desired = DesiredState::new(None);
                let mut live = LiveState::default();
                let mut inventory = Inventory::new(owner.clone());
                let mut in_sync = BTreeSet::new();
                for ns in 0..3 {
                    let v = ours(serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": format!("n{ns}")}}));
                    let o = Object::new(v.clone()).unwrap();
                    live.objects.insert(o.key().clone(), v);
                }
                for ((ns, name), (is_live, known, inventoried)) in specs {
                    let object = Object::new(config_map(ns, name, false)).unwrap();
                    let key = object.key().clone();
                    let _ = desired.insert(DesiredObject { object, provenance: Provenance::new("f", 0) });
                    if let Some(edited) = is_live {
                        live.objects.insert(key.clone(), ours(config_map(ns, name, edited)));
                    }
                    if known {
                        in_sync.insert(key.clone());
                    }
                    if let Some(same) = inventoried {
                        inventory.objects_mut().insert(key, if same { "v1" } else { "v0" }.to_owned());
                    }
                }
                live.inventory = Some(inventory.clone());
                let options = PlanOptions::new(owner);
                let mut plain = live.clone();
                plain.in_sync = in_sync.clone();
                let want = plan(&desired, &plain, &options);
                // The desired state's own keys.
                let own: Vec<&ObjectKey> = desired.keys().filter(|k| in_sync.contains(*k)).collect();
                prop_assert_eq!(&plan_known(&desired, &live, &own, &options), &want);
                // Every desired object is inventoried as declared.
                let declared: BTreeMap<ObjectKey, String> =
                    desired.keys().map(|k| (k.clone(), "v1".to_owned())).collect();
                prop_assert_eq!(&*want.next_inventory, &declared);
                if let Some((ns, name)) = extra {
                    let gone = Object::new(config_map(ns, name, false)).unwrap().key().clone();
                    inventory.objects_mut().insert(gone, "v1".to_owned());
                    plain.inventory = Some(inventory);
                    prop_assert_eq!(&plan(&desired, &plain, &options), &want);
                }
            }
        }
    }

    /// Objects of ours that the plan does not delete itself (here: not
    /// observed) but a Namespace's deletion takes with it count in the guard.
    #[test]
    fn the_mass_prune_guard_counts_cascaded_objects() {
        let owner = OwnerId::new("shop").unwrap();
        let ns = ObjectKey::new("", "Namespace", None, "shop");
        let keep = ObjectKey::new("", "Namespace", None, "keep");
        let mut inventory = Inventory::new(owner.clone());
        inventory.objects_mut().insert(ns.clone(), "v1".into());
        inventory.objects_mut().insert(keep.clone(), "v1".into());
        let mut live = LiveState::default();
        let namespace = |n: &str| {
            ours(
                serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}),
            )
        };
        live.objects.insert(ns.clone(), namespace("shop"));
        live.objects.insert(keep.clone(), namespace("keep"));
        let mut dependents = Vec::new();
        for name in ["a", "b", "c"] {
            let k = ObjectKey::new("", "ConfigMap", Some("shop"), name);
            inventory.objects_mut().insert(k.clone(), "v1".into());
            dependents.push(LiveRef::new(k, Some("shop".into())));
        }
        live.inventory = Some(inventory);
        let desired = desired(&[(
            "keep.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: keep}\n",
        )]);
        let options = PlanOptions::new(owner);
        let unchecked = plan(&desired, &live, &options);
        assert!(
            unchecked.refusals.is_empty(),
            "one delete of five: {unchecked}"
        );
        live.dependents.insert(ns.clone(), dependents);
        let checked = plan(&desired, &live, &options);
        assert_eq!(
            checked.refusals,
            vec![Refusal::MassPrune {
                deletions: 4,
                inventory: 5,
                max_share: 0.5
            }],
            "{checked}"
        );
        assert_eq!(checked.steps[0].cascade.len(), 3);
    }
}
