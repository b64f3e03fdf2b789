//! The reconciler: resolve, snapshot, render, check, observe, plan, apply,
//! record, verify.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::audit::{AuditError, AuditSink};
use crate::desired::DesiredState;
use crate::health::{self, HealthStatus};
use crate::key::ObjectKey;
use crate::object::Object;
use crate::plan::{
    Action, Plan, PlanOptions, advance_to, observe_keys, observe_keys_except, plan_known,
};
use crate::policy::Policy;
use crate::render::{OptionsError, RenderErrors, RenderOptions, RenderStep, Renderer};
use crate::report::{
    Phase, RevisionRecord, StepOutcome, StepReport, SyncError, SyncReport, SyncStatus, Warning,
};
use crate::revision::{Revision, SignatureVerdict};
use crate::source::{Source, SourceError};
use crate::target::{
    ApplyOptions, DeleteOptions, Inventory, LiveState, OWNER_LABEL, ObserveRequest, OwnerId,
    Propagation, Target, TargetError,
};
use crate::util::Delay;

/// Checks the signatures of a revision (and, depending on the verifier's
/// mode, of every commit since the last applied one).
#[async_trait]
pub trait RevisionVerifier: Send + Sync + fmt::Debug {
    /// The verdict for `revision`; `last_applied` is the commit id the
    /// owner's inventory records, if any.
    async fn verify(&self, revision: &Revision, last_applied: Option<&str>) -> SignatureVerdict;
}

/// Waiting for health between waves.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HealthWait {
    /// Give up (the sync fails) after this long for one wave
    /// (`Duration::MAX`: never).
    pub timeout: Duration,
    /// Time between two observations.
    pub interval: Duration,
}

impl HealthWait {
    /// Give up after `timeout` per wave, observing every `interval`.
    pub fn new(timeout: Duration, interval: Duration) -> Self {
        Self { timeout, interval }
    }
}

/// What a sync does instead of writing, if anything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DryRun {
    /// Apply the plan (every step is still sent as a server-side dry run
    /// first, and nothing is written unless the runtime accepts them all).
    #[default]
    Off,
    /// Plan only: the runtime is read, nothing is sent to it. The sync ends
    /// [`SyncStatus::Planned`].
    Plan,
    /// Send every step as a server-side dry run (the runtime validates it
    /// and persists nothing) and write nothing, not even the inventory. The
    /// sync ends [`SyncStatus::Planned`], or [`SyncStatus::Refused`] with
    /// every refusal.
    Server,
}

/// How a [`Reconciler`] works.
///
/// ```
/// use gitops_core::{DryRun, OwnerId, ReconcilerConfig};
/// let config = ReconcilerConfig::new(OwnerId::new("shop").unwrap())
///     .path("prod")
///     .field_manager("shop-controller")
///     .dry_run(DryRun::Server);
/// assert_eq!(config.plan.field_manager, "shop-controller");
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ReconcilerConfig {
    /// Folder of the repository to render (`None`: the whole tree).
    pub path: Option<String>,
    /// Rendering options.
    pub render: RenderOptions,
    /// Planning options: the owner, and the one field manager used to
    /// plan, to apply and to read what we owned before
    /// ([`ReconcilerConfig::field_manager`]).
    pub plan: PlanOptions,
    /// Take ownership of fields other managers changed (default `true`: a
    /// field someone changed by hand is taken back, drift is corrected, as
    /// Flux does). With `false`, such a change is a conflict that fails the
    /// step.
    pub force: bool,
    /// What happens to the dependents of pruned objects.
    pub propagation: Propagation,
    /// The policy checked before anything is applied.
    pub policy: Policy,
    /// Apply, plan only, or validate on the runtime only.
    pub dry_run: DryRun,
    /// Wait for the objects of each wave to be healthy before the next.
    pub wait_for_health: Option<HealthWait>,
    /// Renderers for folders that are not plain manifests, asked in order
    /// (`gitops_kustomize::Kustomize`); which folders they render is
    /// [`RenderOptions::rendering`]. When the rendered folder
    /// ([`path`](Self::path)) holds a folder a step renders, the whole
    /// revision is read, since an overlay reads bases outside its folder;
    /// provenance paths are then relative to the repository root.
    pub render_steps: Vec<Arc<dyn RenderStep>>,
}

impl ReconcilerConfig {
    /// Defaults for an owner: the whole tree, field manager
    /// [`DEFAULT_FIELD_MANAGER`](crate::DEFAULT_FIELD_MANAGER), forced
    /// applies, background propagation, no policy, no dry run.
    pub fn new(owner: OwnerId) -> Self {
        Self {
            path: None,
            render: RenderOptions::default(),
            plan: PlanOptions::new(owner),
            force: true,
            propagation: Propagation::default(),
            policy: Policy::default(),
            dry_run: DryRun::Off,
            wait_for_health: None,
            render_steps: Vec::new(),
        }
    }

    /// Adds a render step ([`ReconcilerConfig::render_steps`]), such as
    /// `Arc::new(gitops_kustomize::Kustomize::new())`.
    pub fn render_step(mut self, step: Arc<dyn RenderStep>) -> Self {
        self.render_steps.push(step);
        self
    }

    /// The owner.
    pub fn owner(&self) -> &OwnerId {
        &self.plan.owner
    }

    /// Renders only this folder of the repository.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// The server-side-apply field manager, set once for planning and
    /// applying.
    pub fn field_manager(mut self, manager: impl Into<String>) -> Self {
        self.plan.field_manager = manager.into();
        self
    }

    /// Apply, plan only, or validate on the runtime only.
    pub fn dry_run(mut self, mode: DryRun) -> Self {
        self.dry_run = mode;
        self
    }

    /// Whether fields other managers changed are taken back.
    pub fn force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }

    /// What happens to the dependents of pruned objects.
    pub fn propagation(mut self, propagation: Propagation) -> Self {
        self.propagation = propagation;
        self
    }

    /// The policy checked before anything is applied.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Rendering options.
    pub fn render_options(mut self, options: RenderOptions) -> Self {
        self.render = options;
        self
    }

    /// Planning options (keeps the owner and field manager of `options`).
    pub fn plan_options(mut self, options: PlanOptions) -> Self {
        self.plan = options;
        self
    }

    /// Waits for the objects of each wave to be healthy before the next.
    pub fn wait_for_health(mut self, wait: HealthWait) -> Self {
        self.wait_for_health = Some(wait);
        self
    }

    /// The apply options of this configuration.
    pub fn apply_options(&self, dry_run: bool) -> ApplyOptions {
        ApplyOptions::new(self.plan.field_manager.clone())
            .force(self.force)
            .dry_run(dry_run)
    }

    /// The delete options of this configuration.
    pub fn delete_options(&self, dry_run: bool) -> DeleteOptions {
        DeleteOptions::new()
            .propagation(self.propagation)
            .dry_run(dry_run)
    }
}

/// A sync that did not reach the desired state: the [`Phase`] it failed in,
/// its typed [`Cause`] (also its [`source`](std::error::Error::source)),
/// and the report, which says how far it got and has been recorded by the
/// audit sink (unless recording it is what failed).
///
/// A controller tells a mistyped branch from a network outage with
/// [`is_transient`](Self::is_transient) or by matching on
/// [`cause`](Self::cause):
///
/// ```
/// # futures::executor::block_on(async {
/// use gitops_core::{Cause, MemoryRuntime, MemorySource, OwnerId, Phase, Reconciler, ReconcilerConfig, SourceError};
/// let config = ReconcilerConfig::new(OwnerId::new("shop").unwrap());
/// let reconciler = Reconciler::new(MemorySource::new(), MemoryRuntime::new(), config).unwrap();
/// let err = reconciler.reconcile_once("mian").await.unwrap_err();
/// assert_eq!(err.phase(), Phase::Resolve);
/// assert!(matches!(err.cause(), Some(Cause::Source(SourceError::NotFound { .. }))));
/// assert!(!err.is_transient());
/// # });
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{report}")]
pub struct ReconcileError {
    /// What happened.
    pub report: Box<SyncReport>,
    phase: Phase,
    #[source]
    cause: Option<Cause>,
}

impl ReconcileError {
    fn new(report: SyncReport, failure: Failure) -> Self {
        let (phase, cause) = match failure.0 {
            Some(first) => first,
            // Failures recorded only as report errors (refusals in the
            // server-side dry run): the first one's phase.
            None => (
                report.errors.first().map_or(Phase::Unknown, |e| e.phase),
                None,
            ),
        };
        Self {
            report: Box::new(report),
            phase,
            cause,
        }
    }

    /// The phase the sync failed in (the first failure's, when several
    /// errors are reported).
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The error that made the sync fail; `None` when the failure has no
    /// underlying error: policy violations, a plan blocked by conflicts or
    /// refusals, steps the runtime refused in its dry run, unhealthy
    /// objects, a runtime that did not converge (the report lists them).
    pub fn cause(&self) -> Option<&Cause> {
        self.cause.as_ref()
    }

    /// Whether the same sync may succeed if retried later without any
    /// change: the source or the runtime was unavailable.
    pub fn is_transient(&self) -> bool {
        self.cause.as_ref().is_some_and(Cause::is_transient)
    }
}

/// The typed error that made a sync fail ([`ReconcileError::cause`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Cause {
    /// Resolving or reading the revision failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The revision does not render.
    #[error(transparent)]
    Render(#[from] RenderErrors),
    /// The runtime failed (observing, applying, deleting, recording the
    /// inventory).
    #[error(transparent)]
    Target(#[from] TargetError),
    /// Recording the report failed.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl Cause {
    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Source(e) => e.is_transient(),
            Self::Target(e) => e.is_transient(),
            Self::Render(_) | Self::Audit(_) => false,
        }
    }
}

/// The first failure of a sync: its phase and typed cause.
#[derive(Debug, Default)]
struct Failure(Option<(Phase, Option<Cause>)>);

