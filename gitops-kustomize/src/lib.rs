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
//! components, then runs its transformers in the fixed order of
//! [`build::PIPELINE`]; at the top, generated names get their content hash,
//! name references are fixed, vars resolved and the output sorted. Which
//! fields each transformer touches is data ([`fieldspec::TransformerConfig`]),
//! extended by a kustomization's `configurations:`.
//!
//! ```
//! use gitops_core::Snapshot;
//! let snap = Snapshot::from_files([
//!     ("app/kustomization.yaml", "namePrefix: dev-\nresources: [cm.yaml]\n"),
//!     ("app/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n"),
//! ]);
//! let objs = gitops_kustomize::build(&snap, "app").unwrap();
//! assert_eq!(objs[0]["metadata"]["name"], "dev-c");
//! ```

#![forbid(unsafe_code)]

pub mod build;
pub mod error;
pub mod fieldspec;
pub mod kustomization;
pub mod loader;
pub mod resource;
pub mod selector;
pub mod sort;
mod tables;
pub mod transform;

use gitops_core::Snapshot;
use loader::KUSTOMIZATION_FILE_NAMES;
use serde_json::Value;

pub use error::{BuildError, Error};

/// Whether `dir` of the snapshot holds a kustomization file.
pub fn is_kustomization_dir(snapshot: &Snapshot, dir: &str) -> bool {
    let dir = dir.trim_matches('/');
    KUSTOMIZATION_FILE_NAMES
        .iter()
        .any(|n| loader::join(dir, n).is_some_and(|p| snapshot.get(&p).is_some()))
}

/// Builds the kustomization at `root` (a directory of the snapshot, `""`
/// for its root) into objects, in kustomize's output order.
///
/// All errors of the build are reported together.
pub fn build(snapshot: &Snapshot, root: &str) -> Result<Vec<Value>, BuildError> {
    let root = loader::join("", root.trim_matches('/')).unwrap_or_default();
    let mut b = build::Builder::new(loader::Files::new(snapshot));
    let Some(k) = b.load(&root) else {
        return Err(BuildError { errors: b.errors });
    };
    let acc = b.accumulate(&k, build::Acc::default_with_builtin());
    let out = b.finish(&k, acc);
    if b.errors.is_empty() {
        Ok(out)
    } else {
        Err(BuildError { errors: b.errors })
    }
}

/// The Kustomize renderer as a [`gitops_core::RenderStep`]:
/// it handles folders holding a kustomization file.
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct Kustomize;

impl Kustomize {
    /// The renderer.
    pub fn new() -> Self {
        Self
    }
}

impl gitops_core::RenderStep for Kustomize {
    fn name(&self) -> &str {
        "kustomize"
    }

    fn handles(&self, snapshot: &Snapshot, dir: &str) -> bool {
        is_kustomization_dir(snapshot, dir)
    }

    fn render(
        &self,
        snapshot: &Snapshot,
        dir: &str,
    ) -> Result<Vec<gitops_core::StepObject>, gitops_core::BoxError> {
        let objects = build(snapshot, dir).map_err(|e| Box::new(e) as gitops_core::BoxError)?;
        let file = KUSTOMIZATION_FILE_NAMES
            .iter()
            .filter_map(|n| loader::join(dir.trim_matches('/'), n))
            .find(|p| snapshot.get(p).is_some())
            .unwrap_or_default();
        Ok(objects
            .into_iter()
            .enumerate()
            .map(|(i, o)| gitops_core::StepObject::new(o, gitops_core::Provenance::new(&file, i)))
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
            ("k/kustomization.yaml", "resources: [c.yaml]\n"),
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
        let built = step.render(&snap, "k").unwrap();
        assert_eq!(built.len(), 1);
        assert_eq!(built[0].provenance.path, "k/kustomization.yaml");
        assert!(step.render(&snap, "plain").is_err());
    }
}
