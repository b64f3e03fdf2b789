//! [`GitSource`]: a [`Source`] over a local Git repository, read straight
//! from the object database.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use gitops_core::{
    Blob, BlobId, Revision, Snapshot, Source, SourceError, SpecialEntry, TreeDefect,
};
use gix::ObjectId;
use gix::bstr::{BStr, ByteSlice};

use crate::cache::{CacheStats, Caches, EntryKind, FlatEntry, Listing, Node};
use crate::error::{Error, Result};
use crate::pack_order::PackOrder;
use crate::resolve::{resolve, revision_of};

/// What to do with a symbolic link found in a snapshot. Links are never
/// followed: their target lies outside the commit's content.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SymlinkPolicy {
    /// Record the link with [`Snapshot::insert_special`] and go on.
    #[default]
    Report,
    /// Fail the snapshot with [`SourceError::Refused`].
    Refuse,
}

/// Options of a [`GitSource`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct GitSourceOptions {
    /// What to do with symbolic links (never followed).
    pub symlinks: SymlinkPolicy,
    /// Files larger than this many bytes are refused
    /// ([`SourceError::Refused`]) without being read.
    pub max_file_size: u64,
    /// Budget of the blob cache, in bytes (0 disables it).
    pub blob_cache_bytes: usize,
    /// Budget of the tree-listing cache, in listed entries (0 disables it).
    pub tree_cache_entries: usize,
    /// Budget of gix's pack cache during one snapshot, in bytes: decoded
    /// objects by pack offset, so that a blob stored as a delta finds its
    /// base decoded (as git's `core.deltaBaseCacheLimit`, whose default it
    /// shares). 0 keeps gix's default (a 64-entry LRU).
    pub pack_cache_bytes: usize,
}

impl Default for GitSourceOptions {
    fn default() -> Self {
        Self {
            symlinks: SymlinkPolicy::Report,
            max_file_size: 8 * 1024 * 1024,
            blob_cache_bytes: 256 * 1024 * 1024,
            tree_cache_entries: 1_000_000,
            pack_cache_bytes: 96 * 1024 * 1024,
        }
    }
}

impl GitSourceOptions {
    /// The defaults: symlinks reported (never followed), files up to 8 MiB,
    /// a 256 MiB blob cache and a million listed tree entries.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`GitSourceOptions::symlinks`].
    pub fn with_symlinks(mut self, policy: SymlinkPolicy) -> Self {
        self.symlinks = policy;
        self
    }

    /// Sets [`GitSourceOptions::max_file_size`].
    pub fn with_max_file_size(mut self, bytes: u64) -> Self {
        self.max_file_size = bytes;
        self
    }

    /// Sets the cache budgets ([`GitSourceOptions::blob_cache_bytes`],
    /// [`GitSourceOptions::tree_cache_entries`]).
    pub fn with_cache(mut self, blob_bytes: usize, tree_entries: usize) -> Self {
        self.blob_cache_bytes = blob_bytes;
        self.tree_cache_entries = tree_entries;
        self
    }

    /// Sets [`GitSourceOptions::pack_cache_bytes`].
    pub fn with_pack_cache(mut self, bytes: usize) -> Self {
        self.pack_cache_bytes = bytes;
        self
    }
}

/// A [`Source`] over a local Git repository, bare or not.
///
/// Everything is read from the object database by id: no work tree is read
/// or written, so a snapshot depends on the commit alone. Tree listings and
/// file contents are cached by object id (bounded), so snapshotting a new
/// commit reads only the folders and files it changed.
///
/// # Blocking
/// gix is a blocking library. The `async` methods of [`Source`] run the
/// work on a shared pool of blocking threads (the [`blocking`] crate, which
/// needs no particular runtime), never on the executor. Each also has a
/// synchronous twin (`*_blocking`) for code that is not async or that is on
/// a blocking thread already. Cloning a `GitSource` is cheap (shared
/// repository handle and caches).
#[derive(Clone)]
pub struct GitSource {
    repo: gix::ThreadSafeRepository,
    path: PathBuf,
    options: GitSourceOptions,
    caches: Arc<Mutex<Caches>>,
}

