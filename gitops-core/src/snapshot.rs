//! [`Snapshot`]: the files of one revision, content-addressed.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::revision::Revision;

/// The content id of a file: the hex id of a Git blob (SHA-1 or SHA-256).
///
/// Two files with the same id have the same bytes, which is what lets the
/// renderer cache parsed objects across revisions.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BlobId(Arc<str>);

impl BlobId {
    /// Wraps a hex id given by a content store (such as a Git object database).
    pub fn from_hex(hex: impl AsRef<str>) -> Self {
        Self(Arc::from(hex.as_ref().to_ascii_lowercase()))
    }

    /// The Git blob id (SHA-1 of `blob <len>\0<bytes>`) of some bytes, the
    /// same id `git hash-object` prints.
    ///
    /// ```
    /// use gitops_core::BlobId;
    /// assert_eq!(BlobId::for_bytes(b"").as_str(), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
    /// ```
    pub fn for_bytes(data: &[u8]) -> Self {
        use sha1::Digest as _;
        let mut h = sha1::Sha1::new();
        h.update(format!("blob {}\0", data.len()).as_bytes());
        h.update(data);
        Self(Arc::from(format!("{:x}", h.finalize())))
    }

    /// The hex id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One file's content and its id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    /// Content id.
    pub id: BlobId,
    /// The bytes.
    pub data: Arc<[u8]>,
}

impl Blob {
    /// A blob whose id is computed from its bytes ([`BlobId::for_bytes`]).
    pub fn from_bytes(data: impl Into<Arc<[u8]>>) -> Self {
        let data = data.into();
        Self {
            id: BlobId::for_bytes(&data),
            data,
        }
    }

    /// A blob with an id given by the content store.
    pub fn with_id(id: BlobId, data: impl Into<Arc<[u8]>>) -> Self {
        Self {
            id,
            data: data.into(),
        }
    }
}

/// An entry of a tree that is not a regular file, reported rather than read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SpecialEntry {
    /// A symbolic link (never followed: its target is outside the commit's content).
    Symlink {
        /// The link's target as stored.
        target: String,
    },
    /// A submodule (a commit of another repository, not part of this snapshot).
    Submodule {
        /// The commit id the submodule points at.
        commit: String,
    },
}

/// The files of one revision (optionally under one folder): path → blob.
///
/// Paths use `/`, are relative to the snapshot root and sort bytewise, so a
/// snapshot iterates in the same order whatever order it was filled in.
///
/// ```
/// use gitops_core::Snapshot;
/// let snap = Snapshot::from_files([("b.yaml", "kind: X"), ("a.yaml", "kind: Y")]);
/// let paths: Vec<_> = snap.files().map(|(p, _)| p.to_owned()).collect();
/// assert_eq!(paths, ["a.yaml", "b.yaml"]);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    revision: Option<Revision>,
    root: Option<String>,
    files: BTreeMap<String, Blob>,
    special: BTreeMap<String, SpecialEntry>,
}

impl Snapshot {
    /// An empty snapshot.
    pub fn new() -> Self {
        Self::default()
    }

    /// A snapshot of in-memory files; ids are Git blob ids of the bytes.
    pub fn from_files<P, D>(files: impl IntoIterator<Item = (P, D)>) -> Self
    where
        P: Into<String>,
        D: AsRef<[u8]>,
    {
        let mut s = Self::new();
        for (p, d) in files {
            s.insert(p, Blob::from_bytes(d.as_ref()));
        }
        s
    }

    /// Records the revision this snapshot was taken of.
    pub fn with_revision(mut self, revision: Revision) -> Self {
        self.revision = Some(revision);
        self
    }

    /// Records the folder the snapshot was limited to.
    pub fn with_root(mut self, root: Option<String>) -> Self {
        self.root = root;
        self
    }

    /// Adds or replaces a file.
    pub fn insert(&mut self, path: impl Into<String>, blob: Blob) {
        self.files.insert(path.into(), blob);
    }

    /// Records a symlink or submodule found at `path` (not part of the files).
    pub fn insert_special(&mut self, path: impl Into<String>, entry: SpecialEntry) {
        self.special.insert(path.into(), entry);
    }

    /// The revision, if the source recorded it.
    pub fn revision(&self) -> Option<&Revision> {
        self.revision.as_ref()
    }

    /// The folder this snapshot is limited to, if any.
    pub fn root(&self) -> Option<&str> {
        self.root.as_deref()
    }

    /// Files in path order.
    pub fn files(&self) -> impl ExactSizeIterator<Item = (&str, &Blob)> {
        self.files.iter().map(|(p, b)| (p.as_str(), b))
    }

    /// Symlinks and submodules found, in path order.
    pub fn special_entries(&self) -> impl Iterator<Item = (&str, &SpecialEntry)> {
        self.special.iter().map(|(p, e)| (p.as_str(), e))
    }

    /// One file.
    pub fn get(&self, path: &str) -> Option<&Blob> {
        self.files.get(path)
    }

    /// Number of files.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether there are no files.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Total size of all files in bytes.
    pub fn total_bytes(&self) -> usize {
        self.files.values().map(|b| b.data.len()).sum()
    }
}
