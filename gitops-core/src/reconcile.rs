//! The reconciler: resolve, snapshot, render, check, observe, plan, apply,
//! record, verify.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::audit::AuditSink;
use crate::desired::DesiredState;
use crate::health::{self, HealthStatus};
use crate::key::ObjectKey;
use crate::plan::{Action, Plan, PlanOptions, plan};
use crate::policy::Policy;
use crate::render::{OptionsError, RenderOptions, Renderer};
use crate::report::{RevisionRecord, StepOutcome, StepReport, SyncReport, SyncStatus};
use crate::revision::{Revision, SignatureVerdict};
use crate::source::Source;
use crate::target::{
    ApplyOptions, DeleteOptions, Inventory, LiveState, ObserveRequest, OwnerId, Target,
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
pub struct HealthWait {
    /// Give up (the sync fails) after this long for one wave
    /// (`Duration::MAX`: never).
    pub timeout: Duration,
    /// Time between two observations.
    pub interval: Duration,
}

/// How a [`Reconciler`] works.
#[derive(Clone, Debug)]
pub struct ReconcilerConfig {
    /// Folder of the repository to render (`None`: the whole tree).
    pub path: Option<String>,
    /// Rendering options.
    pub render: RenderOptions,
    /// Planning options (the owner among them).
    pub plan: PlanOptions,
    /// Apply options. `force` defaults to `true`: a field someone changed by
    /// hand is taken back (drift is corrected), as Flux does.
    pub apply: ApplyOptions,
    /// Delete options.
    pub delete: DeleteOptions,
    /// The policy checked before anything is applied.
    pub policy: Policy,
    /// Plan only; apply nothing.
    pub dry_run: bool,
    /// Wait for the objects of each wave to be healthy before the next.
    pub wait_for_health: Option<HealthWait>,
}

impl ReconcilerConfig {
    /// Defaults for an owner.
    pub fn new(owner: OwnerId) -> Self {
        let plan = PlanOptions::new(owner);
        Self {
            path: None,
            render: RenderOptions::default(),
            apply: ApplyOptions {
                field_manager: plan.field_manager.clone(),
                force: true,
                dry_run: false,
            },
            plan,
            delete: DeleteOptions::default(),
            policy: Policy::default(),
            dry_run: false,
            wait_for_health: None,
        }
    }

    /// The owner.
    pub fn owner(&self) -> &OwnerId {
        &self.plan.owner
    }
}

/// A sync that did not reach the desired state. The report says how far it
/// got; it has been recorded by the audit sink.
#[derive(Debug, thiserror::Error)]
#[error("{report}")]
pub struct ReconcileError {
    /// What happened.
    pub report: Box<SyncReport>,
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
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl<S: Source, T: Target> Reconciler<S, T> {
    /// A reconciler; fails only if the render options are invalid.
    pub fn new(source: S, target: T, config: ReconcilerConfig) -> Result<Self, OptionsError> {
        let renderer = Renderer::new(config.render.clone())?;
        Ok(Self {
            source,
            target,
            config,
            renderer: Mutex::new(renderer),
            audit: None,
            verifier: None,
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
    pub async fn plan(&self, reference: &str) -> Result<(DesiredState, Plan), ReconcileError> {
        let mut report = SyncReport::start(self.config.owner().as_str());
        let t0 = Instant::now();
        match self.prepare(reference, &mut report).await {
            Some((desired, plan, _)) => Ok((desired, plan)),
            None => {
                report.duration_ms = ms(t0.elapsed());
                Err(ReconcileError {
                    report: Box::new(report),
                })
            }
        }
    }

    /// Everything up to the plan; `None` (with the report filled) when the
    /// sync cannot go on.
    async fn prepare(
        &self,
        reference: &str,
        report: &mut SyncReport,
    ) -> Option<(DesiredState, Plan, Option<Inventory>)> {
        let owner = self.config.owner().clone();
        let mut revision = match self.source.resolve(reference).await {
            Ok(r) => r,
            Err(e) => {
                report.status = SyncStatus::SourceFailed;
                report.errors.push(format!("resolving {reference:?}: {e}"));
                return None;
            }
        };
        let inventory = match self.target.read_inventory(&owner).await {
            Ok(i) => i,
            Err(e) => {
                report.status = SyncStatus::ObserveFailed;
                report
                    .errors
                    .push(format!("reading the inventory of {owner}: {e}"));
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
        let snapshot = match self
            .source
            .snapshot(&revision, self.config.path.as_deref())
            .await
        {
            Ok(s) => s.with_revision(revision.clone()),
            Err(e) => {
                report.status = SyncStatus::SourceFailed;
                report
                    .errors
                    .push(format!("reading revision {}: {e}", revision.short_id()));
                return None;
            }
        };
        let rendered = self
            .renderer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .render(&snapshot);
        let mut desired = match rendered {
            Ok(d) => d,
            Err(errors) => {
                report.status = SyncStatus::RenderFailed;
                report.errors.extend(errors.iter().map(ToString::to_string));
                return None;
            }
        };
        desired.set_revision(Some(revision.clone()));
        let violations = self.config.policy.check(&desired);
        if !violations.is_empty() {
            report.status = SyncStatus::PolicyViolated;
            report.policy_violations = violations;
            return None;
        }
        let mut keys: BTreeSet<ObjectKey> = desired.keys().cloned().collect();
        if let Some(inv) = &inventory {
            keys.extend(inv.objects.keys().cloned());
        }
        let mut live = match self
            .target
            .observe(&ObserveRequest {
                keys,
                owner: Some(owner.clone()),
            })
            .await
        {
            Ok(l) => l,
            Err(e) => {
                report.status = SyncStatus::ObserveFailed;
                report.errors.push(format!("observing the runtime: {e}"));
                return None;
            }
        };
        live.inventory = inventory.clone();
        let plan = plan(&desired, &live, &self.config.plan);
        report.summary = plan.summary();
        let violations = self.config.policy.check_plan(&plan);
        if !violations.is_empty() {
            report.status = SyncStatus::PolicyViolated;
            report.policy_violations = violations;
            report.plan = Some(plan);
            return None;
        }
        if plan.is_blocked() {
            report.status = SyncStatus::Blocked;
            report
                .errors
                .extend(plan.refusals.iter().map(|r| format!("refused: {r}")));
            report
                .errors
                .extend(plan.conflicts.iter().map(|c| format!("conflict: {c}")));
            report.plan = Some(plan);
            return None;
        }
        Some((desired, plan, inventory))
    }

    /// Which steps correct drift: all of them when the revision is the one
    /// last applied; otherwise those of objects declared in files the new
    /// revision did not change.
    async fn drift_flags(
        &self,
        plan: &Plan,
        desired: &DesiredState,
        previous: Option<&str>,
    ) -> Vec<bool> {
        let Some(previous) = previous else {
            return vec![false; plan.steps.len()];
        };
        let current = desired
            .revision()
            .map(|r| r.id.as_str())
            .unwrap_or_default();
        let unchanged_files: Option<BTreeSet<String>> = if previous == current {
            None
        } else {
            let changed = match (self.source.resolve(previous).await, desired.revision()) {
                (Ok(prev), Some(cur)) => self
                    .source
                    .changed_paths(&prev, cur, self.config.path.as_deref())
                    .await
                    .ok(),
                _ => None,
            };
            let Some(changed) = changed else {
                return vec![false; plan.steps.len()];
            };
            let changed: BTreeSet<String> = changed.into_iter().collect();
            Some(
                desired
                    .iter()
                    .map(|(_, d)| d.provenance.path.clone())
                    .filter(|p| !changed.contains(p))
                    .collect(),
            )
        };
        plan.steps
            .iter()
            .map(|s| match (&s.action, &s.provenance) {
                (Action::Delete, _) => false,
                (_, Some(p)) => unchanged_files.as_ref().is_none_or(|u| u.contains(&p.path)),
                (_, None) => false,
            })
            .collect()
    }

    /// Runs one sync of `reference` and returns its report; the report is
    /// recorded by the audit sink whatever happens.
    ///
    /// A reference that cannot be read, a revision that does not render, a
    /// policy violation, a conflict or a refused guard apply nothing. Steps
    /// run in plan order and stop at the first failure. After the steps the
    /// runtime is observed again and planned against: anything left is
    /// reported as not converged.
    pub async fn reconcile_once(&self, reference: &str) -> Result<SyncReport, ReconcileError> {
        let t0 = Instant::now();
        let mut report = SyncReport::start(self.config.owner().as_str());
        if let Some((desired, plan, inventory)) = self.prepare(reference, &mut report).await {
            self.execute(&desired, plan, inventory, &mut report).await;
        }
        report.duration_ms = ms(t0.elapsed());
        if let Some(sink) = &self.audit
            && let Err(e) = sink.record_async(&report).await
        {
            report.errors.push(format!("audit: {e}"));
            return Err(ReconcileError {
                report: Box::new(report),
            });
        }
        if report.status.is_success() {
            Ok(report)
        } else {
            Err(ReconcileError {
                report: Box::new(report),
            })
        }
    }

    async fn execute(
        &self,
        desired: &DesiredState,
        plan: Plan,
        inventory: Option<Inventory>,
        report: &mut SyncReport,
    ) {
        let drift = self
            .drift_flags(&plan, desired, report.previous_revision.as_deref())
            .await;
        report.steps = plan
            .steps
            .iter()
            .zip(&drift)
            .map(|(s, d)| StepReport::planned(s, *d))
            .collect();
        if self.config.dry_run {
            report.status = SyncStatus::Planned;
            report.plan = Some(plan);
            return;
        }
        // A server-side dry run (the apply or delete options ask for one):
        // every step is sent with dry-run, so the runtime validates it, but
        // nothing is persisted, no inventory is written, and the result is a
        // plan, not a sync.
        let server_dry_run = self.config.apply.dry_run || self.config.delete.dry_run;
        if server_dry_run {
            let apply = ApplyOptions {
                field_manager: self.config.plan.field_manager.clone(),
                dry_run: true,
                ..self.config.apply.clone()
            };
            let delete = DeleteOptions {
                dry_run: true,
                ..self.config.delete.clone()
            };
            for (i, step) in plan.steps.iter().enumerate() {
                if let Err(e) = self
                    .run_step(step, &apply, &delete, &mut report.steps[i])
                    .await
                {
                    report
                        .errors
                        .push(format!("dry run: {} failed: {e}", report.steps[i].action));
                }
            }
            report.status = if report.errors.is_empty() {
                SyncStatus::Planned
            } else {
                SyncStatus::StepFailed
            };
            report.plan = Some(plan);
            return;
        }
        let owner = self.config.owner().clone();
        let apply_options = ApplyOptions {
            field_manager: self.config.plan.field_manager.clone(),
            ..self.config.apply.clone()
        };
        let mut applied: BTreeMap<ObjectKey, String> = BTreeMap::new();
        let mut deleted: BTreeSet<ObjectKey> = BTreeSet::new();
        let mut failed = false;
        for i in 0..plan.steps.len() {
            let step = &plan.steps[i];
            let delete_options = self.config.delete.clone();
            match self
                .run_step(step, &apply_options, &delete_options, &mut report.steps[i])
                .await
            {
                Ok(()) if matches!(step.action, Action::Delete) => {
                    deleted.insert(step.key.clone());
                }
                Ok(()) => {
                    applied.insert(step.key.clone(), step.api_version.clone());
                }
                Err(e) => {
                    report
                        .errors
                        .push(format!("{} failed: {e}", report.steps[i].action));
                    // The runtime may have applied it before the error
                    // reached us (a timeout): keep it inventoried, so a
                    // later prune can still find it (prune also needs our
                    // label, so this never claims anything that isn't ours).
                    if !matches!(step.action, Action::Delete) {
                        applied.insert(step.key.clone(), step.api_version.clone());
                    }
                    failed = true;
                    break;
                }
            }
            let wave_ends = plan
                .steps
                .get(i + 1)
                .is_none_or(|n| n.wave != step.wave || matches!(n.action, Action::Delete));
            if wave_ends
                && !matches!(step.action, Action::Delete)
                && let Some(wait) = &self.config.wait_for_health
                && let Err(e) = self.wait_healthy(&plan, step.wave, wait).await
            {
                report.errors.push(e);
                failed = true;
                break;
            }
        }
        report.drift_corrected = report
            .steps
            .iter()
            .filter(|s| s.drift && s.outcome == StepOutcome::Done)
            .map(|s| s.key.clone())
            .collect();
        // Record what we own: all of the plan's inventory on success;
        // otherwise the old inventory plus what was applied, less what was
        // deleted, so nothing we created escapes a later prune.
        let objects = if failed {
            let mut o = inventory.map(|i| i.objects).unwrap_or_default();
            o.extend(applied);
            o.retain(|k, _| !deleted.contains(k));
            o
        } else {
            plan.next_inventory.clone()
        };
        let revision = if failed {
            report.previous_revision.clone()
        } else {
            desired.revision().map(|r| r.id.clone())
        };
        let record = Inventory {
            owner: owner.clone(),
            revision,
            objects,
        };
        if let Err(e) = self.target.write_inventory(&record).await {
            report.errors.push(format!("recording the inventory: {e}"));
            failed = true;
        }
        if failed {
            report.status = SyncStatus::StepFailed;
            report.plan = Some(plan);
            return;
        }
        // Verify convergence: observe again and plan again.
        let keys: BTreeSet<ObjectKey> = desired
            .keys()
            .cloned()
            .chain(record.objects.keys().cloned())
            .collect();
        match self
            .target
            .observe(&ObserveRequest {
                keys,
                owner: Some(owner),
            })
            .await
        {
            Ok(mut live) => {
                live.inventory = Some(record);
                let again = crate::plan::plan(desired, &live, &self.config.plan);
                report.not_converged = residual(&again, &live);
            }
            Err(e) => {
                // Unverified is not success: say so.
                report.errors.push(format!("observing after the sync: {e}"));
                report.status = SyncStatus::ObserveFailed;
                report.plan = Some(plan);
                return;
            }
        }
        report.status = if !report.not_converged.is_empty() {
            SyncStatus::NotConverged
        } else if plan.steps.is_empty() {
            SyncStatus::UpToDate
        } else {
            SyncStatus::Synced
        };
        report.plan = Some(plan);
    }

    /// Runs one step, recording its outcome and duration in `record`.
    async fn run_step(
        &self,
        step: &crate::plan::Step,
        apply: &ApplyOptions,
        delete: &DeleteOptions,
        record: &mut StepReport,
    ) -> Result<(), crate::target::TargetError> {
        let t = Instant::now();
        let result = match (&step.action, &step.object) {
            (Action::Delete, _) => self.target.delete(&step.key, delete).await.map(|_| ()),
            (_, Some(object)) => self.target.apply(object, apply).await.map(|_| ()),
            (_, None) => Ok(()),
        };
        record.duration_ms = ms(t.elapsed());
        match &result {
            Ok(()) => record.outcome = StepOutcome::Done,
            Err(e) => {
                record.outcome = StepOutcome::Failed;
                record.error = Some(e.to_string());
            }
        }
        result
    }

    async fn wait_healthy(&self, plan: &Plan, wave: i64, wait: &HealthWait) -> Result<(), String> {
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
                .map_err(|e| format!("observing wave {wave} for health: {e}"))?;
            let mut pending = Vec::new();
            for k in &keys {
                let h = health::assess(k, live.get(k));
                match h.status {
                    HealthStatus::Healthy | HealthStatus::Unknown => {}
                    HealthStatus::Degraded => {
                        return Err(format!("wave {wave}: {k} is degraded: {}", h.reason));
                    }
                    _ => pending.push(format!("{k} ({}: {})", h.status, h.reason)),
                }
            }
            if pending.is_empty() {
                return Ok(());
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(format!(
                    "wave {wave} not healthy after {:?}: {}",
                    wait.timeout,
                    pending.join(", ")
                ));
            }
            Delay::new(wait.interval).await;
        }
    }
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
