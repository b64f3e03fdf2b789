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
//! - Each object carries its [`Provenance`]: the file it was declared in
//!   (snapshot-relative) and, in [`Provenance::via`], the files that
//!   changed it on the way (overlays, patches).
//!
//! A [`Renderer`](super::Renderer) given steps
//! ([`Renderer::with_step`](super::Renderer::with_step)) hands each folder
//! a step handles to it (the top-most such folder; its files are not read
//! as plain manifests), validates what the step returns like any manifest
//! (known kind, scope, namespace defaulting, duplicate objects across
//! folders) and renders the other files as plain manifests.
//!
//! ```
//! use std::sync::Arc;
//! use gitops_core::{BoxError, Provenance, RenderOptions, RenderStep, Renderer, Snapshot, StepObject};
//! use serde_json::json;
//!
//! /// Renders a folder holding `replicas.txt` into one ConfigMap.
//! #[derive(Debug)]
//! struct Counter;
//! impl RenderStep for Counter {
//!     fn name(&self) -> &str { "counter" }
//!     fn handles(&self, snapshot: &Snapshot, dir: &str) -> bool {
//!         snapshot.get(&format!("{dir}/replicas.txt")).is_some()
//!     }
//!     fn render(&self, snapshot: &Snapshot, dir: &str) -> Result<Vec<StepObject>, BoxError> {
//!         let path = format!("{dir}/replicas.txt");
//!         let text = std::str::from_utf8(&snapshot.get(&path).ok_or("missing")?.data)?;
//!         let value = json!({"apiVersion": "v1", "kind": "ConfigMap",
//!                            "metadata": {"name": dir}, "data": {"n": text.trim()}});
//!         Ok(vec![StepObject::new(value, Provenance::new(path, 0))])
//!     }
//! }
//!
//! let snapshot = Snapshot::from_files([
//!     ("web/replicas.txt", "3\n"),
//!     ("plain.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain}\n"),
//! ]);
//! let mut renderer = Renderer::new(RenderOptions::default()).unwrap().with_step(Arc::new(Counter));
//! let desired = renderer.render(&snapshot).unwrap();
//! let names: Vec<String> = desired.keys().map(|k| k.to_string()).collect();
//! assert_eq!(names, ["ConfigMap/default/plain", "ConfigMap/default/web"]);
//! ```

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::Snapshot;
use crate::desired::Provenance;
use crate::source::BoxError;

/// Renders one folder of a snapshot into objects.
pub trait RenderStep: Send + Sync + fmt::Debug {
    /// A short name for reports and provenance (`"kustomize"`).
    fn name(&self) -> &str;

    /// Whether this step renders the folder `dir` (`""` for the snapshot root).
    fn handles(&self, snapshot: &Snapshot, dir: &str) -> bool;

    /// The objects of `dir`, in the step's output order.
    fn render(&self, snapshot: &Snapshot, dir: &str) -> Result<Vec<StepObject>, BoxError>;
}

/// One object a [`RenderStep`] produced, with where it came from.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct StepObject {
    /// The manifest, validated by the renderer like a file's document.
    pub value: Value,
    /// The file it was declared in and the files that changed it
    /// ([`Provenance::via`]); the renderer sets [`Provenance::renderer`].
    pub provenance: Provenance,
}

impl StepObject {
    /// An object declared at `provenance`.
    pub fn new(value: Value, provenance: Provenance) -> Self {
        Self { value, provenance }
    }
}

/// How a snapshot's folders are rendered ([`RenderOptions::rendering`](super::RenderOptions::rendering)).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rendering {
    /// Each top-most folder a registered step handles is rendered by that
    /// step (the first registered one that handles it); the other files as
    /// plain manifests. A folder holding a Kustomize file that no step
    /// handles is an error
    /// ([`RenderError::Unhandled`](super::RenderError::Unhandled)): read as
    /// plain manifests, its patches would deploy as objects.
    #[default]
    Auto,
    /// Every file is a plain manifest; steps are not used and Kustomize
    /// files are skipped (the behaviour of a renderer without steps before
    /// steps existed).
    Plain,
    /// The rendered folder must be handled by the step of this name, which
    /// renders all of it
    /// ([`RenderError::Unhandled`](super::RenderError::Unhandled) otherwise).
    Step(String),
}

impl fmt::Display for Rendering {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Plain => f.write_str("plain"),
            Self::Step(name) => write!(f, "{}", gitops_diff::escape::escaped(name)),
        }
    }
}

/// The error a [`RenderStep`] returned, shared so that a
/// [`RenderError`](super::RenderError) stays `Clone`; it compares by its
/// message.
///
/// [`get_ref`](Self::get_ref) gives the step's own error type back
/// (`downcast_ref::<gitops_kustomize::BuildError>()`).
#[derive(Clone)]
pub struct StepError(Arc<dyn std::error::Error + Send + Sync>);

impl StepError {
    /// Wraps a step's error.
    pub fn new(error: BoxError) -> Self {
        Self(Arc::from(error))
    }

    /// The step's error.
    pub fn get_ref(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl fmt::Debug for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl std::error::Error for StepError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl PartialEq for StepError {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.to_string() == other.0.to_string()
    }
}

impl Eq for StepError {}