impl Failure {
    /// Records an error in the report; the first failure is the sync's.
    fn fail(
        &mut self,
        report: &mut SyncReport,
        phase: Phase,
        key: Option<ObjectKey>,
        message: String,
        cause: Option<Cause>,
    ) {
        let mut error = SyncError::new(phase, message)
            .transient(cause.as_ref().is_some_and(Cause::is_transient));
        error.key = key;
        report.errors.push(error);
        self.set(phase, cause);
    }

    /// Records the failure without a report error (the report lists it
    /// otherwise: policy violations, objects not converged).
    fn set(&mut self, phase: Phase, cause: Option<Cause>) {
        if self.0.is_none() {
            self.0 = Some((phase, cause));
        }
    }
}

/// Drives one owner's runtime to the state a source declares.
///
/// ```
/// # futures::executor::block_on(async {
/// use gitops_core::{MemoryRuntime, MemorySource, OwnerId, Reconciler, ReconcilerConfig, SyncStatus};
/// let source = MemorySource::new();
/// source.commit("prod", [
///     ("ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n"),
///     ("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop}\ndata: {k: v}\n"),
/// ], "ada", "initial");
/// let runtime = MemoryRuntime::new();
/// let config = ReconcilerConfig::new(OwnerId::new("shop").unwrap());
/// let reconciler = Reconciler::new(source, runtime.clone(), config).unwrap();
/// let report = reconciler.reconcile_once("prod").await.unwrap();
/// assert_eq!(report.status, SyncStatus::Synced);
/// assert_eq!(runtime.len(), 2);
/// let again = reconciler.reconcile_once("prod").await.unwrap();
/// assert_eq!(again.status, SyncStatus::UpToDate);
/// # });
/// ```
#[derive(Debug)]
pub struct Reconciler<S, T> {
    source: S,
    target: T,
    config: ReconcilerConfig,
    renderer: Mutex<Renderer>,
    audit: Option<Arc<dyn AuditSink>>,
    verifier: Option<Arc<dyn RevisionVerifier>>,
    /// Fields the runtime dropped from objects we applied, by object.
    dropped: Mutex<BTreeMap<ObjectKey, dropped::Record>>,
    /// The last successful render: reused for the same revision (the same
    /// commit always renders the same), the base of an incremental render
    /// for the next one.
    last: Mutex<Option<LastRender>>,
    /// Objects a plan found in sync: the manifest planned and the live
    /// object's version then. While both stay the same the object is in
    /// sync without being read or compared (any write changes the version,
    /// so drift is still found).
    /// Shared: a sync reads them without holding the lock across its
    /// requests, and without copying them.
    in_sync: Mutex<Records>,
    /// The last plan that found everything in sync, and what it was made
    /// from: the plan is a function of the desired state, the live state
    /// and the options, so the same inputs give it again without planning.
    noop_plan: Mutex<Option<NoopPlan>>,
    /// The owner's inventory as this reconciler last wrote (or found) it,
    /// with its version: taken again, without reading it, while the
    /// runtime's version of it is the same ([`Target::inventory_version`]).
    inventory: Mutex<Option<Inventory>>,
    /// The last desired state the policy passed (the check is a function
    /// of the desired state and the policy, fixed).
    policy_passed: Mutex<std::sync::Weak<DesiredState>>,
}

/// See [`Reconciler::in_sync`].
#[derive(Debug, Default)]
struct Records {
    map: Arc<BTreeMap<ObjectKey, InSync>>,
    /// Bumped on every change of `map`.
    generation: u64,
}

impl Records {
    fn change(&mut self) -> &mut BTreeMap<ObjectKey, InSync> {
        self.generation += 1;
        Arc::make_mut(&mut self.map)
    }
}

/// See [`Reconciler::noop_plan`].
#[derive(Debug)]
struct NoopPlan {
    /// The desired state planned (identity: a weak reference keeps its
    /// address from being reused, and does not keep it alive).
    desired: std::sync::Weak<DesiredState>,
    /// The in-sync records then ([`Records::generation`]): one per desired
    /// object, each of its manifest.
    generation: u64,
    /// The keys that were read (none desired), what they read, and the
    /// inventory.
    keys: BTreeSet<ObjectKey>,
    objects: BTreeMap<ObjectKey, serde_json::Value>,
    inventory: Option<Inventory>,
    plan: Plan,
}

/// See [`Reconciler::last`].
#[derive(Debug)]
struct LastRender {
    revision: Revision,
    snapshot: crate::Snapshot,
    desired: Arc<DesiredState>,
    /// Whether the whole revision was read (a folder a step renders).
    whole: bool,
}

/// How many applied objects are verified at a time: a sync holds no more
/// than these of what the runtime stored.
const VERIFY_CHUNK: usize = 256;

/// What verifying the steps of a sync found so far: the objects it stored,
/// verified a chunk at a time as the steps run, then planned again
/// ([`Reconciler::verify`]).
struct Verification {
    /// The desired CRDs, for the kinds they define.
    crds: Vec<ObjectKey>,
    /// Applied steps, with what the runtime stored, not verified yet.
    applied: Vec<(usize, serde_json::Value)>,
    /// Applied steps the runtime returned no stored object for: observed
    /// once the steps are done.
    unread: Vec<usize>,
    /// Steps that did not converge.
    not_converged: Vec<usize>,
    /// Objects verified in sync, recorded once the sync succeeds.
    in_sync: Vec<(ObjectKey, InSync)>,
}

impl Verification {
    fn new(desired: &DesiredState) -> Self {
        Self {
            crds: desired
                .of_kind("apiextensions.k8s.io", "CustomResourceDefinition")
                .map(|(k, _)| k.clone())
                .collect(),
            applied: Vec::new(),
            unread: Vec::new(),
            not_converged: Vec::new(),
            in_sync: Vec::new(),
        }
    }
}

/// Whether what the runtime returned for an apply of `key` is the object it
/// stored: a runtime may return something else, and the object is then
/// observed.
fn is_stored(key: &ObjectKey, stored: &serde_json::Value) -> bool {
    let text = |pointer: &str| stored.pointer(pointer).and_then(serde_json::Value::as_str);
    text("/kind") == Some(key.kind.as_str())
        && text("/metadata/name") == Some(key.name.as_str())
        && text("/metadata/namespace") == key.namespace.as_deref()
}

/// See [`Reconciler::in_sync`].
#[derive(Debug, Clone)]
struct InSync {
    object: Object,
    version: String,
}

/// What [`Reconciler::render_revision`] gives.
struct Rendered {
    desired: Arc<DesiredState>,
    whole: bool,
    /// The paths changed since the revision (id) last rendered, when the
    /// render was incremental.
    changed: Option<(String, BTreeSet<String>)>,
}

/// A snapshot read for `revision`, with the revision attached; on failure
/// `None`, with the report and failure filled in.
fn snapshot_read(
    read: Result<crate::Snapshot, SourceError>,
    revision: &Revision,
    report: &mut SyncReport,
    failure: &mut Failure,
) -> Option<crate::Snapshot> {
    match read {
        Ok(s) => Some(s.with_revision(revision.clone())),
        Err(e) => {
            report.status = SyncStatus::SourceFailed;
            let message = format!("reading revision {}: {e}", revision.short_id());
            failure.fail(report, Phase::Snapshot, None, message, Some(e.into()));
            None
        }
    }
}

