//! A native, pure Kustomize renderer.
//!
//! [`build()`] renders the kustomization at a directory of a
//! [`gitops_core::Snapshot`] the way `kustomize build` (v5.5) does, reading
//! nothing but the snapshot: no file system, no process, no network. What
//! cannot be hermetic is refused with an error naming the kustomization
//! file and entry: remote resources, Helm charts, plugins and KRM
//! functions, files outside a kustomization's directory (kustomize's
//! default load restrictor) and paths leaving the snapshot.
//!
//! The build follows kustomize's structure: a kustomization accumulates
//! its resources (recursing into bases), runs its generators, adds its
//! components, then runs its transformers in kustomize's fixed order
//! (`patchesStrategicMerge`, `patches`, `namespace`, `namePrefix`,
//! `nameSuffix`, `labels`/`commonLabels`, `commonAnnotations`,
//! `patchesJson6902`, `replicas`, `images`, `replacements`,
//! `transformers`); at the top, generated names get their content hash,
//! name references are fixed, vars resolved and the output sorted. Which
//! fields each transformer touches is data (kustomize's default field-spec
//! tables), extended by a kustomization's `configurations:`.
//!
//! [`build_with_origins()`] also tells, for each object, the file it came
//! from and the files that changed it on the way up ([`Origin`]). The
//! [`Kustomize`] renderer (a [`gitops_core::RenderStep`]) memoizes builds,
//! so rendering the next revision rebuilds only what its changes reach.
//! [`LoadScope`] tells which files' bytes a build can read at all, so a
//! reader may leave the rest of a large repository unread.
//!
//! ```
//! use gitops_core::Snapshot;
//! let snap = Snapshot::from_files([
//!     ("base/kustomization.yaml", "resources: [cm.yaml]\n"),
//!     ("base/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n"),
//!     ("dev/kustomization.yaml", "resources: [../base]\nnamePrefix: dev-\n"),
//! ]);
//! let objs = gitops_kustomize::build(&snap, "dev").unwrap();
//! assert_eq!(objs[0]["metadata"]["name"], "dev-c");
//!
//! let built = gitops_kustomize::build_with_origins(&snap, "dev").unwrap();
//! let (_, origin) = &built[0];
//! assert_eq!(origin.path, "base/cm.yaml");
//! assert_eq!(origin.transformed_by, ["dev/kustomization.yaml"]);
//! ```

#![forbid(unsafe_code)]

mod build;
mod cache;
mod error;
mod fieldspec;
mod kustomization;
mod loader;
mod origin;
mod resource;
mod selector;
mod sort;
mod tables;
mod transform;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use gitops_core::Snapshot;
use loader::KUSTOMIZATION_FILE_NAMES;
use serde_json::Value;

pub use cache::CacheStats;
pub use error::{BuildError, Error};
pub use origin::Origin;

use cache::Cache;
use loader::{Files, ReadState};

/// Whether `dir` of the snapshot holds a kustomization file.
pub fn is_kustomization_dir(snapshot: &Snapshot, dir: &str) -> bool {
    let dir = dir.trim_matches('/');
    KUSTOMIZATION_FILE_NAMES
        .iter()
        .any(|n| loader::join(dir, n).is_some_and(|p| snapshot.get(&p).is_some()))
}

/// The files of a tree whose bytes a build may read, whatever its root:
/// those at or under a folder holding a kustomization file.
///
/// Kustomize's load restrictor confines a kustomization to its own
/// folder's subtree (its resources, patches, generator and configuration
/// files), and a folder it names as a resource or component must hold a
/// kustomization itself. Of any other file a build only asks whether it
/// exists, to report it (a file outside the kustomization's root, a folder
/// without a kustomization). So a reader filling a snapshot for builds may
/// leave the bytes of the files out of scope unread, as long as it keeps
/// their paths: the objects and errors are the same.
///
/// ```
/// let paths = ["app/kustomization.yaml", "app/cm.yaml", "app/sub/x.yaml", "src/main.go"];
/// let scope = gitops_kustomize::LoadScope::new(paths);
/// assert!(scope.contains("app/cm.yaml") && scope.contains("app/sub/x.yaml"));
/// assert!(!scope.contains("src/main.go"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct LoadScope {
    /// The folders holding a kustomization file (`""`: the tree's root).
    dirs: HashSet<String>,
}

impl LoadScope {
    /// The scope of a tree, from the paths of all its regular files (`/`
    /// separated, relative to the tree's root).
    pub fn new<'a>(files: impl IntoIterator<Item = &'a str>) -> Self {
        let dirs = files
            .into_iter()
            .filter_map(|p| {
                let (dir, name) = p.rsplit_once('/').unwrap_or(("", p));
                KUSTOMIZATION_FILE_NAMES
                    .contains(&name)
                    .then(|| dir.to_owned())
            })
            .collect();
        Self { dirs }
    }

    /// Whether a build may read the bytes of the file at `path`: some
    /// folder above it holds a kustomization file.
    pub fn contains(&self, path: &str) -> bool {
        self.dirs.contains("")
            || path
                .match_indices('/')
                .any(|(i, _)| path.get(..i).is_some_and(|d| self.dirs.contains(d)))
    }
}

