//! The pure core of hermetic GitOps reconciliation: the desired-state model,
//! the [`Source`] and [`Target`] traits, the renderer, the planner, the
//! reconciler, policy, health, audit, and in-memory backends.
//!
//! One immutable revision determines everything: a [`Source`] resolves a
//! reference to a [`Revision`] and gives its [`Snapshot`] (files keyed by
//! content id); [`render`](render::render) turns it into a [`DesiredState`]
//! (validated objects with the file, document and line they came from); a
//! [`Target`] is observed; [`plan()`] computes ordered, minimal steps (pure
//! and deterministic); the [`Reconciler`] checks the [`Policy`], applies the
//! steps in order, records the owner's [`Inventory`], verifies convergence
//! and writes a [`SyncReport`] to an [`AuditSink`].
//!
//! ```
//! # futures::executor::block_on(async {
//! use gitops_core::{
//!     ApplyOptions, MemoryRuntime, MemorySource, Object, OwnerId, Reconciler,
//!     ReconcilerConfig, SyncStatus, Target,
//! };
//! use serde_json::json;
//!
//! // An environment repository (in memory here; gitops-git reads real ones).
//! let source = MemorySource::new();
//! source.commit("prod", [
//!     ("shop/namespace.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n"),
//!     ("shop/web.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\n\
//!                        spec:\n  replicas: 2\n  selector: {matchLabels: {app: web}}\n  template:\n    \
//!                        metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: 'nginx:1.27'}]}\n"),
//! ], "Ada", "Launch the shop");
//!
//! // A runtime (in memory here; gitops-kube drives a real cluster).
//! let runtime = MemoryRuntime::new();
//! let config = ReconcilerConfig::new(OwnerId::new("shop-prod").unwrap());
//! let reconciler = Reconciler::new(source, runtime.clone(), config).unwrap();
//!
//! let report = reconciler.reconcile_once("prod").await.unwrap();
//! assert_eq!(report.status, SyncStatus::Synced);
//! assert_eq!(report.summary.create, 2); // the Namespace first, then the Deployment
//!
//! // Someone scales the Deployment by hand: the next sync corrects the drift.
//! let by_hand = Object::new(json!({"apiVersion": "apps/v1", "kind": "Deployment",
//!     "metadata": {"name": "web", "namespace": "shop"}, "spec": {"replicas": 9}})).unwrap();
//! let kubectl = ApplyOptions::new("kubectl").force(true);
//! runtime.apply(&by_hand, &kubectl).await.unwrap();
//! let report = reconciler.reconcile_once("prod").await.unwrap();
//! assert_eq!(report.drift_corrected.len(), 1);
//! assert_eq!(report.steps[0].changes, ["spec.replicas"]);
//! # });
//! ```
//!
//! This crate does no network or process I/O and depends on no async
//! runtime, Git or Kubernetes client: adapters (`gitops-git`,
//! `gitops-kube`) implement its traits. Backends check themselves against
//! the conformance suites in [`testing`] (cargo feature `testing`).
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod audit;
pub mod desired;
pub mod health;
pub mod key;
pub mod object;
mod plan;
pub mod policy;
pub mod reconcile;
mod render;
pub mod report;
pub mod revision;
pub mod scope;
pub mod snapshot;
pub mod source;
pub mod target;
mod time;
mod util;
mod validate;

/// Escaping of user-controlled text in human-readable output (re-exported
/// from gitops-diff, so that every crate built on the core has it).
pub use gitops_diff::escape;

pub use desired::{DesiredObject, DesiredState, DuplicateObject, Provenance};
pub use key::{ApiVersionError, GroupKind, GroupVersion, KeyFields, ObjectKey};
pub use object::{Object, ObjectError};
pub use revision::{Person, Revision, SignatureMethod, SignatureVerdict};
pub use scope::{CrdError, KindInfo, KindOrigin, KindRegistry, Scope};
pub use snapshot::{Blob, BlobId, Snapshot, SpecialEntry};
pub use source::{BoxError, Source, SourceError, SourceExt, TreeDefect};
pub use target::{
    ApplyOptions, DEFAULT_FIELD_MANAGER, DeleteOptions, DeleteOutcome, InvalidOwnerId, Inventory,
    LiveRef, LiveState, OWNER_LABEL, ObserveRequest, OwnerId, OwnershipConflict, Propagation,
    Target, TargetError, TargetExt,
};

pub mod memory;
#[cfg(feature = "proptest")]
pub mod strategies;
#[cfg(feature = "testing")]
pub mod testing;

pub use audit::{AuditError, AuditSink, JsonLinesAudit, MemoryAudit};
pub use health::{Health, HealthStatus};
pub use memory::faults::{Fault, FaultyTarget, Operation};
pub use memory::runtime::MemoryRuntime;
pub use memory::source::MemorySource;
pub use plan::{
    Action, Conflict, PRUNE_ANNOTATION, Plan, PlanOptions, PlanSummary, Refusal, SharedResource,
    Skipped, Step, WAVE_ANNOTATION, kind_rank, observe_keys, plan, shared_resources,
};
pub use policy::{Policy, Violation};
pub use reconcile::{
    Cause, DryRun, HealthWait, ReconcileError, Reconciler, ReconcilerConfig, RevisionVerifier,
};
pub use render::{
    DEFAULT_MAX_EXPANDED_BYTES, DEFAULT_MAX_EXPANSION_RATIO, DEFAULT_MAX_FILE_BYTES, Location,
    MAX_PARSE_THREADS, OptionsError, PARALLEL_PARSE_MIN_BYTES, RenderError, RenderErrors,
    RenderOptions, RenderStats, RenderStep, Renderer, Rendering, SkipReason, SourceFormat,
    StepError, StepObject, render, skip_reason, skip_reason_in,
};
pub use report::{
    Phase, RevisionRecord, StepAction, StepOutcome, StepReport, SyncError, SyncReport, SyncStatus,
    Warning,
};