impl fmt::Debug for GitSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitSource")
            .field("path", &self.path)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// A commit's signature and the exact bytes it signs: `(signature, payload)`,
/// as returned by [`GitSource::signed_payload`].
pub type SignedPayload = (Vec<u8>, Vec<u8>);

/// From how many files missing from the blob cache a snapshot reads them in
/// pack order (below, opening the pack indices costs more than it saves).
const PACK_ORDER_MIN_FILES: usize = 64;

/// The maximum depth of nested folders read (deeper trees are refused).
const MAX_DEPTH: usize = 256;

impl GitSource {
    /// Opens the repository at `path` (a work tree, its `.git` folder, or a
    /// bare repository) with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SourceError> {
        Self::open_with(path, GitSourceOptions::default())
    }

    /// Opens the repository at `path` with `options`.
    pub fn open_with(
        path: impl AsRef<Path>,
        options: GitSourceOptions,
    ) -> Result<Self, SourceError> {
        let path = path.as_ref().to_path_buf();
        let repo = gix::ThreadSafeRepository::open_opts(&path, gix::open::Options::isolated())
            .map_err(|source| {
                // A path that does not exist is not an outage: retrying
                // will not help.
                if matches!(path.try_exists(), Ok(false)) {
                    Error::RepositoryNotFound {
                        path: path.display().to_string(),
                    }
                } else {
                    Error::Open {
                        path: path.display().to_string(),
                        source,
                    }
                }
            })?;
        let caches = Caches::new(options.blob_cache_bytes, options.tree_cache_entries);
        Ok(Self {
            repo,
            path,
            options,
            caches: Arc::new(Mutex::new(caches)),
        })
    }

    /// The path the repository was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The options in force.
    pub fn options(&self) -> &GitSourceOptions {
        &self.options
    }

    /// Counters of the blob and tree caches since creation or the last
    /// [`clear_caches`](Self::clear_caches).
    pub fn cache_stats(&self) -> CacheStats {
        let c = self.caches();
        CacheStats {
            blob_hits: c.blobs.hits,
            blob_misses: c.blobs.misses,
            blobs_cached: c.blobs.len(),
            tree_hits: c.trees.hits,
            tree_misses: c.trees.misses,
            trees_cached: c.trees.len(),
        }
    }

    /// Empties the caches and resets their counters.
    pub fn clear_caches(&self) {
        let mut c = self.caches();
        c.blobs.clear();
        c.trees.clear();
    }

    fn caches(&self) -> MutexGuard<'_, Caches> {
        // A panic while holding the lock leaves consistent maps behind
        // (every update is a single insert), so poisoning is ignored.
        self.caches.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A handle on the repository for this thread, with the configured
    /// pack cache (created empty, and dropped with the handle).
    fn local(&self) -> gix::Repository {
        let mut repo = self.repo.to_thread_local();
        let bytes = self.options.pack_cache_bytes;
        if bytes > 0 {
            repo.objects.set_pack_cache(move || {
                Box::new(gix::odb::pack::cache::lru::MemoryCappedHashmap::new(bytes))
            });
        }
        repo
    }

    /// [`Source::resolve`], synchronously.
    pub fn resolve_blocking(&self, reference: &str) -> Result<Revision, SourceError> {
        Ok(resolve(&self.local(), reference)?)
    }

    /// [`Source::snapshot`], synchronously.
    pub fn snapshot_blocking(
        &self,
        revision: &Revision,
        path: Option<&str>,
    ) -> Result<Snapshot, SourceError> {
        let repo = self.local();
        let root = normalize(path)?;
        let tree = commit_tree(&repo, revision)?;
        let subtree =
            subtree(&repo, tree, root.as_deref())?.ok_or_else(|| Error::PathNotFound {
                path: root.clone().unwrap_or_default(),
                revision: revision.id.clone(),
            })?;
        let listing = self
            .listing(&repo, subtree, "", 0)
            .map_err(|e| e.under(root.as_deref()))?;
        let mut snapshot = Snapshot::new()
            .with_revision(revision.clone())
            .with_root(root);
        self.fill(&repo, &mut snapshot, &listing)?;
        tracing::debug!(revision = %revision.id, files = snapshot.len(), "git snapshot");
        Ok(snapshot)
    }

    /// [`Source::changed_paths`], synchronously.
    pub fn changed_paths_blocking(
        &self,
        from: &Revision,
        to: &Revision,
        path: Option<&str>,
    ) -> Result<Vec<String>, SourceError> {
        let repo = self.local();
        let root = normalize(path)?;
        let changes = diff_revisions(&repo, from, to, root.as_deref())?;
        let mut paths: Vec<String> = changes.into_iter().map(|c| c.path).collect();
        paths.sort();
        paths.dedup();
        Ok(paths)
    }

    /// The snapshot of `to`, built from `previous` (a snapshot of `from`
    /// under the same `path`) by reading only the files that changed between
    /// the two revisions (a tree diff).
    ///
    /// `previous` must be a snapshot returned by this source, unmodified.
    /// When it is not a snapshot of `from` under `path`, this is a plain
    /// [`snapshot`](Source::snapshot) of `to`. The result is identical to a
    /// full snapshot of `to`. With warm caches, [`snapshot`](Source::snapshot)
    /// itself costs about the same (it reads only changed folders and files);
    /// this saves the listing of unchanged folders when caches are cold.
    pub fn snapshot_incremental(
        &self,
        previous: &Snapshot,
        from: &Revision,
        to: &Revision,
        path: Option<&str>,
    ) -> Result<Snapshot, SourceError> {
        let root = normalize(path)?;
        let same_base = previous.revision().is_some_and(|r| r.id == from.id)
            && previous.root() == root.as_deref();
        if !same_base {
            return self.snapshot_blocking(to, path);
        }
        let repo = self.local();
        // The folder must exist in `to`, as for a full snapshot.
        let to_tree = commit_tree(&repo, to)?;
        let Some(to_folder) = subtree(&repo, to_tree, root.as_deref())? else {
            return Err(Error::PathNotFound {
                path: root.unwrap_or_default(),
                revision: to.id.clone(),
            }
            .into());
        };
        // Every tree of `to` is checked as a full snapshot checks it (a tree
        // diff would read a crafted tree without noticing); with warm caches
        // this reads only the trees that changed.
        self.listing(&repo, to_folder, "", 0)
            .map_err(|e| e.under(root.as_deref()))?;
        let changes = diff_revisions(&repo, from, to, root.as_deref())?;
        let touched: HashSet<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        let mut snapshot = Snapshot::new()
            .with_revision(to.clone())
            .with_root(root.clone());
        for (p, blob) in previous.files() {
            if !touched.contains(p) {
                snapshot.insert(p, blob.clone());
            }
        }
        for (p, special) in previous.special_entries() {
            if !touched.contains(p) {
                snapshot.insert_special(p, special.clone());
            }
        }
        for change in &changes {
            if let Some(entry) = &change.new {
                self.add_entry(&repo, &mut snapshot, &entry.path, entry.kind, entry.id)?;
            }
        }
        Ok(snapshot)
    }

    /// The commits reachable from `to` and not from `from` (all ancestors of
    /// `to` when `from` is `None`), newest first, that changed the folder
    /// `path` (every commit when `path` is `None`): who changed what, when,
    /// and why.
    ///
    /// A commit counts as changing the folder when the folder differs from
    /// every parent's (so merges that took one side unchanged are skipped,
    /// as `git log -- path` does); a root commit counts when the folder
    /// exists in it.
    pub fn history(
        &self,
        from: Option<&Revision>,
        to: &Revision,
        path: Option<&str>,
    ) -> Result<Vec<Revision>, SourceError> {
        let repo = self.local();
        let root = normalize(path)?;
        let tip = commit_id(&repo, to)?;
        let hidden = match from {
            Some(from) => vec![commit_id(&repo, from)?],
            None => Vec::new(),
        };
        let walk = repo
            .rev_walk([tip])
            .with_hidden(hidden)
            .sorting(gix::revision::walk::Sorting::ByCommitTime(
                gix::traverse::commit::simple::CommitTimeOrder::NewestFirst,
            ))
            .all()
            .map_err(Error::read(format_args!("history of {}", to.id)))?;
        let mut folder_ids: HashMap<ObjectId, Option<ObjectId>> = HashMap::new();
        let mut folder_of =
            |repo: &gix::Repository, commit: ObjectId| -> Result<Option<ObjectId>> {
                if let Some(known) = folder_ids.get(&commit) {
                    return Ok(*known);
                }
                let tree = repo
                    .find_commit(commit)
                    .and_then(|c| c.tree_id().map(|t| t.detach()))
                    .map_err(Error::read(format_args!("commit {commit}")))?;
                let id = subtree(repo, tree, root.as_deref())?;
                folder_ids.insert(commit, id);
                Ok(id)
            };
        let mut out = Vec::new();
        for info in walk {
            let info = info.map_err(Error::read(format_args!("history of {}", to.id)))?;
            let id = info.id;
            let parents: Vec<ObjectId> = info.parent_ids().map(|p| p.detach()).collect();
            let touched = if root.is_none() {
                true
            } else {
                let mine = folder_of(&repo, id)?;
                if parents.is_empty() {
                    mine.is_some()
                } else {
                    let mut differs_from_all = true;
                    for p in &parents {
                        if folder_of(&repo, *p)? == mine {
                            differs_from_all = false;
                            break;
                        }
                    }
                    differs_from_all
                }
            };
            if touched {
                let commit = repo
                    .find_commit(id)
                    .map_err(Error::read(format_args!("commit {id}")))?;
                out.push(revision_of(&commit, None)?);
            }
        }
        Ok(out)
    }

    /// The raw signature of a revision's commit and the exact bytes it
    /// signs (the commit without its signature header), or `None` for an
    /// unsigned commit: the input of a signature verifier.
    ///
    /// [`resolve`](Source::resolve) leaves [`Revision::signature`] at
    /// [`SignatureVerdict::NotChecked`](gitops_core::SignatureVerdict::NotChecked);
    /// a verifier fills it from this.
    pub fn signed_payload(
        &self,
        revision: &Revision,
    ) -> Result<Option<SignedPayload>, SourceError> {
        let repo = self.local();
        let id = commit_id(&repo, revision)?;
        let commit = repo
            .find_commit(id)
            .map_err(Error::read(format_args!("commit {id}")))?;
        let signature = commit
            .signature()
            .map_err(Error::read(format_args!("signature of commit {id}")))?;
        Ok(signature.map(|(sig, signed)| (sig.to_vec(), signed.to_bstring().into())))
    }

    /// The listing of tree `id` (sub-folders attached), from the cache or
    /// the object database. `at` is the tree's path, for error messages.
    fn listing(
        &self,
        repo: &gix::Repository,
        id: ObjectId,
        at: &str,
        depth: usize,
    ) -> Result<Listing> {
        if let Some(hit) = self.caches().trees.get(&id, |l| l.len().max(1)) {
            return Ok(hit);
        }
        if depth > MAX_DEPTH {
            return Err(Error::Refused {
                path: at.to_owned(),
                reason: format!("folders nested deeper than {MAX_DEPTH} levels"),
            });
        }
        let failed = |source| Error::Read {
            what: format!("tree {id} at {at:?}"),
            source,
        };
        let tree = repo.find_tree(id).map_err(failed)?;
        let decoded = tree.decode().map_err(failed)?;
        check_tree(id, at, &decoded)?;
        let mut nodes = Vec::with_capacity(decoded.entries.len());
        for entry in &decoded.entries {
            let name = entry.filename.to_str().map_err(|_| Error::Refused {
                path: join(at, &entry.filename.to_str_lossy()),
                reason: "file name is not valid UTF-8".to_owned(),
            })?;
            let node = match entry_kind(entry.mode) {
                None => Node::Dir {
                    name: name.into(),
                    listing: self.listing(
                        repo,
                        entry.oid.to_owned(),
                        &join(at, name),
                        depth + 1,
                    )?,
                },
                Some(kind) => Node::Entry(FlatEntry {
                    path: name.into(),
                    kind,
                    id: entry.oid.to_owned(),
                }),
            };
            nodes.push(node);
        }
        let listing: Listing = nodes.into();
        let cost = listing.len().max(1);
        self.caches().trees.insert(id, listing.clone(), cost);
        Ok(listing)
    }

    /// Adds every entry of `listing` (recursively) to a snapshot: files
    /// whose blob is cached under one lock of the cache, then the others.
    fn fill(
        &self,
        repo: &gix::Repository,
        snapshot: &mut Snapshot,
        listing: &Listing,
    ) -> Result<()> {
        let mut entries = Vec::new();
        flatten(listing, &mut String::new(), &mut entries);
        let limit = self.options.max_file_size;
        let mut pending = Vec::new();
        {
            let mut caches = self.caches();
            for (path, kind, id) in entries {
                let hit = match kind {
                    EntryKind::File => caches.blobs.get(&id, |b| b.data.len()),
                    EntryKind::Symlink | EntryKind::Submodule => None,
                };
                match hit {
                    Some(blob) if blob.data.len() as u64 > limit => {
                        return Err(too_large(&path, blob.data.len() as u64, limit));
                    }
                    Some(blob) => snapshot.insert(path, blob),
                    None => pending.push((path, kind, id)),
                }
            }
        }
        // Files are read in pack order (see `pack_order`), then added in
        // tree order. A file that fails is read again in tree order, so
        // that the error reported is the first in tree order, whatever the
        // packing.
        let mut read: Vec<Option<Blob>> = vec![None; pending.len()];
        if pending.len() >= PACK_ORDER_MIN_FILES {
            let order = PackOrder::open(repo);
            let mut by_pack: Vec<usize> = (0..pending.len())
                .filter(|&i| pending[i].1 == EntryKind::File)
                .collect();
            by_pack.sort_by_cached_key(|&i| order.position(&pending[i].2));
            for i in by_pack {
                let (path, _, id) = &pending[i];
                match self.read_blob(repo, *id, path) {
                    Ok(blob) => read[i] = Some(blob),
                    Err(_) => break,
                }
            }
        }
        for ((path, kind, id), done) in pending.into_iter().zip(read) {
            match (kind, done) {
                (EntryKind::File, Some(blob)) => snapshot.insert(path, blob),
                (EntryKind::File, None) => {
                    let blob = self.read_blob(repo, id, &path)?;
                    snapshot.insert(path, blob);
                }
                _ => self.add_entry(repo, snapshot, &path, kind, id)?,
            }
        }
        Ok(())
    }

    /// The content of blob `id` at `path`, from the cache or the object
    /// database, refusing it when over the size limit.
    fn blob(&self, repo: &gix::Repository, id: ObjectId, path: &str) -> Result<Blob> {
        let limit = self.options.max_file_size;
        if let Some(hit) = self.caches().blobs.get(&id, |b| b.data.len()) {
            let size = hit.data.len() as u64;
            return if size > limit {
                Err(too_large(path, size, limit))
            } else {
                Ok(hit)
            };
        }
        self.read_blob(repo, id, path)
    }

    /// Reads blob `id` at `path` from the object database (its size first,
    /// refusing it unread when over the limit) and caches it.
    fn read_blob(&self, repo: &gix::Repository, id: ObjectId, path: &str) -> Result<Blob> {
        let limit = self.options.max_file_size;
        // The message is only formatted on failure (this runs per file).
        let failed = |source| Error::Read {
            what: format!("file {path:?} (blob {id})"),
            source,
        };
        let header = repo.find_header(id).map_err(failed)?;
        if header.size() > limit {
            return Err(too_large(path, header.size(), limit));
        }
        let data = repo.find_blob(id).map_err(failed)?.take_data();
        let blob = Blob::with_id(BlobId::from_hex(id.to_hex().to_string()), data);
        let cost = blob.data.len().max(64);
        self.caches().blobs.insert(id, blob.clone(), cost);
        Ok(blob)
    }

    /// Adds one listed entry to a snapshot, by kind.
    fn add_entry(
        &self,
        repo: &gix::Repository,
        snapshot: &mut Snapshot,
        path: &str,
        kind: EntryKind,
        id: ObjectId,
    ) -> Result<()> {
        match kind {
            EntryKind::File => {
                let blob = self.blob(repo, id, path)?;
                snapshot.insert(path, blob);
            }
            EntryKind::Symlink => {
                if self.options.symlinks == SymlinkPolicy::Refuse {
                    return Err(Error::Refused {
                        path: path.to_owned(),
                        reason: "symbolic links are refused (never followed)".to_owned(),
                    });
                }
                let target = self.blob(repo, id, path)?;
                snapshot.insert_special(
                    path,
                    SpecialEntry::Symlink {
                        target: String::from_utf8_lossy(&target.data).into_owned(),
                    },
                );
            }
            EntryKind::Submodule => snapshot.insert_special(
                path,
                SpecialEntry::Submodule {
                    commit: id.to_hex().to_string(),
                },
            ),
        }
        Ok(())
    }
}

