//! [`RenderStep`]: a pluggable renderer for folders that are not plain
//! manifests (a Kustomize tree, or anything a user supplies).
//!
//! # Contract
//!
//! - A step is pure: it reads only the [`Snapshot`] it is given (no file
//!   system, process or network), so a render stays hermetic.
//! - [`RenderStep::handles`] is cheap and decides by the snapshot alone
//!   (for Kustomize: the folder holds a kustomization file).
//! - [`RenderStep::render`] is deterministic: the same snapshot and folder
//!   give the same objects in the same order, whatever order the snapshot
//!   was filled in. It reports every error it finds, not only the first.

use serde_json::Value;

use crate::Snapshot;
use crate::source::BoxError;

/// Renders one folder of a snapshot into objects.
pub trait RenderStep: Send + Sync + std::fmt::Debug {
    /// A short name for reports and provenance (`"kustomize"`).
    fn name(&self) -> &str;

    /// Whether this step renders the folder `dir` (`""` for the snapshot root).
    fn handles(&self, snapshot: &Snapshot, dir: &str) -> bool;

    /// The objects of `dir`, in the step's output order.
    fn render(&self, snapshot: &Snapshot, dir: &str) -> Result<Vec<Value>, BoxError>;
}
