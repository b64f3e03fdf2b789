//! The [`Source`] trait: where desired state comes from.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use gitops_diff::escape::escaped;

use crate::revision::Revision;
use crate::snapshot::Snapshot;

/// A boxed error from a backend, kept as the cause of a [`SourceError`] or
/// [`crate::TargetError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The error returned by [`Source`] operations, by meaning.
///
/// Its `Display` [escapes](gitops_diff::escape) the paths, names and
/// references it quotes, which come from the repository or the caller.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The reference or revision does not exist.
    #[error("reference \"{}\" not found", escaped(.reference))]
    NotFound {
        /// What was asked for.
        reference: String,
    },
    /// An abbreviated id or name matches more than one object.
    #[error("reference \"{}\" is ambiguous: it matches {:?}", escaped(.reference), .candidates)]
    Ambiguous {
        /// What was asked for.
        reference: String,
        /// What it matches.
        candidates: Vec<String>,
    },
    /// A path asked for does not exist in the revision, or is not a folder.
    #[error("path \"{}\" not found in revision {}", escaped(.path), escaped(.revision))]
    PathNotFound {
        /// The path.
        path: String,
        /// The revision id.
        revision: String,
    },
    /// The content breaks a rule of the source (a symlink when symlinks are
    /// refused, a file over the size limit, ...).
    #[error("{}: {}", escaped(.path), escaped(.reason))]
    Refused {
        /// The file at fault.
        path: String,
        /// Why it was refused.
        reason: String,
    },
    /// A tree object of the revision is malformed in a way `git fsck
    /// --strict` (and `transfer.fsckObjects`) reports as an error: two
    /// entries of one name, a name that is empty, `.`, `..`, a `.git`
    /// lookalike or contains `/`, entries out of order.
    /// Such a tree can make what is deployed differ from what `git show`
    /// and a checkout display, so it is refused, whatever it contains.
    #[error(
        "invalid tree {tree} at \"{}\": entry \"{}\": {defect}",
        escaped(.path),
        escaped(.entry)
    )]
    InvalidTree {
        /// The tree object's id (hex).
        tree: String,
        /// Where the tree is in the revision, from the repository's root
        /// (`""` for the root tree), whatever folder was snapshotted.
        path: String,
        /// The entry's name as written (invalid UTF-8 replaced by U+FFFD).
        entry: String,
        /// What is wrong with it.
        defect: TreeDefect,
    },
    /// The source cannot be reached or read right now (I/O, network).
    #[error("source unavailable: {}", escaped(.message))]
    Unavailable {
        /// What failed.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
    /// Anything else, with its cause.
    #[error("{}", escaped(.message))]
    Other {
        /// What failed.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
}

impl SourceError {
    /// Whether retrying the same call later may succeed (the source could
    /// not be reached or read); a reference or path that does not exist,
    /// or content that is refused, is not.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

/// What is wrong with a tree entry ([`SourceError::InvalidTree`]): the
/// tree checks of `git fsck` (`fsck_tree` in git's `fsck.c`) that are
/// errors, or warnings that `--strict` and `transfer.fsckObjects` make
/// errors, by their message id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TreeDefect {
    /// `duplicateEntries`: two entries of one name (a file and a folder
    /// count): which one is deployed depends on the reader.
    DuplicateEntries,
    /// `emptyName`: an entry without a name.
    EmptyName,
    /// `fullPathname`: a name containing `/`, read as a path by some tools.
    FullPathname,
    /// `hasDot`: an entry named `.`.
    HasDot,
    /// `hasDotdot`: an entry named `..`.
    HasDotdot,
    /// `hasDotgit`: an entry named `.git` in any case, or a name that
    /// HFS+ or NTFS reads as `.git` (`.Git\u{200c}`, `git~1`, `.git::$INDEX_ALLOCATION`).
    HasDotgit,
    /// `gitmodulesSymlink`: `.gitmodules` (or a lookalike) is a symbolic link.
    GitmodulesSymlink,
    /// `treeNotSorted`: the entries are not in git's order, so lookups by
    /// name disagree between readers.
    TreeNotSorted,
}

impl TreeDefect {
    /// The message id `git fsck` reports for it.
    pub fn fsck_id(self) -> &'static str {
        match self {
            Self::DuplicateEntries => "duplicateEntries",
            Self::EmptyName => "emptyName",
            Self::FullPathname => "fullPathname",
            Self::HasDot => "hasDot",
            Self::HasDotdot => "hasDotdot",
            Self::HasDotgit => "hasDotgit",
            Self::GitmodulesSymlink => "gitmodulesSymlink",
            Self::TreeNotSorted => "treeNotSorted",
        }
    }
}

impl fmt::Display for TreeDefect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            Self::DuplicateEntries => "the tree has two entries of this name",
            Self::EmptyName => "the entry has an empty name",
            Self::FullPathname => "the name contains `/`",
            Self::HasDot => "the entry is named `.`",
            Self::HasDotdot => "the entry is named `..`",
            Self::HasDotgit => "the name is (or a file system reads it as) `.git`",
            Self::GitmodulesSymlink => "`.gitmodules` is a symbolic link",
            Self::TreeNotSorted => "the entries are not sorted as git sorts them",
        };
        write!(f, "{what} (git fsck: {})", self.fsck_id())
    }
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

    /// The snapshot of `to`, given `previous`, a snapshot of `from` under
    /// the same `path`: a backend may read only what changed between the
    /// two. The result is identical to [`snapshot`](Source::snapshot) of
    /// `to` (the default, which ignores `previous`).
    async fn snapshot_incremental(
        &self,
        previous: &Snapshot,
        from: &Revision,
        to: &Revision,
        path: Option<&str>,
    ) -> Result<Snapshot, SourceError> {
        let _ = (previous, from);
        self.snapshot(to, path).await
    }

    /// [`snapshot_incremental`](Source::snapshot_incremental), given the
    /// previous snapshot to keep no more: a backend may change it into the
    /// new one in place instead of copying it. The default lends it to
    /// `snapshot_incremental`.
    async fn snapshot_incremental_from(
        &self,
        previous: Snapshot,
        from: &Revision,
        to: &Revision,
        path: Option<&str>,
    ) -> Result<Snapshot, SourceError> {
        self.snapshot_incremental(&previous, from, to, path).await
    }

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
            async fn snapshot_incremental(&self, previous: &Snapshot, from: &Revision, to: &Revision, path: Option<&str>) -> Result<Snapshot, SourceError> {
                (**self).snapshot_incremental(previous, from, to, path).await
            }
            async fn snapshot_incremental_from(&self, previous: Snapshot, from: &Revision, to: &Revision, path: Option<&str>) -> Result<Snapshot, SourceError> {
                (**self).snapshot_incremental_from(previous, from, to, path).await
            }
            async fn changed_paths(&self, from: &Revision, to: &Revision, path: Option<&str>) -> Result<Vec<String>, SourceError> {
                (**self).changed_paths(from, to, path).await
            }
        }
    )*};
}
forward_source!(&S, Box<S>, Arc<S>);