/// The async [`Source`] methods run their blocking twin on the shared
/// blocking thread pool of the [`blocking`] crate (runtime-agnostic: tokio,
/// async-std, smol or a plain `block_on` alike), so reading a large tree
/// never holds an executor thread. Dropping the future does not stop work
/// already started; its result is then discarded.
#[async_trait]
impl Source for GitSource {
    async fn resolve(&self, reference: &str) -> Result<Revision, SourceError> {
        let (this, reference) = (self.clone(), reference.to_owned());
        blocking::unblock(move || this.resolve_blocking(&reference)).await
    }

    async fn snapshot(
        &self,
        revision: &Revision,
        path: Option<&str>,
    ) -> Result<Snapshot, SourceError> {
        let (this, revision, path) = (self.clone(), revision.clone(), path.map(str::to_owned));
        blocking::unblock(move || this.snapshot_blocking(&revision, path.as_deref())).await
    }

    async fn snapshot_incremental(
        &self,
        previous: &Snapshot,
        from: &Revision,
        to: &Revision,
        path: Option<&str>,
    ) -> Result<Snapshot, SourceError> {
        let (this, previous, from, to, path) = (
            self.clone(),
            previous.clone(),
            from.clone(),
            to.clone(),
            path.map(str::to_owned),
        );
        blocking::unblock(move || {
            GitSource::snapshot_incremental(&this, &previous, &from, &to, path.as_deref())
        })
        .await
    }