/// Builds the kustomization at `root` (a directory of the snapshot, `""`
/// for its root) into objects, in kustomize's output order.
///
/// All errors of the build are reported together.
pub fn build(snapshot: &Snapshot, root: &str) -> Result<Vec<Value>, BuildError> {
    Ok(build_with_origins(snapshot, root)?
        .into_iter()
        .map(|(v, _)| v)
        .collect())
}

/// Like [`build()`], with the [`Origin`] of each object: the file it came
/// from and the files that changed it. The objects are the same as
/// [`build()`]'s.
pub fn build_with_origins(
    snapshot: &Snapshot,
    root: &str,
) -> Result<Vec<(Value, Origin)>, BuildError> {
    run(snapshot, root, None)
}

fn run(
    snapshot: &Snapshot,
    root: &str,
    cache: Option<&Mutex<Cache>>,
) -> Result<Vec<(Value, Origin)>, BuildError> {
    let root = loader::join("", root.trim_matches('/')).unwrap_or_default();
    let state = if cache.is_some() {
        ReadState::recording()
    } else {
        ReadState::default()
    };
    let mut b = build::Builder::new(Files::new(snapshot, &state), cache);
    let out = b.build(&root);
    if b.errors.is_empty() {
        Ok(out)
    } else {
        Err(BuildError { errors: b.errors })
    }
}

/// The Kustomize renderer as a [`gitops_core::RenderStep`]: it handles
/// folders holding a kustomization file.
///
/// It memoizes its builds: each kustomization directory's result (and each
/// root's output) is kept with the trace of the snapshot reads that made it
/// (every file looked up, with its blob id or its absence) and reused while
/// those reads give the same answers. So after a commit that changes one
/// overlay's file, rendering every overlay again rebuilds that overlay
/// only: unchanged bases and the other overlays are reused. The output is
/// the same as [`build_with_origins()`]'s, with or without the cache.
/// Results are kept for the snapshot being rendered and the previous one.
/// Clones share the cache.
#[derive(Clone, Debug, Default)]
pub struct Kustomize {
    cache: Arc<Mutex<Cache>>,
}

impl Kustomize {
    /// The renderer, with an empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds `root` like [`build_with_origins()`], through the cache.
    pub fn build_with_origins(
        &self,
        snapshot: &Snapshot,
        root: &str,
    ) -> Result<Vec<(Value, Origin)>, BuildError> {
        self.lock().begin(snapshot);
        run(snapshot, root, Some(&self.cache))
    }

    /// The cache's counters.
    pub fn cache_stats(&self) -> CacheStats {
        self.lock().stats()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl gitops_core::RenderStep for Kustomize {
    fn name(&self) -> &str {
        "kustomize"
    }

    fn handles(&self, snapshot: &Snapshot, dir: &str) -> bool {
        is_kustomization_dir(snapshot, dir)
    }

    /// The objects with their provenance: the file (document, `List`
    /// item) each came from, or the kustomization file holding its
    /// generator, and as `via` the files that changed it ([`Origin`]).
    fn render(
        &self,
        snapshot: &Snapshot,
        dir: &str,
    ) -> Result<Vec<gitops_core::StepObject>, gitops_core::BoxError> {
        let built = self
            .build_with_origins(snapshot, dir)
            .map_err(|e| Box::new(e) as gitops_core::BoxError)?;
        Ok(built
            .into_iter()
            .map(|(value, origin)| {
                let provenance = gitops_core::Provenance::new(origin.path, origin.document)
                    .with_item(origin.item)
                    .with_via(origin.transformed_by);
                gitops_core::StepObject::new(value, provenance)
            })
            .collect())
    }
}

#[cfg(test)]
mod step_tests {
    use gitops_core::RenderStep;

    use super::*;

    #[test]
    fn kustomize_is_a_render_step() {
        let snap = Snapshot::from_files([
            (
                "k/kustomization.yaml",
                "resources: [c.yaml]\nnamePrefix: p-\n",
            ),
            (
                "k/c.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
            ),
            (
                "plain/c.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
            ),
        ]);
        let step: &dyn RenderStep = &Kustomize::new();
        assert!(step.handles(&snap, "k"));
        assert!(!step.handles(&snap, "plain"));
        let built = step.render(&snap, "k").unwrap_or_default();
        assert_eq!(built.len(), 1);
        assert_eq!(built[0].provenance.path, "k/c.yaml");
        assert_eq!(built[0].provenance.via, ["k/kustomization.yaml"]);
        assert!(step.render(&snap, "plain").is_err());
    }
}
