//! The pure core of hermetic GitOps reconciliation: the desired-state model,
//! the [`Source`] and [`Target`] traits, the renderer, the planner, the
//! reconciler and in-memory backends.
//!
//! This crate does no network or process I/O and depends on no async
//! runtime, Git or Kubernetes client: adapters (`gitops-git`, `gitops-kube`)
//! implement its traits.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod audit;
pub mod desired;
pub mod health;
pub mod key;
pub mod object;
pub mod plan;
pub mod policy;
pub mod reconcile;
pub mod render;
pub mod report;
pub mod revision;
pub mod scope;
pub mod snapshot;
pub mod source;
pub mod target;
pub mod time;
pub mod util;
pub mod validate;

pub use desired::{DesiredObject, DesiredState, DuplicateObject, Provenance};
pub use key::{ApiVersionError, GroupKind, GroupVersion, ObjectKey};
pub use object::{Object, ObjectError};
pub use revision::{Person, Revision, SignatureMethod, SignatureVerdict};
pub use scope::{CrdError, KindInfo, KindOrigin, KindRegistry, Scope};
pub use snapshot::{Blob, BlobId, Snapshot, SpecialEntry};
pub use source::{BoxError, Source, SourceError, SourceExt};
pub use target::{
    ApplyOptions, DEFAULT_FIELD_MANAGER, DeleteOptions, DeleteOutcome, Inventory, InvalidOwnerId,
    LiveState, OWNER_LABEL, ObserveRequest, OwnerId, OwnershipConflict, Propagation, Target,
    TargetError, TargetExt,
};

pub mod memory;
#[cfg(feature = "testing")]
pub mod testing;

pub use memory::faults::{Fault, FaultyTarget, Operation};
pub use memory::runtime::MemoryRuntime;
pub use memory::source::MemorySource;
pub use plan::{
    Action, Conflict, PRUNE_ANNOTATION, Plan, PlanOptions, PlanSummary, Refusal, SharedResource,
    Skipped, Step, WAVE_ANNOTATION, plan, shared_resources,
};
pub use audit::{AuditError, AuditSink, JsonLinesAudit, MemoryAudit};
pub use health::{Health, HealthStatus};
pub use policy::{Policy, Violation};
pub use reconcile::{HealthWait, ReconcileError, Reconciler, ReconcilerConfig, RevisionVerifier};
pub use report::{RevisionRecord, StepOutcome, StepReport, SyncReport, SyncStatus};