    async fn changed_paths(
        &self,
        from: &Revision,
        to: &Revision,
        path: Option<&str>,
    ) -> Result<Vec<String>, SourceError> {
        let (this, from, to, path) = (
            self.clone(),
            from.clone(),
            to.clone(),
            path.map(str::to_owned),
        );
        blocking::unblock(move || this.changed_paths_blocking(&from, &to, path.as_deref())).await
    }
}

/// Every non-folder entry of a listing with its full path (under `prefix`).
fn flatten(listing: &Listing, prefix: &mut String, out: &mut Vec<(String, EntryKind, ObjectId)>) {
    let len = prefix.len();
    for node in listing.iter() {
        match node {
            Node::Entry(e) => {
                prefix.push_str(&e.path);
                out.push((prefix.clone(), e.kind, e.id));
            }
            Node::Dir { name, listing } => {
                prefix.push_str(name);
                prefix.push('/');
                flatten(listing, prefix, out);
            }
        }
        prefix.truncate(len);
    }
}

/// Refuses a tree that `git fsck --strict` reports as an error
/// (`fsck_tree` in git's `fsck.c`): a name that is empty, `.`, `..`, contains `/`, or is
/// `.git` to git or to a file system (`gix-validate`, with git's HFS+ and
/// NTFS rules, as fsck applies them whatever the platform); a symbolic
/// link named `.gitmodules`; two entries of one name; entries out of git's
/// order. Such trees can deploy a different file than `git show` and a
/// checkout display.
fn check_tree(id: ObjectId, at: &str, tree: &gix::objs::TreeRef<'_>) -> Result<()> {
    let invalid = |name: &BStr, defect| Error::InvalidTree {
        tree: id.to_hex().to_string(),
        path: at.to_owned(),
        entry: name.to_str_lossy().into_owned(),
        defect,
    };
    let options = gix::validate::path::component::Options {
        protect_windows: false,
        protect_hfs: true,
        protect_ntfs: true,
    };
    let mut names: HashSet<&BStr> = HashSet::with_capacity(tree.entries.len());
    let mut previous: Option<&gix::objs::tree::EntryRef<'_>> = None;
    for entry in &tree.entries {
        let name = entry.filename;
        let defect = if name.is_empty() {
            Some(TreeDefect::EmptyName)
        } else if name == "." {
            Some(TreeDefect::HasDot)
        } else if name == ".." {
            Some(TreeDefect::HasDotdot)
        } else if name.contains(&b'/') {
            Some(TreeDefect::FullPathname)
        } else {
            let mode = entry
                .mode
                .is_link()
                .then_some(gix::validate::path::component::Mode::Symlink);
            match gix::validate::path::component(name, mode, options) {
                Ok(_) => None,
                Err(gix::validate::path::component::Error::SymlinkedGitModules) => {
                    Some(TreeDefect::GitmodulesSymlink)
                }
                // With these options the only other error is `DotGitDir`;
                // anything gix adds later is refused too.
                Err(_) => Some(TreeDefect::HasDotgit),
            }
        };
        if let Some(defect) = defect {
            return Err(invalid(name, defect));
        }
        if !names.insert(name) {
            return Err(invalid(name, TreeDefect::DuplicateEntries));
        }
        if let Some(prev) = previous
            && git_order(
                prev.filename,
                prev.mode.is_tree(),
                name,
                entry.mode.is_tree(),
            ) != std::cmp::Ordering::Less
        {
            return Err(invalid(name, TreeDefect::TreeNotSorted));
        }
        previous = Some(entry);
    }
    Ok(())
}

