//! [`SyncReport`]: what one reconciliation did, serialisable as the audit
//! record.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::key::ObjectKey;
use crate::plan::{Action, Plan, PlanSummary, line};
use crate::policy::Violation;
use crate::revision::{Person, SignatureVerdict};
use crate::target::OwnerId;

/// How a sync ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SyncStatus {
    /// Steps were applied and the runtime converged.
    Synced,
    /// Nothing to do: the runtime already matched.
    UpToDate,
    /// Planned only (dry run); nothing was applied.
    Planned,
    /// The reference could not be resolved or read.
    SourceFailed,
    /// The revision does not render; nothing was applied.
    RenderFailed,
    /// The policy refuses the revision; nothing was applied.
    PolicyViolated,
    /// Conflicts or guards block the plan; nothing was applied.
    Blocked,
    /// The runtime could not be observed; nothing was applied.
    ObserveFailed,
    /// The runtime refused objects of the revision in the server-side dry
    /// run that precedes every write (or that dry run could not complete);
    /// every refusal is listed, and nothing was applied (except the
    /// Namespaces and CRDs that other objects needed before they could be
    /// validated; see [`Reconciler`](crate::Reconciler)).
    Refused,
    /// A step failed; the steps after it were not run.
    StepFailed,
    /// Every step succeeded but the runtime still differs.
    NotConverged,
}

impl SyncStatus {
    /// Whether the sync reached the desired state.
    pub fn is_success(self) -> bool {
        matches!(self, Self::Synced | Self::UpToDate | Self::Planned)
    }
}

impl fmt::Display for SyncStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        f.write_str(&s)
    }
}

/// The revision as the audit trail records it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RevisionRecord {
    /// Commit id.
    pub id: String,
    /// The reference asked for.
    pub reference: String,
    /// Author.
    pub author: Person,
    /// Committer.
    pub committer: Person,
    /// First line of the message.
    pub summary: String,
    /// Signature verdict.
    pub signature: SignatureVerdict,
}

/// How one step went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StepOutcome {
    /// Done.
    Done,
    /// Failed (see the error).
    Failed,
    /// Not run because an earlier step failed.
    NotRun,
    /// Refused by the runtime in the server-side dry run before any write
    /// (see the error); not applied.
    Refused,
}

/// Something a reader of a report should know that did not fail the sync.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "warning", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Warning {
    /// The runtime did not keep fields the revision declares for an object:
    /// right after our apply they were absent from the object it returned
    /// (a feature the server has turned off, such as `spec.ipFamilies`
    /// without dual-stack, or a mutating admission removing them). They are
    /// not treated as drift while the object's manifest stays the same.
    /// Reported once per revision.
    DroppedByServer {
        /// The object.
        key: ObjectKey,
        /// The fields dropped (readable paths).
        fields: Vec<String>,
    },
    /// A server-side dry run could not validate the object because it
    /// needs a Namespace or a CRD that the same plan creates.
    NotValidated {
        /// The object.
        key: ObjectKey,
        /// Why.
        reason: String,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::DroppedByServer { key, fields } => write!(
                f,
                "{key}: the runtime dropped declared fields {} (not kept by this server; ignored until the manifest changes)",
                fields.join(", ")
            ),
            Warning::NotValidated { key, reason } => write!(f, "{key}: not validated: {reason}"),
        }
    }
}

/// What a step did, as the audit record keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StepAction {
    /// An object was created.
    Create,
    /// An object was updated.
    Update,
    /// An object was deleted (pruned).
    Delete,
}

impl StepAction {
    /// `create`, `update` or `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }
}

impl fmt::Display for StepAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step of the plan and what became of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StepReport {
    /// The object.
    pub key: ObjectKey,
    /// Create, update or delete.
    pub action: StepAction,
    /// Wave.
    pub wave: i64,
    /// Fields changed (readable paths), for updates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
    /// Whether this step corrects drift (a change made to the runtime by
    /// hand) rather than applying a change of the repository.
    #[serde(default)]
    pub drift: bool,
    /// Outcome.
    pub outcome: StepOutcome,
    /// The error, if it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Duration in milliseconds.
    pub duration_ms: u64,
}

impl StepReport {
    pub(crate) fn planned(step: &crate::plan::Step, drift: bool) -> Self {
        let changes = match &step.action {
            Action::Update { diff: Some(d) } => {
                d.changes.iter().map(|c| c.path.to_string()).collect()
            }
            _ => Vec::new(),
        };
        Self {
            key: step.key.clone(),
            action: match step.action {
                Action::Create => StepAction::Create,
                Action::Update { .. } => StepAction::Update,
                Action::Delete => StepAction::Delete,
            },
            wave: step.wave,
            changes,
            drift,
            outcome: StepOutcome::NotRun,
            error: None,
            duration_ms: 0,
        }
    }
}

/// The phase of a reconciliation, in the order they run: where an error
/// happened ([`SyncError::phase`], [`ReconcileError::phase`](crate::ReconcileError::phase)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Phase {
    /// Resolving the reference to a revision.
    Resolve,
    /// Reading the owner's inventory from the runtime.
    Inventory,
    /// Reading the revision's files.
    Snapshot,
    /// Rendering the files into objects.
    Render,
    /// Checking the policy (of the desired state, then of the plan).
    Policy,
    /// Observing the runtime.
    Observe,
    /// Planning (conflicts and refusals block the plan).
    Plan,
    /// The server-side dry run of every step before any write.
    Preflight,
    /// Applying and deleting objects, and waiting for their health.
    Apply,
    /// Recording the inventory.
    Record,
    /// Observing again after the sync to check it converged.
    Verify,
    /// Recording the report in the audit sink.
    Audit,
    /// Not known: an error read from an audit record written before errors
    /// had phases, or with a phase this version does not know.
    #[serde(other)]
    Unknown,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        f.write_str(&s)
    }
}