/// What [`Reconciler::prepare`] hands to the apply phase.
struct Prepared {
    desired: Arc<DesiredState>,
    plan: Plan,
    inventory: Option<Inventory>,
    /// The folder provenance paths are relative to (`None`: the repository root).
    provenance_root: Option<String>,
    /// See [`Rendered::changed`].
    changed: Option<(String, BTreeSet<String>)>,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl<S: Source, T: Target> Reconciler<S, T> {
    /// A reconciler; fails only if the render options are invalid.
    pub fn new(source: S, target: T, config: ReconcilerConfig) -> Result<Self, OptionsError> {
        // Rendered with the owner label, which the planner would otherwise
        // set on a copy of each object.
        let options = config
            .render
            .clone()
            .with_label(OWNER_LABEL, config.owner().as_str());
        let mut renderer = Renderer::new(options)?;
        for step in &config.render_steps {
            renderer.add_step(Arc::clone(step));
        }
        Ok(Self {
            source,
            target,
            config,
            renderer: Mutex::new(renderer),
            audit: None,
            verifier: None,
            dropped: Mutex::new(BTreeMap::new()),
            last: Mutex::new(None),
            in_sync: Mutex::new(Records::default()),
            policy_passed: Mutex::new(std::sync::Weak::new()),
            noop_plan: Mutex::new(None),
            inventory: Mutex::new(None),
        })
    }

    /// Records every sync in an audit sink.
    pub fn with_audit(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit = Some(sink);
        self
    }

    /// Verifies signatures of every revision before planning.
    pub fn with_verifier(mut self, verifier: Arc<dyn RevisionVerifier>) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &ReconcilerConfig {
        &self.config
    }

    /// The source.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// The target.
    pub fn target(&self) -> &T {
        &self.target
    }

    /// Resolves, renders and plans `reference` without applying anything.
    /// The desired state is shared with the reconciler, which keeps it for
    /// the next render and plan.
    pub async fn plan(&self, reference: &str) -> Result<(Arc<DesiredState>, Plan), ReconcileError> {
        let mut report = SyncReport::start(self.config.owner());
        let t0 = Instant::now();
        let mut failure = Failure::default();
        match self.prepare(reference, &mut report, &mut failure).await {
            Some(p) => {
                // Kept, as a sync keeps what it wrote: the next plan reads
                // it again only if its stored version changed.
                if let Some(inventory) = p.inventory {
                    *lock(&self.inventory) = Some(inventory);
                }
                Ok((p.desired, p.plan))
            }
            None => {
                report.duration_ms = ms(t0.elapsed());
                Err(ReconcileError::new(report, failure))
            }
        }
    }

    /// Everything up to the plan; `None` (with the report filled) when the
    /// sync cannot go on.
    async fn prepare(
        &self,
        reference: &str,
        report: &mut SyncReport,
        failure: &mut Failure,
    ) -> Option<Prepared> {
        let owner = self.config.owner().clone();
        let mut revision = match self.source.resolve(reference).await {
            Ok(r) => r,
            Err(e) => {
                report.status = SyncStatus::SourceFailed;
                let message = format!("resolving {reference:?}: {e}");
                failure.fail(report, Phase::Resolve, None, message, Some(e.into()));
                return None;
            }
        };
        let mut inventory = match self.read_inventory(&owner).await {
            Ok(i) => i,
            Err(e) => {
                report.status = SyncStatus::ObserveFailed;
                let message = format!("reading the inventory of {owner}: {e}");
                failure.fail(report, Phase::Inventory, None, message, Some(e.into()));
                return None;
            }
        };
        report.previous_revision = inventory.as_ref().and_then(|i| i.revision.clone());
        if let Some(v) = &self.verifier {
            revision.signature = v
                .verify(&revision, report.previous_revision.as_deref())
                .await;
        }
        report.revision = Some(RevisionRecord {
            id: revision.id.clone(),
            reference: reference.to_owned(),
            author: revision.author.clone(),
            committer: revision.committer.clone(),
            summary: revision.summary().to_owned(),
            signature: revision.signature.clone(),
        });
        let Rendered {
            mut desired,
            whole,
            changed,
        } = self.render_revision(&revision, report, failure).await?;
        if desired.revision() != Some(&revision) {
            Arc::make_mut(&mut desired).set_revision(Some(revision.clone()));
        }
        let violations = self.check_policy(&desired);
        if !violations.is_empty() {
            report.status = SyncStatus::PolicyViolated;
            report.policy_violations = violations;
            failure.set(Phase::Policy, None);
            return None;
        }
        self.forget_stale_dropped(&desired);
        let desired = self.without_dropped(desired);
        let plan = match self.resync_noop(&desired, inventory.as_ref(), &owner).await {
            Ok(Some(plan)) => plan,
            Ok(None) => {
                self.observe_and_plan(&desired, &mut inventory, &owner, report, failure)
                    .await?
            }
            Err(e) => {
                report.status = SyncStatus::ObserveFailed;
                let message = format!("observing the runtime: {e}");
                failure.fail(report, Phase::Observe, None, message, Some(e.into()));
                return None;
            }
        };
        report.summary = plan.summary();
        let violations = self.config.policy.check_plan(&plan);
        if !violations.is_empty() {
            report.status = SyncStatus::PolicyViolated;
            report.policy_violations = violations;
            report.plan = Some(plan);
            failure.set(Phase::Policy, None);
            return None;
        }
        if plan.is_blocked() {
            report.status = SyncStatus::Blocked;
            for r in &plan.refusals {
                failure.fail(
                    report,
                    Phase::Plan,
                    r.key().cloned(),
                    format!("refused: {r}"),
                    None,
                );
            }
            for c in &plan.conflicts {
                let message = format!("conflict: {c}");
                failure.fail(report, Phase::Plan, Some(c.key().clone()), message, None);
            }
            report.plan = Some(plan);
            return None;
        }
        Some(Prepared {
            desired,
            plan,
            inventory,
            provenance_root: if whole {
                None
            } else {
                self.config.path.clone()
            },
            changed,
        })
    }

    /// Renders a revision: the last render again for the same revision;
    /// only the changed files when the last render was of plain manifests
    /// ([`Renderer::render_changed`]); otherwise the whole snapshot.
    /// `None` (with the report filled) when it fails.
    async fn render_revision(
        &self,
        revision: &Revision,
        report: &mut SyncReport,
        failure: &mut Failure,
    ) -> Option<Rendered> {
        let path = self.config.path.as_deref();
        let last = lock(&self.last).take();
        if let Some(last) = last {
            if last.revision.id == revision.id {
                // The same commit renders the same (hermetic).
                let rendered = Rendered {
                    desired: Arc::clone(&last.desired),
                    whole: last.whole,
                    changed: None,
                };
                *lock(&self.last) = Some(last);
                return Some(rendered);
            }
            if !last.whole
                && self.config.render_steps.is_empty()
                && let Ok(changed) = self
                    .source
                    .changed_paths(&last.revision, revision, path)
                    .await
            {
                let read = self
                    .source
                    .snapshot_incremental_from(last.snapshot, &last.revision, revision, path)
                    .await;
                let snapshot = snapshot_read(read, revision, report, failure)?;
                let changed: BTreeSet<String> = changed.into_iter().collect();
                let previous = Arc::unwrap_or_clone(last.desired);
                let result = lock(&self.renderer).render_changed(previous, &snapshot, "", &changed);
                let desired = self.rendered(result, revision, snapshot, false, report, failure)?;
                return Some(Rendered {
                    desired,
                    whole: false,
                    changed: Some((last.revision.id, changed)),
                });
            }
        }
        let read = self.source.snapshot(revision, path).await;
        let snapshot = snapshot_read(read, revision, report, failure)?;
        // A folder a step renders may read files outside the rendered folder
        // (an overlay's bases): then the whole revision is read and the
        // folder rendered within it.
        let path = path.unwrap_or_default();
        let whole = !path.is_empty()
            && lock(&self.renderer)
                .step_folders(&snapshot, "")
                .is_ok_and(|folders| !folders.is_empty());
        let (snapshot, dir) = if whole {
            let read = self.source.snapshot(revision, None).await;
            (snapshot_read(read, revision, report, failure)?, path)
        } else {
            (snapshot, "")
        };
        let result = lock(&self.renderer).render_dir(&snapshot, dir);
        let desired = self.rendered(result, revision, snapshot, whole, report, failure)?;
        Some(Rendered {
            desired,
            whole,
            changed: None,
        })
    }

    /// Keeps a successful render for the next sync, or reports its errors.
    fn rendered(
        &self,
        result: Result<DesiredState, RenderErrors>,
        revision: &Revision,
        snapshot: crate::Snapshot,
        whole: bool,
        report: &mut SyncReport,
        failure: &mut Failure,
    ) -> Option<Arc<DesiredState>> {
        match result {
            Ok(desired) => {
                let desired = Arc::new(desired);
                *lock(&self.last) = Some(LastRender {
                    revision: revision.clone(),
                    snapshot,
                    desired: Arc::clone(&desired),
                    whole,
                });
                Some(desired)
            }
            Err(errors) => {
                report.status = SyncStatus::RenderFailed;
                report.errors.extend(
                    errors
                        .0
                        .iter()
                        .map(|e| SyncError::new(Phase::Render, e.to_string())),
                );
                failure.set(Phase::Render, Some(errors.into()));
                None
            }
        }
    }

    /// Splits the keys to observe: desired objects recorded in sync whose
    /// manifest and live version ([`Target::versions`]) are still the ones
    /// recorded are in sync without being read; the rest is observed.
    /// The keys in sync are the desired state's own, in key order (see
    /// [`plan_known`]): neither copied nor compared again.
    async fn split_in_sync<'a>(
        &self,
        desired: &'a DesiredState,
        inventory: Option<&Inventory>,
        owner: &crate::target::OwnerId,
    ) -> Result<(BTreeSet<ObjectKey>, Vec<&'a ObjectKey>), TargetError> {
        let none = || (observe_keys(desired, inventory), Vec::new());
        let records: Arc<BTreeMap<ObjectKey, InSync>> = {
            let mut records = lock(&self.in_sync);
            if records.map.is_empty() {
                return Ok(none());
            }
            // Custom resources are compared with the list semantics of the
            // desired CRDs: when a CRD changes, nothing recorded holds.
            let (group, kind) = ("apiextensions.k8s.io", "CustomResourceDefinition");
            let first = ObjectKey::new(group, kind, None, "");
            let crds_same = desired
                .of_kind(group, kind)
                .all(|(k, d)| records.map.get(k).is_some_and(|r| r.object == d.object))
                && records
                    .map
                    .range(first..)
                    .take_while(|(k, _)| k.is(group, kind))
                    .all(|(k, _)| desired.contains(k));
            if !crds_same {
                records.change().clear();
                return Ok(none());
            }
            if records.map.len() > desired.len() {
                records.change().retain(|k, _| desired.contains(k));
            }
            Arc::clone(&records.map)
        };
        // The records whose manifest is still the desired one (objects are
        // shared: an unchanged manifest compares by pointer). Both in key
        // order: one pass.
        let mut candidates: Vec<(&'a ObjectKey, &str)> = Vec::with_capacity(records.len());
        let mut recorded = records.iter().peekable();
        for (k, d) in desired.iter() {
            if let Some(record) = advance_to(&mut recorded, k)
                && record.object == d.object
            {
                candidates.push((k, record.version.as_str()));
            }
        }
        if candidates.is_empty() {
            return Ok(none());
        }
        let Some(same) = self.target.still_at(&candidates, Some(owner)).await? else {
            return Ok(none());
        };
        // The candidates' keys are the desired state's own: told apart from
        // the others by address, in one pass.
        let in_sync: Vec<&'a ObjectKey> = candidates
            .iter()
            .zip(same)
            .filter(|(_, same)| *same)
            .map(|((k, _), _)| *k)
            .collect();
        let keys = observe_keys_except(desired, inventory, &in_sync);
        Ok((keys, in_sync))
    }

    /// The owner's inventory: the one kept from the last sync while the
    /// runtime says its version is still that one, else read.
    async fn read_inventory(&self, owner: &OwnerId) -> Result<Option<Inventory>, TargetError> {
        let kept = lock(&self.inventory).take();
        if let Some(kept) = kept
            && kept.owner == *owner
            && kept.version.is_some()
            && self.target.inventory_version(owner).await? == Some(kept.version.clone())
        {
            return Ok(Some(kept));
        }
        self.target.read_inventory(owner).await
    }

    /// The policy's violations; none, without checking again, for the
    /// desired state it last passed.
    fn check_policy(&self, desired: &Arc<DesiredState>) -> Vec<crate::policy::Violation> {
        let passed = lock(&self.policy_passed);
        if std::ptr::eq(passed.as_ptr(), Arc::as_ptr(desired)) {
            return Vec::new();
        }
        drop(passed);
        let violations = self.config.policy.check(desired);
        if violations.is_empty() {
            *lock(&self.policy_passed) = Arc::downgrade(desired);
        }
        violations
    }

    /// Observes what is not known in sync, and plans.
    async fn observe_and_plan(
        &self,
        desired: &Arc<DesiredState>,
        inventory: &mut Option<Inventory>,
        owner: &OwnerId,
        report: &mut SyncReport,
        failure: &mut Failure,
    ) -> Option<Plan> {
        let split = self.split_in_sync(desired, inventory.as_ref(), owner).await;
        let observed = match split {
            Ok((keys, in_sync)) => {
                let request = ObserveRequest::new(keys, Some(owner.clone()));
                self.target
                    .observe(&request)
                    .await
                    .map(|live| (live, in_sync, request.keys))
            }
            Err(e) => Err(e),
        };
        let (mut live, in_sync, keys) = match observed {
            Ok(observed) => observed,
            Err(e) => {
                report.status = SyncStatus::ObserveFailed;
                let message = format!("observing the runtime: {e}");
                failure.fail(report, Phase::Observe, None, message, Some(e.into()));
                return None;
            }
        };
        live.inventory = inventory.take();
        // The objects known in sync are handed to the planner as the
        // desired state's own keys.
        let planned = self.plan_with_cascades(desired, &mut live, &in_sync).await;
        *inventory = live.inventory.take();
        let plan = match planned {
            Ok(plan) => plan,
            Err(e) => {
                report.status = SyncStatus::ObserveFailed;
                let message = format!("asking the runtime what prune would delete: {e}");
                failure.fail(report, Phase::Observe, None, message, Some(e.into()));
                return None;
            }
        };
        self.record_in_sync(desired, &plan.unchanged, &live);
        let all_in_sync = in_sync.len() == desired.len();
        self.remember_plan(desired, live, all_in_sync, keys, inventory.as_ref(), &plan);
        Some(plan)
    }

    /// The last no-op plan again, when its inputs are the same: the same
    /// desired state (the same shared one: a new revision, a new render or
    /// fields stripped make another), the same in-sync records (one per
    /// desired object) all still at their versions, so every desired object
    /// is known in sync, and the same inventory and objects read. The
    /// options are the reconciler's, fixed. `None`: plan.
    async fn resync_noop(
        &self,
        desired: &Arc<DesiredState>,
        inventory: Option<&Inventory>,
        owner: &OwnerId,
    ) -> Result<Option<Plan>, TargetError> {
        let same_inventory = |kept: Option<&Inventory>| match (kept, inventory) {
            // A version changes on every write: the same version, the same
            // inventory.
            (Some(a), Some(b)) if a.version.is_some() && b.version.is_some() => {
                a.owner == b.owner && a.version == b.version
            }
            (a, b) => a == b,
        };
        let (keys, generation) = {
            let memo = lock(&self.noop_plan);
            let Some(memo) = memo.as_ref() else {
                return Ok(None);
            };
            if !std::ptr::eq(memo.desired.as_ptr(), Arc::as_ptr(desired))
                || !same_inventory(memo.inventory.as_ref())
            {
                return Ok(None);
            }
            (memo.keys.clone(), memo.generation)
        };
        let records = {
            let records = lock(&self.in_sync);
            if records.generation != generation || records.map.len() != desired.len() {
                return Ok(None);
            }
            Arc::clone(&records.map)
        };
        let recorded: Vec<(&ObjectKey, &str)> = records
            .iter()
            .map(|(k, r)| (k, r.version.as_str()))
            .collect();
        let Some(same) = self.target.still_at(&recorded, Some(owner)).await? else {
            return Ok(None);
        };
        if same.len() != recorded.len() || same.contains(&false) {
            return Ok(None);
        }
        let objects = if keys.is_empty() {
            BTreeMap::new()
        } else {
            let request = ObserveRequest::new(keys, Some(owner.clone()));
            self.target.observe(&request).await?.objects
        };
        let memo = lock(&self.noop_plan);
        Ok(memo
            .as_ref()
            .filter(|m| {
                std::ptr::eq(m.desired.as_ptr(), Arc::as_ptr(desired))
                    && m.generation == generation
                    && m.objects == objects
            })
            .map(|m| m.plan.clone()))
    }

    /// Keeps a plan that found every desired object in sync (all of them
    /// known in sync: `all_in_sync`) for [`Self::resync_noop`] (or forgets
    /// the last one).
    fn remember_plan(
        &self,
        desired: &Arc<DesiredState>,
        live: LiveState,
        all_in_sync: bool,
        keys: BTreeSet<ObjectKey>,
        inventory: Option<&Inventory>,
        plan: &Plan,
    ) {
        let noop = plan.steps.is_empty() && all_in_sync && live.dependents.is_empty();
        let generation = lock(&self.in_sync).generation;
        *lock(&self.noop_plan) = noop.then(|| NoopPlan {
            desired: Arc::downgrade(desired),
            generation,
            keys,
            objects: live.objects,
            inventory: inventory.cloned(),
            plan: plan.clone(),
        });
    }

    /// Records the objects a plan found unchanged among those it read.
    fn record_in_sync(&self, desired: &DesiredState, unchanged: &[ObjectKey], live: &LiveState) {
        let new = in_sync_records(desired, unchanged, live);
        self.keep_in_sync(new);
    }

    fn keep_in_sync(&self, new: Vec<(ObjectKey, InSync)>) {
        if !new.is_empty() {
            // Nobody else holds them between syncs: no copy.
            lock(&self.in_sync).change().extend(new);
        }
    }

    /// Which steps correct drift: all of them when the revision is the one
    /// last applied; otherwise those of objects declared in files the new
    /// revision did not change.
    ///
    /// Provenance paths are relative to `root` (the folder snapshotted).
    async fn drift_flags(
        &self,
        plan: &Plan,
        desired: &DesiredState,
        previous: Option<&str>,
        root: Option<&str>,
        known: Option<&(String, BTreeSet<String>)>,
    ) -> Vec<bool> {
        let Some(previous) = previous else {
            return vec![false; plan.steps.len()];
        };
        let current = desired
            .revision()
            .map(|r| r.id.as_str())
            .unwrap_or_default();
        let changed: Option<BTreeSet<String>> = if previous == current {
            None
        } else if let Some((_, changed)) = known.filter(|(from, _)| from == previous) {
            Some(changed.clone())
        } else {
            let changed = match (self.source.resolve(previous).await, desired.revision()) {
                (Ok(prev), Some(cur)) => self.source.changed_paths(&prev, cur, root).await.ok(),
                _ => None,
            };
            let Some(changed) = changed else {
                return vec![false; plan.steps.len()];
            };
            Some(changed.into_iter().collect())
        };
        // An object is untouched by the revision when none of the files it
        // depends on (its file, and the overlays and patches that changed
        // it) changed.
        plan.steps
            .iter()
            .map(|s| match (&s.action, &s.provenance) {
                (Action::Delete, _) => false,
                (_, Some(p)) => changed
                    .as_ref()
                    .is_none_or(|c| p.files().all(|f| !c.contains(f))),
                (_, None) => false,
            })
            .collect()
    }

    /// Runs one sync of `reference` and returns its report; the report is
    /// recorded by the audit sink whatever happens.
    ///
    /// A reference that cannot be read, a revision that does not render, a
    /// policy violation, a conflict or a refused guard apply nothing; so
    /// does a namespaced object whose Namespace is neither declared nor in
    /// the runtime ([`Refusal::MissingNamespace`](crate::Refusal)).
    ///
    /// # Nothing half-applied
    /// Before the first write, every step of the plan is sent to the
    /// runtime as a server-side dry run ([`ApplyOptions::dry_run`],
    /// [`DeleteOptions::dry_run`]): the runtime validates it as it would
    /// the real request and persists nothing. If it refuses any, the sync
    /// ends [`SyncStatus::Refused`] with *every* refusal in the report
    /// (each step marked [`StepOutcome::Refused`] with the runtime's
    /// message) and nothing written.
    ///
    /// A dry run cannot validate an object whose Namespace or CRD the same
    /// plan creates (the runtime answers "namespace not found" or "kind not
    /// served"). Such an object is not taken for refused: those Namespaces
    /// and CRDs are applied first (they are cluster-scoped and need nothing
    /// else of the plan), then the waiting objects are dry-run again, and
    /// the rest is applied only if they all pass. So the only writes that
    /// can precede a refusal are those Namespaces and CRDs; they are
    /// inventoried, and pruned by a later revision that no longer
    /// declares them.
    ///
    /// The remaining window: a runtime can still refuse a real request after
    /// accepting its dry run (an admission webhook whose service the plan
    /// has just started, a quota used up meanwhile, a concurrent writer, a
    /// lost connection). Steps then stop at the first failure; what was
    /// applied, and the step that failed, stay in the inventory, and the
    /// inventory keeps the previous revision. The next sync plans again
    /// from the live state, dry-runs what is left and applies it: it picks
    /// up where this one stopped.
    ///
    /// # Fields the runtime drops
    /// A field the revision declares that the runtime does not keep (right
    /// after our apply it is absent from the object the runtime returned,
    /// e.g. `spec.ipFamilies` on a server without dual-stack, which
    /// kube-apiserver 1.20 drops while recording it in our `managedFields`) is reported once per revision as a
    /// [`Warning::DroppedByServer`] and left out of comparisons while the
    /// object's manifest stays the same, so it is neither drift nor
    /// re-applied every sync. The record lives in this reconciler: after a
    /// restart the object is applied once more (not reported as drift) and
    /// the record is made again.
    ///
    /// Each applied object is verified from what the runtime returned for
    /// its apply (the object as stored, [`Target::apply`]), planned again
    /// against its manifest a chunk of objects at a time as the steps run:
    /// anything left is reported as not converged, and what is in sync is
    /// recorded with its version once the sync succeeds. An object whose
    /// apply returned something else is observed after the steps.
    ///
    /// # The inventory
    /// The owner's inventory: before the first write, the objects the plan
    /// will create are added to it, so nothing created escapes a later
    /// prune if the sync stops midway; at the end it is written once more,
    /// only if its content changed (a no-op sync writes nothing). Both writes
    /// are compare-and-swap on the version read for the plan: when another
    /// reconciler of the same owner wrote in between, nothing is applied (the
    /// first write) or what this sync applied is merged into the other's
    /// record and the sync fails (the last). The window left: if that other
    /// reconciler, syncing another revision, saw an object this one was about
    /// to create still absent (and so dropped it from the record), and this
    /// process then dies before its last write, that object stays live and
    /// unlisted. One reconciler per owner (a Lease) closes it.
    ///
    /// A deletion whose runtime cascade ([`Target::dependents`]) reaches
    /// objects that are not ours is refused at plan time
    /// ([`Refusal::ForeignCascade`](crate::plan::Refusal::ForeignCascade)),
    /// and checked again right before the delete.
    pub async fn reconcile_once(&self, reference: &str) -> Result<SyncReport, ReconcileError> {
        let t0 = Instant::now();
        let mut report = SyncReport::start(self.config.owner());
        let mut failure = Failure::default();
        if let Some(prepared) = self.prepare(reference, &mut report, &mut failure).await {
            self.execute(prepared, &mut report, &mut failure).await;
        }
        report.duration_ms = ms(t0.elapsed());
        if let Some(sink) = &self.audit
            && let Err(e) = sink.record_async(&report).await
        {
            // A sync that failed before keeps its first failure as its cause.
            let message = format!("audit: {e}");
            failure.fail(&mut report, Phase::Audit, None, message, Some(e.into()));
            return Err(ReconcileError::new(report, failure));
        }
        if report.status.is_success() {
            Ok(report)
        } else {
            Err(ReconcileError::new(report, failure))
        }
    }

    async fn execute(&self, prepared: Prepared, report: &mut SyncReport, failure: &mut Failure) {
        let Prepared {
            desired,
            plan,
            inventory,
            provenance_root,
            changed,
        } = prepared;
        let drift = self
            .drift_flags(
                &plan,
                &desired,
                report.previous_revision.as_deref(),
                provenance_root.as_deref(),
                changed.as_ref(),
            )
            .await;
        report.steps = plan
            .steps
            .iter()
            .zip(&drift)
            .map(|(s, d)| StepReport::planned(s, *d))
            .collect();
        if self.config.dry_run == DryRun::Plan {
            report.status = SyncStatus::Planned;
            report.plan = Some(plan);
            return;
        }
        // Every step is first sent as a server-side dry run: the runtime
        // validates it and nothing is persisted. Only when the runtime
        // accepts all of them is anything written.
        let all: Vec<usize> = (0..plan.steps.len()).collect();
        let checked = self.preflight(&plan, &all, true, report).await;
        // A server-side dry run only (the apply or delete options ask for
        // one): no inventory is written, and the result is a plan.
        let server_dry_run = self.config.dry_run == DryRun::Server;
        if server_dry_run {
            for (i, needs) in &checked.deferred {
                let needs: Vec<String> = needs
                    .iter()
                    .map(|j| plan.steps[*j].key.to_string())
                    .collect();
                report.warnings.push(Warning::NotValidated {
                    key: plan.steps[*i].key.clone(),
                    reason: format!("it needs {}, which this plan creates", needs.join(" and ")),
                });
            }
            report.status = if checked.refused.is_empty() {
                SyncStatus::Planned
            } else {
                report_refusals(&plan, &checked.refused, report);
                SyncStatus::Refused
            };
            report.plan = Some(plan);
            return;
        }
        if !checked.refused.is_empty() {
            report_refusals(&plan, &checked.refused, report);
            report.status = SyncStatus::Refused;
            report.plan = Some(plan);
            return;
        }
        // Steps the dry run could not validate because they need a
        // Namespace or CRD the plan creates: those are applied first, then
        // the waiting steps are validated, then the rest is applied.
        let enablers: BTreeSet<usize> = checked.deferred.values().flatten().copied().collect();
        let order: Vec<usize> = enablers
            .iter()
            .copied()
            .chain(all.iter().copied().filter(|i| !enablers.contains(i)))
            .collect();
        let checkpoint = (!checked.deferred.is_empty()).then_some(enablers.len());
        let owner = self.config.owner().clone();
        let apply_options = self.config.apply_options(false);
        // The steps applied (or that may have been): their keys and
        // apiVersions are the plan's, not copies.
        let mut applied: Vec<&crate::plan::Step> = Vec::new();
        let mut deleted: BTreeSet<ObjectKey> = BTreeSet::new();
        let mut failed = false;
        let mut refused = false;
        let mut verification = Verification::new(&desired);
        // Nothing we create may escape a later prune: list it first.
        let written = match self.record_intent(&plan, inventory.as_ref()).await {
            Ok(written) => written,
            Err(e) => {
                let message = format!(
                    "recording the objects to create in the inventory before applying: {e}"
                );
                failure.fail(report, Phase::Record, None, message, Some(e.into()));
                report.status = SyncStatus::StepFailed;
                report.plan = Some(plan);
                return;
            }
        };
        for (pos, &i) in order.iter().enumerate() {
            if checkpoint == Some(pos) {
                let waiting: Vec<usize> = checked.deferred.keys().copied().collect();
                // What they needed exists now: whatever the runtime
                // answers is its verdict.
                let again = self.preflight(&plan, &waiting, false, report).await;
                if !again.refused.is_empty() {
                    report_refusals(&plan, &again.refused, report);
                    refused = true;
                    failed = true;
                    break;
                }
            }
            let step = &plan.steps[i];
            let delete_options = self.config.delete_options(false);
            match self
                .run_step(step, &apply_options, &delete_options, &mut report.steps[i])
                .await
            {
                Ok(_) if matches!(step.action, Action::Delete) => {
                    deleted.insert(step.key.clone());
                }
                Ok(stored) => {
                    applied.push(step);
                    match stored.filter(|stored| is_stored(&step.key, stored)) {
                        Some(stored) => {
                            self.note_dropped(
                                &desired,
                                step,
                                &stored,
                                &mut report.steps[i],
                                &mut report.warnings,
                            );
                            verification.applied.push((i, stored));
                            if verification.applied.len() >= VERIFY_CHUNK {
                                self.verify_applied(&desired, &plan, &mut verification);
                            }
                        }
                        None => verification.unread.push(i),
                    }
                }
                Err(e) => {
                    let message = format!("{} failed: {e}", report.steps[i].action);
                    let key = Some(step.key.clone());
                    failure.fail(report, Phase::Apply, key, message, Some(e.into()));
                    // The runtime may have applied it before the error
                    // reached us (a timeout): keep it inventoried, so a
                    // later prune can still find it (prune also needs our
                    // label, so this never claims anything that isn't ours).
                    if !matches!(step.action, Action::Delete) {
                        applied.push(step);
                    }
                    failed = true;
                    break;
                }
            }
            // Health waits are for waves in plan order, not for the
            // Namespaces and CRDs applied ahead of it.
            let next = order.get(pos + 1).map(|n| &plan.steps[*n]);
            let wave_ends =
                next.is_none_or(|n| n.wave != step.wave || matches!(n.action, Action::Delete));
            let ahead = checkpoint.is_some_and(|c| pos < c);
            if wave_ends
                && !ahead
                && !matches!(step.action, Action::Delete)
                && let Some(wait) = &self.config.wait_for_health
                && let Err((message, cause)) = self.wait_healthy(&plan, step.wave, wait).await
            {
                failure.fail(report, Phase::Apply, None, message, cause.map(Cause::from));
                failed = true;
                break;
            }
        }
        self.warn_dropped(&desired, report);
        report.drift_corrected = report
            .steps
            .iter()
            .filter(|s| s.drift && s.outcome == StepOutcome::Done)
            .map(|s| s.key.clone())
            .collect();
        // Record what we own: all of the plan's inventory on success;
        // otherwise the old inventory plus what was applied, less what was
        // deleted, so nothing we created escapes a later prune.
        let stored = written.as_ref().or(inventory.as_ref());
        let revision = if failed {
            report.previous_revision.clone()
        } else {
            desired.revision().map(|r| r.id.clone())
        };
        // A sync that changes nothing records nothing: compared before
        // anything is copied.
        let same = !failed
            && stored.is_some_and(|s| {
                s.owner == owner && s.revision == revision && s.objects == plan.next_inventory
            });
        // What is stored now, if this sync knows it: kept for the next.
        let mut now_stored = None;
        if same {
            now_stored = written.or(inventory);
        } else {
            let mut record = Inventory::new(owner.clone());
            record.revision = revision;
            let unchanged = if failed {
                let mut o = inventory
                    .as_ref()
                    .map(|i| BTreeMap::clone(&i.objects))
                    .unwrap_or_default();
                o.extend(
                    applied
                        .iter()
                        .map(|s| (s.key.clone(), s.api_version.clone())),
                );
                o.retain(|k, _| !deleted.contains(k));
                record.objects = Arc::new(o);
                stored.is_some_and(|s| s.same_content(&record))
            } else {
                false
            };
            let stored_version = stored.and_then(|s| s.version.clone());
            if !failed {
                // The plan's entries, shared.
                record.objects = Arc::clone(&plan.next_inventory);
            }
            let recorded = if unchanged {
                Ok(())
            } else {
                self.record_inventory(stored_version, &mut record, &applied, &deleted)
                    .await
            };
            if let Err((message, cause)) = recorded {
                failure.fail(report, Phase::Record, None, message, Some(cause.into()));
                failed = true;
            } else {
                now_stored = Some(record);
            }
        }
        if !failed && let Some(stored) = now_stored {
            *lock(&self.inventory) = Some(stored);
        }
        if failed {
            report.status = if refused {
                SyncStatus::Refused
            } else {
                SyncStatus::StepFailed
            };
            report.plan = Some(plan);
            return;
        }
        // Verify convergence of what the steps changed, from what the runtime
        // stored (the rest of it: most was verified as the steps ran); the
        // other objects were in sync and nothing touched them.
        self.verify_applied(&desired, &plan, &mut verification);
        if !verification.unread.is_empty() {
            let unread = std::mem::take(&mut verification.unread);
            let observed = self
                .target
                .observe(&ObserveRequest {
                    keys: unread.iter().map(|&i| plan.steps[i].key.clone()).collect(),
                    owner: Some(owner.clone()),
                })
                .await;
            match observed {
                Ok(live) => self.verify(&desired, &plan, &unread, live.objects, &mut verification),
                Err(e) => {
                    // Unverified is not success: say so.
                    let message = format!("observing after the sync: {e}");
                    failure.fail(report, Phase::Verify, None, message, Some(e.into()));
                    report.status = SyncStatus::ObserveFailed;
                    report.plan = Some(plan);
                    return;
                }
            }
        }
        verification.not_converged.sort_unstable();
        report.not_converged = verification
            .not_converged
            .iter()
            .map(|&i| plan.steps[i].key.clone())
            .collect();
        self.keep_in_sync(verification.in_sync);
        report.status = if !report.not_converged.is_empty() {
            failure.set(Phase::Verify, None);
            SyncStatus::NotConverged
        } else if plan.steps.is_empty() {
            SyncStatus::UpToDate
        } else {
            SyncStatus::Synced
        };
        report.plan = Some(plan);
    }

    /// Verifies the applied steps whose stored objects are held.
    fn verify_applied(&self, desired: &DesiredState, plan: &Plan, verification: &mut Verification) {
        if verification.applied.is_empty() {
            return;
        }
        let (steps, live): (Vec<usize>, BTreeMap<ObjectKey, serde_json::Value>) = verification
            .applied
            .drain(..)
            .map(|(i, stored)| (i, (plan.steps[i].key.clone(), stored)))
            .unzip();
        self.verify(desired, plan, &steps, live, verification);
    }

    /// Plans the applied `steps` again against what the runtime stored of
    /// them (`live`), without the fields it is known to drop: a step the
    /// plan still has did not converge; an object it finds unchanged is
    /// recorded in sync once the sync succeeds.
    fn verify(
        &self,
        desired: &DesiredState,
        plan: &Plan,
        steps: &[usize],
        live: BTreeMap<ObjectKey, serde_json::Value>,
        verification: &mut Verification,
    ) {
        let index: BTreeMap<&ObjectKey, usize> =
            steps.iter().map(|&i| (&plan.steps[i].key, i)).collect();
        // The part of `desired` these steps apply, with every CRD (whose
        // schemas say how custom resources compare); a CRD with a step here
        // is met twice, and the second insert is refused.
        let mut stepped = DesiredState::new(desired.revision().cloned());
        stepped.set_kinds(desired.kinds().clone());
        for d in verification.crds.iter().filter_map(|k| desired.get(k)) {
            let _ = stepped.insert(d.clone());
        }
        for d in index.keys().filter_map(|k| desired.get(k)) {
            let _ = stepped.insert(d.clone());
        }
        let stepped = self.without_dropped(Arc::new(stepped));
        // The inventory recorded, of which only the entries of the objects
        // verified matter to this plan: it prunes only what is inventoried
        // and live.
        let mut inventory = Inventory::new(self.config.owner().clone());
        inventory.objects = Arc::new(
            index
                .keys()
                .filter_map(|k| plan.next_inventory.get_key_value(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        );
        let mut live = LiveState {
            objects: live,
            inventory: Some(inventory),
            ..LiveState::default()
        };
        // The CRDs without a step here are in sync, or verified with theirs.
        live.in_sync = verification
            .crds
            .iter()
            .filter(|k| !index.contains_key(k))
            .cloned()
            .collect();
        let again = crate::plan::plan(&stepped, &live, &self.config.plan);
        verification.not_converged.extend(
            residual(&again, &live)
                .iter()
                .filter_map(|k| index.get(k).copied()),
        );
        verification
            .in_sync
            .extend(in_sync_records(&stepped, &again.unchanged, &live));
    }

    /// Runs one step, recording its outcome and duration in `record`.
    async fn run_step(
        &self,
        step: &crate::plan::Step,
        apply: &ApplyOptions,
        delete: &DeleteOptions,
        record: &mut StepReport,
    ) -> Result<Option<serde_json::Value>, TargetError> {
        let t = Instant::now();
        let result = match (&step.action, &step.object) {
            (Action::Delete, _) => self.delete_checked(step, delete).await.map(|_| None),
            (_, Some(object)) => self.target.apply(object, apply).await.map(Some),
            (_, None) => Ok(None),
        };
        record.duration_ms = ms(t.elapsed());
        match &result {
            Ok(_) => record.outcome = StepOutcome::Done,
            Err(e) => {
                record.outcome = StepOutcome::Failed;
                record.error = Some(e.to_string());
            }
        }
        result
    }

    /// Sends `steps` of the plan as server-side dry runs; marks the refused
    /// ones in the report. With `defer`, a step refused for lacking a
    /// Namespace or CRD that the plan creates is not refused but deferred.
    async fn preflight(
        &self,
        plan: &Plan,
        steps: &[usize],
        defer: bool,
        report: &mut SyncReport,
    ) -> Checked {
        let apply = self.config.apply_options(true);
        let delete = self.config.delete_options(true);
        let mut checked = Checked::default();
        let mut index = None;
        for &i in steps {
            let step = &plan.steps[i];
            let result = match (&step.action, &step.object) {
                (Action::Delete, _) => self.target.delete(&step.key, &delete).await.map(|_| ()),
                (_, Some(object)) => self.target.apply(object, &apply).await.map(|_| ()),
                (_, None) => Ok(()),
            };
            if let Err(e) = result {
                let needs = if defer {
                    let index = index.get_or_insert_with(|| Enablers::new(plan));
                    enablers(plan, index, i, &e)
                } else {
                    Vec::new()
                };
                match needs.is_empty() {
                    false => {
                        checked.deferred.insert(i, needs);
                    }
                    true => {
                        mark_refused(&mut report.steps[i], &e);
                        checked.refused.push((i, e));
                    }
                }
            }
        }
        checked
    }

    /// Forgets the dropped fields of objects whose manifest changed or that
    /// are no longer declared.
    fn forget_stale_dropped(&self, desired: &DesiredState) {
        lock(&self.dropped).retain(|key, record| {
            desired
                .get(key)
                .is_some_and(|d| d.object.as_value() == &record.manifest)
        });
    }

    /// The desired state without the fields the runtime is known to drop
    /// (for objects whose manifest is the one they were recorded for).
    fn without_dropped(&self, mut desired: Arc<DesiredState>) -> Arc<DesiredState> {
        let records = lock(&self.dropped);
        let lists = self.config.plan.diff.lists.as_ref();
        for (key, record) in records.iter() {
            let Some(d) = desired.get(key) else { continue };
            if d.object.as_value() != &record.manifest {
                continue; // stripped already, or another manifest
            }
            let mut value = record.manifest.clone();
            dropped::strip(&mut value, &record.fields, lists);
            let Ok(object) = Object::new(value) else {
                continue; // stripping made it invalid: compare it whole
            };
            let desired = Arc::make_mut(&mut desired);
            if let Some(mut d) = desired.remove(key) {
                d.object = object;
                // Re-inserting the key just removed cannot collide.
                let _ = desired.insert(d);
            }
        }
        desired
    }

    /// After applying `step`: records the declared fields the runtime did
    /// not keep, and warns about them.
    fn note_dropped(
        &self,
        desired: &DesiredState,
        step: &crate::plan::Step,
        stored: &serde_json::Value,
        record: &mut StepReport,
        warnings: &mut Vec<Warning>,
    ) {
        let (Some(applied), Some(d)) = (&step.object, desired.get(&step.key)) else {
            return;
        };
        let fields = dropped::detect(
            applied.as_value(),
            stored,
            &self.config.plan.field_manager,
            &self.config.plan.diff,
        );
        if fields.is_empty() {
            return;
        }
        // Re-applying fields the runtime drops corrects nothing.
        if let Action::Update { diff: Some(diff) } = &step.action
            && diff
                .changes
                .iter()
                .all(|c| fields.iter().any(|f| c.path.starts_with(f)))
        {
            record.drift = false;
        }
        warnings.push(Warning::DroppedByServer {
            key: step.key.clone(),
            fields: fields.iter().map(ToString::to_string).collect(),
        });
        lock(&self.dropped).insert(
            step.key.clone(),
            dropped::Record {
                manifest: d.object.as_value().clone(),
                fields,
                warned: desired.revision().map(|r| r.id.clone()),
            },
        );
    }

    /// Warns, once per revision, about the fields the runtime drops from
    /// declared objects.
    fn warn_dropped(&self, desired: &DesiredState, report: &mut SyncReport) {
        let revision = desired.revision().map(|r| r.id.clone());
        let mut records = lock(&self.dropped);
        for (key, record) in records.iter_mut() {
            if desired.contains(key) && record.warned != revision {
                record.warned.clone_from(&revision);
                report.warnings.push(Warning::DroppedByServer {
                    key: key.clone(),
                    fields: record.fields.iter().map(ToString::to_string).collect(),
                });
            }
        }
    }

    /// Plans, then asks the runtime what each deletion of the plan would
    /// delete with it ([`Target::dependents`]), and plans again with that
    /// when a deletion cascades: the planner refuses a deletion whose
    /// cascade reaches objects that are not ours, and counts cascaded
    /// deletions in the mass-prune guard.
    ///
    /// `in_sync`: the desired objects known in sync, in key order (see
    /// [`plan_known`](crate::plan::plan_known)).
    async fn plan_with_cascades(
        &self,
        desired: &DesiredState,
        live: &mut LiveState,
        in_sync: &[&ObjectKey],
    ) -> Result<Plan, crate::target::TargetError> {
        let first = plan_known(desired, live, in_sync, &self.config.plan);
        let mut cascades = false;
        for step in &first.steps {
            if matches!(step.action, Action::Delete) {
                let dependents = self.target.dependents(&step.key).await?;
                cascades |= dependents.iter().any(|d| d.key != step.key);
                live.dependents.insert(step.key.clone(), dependents);
            }
        }
        Ok(if cascades {
            plan_known(desired, live, in_sync, &self.config.plan)
        } else {
            first
        })
    }

    /// Deletes a step's object after checking again, right before, that the
    /// runtime's cascade reaches only what the plan said (objects may have
    /// been created in a Namespace since it was planned).
    async fn delete_checked(
        &self,
        step: &crate::plan::Step,
        options: &DeleteOptions,
    ) -> Result<crate::target::DeleteOutcome, crate::target::TargetError> {
        let owner = self.config.owner().as_str();
        let foreign: Vec<String> = self
            .target
            .dependents(&step.key)
            .await?
            .into_iter()
            .filter(|d| {
                d.key != step.key
                    && !(step.cascade.contains(&d.key) && d.owner.as_deref() == Some(owner))
            })
            .map(|d| d.to_string())
            .collect();
        if !foreign.is_empty() {
            return Err(crate::target::TargetError::Other {
                message: format!(
                    "{}: not deleted: deleting it would now also delete objects that are not ours \
                     (created since the plan was made): {}",
                    step.key,
                    foreign.join(", ")
                ),
                source: None,
            });
        }
        self.target.delete(&step.key, options).await
    }

    /// Before the first write: when the plan applies objects the inventory
    /// does not list yet (creates, adoptions), records them (with the
    /// revision last applied) so that if the sync stops midway, or the final
    /// inventory write fails, nothing it created escapes a later prune.
    /// Compare-and-swap on the inventory read for the plan: a concurrent
    /// reconciler of the same owner makes this fail before anything is
    /// applied. Returns the inventory it wrote (`None`: it wrote nothing,
    /// the one read is still stored).
    async fn record_intent(
        &self,
        plan: &Plan,
        inventory: Option<&Inventory>,
    ) -> Result<Option<Inventory>, crate::target::TargetError> {
        let listed = |k: &ObjectKey| inventory.is_some_and(|i| i.contains(k));
        let new = plan
            .steps
            .iter()
            .any(|s| !matches!(s.action, Action::Delete) && !listed(&s.key));
        if !new {
            return Ok(None);
        }
        let mut intent = inventory
            .cloned()
            .unwrap_or_else(|| Inventory::new(self.config.owner().clone()));
        for step in &plan.steps {
            if !matches!(step.action, Action::Delete) && !intent.contains(&step.key) {
                intent
                    .objects_mut()
                    .insert(step.key.clone(), step.api_version.clone());
            }
        }
        intent.version = Some(self.target.write_inventory(&intent).await?);
        Ok(Some(intent))
    }

    /// Writes the inventory at the end of a sync, compare-and-swap over
    /// `stored` (the inventory last read or written), and only when it
    /// records something new: a sync that changes nothing writes nothing.
    ///
    /// When another writer changed the inventory in between, reads it again
    /// and merges into it what this sync applied and deleted, so that nothing
    /// it created escapes a later prune; the sync still fails, as it ran on
    /// a stale view of the runtime.
    async fn record_inventory(
        &self,
        stored_version: Option<String>,
        record: &mut Inventory,
        applied: &[&crate::plan::Step],
        deleted: &BTreeSet<ObjectKey>,
    ) -> Result<(), (String, TargetError)> {
        record.version = stored_version;
        let first = match self.target.write_inventory(record).await {
            Ok(version) => {
                record.version = Some(version);
                return Ok(());
            }
            Err(e @ crate::target::TargetError::InventoryConflict { .. }) => e,
            Err(e) => return Err((format!("recording the inventory: {e}"), e)),
        };
        // Another writer: merge what we did into what it recorded.
        const ATTEMPTS: usize = 3;
        for _ in 0..ATTEMPTS {
            let current = self
                .target
                .read_inventory(&record.owner)
                .await
                .map_err(|e| {
                    let message =
                        format!("recording the inventory: {first}; reading it again: {e}");
                    (message, e)
                })?;
            let mut merged = current.unwrap_or_else(|| Inventory::new(record.owner.clone()));
            let objects = merged.objects_mut();
            for s in applied {
                objects
                    .entry(s.key.clone())
                    .or_insert_with(|| s.api_version.clone());
            }
            objects.retain(|k, _| !deleted.contains(k));
            match self.target.write_inventory(&merged).await {
                Ok(version) => {
                    merged.version = Some(version);
                    *record = merged;
                    let message = format!(
                        "recording the inventory: {first}; what this sync applied was merged \
                         into the other writer's inventory; the next sync converges"
                    );
                    return Err((message, first));
                }
                Err(crate::target::TargetError::InventoryConflict { .. }) => continue,
                Err(e) => {
                    let message = format!("recording the inventory: {first}; merging: {e}");
                    return Err((message, e));
                }
            }
        }
        let message =
            format!("recording the inventory: {first}; still changing after {ATTEMPTS} merges");
        Err((message, first))
    }

    /// Waits until the objects of a wave are healthy; the error is a
    /// message and, when the runtime failed, its error.
    async fn wait_healthy(
        &self,
        plan: &Plan,
        wave: i64,
        wait: &HealthWait,
    ) -> Result<(), (String, Option<TargetError>)> {
        let keys: BTreeSet<ObjectKey> = plan
            .steps
            .iter()
            .filter(|s| s.wave == wave && !matches!(s.action, Action::Delete))
            .map(|s| s.key.clone())
            .collect();
        // `None`: a timeout too long to represent, i.e. wait forever.
        let deadline = Instant::now().checked_add(wait.timeout);
        loop {
            let live = self
                .target
                .observe(&ObserveRequest {
                    keys: keys.clone(),
                    owner: None,
                })
                .await
                .map_err(|e| (format!("observing wave {wave} for health: {e}"), Some(e)))?;
            let mut pending = Vec::new();
            for k in &keys {
                let h = health::assess(k, live.get(k));
                match h.status {
                    HealthStatus::Healthy | HealthStatus::Unknown => {}
                    HealthStatus::Degraded => {
                        return Err((format!("wave {wave}: {k} is degraded: {}", h.reason), None));
                    }
                    _ => pending.push(format!("{k} ({}: {})", h.status, h.reason)),
                }
            }
            if pending.is_empty() {
                return Ok(());
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err((
                    format!(
                        "wave {wave} not healthy after {:?}: {}",
                        wait.timeout,
                        pending.join(", ")
                    ),
                    None,
                ));
            }
            Delay::new(wait.interval).await;
        }
    }
}

/// The in-sync records of the `unchanged` objects a plan read in `live`:
/// each desired manifest with the version of the live object it matched.
fn in_sync_records(
    desired: &DesiredState,
    unchanged: &[ObjectKey],
    live: &LiveState,
) -> Vec<(ObjectKey, InSync)> {
    // Those known in sync were not read: nothing new to record. Only the
    // unchanged objects that were read are, found from the side that is
    // smaller (the plan lists the unchanged keys in key order).
    let read: Vec<(&ObjectKey, &serde_json::Value)> =
        if live.objects.len().saturating_mul(16) < unchanged.len() {
            live.objects
                .iter()
                .filter_map(|(k, l)| {
                    let i = unchanged.binary_search(k).ok()?;
                    Some((&unchanged[i], l))
                })
                .collect()
        } else {
            unchanged
                .iter()
                .filter_map(|k| Some((k, live.objects.get(k)?)))
                .collect()
        };
    let mut new = Vec::new();
    for (k, l) in read {
        let Some(d) = desired.get(k) else {
            continue;
        };
        if let Some(version) = l
            .get("metadata")
            .and_then(|m| m.get("resourceVersion"))
            .and_then(serde_json::Value::as_str)
        {
            let record = InSync {
                object: d.object.clone(),
                version: version.to_owned(),
            };
            new.push((k.clone(), record));
        }
    }
    new
}

/// What a plan made after a sync still wants to do: creates and updates,
/// and deletions of objects not already being deleted.
fn residual(plan: &Plan, live: &LiveState) -> Vec<ObjectKey> {
    plan.steps
        .iter()
        .filter(|s| match s.action {
            Action::Delete => live
                .get(&s.key)
                .is_some_and(|l| l.pointer("/metadata/deletionTimestamp").is_none()),
            _ => true,
        })
        .map(|s| s.key.clone())
        .collect()
}

fn lock<X>(m: &Mutex<X>) -> std::sync::MutexGuard<'_, X> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a server-side dry run of some steps found.
#[derive(Debug, Default)]
struct Checked {
    /// Steps the runtime refused, with its answer, in plan order.
    refused: Vec<(usize, TargetError)>,
    /// Steps that cannot be validated yet, each with the steps that create
    /// the Namespace and CRD it needs.
    deferred: BTreeMap<usize, Vec<usize>>,
}

/// When step `i` was refused for lacking its Namespace or the CRD of its
/// kind and the plan creates that: the steps of the plan that create its
/// Namespace and its CRD (a runtime reports one missing thing at a time;
/// the object can be validated once both exist). Otherwise nothing.
fn enablers(plan: &Plan, index: &Enablers, i: usize, error: &TargetError) -> Vec<usize> {
    let key = &plan.steps[i].key;
    let namespace = key
        .namespace
        .as_deref()
        .and_then(|ns| index.namespaces.get(ns).copied());
    let crd = index.crds.get(&key.group_kind()).copied();
    let explained = match error {
        TargetError::NamespaceNotFound { namespace: ns, .. } => {
            namespace.is_some() && key.namespace.as_deref() == Some(ns.as_str())
        }
        TargetError::UnknownKind { .. } => crd.is_some(),
        _ => false,
    };
    if !explained {
        return Vec::new();
    }
    namespace
        .into_iter()
        .chain(crd)
        .filter(|j| *j != i)
        .collect()
}

/// The steps of a plan that create what other steps may lack: the first
/// applying step of each Namespace, by name, and of each CRD, by the kind
/// it defines. Built once per preflight, so that finding the enablers of
/// every refused step stays linear.
struct Enablers {
    namespaces: BTreeMap<String, usize>,
    crds: BTreeMap<crate::key::GroupKind, usize>,
}

impl Enablers {
    fn new(plan: &Plan) -> Self {
        let mut index = Self {
            namespaces: BTreeMap::new(),
            crds: BTreeMap::new(),
        };
        for (j, s) in plan.steps.iter().enumerate() {
            if matches!(s.action, Action::Delete) {
                continue;
            }
            if s.key.is("", "Namespace") && s.key.namespace.is_none() {
                index.namespaces.entry(s.key.name.clone()).or_insert(j);
            } else if s.key.is("apiextensions.k8s.io", "CustomResourceDefinition")
                && let Some((gk, _, _)) = s
                    .object
                    .as_ref()
                    .and_then(|o| crate::scope::crd_kind(o).ok())
            {
                index.crds.entry(gk).or_insert(j);
            }
        }
        index
    }
}

fn mark_refused(record: &mut StepReport, error: &TargetError) {
    record.outcome = StepOutcome::Refused;
    record.error = Some(error.to_string());
}

/// Lists every refusal in the report's errors, with a summary first.
fn report_refusals(plan: &Plan, refused: &[(usize, TargetError)], report: &mut SyncReport) {
    let written = report
        .steps
        .iter()
        .filter(|s| s.outcome == StepOutcome::Done)
        .count();
    let summary = if written == 0 {
        format!(
            "the runtime refused {} of {} steps in a server-side dry run; nothing was applied",
            refused.len(),
            plan.steps.len()
        )
    } else {
        format!(
            "the runtime refused {} of {} steps in a server-side dry run; only the {written} \
             Namespaces and CRDs they needed were applied",
            refused.len(),
            plan.steps.len()
        )
    };
    report
        .errors
        .push(SyncError::new(Phase::Preflight, summary));
    for (i, e) in refused {
        let message = format!(
            "dry run refused {} {}: {e}",
            report.steps[*i].action, plan.steps[*i].key
        );
        report.errors.push(
            SyncError::new(Phase::Preflight, message)
                .key(plan.steps[*i].key.clone())
                .transient(e.is_transient()),
        );
    }
}

/// Fields the runtime does not keep.
mod dropped {
    use gitops_diff::{DiffOptions, FieldPath, GroupKind, ListSemantics, Op};
    use serde_json::Value;

    /// The fields the runtime dropped from one object.
    #[derive(Debug)]
    pub(super) struct Record {
        /// The manifest as declared when they were dropped: the record holds
        /// only while the manifest stays the same.
        pub(super) manifest: Value,
        /// The fields dropped (topmost paths).
        pub(super) fields: Vec<FieldPath>,
        /// The revision last warned about them.
        pub(super) warned: Option<String>,
    }

    /// Fields `applied` declares that are absent from `stored`, the object
    /// the runtime returned for our apply of `applied`: what a plan made
    /// right after the apply would add again. Compared as the planner
    /// compares (a Secret's `stringData` folded into `data`, defaults and
    /// formats of the server, ignore rules), so only fields the runtime did
    /// not keep remain. `managedFields` does not decide it:
    /// kube-apiserver 1.20 records `spec.ipFamilies` as owned by the
    /// applier while dropping it from the Service.
    pub(super) fn detect(
        applied: &Value,
        stored: &Value,
        manager: &str,
        options: &DiffOptions,
    ) -> Vec<FieldPath> {
        let owned = gitops_diff::owned_by(stored, manager).ok().flatten();
        let Ok(diff) = gitops_diff::compare(applied, stored, owned.as_ref(), options) else {
            return Vec::new();
        };
        diff.changes
            .into_iter()
            .filter(|c| c.op == Op::Add)
            .map(|c| c.path)
            .collect()
    }

    /// Removes `fields` from a manifest.
    pub(super) fn strip(value: &mut Value, fields: &[FieldPath], lists: &dyn ListSemantics) {
        let gk = GroupKind::of(value);
        let mut pointers: Vec<String> = fields
            .iter()
            .filter_map(|f| gitops_diff::resolve(value, f, lists, &gk).map(|(p, _)| p))
            .collect();
        // Deepest and last first, so list indices stay valid.
        pointers.sort();
        for p in pointers.iter().rev() {
            gitops_diff::remove_pointer(value, p);
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use gitops_diff::BuiltinLists;
        use serde_json::json;

        fn service(spec: Value) -> Value {
            json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "s", "namespace": "n"}, "spec": spec})
        }

        fn managed(fields: Value) -> Value {
            json!([{
                "manager": "gitops-rs", "operation": "Apply", "apiVersion": "v1",
                "fieldsType": "FieldsV1", "fieldsV1": fields
            }])
        }

        /// What kube-apiserver 1.20 returns for a Service declaring
        /// dual-stack fields: gone from the object, recorded as ours.
        #[test]
        fn declared_fields_absent_from_the_stored_object_are_dropped() {
            let applied = service(json!({
                "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                "ports": [{"port": 80, "protocol": "TCP"}]
            }));
            let mut stored = service(json!({
                "clusterIP": "10.0.0.1", "sessionAffinity": "None",
                "ports": [{"port": 80, "protocol": "TCP"}]
            }));
            stored["metadata"]["managedFields"] = managed(json!({"f:spec": {
                "f:ipFamilies": {}, "f:ipFamilyPolicy": {},
                "f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {
                    ".": {}, "f:port": {}, "f:protocol": {}}}
            }}));
            let found = detect(&applied, &stored, "gitops-rs", &DiffOptions::default());
            let names: Vec<String> = found.iter().map(ToString::to_string).collect();
            assert_eq!(names, ["spec.ipFamilies", "spec.ipFamilyPolicy"]);
            let mut stripped = applied.clone();
            strip(&mut stripped, &found, &BuiltinLists);
            assert_eq!(
                stripped,
                service(json!({"ports": [{"port": 80, "protocol": "TCP"}]}))
            );
        }