/// Git's order of tree entries (`base_name_compare`): by name bytes, a
/// folder's name compared as if it ended with `/`.
fn git_order(a: &BStr, a_tree: bool, b: &BStr, b_tree: bool) -> std::cmp::Ordering {
    let len = a.len().min(b.len());
    a[..len].cmp(&b[..len]).then_with(|| {
        let next = |name: &BStr, tree: bool| {
            name.get(len)
                .copied()
                .unwrap_or(if tree { b'/' } else { 0 })
        };
        next(a, a_tree).cmp(&next(b, b_tree))
    })
}

fn too_large(path: &str, size: u64, limit: u64) -> Error {
    Error::Refused {
        path: path.to_owned(),
        reason: format!("file of {size} bytes is over the limit of {limit} bytes"),
    }
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}/{name}")
    }
}

/// A folder path as given by a caller, without leading, trailing or doubled
/// `/` and `.` components; `None` for the root. `..` is refused.
pub(crate) fn normalize(path: Option<&str>) -> Result<Option<String>> {
    let Some(path) = path else { return Ok(None) };
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(Error::Refused {
                    path: path.to_owned(),
                    reason: "a path must not contain `..`".to_owned(),
                });
            }
            p => parts.push(p),
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

/// The id of a revision's commit, checked to exist and be a commit.
fn commit_id(repo: &gix::Repository, revision: &Revision) -> Result<ObjectId> {
    let not_found = || Error::NotFound {
        reference: revision.id.clone(),
    };
    let id = ObjectId::from_hex(revision.id.as_bytes()).map_err(|_| not_found())?;
    match repo.try_find_object(id) {
        Ok(Some(obj)) if obj.kind == gix::object::Kind::Commit => Ok(id),
        Ok(_) => Err(not_found()),
        Err(source) => Err(Error::read(format_args!("commit {id}"))(source)),
    }
}

