//! The crate's private error, by meaning, converted into [`SourceError`] at
//! the public surface.

use gitops_core::{SourceError, TreeDefect};

/// What went wrong inside the Git source; every variant maps onto one
/// [`SourceError`] variant of the same meaning.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The repository could not be opened.
    #[error("could not open Git repository at {path}")]
    Open {
        path: String,
        #[source]
        source: gix::Error,
    },
    /// The repository's path does not exist.
    #[error("no Git repository at {path}: the path does not exist")]
    RepositoryNotFound { path: String },
    /// An unknown reference, commit id or object.
    #[error("reference {reference:?} not found")]
    NotFound { reference: String },
    /// A name or abbreviated id that matches more than one thing.
    #[error("reference {reference:?} is ambiguous")]
    Ambiguous {
        reference: String,
        candidates: Vec<String>,
    },
    /// The reference exists but does not lead to a commit (a tag of a tree).
    #[error("reference {reference:?} does not point to a commit")]
    NotACommit { reference: String },
    /// A folder that does not exist in a revision (or is a file).
    #[error("path {path:?} not found in revision {revision}")]
    PathNotFound { path: String, revision: String },
    /// Content that breaks a rule of the source.
    #[error("{path}: {reason}")]
    Refused { path: String, reason: String },
    /// A tree object that `git fsck` reports as an error.
    #[error("invalid tree {tree} at {path:?}: entry {entry:?}: {defect}")]
    InvalidTree {
        tree: String,
        path: String,
        entry: String,
        defect: TreeDefect,
    },
    /// Reading the object database failed.
    #[error("could not read {what}")]
    Read {
        what: String,
        #[source]
        source: gix::Error,
    },
    /// Talking to a remote failed.
    #[error("could not fetch {reference:?} from {url}")]
    Fetch {
        url: String,
        reference: String,
        #[source]
        source: gix::Error,
    },
    /// Creating or opening the local mirror failed.
    #[error("could not prepare the mirror at {path}")]
    Mirror {
        path: String,
        #[source]
        source: gix::Error,
    },
}

impl Error {
    /// The error of a tree read under the folder `root` of the repository,
    /// with the path of an [`Error::InvalidTree`] made relative to the
    /// repository's root (it is relative to `root` when listed).
    pub(crate) fn under(self, root: Option<&str>) -> Self {
        match (self, root) {
            (
                Self::InvalidTree {
                    tree,
                    path,
                    entry,
                    defect,
                },
                Some(root),
            ) => Self::InvalidTree {
                tree,
                path: if path.is_empty() {
                    root.to_owned()
                } else {
                    format!("{root}/{path}")
                },
                entry,
                defect,
            },
            (other, _) => other,
        }
    }

    /// A [`Error::Read`] for `what`.
    pub(crate) fn read(what: impl std::fmt::Display) -> impl FnOnce(gix::Error) -> Self {
        let what = what.to_string();
        move |source| Self::Read { what, source }
    }
}

impl From<Error> for SourceError {
    fn from(err: Error) -> Self {
        match err {
            Error::NotFound { reference } => SourceError::NotFound { reference },
            Error::RepositoryNotFound { path } => SourceError::NotFound { reference: path },
            Error::Ambiguous {
                reference,
                candidates,
            } => SourceError::Ambiguous {
                reference,
                candidates,
            },
            Error::PathNotFound { path, revision } => SourceError::PathNotFound { path, revision },
            Error::Refused { path, reason } => SourceError::Refused { path, reason },
            Error::InvalidTree {
                tree,
                path,
                entry,
                defect,
            } => SourceError::InvalidTree {
                tree,
                path,
                entry,
                defect,
            },
            Error::NotACommit { ref reference } => SourceError::Refused {
                path: reference.clone(),
                reason: err.to_string(),
            },
            Error::Open { .. }
            | Error::Read { .. }
            | Error::Fetch { .. }
            | Error::Mirror { .. } => SourceError::Unavailable {
                message: err.to_string(),
                source: Some(Box::new(err)),
            },
        }
    }
}

/// The result of the crate's internal operations.
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;