        #[test]
        fn what_the_server_stores_differently_is_not_dropped() {
            // `stringData` is stored folded into `data`.
            let applied = json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "s", "namespace": "n"}, "stringData": {"k": "v"}});
            let mut stored = json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "s", "namespace": "n"}, "data": {"k": "dg=="},
                "type": "Opaque"});
            stored["metadata"]["managedFields"] =
                managed(json!({"f:stringData": {".": {}, "f:k": {}}}));
            assert!(detect(&applied, &stored, "gitops-rs", &DiffOptions::default()).is_empty());
            // A value the server changed was kept, not dropped.
            let applied = service(json!({"type": "ClusterIP"}));
            let stored = service(json!({"type": "NodePort"}));
            assert!(detect(&applied, &stored, "gitops-rs", &DiffOptions::default()).is_empty());
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::desired::{DesiredObject, Provenance};

    fn object(kind: &str, ns: Option<&str>, name: &str) -> Object {
        let mut value = serde_json::json!({"apiVersion": "v1", "kind": kind,
            "metadata": {"name": name}});
        if let Some(ns) = ns {
            value["metadata"]["namespace"] = ns.into();
        }
        Object::new(value).unwrap_or_else(|e| panic!("{e}"))
    }

    fn key() -> impl Strategy<Value = ObjectKey> {
        let names = prop::sample::select(vec!["a", "b", "c"]);
        prop_oneof![
            names
                .clone()
                .prop_map(|n| ObjectKey::new("", "Namespace", None, n)),
            (names.clone(), names).prop_map(|(ns, n)| ObjectKey::new("", "ConfigMap", Some(ns), n)),
        ]
    }

    proptest! {
        #[test]
        fn assign_map_makes_equal_maps(
            from in prop::collection::btree_map(key(), prop::sample::select(vec!["v1", "v2"]), 0..10),
            to in prop::collection::btree_map(key(), prop::sample::select(vec!["v1", "v2"]), 0..10),
        ) {
            let owned = |m: &BTreeMap<ObjectKey, &str>| -> BTreeMap<ObjectKey, String> {
                m.iter().map(|(k, v)| (k.clone(), (*v).to_owned())).collect()
            };
            let (mut map, to) = (owned(&from), owned(&to));
            crate::target::assign_map(&mut map, &to);
            prop_assert_eq!(map, to);
        }

        /// The observe keys built without the in-sync ones are those of
        /// `observe_keys`, less the in-sync ones.
        #[test]
        fn observe_keys_except_is_observe_keys_less_the_in_sync(
            declared in prop::collection::btree_set(key(), 0..12),
            inventoried in prop::collection::btree_set(key(), 0..12),
            in_sync_mask in prop::collection::vec(any::<bool>(), 12),
            with_inventory in any::<bool>(),
        ) {
            let mut desired = DesiredState::new(None);
            for k in &declared {
                let o = object(&k.kind, k.namespace.as_deref(), &k.name);
                let _ = desired.insert(DesiredObject { object: o, provenance: Provenance::new("f", 0) });
            }
            let mut inventory = Inventory::new(OwnerId::new("o").unwrap_or_else(|e| panic!("{e}")));
            inventory.objects = Arc::new(inventoried.iter().map(|k| (k.clone(), "v1".to_owned())).collect());
            let inventory = with_inventory.then_some(&inventory);
            // The desired state's own keys, as the reconciler passes them.
            let in_sync: Vec<&ObjectKey> = desired
                .keys()
                .zip(&in_sync_mask)
                .filter(|(_, s)| **s)
                .map(|(k, _)| k)
                .collect();
            let in_sync_set: BTreeSet<ObjectKey> = in_sync.iter().map(|k| (*k).clone()).collect();
            let want: BTreeSet<ObjectKey> =
                observe_keys(&desired, inventory).difference(&in_sync_set).cloned().collect();
            prop_assert_eq!(observe_keys_except(&desired, inventory, &in_sync), want);
        }
    }
}