/// The root tree of a revision, read from its commit (not trusted from
/// [`Revision::tree`], so a snapshot depends on the commit id alone).
fn commit_tree(repo: &gix::Repository, revision: &Revision) -> Result<ObjectId> {
    let id = commit_id(repo, revision)?;
    repo.find_commit(id)
        .and_then(|c| c.tree_id().map(|t| t.detach()))
        .map_err(Error::read(format_args!("commit {id}")))
}

/// The id of the folder `path` inside tree `root`, `None` when missing or
/// not a folder.
fn subtree(repo: &gix::Repository, root: ObjectId, path: Option<&str>) -> Result<Option<ObjectId>> {
    let Some(path) = path else {
        return Ok(Some(root));
    };
    let mut current = root;
    let mut at = String::new();
    for part in path.split('/') {
        let tree = repo
            .find_tree(current)
            .map_err(Error::read(format_args!("tree {current}")))?;
        let decoded = tree
            .decode()
            .map_err(Error::read(format_args!("tree {current}")))?;
        // The folders above the snapshot's root decide which tree is read:
        // they must be as unambiguous as the ones below it.
        check_tree(current, &at, &decoded)?;
        at = join(&at, part);
        let next = decoded
            .entries
            .iter()
            .find(|e| e.filename == part.as_bytes() && e.mode.is_tree())
            .map(|e| e.oid.to_owned());
        match next {
            Some(id) => current = id,
            None => return Ok(None),
        }
    }
    Ok(Some(current))
}

