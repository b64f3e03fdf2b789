//! Memoized builds, for re-rendering revision after revision.
//!
//! Two kinds of results are kept: the accumulation of a kustomization
//! directory (its resources loaded, generated and transformed, before the
//! top-level finish; only for directories built from scratch, not
//! components, which transform what they are given) and the output of a
//! whole build of a root. Each is stored with the trace of every snapshot
//! read that produced it: each file looked up with the blob it found or its
//! absence (the probes for `kustomization.yaml` / `.yml` / `Kustomization`
//! included), and each directory test with its answer. A result is reused
//! only when every read of its trace gives the same answer in the snapshot
//! being built, so a reused result is the one a fresh build would compute;
//! an accumulation is also not reused where its directories would close a
//! cycle with the kustomizations being built around it. Results of
//! sub-builds that reported errors are not kept (a build with errors is
//! redone, and reports them again).
//!
//! Bound: the results used (or made) while rendering the current snapshot
//! and the previous one. A snapshot is told apart from the previous one by
//! its revision's tree id and root folder (else by its address and size);
//! that only decides what is evicted, never what is reused.

use std::collections::HashMap;
use std::sync::Arc;

use gitops_core::Snapshot;
use serde_json::Value;

use crate::build::Acc;
use crate::loader::{Files, Read, is_within};
use crate::origin::Origin;

/// Counters of a [`Kustomize`](crate::Kustomize) renderer's cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Lookups answered from the cache (a kustomization directory's
    /// accumulation or a whole build's output, reused).
    pub hits: u64,
    /// Lookups that found no result still valid for the snapshot (then built).
    pub misses: u64,
    /// Results held now.
    pub entries: usize,
}

/// A kustomization directory's accumulation.
#[derive(Debug)]
pub(crate) struct Memo {
    pub(crate) acc: Acc,
    pub(crate) reads: Vec<Read>,
    /// The kustomization directories built inside (itself included).
    pub(crate) entered: Vec<String>,
}

/// A whole build's output.
#[derive(Debug)]
pub(crate) struct Output {
    pub(crate) out: Vec<(Value, Origin)>,
    pub(crate) reads: Vec<Read>,
}

#[derive(Debug, Default)]
struct Generation {
    dirs: HashMap<String, Arc<Memo>>,
    outputs: HashMap<String, Arc<Output>>,
}

impl Generation {
    fn len(&self) -> usize {
        self.dirs.len() + self.outputs.len()
    }
}

/// What tells snapshots apart for eviction.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Revision { tree: String, root: Option<String> },
    Address { addr: usize, len: usize },
}

impl Token {
    fn of(snapshot: &Snapshot) -> Self {
        match snapshot.revision() {
            Some(r) => Token::Revision {
                tree: r.tree.clone(),
                root: snapshot.root().map(str::to_owned),
            },
            None => Token::Address {
                addr: std::ptr::from_ref(snapshot) as usize,
                len: snapshot.len(),
            },
        }
    }
}

/// Past this many results in the current generation, the previous one is dropped.
const MAX_ENTRIES: usize = 4096;

/// The cache of a [`Kustomize`](crate::Kustomize) renderer.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    token: Option<Token>,
    current: Generation,
    previous: Generation,
    hits: u64,
    misses: u64,
}

impl Cache {
    /// Starts a render of `snapshot`: a new snapshot starts a new generation.
    pub(crate) fn begin(&mut self, snapshot: &Snapshot) {
        let token = Token::of(snapshot);
        if self.token.as_ref() != Some(&token) {
            self.previous = std::mem::take(&mut self.current);
            self.token = Some(token);
        }
        if self.current.len() > MAX_ENTRIES {
            self.previous = Generation::default();
        }
    }

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits,
            misses: self.misses,
            entries: self.current.len() + self.previous.len(),
        }
    }

    /// The accumulation of `dir`, when one is still valid in `files` and
    /// would close no cycle with `stack`.
    pub(crate) fn dir(
        &mut self,
        dir: &str,
        files: &Files<'_>,
        stack: &[String],
    ) -> Option<Arc<Memo>> {
        let found = take_valid(
            &mut self.current.dirs,
            &mut self.previous.dirs,
            dir,
            |m: &Memo| {
                m.reads.iter().all(|r| files.still_holds(r))
                    && !m
                        .entered
                        .iter()
                        .any(|d| stack.iter().any(|s| is_within(s, d)))
            },
        );
        self.count(found.is_some());
        found
    }

    pub(crate) fn store_dir(&mut self, dir: &str, memo: Memo) {
        self.current.dirs.insert(dir.to_owned(), Arc::new(memo));
    }

    /// The output of a build of `root`, when still valid in `files`.
    pub(crate) fn output(&mut self, root: &str, files: &Files<'_>) -> Option<Arc<Output>> {
        let found = take_valid(
            &mut self.current.outputs,
            &mut self.previous.outputs,
            root,
            |o: &Output| o.reads.iter().all(|r| files.still_holds(r)),
        );
        self.count(found.is_some());
        found
    }

    pub(crate) fn store_output(&mut self, root: &str, output: Output) {
        self.current
            .outputs
            .insert(root.to_owned(), Arc::new(output));
    }

    fn count(&mut self, hit: bool) {
        if hit {
            self.hits += 1;
        } else {
            self.misses += 1;
        }
    }
}

/// The entry of `key` in `current` (else `previous`, moved to `current`)
/// when `valid`; an invalid one is dropped.
fn take_valid<T>(
    current: &mut HashMap<String, Arc<T>>,
    previous: &mut HashMap<String, Arc<T>>,
    key: &str,
    valid: impl Fn(&T) -> bool,
) -> Option<Arc<T>> {
    let entry = match current.get(key) {
        Some(e) => Some(e.clone()),
        None => previous.remove(key),
    };
    let entry = entry?;
    if valid(&entry) {
        current.insert(key.to_owned(), entry.clone());
        Some(entry)
    } else {
        current.remove(key);
        None
    }
}
