//! [`MemorySource`]: an in-memory repository of revisions.

use sha1::{Digest as _, Sha1};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::revision::{Person, Revision};
use crate::snapshot::{Blob, Snapshot};
use crate::source::{Source, SourceError};

/// A commit's files, path → blob. A commit shares the entries its parent
/// has unchanged (path and blob), as a Git tree shares unchanged subtrees:
/// comparing two commits then tells those apart by address.
type Files = BTreeMap<Arc<str>, Blob>;

#[derive(Debug, Default)]
struct Repo {
    commits: BTreeMap<String, (Revision, Files)>,
    refs: BTreeMap<String, String>,
    clock: i64,
}

/// An in-memory [`Source`]: commits of whole file trees on named branches,
/// with Git-like ids (deterministic hashes of the content and metadata).
///
/// References resolve like Git's: `HEAD` (the branch last committed to),
/// a branch or tag name, `refs/heads/NAME`, `refs/tags/NAME`, or a full or
/// abbreviated (≥ 4 characters) commit id.
///
/// ```
/// # futures::executor::block_on(async {
/// use gitops_core::{MemorySource, Source};
/// let source = MemorySource::new();
/// source.commit("prod", [("app.yaml", "kind: ConfigMap")], "ada", "first");
/// let rev = source.resolve("prod").await.unwrap();
/// let snap = source.snapshot(&rev, None).await.unwrap();
/// assert_eq!(snap.len(), 1);
/// assert_eq!(rev.summary(), "first");
/// # });
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemorySource {
    repo: Arc<Mutex<Repo>>,
}

fn normalize_dir(path: Option<&str>) -> Option<String> {
    path.map(|p| p.trim_matches('/').to_owned())
        .filter(|p| !p.is_empty() && p != ".")
}

/// The paths whose content differs between two trees (added, removed or
/// changed), in path order: both maps in key order, one pass.
fn changed<'a>(a: &'a Files, b: &'a Files) -> impl Iterator<Item = &'a str> {
    let mut a = a.iter().peekable();
    let mut b = b.iter().peekable();
    std::iter::from_fn(move || {
        loop {
            let order = match (a.peek(), b.peek()) {
                (None, None) => return None,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                // A shared path is the same path, read without its text.
                (Some((pa, _)), Some((pb, _))) if Arc::ptr_eq(pa, pb) => std::cmp::Ordering::Equal,
                (Some((pa, _)), Some((pb, _))) => pa.cmp(pb),
            };
            match order {
                std::cmp::Ordering::Less => return a.next().map(|(p, _)| &**p),
                std::cmp::Ordering::Greater => return b.next().map(|(p, _)| &**p),
                std::cmp::Ordering::Equal => {
                    let (Some((p, x)), Some((_, y))) = (a.next(), b.next()) else {
                        return None;
                    };
                    // A shared blob is the same blob, read without its id.
                    if !Arc::ptr_eq(&x.data, &y.data) && x.id != y.id {
                        return Some(&**p);
                    }
                }
            }
        }
    })
}

fn under<'a>(path: &'a str, dir: Option<&str>) -> Option<&'a str> {
    match dir {
        None => Some(path),
        Some(d) => path.strip_prefix(d)?.strip_prefix('/'),
    }
}

impl MemorySource {
    /// An empty repository.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Repo> {
        // A poisoned lock only means another thread panicked mid-call; the
        // maps are always left consistent, so keep going.
        self.repo.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Commits a whole tree (the given files and nothing else) on `branch`,
    /// authored and committed by `author`, and returns the commit id.
    pub fn commit<P, D>(
        &self,
        branch: &str,
        files: impl IntoIterator<Item = (P, D)>,
        author: &str,
        message: &str,
    ) -> String
    where
        P: Into<String>,
        D: AsRef<[u8]>,
    {
        let mut repo = self.lock();
        repo.clock += 60;
        let person = Person {
            name: author.to_owned(),
            email: format!("{}@example.com", author.to_lowercase().replace(' ', ".")),
            time: 1_700_000_000 + repo.clock,
            offset_seconds: 0,
        };
        drop(repo);
        self.commit_as(branch, files, person.clone(), person, message)
    }