/// One changed non-folder entry between two revisions, with its new state.
struct Change {
    path: String,
    new: Option<FlatEntry>,
}

fn entry_kind(mode: gix::object::tree::EntryMode) -> Option<EntryKind> {
    match mode.kind() {
        gix::object::tree::EntryKind::Tree => None,
        gix::object::tree::EntryKind::Blob | gix::object::tree::EntryKind::BlobExecutable => {
            Some(EntryKind::File)
        }
        gix::object::tree::EntryKind::Link => Some(EntryKind::Symlink),
        gix::object::tree::EntryKind::Commit => Some(EntryKind::Submodule),
    }
}

/// The changed entries (not folders) under `path` between two revisions,
/// with a gix tree diff that skips unchanged folders by id. A folder missing
/// on one side counts as empty; missing on both sides is
/// [`Error::PathNotFound`].
fn diff_revisions(
    repo: &gix::Repository,
    from: &Revision,
    to: &Revision,
    path: Option<&str>,
) -> Result<Vec<Change>> {
    let old = subtree(repo, commit_tree(repo, from)?, path)?;
    let new = subtree(repo, commit_tree(repo, to)?, path)?;
    if old.is_none() && new.is_none() {
        return Err(Error::PathNotFound {
            path: path.unwrap_or_default().to_owned(),
            revision: to.id.clone(),
        });
    }
    if old == new {
        return Ok(Vec::new());
    }
    let read = |id: Option<ObjectId>| -> Result<gix::Tree<'_>> {
        match id {
            Some(id) => repo
                .find_tree(id)
                .map_err(Error::read(format_args!("tree {id}"))),
            None => Ok(repo.empty_tree()),
        }
    };
    let (lhs, rhs) = (read(old)?, read(new)?);
    let mut recorder = gix::diff::tree::Recorder::default();
    gix::diff::tree(
        gix::objs::TreeRefIter::from_bytes(&lhs.data, repo.object_hash()),
        gix::objs::TreeRefIter::from_bytes(&rhs.data, repo.object_hash()),
        &mut gix::diff::tree::State::default(),
        &repo.objects,
        &mut recorder,
    )
    .map_err(|e| {
        Error::read(format_args!("changes between {} and {}", from.id, to.id))(
            gix::Error::from_error(e),
        )
    })?;
    use gix::diff::tree::recorder::Change as C;
    let mut out = Vec::new();
    for change in recorder.records {
        let (path, new) = match change {
            C::Addition {
                entry_mode,
                oid,
                path,
                ..
            } => match entry_kind(entry_mode) {
                // An added folder is reported with its content too.
                None => continue,
                Some(k) => (path, Some((k, oid))),
            },
            C::Modification {
                entry_mode,
                oid,
                path,
                previous_entry_mode,
                ..
            } => {
                if entry_kind(entry_mode).is_none() && entry_kind(previous_entry_mode).is_none() {
                    continue;
                }
                (path, entry_kind(entry_mode).map(|k| (k, oid)))
            }
            C::Deletion {
                entry_mode, path, ..
            } => {
                if entry_kind(entry_mode).is_none() {
                    continue;
                }
                (path, None)
            }
        };
        let path = path.to_str().map_err(|_| Error::Refused {
            path: path.to_str_lossy().into_owned(),
            reason: "file name is not valid UTF-8".to_owned(),
        })?;
        out.push(Change {
            path: path.to_owned(),
            new: new.map(|(kind, id)| FlatEntry {
                path: path.into(),
                kind,
                id,
            }),
        });
    }
    Ok(out)
}