/// One error of a sync, as the report (and the audit log) records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "SyncErrorRecord")]
#[non_exhaustive]
pub struct SyncError {
    /// The phase it happened in.
    pub phase: Phase,
    /// The object it is about, where there is one (a failed step, a
    /// refusal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<ObjectKey>,
    /// What happened, for people.
    pub message: String,
    /// Whether retrying later may succeed (a network outage, a runtime
    /// that is unavailable), as opposed to an error that needs a change
    /// (a mistyped branch, a manifest that does not render).
    #[serde(default)]
    pub transient: bool,
}

impl SyncError {
    /// An error of `phase`, about no object in particular, not transient.
    pub fn new(phase: Phase, message: impl Into<String>) -> Self {
        Self {
            phase,
            key: None,
            message: message.into(),
            transient: false,
        }
    }

    /// The same, about `key`.
    pub fn key(mut self, key: ObjectKey) -> Self {
        self.key = Some(key);
        self
    }

    /// The same, transient or not.
    pub fn transient(mut self, transient: bool) -> Self {
        self.transient = transient;
        self
    }
}

impl fmt::Display for SyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// How a [`SyncError`] is read: structured, or a plain message (records
/// written before errors were structured).
#[derive(Deserialize)]
#[serde(untagged)]
enum SyncErrorRecord {
    Structured {
        phase: Phase,
        #[serde(default)]
        key: Option<ObjectKey>,
        message: String,
        #[serde(default)]
        transient: bool,
    },
    Message(String),
}

impl From<SyncErrorRecord> for SyncError {
    fn from(record: SyncErrorRecord) -> Self {
        match record {
            SyncErrorRecord::Structured {
                phase,
                key,
                message,
                transient,
            } => Self {
                phase,
                key,
                message,
                transient,
            },
            SyncErrorRecord::Message(message) => Self::new(Phase::Unknown, message),
        }
    }
}

/// What one reconciliation did: the audit record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SyncReport {
    /// Owner.
    pub owner: OwnerId,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// Total duration in milliseconds.
    pub duration_ms: u64,
    /// How it ended.
    pub status: SyncStatus,
    /// The revision, once resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<RevisionRecord>,
    /// The revision applied before this one (from the inventory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_revision: Option<String>,
    /// Plan counts.
    #[serde(default)]
    pub summary: PlanSummary,
    /// Each step and its outcome, in plan order.
    #[serde(default)]
    pub steps: Vec<StepReport>,
    /// Objects whose drift (manual change in the runtime) was corrected.
    #[serde(default)]
    pub drift_corrected: Vec<ObjectKey>,
    /// Policy violations (any means nothing was applied).
    #[serde(default)]
    pub policy_violations: Vec<Violation>,
    /// Objects still differing after the sync.
    #[serde(default)]
    pub not_converged: Vec<ObjectKey>,
    /// Errors: the phase, the object where there is one, the message.
    /// Records written before errors were structured hold plain messages;
    /// they read back with [`Phase::Unknown`].
    #[serde(default)]
    pub errors: Vec<SyncError>,
    /// Warnings: what did not fail the sync but a reader should know.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
    /// The full plan (not part of the audit line; not read back).
    #[serde(skip)]
    pub plan: Option<Plan>,
}

impl SyncReport {
    /// A report for an owner that starts now.
    pub(crate) fn start(owner: &OwnerId) -> Self {
        Self {
            owner: owner.clone(),
            started_at: crate::time::now_rfc3339(),
            duration_ms: 0,
            status: SyncStatus::UpToDate,
            revision: None,
            previous_revision: None,
            summary: PlanSummary::default(),
            steps: Vec::new(),
            drift_corrected: Vec::new(),
            policy_violations: Vec::new(),
            not_converged: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
            plan: None,
        }
    }

    /// The record as one line of JSON.
    pub fn to_json_line(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}

impl fmt::Display for SyncReport {
    /// The report for people, one line per step, violation and error.
    /// Every line is [escaped](crate::escape) as a whole, as in the
    /// [`Plan`]'s text: user-controlled names, paths and messages cannot add
    /// lines or reach the terminal as control sequences.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let revision = self
            .revision
            .as_ref()
            .map(|r| {
                format!(
                    "at {} ({} by {}) ",
                    r.id.get(..12).unwrap_or(&r.id),
                    r.reference,
                    r.author.name
                )
            })
            .unwrap_or_default();
        line(
            f,
            format_args!(
                "sync of {} {revision}{}: {} in {} ms",
                self.owner, self.status, self.summary, self.duration_ms
            ),
        )?;
        for s in &self.steps {
            let mut text = format!("  {:?} {} {}", s.outcome, s.action, s.key);
            if s.drift {
                text.push_str(" (drift corrected)");
            }
            if !s.changes.is_empty() {
                text.push_str(&format!(" [{}]", s.changes.join(", ")));
            }
            if let Some(e) = &s.error {
                text.push_str(&format!(": {e}"));
            }
            line(f, format_args!("{text}"))?;
        }
        for v in &self.policy_violations {
            line(f, format_args!("  policy: {v}"))?;
        }
        for e in &self.errors {
            line(f, format_args!("  error: {e}"))?;
        }
        for w in &self.warnings {
            writeln!(f, "  warning: {w}")?;
        }
        Ok(())
    }
}