    /// Commits a whole tree with explicit author and committer.
    pub fn commit_as<P, D>(
        &self,
        branch: &str,
        files: impl IntoIterator<Item = (P, D)>,
        author: Person,
        committer: Person,
        message: &str,
    ) -> String
    where
        P: Into<String>,
        D: AsRef<[u8]>,
    {
        let files: BTreeMap<String, Blob> = files
            .into_iter()
            .map(|(p, d)| (p.into(), Blob::from_bytes(d.as_ref())))
            .collect();
        let mut repo = self.lock();
        let parent = repo.refs.get(&format!("refs/heads/{branch}")).cloned();
        // What the parent has unchanged is shared with it.
        let inherited = parent
            .as_ref()
            .and_then(|p| repo.commits.get(p))
            .map(|(_, f)| f);
        let files: Files = files
            .into_iter()
            .map(
                |(p, b)| match inherited.and_then(|f| f.get_key_value(p.as_str())) {
                    Some((path, blob)) if blob.id == b.id => (Arc::clone(path), blob.clone()),
                    _ => (Arc::from(p), b),
                },
            )
            .collect();
        let mut tree = Sha1::new();
        for (p, b) in &files {
            tree.update(p.as_bytes());
            tree.update([0]);
            tree.update(b.id.as_str().as_bytes());
            tree.update([0]);
        }
        let tree = format!("{:x}", tree.finalize());
        let mut id = Sha1::new();
        id.update(tree.as_bytes());
        for part in [
            parent.as_deref().unwrap_or(""),
            &author.name,
            &author.email,
            &author.time.to_string(),
            &committer.name,
            &committer.time.to_string(),
            message,
        ] {
            id.update([0]);
            id.update(part.as_bytes());
        }
        let id = format!("{:x}", id.finalize());
        let revision = Revision {
            id: id.clone(),
            tree,
            reference: None,
            author,
            committer,
            message: message.to_owned(),
            parents: parent.into_iter().collect(),
            signature: Default::default(),
        };
        repo.commits.insert(id.clone(), (revision, files));
        repo.refs.insert(format!("refs/heads/{branch}"), id.clone());
        repo.refs.insert("HEAD".to_owned(), id.clone());
        id
    }

    /// Points a tag at a commit.
    pub fn tag(&self, name: &str, commit: &str) -> Result<(), SourceError> {
        let mut repo = self.lock();
        if !repo.commits.contains_key(commit) {
            return Err(SourceError::NotFound {
                reference: commit.to_owned(),
            });
        }
        repo.refs
            .insert(format!("refs/tags/{name}"), commit.to_owned());
        Ok(())
    }

    fn lookup(&self, reference: &str) -> Result<(String, Option<String>), SourceError> {
        let repo = self.lock();
        let not_found = || SourceError::NotFound {
            reference: reference.to_owned(),
        };
        if reference.is_empty() {
            return Err(not_found());
        }
        let candidates: Vec<String> = if reference == "HEAD" || reference.starts_with("refs/") {
            vec![reference.to_owned()]
        } else {
            vec![
                format!("refs/heads/{reference}"),
                format!("refs/tags/{reference}"),
            ]
        };
        let named: Vec<&String> = candidates
            .iter()
            .filter(|r| repo.refs.contains_key(*r))
            .collect();
        let ids: BTreeSet<&String> =
            if reference.len() >= 4 && reference.chars().all(|c| c.is_ascii_hexdigit()) {
                let lower = reference.to_ascii_lowercase();
                repo.commits
                    .keys()
                    .filter(|id| id.starts_with(&lower))
                    .collect()
            } else {
                BTreeSet::new()
            };
        match (named.as_slice(), ids.len()) {
            ([name], 0) => Ok((repo.refs[*name].clone(), Some((*name).clone()))),
            ([], 1) => Ok((ids.into_iter().next().cloned().ok_or_else(not_found)?, None)),
            ([], 0) => Err(not_found()),
            _ => Err(SourceError::Ambiguous {
                reference: reference.to_owned(),
                candidates: named
                    .into_iter()
                    .cloned()
                    .chain(ids.into_iter().cloned())
                    .collect(),
            }),
        }
    }

