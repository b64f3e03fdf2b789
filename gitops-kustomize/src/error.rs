//! Errors of a build: each names the kustomization file and the entry at fault.

use std::fmt;
use std::sync::Arc;

/// One problem found while building a kustomization.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A remote resource (URL, git reference): not hermetic, refused.
    #[error("{file}: `{field}` entry `{entry}`: remote resources are not hermetic and are refused")]
    Remote {
        /// The kustomization file.
        file: String,
        /// The field (`resources`, `components`...).
        field: String,
        /// The entry as written.
        entry: String,
    },
    /// A feature that runs code or fetches data (Helm, exec/container plugins): refused.
    #[error("{file}: `{field}`: {reason}")]
    NotHermetic {
        /// The kustomization file.
        file: String,
        /// The field.
        field: String,
        /// Why it is refused.
        reason: String,
    },
    /// A file outside its kustomization's directory (kustomize's default load restrictor).
    #[error(
        "{file}: `{field}` entry `{entry}`: `{path}` is outside the kustomization root `{root}` (load restrictor: files must be under the root)"
    )]
    OutsideRoot {
        /// The kustomization file.
        file: String,
        /// The field.
        field: String,
        /// The entry as written.
        entry: String,
        /// The resolved path.
        path: String,
        /// The kustomization directory.
        root: String,
    },
    /// A path that leaves the snapshot (`../` beyond its root).
    #[error("{file}: `{field}` entry `{entry}`: the path escapes the snapshot")]
    EscapesSnapshot {
        /// The kustomization file.
        file: String,
        /// The field.
        field: String,
        /// The entry as written.
        entry: String,
    },
    /// An entry that names neither a file nor a directory of the snapshot.
    #[error("{file}: `{field}` entry `{entry}`: `{path}` does not exist in the snapshot")]
    NotFound {
        /// The kustomization file.
        file: String,
        /// The field.
        field: String,
        /// The entry as written.
        entry: String,
        /// The resolved path.
        path: String,
    },
    /// A directory used as a kustomization has no kustomization file.
    #[error(
        "{dir}: no kustomization file (expected one of kustomization.yaml, kustomization.yml, Kustomization)"
    )]
    MissingKustomization {
        /// The directory.
        dir: String,
    },
    /// A directory with more than one kustomization file.
    #[error("{dir}: found multiple kustomization files")]
    MultipleKustomizations {
        /// The directory.
        dir: String,
    },
    /// Kustomizations that include each other.
    #[error(
        "{file}: `{field}` entry `{entry}`: cycle: `{dir}` contains a kustomization being built"
    )]
    Cycle {
        /// The kustomization file.
        file: String,
        /// The field.
        field: String,
        /// The entry as written.
        entry: String,
        /// The directory that closes the cycle.
        dir: String,
    },
    /// A file that is not valid YAML.
    #[error("{file}: invalid YAML: {source}")]
    Yaml {
        /// The file.
        file: String,
        /// The parser's error.
        #[source]
        source: Arc<serde_yaml::Error>,
    },
    /// A field with a value of the wrong shape or an invalid value.
    #[error("{file}: `{field}`: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// The field (and entry).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A patch, replacement or transformer that could not be applied.
    #[error("{file}: `{field}`: {message}")]
    Transform {
        /// The kustomization file.
        file: String,
        /// The field (and entry).
        field: String,
        /// What went wrong.
        message: String,
    },
    /// Two resources with the same id.
    #[error("{file}: may not add resource with an already registered id: {id}")]
    Conflict {
        /// The kustomization file.
        file: String,
        /// The resource id (`group/version/kind namespace/name`).
        id: String,
    },
}

/// All errors of one build (a build reports everything it found, not only the first).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BuildError {
    /// The errors, in the order they were found.
    pub errors: Vec<Error>,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for BuildError {}
