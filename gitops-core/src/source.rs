//! The [`Source`] trait: where desired state comes from.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::revision::Revision;
use crate::snapshot::Snapshot;

/// A boxed error from a backend, kept as the cause of a [`SourceError`] or
/// [`crate::TargetError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The error returned by [`Source`] operations, by meaning.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The reference or revision does not exist.
    #[error("reference {reference:?} not found")]
    NotFound {
        /// What was asked for.
        reference: String,
    },
    /// An abbreviated id or name matches more than one object.
    #[error("reference {reference:?} is ambiguous: it matches {candidates:?}")]
    Ambiguous {
        /// What was asked for.
        reference: String,
        /// What it matches.
        candidates: Vec<String>,
    },
    /// A path asked for does not exist in the revision, or is not a folder.
    #[error("path {path:?} not found in revision {revision}")]
    PathNotFound {
        /// The path.
        path: String,
        /// The revision id.
        revision: String,
    },
    /// The content breaks a rule of the source (a symlink when symlinks are
    /// refused, a file over the size limit, ...).
    #[error("{path}: {reason}")]
    Refused {
        /// The file at fault.
        path: String,
        /// Why it was refused.
        reason: String,
    },
    /// The source cannot be reached or read right now (I/O, network).
    #[error("source unavailable: {message}")]
    Unavailable {
        /// What failed.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
    /// Anything else, with its cause.
    #[error("{message}")]
    Other {
        /// What failed.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
}

/// A store of revisions: a Git repository, or an in-memory stand-in.
///
/// # Contract
/// - [`resolve`](Source::resolve) turns a reference (branch, tag, full or
///   abbreviated commit id, `HEAD`) into a [`Revision`]; an unknown one is
///   [`SourceError::NotFound`], an ambiguous one [`SourceError::Ambiguous`].
///   Resolving a commit id always yields the same revision.
/// - [`snapshot`](Source::snapshot) returns the files of a revision, limited
///   to `path` (a folder, relative to the root, `/`-separated) when given;
///   the snapshot's paths are then relative to that folder. The same revision
///   and path always yield an identical snapshot (hermetic: nothing outside
///   the revision's content is read). A missing folder is
///   [`SourceError::PathNotFound`].
/// - [`changed_paths`](Source::changed_paths) lists, sorted and without
///   duplicates, the paths (relative to `path` when given) whose content
///   differs between two revisions, including added and deleted ones.
#[async_trait]
pub trait Source: Send + Sync + fmt::Debug {
    /// Resolves a reference to a revision.
    async fn resolve(&self, reference: &str) -> Result<Revision, SourceError>;

    /// The files of a revision, optionally under a folder.
    async fn snapshot(
        &self,
        revision: &Revision,
        path: Option<&str>,
    ) -> Result<Snapshot, SourceError>;

    /// Paths that differ between two revisions, optionally under a folder.
    async fn changed_paths(
        &self,
        from: &Revision,
        to: &Revision,
        path: Option<&str>,
    ) -> Result<Vec<String>, SourceError>;
}

/// Conveniences on every [`Source`].
#[async_trait]
pub trait SourceExt: Source {
    /// Resolves a reference and snapshots it.
    async fn snapshot_of(
        &self,
        reference: &str,
        path: Option<&str>,
    ) -> Result<Snapshot, SourceError> {
        let revision = self.resolve(reference).await?;
        self.snapshot(&revision, path).await
    }
}

impl<S: Source + ?Sized> SourceExt for S {}

macro_rules! forward_source {
    ($($ty:ty),*) => {$(
        #[async_trait]
        impl<S: Source + ?Sized> Source for $ty {
            async fn resolve(&self, reference: &str) -> Result<Revision, SourceError> {
                (**self).resolve(reference).await
            }
            async fn snapshot(&self, revision: &Revision, path: Option<&str>) -> Result<Snapshot, SourceError> {
                (**self).snapshot(revision, path).await
            }
            async fn changed_paths(&self, from: &Revision, to: &Revision, path: Option<&str>) -> Result<Vec<String>, SourceError> {
                (**self).changed_paths(from, to, path).await
            }
        }
    )*};
}
forward_source!(&S, Box<S>, Arc<S>);