    /// Whether `previous` is a snapshot of `from` under `path`, as
    /// [`Source::snapshot`] makes them, which an incremental snapshot
    /// continues.
    fn continues(&self, previous: &Snapshot, from: &Revision, path: Option<&str>) -> bool {
        previous.root() == normalize_dir(path).as_deref()
            && previous.revision().is_some_and(|r| r.id == from.id)
            && previous.special_entries().next().is_none()
            && !previous.is_empty()
    }

    fn files(&self, revision: &Revision) -> Result<Files, SourceError> {
        self.lock()
            .commits
            .get(&revision.id)
            .map(|(_, f)| f.clone())
            .ok_or_else(|| SourceError::NotFound {
                reference: revision.id.clone(),
            })
    }
}

#[async_trait]
impl Source for MemorySource {
    async fn resolve(&self, reference: &str) -> Result<Revision, SourceError> {
        let (id, name) = self.lookup(reference)?;
        let repo = self.lock();
        let (rev, _) = repo.commits.get(&id).ok_or_else(|| SourceError::NotFound {
            reference: reference.to_owned(),
        })?;
        let mut rev = rev.clone();
        rev.reference = name;
        Ok(rev)
    }

    async fn snapshot(
        &self,
        revision: &Revision,
        path: Option<&str>,
    ) -> Result<Snapshot, SourceError> {
        let dir = normalize_dir(path);
        let files = self.files(revision)?;
        let mut snap = Snapshot::new()
            .with_revision(revision.clone())
            .with_root(dir.clone());
        let mut found = dir.is_none();
        for (p, blob) in files {
            if let Some(rel) = under(&p, dir.as_deref()) {
                found = true;
                snap.insert(rel, blob);
            }
        }
        if !found {
            return Err(SourceError::PathNotFound {
                path: dir.unwrap_or_default(),
                revision: revision.id.clone(),
            });
        }
        Ok(snap)
    }

    /// `previous` (a snapshot of `from` under the same folder, as
    /// [`snapshot`](Source::snapshot) made it) with the files that changed:
    /// the files of the two revisions are compared, not copied.
    async fn snapshot_incremental(
        &self,
        previous: &Snapshot,
        from: &Revision,
        to: &Revision,
        path: Option<&str>,
    ) -> Result<Snapshot, SourceError> {
        if !self.continues(previous, from, path) {
            return self.snapshot(to, path).await;
        }
        self.snapshot_incremental_from(previous.clone(), from, to, path)
            .await
    }

    /// As `snapshot_incremental`, changing `previous` in place.
    async fn snapshot_incremental_from(
        &self,
        previous: Snapshot,
        from: &Revision,
        to: &Revision,
        path: Option<&str>,
    ) -> Result<Snapshot, SourceError> {
        if self.continues(&previous, from, path) {
            let dir = normalize_dir(path);
            let repo = self.lock();
            if let (Some((_, a)), Some((_, b))) =
                (repo.commits.get(&from.id), repo.commits.get(&to.id))
            {
                let mut snap = previous.with_revision(to.clone());
                let mut complete = true;
                for p in changed(a, b) {
                    let Some(rel) = under(p, dir.as_deref()) else {
                        continue;
                    };
                    match b.get(p) {
                        Some(blob) => snap.insert(rel, blob.clone()),
                        // A file removed: a snapshot cannot drop one.
                        None => complete = false,
                    }
                }
                if complete {
                    return Ok(snap);
                }
            }
        }
        self.snapshot(to, path).await
    }

    async fn changed_paths(
        &self,
        from: &Revision,
        to: &Revision,
        path: Option<&str>,
    ) -> Result<Vec<String>, SourceError> {
        let dir = normalize_dir(path);
        let repo = self.lock();
        let files = |r: &Revision| {
            repo.commits
                .get(&r.id)
                .map(|(_, f)| f)
                .ok_or_else(|| SourceError::NotFound {
                    reference: r.id.clone(),
                })
        };
        let (a, b) = (files(from)?, files(to)?);
        Ok(changed(a, b)
            .filter_map(|p| under(p, dir.as_deref()).map(str::to_owned))
            .collect())
    }
}
